"""Denoising: the identity operator :math:`A = I`."""

from __future__ import annotations

import torch

from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator


class Denoising(LinearOperator):
    r"""The identity :math:`A = I`, so :math:`y = \mathcal{N}(x)`. Works on any (B, ...) real tensor.

    Example:
        >>> import torch
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> y = Denoising(noise=Gaussian(0.1))(torch.zeros(1, 1, 4, 4), generator=torch.Generator().manual_seed(0))
        >>> y.shape
        torch.Size([1, 1, 4, 4])
    """

    exact_dagger = True
    is_complex = None  # real or complex data
    crop_alignment = 1

    def __init__(self, noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)

    def no_learning(self, y: torch.Tensor) -> torch.Tensor:
        """y itself: the noisy image."""
        return y

    def _A(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def _A_dagger(self, y: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
        return y

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return x
