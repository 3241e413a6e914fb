r"""The second-order term of PG-URE, :math:`\sum_i \partial^2 h_i / \partial y_i^2`, with the divergence it comes with.

Part of the divergence estimators (:mod:`selfinv.losses.divergence`, which re-exports
:func:`second_divergence`); the probes, steps and autograd plumbing are in :mod:`~selfinv.losses.divergence_base`.
"""

from __future__ import annotations

import torch

from selfinv._batched import dot
from selfinv.losses.divergence_base import (
    Map,
    autograd_point,
    check_method,
    check_n_probes,
    coordinates,
    full_weight,
    grad,
    masked,
    per_sample,
    perturbation_scale,
    probe,
    respect_grad_mode,
    unit,
    value_with_gradient_of,
    vjp,
    weighted,
)


def _central(h: Map, y: torch.Tensor, h_y: torch.Tensor, d: torch.Tensor, tb: torch.Tensor, w1, w2):
    r"""Both terms along a direction d = τ b by central differences: :math:`w_1^\top(h^+ - h^-)/2\tau` and
    :math:`w_2^\top(h^+ + h^- - 2h(y))/\tau^2`, with :math:`h^\pm = h(y \pm d)` (two evaluations of h)."""
    hp, hm = h(y + d), h(y - d)
    return dot(w1, hp - hm) / (2 * tb), dot(w2, hp + hm - 2 * h_y) / tb**2


@respect_grad_mode
def second_divergence(
    h: Map, y: torch.Tensor, method: str = "mc", h_y: torch.Tensor | None = None, *,
    weight: torch.Tensor | None = None, mask: torch.Tensor | None = None, tau: float | torch.Tensor | None = None,
    tau_rel: float = 1e-2, n_probes: int = 1, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The weighted divergence and the second-order term, :math:`(\sum_i w_i m_i \partial_i h_i,\ \sum_i m_i \partial^2_{ii} h_i)`.

    Both from the same probe :math:`b` with mean 0, variance 1 and third moment 1 (a two-point law), so
    that :math:`\mathbb E[b_i b_j b_k] = 1` if :math:`i=j=k` and 0 otherwise:

    * ``"mc"``: central differences with **two** extra evaluations of ``h``,
      :math:`\frac{1}{2\tau}(w\odot b)^\top(h^+ - h^-)` and :math:`\frac{1}{\tau^2} b^\top(h^+ + h^- - 2h(y))`
      with :math:`h^\pm = h(y \pm \tau b)` (both exact for quadratic ``h``, bias :math:`O(\tau^2)` otherwise);
      the default step is larger than for first order (:math:`\tau_{\rm rel} = 10^{-2}`) because the
      second difference divides rounding errors by :math:`\tau^2`;
    * ``"hutchinson"``: :math:`(w\odot b)^\top J b` and :math:`b^\top \nabla_y(b^\top J b)` by double and
      triple backward;
    * ``"exact"``: the two traces, two backward passes per coordinate.

    In training (gradients enabled, ``h`` with parameters) the autograd methods keep these values and take
    their parameter gradients from the ``"mc"`` central differences along the same directions (module
    docstring): two more evaluations of ``h`` per probe (``"hutchinson"``) or per coordinate (``"exact"``).
    For a piecewise-linear ``h`` (ReLU networks) autograd's second derivative is 0 almost everywhere, so
    the autograd *value* of the second-order term misses its part concentrated on the kinks (the
    differences, and so ``"mc"`` and the training gradient, see it): use ``"mc"`` for such networks when
    the value of that term matters.

    Real data only.
    """
    check_method(method, "second_divergence")
    n_probes = check_n_probes(n_probes)
    if y.is_complex():
        raise ValueError("second_divergence: defined for real data only")
    if method == "mc":
        if h_y is None:
            h_y = h(y)
        t = perturbation_scale(y, tau, tau_rel)
        tb = per_sample(t)
        total1 = total2 = 0.0
        for _ in range(n_probes):
            b = probe(y, mask, generator, "skewed")
            d1, d2 = _central(h, y, h_y, t * b, tb, weighted(b, weight), b)
            total1, total2 = total1 + d1, total2 + d2
        return total1 / n_probes, total2 / n_probes
    y_in, out, fd, t = autograd_point(h, y, h_y, tau, tau_rel)  # the autograd values, the gradients of differences
    graph = not fd
    tb = per_sample(t) if fd else None
    v1 = v2 = s1 = s2 = 0.0
    with torch.enable_grad():
        if method == "exact":
            w1, w2 = full_weight(y, weight, mask), full_weight(y, None, mask)
            for j, _ in coordinates(y):
                e = unit(y, j, False)
                g1 = vjp(out, y_in, e)
                g2 = grad(dot(e, g1).sum(), y_in, graph)  # the derivative of (B,) ∂h_j/∂y_j
                v1, v2 = v1 + dot(e * w1, g1), v2 + dot(e * w2, g2)
                if fd:
                    f1, f2 = _central(h, y_in, out, t * masked(e, mask), tb, e * w1, e * w2)
                    s1, s2 = s1 + f1, s2 + f2
        else:  # hutchinson
            for _ in range(n_probes):
                b = probe(y, mask, generator, "skewed")
                g = vjp(out, y_in, b)
                g2 = grad(dot(b, g).sum(), y_in, graph)
                v1, v2 = v1 + dot(weighted(b, weight), g), v2 + dot(b, g2)
                if fd:  # the "mc" central differences along the same probe
                    f1, f2 = _central(h, y_in, out, t * b, tb, weighted(b, weight), b)
                    s1, s2 = s1 + f1, s2 + f2
            v1, v2, s1, s2 = v1 / n_probes, v2 / n_probes, s1 / n_probes, s2 / n_probes
    if fd:
        return value_with_gradient_of(v1, s1), value_with_gradient_of(v2, s2)
    return v1, v2
