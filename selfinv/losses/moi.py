r"""Multi-operator imaging (MOI): learning from measurements taken through many operators :math:`A_g`."""

from __future__ import annotations

from collections.abc import Callable

from selfinv.losses.base import LossInfo
from selfinv.losses.consistency import WithConsistency
from selfinv.physics.base import LinearOperator
from selfinv.physics.samplers import BernoulliMaskSampler

Sampler = Callable[..., LinearOperator]


class MOI(WithConsistency):
    r"""Multi-operator imaging (Tachella, Chen & Davies, NeurIPS 2022).

    .. math::

        \mathcal{L}_{\text{MOI}}(y, f) = \underbrace{\tfrac1m\|y - A f(y, A)\|^2}_{\text{consistency}}
        + \lambda\, \mathbb{E}_{A'} \tfrac1n\|f(A'\hat x, A') - \hat x\|^2, \qquad \hat x = f(y, A),

    with :math:`A'` drawn **per sample** from the operator family (a sampler of
    ``selfinv.physics.samplers``). The second term makes :math:`f(A x, A) \approx f(A' x, A')`: the
    network must be consistent across operators, which identifies the nullspace of each one when
    :math:`\operatorname{rank}\,\mathbb{E}_g A_g^\top A_g = n` (the tutorial's necessary condition).
    With noise, the consistency term is "replaced by SURE, R2R, etc." (``consistency="sure"``) and
    ``renoise=True`` adds the noise model to :math:`A'\hat x`. Network evaluations: f(y) (shared with
    the consistency term) and :math:`f(A'\hat x)`: 2 per step with MC.

    Args:
        sampler: the operator family; ``sampler(batch_size, generator=..., noise=...)`` returns a physics
            with one operator per sample.
        consistency: "mc" (default), "sure", "r2r" or "none".
        weight: :math:`\lambda`.
        renoise: simulate :math:`A'\hat x` with the physics' noise model (for noisy data).
        stop_gradient: treat :math:`\hat x` as a fixed target in the second term.

    Example:
        >>> import torch
        >>> from selfinv.losses import MOI
        >>> from selfinv.physics.samplers import BernoulliMaskSampler
        >>> sampler = BernoulliMaskSampler(8, p=0.5)
        >>> physics = sampler(2, generator=torch.Generator().manual_seed(0))
        >>> y = physics(torch.rand(2, 1, 8, 8))
        >>> model = lambda y, physics: physics.A_adjoint(y)
        >>> MOI(sampler)(y, physics, model, generator=torch.Generator().manual_seed(1)).shape
        torch.Size([])
    """

    _base_info = LossInfo(
        train_evals=2, mmse_optimal=True, general_operator=True, needs_operator_family=True,
        reference="Tachella, Chen & Davies, NeurIPS 2022",
    )

    def __init__(self, sampler: Sampler, consistency: str = "mc", weight: float = 1.0, renoise: bool = False,
                 stop_gradient: bool = False) -> None:
        if not callable(sampler):
            raise ValueError("MOI: sampler must be an operator sampler, called as sampler(batch_size, generator=..)")
        super().__init__(consistency, weight, self._base_info, 1, renoise, stop_gradient)
        self.sampler = sampler

    @classmethod
    def example(cls) -> MOI:
        """With random inpainting masks of 8 × 8 images (half the pixels observed)."""
        return cls(BernoulliMaskSampler(8, p=0.5))

    def _term(self, ctx):
        x_hat = ctx.x_hat
        noise = ctx.physics.noise if self.renoise else None
        other = self.sampler(ctx.y.shape[0], generator=ctx.generator, noise=noise).to(x_hat.device)
        return self._remeasured(ctx, x_hat, other)  # f(N(A' x̂), A') against x̂

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}, renoise={self.renoise}, stop_gradient={self.stop_gradient}"


