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

**The ascent.** The multipliers are learned state (buffers, saved in ``state_dict``), updated *inside the
loss call*, only in training mode with gradients enabled, from detached quantities (no autograd history is
carried between steps). Write :math:`c = \frac{1}{m'}\overline{\operatorname{div} h}` for the constraint per
measured entry (batch mean; :math:`c = 1` for the identity). For the inner minimiser at a given
:math:`\eta`, :math:`c(\eta) = 1 - \eta/\hat\eta`, so :math:`\partial c/\partial\log\eta = -\eta/\hat\eta
\approx -1` near the solution: a step on :math:`\log\eta` along :math:`c` is a fixed fraction of a Newton
step whatever the scale of the data. Each variant preconditions its ascent this way (a Newton step of the
dual, with the curvature of a noise-dominated :math:`\log p_y`):

* :class:`UNSURE`: :math:`\log\eta \leftarrow \log\eta + s\,\lambda_t\,v` (at most :math:`\pm 1/2` per step),
  which keeps :math:`\eta > 0`;
* :class:`UNSUREPoissonGaussian`: :math:`\eta \leftarrow \max\big(0, \eta + s\,\lambda_t\,\bar v\,\hat M^{-1} v\big)`
  with :math:`\hat M` the second-moment matrix of the constraint weights :math:`(y, 1)` over the data seen
  and :math:`\bar v = \eta_\gamma\bar y + \eta_\sigma` the mean variance (see the class);
* :class:`UNSURECovariance`: a gradient step on the kernel :math:`K` of :math:`\Sigma = K \star K`, scaled so
  that a white kernel moves exactly as :class:`UNSURE`.

Here :math:`v` is the (preconditioned) constraint, averaged with momentum :math:`\mu` when
``momentum > 0`` (:math:`v \leftarrow \mu v + (1-\mu) g`, :math:`v = g` at the first step), :math:`s` the
dimensionless ``step_size`` and :math:`\lambda_t` the optimiser's learning-rate factor (1 at the start,
decaying with the schedule), which :func:`~selfinv.training.fit` passes through
:meth:`~selfinv.losses.base.Loss.set_lr_factor` before every step: the multiplier slows down as the
network does, and stops moving when the network stops learning (a multiplier that keeps moving against
a frozen network only drifts). Outside ``fit`` the factor stays 1 unless set.

**The start.** By default (``sigma_init=None``) the multipliers start from a robust estimate of the noise
of the first training batch, on the measured entries of :math:`y`: :func:`~selfinv.noise_estimation.estimate_sigma`
(the median absolute finest diagonal Haar coefficient, Donoho & Johnstone 1994) for :class:`UNSURE`,
:func:`~selfinv.noise_estimation.estimate_poisson_gaussian` (those coefficients' robust variances against
the local mean) for :class:`UNSUREPoissonGaussian` and :func:`~selfinv.noise_estimation.estimate_covariance`
(a median-based variogram) for :class:`UNSURECovariance`. A near-identity network has :math:`c \approx 1`, which pushes
:math:`\eta` up until the network learns to denoise; starting blind (a fixed :math:`\eta_0 = 0.01`) turns that
transient into an overshoot, while a start at :math:`\hat\sigma^2` leaves the ascent only the gap between
:math:`\sigma^2` and :math:`\hat\eta`. Before the first training step (a validation pass in eval mode) the
estimate of the batch at hand is used and not stored.

**The step.** While the network is still learning, its divergence is larger than that of the trained
network it will become, so the constraint measured on it asks for more than :math:`\hat\eta`: a fast ascent
follows it and over-smooths (a DnCNN trained 400 steps on 40×40 patches at σ = 25/255 reaches
:math:`c = 0` at :math:`\eta \approx 1.4\sigma^2`, against :math:`\hat\eta \approx 1.25\sigma^2` from the
supervised MSE, and loses 1.7 dB to SURE with ``step_size=0.01``, 0.5 dB with 0.003). The ascent must be the
slow one of the two time scales; with a good start it has little to cover. Default
``step_size=0.003``: 0.3 % of a Newton step per step at :math:`\lambda_t = 1`.

**Momentum.** The official code and deepinv both compute a momentum average but then step with the raw
gradient (``param + step_size * grad``), so neither uses momentum; momentum in the ascent of a saddle
point adds oscillation around it. The default is therefore ``momentum=0``; a positive value is a true
exponential average.

Three variants (one class each, so each has its own registry properties):

