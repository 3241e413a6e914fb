r"""Single-coil Cartesian MRI: :math:`A = M F` with :math:`F` the orthonormal centred 2-D DFT."""

from __future__ import annotations

import torch

from selfinv.noise import NoiseModel
from selfinv.physics._mask import as_mask, check_against_mask, mask_pinv
from selfinv.physics.base import LinearOperator


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal centred 2-D DFT over the last two axes (k-space centre in the middle of the array)."""
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c` (also its adjoint: the transform is unitary)."""
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(k, norm="ortho"), dim=(-2, -1))


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) complex -> (B, 2C, H, W) real, channels ordered (re_1, im_1, re_2, im_2, ...)."""
    if not x.is_complex():
        raise ValueError(f"complex_to_channels: expected a complex tensor, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"complex_to_channels: expected (B, C, H, W), got {tuple(x.shape)}")
    b, c, h, w = x.shape
    return torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(b, 2 * c, h, w)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2C, H, W) real -> (B, C, H, W) complex; the inverse of :func:`complex_to_channels`."""
    if x.is_complex():
        raise ValueError(f"channels_to_complex: expected a real tensor, got {x.dtype}")
    if x.ndim != 4 or x.shape[1] % 2:
        raise ValueError(f"channels_to_complex: expected (B, 2C, H, W) with an even channel count, got {tuple(x.shape)}")
    b, c2, h, w = x.shape
    return torch.view_as_complex(x.reshape(b, c2 // 2, 2, h, w).permute(0, 1, 3, 4, 2).contiguous())


class MRI(LinearOperator):
    r"""Single-coil Cartesian MRI :math:`y = M \odot F x` on complex images.

    :math:`F` is the orthonormal centred 2-D DFT (:func:`fft2c`), so :math:`A^H y = F^H (M \odot y)`
    and, for a binary mask, :math:`A^\dagger = A^H` exactly. Images and k-space are complex tensors
    (``torch.complex64``/``complex128``) of shape (B, C, H, W); convert to the 2-channel real form a
    network needs with :func:`complex_to_channels` / :func:`channels_to_complex`. Real input raises a
    clear error instead of being silently treated as complex. Noise is applied only on sampled k-space
    locations. For measurement splitting, :meth:`measurement_groups` reports the acquisition's
    lines (per sample) when the mask is Cartesian, entries otherwise.

    Args:
        mask: k-space sampling mask, (H, W), (1, 1|C, H, W) shared or (B, 1|C, H, W) per sample,
            centred like :func:`fft2c` (low frequencies in the middle). Samplers live in
            ``selfinv.physics.samplers``.
        noise: noise model on k-space (``Gaussian`` adds sigma to the real and imaginary parts).

    Example:
        >>> import torch
        >>> from selfinv.physics import MRI
        >>> mask = torch.zeros(8, 8); mask[:, ::2] = 1
        >>> x = torch.randn(1, 1, 8, 8, dtype=torch.complex64)
        >>> y = MRI(mask).A(x)
        >>> y.dtype, y.shape
        (torch.complex64, torch.Size([1, 1, 8, 8]))
    """

    is_complex = True
    exact_dagger = True
    _per_sample = ("mask",)

    def __init__(self, mask: torch.Tensor, noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)
        self.register_buffer("mask", as_mask(mask, "MRI"))

    @property
    def x_shape(self) -> tuple[int, ...]:
        """(C, H, W) of the mask (C = 1 for a mask shared by the channels)."""
        return tuple(int(s) for s in self.mask.shape[1:])

    def _m(self, like: torch.Tensor) -> torch.Tensor:
        return self.mask.to(device=like.device, dtype=like.real.dtype)

    def _A(self, x):
        return self._m(x) * fft2c(x)

    def _A_adjoint(self, y):
        return ifft2c(self._m(y) * y)

    def _A_dagger(self, y, tol, max_iter):
        return ifft2c(mask_pinv(self._m(y)) * y)

    def _normal(self, x):
        return ifft2c(self._m(x) ** 2 * fft2c(x))

    def _restrict(self, y):
        return torch.where(self._m(y) > 0, y, torch.zeros_like(y))

    def _groups(self, y):
        r"""Cartesian lines, detected per sample from the mask: where a sample's mask is constant along
        the rows (every column fully sampled or not, as :class:`~selfinv.physics.samplers.MRIMaskSampler`
        draws), one group per column and channel; else, where it is constant along the columns, one
        per row and channel; else (2-D point masks) one per entry."""
        m = self.mask.to(y.device)
        c, h, w = y.shape[1], y.shape[-2], y.shape[-1]
        cols = (m == m[..., :1, :]).flatten(1).all(1)[:, None, None, None]  # (1|B, 1, 1, 1)
        rows = (m == m[..., :, :1]).flatten(1).all(1)[:, None, None, None]
        ch = torch.arange(c, device=y.device)[:, None, None]
        i = torch.arange(h, device=y.device)[:, None]
        j = torch.arange(w, device=y.device)
        entries = (ch * h + i) * w + j  # (C, H, W)
        return torch.where(cols, (ch * w + j).expand(c, h, w), torch.where(rows, (ch * h + i).expand(c, h, w), entries))

    def subsample(self, mask: torch.Tensor) -> MRI:
        return MRI(self.mask * as_mask(mask, "MRI.subsample"), noise=self.noise)

    def _check_x(self, x):
        check_against_mask(x, self.mask, "x", "MRI")

    def _check_y(self, y):
        check_against_mask(y, self.mask, "y", "MRI")

    @property
    def acceleration(self) -> torch.Tensor:
        """Per-sample acceleration factor n / (number of sampled k-space locations)."""
        m = (self.mask > 0).flatten(1)
        return m.shape[1] / m.sum(1).clamp_min(1)
