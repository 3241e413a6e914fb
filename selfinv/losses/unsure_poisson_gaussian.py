r"""UNSURE for Poisson-Gaussian noise of unknown gain and level (:class:`UNSUREPoissonGaussian`).

The theory, the start and the step of every variant are in :mod:`selfinv.losses.unsure` (which re-exports this
class); this one adds two multipliers and a preconditioned ascent over the moments of the data.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from selfinv.losses.divergence import weighted_divergences
from selfinv.losses.unsure_base import (
    UNSURE_INFO,
    Multipliers,
    image_like,
    mean_over_processes,
    noise_variance,
    optional_positive,
)
from selfinv.noise.estimation import BLACK_LEVEL_SIGNIFICANCE
from selfinv.noise.mean_variance import fit_poisson_gaussian
from selfinv.noise.wavelet import estimate_poisson_gaussian


class UNSUREPoissonGaussian(Multipliers):
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

    .. math:: \eta \leftarrow \max\big((0, -\eta_\gamma c_0),\ \eta + s\,\lambda_t\,\bar v\,\hat M^{-1} c\big),\qquad
        \bar v = \max(\eta_\gamma\bar y + \eta_\sigma,\ 10^{-4}\hat M_{11}),

    with :math:`\hat M` the running mean of the batch moments over every step seen (buffer ``moments``; the
    floor lets the multipliers leave 0). Scale-free: data in [0, 255] take the same steps. The bound
    :math:`c_0` (buffer ``black_level``) is 0, so both multipliers stay :math:`\ge 0`, unless the start found a
    black level.

    **Black level.** A camera with offset :math:`c` has :math:`\operatorname{Var} y = \gamma(x - c) + \sigma^2`,
    a variance line :math:`\eta_\gamma y + \eta_\sigma` with :math:`\eta_\sigma = \sigma^2 - \gamma c` possibly
    negative (Foi et al. 2008; :func:`~selfinv.noise.estimate` gives it as the ``offset`` of its
    :class:`~selfinv.noise.PoissonGaussian`). The constraints are the same whatever the sign, and the
    multiplier :math:`\eta_\sigma` may be negative: when the data-driven start finds a black level (most samples
    of the batch with a significantly negative intercept, as :func:`~selfinv.noise.estimate` decides) its level
    keeps its negative sign, and the start's black level :math:`c_0 = -\eta_\sigma/\eta_\gamma` bounds the ascent,
    :math:`\eta_\sigma \ge -\eta_\gamma c_0` (the variance stays :math:`\ge 0` for signal above :math:`c_0`). Without
    a black level the start's level is clamped at 0, as the ascent then keeps it.

    The data-driven start (``gain_init=sigma_init=None``, the default) is the robust fit of the first batch's
    local variances against its local means: the medians over the batch of the per-sample fit
    :func:`~selfinv.noise.fit_poisson_gaussian` (Foi et al. 2008; a negative level only for a black level, above)
    on real images of at least 16×16, else the
    batch-wide :func:`~selfinv.noise.estimate_poisson_gaussian` (if that fails, the robust variance :math:`\hat v` split evenly, :math:`\eta_\gamma\bar y = \eta_\sigma =
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

    info = replace(UNSURE_INFO, reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025 (Poisson-Gaussian variant)")

    def __init__(
        self,
        gain_init: float | None = None,
        sigma_init: float | None = None,
        # the ascent and the divergence, as every variant
        step_size: float = 3e-3, momentum: float = 0.0, divergence: str = "mc",
        tau: float | torch.Tensor | None = None, tau_rel: float = 1e-2, n_probes: int = 1,
    ) -> None:
        g0 = optional_positive(gain_init, "gain_init", "UNSUREPoissonGaussian")
        s0 = optional_positive(sigma_init, "sigma_init", "UNSUREPoissonGaussian")
        given = g0 is not None or s0 is not None
        eta0 = torch.zeros(2, dtype=torch.float64)
        if given:
            eta0 = torch.tensor([0.1 if g0 is None else g0, (0.1 if s0 is None else s0) ** 2], dtype=torch.float64)
        super().__init__(eta0, given, step_size, momentum, divergence, tau, tau_rel, n_probes)
        self.register_buffer("moments", torch.zeros(2, 2, dtype=torch.float64))
        self.register_buffer("black_level", torch.zeros((), dtype=torch.float64))  # c₀: η_σ >= −η_γ c₀

    @property
    def gain(self) -> torch.Tensor:
        r""":math:`\eta_\gamma`, the learned gain multiplier."""
        return self.eta[0]

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\eta_\sigma}` (0 for a negative level, a black level)."""
        return self.eta[1].clamp_min(0).sqrt()

    def monitored(self) -> dict[str, float]:
        return {"eta_gain": float(self.eta[0]), "eta_sigma2": float(self.eta[1])}

    @staticmethod
    def _batch_moments(y, mask) -> torch.Tensor:
        w = mask.to(torch.float64)
        y = y.to(torch.float64)
        total = w.sum().clamp_min(1.0)
        m1, m2 = (w * y).sum() / total, (w * y * y).sum() / total
        return torch.stack([torch.stack([m2, m1]), torch.stack([m1, torch.ones_like(m1)])])

    @staticmethod
    def _fitted_start(y, mask) -> torch.Tensor | None:
        """(gain, level) from the per-sample fit (Foi et al. 2008): the median gain (>= 0), and the level that keeps
        the median of each sample's fitted variance at its own mean, :math:`\\hat\\gamma_i\\bar y_i + \\hat\\sigma_i^2` (well
        determined even where the gain is not: flat images), >= 0 unless most samples have a black level."""
        fit = fit_poisson_gaussian(y, mask)
        w = mask.expand(y.shape).to(torch.float64)
        means = (w * y.to(torch.float64)).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)
        ok = torch.isfinite(fit.gain) & torch.isfinite(fit.sigma2)
        if not bool(ok.any()):
            return None
        gain = fit.gain[ok].median().clamp_min(0)
        level = (fit.gain[ok] * means[ok] + fit.sigma2[ok] - gain * means[ok]).median()
        black = (fit.gain > 0) & (fit.sigma2 < -BLACK_LEVEL_SIGNIFICANCE * fit.sigma2_se)  # as estimate decides
        if not (2 * int(black[ok].sum()) > int(ok.sum()) and float(gain) > 0):
            level = level.clamp_min(0)
        elif float(gain * means[ok].median() + level) <= 0:  # a variance line below 0 at the data: no start
            return None
        return torch.stack([gain, level]) if float(gain + level.abs()) > 0 else None

    def _initial(self, y, mask):
        if image_like(y):
            start = self._fitted_start(y, mask)
            if start is not None:
                return start.to(y.device)
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
        batch = mean_over_processes(self._batch_moments(y, mask).to(self.moments.device))
        self.moments.add_((batch - self.moments) / (int(self.steps) + 1))  # the mean over the steps seen

    def _direction(self, c):
        M = self.moments
        vbar = (self.eta[0] * M[0, 1] + self.eta[1]).clamp_min(1e-4 * M[0, 0])
        if float(M[0, 0] - M[0, 1] ** 2) <= 1e-12 * float(M[0, 0]):  # constant data: (y, 1) collinear, no split
            return vbar * c / M.diagonal().clamp_min(torch.finfo(M.dtype).tiny) / 2
        return vbar * torch.linalg.solve(M, c)

    def _update(self, eta, step):
        if int(self.steps) == 0 and float(eta[0]) > 0 and float(eta[1]) < 0:  # a start with a black level
            self.black_level.fill_(-float(eta[1]) / float(eta[0]))
        new = (eta + step).clamp_min(0)
        if float(self.black_level) > 0:
            new[1] = (eta[1] + step[1]).clamp_min(-new[0] * self.black_level)
        return new

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        state_dict.setdefault(prefix + "black_level", torch.zeros((), dtype=torch.float64))  # older checkpoints
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
