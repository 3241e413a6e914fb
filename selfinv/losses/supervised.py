r"""The two references: the supervised loss and measurement consistency (MC)."""

from __future__ import annotations

from selfinv.losses.base import Loss, LossInfo, sq_mean


class Supervised(Loss):
    r"""Supervised loss :math:`\frac1n\|f(y) - x\|^2` (needs ground truth; the reference to approach).

    Its minimiser over all functions is the MMSE estimator :math:`f^*(y) = \mathbb{E}\{x \mid y\}`.
    The value is the mean squared error per real degree of freedom, averaged over the batch.

    Example:
        >>> import torch
        >>> from selfinv.losses import Supervised
        >>> from selfinv.physics import Denoising
        >>> x = torch.zeros(1, 1, 2, 2)
        >>> float(Supervised()(x + 1, Denoising(), lambda y, physics: y, x=x))
        1.0
    """

    info = LossInfo(
        train_evals=1, mmse_optimal=True, needs_ground_truth=True,
        unknown_separable_noise=True, unknown_coloured_noise=True, general_operator=True,  # it reads x, not the noise
        reference="supervised learning (the reference)",
    )

    def _loss(self, ctx):
        if ctx.x is None:
            raise ValueError("Supervised: needs the ground truth x (loss(y, physics, model, x=x))")
        x_hat = ctx.x_hat
        if x_hat.shape != ctx.x.shape:
            raise ValueError(f"Supervised: model output has shape {tuple(x_hat.shape)} but x has {tuple(ctx.x.shape)}")
        return sq_mean(x_hat - ctx.x)


class MC(Loss):
    r"""Measurement consistency :math:`\frac1m\|y - A f(y)\|^2`.

    The naive self-supervised loss. For denoising its minimiser is :math:`f^*(y) = y` (no denoising
    at all), and for a non-invertible A it cannot see the nullspace: any :math:`f(y) = A^\dagger y + v`
    with :math:`v \in \mathcal{N}(A)` is a minimiser (tutorial, parts 2–3). It is kept as the reference
    the tutorial uses, and as the consistency term that EI and MOI add their priors to.

    Example:
        >>> import torch
        >>> from selfinv.losses import MC
        >>> from selfinv.physics import Denoising
        >>> y = torch.rand(2, 1, 4, 4)
        >>> float(MC()(y, Denoising(), lambda y, physics: y))     # the identity is a minimiser
        0.0
    """

    info = LossInfo(
        train_evals=1,
        general_operator=True, risk="measurement",  # E‖A(f(y) − x)‖²: blind to the nullspace of A
        noise_caveat="collapses to f(y) = y on noisy data (kept as a reference)",
        reference="measurement consistency (tutorial part 2)",
    )

    def _loss(self, ctx):
        return sq_mean(ctx.y - ctx.physics.A(ctx.x_hat))
