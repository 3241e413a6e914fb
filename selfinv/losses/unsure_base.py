r"""The machinery the three UNSURE variants share (the saddle point, the start, the step: :mod:`selfinv.losses.unsure`).

:class:`Multipliers` holds the learned multipliers as buffers, starts them from the data, and moves them by a
preconditioned ascent inside the loss call in training mode, with the quantities it reads averaged over the
processes of a data-parallel run (:func:`mean_over_processes`). A variant
(:class:`~selfinv.losses.unsure.UNSURE`, :class:`~selfinv.losses.unsure_covariance.UNSURECovariance`,
:class:`~selfinv.losses.unsure_poisson_gaussian.UNSUREPoissonGaussian`) defines its constraints, its start and
its step, and states its facts as a change of :data:`UNSURE_INFO`.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from selfinv._checks import is_number
from selfinv.losses.base import Loss, LossContext, LossInfo, per_sample_sq, real_dofs
from selfinv.losses.divergence_base import check_method, check_n_probes
from selfinv.losses.sure import measured_mask, prepare_h
from selfinv.noise.pca import estimate_sigma_pca
from selfinv.noise.wavelet import estimate_sigma

#: the facts of UNSURE for white noise; the other variants change some of them
UNSURE_INFO = LossInfo(
    train_evals=2, unknown_separable_noise=True,
    general_operator=True, risk="measurement",  # E‖A(f(y) − x)‖²: blind to the nullspace of A
    reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025",
)


def positive(value: float, name: str, owner: str, allow_zero: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (>= 0 with ``allow_zero``)."""
    ok = is_number(value) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be a finite number {rel}, got {value}")
    return float(value)


def optional_positive(value, name: str, owner: str) -> float | None:
    """None, or :func:`positive` with zero allowed (an initial value)."""
    return None if value is None else positive(value, name, owner, allow_zero=True)


def processes() -> int:
    """The number of processes of the initialised ``torch.distributed`` group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_over_processes(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over the processes of a data-parallel run (all-reduced); ``t`` itself in one process.

    Every process must call it at the same point (it is a collective operation).
    """
    n = processes()
    if n == 1:
        return t
    out = t.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / n


def image_like(y: torch.Tensor) -> bool:
    """Whether the patch estimators of :mod:`selfinv.noise` read ``y``: real (B, C, H, W) or (B, C, D, H, W) images
    of at least 16×16 (not k-space, not (B, n) signals)."""
    return not y.is_complex() and y.ndim in (4, 5) and min(y.shape[-2:]) >= 16


