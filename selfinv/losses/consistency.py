"""The data-consistency term that the incomplete-measurement losses (MOI, EI, splitting) build on.

The tutorial (parts 3–4) writes these losses as "consistency on y" plus a term that sees the
nullspace; without noise the consistency term is MC, with noise it is "replaced by SURE, R2R, etc."
"""

from __future__ import annotations

import torch

from selfinv.losses.base import Loss, LossContext, LossInfo, sq_mean

CONSISTENCY = ("mc", "sure", "r2r", "none")


def make_consistency(name: str, owner: str) -> Loss | None:
    """The consistency loss called ``name`` ("mc", "sure", "r2r" or "none")."""
    if name == "mc":
        from selfinv.losses.supervised import MC

        return MC()
    if name == "sure":
        from selfinv.losses.sure import SURE

        return SURE()
    if name == "r2r":
        from selfinv.losses.r2r import R2R

        return R2R()
    if name == "none":
        return None
    raise ValueError(f"{owner}: consistency must be one of {', '.join(CONSISTENCY)}, got {name!r}")


def with_extra_evals(base: LossInfo, consistency: Loss | None, extra: int, **changes) -> LossInfo:
    """The info of ``consistency + term``, where the term evaluates f(y) (shared) plus ``extra`` more times."""
    from dataclasses import replace

    if consistency is None:
        evals = 1 + extra
        noise_models, separable = base.noise_models, base.unknown_separable_noise
    else:
        c = consistency.info
        evals = c.train_evals + (0 if c.uses_x_hat else 1) + extra
        noise_models, separable = c.noise_models, c.unknown_separable_noise and base.unknown_separable_noise
    return replace(base, train_evals=evals, noise_models=noise_models, unknown_separable_noise=separable, **changes)


class WithConsistency(Loss):
    r"""A loss of the form consistency + :math:`\lambda` · prior term (MOI, EI): the shared plumbing.

    Subclasses call ``super().__init__(consistency, weight, base_info, extra_evals, renoise, stop_gradient)``
    and implement ``_term(ctx)``, typically as :meth:`_remeasured` of a virtual measurement. The consistency
    term is evaluated first (so SURE's autograd divergences can share f(y)), its checks and test-time
    estimator are the loss's own, and ``info`` counts the evaluations.
    """

    def __init__(
        self,
        consistency: str,
        weight: float,
        base_info: LossInfo,
        extra_evals: int,
        renoise: bool = False,
        stop_gradient: bool = False,
        **info_changes,
    ) -> None:
        super().__init__()
        self.consistency = make_consistency(consistency, type(self).__name__)
        self.weight = float(weight)
        self.info = with_extra_evals(base_info, self.consistency, extra=extra_evals, **info_changes)
        self.renoise, self.stop_gradient = bool(renoise), bool(stop_gradient)

    def _remeasured(self, ctx: LossContext, x: torch.Tensor, physics) -> torch.Tensor:
        r""":math:`\frac1n\|f(y', A') - x\|^2` for a new measurement :math:`y' = A'x` of ``x`` through ``physics``
        :math:`A'`, with the physics' noise added when ``renoise`` (count-type noise needs :math:`A'x \ge 0`: it
        is clipped first), and ``x`` a fixed target when ``stop_gradient``."""
        z = physics.A(x)
        y_new = physics.add_noise(z, ctx.generator, clamp=True) if self.renoise else z
        target = x.detach() if self.stop_gradient else x
        return sq_mean(ctx.model(y_new, physics) - target)

    def _check(self, physics):
        if self.consistency is not None:
            self.consistency._check(physics)

    def _term(self, ctx: LossContext) -> torch.Tensor:
        raise NotImplementedError

    def _loss(self, ctx):
        if self.consistency is None:
            return self.weight * self._term(ctx)
        return self.consistency._loss(ctx) + self.weight * self._term(ctx)

    def test_model(self, model):
        return self.consistency.test_model(model) if self.consistency is not None else model
