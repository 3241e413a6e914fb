r"""The non-uniform discrete Fourier transform of images, through FINUFFT, as differentiable torch functions.

:func:`nudft` evaluates, for images :math:`x` of (H, W) pixels and points :math:`\omega_k = (\omega_{k,r}, \omega_{k,c})`
in radians per pixel,

.. math::
    (F x)_k = \frac{1}{\sqrt{HW}} \sum_{r, c} x_{r c}\, e^{-i(\omega_{k,r} (r - \lfloor H/2 \rfloor) + \omega_{k,c} (c - \lfloor W/2 \rfloor))},

normalised so that at the :math:`HW` grid frequencies :math:`2\pi j / H` it is the orthonormal centred DFT
:func:`~selfinv.physics.fft2c`; :func:`nudft_adjoint` is :math:`F^H`. FINUFFT (Barnett, Magland & af Klinteberg,
SIAM J. Sci. Comput. 2019) computes both to a requested relative accuracy: 1e-12 in double precision (the
adjoint pair is then exact to rounding for every test here) and 1e-6 in single precision, 10–20× faster than
torchkbnufft's table interpolation on these CPUs at 100× its accuracy (BENCHMARKS.md, "Radio interferometry").
Each function's backward is the other one, so gradients of any order flow through both.

Points are (P, 2, K) with P = 1 (one set for the whole batch: one FINUFFT call with B·C transforms) or P = B
(a set per sample: one call per sample, as FINUFFT plans one point set at a time). FINUFFT runs on the CPU
with ``torch.get_num_threads()`` threads (at most one per transform: a single small transform is 10× slower on two
threads than on one); tensors on another device are computed there and moved back.
"""

from __future__ import annotations

import finufft
import numpy as np
import torch

__all__ = ["nudft", "nudft_adjoint"]


def _eps(dtype: torch.dtype) -> float:
    return 1e-12 if dtype == torch.complex128 else 1e-6


def _threads(n_transforms: int) -> int:
    """FINUFFT threads: torch's, but at most one per transform (one transform on several threads is 10× slower)."""
    return max(1, min(torch.get_num_threads(), n_transforms))


def _numpy_points(points: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    return points.detach().to("cpu", real).contiguous().numpy()


def _forward(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) complex → (B, C, K)."""
    b, c, h, w = x.shape
    arr = x.detach().to("cpu").contiguous().numpy()
    pts = _numpy_points(points, x.dtype)
    kw = {"eps": _eps(x.dtype), "isign": -1, "modeord": 0, "nthreads": _threads(b * c if pts.shape[0] == 1 else c)}
    if pts.shape[0] == 1:
        out = finufft.nufft2d2(pts[0, 0], pts[0, 1], arr.reshape(b * c, h, w), **kw).reshape(b, c, -1)
    else:
        out = np.stack([finufft.nufft2d2(pts[i, 0], pts[i, 1], arr[i], **kw) for i in range(b)])
    return torch.from_numpy(out / np.sqrt(h * w).astype(out.real.dtype)).to(x.device)


def _adjoint(y: torch.Tensor, points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, K) complex → (B, C, H, W)."""
    b, c, k = y.shape
    h, w = size
    arr = y.detach().to("cpu").contiguous().numpy()
    pts = _numpy_points(points, y.dtype)
    kw = {"eps": _eps(y.dtype), "isign": 1, "modeord": 0, "nthreads": _threads(b * c if pts.shape[0] == 1 else c)}
    if pts.shape[0] == 1:
        out = finufft.nufft2d1(pts[0, 0], pts[0, 1], arr.reshape(b * c, k), (h, w), **kw).reshape(b, c, h, w)
    else:
        out = np.stack([finufft.nufft2d1(pts[i, 0], pts[i, 1], arr[i], (h, w), **kw) for i in range(b)])
    return torch.from_numpy(out / np.sqrt(h * w).astype(out.real.dtype)).to(y.device)


class _NUDFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, points):
        ctx.save_for_backward(points)
        ctx.size = tuple(x.shape[-2:])
        return _forward(x, points)

    @staticmethod
    def backward(ctx, grad):
        (points,) = ctx.saved_tensors
        return _NUDFTAdjoint.apply(grad, points, ctx.size), None


class _NUDFTAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, points, size):
        ctx.save_for_backward(points)
        return _adjoint(y, points, size)

    @staticmethod
    def backward(ctx, grad):
        (points,) = ctx.saved_tensors
        return _NUDFT.apply(grad, points), None, None


def nudft(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """:math:`F x`: complex images (B, C, H, W) at points (1|B, 2, K) (row, column frequency) → (B, C, K)."""
    return _NUDFT.apply(x, points)


def nudft_adjoint(y: torch.Tensor, points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:math:`F^H y`: (B, C, K) complex coefficients at points (1|B, 2, K) → complex images (B, C, H, W)."""
    return _NUDFTAdjoint.apply(y, points, tuple(size))