def noise_variance(y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The robust noise variance of a batch, :math:`\overline{\hat\sigma^2}` over its samples (float64 0-d).

    Per sample: the patch-PCA estimate (:func:`~selfinv.noise.estimate_sigma_pca`, Chen, Zhu & Heng 2015) on real
    images of at least 16×16, the wavelet MAD (:func:`~selfinv.noise.estimate_sigma`) otherwise (k-space, signals,
    small images) and for samples the PCA cannot read (too few fully measured patches); samples neither can read
    (fully masked) are skipped, and a batch with none gives 0.
    """
    s = estimate_sigma(y, mask)
    if image_like(y):
        pca = estimate_sigma_pca(y, mask)
        s = torch.where(torch.isfinite(pca), pca, s)
    s = s[torch.isfinite(s)]
    return (s**2).mean() if s.numel() else torch.zeros((), dtype=torch.float64, device=y.device)


class Multipliers(Loss):
    """Shared machinery: the learned buffer, data-driven start, preconditioned ascent in training mode."""

    #: the name of the buffer the ascent moves (``eta`` or ``kernel``)
    _param_name = "eta"

    def __init__(self, param0: torch.Tensor, initialised: bool, step_size, momentum, divergence, tau, tau_rel,
                 n_probes) -> None:
        super().__init__()
        owner = type(self).__name__
        if not (is_number(momentum) and 0 <= momentum < 1):
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {momentum}")
        positive(step_size, "step_size", owner)
        positive(tau_rel, "tau_rel", owner)
        check_n_probes(n_probes, owner)
        self.divergence = check_method(divergence, owner)
        self.step_size, self.momentum = float(step_size), float(momentum)
        self.tau, self.tau_rel, self.n_probes = tau, float(tau_rel), n_probes
        self.lr_factor = 1.0
        if self._param_name != "eta":
            self.register_buffer(self._param_name, param0.to(torch.float64))
        self.register_buffer("eta", self._eta_of(param0.to(torch.float64)))
        self.register_buffer("velocity", torch.zeros_like(param0, dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("initialised", torch.tensor(bool(initialised)))

    # -- what a variant defines ---------------------------------------------------------------
    def _constraints(self, ctx, y, h, h_y, mask) -> torch.Tensor:
        """(B, *eta.shape): per sample, the quantity each multiplier multiplies (its constraint)."""
        raise NotImplementedError

    def _initial(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The learned buffer's value estimated from a batch (the data-driven start)."""
        raise NotImplementedError

    def _eta_of(self, param: torch.Tensor) -> torch.Tensor:
        return param

    def _param_of(self, eta: torch.Tensor) -> torch.Tensor:
        """The learned buffer whose multipliers are ``eta`` (the inverse of :meth:`_eta_of`)."""
        return eta

    def _observe(self, y: torch.Tensor, mask: torch.Tensor) -> None:
        """Update running statistics of the data (before the ascent of a training step)."""

    def _direction(self, c: torch.Tensor) -> torch.Tensor:
        """The preconditioned ascent direction from the constraints per measured entry."""
        return c

    def _update(self, param: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        return param + step

    # -- the hooks the training loop calls ---------------------------------------------------
    def set_lr_factor(self, factor: float) -> None:
        factor = float(factor)
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"{type(self).__name__}: the learning-rate factor must be >= 0, got {factor}")
        self.lr_factor = factor

    # -- the loss ----------------------------------------------------------------------------
    def _loss(self, ctx: LossContext) -> torch.Tensor:
        y, h, h_y = prepare_h(ctx, self.divergence)
        m = real_dofs(y)
        mask = measured_mask(ctx.physics, y)
        learning = self.training and torch.is_grad_enabled()
        if not bool(self.initialised):
            start = self._initial(y.detach(), mask).to(self.eta.device)
            if learning:  # the first training step: keep the estimate
                if processes() > 1:  # the processes' estimates (each from its own batch) averaged, as multipliers
                    start = self._param_of(mean_over_processes(self._eta_of(start)))
                with torch.no_grad():
                    getattr(self, self._param_name).copy_(start)
                    self.eta.copy_(self._eta_of(start))
                    self.initialised.fill_(True)
                eta = self.eta
            else:  # evaluation before any training step: use the batch's estimate, store nothing
                eta = self._eta_of(start)
        else:
            eta = self.eta
        stats = self._constraints(ctx, y, h, h_y, mask)
        eta = eta.detach().clone().to(device=stats.device, dtype=stats.dtype)  # the buffer may change below
        penalty = (stats * eta).reshape(stats.shape[0], -1).sum(1)
        loss = (per_sample_sq(y - h_y) + 2 * penalty) / m
        if learning:
            measured = float(mask.sum()) / y.shape[0] * (2 if y.is_complex() else 1)
            self._ascend(stats.detach().mean(0) / max(measured, 1.0), y.detach(), mask)
        return loss.mean()

    @torch.no_grad()
    def _ascend(self, c: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> None:
        param = getattr(self, self._param_name)
        self._observe(y, mask)
        c = mean_over_processes(c.to(device=param.device, dtype=param.dtype))  # every process takes the same step
        g = self._direction(c)
        if int(self.steps) == 0 or self.momentum == 0:
            self.velocity.copy_(g)
        else:
            self.velocity.mul_(self.momentum).add_((1 - self.momentum) * g)
        new = self._update(param, self.step_size * self.lr_factor * self.velocity)
        param.copy_(new)
        if self._param_name != "eta":
            self.eta.copy_(self._eta_of(new))
        self.steps.add_(1)

    def _div_kwargs(self, ctx) -> dict:
        kw = {"n_probes": self.n_probes, "generator": ctx.generator}
        if self.divergence == "mc":
            kw.update(tau=self.tau, tau_rel=self.tau_rel)
        return kw

    def extra_repr(self) -> str:
        return f"eta={self.eta.tolist()}, divergence={self.divergence!r}, steps={int(self.steps)}"
