r"""No-reference checks of a denoised result: does the residual :math:`r = y - \hat x` look like the noise?

Without a clean image, the part a denoiser removed is the only witness of what it did. If :math:`\hat x` were the
clean image, :math:`r` would be the noise itself: zero-mean, of the noise model's variance
:math:`\mathbb E\,r_i^2 = v(x_i)`, and, for white noise, uncorrelated between neighbours. The checks, per sample:

* **variance ratio** :math:`\rho = \sum_i r_i^2 / \sum_i v(\hat x_i)` — about 1 when the removed part has the
  noise's power; well below 1: noise left in the output (or a noise level overestimated); well above 1: signal
  removed with the noise (over-smoothing) or a noise level underestimated;
* **lag-1 autocorrelation** along each spatial axis,
  :math:`a_k = \sum_i \tilde r_i \tilde r_{i+e_k} / \sum_i \tilde r_i^2` with :math:`\tilde r = r - \bar r` —
  about 0 (standard error :math:`1/\sqrt n`) for white noise; positive: edges or texture in the residual, or
  noise that was correlated to begin with (check the raw data's own, e.g. with a high-pass of :math:`y`);
* **correlation with the output's detail** — the Pearson correlation of :math:`r` with
  :math:`\hat x - \mathcal B \hat x` (:math:`\mathcal B` a 3-pixel box filter): structure shared by the residual
  and the output, the "method noise" of Buades, Coll & Morel (SIAM MMS 2005) in one number.

These are necessary, not sufficient, conditions: the identity map has a ratio of 0 and a blurred image a
correlated residual, but a residual that passes all three can still hide a small bias. They are what a
self-supervised run on real data can say without a reference (BENCHMARKS.md, "Real cryo-ET tomogram").

Example:
    >>> import torch
    >>> from selfinv.noise import Gaussian, residual_check
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.full((1, 1, 64, 64), 0.5)
    >>> y = x + 0.1 * torch.randn(x.shape, generator=g)
    >>> check = residual_check(y, x, Gaussian(0.1))
    >>> round(float(check.variance_ratio[0]), 1), bool(check.autocorrelation.abs().max() < 0.05)
    (1.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from selfinv.noise.models import NoiseModel

__all__ = ["ResidualCheck", "residual_check"]

#: the thresholds of :meth:`ResidualCheck.warnings`
RATIO_RANGE = (0.8, 1.25)
MAX_AUTOCORRELATION = 0.1
MAX_SIGNAL_CORRELATION = 0.1


@dataclass(frozen=True)
class ResidualCheck:
    """The checks of :func:`residual_check`, per sample (module docstring)."""

    variance_ratio: torch.Tensor | None  # (B,), None without a noise model
    autocorrelation: torch.Tensor  # (B, number of spatial axes), lag 1 along (z,) y, x
    signal_correlation: torch.Tensor  # (B,)
    residual_std: torch.Tensor  # (B,)

    @property
    def axes(self) -> str:
        return "zyx"[-self.autocorrelation.shape[1]:]

    def summary(self, index: int | None = None) -> str:
        """One line: the batch means, or sample ``index``'s values."""

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.mean(0) if index is None else t[index]

        parts = [f"residual std {float(pick(self.residual_std)):.4g}"]
        if self.variance_ratio is not None:
            parts.append(f"{float(pick(self.variance_ratio)):.2f}x the noise model's variance")
        auto = pick(self.autocorrelation)
        parts.append("lag-1 autocorrelation " + " ".join(f"{a} {float(v):+.3f}" for a, v in zip(self.axes, auto, strict=True)))
        parts.append(f"correlation with the output's detail {float(pick(self.signal_correlation)):+.3f}")
        return ", ".join(parts)

    def warnings(self) -> list[str]:
        """What the batch means say is wrong, one sentence each (empty when every check passes)."""
        out = []
        if self.variance_ratio is not None:
            ratio = float(self.variance_ratio.mean())
            if ratio < RATIO_RANGE[0]:
                out.append(f"the residual has {ratio:.2f}x the noise model's variance: noise is left in the output "
                           "(or the noise level is overestimated)")
            elif ratio > RATIO_RANGE[1]:
                out.append(f"the residual has {ratio:.2f}x the noise model's variance: signal was removed with the noise "
                           "(over-smoothing) or the noise level is underestimated")
        auto = self.autocorrelation.mean(0)
        worst = int(auto.abs().argmax())
        if float(auto[worst].abs()) > MAX_AUTOCORRELATION:
            out.append(f"the residual is correlated along {self.axes[worst]} ({float(auto[worst]):+.2f}): structure in the "
                       "residual, or noise that was correlated in the measurements")
        corr = float(self.signal_correlation.mean())
        if abs(corr) > MAX_SIGNAL_CORRELATION:
            out.append(f"the residual shares structure with the output (correlation {corr:+.2f} with its detail)")
        return out


