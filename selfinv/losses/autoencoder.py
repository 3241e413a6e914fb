r"""The autoencoder loss (tutorial part 2, "Autoencoders")."""

from __future__ import annotations

import torch

from selfinv.losses.base import Loss, LossContext, LossInfo, sq_mean, unwrap

__all__ = ["AutoencoderLoss"]


class AutoencoderLoss(Loss):
    r"""Autoencoder loss :math:`\frac1n\|y - f_{AE}(y)\|^2` for a network with a strong bottleneck.

    Without a bottleneck this is measurement consistency, minimised by the identity. With one, :math:`f_{AE}`
    can only reproduce what fits through its code: if the signal is low-dimensional and the noise
    high-dimensional, the best reconstruction of :math:`y` keeps the signal and drops most of the noise. No
    assumption on the noise distribution is made (unknown separable *and* coloured noise are tolerated), at the
    price of a biased, not MMSE-optimal estimator whose quality hinges on the choice of the bottleneck.

    The model must declare its bottleneck: an attribute or method ``bottleneck_dim`` (as
    :class:`~selfinv.models.autoencoder.Autoencoder` has); other models are refused with a ValueError.

    Example:
        >>> import torch
        >>> from selfinv.losses.autoencoder import AutoencoderLoss
        >>> from selfinv.models.autoencoder import Autoencoder
        >>> from selfinv.physics import Denoising
        >>> y = torch.rand(2, 1, 9, 9)
        >>> AutoencoderLoss()(y, Denoising(), Autoencoder(1, width=8, depth=2)).ndim
        0
    """

    needs_backbone = {"name": "autoencoder"}  # noqa: RUF012  (read-only class fact)
    default_backbone = {"name": "autoencoder", "width": 16, "depth": 2, "bottleneck": 4}  # noqa: RUF012
    info = LossInfo(
        train_evals=1,
        unknown_separable_noise=True, unknown_coloured_noise=True,  # the bottleneck, whatever the noise
        reference="autoencoders with a bottleneck (tutorial part 2)",
    )

    def _loss(self, ctx: LossContext) -> torch.Tensor:
        if getattr(unwrap(ctx.model), "bottleneck_dim", None) is None:
            raise ValueError(
                "AutoencoderLoss: the model must declare a bottleneck (a `bottleneck_dim` attribute or method, e.g. "
                "selfinv.models.autoencoder.Autoencoder); without one ||y - f(y)||² is minimised by the identity"
            )
        x_hat = ctx.x_hat
        if x_hat.shape != ctx.y.shape:
            raise ValueError(
                f"AutoencoderLoss: model output has shape {tuple(x_hat.shape)} but y has {tuple(ctx.y.shape)}"
            )
        return sq_mean(ctx.y - x_hat)
