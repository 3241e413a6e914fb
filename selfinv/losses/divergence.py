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

:func:`second_divergence` adds the second-order term of PG-URE, :math:`\sum_i \partial^2 h_i / \partial
y_i^2`, and :func:`shifted_divergences` the off-diagonal sums :math:`\sum_i \partial h_i / \partial
y_{i+o}` used by UNSURE with an unknown noise covariance.

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

import functools
import math
from collections.abc import Callable

import torch

from selfinv import _random
from selfinv._batched import broadcast_param

Map = Callable[[torch.Tensor], torch.Tensor]

#: the divergence estimators by name
DIVERGENCE_METHODS: tuple[str, ...] = ("mc", "hutchinson", "exact")

# the two-point probe with mean 0, variance 1 and third moment 1 (values φ and -1/φ, φ the golden ratio),
# which second-order estimators need (E[b_i b_j b_k] = 1 if i = j = k, else 0)
_PHI = (1 + math.sqrt(5)) / 2
_P_HIGH = 1 / (1 + _PHI**2)


def check_method(method: str, owner: str) -> str:
    """The method name if it is known, else a ValueError naming the choices."""
    if method not in DIVERGENCE_METHODS:
        raise ValueError(
            f"{owner}: unknown divergence method {method!r}; choose one of {', '.join(DIVERGENCE_METHODS)}"
        )
    return method


def perturbation_scale(y: torch.Tensor, tau: float | torch.Tensor | None = None, tau_rel: float = 1e-3) -> torch.Tensor:
    r"""The finite-difference step, shaped to broadcast against y: ``tau`` if given, else :math:`\tau_{\rm rel}\max_i|y_i|` per sample."""
    real = y.real.dtype if y.is_complex() else y.dtype
    if tau is not None:
        t = torch.as_tensor(tau, dtype=real, device=y.device)
        if t.ndim > 1 or bool((t <= 0).any()) or not bool(torch.isfinite(t).all()):
            raise ValueError(f"divergence: tau must be a positive number or a (B,) tensor, got {tau}")
        return broadcast_param(t, y)
    if not (tau_rel > 0 and math.isfinite(tau_rel)):
        raise ValueError(f"divergence: tau_rel must be positive, got {tau_rel}")
    scale = y.detach().abs().flatten(1).amax(1).to(real)
    scale = scale.clamp_min(math.sqrt(torch.finfo(real).eps))
    return broadcast_param(tau_rel * scale, y)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample real inner product over real degrees of freedom, shape (B,)."""
    if a.is_complex() or b.is_complex():
        return (a.conj() * b).real.flatten(1).sum(1)
    return (a * b).flatten(1).sum(1)


def _per_sample(t: torch.Tensor) -> torch.Tensor:
    """A step shaped (B, 1, ...) as (B,), a 0-d step unchanged."""
    return t.reshape(-1) if t.ndim > 0 else t


def _probe(
    y: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None, kind: str = "gaussian"
) -> torch.Tensor:
    if kind == "gaussian":
        b = _random.randn(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
    else:  # skewed two-point, real data only
        u = _random.rand(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
        b = torch.where(u < _P_HIGH, torch.full_like(u, _PHI), torch.full_like(u, -1 / _PHI))
    return b if mask is None else b * mask


def _masked(e: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return e if mask is None else e * mask


def _weighted(b: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return b if weight is None else b * weight


def _with_graph(h: Map, y: torch.Tensor, h_y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(y_in, h(y_in)) with y_in requiring grad: reuse h_y when it was computed from a y that requires grad."""
    if h_y is not None and y.requires_grad and h_y.requires_grad:
        return y, h_y
    y_in = y.detach().requires_grad_(True)
    with torch.enable_grad():
        return y_in, h(y_in)