def _check(y: torch.Tensor, x_hat: torch.Tensor) -> None:
    for name, t in (("y", y), ("x_hat", x_hat)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"residual_check: {name} must be a tensor, got {type(t).__name__}")
        if t.is_complex() or not t.is_floating_point():
            raise ValueError(f"residual_check: {name} must be a real floating-point tensor, got {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"residual_check: {name} contains NaN or Inf")
    if y.ndim not in (4, 5):
        raise ValueError(f"residual_check: y must be (B, C, H, W) images or (B, C, D, H, W) volumes, got {tuple(y.shape)}")
    if x_hat.shape != y.shape:
        raise ValueError(f"residual_check: x_hat {tuple(x_hat.shape)} must have the shape of y {tuple(y.shape)}")
    if min(y.shape[2:]) < 3:
        raise ValueError(f"residual_check: every spatial axis needs at least 3 entries, got {tuple(y.shape[2:])}")


def _detail(x: torch.Tensor) -> torch.Tensor:
    """x minus its 3-pixel box mean (replicate padding), per channel."""
    dims = x.ndim - 2
    flat = x.reshape(-1, 1, *x.shape[2:])
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    padded = F.pad(flat, [1, 1] * dims, mode="replicate")
    return (flat - pool(padded, 3, stride=1)).reshape(x.shape)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / ((a * a).sum(1) * (b * b).sum(1)).sqrt().clamp_min(1e-300)


@torch.no_grad()
def residual_check(y: torch.Tensor, x_hat: torch.Tensor, noise: NoiseModel | None = None) -> ResidualCheck:
    r"""The residual checks of :math:`y - \hat x` (module docstring), per sample.

    Args:
        y: real (B, C, H, W) or (B, C, D, H, W) measurements of a denoising problem (A = I).
        x_hat: the denoised estimate, same shape.
        noise: the noise model the residual is compared with (per-sample parameters allowed), e.g. the one
            :func:`~selfinv.noise.estimate` gives for ``y``; ``None`` skips the variance ratio.

    Returns:
        :class:`ResidualCheck` of float64 tensors.
    """
    _check(y, x_hat)
    y, x_hat = y.detach().double(), x_hat.detach().double()
    r = y - x_hat
    ratio = None
    if noise is not None:
        expected = noise.variance(x_hat.clamp_min(0) if getattr(noise, "needs_nonnegative", False) else x_hat)
        ratio = (r * r).flatten(1).sum(1) / expected.expand_as(r).flatten(1).sum(1).clamp_min(1e-300)
    centred = r - r.flatten(1).mean(1).reshape(-1, *[1] * (r.ndim - 1))
    energy = (centred * centred).flatten(1).sum(1).clamp_min(1e-300)
    auto = []
    for axis in range(2, r.ndim):
        n = r.shape[axis]
        lead, lag = centred.narrow(axis, 0, n - 1), centred.narrow(axis, 1, n - 1)
        auto.append((lead * lag).flatten(1).sum(1) / energy)
    return ResidualCheck(variance_ratio=ratio, autocorrelation=torch.stack(auto, 1),
                         signal_correlation=_pearson(r, _detail(x_hat)),
                         residual_std=r.flatten(1).std(1))
