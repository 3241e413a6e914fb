r"""The blind-spot loss (Laine, Karras, Lehtinen & Aila, NeurIPS 2019; tutorial part 2, "Blind Spot Networks")."""

from __future__ import annotations

import math

import torch

from selfinv.losses.base import Estimator, Loss, LossContext, LossInfo, Model, noise_of, noise_param, sq_mean, unwrap
from selfinv.noise import Gaussian

__all__ = ["BlindSpot", "PosteriorMean", "gaussian_posterior_mean"]


def _require_blind_spot(model: Model, owner: str) -> None:
    if getattr(unwrap(model), "blind_spot", False) is not True:
        raise ValueError(
            f"{owner}: the model must be a blind-spot network (declare `blind_spot = True`, e.g. "
            "selfinv.models.blindspot.BlindSpotNet); for an ordinary network ||y - f(y)||² is minimised by the "
            "identity f(y) = y"
        )


def gaussian_posterior_mean(y: torch.Tensor, mu: torch.Tensor, var_prior: torch.Tensor, var_noise) -> torch.Tensor:
    r"""Posterior mean of :math:`x` for the prior :math:`\mathcal{N}(\mu, \sigma_p^2)` and :math:`y = x + \mathcal{N}(0, \sigma^2)`.

    .. math:: \hat x = \frac{\sigma_p^2\, y + \sigma^2 \mu}{\sigma_p^2 + \sigma^2}

    Example:
        >>> import torch
        >>> float(gaussian_posterior_mean(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(3.0), 1.0))
        0.75
    """
    return (var_prior * y + var_noise * mu) / (var_prior + var_noise)


