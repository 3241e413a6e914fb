r"""Noise2Noise: learn from pairs of independent measurements of the same signal."""

from __future__ import annotations

import torch

from selfinv._checks import check_bool
from selfinv.losses.base import Loss, LossInfo, noise_param, sq_mean
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, NoiseModel, Poisson, PoissonGaussian
from selfinv.physics.base import LinearOperator


def noise_variance_estimate(noise: NoiseModel | None, y: torch.Tensor, physics: LinearOperator, owner: str) -> torch.Tensor:
    r"""Per-entry estimate of :math:`\operatorname{Var}(y_i \mid x)`, unbiased given x, zero where nothing is acquired.

    ========================= ==================================================================
    noise                     estimate (its expectation is the variance of the entry)
    ========================= ==================================================================
    Gaussian(σ)               :math:`\sigma^2` (a constant)
    CorrelatedGaussian(σ, k)  :math:`\sigma^2\|k\|^2` (a constant)
    Poisson(γ)                :math:`\gamma\,y` (:math:`\mathbb{E}\,\gamma y = \gamma z`)
    PoissonGaussian(γ, σ)     :math:`\gamma\,y + \sigma^2`
    Gamma(ℓ)                  :math:`y^2/(\ell+1)` (:math:`\mathbb{E}\,y^2 = z^2(1+1/\ell)`)
    ========================= ==================================================================

    The result is real, shaped like ``y``; for complex y the value is the variance of each of the real
    and imaginary parts. Raises a ValueError naming ``owner`` if the noise model is unknown.
    """
    if noise is None:
        raise ValueError(f"{owner}: subtract_noise=True needs a known noise model (physics.noise is None)")
    real = y.real if y.is_complex() else y
    if isinstance(noise, Gaussian):
        var = (noise_param(noise, "sigma", real) ** 2).expand(real.shape)
    elif isinstance(noise, CorrelatedGaussian):
        var = noise.variance(real)
    elif isinstance(noise, Poisson):
        var = noise_param(noise, "gain", real) * real
    elif isinstance(noise, PoissonGaussian):
        var = noise_param(noise, "gain", real) * real + noise_param(noise, "sigma", real) ** 2
    elif isinstance(noise, Gamma):
        var = real**2 / (noise_param(noise, "shape", real) + 1.0)
    else:
        raise ValueError(
            f"{owner}: subtract_noise=True does not know the variance of {type(noise).__name__} noise; "
            "supported: Gaussian, CorrelatedGaussian, Poisson, PoissonGaussian, Gamma"
        )
    acquired = physics.acquired(y)
    return torch.where(acquired, var, torch.zeros_like(var))


class Noise2Noise(Loss):
    r"""Noise2Noise (Lehtinen et al., ICML 2018): :math:`\frac1m\|y_2 - A f(y)\|^2`.

    ``y2`` is a second measurement of the same x through the same operator, with noise independent of
    that of ``y`` and zero-mean given x (:math:`\mathbb{E}\{y_2 \mid x\} = Ax`); it is passed as
    ``loss(y, physics, model, y2=y2)``. Then, for any f (tutorial part 2, Mallows' :math:`C_p`),

    .. math::

        \mathbb{E}\,\tfrac1m\|y_2 - A f(y)\|^2 = \mathbb{E}\,\tfrac1m\|A f(y) - Ax\|^2
        + \tfrac1m\mathbb{E}\|\varepsilon_2\|^2 ,

    because the cross term :math:`\mathbb{E}\,\varepsilon_2^\top A f(y)` vanishes. The loss is thus
    the measurement-domain risk plus a constant: for A = I (or any invertible A) its minimiser is the
    MMSE estimator, and it needs no knowledge of the noise distribution (any independent, zero-mean,
    possibly coloured noise).

    With ``subtract_noise=True`` the noise term is removed, so the value estimates the risk itself:
    the per-entry noise variance of ``y2`` is estimated without bias from the noise model of
    ``physics.noise`` — :math:`\sigma^2` (Gaussian), :math:`\sigma^2\|k\|^2` (correlated Gaussian), :math:`\gamma y_2` (Poisson, since
    :math:`\mathbb{E}\,\gamma y_2 = \gamma Ax`), :math:`\gamma y_2 + \sigma^2` (Poisson-Gaussian),
    :math:`y_2^2/(\ell+1)` (Gamma) — and subtracted (averaged like the loss). This changes the value,
    not the gradient, and needs a known noise model (ValueError otherwise).

    The mean runs over every real degree of freedom of ``y`` (zero-filled, unacquired entries add 0
    to both terms), as for :class:`~selfinv.losses.supervised.MC`.

    Args:
        subtract_noise: subtract the noise term so that the value estimates the risk (default False).

    Example:
        >>> import torch
        >>> from selfinv.losses.n2n import Noise2Noise
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> g = torch.Generator().manual_seed(0)
        >>> physics = Denoising(noise=Gaussian(0.3))
        >>> x = torch.zeros(1, 1, 64, 64)
        >>> y, y2 = physics(x, generator=g), physics(x, generator=g)
        >>> zero = lambda y, physics: torch.zeros_like(y)
        >>> round(float(Noise2Noise()(y, physics, zero, y2=y2)), 2)   # risk 0 + sigma^2
        0.09
        >>> abs(float(Noise2Noise(subtract_noise=True)(y, physics, zero, y2=y2))) < 0.02
        True
    """

    info = LossInfo(
        train_evals=1, single_y=False, mmse_optimal=True,
        unknown_separable_noise=True, unknown_coloured_noise=True,  # any independent zero-mean noise
        general_operator=True, risk="measurement",  # E‖A(f(y) − x)‖²: blind to the nullspace of A
        reference="Noise2Noise (Lehtinen et al., ICML 2018)",
    )

    def __init__(self, subtract_noise: bool = False) -> None:
        super().__init__()
        self.subtract_noise = check_bool(subtract_noise, "subtract_noise", "Noise2Noise")

    def _loss(self, ctx):
        y, y2 = ctx.y, ctx.y2
        if y2 is None:
            raise ValueError(
                "Noise2Noise: needs an independent second measurement y2 of the same x (loss(y, physics, model, y2=y2))"
            )
        if not isinstance(y2, torch.Tensor):
            raise ValueError(f"Noise2Noise: y2 must be a torch.Tensor, got {type(y2).__name__}")
        if y2.shape != y.shape:
            raise ValueError(f"Noise2Noise: y2 has shape {tuple(y2.shape)} but y has {tuple(y.shape)}; they must match")
        if y2.is_complex() != y.is_complex():
            raise ValueError(f"Noise2Noise: y2 is {y2.dtype} but y is {y.dtype}")
        value = sq_mean(y2 - ctx.physics.A(ctx.x_hat))
        if self.subtract_noise:
            value = value - noise_variance_estimate(ctx.physics.noise, y2, ctx.physics, "Noise2Noise").mean()
        return value

    def extra_repr(self) -> str:
        return f"subtract_noise={self.subtract_noise}"