* :class:`UNSURE` — white noise of unknown level: one multiplier :math:`\eta` (an estimate of :math:`\sigma^2`).
* :class:`UNSURECovariance` — stationary, spatially correlated noise of unknown covariance
  :math:`\Sigma = K \star K` with :math:`K` a learned (r+1)×(r+1) kernel (as the paper and its code), so
  :math:`\Sigma` is a covariance (its Fourier transform :math:`|\hat K|^2 \ge 0`) with support in a
  (2r+1)×(2r+1) window, and the penalty
  :math:`2\operatorname{tr}(\Sigma J) = 2\sum_o\Sigma[o]\sum_i\partial h_i/\partial y_{i+o}` (Stein for
  :math:`\mathcal N(x, \Sigma)`: :math:`\mathbb E[(y-x)^\top h(y)] = \mathbb E\operatorname{tr}(\Sigma J)`).
* :class:`UNSUREPoissonGaussian` — variance :math:`\gamma x + \sigma^2` with unknown :math:`(\gamma, \sigma^2)`:
  the first-order PG-URE penalty :math:`2\sum_i(\eta_\gamma y_i + \eta_\sigma)\partial_i h_i`, two multipliers
  and the two constraints :math:`\mathbb E\sum_i y_i\partial_i h_i = 0`, :math:`\mathbb E\operatorname{div} h = 0`.

Defaults: ``sigma_init=None`` (estimated from the data), ``step_size=0.003`` (dimensionless, the same for data
in [0, 1] or [0, 255]), ``momentum=0``. The MC
divergence step follows the data as in :class:`~selfinv.losses.sure.SURE` (:math:`\tau = 10^{-2}\max|y|`).
:meth:`monitored` reports the multipliers for the logs.

Network evaluations per call: 2 with ``divergence="mc"`` (one perturbed pass serves all multipliers of a
variant), 1 with ``"hutchinson"``/``"exact"`` when this loss is the first to evaluate :math:`f(y)`. The
noise estimate costs no network evaluation.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from selfinv.losses.base import Loss, LossContext, LossInfo, per_sample_sq, real_dofs
from selfinv.losses.divergence import check_method, shifted_divergences, weighted_divergences
from selfinv.losses.sure import measured_mask, prepare_h
from selfinv.noise_estimation import estimate_covariance, estimate_poisson_gaussian, estimate_sigma

#: the largest change of log η in one step of :class:`UNSURE` (a guard against a wild divergence estimate)
MAX_LOG_STEP = 0.5


