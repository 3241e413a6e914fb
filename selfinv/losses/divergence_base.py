r"""What every divergence estimator of :mod:`selfinv.losses.divergence` is made of: probes, steps and autograd.

* the method names and the checks of the common arguments (:func:`check_method`, :func:`check_n_probes`);
* the finite-difference step :func:`perturbation_scale` and the random probes (:func:`probe`: Gaussian, or the
  skewed two-point law second-order estimators need);
* the autograd plumbing: the point with a graph (:func:`autograd_point`), vector-Jacobian products, and the
  value-of-one, gradient-of-the-other combination with which the autograd methods train (see the
  :mod:`~selfinv.losses.divergence` docstring);
* :func:`linear_estimates`, the loop shared by every estimator that reads the Jacobian :math:`J` of ``h``
  through linear functionals (the weighted divergences, the shifted sums): a :class:`Readout` says what it
  reads off :math:`Jb`, :math:`J^\top b`, a row and a column of :math:`J`, and the loop does the rest for
  ``"mc"``, ``"hutchinson"`` and ``"exact"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from selfinv import _random
from selfinv._batched import broadcast_param, dot

Map = Callable[[torch.Tensor], torch.Tensor]

#: the divergence estimators by name
DIVERGENCE_METHODS: tuple[str, ...] = ("mc", "hutchinson", "exact")

# the two-point probe with mean 0, variance 1 and third moment 1 (values φ and -1/φ, φ the golden ratio),
# which second-order estimators need (E[b_i b_j b_k] = 1 if i = j = k, else 0)
_PHI = (1 + math.sqrt(5)) / 2
_P_HIGH = 1 / (1 + _PHI**2)


# ---------------------------------------------------------------------------------------- arguments
def check_method(method: str, owner: str) -> str:
    """The method name if it is known, else a ValueError naming the choices."""
    if method not in DIVERGENCE_METHODS:
        raise ValueError(
            f"{owner}: unknown divergence method {method!r}; choose one of {', '.join(DIVERGENCE_METHODS)}"
        )
    return method


def check_n_probes(n_probes: int, owner: str = "divergence") -> int:
    """``n_probes`` if it is a positive integer, else a ValueError naming ``owner``."""
    if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
        raise ValueError(f"{owner}: n_probes must be a positive integer, got {n_probes}")
    return n_probes


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


def per_sample(t: torch.Tensor) -> torch.Tensor:
    """A step shaped (B, 1, ...) as (B,), a 0-d step unchanged."""
    return t.reshape(-1) if t.ndim > 0 else t


# ---------------------------------------------------------------------------------------- probes and weights
def probe(
    y: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None, kind: str = "gaussian"
) -> torch.Tensor:
    """A random probe shaped like y, zero off ``mask``: standard Gaussian, or the skewed two-point law (real data)."""
    if kind == "gaussian":
        b = _random.randn(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
    else:  # skewed two-point, real data only
        u = _random.rand(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
        b = torch.where(u < _P_HIGH, torch.full_like(u, _PHI), torch.full_like(u, -1 / _PHI))
    return b if mask is None else b * mask


def masked(e: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return e if mask is None else e * mask


def weighted(b: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return b if weight is None else b * weight


def full_weight(y: torch.Tensor, weight: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
    """The weight times the mask as a full real tensor shaped like y (ones where neither is given)."""
    real = y.real.dtype if y.is_complex() else y.dtype
    w = torch.ones(y.shape, dtype=real, device=y.device)
    if weight is not None:
        w = w * weight
    if mask is not None:
        w = w * mask
    return w


def unit(y: torch.Tensor, j: int, imaginary: bool) -> torch.Tensor:
    """The unit vector of real coordinate j of every sample (``1j`` for the imaginary part)."""
    e = torch.zeros_like(y).reshape(y.shape[0], -1)
    e[:, j] = 1j if imaginary else 1
    return e.reshape(y.shape)


def coordinates(y: torch.Tensor):
    """The real coordinates ``(j, imaginary)`` of one sample of y."""
    n = y[0].numel()
    for j in range(n):
        yield j, False
        if y.is_complex():
            yield j, True


# ---------------------------------------------------------------------------------------- autograd
def _with_graph(h: Map, y: torch.Tensor, h_y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(y_in, h(y_in)) with y_in requiring grad: reuse h_y when it was computed from a y that requires grad."""
    if h_y is not None and y.requires_grad and h_y.requires_grad:
        return y, h_y
    y_in = y.detach().requires_grad_(True)
    with torch.enable_grad():
        return y_in, h(y_in)


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


