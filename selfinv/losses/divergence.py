r"""Divergence estimators for the SURE family: :math:`\operatorname{div} h(y) = \sum_i \partial h_i / \partial y_i`.

``h`` maps a batch ``y`` of shape (B, ...) to a tensor of the same shape (in the losses,
:math:`h(y) = A f(y)`); complex tensors are treated as pairs of real numbers, so the divergence of a
complex map is the trace of its real :math:`2n \times 2n` Jacobian. Every estimator returns one value
per sample, shape (B,), and assumes the samples of a batch are processed independently (no batch
statistics in ``h``). All of them estimate the *weighted* divergence

.. math::

    \operatorname{div}_w h(y) = \sum_i w_i\, m_i\, \frac{\partial h_i}{\partial y_i}(y)

with an optional weight ``w`` (PURE and PG-URE weight by :math:`\gamma y + \sigma^2`) and an optional
0/1 ``mask`` :math:`m` of the entries to probe (the measured entries; zero-filled ones are never
perturbed). Three methods, selected by name:

``"mc"``
    Monte-Carlo finite differences (Ramani, Blu & Unser, IEEE TIP 2008):
    :math:`\frac1\tau (w \odot b)^\top\big(h(y + \tau b) - h(y)\big)`, :math:`b \sim \mathcal N(0, I)`
    drawn from ``generator``. It reuses the :math:`h(y)` the caller already has (``h_y``), so it costs
    **one** extra evaluation of ``h`` per probe. Exact in expectation for linear ``h`` (for any τ), with a
    bias :math:`O(\tau^2)` otherwise (the second-order term has zero mean for a symmetric probe). The
    step is per sample and follows the data: :math:`\tau = \tau_{\rm rel} \max_i |y_i|` (floored at
    :math:`\sqrt{\epsilon_{\rm dtype}}`), default :math:`\tau_{\rm rel} = 10^{-3}` (Metzler et al. 2018,
    :math:`\epsilon = \max(y)/1000`), so data in [0, 1] and in [0, 255] give the same estimate for a
    scale-equivariant ``h``; an absolute ``tau`` (float or (B,)) overrides it.
``"hutchinson"``
    :math:`(w \odot b)^\top J b` with the vector-Jacobian product :math:`J^\top b` from autograd: no step
    size and no finite-difference bias in the value. If ``h_y`` was computed from a ``y`` that requires
    grad it is reused (**zero** extra evaluations of ``h`` for the value); otherwise ``h`` is evaluated once
    on a detached copy of ``y`` that requires grad (**one** evaluation; so under ``torch.no_grad()``, where
    the caller's :math:`h(y)` has no graph, always one). In training, see below: **one** more evaluation
    per probe.
``"exact"``
    The full trace, one backward pass per real coordinate of a sample (all samples at once). For tests
    on tiny signals only. Evaluations of ``h`` for the value as for ``"hutchinson"``; in training **two**
    more per real coordinate.

**Training with the autograd methods (the parameter gradient).** For a network with kinks (ReLU, leaky
ReLU, max-pooling, ...) the Jacobian diagonal depends on every parameter that only moves the activation
pattern (a bias before a ReLU) through a step function, so autograd's derivative of :math:`b^\top J b` (or
of the trace) with respect to it is exactly 0, while the derivative of the expected divergence is not:
by Stein's lemma, for :math:`y = x + \sigma\varepsilon`,
:math:`\nabla_\theta \mathbb E[\operatorname{div} h_\theta(y)] = \nabla_\theta \mathbb E[(y-x)^\top h_\theta(y)]/\sigma^2`.
Differentiating the Jacobian of a piecewise-linear map misses the pattern changes; differentiating a
*difference* of evaluations of ``h`` does not (its expectation over the probe is smooth in θ). So, when
gradients are enabled and ``h(y)`` depends on a tensor that requires grad other than ``y`` (a walk of
autograd's graph: the map has parameters), the autograd methods return

.. math:: \hat D = \operatorname{sg}[D_{\rm autograd}] + D_\tau - \operatorname{sg}[D_\tau]

(sg: stop-gradient): the **value** is the autograd estimate above, unchanged, and the **gradient** is that
of a finite difference along the same directions, :math:`D_\tau = \frac1\tau (w\odot b)^\top(h(y+\tau b) - h(y))`
(``"hutchinson"``; the ``"mc"`` estimate of the same probe, so the gradient is the one ``"mc"`` trains
with, one extra evaluation per probe) or the central differences
:math:`\sum_j w_j m_j \frac{h_j(y+\tau e_j) - h_j(y-\tau e_j)}{2\tau}` (``"exact"``, two per coordinate).
The expected gradient is :math:`\nabla_\theta \mathbb E[\operatorname{div} h]` up to :math:`O(\tau^2)`,
for smooth and piecewise-linear ``h`` alike (for a smooth network it differs from the double-backward
gradient by :math:`O(\tau)` per sample); ``tau``/``tau_rel`` set the step as for ``"mc"``. No extra
evaluation is made under ``torch.no_grad()`` (evaluation) or for a map without parameters, where the
autograd estimate is right as it stands. (The first-order Stein identity needs only :math:`h` Lipschitz, so
the autograd *values* are unbiased for ReLU networks too.)

:func:`second_divergence` (:mod:`~selfinv.losses.divergence_second`) adds the second-order term of PG-URE,
:math:`\sum_i \partial^2 h_i / \partial y_i^2`, and :func:`shifted_divergences`
(:mod:`~selfinv.losses.divergence_shifted`) the off-diagonal sums :math:`\sum_i \partial h_i / \partial
y_{i+o}` used by UNSURE with an unknown noise covariance; both are importable from here. The probes, steps
and autograd plumbing they share are in :mod:`~selfinv.losses.divergence_base`.

Example:
    >>> import torch
    >>> from selfinv.losses.divergence import divergence
    >>> W = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    >>> h = lambda y: y @ W.T
    >>> y = torch.randn(4, 2, dtype=torch.float64)
    >>> divergence(h, y, "exact")                       # tr W = 5 for every sample
    tensor([5., 5., 5., 5.], dtype=torch.float64)
    >>> mc = divergence(h, y[:1].expand(20000, 2), "mc", generator=torch.Generator().manual_seed(0))
    >>> bool(abs(mc.mean() - 5) < 4 * (27 / 20000) ** 0.5)    # variance 2‖sym W‖²_F = 27
    True
"""

