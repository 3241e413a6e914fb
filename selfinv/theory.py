r"""Identifiability conditions for learning from measurements alone (tutorial parts 3–4).

Without ground truth, a reconstruction network can only learn what some operator sees. Two
necessary conditions (Tachella, Chen & Davies, "Sensing theorems for unsupervised learning in
linear inverse problems", JMLR 24(39), 2023; Tachella, Chen & Davies, NeurIPS 2022):

* **several operators** :math:`A_1, \dots, A_G` (multi-operator imaging, splitting):
  :math:`\operatorname{rank}(\mathbb{E}_g A_g^\top A_g) = n`, hence :math:`m \ge n/G`;
* **one operator and a symmetry group** (equivariant imaging):
  :math:`\operatorname{rank}(\mathbb{E}_g T_g^\top A^\top A T_g) = n`, hence :math:`m \ge n/|G|`; this
  fails whenever :math:`A` is equivariant (:math:`A T_g = \tilde T_g A`), because then the rank stays
  :math:`\operatorname{rank}(A^\top A)`.

:func:`rank_condition` computes these ranks (dense eigenvalues for small images, matrix-free for
large ones), :func:`is_equivariant` tests :math:`A T_g = \tilde T_g A`, and :func:`counting_bound` /
:func:`multi_operator_bound` give the counting conditions. Both result objects are frozen dataclasses
whose ``str`` is one plain sentence.

Example:
    >>> import torch
    >>> from selfinv.physics import Inpainting
    >>> from selfinv.transforms import Shift
    >>> from selfinv.theory import rank_condition, is_equivariant
    >>> mask = torch.zeros(8, 8); mask[:, :5] = 1             # 40 of 64 pixels observed
    >>> r = rank_condition(Inpainting(mask))
    >>> r.rank, r.n, r.holds
    (40, 64, False)
    >>> rank_condition(Inpainting(mask), Shift()).holds       # EI with shifts sees every pixel
    True
    >>> is_equivariant(Inpainting(mask), Shift()).equivariant
    False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from selfinv import _random
from selfinv.physics.base import LinearOperator
from selfinv.transforms import Product, Shift, Transform

__all__ = [
    "EquivariantResult",
    "RankResult",
    "counting_bound",
    "is_equivariant",
    "multi_operator_bound",
    "rank_condition",
]

#: ``method="auto"`` uses the dense method up to this many unknowns n ...
DENSE_MAX_N = 1024
#: ... while it needs at most this many operator applications (n · operators, times transforms unless exact) ...
DENSE_MAX_CALLS = 1 << 17
#: ... and at most this many gathers n² · |G| to average the permuted matrices of exact transforms
DENSE_MAX_GATHERS = 1 << 28
#: largest number of scalars per batched operator call (memory of the internal chunks)
_CHUNK = 1 << 22
#: relative accuracy to which a probe must confirm a detected structure (diagonal / translation invariant)
STRUCTURE_RTOL = 1e-10
#: at most this many group elements are tested exhaustively by ``is_equivariant`` ...
MAX_EXHAUSTIVE = 1024
#: ... and this many are sampled from larger or continuous families
N_SAMPLED = 64
_EPS = torch.finfo(torch.float64).eps
_SHIFT = Shift()


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class RankResult:
    r"""The rank of the averaged normal operator :math:`\mathbb{E}_{g} T_g^\top A_i^\top A_i T_g` and the counting bound.

    Attributes:
        rank: numerical rank (eigenvalues above ``tol``).
        n: number of unknowns (complex unknowns for complex operators such as MRI).
        holds: ``rank == n``, the necessary condition for learning from measurements alone.
        method: ``"dense"`` or ``"matrix-free"``.
        algorithm: ``"eigvalsh"`` (dense), ``"pixel-diagonal"``, ``"fourier-diagonal"`` or
            ``"randomized-range-finder"`` (matrix-free).
        tol: the eigenvalue threshold used (absolute).
        lambda_max: the largest eigenvalue.
        n_operators: number of operators :math:`A_i` averaged over.
        group_size: number of transforms :math:`T_g` averaged over (1 without transforms).
        m: measurements per operator (the largest), None when unknown.
        bound: the counting bound :math:`\lceil n / G \rceil`, :math:`G` = ``n_operators * group_size``.
        bound_holds: whether :math:`G_T \sum_i m_i \ge n` (i.e. :math:`m \ge n/G` for equal :math:`m_i`),
            None when m is unknown. Necessary for ``holds``, not sufficient.
        transform: ``repr`` of the transforms, or None.
    """

    rank: int
    n: int
    holds: bool
    method: str
    algorithm: str
    tol: float
    lambda_max: float
    n_operators: int
    group_size: int
    m: int | None
    bound: int
    bound_holds: bool | None
    transform: str | None = None

    @property
    def G(self) -> int:
        """Number of (virtual) operators averaged over: ``n_operators * group_size``."""
        return self.n_operators * self.group_size

    @property
    def nullity(self) -> int:
        """Dimension of the part of the signal space that no operator sees: ``n - rank``."""
        return self.n - self.rank

    def __str__(self) -> str:
        verdict = "full rank: the condition holds" if self.holds else f"rank-deficient by {self.nullity}: the condition fails"
        ops = f"{self.n_operators} operator{'s' if self.n_operators != 1 else ''}"
        if self.transform is not None:
            ops += f" x {self.group_size} transforms {self.transform}"
        if self.m is None:
            count = f"counting bound m >= {self.bound} (m unknown)"
        else:
            count = f"counting bound m >= ceil({self.n}/{self.G}) = {self.bound}: m = {self.m}, {'met' if self.bound_holds else 'not met'}"
        return (
            f"rank {self.rank}/{self.n} ({verdict}) over {ops} "
            f"[{self.method}, {self.algorithm}, tol {self.tol:.2g}]; {count}"
        )


@dataclass(frozen=True)
class EquivariantResult:
    r"""Whether :math:`A T_g = \tilde T_g A` for some linear :math:`\tilde T_g`, for every tested :math:`g`.

    Attributes:
        equivariant: ``residual <= tol``.
        residual: the largest relative residual
            :math:`\|A T_g (I - A^\dagger A) z\| / (\|A\| \|(I - A^\dagger A) z\|)` over the tested
            elements and random probes :math:`z` (0 when :math:`A` is injective).
        tol: the threshold.
        n_tested: number of group elements tested.
        exhaustive: True when every element of the (finite) group was tested.
        worst: parameters of the element with the largest residual.
        transform: ``repr`` of the transform.
        operator: the operator's class name.
    """

    equivariant: bool
    residual: float
    tol: float
    n_tested: int
    exhaustive: bool
    worst: tuple[float, ...]
    transform: str
    operator: str

    def __str__(self) -> str:
        scope = f"all {self.n_tested} group elements" if self.exhaustive else f"{self.n_tested} sampled group elements"
        if self.equivariant:
            verdict = f"{self.operator} is equivariant to {self.transform} (these transforms add no information)"
        else:
            verdict = f"{self.operator} is not equivariant to {self.transform} (worst g = {self.worst})"
        cmp = "<=" if self.equivariant else ">"
        return f"{verdict}: max relative residual {self.residual:.2g} {cmp} tol {self.tol:.2g} over {scope}"


# ---------------------------------------------------------------------- bounds
def counting_bound(n: int, G: int) -> int:
    r"""The necessary count :math:`m \ge n / G`, as the smallest integer :math:`\lceil n / G \rceil`.

    ``G`` is the number of operators (multi-operator imaging) or the group size :math:`|G|` (EI, where
    the exact necessary bound :math:`\max_j c_j/s_j` of Tachella et al. 2023 is at least this).

    Example:
        >>> from selfinv.theory import counting_bound
        >>> counting_bound(256, 16), counting_bound(10, 3)
        (16, 4)
    """
    n, G = _positive_int(n, "n"), _positive_int(G, "G")
    return -(-n // G)


def multi_operator_bound(n: int, G: int, k: int) -> int:
    r"""The sufficient count of multi-operator imaging: the smallest integer :math:`m > k + n/G`.

    For almost every family of G operators with m measurements each, a signal set of (box-counting)
    dimension k is identifiable from the measurements alone when :math:`m > k + n/G` (Tachella, Chen &
    Davies, NeurIPS 2022 and JMLR 2023). Compare :func:`counting_bound`, the necessary :math:`m \ge n/G`.

    Example:
        >>> from selfinv.theory import multi_operator_bound
        >>> multi_operator_bound(784, 40, 12)       # MNIST-like: n = 784, G = 40, k = 12
        32
    """
    n, G = _positive_int(n, "n"), _positive_int(G, "G")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"multi_operator_bound: k must be an int >= 0, got {k!r}")
    return (k * G + n) // G + 1


def _positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


# ---------------------------------------------------------------------- the averaged normal operator
def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _is_sampler(obj) -> bool:
    return not isinstance(obj, LinearOperator) and callable(obj) and hasattr(obj, "sample")


def _family(physics, n_operators, generator) -> list[LinearOperator]:
    if _is_sampler(physics):
        if n_operators is None:
            raise ValueError("rank_condition: pass n_operators to draw operators from a sampler")
        ops = [physics(_positive_int(n_operators, "n_operators"), generator)]
    elif n_operators is not None:
        raise ValueError("rank_condition: n_operators is only for samplers; a list or an operator fixes the family")
    elif isinstance(physics, LinearOperator):
        ops = [physics]
    elif isinstance(physics, (list, tuple)) and physics and all(isinstance(p, LinearOperator) for p in physics):
        ops = list(physics)
    else:
        raise ValueError(
            "physics must be a LinearOperator, a non-empty list of them, or an operator sampler "
            f"(with .sample and __call__), got {type(physics).__name__}"
        )
    return [op.with_noise(None) for op in ops]


def _infer_shape(ops: list[LinearOperator], x_shape) -> tuple[int, ...]:
    if x_shape is not None:
        shape = tuple(int(s) for s in x_shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"x_shape must be the per-sample input shape, e.g. (C, H, W), got {x_shape!r}")
        return shape
    for op in ops:
        for mod in reversed(list(op.modules())):  # the rightmost factor of a composition acts first
            for name in ("in_shape", "img_shape"):
                s = getattr(mod, name, None)
                if isinstance(s, tuple) and s:
                    return tuple(int(v) for v in s)
            size = getattr(mod, "img_size", None)
            if isinstance(size, int) and not isinstance(size, bool):
                return (1, size, size)
            mask = mod._buffers.get("mask") if isinstance(mod, torch.nn.Module) else None
            if isinstance(mask, torch.Tensor) and mask.ndim == 4:
                return (int(mask.shape[1]), int(mask.shape[2]), int(mask.shape[3]))
    raise ValueError(f"cannot infer the input shape of {type(ops[0]).__name__}: pass x_shape=(C, H, W)")


def _device(ops: list[LinearOperator]) -> torch.device:
    """The device of the operators' buffers (CPU when they have none)."""
    for op in ops:
        for t in op.buffers():
            return t.device
    return torch.device("cpu")