def autograd_point(
    h: Map, y: torch.Tensor, h_y: torch.Tensor | None, tau: float | torch.Tensor | None, tau_rel: float
) -> tuple[torch.Tensor, torch.Tensor, bool, torch.Tensor | None]:
    """``(y_in, h(y_in), fd, t)`` for the autograd methods: the point with a graph, whether they take their
    gradient from finite differences (gradients enabled and ``h`` has parameters, the module docstring of
    :mod:`~selfinv.losses.divergence`) and then the step ``t`` of those differences (else None)."""
    y_in, out = _with_graph(h, y, h_y)
    fd = torch.is_grad_enabled() and _has_parameters(out, y_in)
    return y_in, out, fd, perturbation_scale(y, tau, tau_rel) if fd else None


def vjp(out: torch.Tensor, y_in: torch.Tensor, v: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """J^T v (real-pair convention for complex tensors); differentiable when ``create_graph``."""
    return grad(dot(v, out).sum(), y_in, create_graph)


def grad(s: torch.Tensor, y_in: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """ds/dy_in, zero where s does not depend on y_in (a constant map, or the derivative of a linear one)."""
    if not s.requires_grad:
        return torch.zeros_like(y_in)
    (g,) = torch.autograd.grad(s, y_in, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(y_in) if g is None else g


def value_with_gradient_of(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass, the gradient of ``surrogate`` in the backward pass."""
    return value.detach() + (surrogate - surrogate.detach())


def respect_grad_mode(fn):
    """Detach the result when called with gradients disabled (validation), so no graph is kept alive."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if torch.is_grad_enabled():
            return fn(*args, **kwargs)
        out = fn(*args, **kwargs)
        return tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()

    return wrapper


# ---------------------------------------------------------------------------------------- the linear read-outs
class Readout:
    r"""What an estimator reads off the Jacobian :math:`J` of ``h``: K linear functionals, stacked as (B, K).

    Subclasses define :meth:`along` (from :math:`v = Jb`, a finite difference along the probe :math:`b`) and
    :meth:`row` (from row j of :math:`J`, :math:`J^\top e_j`); :meth:`along_transpose` (from :math:`J^\top b`)
    and :meth:`column` (from column j, :math:`J e_j`) default to the same functionals, which is right for
    read-outs of the diagonal of :math:`J`.
    """

    def along(self, b: torch.Tensor, jb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def along_transpose(self, b: torch.Tensor, jtb: torch.Tensor) -> torch.Tensor:
        return self.along(b, jtb)

    def row(self, e: torch.Tensor, jte: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def column(self, e: torch.Tensor, je: torch.Tensor) -> torch.Tensor:
        return self.row(e, je)


def linear_estimates(
    h: Map,
    y: torch.Tensor,
    method: str,
    h_y: torch.Tensor | None,
    readout: Readout,
    mask: torch.Tensor | None,
    tau: float | torch.Tensor | None,
    tau_rel: float,
    n_probes: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """(B, K): the read-out's functionals of :math:`J`, all from the same probes (and the same evaluations of h).

    ``"mc"`` reads :math:`Jb \\approx (h(y + \\tau b) - h(y))/\\tau`, ``"hutchinson"`` reads :math:`J^\\top b`,
    ``"exact"`` every row; in training the autograd methods take their gradient from the finite differences
    along the same directions (forward differences along each probe, central differences per column).
    """
    n_probes = check_n_probes(n_probes)
    keep = torch.is_grad_enabled()
    if method == "mc":
        out = h(y) if h_y is None else h_y
        t = perturbation_scale(y, tau, tau_rel)
        total = 0.0
        for _ in range(n_probes):
            b = probe(y, mask, generator)
            total = total + readout.along(b, (h(y + t * b) - out) / t)  # ≈ J b:  E[b_i (J b)_i] = J_ii
        result = total / n_probes
        return result if keep else result.detach()
    y_in, out, fd, t = autograd_point(h, y, h_y, tau, tau_rel)
    graph = keep and not fd
    total = surrogate = 0.0
    with torch.enable_grad():
        if method == "exact":
            for j, imag in coordinates(y):
                e = unit(y, j, imag)
                total = total + readout.row(e, vjp(out, y_in, e, graph))
                if fd:  # column j by central differences; zero-filled entries are never perturbed
                    te = t * masked(e, mask)
                    surrogate = surrogate + readout.column(e, (h(y_in + te) - h(y_in - te)) / (2 * t))
        else:  # hutchinson
            for _ in range(n_probes):
                b = probe(y, mask, generator)
                total = total + readout.along_transpose(b, vjp(out, y_in, b, graph))  # J^T b
                if fd:  # the "mc" difference along the same probe, reusing h(y)
                    surrogate = surrogate + readout.along(b, (h(y_in + t * b) - out) / t)
            total, surrogate = total / n_probes, surrogate / n_probes
    if fd:
        return value_with_gradient_of(total, surrogate)
    return total if keep else total.detach()