def _vjp(out: torch.Tensor, y_in: torch.Tensor, v: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """J^T v (real-pair convention for complex tensors); differentiable when ``create_graph``."""
    return _grad(_dot(v, out).sum(), y_in, create_graph)


def _grad(s: torch.Tensor, y_in: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """ds/dy_in, zero where s does not depend on y_in (a constant map, or the derivative of a linear one)."""
    if not s.requires_grad:
        return torch.zeros_like(y_in)
    (g,) = torch.autograd.grad(s, y_in, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(y_in) if g is None else g


def _has_parameters(out: torch.Tensor, y_in: torch.Tensor) -> bool:
    """Whether ``out`` depends on a tensor that requires grad other than ``y_in`` (a parameter of ``h``).

    A walk of autograd's graph from ``out`` that stops at ``y_in``: a leaf reached is a parameter.
    """
    if not out.requires_grad:
        return False
    stop = y_in.grad_fn  # None when y_in is a leaf
    seen: set = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen or (stop is not None and node is stop):
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # AccumulateGrad: a leaf that requires grad
        if leaf is not None:
            if leaf is not y_in:
                return True
            continue
        stack.extend(fn for fn, _ in node.next_functions)
    return False


def _trains(out: torch.Tensor, y_in: torch.Tensor) -> bool:
    """Gradients enabled and h has parameters: the autograd methods then take their gradient from differences."""
    return torch.is_grad_enabled() and _has_parameters(out, y_in)


def _value_with_gradient_of(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass, the gradient of ``surrogate`` in the backward pass."""
    return value.detach() + (surrogate - surrogate.detach())


def _respect_grad_mode(fn):
    """Detach the result when called with gradients disabled (validation), so no graph is kept alive."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if torch.is_grad_enabled():
            return fn(*args, **kwargs)
        out = fn(*args, **kwargs)
        return tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()

    return wrapper


def _check_n_probes(n_probes: int) -> int:
    if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
        raise ValueError(f"divergence: n_probes must be a positive integer, got {n_probes}")
    return n_probes


# ---------------------------------------------------------------------------------------- first order
def _first_order(
    h: Map,
    y: torch.Tensor,
    method: str,
    h_y: torch.Tensor | None,
    weights: list[torch.Tensor | None],
    mask: torch.Tensor | None,
    tau: float | torch.Tensor | None,
    tau_rel: float,
    n_probes: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """(B, K): the K weighted divergences, all from the same probes (and the same evaluations of h)."""
    n_probes = _check_n_probes(n_probes)
    keep = torch.is_grad_enabled()
    if method == "mc":
        out = h(y) if h_y is None else h_y
        t = perturbation_scale(y, tau, tau_rel)
        total = 0.0
        for _ in range(n_probes):
            b = _probe(y, mask, generator)
            v = (h(y + t * b) - out) / t  # ≈ J b:  E[b_i (J b)_i] = J_ii
            total = total + torch.stack([_dot(_weighted(b, w), v) for w in weights], 1)
        result = total / n_probes
        return result if keep else result.detach()
    y_in, out = _with_graph(h, y, h_y)
    fd = _trains(out, y_in)  # the autograd value, the gradient of finite differences (module docstring)
    graph = keep and not fd
    if fd:
        t = perturbation_scale(y, tau, tau_rel)
    total = surrogate = 0.0
    if method == "exact":
        ws = [_full_weight(y, w, mask) for w in weights]
        with torch.enable_grad():
            for j, imag in _coordinates(y):
                e = _unit(y, j, imag)
                row = _vjp(out, y_in, e, graph)
                total = total + torch.stack([_dot(e * w, row) for w in ws], 1)
                if fd:  # column j by central differences: Σ_j w_j (h_j(y + τe_j) − h_j(y − τe_j)) / 2τ
                    te = t * _masked(e, mask)  # zero-filled entries are never perturbed
                    col = (h(y_in + te) - h(y_in - te)) / (2 * t)
                    surrogate = surrogate + torch.stack([_dot(e * w, col) for w in ws], 1)
        result = total
    else:  # hutchinson
        with torch.enable_grad():
            for _ in range(n_probes):
                b = _probe(y, mask, generator)
                v = _vjp(out, y_in, b, graph)  # J^T b:  E[b_i (J^T b)_i] = J_ii
                total = total + torch.stack([_dot(_weighted(b, w), v) for w in weights], 1)
                if fd:  # the "mc" difference along the same probe, reusing h(y)
                    delta = (h(y_in + t * b) - out) / t
                    surrogate = surrogate + torch.stack([_dot(_weighted(b, w), delta) for w in weights], 1)
        result, surrogate = total / n_probes, surrogate / n_probes
    if fd:
        return _value_with_gradient_of(result, surrogate)
    return result if keep else result.detach()


def _full_weight(y: torch.Tensor, weight: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
    real = y.real.dtype if y.is_complex() else y.dtype
    w = torch.ones(y.shape, dtype=real, device=y.device)
    if weight is not None:
        w = w * weight
    if mask is not None:
        w = w * mask
    return w


def _unit(y: torch.Tensor, j: int, imaginary: bool) -> torch.Tensor:
    e = torch.zeros_like(y).reshape(y.shape[0], -1)
    e[:, j] = 1j if imaginary else 1
    return e.reshape(y.shape)


def _coordinates(y: torch.Tensor):
    n = y[0].numel()
    for j in range(n):
        yield j, False
        if y.is_complex():
            yield j, True


def divergence(
    h: Map,
    y: torch.Tensor,
    method: str = "mc",
    h_y: torch.Tensor | None = None,
    *,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    tau: float | torch.Tensor | None = None,
    tau_rel: float = 1e-3,
    n_probes: int = 1,
    generator: torch.Generator | None = None,
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
    h: Map,
    y: torch.Tensor,
    weights: list[torch.Tensor | None],
    method: str = "mc",
    h_y: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
    tau: float | torch.Tensor | None = None,
    tau_rel: float = 1e-3,
    n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Several weighted divergences from the same probes and evaluations, (B, len(weights)) (``None`` = weight 1)."""
    check_method(method, "weighted_divergences")
    if len(weights) == 0:
        raise ValueError("weighted_divergences: needs at least one weight")
    return _first_order(h, y, method, h_y, list(weights), mask, tau, tau_rel, n_probes, generator)


# ---------------------------------------------------------------------------------------- second order
@_respect_grad_mode
def second_divergence(
    h: Map,
    y: torch.Tensor,
    method: str = "mc",
    h_y: torch.Tensor | None = None,
    *,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    tau: float | torch.Tensor | None = None,
    tau_rel: float = 1e-2,
    n_probes: int = 1,
    generator: torch.Generator | None = None,
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
    n_probes = _check_n_probes(n_probes)
    if y.is_complex():
        raise ValueError("second_divergence: defined for real data only")
    if method in ("exact", "hutchinson"):
        y_in, out = _with_graph(h, y, h_y)
        fd = _trains(out, y_in)  # the autograd values, the gradients of central differences
        graph = not fd
        if fd:
            t = perturbation_scale(y, tau, tau_rel)
            tb = _per_sample(t)
        s1 = s2 = 0.0
    if method == "exact":
        w1 = _full_weight(y, weight, mask)
        w2 = _full_weight(y, None, mask)
        d1 = d2 = 0.0
        with torch.enable_grad():
            for j, _ in _coordinates(y):
                e = _unit(y, j, False)
                g1 = _vjp(out, y_in, e)
                first = _dot(e, g1)  # (B,) ∂h_j/∂y_j
                g2 = _grad(first.sum(), y_in, graph)
                d1 = d1 + _dot(e * w1, g1)
                d2 = d2 + _dot(e * w2, g2)
                if fd:
                    te = t * _masked(e, mask)
                    hp, hm = h(y_in + te), h(y_in - te)
                    s1 = s1 + _dot(e * w1, hp - hm) / (2 * tb)
                    s2 = s2 + _dot(e * w2, hp + hm - 2 * out) / tb**2
        if fd:
            return _value_with_gradient_of(d1, s1), _value_with_gradient_of(d2, s2)
        return d1, d2
    total1 = total2 = 0.0
    if method == "hutchinson":
        with torch.enable_grad():
            for _ in range(n_probes):
                b = _probe(y, mask, generator, "skewed")
                g = _vjp(out, y_in, b)
                total1 = total1 + _dot(_weighted(b, weight), g)
                q = _dot(b, g)
                g2 = _grad(q.sum(), y_in, graph)
                total2 = total2 + _dot(b, g2)
                if fd:  # the "mc" central differences along the same probe
                    hp, hm = h(y_in + t * b), h(y_in - t * b)
                    s1 = s1 + _dot(_weighted(b, weight), hp - hm) / (2 * tb)
                    s2 = s2 + _dot(b, hp + hm - 2 * out) / tb**2
        total1, total2 = total1 / n_probes, total2 / n_probes
        if fd:
            return _value_with_gradient_of(total1, s1 / n_probes), _value_with_gradient_of(total2, s2 / n_probes)
        return total1, total2
    if h_y is None:
        h_y = h(y)
    t = perturbation_scale(y, tau, tau_rel)
    tb = _per_sample(t)
    for _ in range(n_probes):
        b = _probe(y, mask, generator, "skewed")
        hp, hm = h(y + t * b), h(y - t * b)
        total1 = total1 + _dot(_weighted(b, weight), hp - hm) / (2 * tb)
        total2 = total2 + _dot(b, hp + hm - 2 * h_y) / tb**2
    return total1 / n_probes, total2 / n_probes


# ---------------------------------------------------------------------------------------- shifted (covariance)
def offsets(radius: int) -> list[tuple[int, int]]:
    """The (2r+1)² spatial offsets (dy, dx), row-major, matching a (2r+1, 2r+1) kernel."""
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _roll(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """roll(t)[..., i, j] = t[..., i - dy, j - dx] (circular over the last two axes)."""
    return torch.roll(t, shifts=(dy, dx), dims=(-2, -1))


@_respect_grad_mode
def shifted_divergences(
    h: Map,
    y: torch.Tensor,
    radius: int,
    method: str = "mc",
    h_y: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
    tau: float | torch.Tensor | None = None,
    tau_rel: float = 1e-3,
    n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The sums :math:`D_o = \sum_i \partial h_i / \partial y_{i+o}` for every spatial offset :math:`o` of a (2r+1)² kernel.

    Offsets act circularly on the last two axes of y (channels are not mixed). Returns (B, 2r+1, 2r+1);
    the centre is the divergence. With one probe :math:`b`, :math:`D_o \approx b_{\cdot+o}^\top \Delta`
    where :math:`\Delta = (h(y+\tau b) - h(y))/\tau` (``"mc"``, one extra evaluation for all offsets) or
    :math:`\Delta = J b` (``"hutchinson"``, written as :math:`\sum_j (J^\top b)_j b_{j-o}`), since
    :math:`\mathbb E[b_{i+o} b_j] = \delta_{j, i+o}`. ``"exact"`` reads the Jacobian row by row. For
    :math:`\Sigma` stationary with support in the kernel, :math:`\operatorname{tr}(\Sigma J) = \sum_o \Sigma[o] D_o`.
    In training (gradients enabled, ``h`` with parameters) the autograd methods keep these values and take
    their parameter gradients from differences (module docstring): the ``"mc"`` sums along the same probe
    (one more evaluation per probe) or central differences per coordinate, which read the Jacobian column by
    column (two more per coordinate).
    """
    check_method(method, "shifted_divergences")
    n_probes = _check_n_probes(n_probes)
    if y.ndim < 3:
        raise ValueError(f"shifted_divergences: needs images (B, ..., H, W), got shape {tuple(y.shape)}")
    offs = offsets(radius)
    k = 2 * radius + 1
    if method in ("exact", "hutchinson"):
        y_in, out = _with_graph(h, y, h_y)
        fd = _trains(out, y_in)  # the autograd values, the gradients of finite differences
        graph = not fd
        if fd:
            t = perturbation_scale(y, tau, tau_rel)
        surrogate = 0.0
    if method == "exact":
        w = _full_weight(y, None, mask)
        total = [0.0] * len(offs)
        with torch.enable_grad():
            for j, imag in _coordinates(y):
                e = _unit(y, j, imag)
                row = _vjp(out, y_in, e, graph)  # ∂h_j/∂y_· per sample
                for idx, (dy, dx) in enumerate(offs):
                    # ∂h_j/∂y_{j+o}: shift the unit vector to j + o and read the row there
                    total[idx] = total[idx] + _dot(_roll(e, dy, dx) * w, row)
                if fd:  # column j, ∂h_·/∂y_j, by central differences: its entry j − o is ∂h_{j−o}/∂y_j
                    te = t * _masked(e, mask)  # zero-filled entries are never perturbed
                    col = (h(y_in + te) - h(y_in - te)) / (2 * t)
                    surrogate = surrogate + torch.stack([_dot(_roll(e * w, -dy, -dx), col) for dy, dx in offs], 1)
        result = torch.stack([torch.as_tensor(v) for v in total], 1)
        if fd:
            result = _value_with_gradient_of(result, surrogate)
        return result.reshape(y.shape[0], k, k)
    if method == "hutchinson":
        total = 0.0
        with torch.enable_grad():
            for _ in range(n_probes):
                b = _probe(y, mask, generator)
                g = _vjp(out, y_in, b, graph)  # J^T b
                total = total + torch.stack([_dot(_roll(b, dy, dx), g) for dy, dx in offs], 1)
                if fd:  # the "mc" difference along the same probe, reusing h(y)
                    delta = (h(y_in + t * b) - out) / t
                    surrogate = surrogate + torch.stack([_dot(_roll(b, -dy, -dx), delta) for dy, dx in offs], 1)
        result = total / n_probes
        if fd:
            result = _value_with_gradient_of(result, surrogate / n_probes)
        return result.reshape(y.shape[0], k, k)
    if h_y is None:
        h_y = h(y)
    t = perturbation_scale(y, tau, tau_rel)
    total = 0.0
    for _ in range(n_probes):
        b = _probe(y, mask, generator)
        delta = (h(y + t * b) - h_y) / t
        total = total + torch.stack([_dot(_roll(b, -dy, -dx), delta) for dy, dx in offs], 1)
    return (total / n_probes).reshape(y.shape[0], k, k)
