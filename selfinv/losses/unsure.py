r"""UNSURE: SURE without knowing the noise level (Tachella, Davies & Jacques, ICLR 2025).

SURE needs :math:`\sigma^2`. UNSURE replaces it by a Lagrange multiplier :math:`\eta` of the
*zero expected divergence* (ZED) constraint and solves the saddle-point problem

.. math::

    \min_f \max_{\eta \ge 0}\ \frac1m\,\mathbb E_y\Big[\|y - h(y)\|^2 + 2\eta\,\operatorname{div} h(y)\Big],
    \qquad h = A f,

i.e. :math:`\min_f \mathbb E\|y - h(y)\|^2` subject to :math:`\mathbb E\operatorname{div} h(y) = 0`. The
minimiser is :math:`f(y) = y + \hat\eta\nabla\log p_y(y)` with
:math:`\hat\eta = \big(\frac1n\mathbb E\|\nabla\log p_y\|^2\big)^{-1} = \sigma^2/(1 - \mathrm{MMSE}/\sigma^2) \ge \sigma^2`:
the learned multiplier over-estimates the noise variance, and the error is
:math:`\mathrm{MMSE}\,\sigma^2/(\sigma^2 - \mathrm{MMSE})`, close to the MMSE when the signal has few
degrees of freedom. Not MMSE-optimal, but needs no noise level.

The multiplier is learned state (a buffer, saved in ``state_dict``), updated *inside the loss call*
by one step of gradient **ascent** with momentum on :math:`\partial\mathcal L/\partial\eta =
\frac2m\,\overline{\operatorname{div} h}` (the batch mean), only when the loss is in training mode and
gradients are enabled, from detached quantities (no autograd history is carried between steps), and
clamped at :math:`\eta \ge 0`. The momentum is an exponential average of the gradients,
:math:`v \leftarrow \mu v + (1-\mu) g` (:math:`v = g` at the first step), and
:math:`\eta \leftarrow \max(0, \eta + s\,v)`. (The peer library computes :math:`v` but then steps with
the raw gradient; here the momentum is used.)

Three variants (one class each, so each has its own registry properties):

* :class:`UNSURE` — white noise of unknown level: one multiplier :math:`\eta` (an estimate of :math:`\sigma^2`).
* :class:`UNSURECovariance` — stationary, spatially correlated noise of unknown covariance with support in
  a (2r+1)×(2r+1) window: one multiplier per offset :math:`o`, the constraints
  :math:`\mathbb E\sum_i\partial h_i/\partial y_{i+o} = 0`, and the penalty
  :math:`2\operatorname{tr}(\Sigma_\eta J) = 2\sum_o\eta[o]\sum_i\partial h_i/\partial y_{i+o}` (Stein for
  :math:`\mathcal N(x, \Sigma)`: :math:`\mathbb E[(y-x)^\top h(y)] = \mathbb E\operatorname{tr}(\Sigma J)`).
  :math:`\eta` is a symmetric kernel, an estimate of the noise covariance by offset.
* :class:`UNSUREPoissonGaussian` — variance :math:`\gamma x + \sigma^2` with unknown :math:`(\gamma, \sigma^2)`:
  the first-order PG-URE penalty :math:`2\sum_i(\eta_\gamma y_i + \eta_\sigma)\partial_i h_i`, two multipliers
  and the two constraints :math:`\mathbb E\sum_i y_i\partial_i h_i = 0`, :math:`\mathbb E\operatorname{div} h = 0`.

Defaults (anchors §1.8): ``sigma_init=0.1`` (:math:`\eta_0 = 0.01`, the official code's initial value),
``momentum=0.9`` (official and deepinv), ``step_size=1e-4`` (deepinv's, on :math:`\eta`; the official code
steps the standard deviation with 0.01, about :math:`4\times10^{-4}` on :math:`\eta` at σ = 0.1). The
multiplier has the units of :math:`y^2`: for data in [0, 255] scale ``sigma_init`` by 255 and
``step_size`` by 255². The MC divergence step follows the data as in :class:`~selfinv.losses.sure.SURE`
(:math:`\tau = 10^{-3}\max|y|`).

Network evaluations per call: 2 with ``divergence="mc"`` (one perturbed pass serves all multipliers of a
variant), 1 with ``"hutchinson"``/``"exact"`` when this loss is the first to evaluate :math:`f(y)`.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from selfinv.losses.base import Loss, LossContext, LossInfo, per_sample_sq, real_dofs
from selfinv.losses.divergence import check_method, shifted_divergences, weighted_divergences
from selfinv.losses.sure import measured_mask, prepare_h


def _positive(value: float, name: str, owner: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be a finite number {rel}, got {value}")
    return float(value)


class _Multipliers(Loss):
    """Shared machinery: multipliers ``eta`` (buffer), EMA momentum (buffer), ascent in training mode."""

    def __init__(self, eta0: torch.Tensor, step_size, momentum, divergence, tau, tau_rel, n_probes) -> None:
        super().__init__()
        owner = type(self).__name__
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {momentum}")
        _positive(tau_rel, "tau_rel", owner)
        if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
            raise ValueError(f"{owner}: n_probes must be a positive integer, got {n_probes}")
        self.divergence = check_method(divergence, owner)
        self.momentum, self.tau, self.tau_rel, self.n_probes = float(momentum), tau, float(tau_rel), n_probes
        steps = torch.as_tensor(step_size, dtype=torch.float64).reshape(-1)
        if bool((steps <= 0).any()) or not bool(torch.isfinite(steps).all()):
            raise ValueError(f"{owner}: step_size must be positive, got {step_size}")
        self.step_size = steps
        self.register_buffer("eta", eta0.to(torch.float64))
        self.register_buffer("velocity", torch.zeros_like(self.eta))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    # -- the variant's constraints ----------------------------------------------------------
    def _constraints(self, ctx, y, h, h_y, mask) -> torch.Tensor:
        """(B, *eta.shape): per sample, the quantity each multiplier multiplies (its constraint)."""
        raise NotImplementedError

    def _project(self, eta: torch.Tensor) -> torch.Tensor:
        return eta.clamp_min(0)

    def _symmetrise(self, grad: torch.Tensor) -> torch.Tensor:
        return grad

    # -- the loss ----------------------------------------------------------------------------
    def _loss(self, ctx: LossContext) -> torch.Tensor:
        y, h, h_y = prepare_h(ctx, self.divergence)
        m = real_dofs(y)
        stats = self._constraints(ctx, y, h, h_y, measured_mask(ctx.physics, y))
        real = stats.dtype
        eta = self.eta.detach().clone().to(device=stats.device, dtype=real)  # a copy: the buffer may change below
        penalty = (stats * eta).reshape(stats.shape[0], -1).sum(1)
        loss = (per_sample_sq(y - h_y) + 2 * penalty) / m
        if self.training and torch.is_grad_enabled():
            self._ascend(2 * stats.detach().mean(0) / m)
        return loss.mean()

    @torch.no_grad()
    def _ascend(self, grad: torch.Tensor) -> None:
        grad = self._symmetrise(grad.to(device=self.eta.device, dtype=self.eta.dtype))
        if int(self.steps) == 0:
            self.velocity.copy_(grad)
        else:
            self.velocity.mul_(self.momentum).add_((1 - self.momentum) * grad)
        step = (
            self.step_size.to(self.eta.device).reshape(-1, *([1] * (self.eta.ndim - 1)))
            if self.eta.ndim
            else self.step_size[0]
        )
        self.eta.copy_(self._project(self.eta + step * self.velocity))
        self.steps.add_(1)

    def _div_kwargs(self, ctx) -> dict:
        kw = {"n_probes": self.n_probes, "generator": ctx.generator}
        if self.divergence == "mc":
            kw.update(tau=self.tau, tau_rel=self.tau_rel)
        return kw

    def extra_repr(self) -> str:
        return f"eta={self.eta.tolist()}, divergence={self.divergence!r}, steps={int(self.steps)}"


class UNSURE(_Multipliers):
    r"""UNSURE for white noise of unknown level: :math:`\frac1m[\|y - h\|^2 + 2\eta\operatorname{div} h]`, :math:`\eta` learned.

    ``eta`` is the multiplier (an over-estimate of :math:`\sigma^2`, see the module docstring) and
    ``sigma`` its square root. Does not read ``physics.noise``.

    Args:
        sigma_init: initial :math:`\sqrt{\eta}` (default 0.1, so :math:`\eta_0 = 0.01`).
        step_size: ascent step on :math:`\eta` (default :math:`10^{-4}`, for data in [0, 1]).
        momentum: EMA momentum of the ascent (default 0.9).
        divergence: ``"mc"`` (default), ``"hutchinson"`` or ``"exact"``.
        tau, tau_rel: MC step, absolute or relative to :math:`\max|y|` (default :math:`10^{-3}`).
        n_probes: probes per divergence.

    Example:
        >>> import torch
        >>> from selfinv.losses.unsure import UNSURE
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> physics = Denoising(noise=Gaussian(0.1))
        >>> y = physics(torch.rand(8, 1, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> loss = UNSURE(sigma_init=0.1, step_size=1e-3)
        >>> value = loss(y, physics, lambda y, physics: 0.5 * y, generator=torch.Generator().manual_seed(1))
        >>> float(loss.eta) > 0.01           # div(0.5 y) > 0: the multiplier goes up
        True
        >>> "eta" in loss.state_dict() and not loss.eta.requires_grad
        True
    """

    info = LossInfo(
        train_evals=2,
        test_evals=1,
        single_y=True,
        mmse_optimal=False,
        unknown_separable_noise=True,
        unknown_coloured_noise=False,
        noise_models=None,
        general_operator=True,
        reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025",
    )

    def __init__(
        self,
        sigma_init: float = 0.1,
        step_size: float = 1e-4,
        momentum: float = 0.9,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-3,
        n_probes: int = 1,
    ) -> None:
        s0 = _positive(sigma_init, "sigma_init", "UNSURE", allow_zero=True)
        _positive(step_size, "step_size", "UNSURE")
        super().__init__(
            torch.tensor(s0**2, dtype=torch.float64), step_size, momentum, divergence, tau, tau_rel, n_probes
        )

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\eta}`, the noise level the multiplier stands for."""
        return self.eta.sqrt()

    def _constraints(self, ctx, y, h, h_y, mask):
        return weighted_divergences(h, y, [None], self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))[:, 0]


class UNSURECovariance(_Multipliers):
    r"""UNSURE for stationary correlated noise: one multiplier per offset of a (2r+1)×(2r+1) window.

    .. math:: \frac1m\Big[\|y - h(y)\|^2 + 2\sum_{o}\eta[o]\sum_i \frac{\partial h_i}{\partial y_{i+o}}(y)\Big]

    with offsets acting circularly on the last two axes of ``y`` (the same window for every channel;
    channels are not coupled). ``eta`` is the (2r+1, 2r+1) kernel (offset 0 at the centre), kept
    symmetric (:math:`\eta[o] = \eta[-o]`, as a covariance is); only its centre, a variance, is
    clamped at 0. At the saddle point for a linear model :math:`f(y) = Wy + c`,
    :math:`W = I - \Sigma_\eta C_y^{-1}` and :math:`\sum_i W_{i,i+o} = 0` for every offset; with little
    signal (:math:`C_y \to \Sigma`) this gives :math:`\eta[o] \to \Sigma[o]`, the noise covariance. The
    MC estimate of all offsets uses one perturbed pass: :math:`\sum_i b_{i+o}(h(y+\tau b) - h(y))_i/\tau`.

    Args:
        radius: r (default 1: a 3×3 window, as the paper's kernel-3 experiment).
        sigma_init: the initial centre is ``sigma_init**2``, the other offsets 0 (white noise).
        step_size, momentum, divergence, tau, tau_rel, n_probes: as :class:`UNSURE`.

    Example:
        >>> import torch
        >>> from selfinv.losses.unsure import UNSURECovariance
        >>> loss = UNSURECovariance(radius=1)
        >>> loss.eta
        tensor([[0.0000, 0.0000, 0.0000],
                [0.0000, 0.0100, 0.0000],
                [0.0000, 0.0000, 0.0000]], dtype=torch.float64)
    """

    info = replace(
        UNSURE.info,
        unknown_coloured_noise=True,
        reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025 (unknown noise covariance)",
    )

    def __init__(
        self,
        radius: int = 1,
        sigma_init: float = 0.1,
        step_size: float = 1e-4,
        momentum: float = 0.9,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-3,
        n_probes: int = 1,
    ) -> None:
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"UNSURECovariance: radius must be a non-negative integer, got {radius}")
        s0 = _positive(sigma_init, "sigma_init", "UNSURECovariance", allow_zero=True)
        _positive(step_size, "step_size", "UNSURECovariance")
        eta0 = torch.zeros(2 * radius + 1, 2 * radius + 1, dtype=torch.float64)
        eta0[radius, radius] = s0**2
        self.radius = radius
        super().__init__(eta0, step_size, momentum, divergence, tau, tau_rel, n_probes)

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\eta[0]}`, the per-pixel noise standard deviation the centre stands for."""
        return self.eta[self.radius, self.radius].sqrt()

    def _constraints(self, ctx, y, h, h_y, mask):
        return shifted_divergences(h, y, self.radius, self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))

    def _symmetrise(self, grad):
        return (grad + grad.flip(0, 1)) / 2

    def _project(self, eta):
        r = self.radius
        centre = eta[r, r].clamp_min(0)
        eta = eta.clone()
        eta[r, r] = centre
        return eta


class UNSUREPoissonGaussian(_Multipliers):
    r"""UNSURE for Poisson-Gaussian noise of unknown gain and level: two multipliers :math:`(\eta_\gamma, \eta_\sigma)`.

    .. math:: \frac1m\Big[\|y - h(y)\|^2 + 2\sum_i(\eta_\gamma\,y_i + \eta_\sigma)\,\partial_i h_i(y)\Big]

    the first-order PG-URE with :math:`(\gamma, \sigma^2)` replaced by multipliers of the constraints
    :math:`\mathbb E\sum_i y_i\partial_i h_i = 0` and :math:`\mathbb E\operatorname{div} h = 0` (the
    variance :math:`\gamma x + \sigma^2` is affine in the signal, so both weighted divergences must vanish).
    ``eta`` is ``[eta_gain, eta_sigma]``; ``gain`` and ``sigma`` (:math:`\sqrt{\eta_\sigma}`) read it. Both
    are clamped at 0. One MC probe and one perturbed pass serve both constraints.

    Args:
        gain_init: initial :math:`\eta_\gamma` (default 0.1, the official code's).
        sigma_init: initial :math:`\sqrt{\eta_\sigma}` (default 0.1).
        step_size: ascent step, a float for both or a pair ``(gain_step, sigma_step)`` (default
            :math:`10^{-4}`; the official CT runs use :math:`5\times10^{-6}` with inits :math:`5\times10^{-4}`).
        momentum, divergence, tau, tau_rel, n_probes: as :class:`UNSURE`.

    Example:
        >>> from selfinv.losses.unsure import UNSUREPoissonGaussian
        >>> loss = UNSUREPoissonGaussian(gain_init=0.05, sigma_init=0.1)
        >>> round(float(loss.gain), 6), round(float(loss.sigma), 6)
        (0.05, 0.1)
    """

    info = replace(UNSURE.info, reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025 (Poisson-Gaussian variant)")

    def __init__(
        self,
        gain_init: float = 0.1,
        sigma_init: float = 0.1,
        step_size: float | tuple[float, float] = 1e-4,
        momentum: float = 0.9,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-3,
        n_probes: int = 1,
    ) -> None:
        g0 = _positive(gain_init, "gain_init", "UNSUREPoissonGaussian", allow_zero=True)
        s0 = _positive(sigma_init, "sigma_init", "UNSUREPoissonGaussian", allow_zero=True)
        steps = (step_size, step_size) if isinstance(step_size, (int, float)) else tuple(step_size)
        if len(steps) != 2:
            raise ValueError(f"UNSUREPoissonGaussian: step_size must be a float or a pair, got {step_size}")
        for s in steps:
            _positive(s, "step_size", "UNSUREPoissonGaussian")
        super().__init__(
            torch.tensor([g0, s0**2], dtype=torch.float64), steps, momentum, divergence, tau, tau_rel, n_probes
        )

    @property
    def gain(self) -> torch.Tensor:
        r""":math:`\eta_\gamma`, the learned gain multiplier."""
        return self.eta[0]

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\eta_\sigma}`."""
        return self.eta[1].sqrt()

    def _constraints(self, ctx, y, h, h_y, mask):
        if y.is_complex():
            raise ValueError("UNSUREPoissonGaussian: defined for real measurements only")
        return weighted_divergences(h, y, [y.detach(), None], self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))