def _mean_and_variance(model: Model, y: torch.Tensor, physics) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The prior mean :math:`\mu` and variance :math:`\sigma_p^2` of a ``predict_variance`` network.

    ``model.mean_and_variance(y, physics)``; a network inside ``DistributedDataParallel`` is called through the
    wrapper, as ``model(y, physics, with_variance=True)`` (what :class:`~selfinv.models.blindspot.BlindSpotNet`
    accepts), since only a call of the wrapper all-reduces the gradients across processes.
    """
    if unwrap(model) is not model:
        return model(y, physics, with_variance=True)
    return model.mean_and_variance(y, physics)


class PosteriorMean(Estimator):
    r"""The "pme" test-time estimator of Laine et al.: :math:`\hat x = (\sigma_p^2 y + \sigma^2 \mu)/(\sigma_p^2 + \sigma^2)`.

    :math:`(\mu, \sigma_p^2)` come from one call of ``model.mean_and_variance(y)`` (the blind-spot prior of
    :math:`x_i` given the other pixels) and :math:`\sigma` from ``physics.noise`` (Gaussian, per-sample allowed).
    Wraps the model without modifying it. Deterministic: called as ``estimator(y, physics, generator=None)``, it
    ignores the generator.
    """

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: torch.Tensor, physics, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = noise_of(physics, (Gaussian,), "BlindSpot posterior mean")
        mu, var_p = _mean_and_variance(self.model, y, physics)
        return gaussian_posterior_mean(y, mu, var_p, noise_param(noise, "sigma", y) ** 2)


class BlindSpot(Loss):
    r"""Blind-spot loss :math:`\frac1n\|y - f_{BS}(y)\|^2` for a network that cannot see the centre pixel.

    Since :math:`\partial f_i/\partial y_i = 0` by construction of :math:`f_{BS}`, measurement consistency is an
    unbiased proxy of the supervised risk for zero-mean separable noise (the cross-validation argument of
    the tutorial), with no masking: every pixel contributes to every step. A model that does not declare
    ``blind_spot = True`` is refused, since an ordinary network would learn the identity.

    With a model built with ``predict_variance=True`` (:class:`~selfinv.models.blindspot.BlindSpotNet`), the
    loss is instead the Gaussian negative log-likelihood of Laine et al.: the network predicts a prior
    :math:`x_i \mid y_{-i} \sim \mathcal{N}(\mu_i, \sigma_{p,i}^2)` from the other pixels, so
    :math:`y_i \mid y_{-i} \sim \mathcal{N}(\mu_i, \sigma_{p,i}^2 + \sigma^2)` and

    .. math::

        \mathcal{L}(y, f) = \frac1n \sum_i \frac{(y_i - \mu_i)^2}{2(\sigma_{p,i}^2 + \sigma^2)}
        + \frac12 \log\big(2\pi(\sigma_{p,i}^2 + \sigma^2)\big),

    with :math:`\sigma` read from ``physics.noise`` (Gaussian only; a ValueError otherwise). The test-time
    estimator is then the posterior mean ("pme", :class:`PosteriorMean`)
    :math:`\hat x = (\sigma_p^2 y + \sigma^2 \mu) / (\sigma_p^2 + \sigma^2)`, which restores the information of
    the centre pixel; otherwise it is the blind-spot network itself, :math:`\mu`.

    Counting. Training and testing take one network evaluation each (a :class:`BlindSpotNet` call runs its
    branch on the four rotations inside that call, i.e. about 4× the cost of the branch). The tutorial's
    table lists ">1" test evaluations for blind-spot methods: that counts the rotated branches, and the
    multi-pass refinements of later blind-spot methods (AP-BSN's random-replacing refinement), not used here.

    MMSE: the plain loss is not MMSE-optimal (its minimiser is :math:`\mathbb{E}[x_i \mid y_{-i}]`, which ignores
    :math:`y_i`). The pme estimator is :math:`\mathbb{E}[x_i \mid y]` only if the prior
    :math:`p(x_i \mid y_{-i})` is Gaussian and the noise is Gaussian with known :math:`\sigma`; ``info`` says
    False.

    Example:
        >>> import torch
        >>> from selfinv.losses.blindspot import BlindSpot
        >>> from selfinv.models.blindspot import BlindSpotNet
        >>> from selfinv.physics import Denoising
        >>> net = BlindSpotNet(1, width=4, depth=1)
        >>> y = torch.rand(2, 1, 8, 8)
        >>> loss = BlindSpot()(y, Denoising(), net)
        >>> loss.backward()
        >>> BlindSpot()(y, Denoising(), lambda y, physics: y)
        Traceback (most recent call last):
        ...
        ValueError: BlindSpot: the model must be a blind-spot network (declare `blind_spot = True`, e.g. selfinv.models.blindspot.BlindSpotNet); for an ordinary network ||y - f(y)||² is minimised by the identity f(y) = y
    """

    needs_backbone = {"name": "blindspot"}  # noqa: RUF012  (read-only class fact)
    default_backbone = {"name": "blindspot", "width": 16, "depth": 2}  # noqa: RUF012
    info = LossInfo(
        train_evals=1, unknown_separable_noise=True,
        reference="Laine, Karras, Lehtinen & Aila, High-quality self-supervised deep image denoising, NeurIPS 2019",
    )

    def _loss(self, ctx: LossContext) -> torch.Tensor:
        _require_blind_spot(ctx.model, "BlindSpot")
        y = ctx.y
        if getattr(unwrap(ctx.model), "predict_variance", False):
            noise = noise_of(ctx.physics, (Gaussian,), "BlindSpot (predict_variance)")
            mu, var_p = _mean_and_variance(ctx.model, y, ctx.physics)
            var = var_p + noise_param(noise, "sigma", y) ** 2
            return (0.5 * (y - mu).pow(2) / var + 0.5 * torch.log(2 * math.pi * var)).mean()
        x_hat = ctx.x_hat
        if x_hat.shape != y.shape:
            raise ValueError(f"BlindSpot: model output has shape {tuple(x_hat.shape)} but y has {tuple(y.shape)}")
        return sq_mean(y - x_hat)

    def test_model(self, model: Model) -> Model:
        """:class:`PosteriorMean` for a model with ``predict_variance``; otherwise the model (μ)."""
        if getattr(unwrap(model), "predict_variance", False):
            return PosteriorMean(model)
        return model