def _positive(value: float, name: str, owner: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be a finite number {rel}, got {value}")
    return float(value)


def _optional(value, name: str, owner: str) -> float | None:
    return None if value is None else _positive(value, name, owner, allow_zero=True)


def noise_variance(y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The robust noise variance of a batch, :math:`\overline{\hat\sigma^2}` over its samples (float64 0-d).

    :func:`~selfinv.noise_estimation.estimate_sigma` per sample; samples it cannot read (too small, fully
    masked) are skipped, and a batch with none gives 0.
    """
    s = estimate_sigma(y, mask)
    s = s[torch.isfinite(s)]
    return (s**2).mean() if s.numel() else torch.zeros((), dtype=torch.float64, device=y.device)


def autocorrelation(kernel: torch.Tensor) -> torch.Tensor:
    r""":math:`\Sigma[o] = \sum_p K[p]\,K[p+o]` for a (k, k) kernel: a (2k−1, 2k−1) kernel, offset 0 at the centre.

    The covariance of :math:`K \circledast \varepsilon` for white :math:`\varepsilon`; symmetric, and its
    Fourier transform is :math:`|\hat K|^2 \ge 0`.
    """
    k = kernel.shape[-1]
    padded = F.pad(kernel[None, None], (k - 1, k - 1, k - 1, k - 1))
    return F.conv2d(padded, kernel[None, None])[0, 0]


def kernel_for(covariance: torch.Tensor, iterations: int = 100) -> torch.Tensor:
    r"""A (r+1, r+1) kernel :math:`K` whose :math:`K \star K` is closest to a (2r+1, 2r+1) covariance kernel (least squares).

    The fit is not convex: L-BFGS from a few starts (white :math:`\sqrt{\Sigma[0]}\,\delta` at each position
    of :math:`K`, flat, and the (r+1)² window of the zero-phase square root of the spectrum), the best kept. A
    target that is not positive semi-definite gets a nearby factorable kernel.
    """
    r = covariance.shape[-1] // 2
    target = covariance.detach().to(torch.float64).cpu()
    if r == 0 or float(target[r, r]) <= 0:
        return target[r:r + 1, r:r + 1].clamp_min(0).sqrt().reshape(1, 1).to(covariance.device)
    scale = float(target[r, r])
    unit = target / scale
    size = 4 * r + 4  # the zero-phase square root of the (clipped) spectrum, on a grid that holds it
    grid = torch.zeros(size, size, dtype=torch.float64)
    grid[: 2 * r + 1, : 2 * r + 1] = unit
    root = torch.fft.ifft2(torch.fft.fft2(torch.roll(grid, (-r, -r), (0, 1))).real.clamp_min(0).sqrt()).real
    root = torch.roll(root, (r // 2, r // 2), (0, 1))[: r + 1, : r + 1]
    starts = [root, torch.full((r + 1, r + 1), 1.0 / (r + 1), dtype=torch.float64)]
    for p in range(r + 1):
        for q in range(r + 1):
            white = torch.zeros(r + 1, r + 1, dtype=torch.float64)
            white[p, q] = 1.0
            starts.append(white)
    best, best_value = starts[0], math.inf
    with torch.enable_grad():
        for start in starts:
            kernel = start.clone().requires_grad_(True)
            opt = torch.optim.LBFGS([kernel], lr=1.0, max_iter=iterations, tolerance_grad=1e-12, tolerance_change=1e-15,
                                    line_search_fn="strong_wolfe")

            def closure(kernel=kernel, opt=opt):
                opt.zero_grad()
                value = (autocorrelation(kernel) - unit).pow(2).sum()
                value.backward()
                return value

            opt.step(closure)
            value = float((autocorrelation(kernel.detach()) - unit).pow(2).sum())
            if value < best_value:
                best, best_value = kernel.detach(), value
    return (best * math.sqrt(scale)).to(covariance.device)


class _Multipliers(Loss):
    """Shared machinery: the learned buffer, data-driven start, preconditioned ascent in training mode."""

    #: the name of the buffer the ascent moves (``eta`` or ``kernel``)
    _param_name = "eta"

    def __init__(self, param0: torch.Tensor, initialised: bool, step_size, momentum, divergence, tau, tau_rel,
                 n_probes) -> None:
        super().__init__()
        owner = type(self).__name__
        if not (isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and 0 <= momentum < 1):
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {momentum}")
        _positive(step_size, "step_size", owner)
        _positive(tau_rel, "tau_rel", owner)
        if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
            raise ValueError(f"{owner}: n_probes must be a positive integer, got {n_probes}")
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
        g = self._direction(c.to(device=param.device, dtype=param.dtype))
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


class UNSURE(_Multipliers):
    r"""UNSURE for white noise of unknown level: :math:`\frac1m[\|y - h\|^2 + 2\eta\operatorname{div} h]`, :math:`\eta` learned.

    ``eta`` is the multiplier (an over-estimate of :math:`\sigma^2`, see the module docstring) and
    ``sigma`` its square root. Does not read ``physics.noise``. The ascent is
    :math:`\log\eta \leftarrow \log\eta + s\lambda_t v` with :math:`v` the mean divergence per measured entry
    (module docstring); :meth:`monitored` gives ``{"eta": η}``.

    Args:
        sigma_init: initial :math:`\sqrt{\eta}`; ``None`` (default) estimates it from the first training
            batch (:func:`~selfinv.noise_estimation.estimate_sigma`).
        step_size: the dimensionless ascent step :math:`s` on :math:`\log\eta` (default 0.003).
        momentum: EMA momentum of the ascent (default 0, as the official code and deepinv in effect).
        divergence: ``"mc"`` (default), ``"hutchinson"`` or ``"exact"``.
        tau, tau_rel: MC step, absolute or relative to :math:`\max|y|` (default :math:`10^{-2}`, as SURE's).
        n_probes: probes per divergence.

    Example:
        >>> import torch
        >>> from selfinv.losses.unsure import UNSURE
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> physics = Denoising(noise=Gaussian(0.1))
        >>> y = physics(0.5 * torch.ones(8, 1, 32, 32), generator=torch.Generator().manual_seed(0))
        >>> loss = UNSURE()
        >>> value = loss(y, physics, lambda y, physics: 0.5 * y, generator=torch.Generator().manual_seed(1))
        >>> round(float(loss.sigma), 2)      # started at the noise estimate, then one step up (div(0.5 y) > 0)
        0.1
        >>> sorted(loss.monitored()), "eta" in loss.state_dict() and not loss.eta.requires_grad
        (['eta'], True)
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
        sigma_init: float | None = None,
        step_size: float = 3e-3,
        momentum: float = 0.0,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-2,
        n_probes: int = 1,
    ) -> None:
        s0 = _optional(sigma_init, "sigma_init", "UNSURE")
        eta0 = torch.tensor(0.0 if s0 is None else s0**2, dtype=torch.float64)
        super().__init__(eta0, s0 is not None, step_size, momentum, divergence, tau, tau_rel, n_probes)

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\eta}`, the noise level the multiplier stands for."""
        return self.eta.sqrt()

    def monitored(self) -> dict[str, float]:
        return {"eta": float(self.eta)}

    def _initial(self, y, mask):
        return noise_variance(y, mask)

    def _constraints(self, ctx, y, h, h_y, mask):
        return weighted_divergences(h, y, [None], self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))[:, 0]

    def _update(self, eta, step):
        return eta * torch.exp(step.clamp(-MAX_LOG_STEP, MAX_LOG_STEP))


class UNSURECovariance(_Multipliers):
    r"""UNSURE for stationary correlated noise: a learned covariance :math:`\Sigma = K \star K` on a (2r+1)×(2r+1) window.

    .. math:: \frac1m\Big[\|y - h(y)\|^2 + 2\sum_{o}\Sigma[o]\sum_i \frac{\partial h_i}{\partial y_{i+o}}(y)\Big],
        \qquad \Sigma[o] = \sum_p K[p]\,K[p+o],

    with offsets acting circularly on the last two axes of ``y`` (the same window for every channel;
    channels are not coupled). ``kernel`` is the learned (r+1, r+1) kernel :math:`K` (the paper's
    parametrisation: noise :math:`K \circledast \varepsilon` has covariance :math:`K \star K`), and ``eta`` the
    (2r+1, 2r+1) covariance kernel :math:`\Sigma` (offset 0 at the centre) it gives: symmetric and positive
    semi-definite by construction (:math:`\hat\Sigma = |\hat K|^2 \ge 0`), so no clamping is needed.

    The ascent is a gradient step on :math:`K` of the Lagrangian's penalty
    :math:`P(K) = \sum_o \Sigma[o]\,c[o]` (:math:`c[o]` the offset-:math:`o` constraint per measured entry):
    :math:`K \leftarrow K + \frac{s\lambda_t}{4}\nabla_K P`, the scaling under which a white kernel
    :math:`K = \sqrt\eta\,\delta` moves exactly as :class:`UNSURE` does. The default start is the robust
    covariance estimate of the first batch (:func:`~selfinv.noise_estimation.estimate_covariance`, a
    median-based variogram) factored as :math:`K \star K` (:func:`kernel_for`); a white noise estimate would
    miss most of the power of strongly correlated noise (a 3×3 box leaves 1/9 of the variance in the finest
    details). ``sigma_init`` gives a white start :math:`K = \sigma_0\delta` instead. For
    :math:`\Sigma` the saddle point of a linear model :math:`f(y) = Wy + c` has
    :math:`W = I - \Sigma C_y^{-1}` and :math:`\sum_i W_{i,i+o} = 0` for every offset; with little signal
    (:math:`C_y \to \Sigma`) this gives :math:`\Sigma \to` the noise covariance. The MC estimate of all
    offsets uses one perturbed pass: :math:`\sum_i b_{i+o}(h(y+\tau b) - h(y))_i/\tau`.

    :meth:`monitored` gives ``eta_centre`` (:math:`\Sigma[0]`, the per-pixel variance) and ``eta_sum``
    (:math:`\sum_o\Sigma[o] = \hat K(0)^2`, the noise power at frequency 0).

    Args:
        radius: r: :math:`\Sigma` on a (2r+1)² window, :math:`K` of size (r+1)² (default 1; the paper's
            "kernel 3" experiment, a 3×3 :math:`K`, is ``radius=2``).
        sigma_init: a white start :math:`\sqrt{\Sigma[0]}`; ``None`` (default) estimates the covariance from
            the first training batch.
        step_size, momentum, divergence, tau, tau_rel, n_probes: as :class:`UNSURE`.

    Example:
        >>> import torch
        >>> from selfinv.losses.unsure import UNSURECovariance
        >>> loss = UNSURECovariance(radius=1, sigma_init=0.1)
        >>> loss.eta
        tensor([[0.0000, 0.0000, 0.0000],
                [0.0000, 0.0100, 0.0000],
                [0.0000, 0.0000, 0.0000]], dtype=torch.float64)
        >>> loss.kernel.shape
        torch.Size([2, 2])
    """

    info = replace(
        UNSURE.info,
        unknown_coloured_noise=True,
        reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025 (unknown noise covariance)",
    )
    _param_name = "kernel"

    def __init__(
        self,
        radius: int = 1,
        sigma_init: float | None = None,
        step_size: float = 3e-3,
        momentum: float = 0.0,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-2,
        n_probes: int = 1,
    ) -> None:
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"UNSURECovariance: radius must be a non-negative integer, got {radius}")
        s0 = _optional(sigma_init, "sigma_init", "UNSURECovariance")
        self.radius = radius
        super().__init__(self._white(0.0 if s0 is None else s0), s0 is not None, step_size, momentum, divergence, tau,
                         tau_rel, n_probes)

    def _white(self, sigma) -> torch.Tensor:
        kernel = torch.zeros(self.radius + 1, self.radius + 1, dtype=torch.float64)
        kernel[0, 0] = sigma
        return kernel

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\Sigma[0]}`, the per-pixel noise standard deviation the centre stands for."""
        return self.eta[self.radius, self.radius].sqrt()

    def monitored(self) -> dict[str, float]:
        return {"eta_centre": float(self.eta[self.radius, self.radius]), "eta_sum": float(self.eta.sum())}

    def _initial(self, y, mask):
        if y.ndim >= 3 and not y.is_complex() and min(y.shape[-2:]) > self.radius + 1:
            covariance = estimate_covariance(y, self.radius, mask)
            if bool(torch.isfinite(covariance).all()) and float(covariance[self.radius, self.radius]) > 0:
                return kernel_for(covariance).to(y.device)
        return self._white(noise_variance(y, mask).sqrt()).to(y.device)

    def _eta_of(self, kernel):
        return autocorrelation(kernel)

    def _constraints(self, ctx, y, h, h_y, mask):
        return shifted_divergences(h, y, self.radius, self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))

    def _direction(self, c):
        with torch.enable_grad():
            kernel = self.kernel.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad((autocorrelation(kernel) * c).sum(), kernel)
        return grad / 4


class UNSUREPoissonGaussian(_Multipliers):
    r"""UNSURE for Poisson-Gaussian noise of unknown gain and level: two multipliers :math:`(\eta_\gamma, \eta_\sigma)`.

    .. math:: \frac1m\Big[\|y - h(y)\|^2 + 2\sum_i(\eta_\gamma\,y_i + \eta_\sigma)\,\partial_i h_i(y)\Big]

    the first-order PG-URE with :math:`(\gamma, \sigma^2)` replaced by multipliers of the constraints
    :math:`c = \frac1{m'}\big(\mathbb E\sum_i y_i\partial_i h_i,\ \mathbb E\sum_i\partial_i h_i\big) = 0` (the
    variance :math:`\gamma x + \sigma^2` is affine in the signal, so both weighted divergences must vanish).
    ``eta`` is ``[eta_gain, eta_sigma]``; ``gain`` and ``sigma`` (:math:`\sqrt{\eta_\sigma}`) read it. One MC
    probe and one perturbed pass serve both constraints.

    **The ascent is preconditioned.** For data in [0, 1] the two constraint weights :math:`y` and 1 are
    nearly collinear, so a plain gradient step moves the two multipliers along one direction only (in a
    linear model their Hessian has a condition number of about 40). For the inner minimiser
    :math:`f = y + D_\eta\nabla\log p_y`, :math:`\partial c_k/\partial\eta_l = \frac1{m'}\mathbb E\sum_i w_{k,i}
    w_{l,i}\,\partial^2_{ii}\log p_y \approx -M_{kl}/\bar v` with :math:`w = (y, 1)`,
    :math:`M = \frac1{m'}\mathbb E\sum_i w_i w_i^\top` and :math:`\bar v` the mean noise variance. The
    Newton step of the dual is therefore :math:`\bar v\,M^{-1}c`, and the ascent is

    .. math:: \eta \leftarrow \max\big(0,\ \eta + s\,\lambda_t\,\bar v\,\hat M^{-1} c\big),\qquad
        \bar v = \max(\eta_\gamma\bar y + \eta_\sigma,\ 10^{-4}\hat M_{11}),

    with :math:`\hat M` the running mean of the batch moments over every step seen (buffer ``moments``; the
    floor lets the multipliers leave 0). Scale-free: data in [0, 255] take the same steps.

    The data-driven start (``gain_init=sigma_init=None``, the default) is the robust fit of the first batch's
    local variances against its local means, :func:`~selfinv.noise_estimation.estimate_poisson_gaussian`
    (if that fails, the robust variance :math:`\hat v` split evenly, :math:`\eta_\gamma\bar y = \eta_\sigma =
    \hat v/2`). Giving either init gives both (the other then defaults to 0.1 for the gain, 0.1² for the level).

    :meth:`monitored` gives ``eta_gain`` and ``eta_sigma2``.

    Args:
        gain_init: initial :math:`\eta_\gamma` (``None``: from the data).
        sigma_init: initial :math:`\sqrt{\eta_\sigma}` (``None``: from the data).
        step_size: the dimensionless ascent step :math:`s` (default 0.003, as :class:`UNSURE`).
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
        gain_init: float | None = None,
        sigma_init: float | None = None,
        step_size: float = 3e-3,
        momentum: float = 0.0,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-2,
        n_probes: int = 1,
    ) -> None:
        g0 = _optional(gain_init, "gain_init", "UNSUREPoissonGaussian")
        s0 = _optional(sigma_init, "sigma_init", "UNSUREPoissonGaussian")
        given = g0 is not None or s0 is not None
        eta0 = torch.zeros(2, dtype=torch.float64)
        if given:
            eta0 = torch.tensor([0.1 if g0 is None else g0, (0.1 if s0 is None else s0) ** 2], dtype=torch.float64)
        super().__init__(eta0, given, step_size, momentum, divergence, tau, tau_rel, n_probes)
        self.register_buffer("moments", torch.zeros(2, 2, dtype=torch.float64))

    @property
    def gain(self) -> torch.Tensor:
        r""":math:`\eta_\gamma`, the learned gain multiplier."""
        return self.eta[0]

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\eta_\sigma}`."""
        return self.eta[1].sqrt()

    def monitored(self) -> dict[str, float]:
        return {"eta_gain": float(self.eta[0]), "eta_sigma2": float(self.eta[1])}

    @staticmethod
    def _batch_moments(y, mask) -> torch.Tensor:
        w = mask.to(torch.float64)
        y = y.to(torch.float64)
        total = w.sum().clamp_min(1.0)
        m1, m2 = (w * y).sum() / total, (w * y * y).sum() / total
        return torch.stack([torch.stack([m2, m1]), torch.stack([m1, torch.ones_like(m1)])])

    def _initial(self, y, mask):
        if not y.is_complex():
            gain, level = estimate_poisson_gaussian(y, mask)
            if math.isfinite(gain) and math.isfinite(level) and gain + level > 0:
                return torch.tensor([gain, level], dtype=torch.float64, device=y.device)
        v = noise_variance(y, mask)  # fallback: the robust variance, split evenly between the two terms
        mean = self._batch_moments(y, mask)[0, 1].to(v.device)
        if float(mean) <= 0:
            return torch.stack([torch.zeros_like(v), v])
        return torch.stack([v / (2 * mean), v / 2])

    def _constraints(self, ctx, y, h, h_y, mask):
        if y.is_complex():
            raise ValueError("UNSUREPoissonGaussian: defined for real measurements only")
        return weighted_divergences(h, y, [y.detach(), None], self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))

    def _observe(self, y, mask):
        batch = self._batch_moments(y, mask).to(self.moments.device)
        self.moments.add_((batch - self.moments) / (int(self.steps) + 1))  # the mean over the steps seen

    def _direction(self, c):
        M = self.moments
        vbar = (self.eta[0] * M[0, 1] + self.eta[1]).clamp_min(1e-4 * M[0, 0])
        if float(M[0, 0] - M[0, 1] ** 2) <= 1e-12 * float(M[0, 0]):  # constant data: (y, 1) collinear, no split
            return vbar * c / M.diagonal().clamp_min(torch.finfo(M.dtype).tiny) / 2
        return vbar * torch.linalg.solve(M, c)

    def _update(self, eta, step):
        return (eta + step).clamp_min(0)
