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
of the first training batch, on the measured entries of :math:`y`, by the estimators of :mod:`selfinv.noise`:
for :class:`UNSURE` the patch-PCA level :func:`~selfinv.noise.estimate_sigma_pca` (Chen, Zhu & Heng 2015) on real
images of at least 16×16, else the wavelet MAD :func:`~selfinv.noise.estimate_sigma` (Donoho & Johnstone 1994);
for :class:`UNSUREPoissonGaussian` the medians over the batch of the per-sample mean–variance fit
:func:`~selfinv.noise.fit_poisson_gaussian` (Foi et al. 2008) on such images, else the batch-wide
:func:`~selfinv.noise.estimate_poisson_gaussian`; and :func:`~selfinv.noise.estimate_covariance`
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

**Data-parallel training.** When ``torch.distributed`` is initialised (``torchrun``), every process sees its own
part of the batch, so the quantities the ascent reads are averaged over the processes
(:func:`mean_over_processes`) before it: the data-driven start (as multipliers; the covariance variant
factors the mean :math:`\Sigma` again), the constraint :math:`c`, and the Poisson-Gaussian moments. Every
process then holds the same multipliers at every step, as the network weights under
``DistributedDataParallel``; with equal shards the averaged constraint is that of the global batch.

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

**Where the code is.** :class:`UNSURE` is here; :class:`UNSURECovariance` (:mod:`~selfinv.losses.unsure_covariance`)
and :class:`UNSUREPoissonGaussian` (:mod:`~selfinv.losses.unsure_poisson_gaussian`) are imported from here too,
and the machinery the three share (the buffers, the start, the ascent, the averages over processes) is
:class:`~selfinv.losses.unsure_base.Multipliers`.
"""

from __future__ import annotations

import torch

from selfinv.losses.divergence import weighted_divergences
from selfinv.losses.unsure_base import (
    UNSURE_INFO,
    Multipliers,
    mean_over_processes,
    noise_variance,
    optional_positive,
)
from selfinv.losses.unsure_covariance import UNSURECovariance, autocorrelation, kernel_for
from selfinv.losses.unsure_poisson_gaussian import UNSUREPoissonGaussian

__all__ = [
    "MAX_LOG_STEP",
    "UNSURE",
    "UNSURECovariance",
    "UNSUREPoissonGaussian",
    "autocorrelation",
    "kernel_for",
    "mean_over_processes",
    "noise_variance",
]

#: the largest change of log η in one step of :class:`UNSURE` (a guard against a wild divergence estimate)
MAX_LOG_STEP = 0.5


class UNSURE(Multipliers):
    r"""UNSURE for white noise of unknown level: :math:`\frac1m[\|y - h\|^2 + 2\eta\operatorname{div} h]`, :math:`\eta` learned.

    ``eta`` is the multiplier (an over-estimate of :math:`\sigma^2`, see the module docstring) and
    ``sigma`` its square root. Does not read ``physics.noise``. The ascent is
    :math:`\log\eta \leftarrow \log\eta + s\lambda_t v` with :math:`v` the mean divergence per measured entry
    (module docstring); :meth:`monitored` gives ``{"eta": η}``.

    Args:
        sigma_init: initial :math:`\sqrt{\eta}`; ``None`` (default) estimates it from the first training
            batch (:func:`~selfinv.losses.unsure_base.noise_variance`).
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

    info = UNSURE_INFO

    def __init__(
        self,
        sigma_init: float | None = None,
        # the ascent and the divergence, as every variant
        step_size: float = 3e-3, momentum: float = 0.0, divergence: str = "mc",
        tau: float | torch.Tensor | None = None, tau_rel: float = 1e-2, n_probes: int = 1,
    ) -> None:
        s0 = optional_positive(sigma_init, "sigma_init", "UNSURE")
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
