r"""Compressed sensing: :math:`m` random projections :math:`y = A\,\mathrm{vec}(x)` of an image.

Two families of random :math:`A \in \mathbb{R}^{m \times n}` (:math:`n` the number of pixels):

* ``kind="gaussian"``: i.i.d. :math:`A_{ij} \sim \mathcal{N}(0, 1/m)`, stored densely (memory
  :math:`O(mn)`, small images only) with its pseudo-inverse computed once by SVD.
* ``kind="structured"``: :math:`A = S\,C\,D` with :math:`D` a diagonal of random signs, :math:`C` the
  orthonormal DCT-II of the flattened signal and :math:`S` a selection of :math:`m` distinct rows.
  Memory :math:`O(n)` and time :math:`O(n \log n)`; the rows are orthonormal, so :math:`A^\dagger = A^T`.

The module also provides :func:`dct` and :func:`idct`, the orthonormal DCT-II and its inverse (the
orthonormal DCT-III) along the last axis, computed with one real FFT (Makhoul's reordering).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from selfinv import _random
from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator
from selfinv.physics.matrix import Matrix

#: the largest m * n accepted for a dense Gaussian matrix (400 MB in float64 while it is built)
MAX_DENSE_ENTRIES = 50_000_000

_KINDS = ("gaussian", "structured")


# ---------------------------------------------------------------------- the orthonormal DCT
def _twiddle(n: int, like: torch.Tensor) -> torch.Tensor:
    r""":math:`w_k = s_k e^{-i\pi k / (2n)}` for :math:`k = 0..\lfloor n/2 \rfloor`, with :math:`s_0 = \sqrt{1/n}`, else :math:`\sqrt{2/n}`."""
    k = torch.arange(n // 2 + 1, dtype=torch.float64, device=like.device)
    scale = torch.full_like(k, math.sqrt(2.0 / n))
    scale[0] = math.sqrt(1.0 / n)
    w = torch.polar(scale, -math.pi * k / (2 * n))
    return w.to(torch.complex128 if like.dtype == torch.float64 else torch.complex64)


def dct(x: torch.Tensor) -> torch.Tensor:
    r"""Orthonormal DCT-II along the last axis (``scipy.fft.dct(x, type=2, norm="ortho")``).

    .. math:: X_k = s_k \sum_{j=0}^{n-1} x_j \cos\frac{\pi k (2j + 1)}{2n},\qquad
              s_0 = \sqrt{1/n},\ s_{k>0} = \sqrt{2/n}.

    Makhoul's algorithm: reorder :math:`v = (x_0, x_2, x_4, \dots, x_5, x_3, x_1)`, take
    :math:`V = \mathrm{FFT}(v)`; then :math:`X_k = \mathrm{Re}(w_k V_k)` and
    :math:`X_{n-k} = -\mathrm{Im}(w_k V_k)` with :math:`w_k = s_k e^{-i\pi k/(2n)}`, so a real FFT of
    length :math:`n` gives all coefficients (any :math:`n \ge 1`, even or odd). Differentiable.

    Example:
        >>> import torch
        >>> from selfinv.physics.compressed_sensing import dct, idct
        >>> x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        >>> torch.allclose(idct(dct(x)), x)
        True
    """
    if x.is_complex() or not x.is_floating_point():
        raise ValueError(f"dct: x must be a real floating-point tensor, got {x.dtype}")
    n = x.shape[-1]
    v = torch.cat([x[..., 0::2], x[..., 1::2].flip(-1)], dim=-1)
    z = torch.fft.rfft(v, dim=-1) * _twiddle(n, x)
    return torch.cat([z.real, -z.imag[..., 1 : n - n // 2].flip(-1)], dim=-1)


def idct(X: torch.Tensor) -> torch.Tensor:
    r"""Orthonormal DCT-III along the last axis: the inverse and the transpose of :func:`dct`.

    Inverts the steps of :func:`dct`: :math:`V_k = (X_k - i X_{n-k}) / w_k` for
    :math:`k = 0..\lfloor n/2 \rfloor` (with :math:`X_n = 0`), an inverse real FFT, and the inverse
    reordering. Equals ``scipy.fft.dct(X, type=3, norm="ortho")``.
    """
    if X.is_complex() or not X.is_floating_point():
        raise ValueError(f"idct: X must be a real floating-point tensor, got {X.dtype}")
    n = X.shape[-1]
    h = n // 2
    re = X[..., : h + 1]
    im = torch.cat([torch.zeros_like(X[..., :1]), X[..., n - h :].flip(-1)], dim=-1)
    v = torch.fft.irfft(torch.complex(re, -im) / _twiddle(n, X), n=n, dim=-1)
    half = (n + 1) // 2
    even, odd = v[..., :half], v[..., half:].flip(-1)
    if n % 2:
        odd = torch.cat([odd, v.new_zeros(*v.shape[:-1], 1)], dim=-1)
    return torch.stack([even, odd], dim=-1).flatten(-2)[..., :n]


# ---------------------------------------------------------------------- the operator
class CompressedSensing(LinearOperator):
    r"""Random projections :math:`y = A\,\mathrm{vec}(x)`, :math:`A \in \mathbb{R}^{m\times n}`, :math:`n = \prod` ``img_shape``.

    ``kind="gaussian"``: :math:`A_{ij} \sim \mathcal{N}(0, 1/m)` i.i.d. (so
    :math:`\mathbb{E}\|Ax\|^2 = \|x\|^2`), stored as the buffer ``matrix`` (m, n), with the closed-form
    pseudo-inverse :math:`A^\dagger = V S^+ U^T` (buffer ``pinv``, (n, m)) from one SVD at
    construction, as in :class:`~selfinv.physics.matrix.Matrix`. Any :math:`m \ge 1` (also
    :math:`m > n`); refused when :math:`mn` exceeds ``MAX_DENSE_ENTRIES``.

    ``kind="structured"``: :math:`A = S\,C\,D` with :math:`D = \operatorname{diag}(d)`,
    :math:`d_j = \pm 1` (buffer ``signs``, (n,)), :math:`C` the orthonormal DCT-II of length :math:`n`
    (:func:`dct`) and :math:`S` keeping the coefficients at ``indices`` (buffer, (m,), sorted, distinct),
    :math:`1 \le m \le n`. Since :math:`C` is orthogonal, :math:`A A^T = I_m`: :math:`A^T = D C^T S^T`
    and :math:`A^\dagger = A^T` exactly, :math:`A^T A = D C^T \operatorname{diag}(1_{\text{indices}}) C D`.
    :math:`O(n \log n)` time and :math:`O(n)` memory, for images of any size.

    Both kinds are exact pseudo-inverses (``exact_dagger = True``). The random draws come from
    ``generator`` (the global RNG when ``None``): the same seed gives the same operator, and in either
    dtype the same draws (made in float64, then rounded to ``dtype``).

    Args:
        m: number of measurements.
        img_shape: per-sample shape of x, e.g. (C, H, W); x is (B, *img_shape) and y is (B, m).
        kind: ``"gaussian"`` or ``"structured"``.
        generator: ``torch.Generator`` for the random matrix, signs and rows.
        noise: noise model on y, or ``None``.
        dtype: dtype of the stored buffers, ``torch.float32`` or ``torch.float64`` (inputs of either
            dtype are accepted; the buffers are cast to the input's dtype at call time).

    Example:
        >>> import torch
        >>> from selfinv.physics.compressed_sensing import CompressedSensing
        >>> g = torch.Generator().manual_seed(0)
        >>> op = CompressedSensing(64, (1, 16, 16), kind="structured", generator=g)
        >>> x = torch.rand(2, 1, 16, 16, generator=g)
        >>> y = op.A(x)
        >>> y.shape
        torch.Size([2, 64])
        >>> torch.allclose(op.A(op.A_dagger(y)), y, atol=1e-5)    # A A^T = I
        True
    """

    exact_dagger = True

    def __init__(
        self,
        m: int,
        img_shape: int | Sequence[int],
        kind: str = "gaussian",
        generator: torch.Generator | None = None,
        noise: NoiseModel | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(noise=noise)
        self.img_shape = _shape(img_shape)
        n = math.prod(self.img_shape)
        if kind not in _KINDS:
            raise ValueError(f"CompressedSensing: kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
        if isinstance(m, bool) or not isinstance(m, numbers.Integral):
            raise ValueError(f"CompressedSensing: m must be an int, got {type(m).__name__}")
        m = int(m)
        if m < 1:
            raise ValueError(f"CompressedSensing: m must be >= 1, got {m}")
        if kind == "structured" and m > n:
            raise ValueError(f"CompressedSensing: m must be <= n = {n} for kind='structured', got m = {m}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"CompressedSensing: dtype must be torch.float32 or torch.float64, got {dtype}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(
                f"CompressedSensing: generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.m, self.n, self.kind = m, n, kind
        dev = generator.device if generator is not None else torch.device("cpu")

        if kind == "gaussian":
            if m * n > MAX_DENSE_ENTRIES:
                raise ValueError(
                    f"CompressedSensing: a dense Gaussian matrix of {m} x {n} = {m * n:.3g} entries exceeds "
                    f"{MAX_DENSE_ENTRIES:.0e}; use kind='structured' for large images"
                )
            a = (_random.randn((m, n), generator=generator, dtype=torch.float64, device=dev) / math.sqrt(m)).to(dtype)
            # the pseudo-inverse of the stored (rounded) matrix, by SVD in float64 and kept in float64, so
            # that A A† A = A holds to float64 rounding even when the matrix is stored in float32
            dense = Matrix(a.cpu().to(torch.float64))
            self.register_buffer("matrix", a)
            self.register_buffer("pinv", dense.pinv[0].to(device=dev))
        else:
            u = _random.rand((n,), generator=generator, dtype=torch.float64, device=dev)
            signs = torch.where(u < 0.5, -1.0, 1.0).to(dtype)
            order = _random.rand((n,), generator=generator, dtype=torch.float64, device=dev).argsort()
            self.register_buffer("signs", signs)
            self.register_buffer("indices", order[:m].sort().values)

    @property
    def x_shape(self) -> tuple[int, ...]:
        """``img_shape``."""
        return self.img_shape

    # ------------------------------------------------------------------ hooks
    def _buf(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return getattr(self, name).to(device=like.device, dtype=like.dtype)

    def _A(self, x):
        x = x.reshape(x.shape[0], self.n)
        if self.kind == "gaussian":
            return x @ self._buf("matrix", x).T
        return dct(x * self._buf("signs", x))[:, self.indices.to(x.device)]

    def _A_adjoint(self, y):
        if self.kind == "gaussian":
            x = y @ self._buf("matrix", y)
        else:
            c = y.new_zeros(y.shape[0], self.n).index_copy(1, self.indices.to(y.device), y)
            x = idct(c) * self._buf("signs", y)
        return x.reshape(y.shape[0], *self.img_shape)

    def _A_dagger(self, y, tol, max_iter):
        if self.kind == "gaussian":
            return (y @ self._buf("pinv", y).T).reshape(y.shape[0], *self.img_shape)
        return self._A_adjoint(y)

    def _normal(self, x):
        if self.kind == "gaussian":
            return self._A_adjoint(self._A(x))
        flat = x.reshape(x.shape[0], self.n)
        keep = torch.zeros(self.n, dtype=torch.bool, device=x.device)
        keep[self.indices.to(x.device)] = True
        d = self._buf("signs", x)
        c = dct(flat * d)
        return (idct(torch.where(keep, c, torch.zeros_like(c))) * d).reshape(x.shape)

    def _check_x(self, x):
        if tuple(x.shape[1:]) != self.img_shape:
            raise self._shape_error("x", x, f"(B, {', '.join(map(str, self.img_shape))})")

    def _check_y(self, y):
        if y.ndim != 2 or y.shape[1] != self.m:
            raise self._shape_error("y", y, f"(B, {self.m})")

    def extra_repr(self) -> str:
        return f"m={self.m}, img_shape={self.img_shape}, kind={self.kind!r}"


def _shape(img_shape: int | Sequence[int]) -> tuple[int, ...]:
    bad = ValueError(f"CompressedSensing: img_shape must be a tuple of positive ints, got {img_shape!r}")
    if isinstance(img_shape, numbers.Integral) and not isinstance(img_shape, bool):
        img_shape = (img_shape,)
    if not isinstance(img_shape, Sequence) or not img_shape:
        raise bad
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in img_shape):
        raise bad
    return tuple(int(s) for s in img_shape)