from __future__ import annotations

import torch

from selfinv._batched import dot
from selfinv.losses.divergence_base import (
    DIVERGENCE_METHODS,
    Map,
    Readout,
    check_method,
    check_n_probes,
    full_weight,
    linear_estimates,
    perturbation_scale,
    weighted,
)
from selfinv.losses.divergence_second import second_divergence
from selfinv.losses.divergence_shifted import offsets, shifted_divergences

__all__ = [
    "DIVERGENCE_METHODS",
    "Map",
    "check_method",
    "divergence",
    "offsets",
    "perturbation_scale",
    "second_divergence",
    "shifted_divergences",
    "weighted_divergences",
]


class _Weighted(Readout):
    """The weighted divergences :math:`\\sum_i w_i m_i J_{ii}`, one per weight (``None``: weight 1)."""

    def __init__(self, y: torch.Tensor, weights: list[torch.Tensor | None], mask: torch.Tensor | None, method: str):
        self.weights = weights
        # "exact" reads rows and columns through unit vectors, which the mask does not zero: weight them by it
        self.full = [full_weight(y, w, mask) for w in weights] if method == "exact" else None

    def along(self, b, jb):  # b is already zero off the mask
        return torch.stack([dot(weighted(b, w), jb) for w in self.weights], 1)

    def row(self, e, jte):
        return torch.stack([dot(e * w, jte) for w in self.full], 1)


def divergence(
    h: Map, y: torch.Tensor, method: str = "mc", h_y: torch.Tensor | None = None, *,
    weight: torch.Tensor | None = None, mask: torch.Tensor | None = None, tau: float | torch.Tensor | None = None,
    tau_rel: float = 1e-3, n_probes: int = 1, generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The (weighted) divergence :math:`\sum_i w_i m_i \partial h_i/\partial y_i` of ``h`` at ``y``, per sample (B,).

    Args:
        h: the map, batch to batch of the same shape.
        y: the point, (B, ...), real or complex.
        method: ``"mc"``, ``"hutchinson"`` or ``"exact"`` (see the module docstring).
        h_y: :math:`h(y)` if already computed (saves an evaluation; see each method).
        weight: per-entry weights :math:`w` broadcastable to y (real).
        mask: 0/1 entries to probe, broadcastable to y (real).
        tau, tau_rel: the absolute or relative finite-difference step (``"mc"``, and the training gradient of
            the autograd methods).
        n_probes: number of random probes averaged (``"mc"``, ``"hutchinson"``).
        generator: drives the probes.
    """
    return weighted_divergences(h, y, [weight], method, h_y, mask=mask, tau=tau, tau_rel=tau_rel,
                                n_probes=n_probes, generator=generator)[:, 0]


def weighted_divergences(
    h: Map, y: torch.Tensor, weights: list[torch.Tensor | None], method: str = "mc", h_y: torch.Tensor | None = None,
    *, mask: torch.Tensor | None = None, tau: float | torch.Tensor | None = None, tau_rel: float = 1e-3,
    n_probes: int = 1, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Several weighted divergences from the same probes and evaluations, (B, len(weights)) (``None`` = weight 1)."""
    check_method(method, "weighted_divergences")
    if len(weights) == 0:
        raise ValueError("weighted_divergences: needs at least one weight")
    check_n_probes(n_probes)
    readout = _Weighted(y, list(weights), mask, method)
    return linear_estimates(h, y, method, h_y, readout, mask, tau, tau_rel, n_probes, generator)
