r"""Inpainting: a pixel mask :math:`A = \operatorname{diag}(m)`."""

from __future__ import annotations

import torch

from selfinv.noise import NoiseModel
from selfinv.physics._mask import MaskHooks, as_mask, check_against_mask
from selfinv.physics.base import LinearOperator


class Inpainting(MaskHooks, LinearOperator):
    r"""Pixel masking :math:`y = m \odot x` (measurements zero-filled to the image shape).

    :math:`A^H = A = \operatorname{diag}(m)` and :math:`A^\dagger = \operatorname{diag}(m^+)` with
    :math:`m^+_i = 1/m_i` where :math:`m_i > 0` (for a binary mask, :math:`A^\dagger = A`). Noise is
    applied only where the mask is non-zero: unobserved pixels of ``y`` are exactly 0. Every pixel is
    acquired on its own (:meth:`measurement_groups` is one group per entry), so measurement splitting
    holds out single pixels.

    Args:
        mask: (H, W), (1, 1|C, H, W) shared by the batch, or (B, 1|C, H, W) one per sample.
        noise: noise model, or ``None`` for noiseless measurements.

    Example:
        >>> import torch
        >>> from selfinv.physics import Inpainting
        >>> op = Inpainting(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> op.A(torch.ones(1, 1, 2, 2))[0, 0]
        tensor([[1., 0.],
                [0., 1.]])
    """

    exact_dagger = True
    crop_alignment = 1
    _per_sample = ("mask",)

    def __init__(self, mask: torch.Tensor, noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)
        self.register_buffer("mask", as_mask(mask, "Inpainting"))

    @property
    def x_shape(self) -> tuple[int, ...]:
        """(C, H, W) of the mask (C = 1 for a mask shared by the channels)."""
        return tuple(int(s) for s in self.mask.shape[1:])

    def _m(self, like: torch.Tensor) -> torch.Tensor:
        return self.mask.to(device=like.device, dtype=like.dtype)

    def subsample(self, mask: torch.Tensor) -> Inpainting:
        return Inpainting(self.mask * as_mask(mask, "Inpainting.subsample"), noise=self.noise)

    def _check_x(self, x):
        check_against_mask(x, self.mask, "x", "Inpainting")

    def _check_y(self, y):
        check_against_mask(y, self.mask, "y", "Inpainting")
