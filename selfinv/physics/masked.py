r"""A diagonal 0/1 (or weighted) mask on measurements of any shape: the splitting operator S."""

from __future__ import annotations

import torch

from selfinv.noise import NoiseModel
from selfinv.physics._mask import mask_pinv
from selfinv.physics.base import LinearOperator


class MeasurementMask(LinearOperator):
    r""":math:`S = \operatorname{diag}(s)` acting on tensors of any shape (B, ...), s broadcastable to them.

    Used to subsample the measurements of an arbitrary operator, :math:`S A` (measurement splitting,
    SSDU). Unlike :class:`~selfinv.physics.Inpainting` it does not assume an image layout. It accepts
    real and complex data, and the pseudo-inverse is closed form (:math:`s^+ = 1/s` where s ≠ 0). In
    :math:`S A` it keeps the layout of A's measurements, so the composition reports A's
    :meth:`measurement_groups` (alone, one group per entry).

    Args:
        mask: (B|1, ...) non-negative, broadcastable to the data.
        noise: noise model, or ``None``.

    Example:
        >>> import torch
        >>> from selfinv.physics import MeasurementMask
        >>> MeasurementMask(torch.tensor([[1.0, 0.0, 1.0]])).A(torch.ones(2, 3))
        tensor([[1., 0., 1.],
                [1., 0., 1.]])
    """

    exact_dagger = True
    is_complex = None
    _per_sample = ("mask",)

    def __init__(self, mask: torch.Tensor, noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)
        if not isinstance(mask, torch.Tensor) or mask.ndim < 1 or mask.is_complex():
            raise ValueError("MeasurementMask: mask must be a real tensor of shape (B|1, ...)")
        mask = mask.detach()
        if not mask.is_floating_point():
            mask = mask.to(torch.float32)
        if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()):
            raise ValueError("MeasurementMask: mask must be finite and non-negative")
        self.register_buffer("mask", mask)

    def _m(self, like):
        return self.mask.to(device=like.device, dtype=like.real.dtype if like.is_complex() else like.dtype)

    def _A(self, x):
        return self._m(x) * x

    def _A_adjoint(self, y):
        return self._m(y) * y

    def _A_dagger(self, y, tol, max_iter):
        return mask_pinv(self._m(y)) * y

    def _normal(self, x):
        return self._m(x) ** 2 * x

    def _restrict(self, y):
        return torch.where(self._m(y) > 0, y, torch.zeros_like(y))

    def _check_x(self, x):
        if x.ndim != self.mask.ndim:
            raise self._shape_error("x", x, f"{self.mask.ndim} dimensions like the mask {tuple(self.mask.shape)}")
        try:
            torch.broadcast_shapes(self.mask.shape, x.shape)
        except RuntimeError:
            raise self._shape_error("x", x, f"a shape the mask {tuple(self.mask.shape)} broadcasts to") from None

    _check_y = _check_x
