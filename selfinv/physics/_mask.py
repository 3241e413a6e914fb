"""Validation shared by operators that multiply by a mask: (B|1, C|1, H, W) image masks, and measurement masks."""

from __future__ import annotations

import torch


def as_mask(mask: torch.Tensor, owner: str) -> torch.Tensor:
    """Check a mask and return it as a 4-D real tensor; (H, W) becomes (1, 1, H, W)."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{owner}: mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim == 2:
        mask = mask[None, None]
    if mask.ndim != 4:
        raise ValueError(f"{owner}: mask must have shape (H, W) or (B|1, C|1, H, W), got {tuple(mask.shape)}")
    if mask.is_complex():
        raise ValueError(f"{owner}: mask must be real, got {mask.dtype}")
    mask = mask.detach()
    if not mask.is_floating_point():
        mask = mask.to(torch.float32)
    if not bool(torch.isfinite(mask).all()):
        raise ValueError(f"{owner}: mask contains NaN or Inf")
    if bool((mask < 0).any()):
        raise ValueError(f"{owner}: mask must be non-negative")
    return mask


def check_against_mask(t: torch.Tensor, mask: torch.Tensor, name: str, owner: str) -> None:
    """Raise a clear error if t (B, C, H, W) does not fit the mask."""
    if t.ndim != 4:
        raise ValueError(f"{owner}: {name} must have shape (B, C, H, W), got {tuple(t.shape)}")
    if tuple(t.shape[-2:]) != tuple(mask.shape[-2:]):
        raise ValueError(
            f"{owner}: {name} is {tuple(t.shape[-2:])} pixels but the mask is {tuple(mask.shape[-2:])}"
        )
    if mask.shape[1] not in (1, t.shape[1]):
        raise ValueError(f"{owner}: mask has {mask.shape[1]} channels but {name} has {t.shape[1]}")


def as_measurement_mask(mask: torch.Tensor) -> torch.Tensor:
    """Check the mask of a :class:`~selfinv.physics.MeasurementMask` ((B|1, ...), real, finite, non-negative)."""
    if not isinstance(mask, torch.Tensor) or mask.ndim < 1 or mask.is_complex():
        raise ValueError("MeasurementMask: mask must be a real tensor of shape (B|1, ...)")
    mask = mask.detach()
    if not mask.is_floating_point():
        mask = mask.to(torch.float32)
    if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()):
        raise ValueError("MeasurementMask: mask must be finite and non-negative")
    return mask


def mask_pinv(mask: torch.Tensor) -> torch.Tensor:
    """Element-wise pseudo-inverse of a diagonal: 1/m where m > 0, else 0."""
    return torch.where(mask > 0, 1.0 / torch.where(mask > 0, mask, torch.ones_like(mask)), torch.zeros_like(mask))


class MaskHooks:
    r"""The private hooks of an operator that multiplies by a 0/1 mask, :math:`A = A^H = \operatorname{diag}(m)`,
    for a class that defines ``_m(like)`` (the mask on ``like``'s device and real dtype); mixed in before
    :class:`~selfinv.physics.LinearOperator`."""

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