def _dtype(ops: list[LinearOperator]) -> torch.dtype:
    kinds = {op.is_complex for op in ops if op.is_complex is not None}
    if len(kinds) > 1:
        raise ValueError("the operators mix real and complex domains")
    return torch.complex128 if kinds == {True} else torch.float64


class _AveragedNormal:
    r"""``V -> mean over (i, g) of T_g^T A_i^H A_i T_g v`` for a block V of shape (k, *x_shape), batched and chunked."""

    def __init__(self, ops, transform, tparams, x_shape, full_group=False):
        self.device = _device(ops)
        self.full_group = full_group  # tparams are transform.elements (every element, uniformly)
        self.ops = [(op, op.batch_size) for op in ops]
        self.transform, self.tparams = transform, tparams
        self.x_shape = x_shape
        self.n = math.prod(x_shape)
        self.n_operators = sum(b or 1 for _, b in self.ops)
        self.group_size = 1 if tparams is None else len(tparams)

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(V)
        k, ng = V.shape[0], self.group_size
        step = max(1, _CHUNK // self.n)
        for op, b in self.ops:
            total = (b or 1) * ng * k
            for start in range(0, total, step):
                t = torch.arange(start, min(total, start + step))
                v, g, s = t % k, (t // k) % ng, t // (k * ng)
                x = V[v]
                if self.transform is not None:
                    x = self.transform.apply(x, self.tparams[g])
                z = (op.select(s) if b else op).normal(x)
                if self.transform is not None:
                    z = self.transform.adjoint(z, self.tparams[g])
                out.index_add_(0, v.to(out.device), z)
        return out / (self.n_operators * ng)


def _measurements(op: LinearOperator, x_shape, dtype) -> list[int]:
    """Measurements per operator sample: non-zeros of an operator's own mask, else the size of A x."""
    b = op.batch_size or 1
    mask = op._buffers.get("mask")
    if isinstance(mask, torch.Tensor) and len(x_shape) == 3 and mask.ndim == 4:
        full = torch.broadcast_to(mask != 0, (mask.shape[0], *x_shape))
        counts = full.flatten(1).sum(1).tolist()
        return counts * b if len(counts) == 1 else counts
    y = (op.select(0) if op.batch_size else op).A(torch.zeros(1, *x_shape, dtype=dtype, device=_device([op])))
    return [y[0].numel()] * b


# ---------------------------------------------------------------------- rank algorithms
def _count(eig: torch.Tensor, n: int, tol: float | None) -> tuple[int, float, float]:
    lmax = float(eig.max()) if eig.numel() else 0.0
    lmax = max(lmax, 0.0)
    t = n * _EPS * lmax if tol is None else float(tol)
    return int((eig > t).sum()), t, lmax


def _dense(N: _AveragedNormal, dtype, tol):
    n, shape = N.n, N.x_shape
    basis = torch.eye(n, dtype=dtype, device=N.device).reshape(n, *shape)
    if N.transform is not None and N.transform.exact:
        # T_g is a permutation: build M = mean_i A_i^H A_i once, then average the permuted copies
        # T_g^T M T_g = M[q_g][:, q_g] with q_g the inverse permutation (index gathers, no operator calls)
        M = _AveragedNormal([op for op, _ in N.ops], None, None, shape)(basis).reshape(n, n).mT
        index = torch.arange(n, dtype=torch.float64, device=N.device).reshape(1, *shape)
        out = torch.zeros_like(M)
        step = max(1, _CHUNK // (n * n))
        for start in range(0, N.group_size, step):
            p = N.tparams[start : start + step]
            q = N.transform.inverse(index.expand(len(p), *shape), p).reshape(len(p), n).long()
            out += M[q[:, :, None], q[:, None, :]].sum(0)
        M = out / N.group_size
    else:
        M = N(basis).reshape(n, n).mT  # column j = N e_j
    eig = torch.linalg.eigvalsh((M + M.mH) / 2)
    return (*_count(eig, n, tol), "eigvalsh")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Every probe agrees with the structured prediction to STRUCTURE_RTOL (relative to its norm)."""
    err = (a - b).flatten(1).norm(dim=1)
    ref = a.flatten(1).norm(dim=1)
    return bool((err <= STRUCTURE_RTOL * ref).all()) and bool(torch.isfinite(err).all())


def _structure(N: _AveragedNormal, dtype, generator, n_probes: int = 2):
    """Detect and certify with random probes: ("pixel", d) for N = diag(d), ("fourier", K) for a
    translation-invariant N with kernels K[c] = N delta_c (C_in, C_out, H, W), else (None, None)."""
    shape, dev = N.x_shape, N.device
    z = _random.randn((n_probes, *shape), generator=generator, dtype=dtype, device=dev)
    out = N(torch.cat([torch.ones(1, *shape, dtype=dtype, device=dev), z]))
    d, Nz = out[0], out[1:]
    if _close(Nz, d * z):
        return "pixel", d
    if len(shape) == 3:
        c = shape[0]
        imp = torch.zeros(c, *shape, dtype=dtype, device=dev)
        imp[torch.arange(c), torch.arange(c), 0, 0] = 1
        kernel = N(imp)
        lam = torch.fft.fft2(kernel).permute(2, 3, 1, 0)  # (H, W, C_out, C_in)
        pred = torch.fft.ifft2(torch.einsum("hwoi,pihw->pohw", lam, torch.fft.fft2(z)))
        if _close(Nz, pred if dtype.is_complex else pred.real):
            return "fourier", kernel
    return None, None


def _fourier_rank(kernel: torch.Tensor, n: int, tol):
    lam = torch.fft.fft2(kernel).permute(2, 3, 1, 0)  # per-frequency (C_out, C_in) blocks
    eig = torch.linalg.eigvalsh((lam + lam.mH) / 2)
    return (*_count(eig.flatten(), n, tol), "fourier-diagonal")


def _affine(perm: torch.Tensor, h: int, w: int) -> bool:
    """Whether every index map perm (b, H, W) (output pixel -> source flat index) is affine modulo (H, W)."""
    sy, sx = perm // w, perm % w
    i = torch.arange(h, device=perm.device)[:, None]
    j = torch.arange(w, device=perm.device)[None, :]
    for s, m in ((sy, h), (sx, w)):
        s0 = s[:, :1, :1]
        di = (s[:, 1:2, :1] - s0) if h > 1 else torch.zeros_like(s0)
        dj = (s[:, :1, 1:2] - s0) if w > 1 else torch.zeros_like(s0)
        if not bool((((s0 + di * i + dj * j) - s) % m == 0).all()):
            return False
    return True


def _permuted_average(N: _AveragedNormal, kind: str, data: torch.Tensor) -> torch.Tensor | None:
    r"""The structure of :math:`\mathbb{E}_g P_g^\top N_0 P_g` for permutations :math:`P_g`, without operator calls.

    pixel: :math:`P_g^\top \operatorname{diag}(d) P_g = \operatorname{diag}(P_g^\top d)` for any permutation.
    fourier: for affine lattice maps (shifts, flips, 90° rotations) the average stays translation
    invariant; its kernel :math:`\mathbb{E}_g P_g^\top N_0 \delta_{p_g}` uses :math:`N_0\delta_{p_g}` = the
    kernel of :math:`N_0` rolled to :math:`p_g`, the pixel where :math:`P_g` sends the impulse. Returns None
    when a map is not affine. Over a whole product group the average is nested, factor by factor (the
    last factor innermost), so the cost is the sum of the factors' sizes, not their product; a shift
    factor costs one FFT (pixel) or nothing (a translation-invariant operator commutes with shifts).
    """
    images = data[None] if kind == "pixel" else data  # (k, *shape)
    T = N.transform
    if N.full_group and isinstance(T, Product):
        stages = [(t, t.elements(N.x_shape[-2:])) for t in reversed(T.transforms)]
    else:
        stages = [(T, N.tparams)]
    for t, params in stages:
        images = _average_stage(t, params.to(N.device), kind, images)
        if images is None:
            return None
    return images[0] if kind == "pixel" else images


def _average_stage(T: Transform, P: torch.Tensor, kind: str, images: torch.Tensor) -> torch.Tensor | None:
    k, shape = images.shape[0], images.shape[1:]
    h, w = shape[-2:]
    if isinstance(T, Shift):
        if kind == "fourier":
            return images
        # mean_g d(p + s_g): a circular cross-correlation with the histogram of the shifts
        hist = torch.zeros(h, w, dtype=torch.float64, device=images.device)
        hist.index_put_((P[:, 0].long() % h, P[:, 1].long() % w), torch.ones(len(P), dtype=torch.float64, device=images.device), accumulate=True)
        out = torch.fft.ifft2(torch.fft.fft2(images) * torch.fft.fft2(hist / len(P)).conj())
        return out if images.is_complex() else out.real
    out = torch.zeros_like(images)
    index = torch.arange(h * w, dtype=torch.float64, device=images.device).reshape(1, 1, h, w)
    step = max(1, _CHUNK // (images[0].numel() * k))
    for start in range(0, len(P), step):
        p = P[start : start + step]
        b = len(p)
        x = images[None].expand(b, *images.shape).reshape(b * k, *shape)
        if kind == "fourier":
            perm = T.apply(index.expand(b, 1, h, w), p)[:, 0].long()
            if not _affine(perm, h, w):
                return None
            pos = perm.flatten(1).argmin(1)  # where the impulse at pixel 0 goes
            roll = torch.stack([pos // w, pos % w], dim=1).to(torch.float64).repeat_interleave(k, 0)
            x = _SHIFT.apply(x, roll)
        out += T.adjoint(x, p.repeat_interleave(k, 0)).reshape(b, k, *shape).sum(0)
    return out / len(P)


def _matrix_free(N: _AveragedNormal, dtype, tol, generator, block: int = 8):
    n, shape = N.n, N.x_shape
    if N.transform is not None and N.transform.exact and len(shape) == 3:
        # permutation transforms: find the structure of E_i A_i^H A_i (no |G| factor), then average by gathers
        base = _AveragedNormal([op for op, _ in N.ops], None, None, shape)
        kind, data = _structure(base, dtype, generator)
        if kind is not None:
            avg = _permuted_average(N, kind, data)
            if avg is not None and kind == "pixel":
                return (*_count(avg.real.flatten(), n, tol), "pixel-diagonal")
            if avg is not None:
                return _fourier_rank(avg, n, tol)
    kind, data = _structure(N, dtype, generator)
    if kind == "pixel":  # N = diag(d): masks, and masks under pixel permutations
        return (*_count(data.real.flatten(), n, tol), "pixel-diagonal")
    if kind == "fourier":  # translation invariant: blur, MRI, anything averaged over all shifts
        return _fourier_rank(data, n, tol)
    return _randomized(N, dtype, tol, generator, block)


def _randomized(N: _AveragedNormal, dtype, tol, generator, block: int):
    r"""Adaptive randomized range finder (Halko, Martinsson & Tropp, SIAM Review 2011, Alg. 4.2) with deflation.

    Random blocks :math:`\Omega` are applied, projected off the basis Q found so far and orthonormalised
    into it, until a whole block leaves residuals below :math:`\epsilon / (10\sqrt{2/\pi})`; then
    :math:`\|(I - QQ^H) N\| \le \epsilon` with probability at least :math:`1 - 10^{-\text{block}}` (HMT
    Lemma 4.1). The rank is the number of Ritz values of :math:`Q^H N Q` above the tolerance.
    """
    n, shape = N.n, N.x_shape

    def apply(Q):  # Q: (n, k) -> N Q (n, k)
        return N(Q.mT.reshape(-1, *shape)).reshape(-1, n).mT

    def randn(k):
        return _random.randn((n, k), generator=generator, dtype=dtype, device=N.device)

    # estimate lambda_max by a few block power iterations (it sets the tolerance)
    Y = apply(randn(block))
    for _ in range(6):
        Y = apply(torch.linalg.qr(Y).Q)
    lam_est = float(torch.linalg.matrix_norm(Y, ord=2)) if Y.abs().max() > 0 else 0.0
    eps_abs = n * _EPS * lam_est if tol is None else float(tol)
    stop = eps_abs / (10 * math.sqrt(2 / math.pi))
    Q = torch.zeros(n, 0, dtype=dtype, device=N.device)
    while Q.shape[1] < n:
        Y = apply(randn(block))
        for _ in range(2):  # project twice (re-orthogonalisation)
            Y = Y - Q @ (Q.mH @ Y)
        if float(Y.norm(dim=0).max()) <= stop:
            break
        U, S, _ = torch.linalg.svd(Y, full_matrices=False)
        U = U[:, S > stop]
        U = U - Q @ (Q.mH @ U)
        Q = torch.cat([Q, torch.linalg.qr(U).Q], dim=1)[:, :n]
    if Q.shape[1] == 0:
        return 0, eps_abs, lam_est, "randomized-range-finder"
    T = Q.mH @ apply(Q)
    eig = torch.linalg.eigvalsh((T + T.mH) / 2)
    return (*_count(eig, n, tol), "randomized-range-finder")


# ---------------------------------------------------------------------- public functions
def rank_condition(
    physics,
    transforms: Transform | None = None,
    n_operators: int | None = None,
    generator: torch.Generator | None = None,
    method: str = "auto",
    tol: float | None = None,
    *,
    n_transforms: int | None = None,
    x_shape: tuple[int, ...] | None = None,
) -> RankResult:
    r"""The necessary identifiability condition :math:`\operatorname{rank}(\mathbb{E}_{i,g} T_g^\top A_i^\top A_i T_g) = n`.

    Args:
        physics: one operator, a list of operators (the family :math:`A_1..A_G`), or an operator sampler
            (``selfinv.physics.samplers``: ``sampler(n_operators, generator)``). An operator with
            per-sample parameters (``batch_size`` B) counts as the B operators it holds.
        transforms: a :class:`~selfinv.transforms.Transform` for equivariant imaging (combined with every
            operator), or None.
        n_operators: how many operators to draw from a sampler.
        generator: draws the operators, the sampled transforms and the matrix-free probes; None uses a
            fresh generator seeded with 0, so results are reproducible.
        method: ``"dense"``, ``"matrix-free"`` or ``"auto"`` (dense when n <= ``DENSE_MAX_N`` = 1024 and
            its cost stays under ``DENSE_MAX_CALLS`` operator applications and ``DENSE_MAX_GATHERS``).
        tol: absolute eigenvalue threshold; default :math:`n\,\varepsilon\,\lambda_{\max}` (float64
            :math:`\varepsilon`, as ``numpy.linalg.matrix_rank``).
        n_transforms: use a random sample of this many transforms instead of all of
            ``transforms.elements`` (needed for continuous families).
        x_shape: per-sample input shape (C, H, W); inferred from masks, ``in_shape`` or ``img_size``.

    **Dense** applies the averaged normal operator to the n basis images (batched), symmetrises the
    n × n matrix and counts its ``eigvalsh`` eigenvalues above ``tol``. Cost: n · G operator
    applications and :math:`O(n^3)`; float64 (complex128 for complex operators). For exact
    (permutation) transforms the matrix :math:`\mathbb{E}_i A_i^\top A_i` is built once and its permuted
    copies :math:`T_g^\top M T_g` are averaged by index gathers (n · operators applications).

    **Matrix-free** applies the operator only to a few images and certifies a structure with random
    probes :math:`z` (:math:`\|Nz - Sz\| \le 10^{-10}\|Nz\|`; a different linear operator passes this with
    probability 0):

    * *pixel-diagonal* (:math:`N = \operatorname{diag}(N\mathbf 1)`: masks, also under shifts, flips and
      90° rotations): the rank is the number of pixels with :math:`d_i > ` tol, i.e. the pixels some
      operator observes. Exact.
    * *fourier-diagonal* (:math:`N` commutes with translations: blur, MRI, any operator averaged over
      all shifts; MRI with rotations or flips too): eigenvalues are the per-frequency C × C blocks of
      the DFT of :math:`N\delta_c`. Exact.
    * otherwise an adaptive randomized range finder (Halko, Martinsson & Tropp 2011, Alg. 4.2) with
      re-orthogonalised deflation, stopped when a block of 8 fresh probes has residuals below
      tol/8 (so :math:`\|(I-QQ^H)N\| \le` tol with probability :math:`\ge 1 - 10^{-8}`), then Rayleigh–Ritz
      on :math:`Q^H N Q`. Costs about 2 · rank + 64 applications of N and :math:`O(n\,\mathrm{rank})` memory,
      so it is practical for n up to a few 10⁴ with moderate rank; it can disagree with the dense count
      only for eigenvalues within a small factor of tol.

    For exact (permutation) transforms the structure is first sought in :math:`\mathbb{E}_i A_i^\top A_i`
    alone (C + 3 operator applications) and then averaged over the group by index gathers, nested
    factor by factor over a whole product group (a shift factor costs one FFT, or nothing for a
    translation-invariant operator): 128 × 128 MRI or inpainting with all 16384 shifts (× 4 rotations)
    takes well under a second. Otherwise each application of N costs G = operators × transforms
    operator applications.

    Example:
        >>> import torch
        >>> from selfinv.physics import MRI
        >>> from selfinv.transforms import Rotate, Shift
        >>> from selfinv.theory import rank_condition
        >>> mask = torch.zeros(16, 16); mask[:, 6:10] = 1                       # 4 central k-space columns
        >>> [rank_condition(MRI(mask), T).rank for T in (None, Shift(), Rotate(n=4))]
        [64, 64, 135]
        >>> print(rank_condition(MRI(mask), Rotate(n=4), method="matrix-free"))  # doctest: +ELLIPSIS
        rank 135/256 (rank-deficient by 121: the condition fails) over 1 operator x 4 transforms Rotate(n=4) [matrix-free, fourier-diagonal, ...
    """
    if method not in ("auto", "dense", "matrix-free"):
        raise ValueError(f"rank_condition: method must be 'auto', 'dense' or 'matrix-free', got {method!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"rank_condition: tol must be a finite number >= 0 or None, got {tol!r}")
    if transforms is not None and not isinstance(transforms, Transform):
        raise ValueError(f"rank_condition: transforms must be a selfinv.transforms.Transform or None, got {type(transforms).__name__}")
    gen = _generator(generator)
    ops = _family(physics, n_operators, gen)
    shape = _infer_shape(ops, x_shape)
    dtype = _dtype(ops)
    tparams = None
    if transforms is not None:
        if len(shape) != 3:
            raise ValueError(f"rank_condition: transforms need images, x_shape (C, H, W), got {shape}")
        if n_transforms is None:
            tparams = transforms.elements(shape[-2:])
        else:
            tparams = transforms.sample(_positive_int(n_transforms, "n_transforms"), gen, img_size=shape[-2:])
        tparams = tparams.cpu()
    N = _AveragedNormal(ops, transforms, tparams, shape, full_group=n_transforms is None)
    n = N.n
    if method == "auto":
        permuting = transforms is not None and transforms.exact
        calls = n * N.n_operators * (1 if permuting else N.group_size)
        gathers = n * n * N.group_size if permuting else 0
        method = "dense" if n <= DENSE_MAX_N and calls <= DENSE_MAX_CALLS and gathers <= DENSE_MAX_GATHERS else "matrix-free"
    with torch.no_grad():
        if method == "dense":
            rank, t, lmax, algorithm = _dense(N, dtype, tol)
        else:
            rank, t, lmax, algorithm = _matrix_free(N, dtype, tol, gen)
        ms = [v for op in ops for v in _measurements(op, shape, dtype)]
    G = N.n_operators * N.group_size
    return RankResult(
        rank=rank,
        n=n,
        holds=rank == n,
        method=method,
        algorithm=algorithm,
        tol=t,
        lambda_max=lmax,
        n_operators=N.n_operators,
        group_size=N.group_size,
        m=max(ms),
        bound=counting_bound(n, G),
        bound_holds=sum(ms) * N.group_size >= n,
        transform=None if transforms is None else repr(transforms),
    )


def is_equivariant(
    physics: LinearOperator,
    transform: Transform,
    generator: torch.Generator | None = None,
    n_tests: int | None = None,
    tol: float = 1e-5,
    *,
    n_probes: int = 2,
    x_shape: tuple[int, ...] | None = None,
) -> EquivariantResult:
    r"""Test whether :math:`A T_g = \tilde T_g A` for some linear :math:`\tilde T_g`, for every tested g.

    Such a :math:`\tilde T_g` exists iff :math:`T_g` maps the nullspace of :math:`A` into itself, i.e.
    :math:`A T_g (I - A^\dagger A) = 0` (then :math:`\tilde T_g = A T_g A^\dagger`). For random probes
    :math:`z` and :math:`w = (I - A^\dagger A) z` the test computes
    :math:`\|A T_g w\| / (\|A\|_2 \|w\|)` (:math:`\|A\|_2` by power iteration); a non-zero
    :math:`A T_g (I - A^\dagger A)` gives a non-zero residual with probability 1. Equivariant operators
    gain nothing from the transforms (the rank condition stays at :math:`\operatorname{rank}(A)`):
    MRI and blur are shift-equivariant (:math:`\tilde T_g` a k-space modulation, resp. the shift
    itself), inpainting with a random mask is not.

    Args:
        physics: the operator (per-sample operators are all tested; the result is their worst case).
        transform: the transforms :math:`T_g`.
        generator: draws the probes (and sampled elements); None uses a generator seeded with 0.
        n_tests: None tests every element of a finite family with at most ``MAX_EXHAUSTIVE`` = 1024
            elements, else a sample of ``N_SAMPLED`` = 64 (also for continuous families); an int tests
            that many sampled elements.
        tol: threshold on the relative residual. It must exceed the accuracy of ``A_dagger`` (exact
            pseudo-inverses give ~1e-15; ``Blur`` drops Fourier coefficients below ``rtol`` = 1e-6).
        n_probes: random probes per element.
        x_shape: per-sample input shape (C, H, W) when it cannot be inferred.

    Example:
        >>> import torch
        >>> from selfinv.physics import Blur, MRI
        >>> from selfinv.physics.blur import gaussian_kernel
        >>> from selfinv.transforms import Rotate, Shift
        >>> from selfinv.theory import is_equivariant
        >>> mask = torch.zeros(8, 8); mask[:, ::3] = 1
        >>> is_equivariant(MRI(mask), Shift()).equivariant, is_equivariant(MRI(mask), Rotate(n=4)).equivariant
        (True, False)
        >>> print(is_equivariant(Blur(gaussian_kernel(1.0)), Shift(), x_shape=(1, 8, 8)))  # doctest: +ELLIPSIS
        Blur is equivariant to Shift() (these transforms add no information): max relative residual ... over all 64 group elements
    """
    if not isinstance(physics, LinearOperator):
        raise ValueError(f"is_equivariant: physics must be a LinearOperator, got {type(physics).__name__}")
    if not isinstance(transform, Transform):
        raise ValueError(f"is_equivariant: transform must be a selfinv.transforms.Transform, got {type(transform).__name__}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"is_equivariant: tol must be a finite number >= 0, got {tol!r}")
    n_probes = _positive_int(n_probes, "n_probes")
    gen = _generator(generator)
    op = physics.with_noise(None)
    shape = _infer_shape([op], x_shape)
    if len(shape) != 3:
        raise ValueError(f"is_equivariant: transforms need images, x_shape (C, H, W), got {shape}")
    dtype, dev = _dtype([op]), _device([op])
    params = None
    if n_tests is None:
        try:
            params = transform.elements(shape[-2:])
        except ValueError:  # a continuous family
            pass
        if params is not None and len(params) > MAX_EXHAUSTIVE:
            params = None
    exhaustive = params is not None
    if params is None:
        k = N_SAMPLED if n_tests is None else _positive_int(n_tests, "n_tests")
        params = transform.sample(k, gen, img_size=shape[-2:])
    params = params.cpu()
    b = op.batch_size
    nb, ng, n = b or 1, len(params), math.prod(shape)
    with torch.no_grad():
        # spectral norm of every operator sample by power iteration on A^H A
        v = _random.randn((nb, *shape), generator=gen, dtype=dtype, device=dev)
        for _ in range(30):
            v = v / v.flatten(1).norm(dim=1).clamp_min(1e-300).reshape(-1, *[1] * len(shape))
            v = op.normal(v)
        norms = v.flatten(1).norm(dim=1).sqrt()  # ||A^H A v|| for unit v -> sigma_max^2
        total = nb * ng * n_probes
        res = torch.zeros(total, dtype=torch.float64)
        step = max(1, _CHUNK // n)
        for start in range(0, total, step):
            t = torch.arange(start, min(total, start + step))
            g, s = (t // n_probes) % ng, t // (n_probes * ng)
            opc = op.select(s) if b else op
            z = _random.randn((len(t), *shape), generator=gen, dtype=dtype, device=dev)
            w = z - opc.A_dagger(opc.A(z), tol=1e-12, max_iter=1000)
            r = opc.A(transform.apply(w, params[g])).flatten(1).norm(dim=1)
            wn = w.flatten(1).norm(dim=1)
            znorm = z.flatten(1).norm(dim=1)
            ok = (wn > 1e-12 * znorm) & (norms[s] > 0)
            res[t] = torch.where(ok, r / (norms[s] * wn).clamp_min(1e-300), torch.zeros_like(r)).to("cpu", torch.float64)
    worst = int(res.argmax())
    residual = float(res[worst])
    return EquivariantResult(
        equivariant=residual <= tol,
        residual=residual,
        tol=float(tol),
        n_tested=ng,
        exhaustive=exhaustive,
        worst=tuple(float(p) for p in params[(worst // n_probes) % ng]),
        transform=repr(transform),
        operator=type(physics).__name__,
    )
