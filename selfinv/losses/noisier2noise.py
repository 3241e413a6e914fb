r"""Noisier2Noise: learn to remove *added* noise, then correct the estimate (Moran et al., CVPR 2020)."""

from __future__ import annotations

import torch

from selfinv import _random
from selfinv.losses.base import Estimator, Loss, LossInfo, Model, noise_of, noise_param, sq_mean
from selfinv.noise import Gaussian
from selfinv.physics.base import LinearOperator


def noisier(y: torch.Tensor, physics: LinearOperator, alpha: float, generator) -> tuple[torch.Tensor, LinearOperator]:
    r""":math:`z = y + \alpha\sigma\omega` (measured entries only) and the physics describing z."""
    noise = noise_of(physics, (Gaussian,), "Noisier2Noise")
    sigma = noise_param(noise, "sigma", y)
    omega = _random.randn(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
    z = y + physics.acquired(y).expand(y.shape).to(y.real.dtype if y.is_complex() else y.dtype) * alpha * sigma * omega
    inflated = Gaussian(noise.sigma * (1 + alpha**2) ** 0.5)
    return z, physics.with_noise(inflated)


class Noisier2Noise(Loss):
    r"""Noisier2Noise (Moran, Schmidt, Zhong & Coady, CVPR 2020) for Gaussian noise.

    Add more noise of the same law, :math:`z = y + m`, :math:`m \sim \mathcal N(0, \alpha^2\sigma^2 I)`, and
    train :math:`f(z) \approx y`:

    .. math:: \mathcal{L}(y, f) = \mathbb{E}_m\, \tfrac1n \|y - f(y + m)\|^2 \quad\Rightarrow\quad
        f^*(z) = \mathbb{E}[y \mid z].

    Since :math:`\mathbb{E}[x\mid z] = \big((1+\alpha^2)\,\mathbb{E}[y\mid z] - z\big)/\alpha^2` exactly for
    Gaussian noise (anchors §6.7), the test-time estimator is the corrected
    :math:`\hat x = ((1+\alpha^2) f(z) - z)/\alpha^2`, averaged over ``n_samples`` draws of m. It is the
    MMSE estimator given the noisier z, not given y — the price of needing no pair (the coupled
    bootstrap / R2R family improves on it). Only Gaussian noise; denoising only.

    Args:
        alpha: the relative level of the added noise (1 in the paper's main results).
        n_samples: draws of m averaged at test time.

    Example:
        >>> import torch
        >>> from selfinv.losses import Noisier2Noise
        >>> from selfinv.noise import Gaussian
        >>> from selfinv.physics import Denoising
        >>> physics = Denoising(noise=Gaussian(0.1))
        >>> y = physics(torch.rand(2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> Noisier2Noise()(y, physics, lambda y, physics: y, generator=torch.Generator().manual_seed(1)).shape
        torch.Size([])
    """

    info = LossInfo(
        train_evals=1, test_evals=">1", uses_x_hat=False,  # its network input is the noisier z
        noise_models=(Gaussian,),
        reference="Moran, Schmidt, Zhong & Coady, Noisier2Noise, CVPR 2020",
    )

    def __init__(self, alpha: float = 1.0, n_samples: int = 5) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"Noisier2Noise: alpha must be > 0, got {alpha}")
        if n_samples < 1:
            raise ValueError(f"Noisier2Noise: n_samples must be >= 1, got {n_samples}")
        self.alpha, self.n_samples = float(alpha), int(n_samples)

    def _loss(self, ctx):
        z, physics_z = noisier(ctx.y, ctx.physics, self.alpha, ctx.generator)
        return sq_mean(ctx.y - ctx.model(z, physics_z))

    def test_model(self, model: Model, n_samples: int | None = None) -> Model:
        """The corrected average :class:`Noisier2NoiseEstimator` over N = ``n_samples`` (or the loss's) draws."""
        return Noisier2NoiseEstimator(model, self.alpha, n_samples or self.n_samples)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, n_samples={self.n_samples}"


class Noisier2NoiseEstimator(Estimator):
    r"""The corrected estimator :math:`\frac1N\sum_i ((1+\alpha^2) f(z_i) - z_i)/\alpha^2` (N network calls).

    Called as ``estimator(y, physics, generator=None)``; the extra noises of :math:`z_i` come from ``generator``.
    """

    def __init__(self, model: Model, alpha: float, n_samples: int) -> None:
        super().__init__()
        self.model, self.alpha, self.n_samples = model, alpha, n_samples

    def forward(
        self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        a2 = self.alpha**2
        total = None
        for _ in range(self.n_samples):
            z, physics_z = noisier(y, physics, self.alpha, generator)
            est = ((1 + a2) * self.model(z, physics_z) - z) / a2
            total = est if total is None else total + est
        return total / self.n_samples
