r"""The noise model of a batch of measurements, read off the measurements alone: :func:`estimate`.

* **Gaussian** :math:`y = x + \sigma\varepsilon`: :math:`\hat\sigma` per sample by the patch-PCA estimator
  (``method="pca"``, the default: weak-texture patches as in Liu, Tanaka & Okutomi 2013 and the eigenvalue rule
  of Chen, Zhu & Heng 2015, :mod:`selfinv.noise.pca`) or the wavelet MAD of Donoho & Johnstone 1994
  (``method="mad"``, :func:`~selfinv.noise.wavelet.estimate_sigma`). On Set12 + BSD68 the PCA estimate is the
  more accurate at every level, and by far at weak noise, where texture inflates the MAD (BENCHMARKS.md,
  "Noise estimation").
* **Poisson-Gaussian** :math:`\operatorname{Var}(y \mid x) = \gamma x + b`: :math:`(\hat\gamma, \hat b)` per
  sample by the binned local mean–variance fit of :mod:`selfinv.noise.mean_variance` (Foi et al. 2008: smooth
  blocks only, clipped values left out, no errors-in-variables bias), :math:`\hat\gamma` clamped at
  :math:`10^{-12}` (the model needs a gain > 0). The intercept is :math:`b = \sigma^2 - \gamma c` for a camera
  with black level (offset, pedestal) :math:`c`, :math:`\operatorname{Var} y = \gamma(x - c) + \sigma^2`, and Foi
  et al.'s model lets it be negative: a sample whose :math:`\hat b < -3\,\mathrm{se}(\hat b)` and :math:`\hat\gamma > 0`
  (:data:`BLACK_LEVEL_SIGNIFICANCE`) gets the black level :math:`\hat c = -\hat b/\hat\gamma` and :math:`\hat\sigma
  = 0`, every other one :math:`\hat c = 0` and :math:`\hat\sigma = \sqrt{\max(\hat b, 0)}`. Either way the
  :class:`~selfinv.noise.PoissonGaussian` returned (``offset`` :math:`\hat c`) has the fitted variance line
  :math:`\hat\gamma x + \hat b` (where :math:`\hat b \ge 0` or significantly negative), and the losses that read
  it (PG-URE) use :math:`y - \hat c`. (With :math:`b < 0` the split of :math:`b` into :math:`\sigma^2` and
  :math:`\gamma c` is not identifiable from the variance line: the smallest black level is taken.)
* **auto**: the gains of the batch are pooled by inverse variance, :math:`\bar\gamma = \sum_i w_i\hat\gamma_i /
  \sum_i w_i`, :math:`w_i = 1/\mathrm{se}_i^2`, with standard error :math:`(\sum_i w_i)^{-1/2}`; the noise is
  Poisson-Gaussian when :math:`\bar\gamma > 5\,\mathrm{se}(\bar\gamma)` and Gaussian otherwise (then with the
  Gaussian estimator's σ); complex measurements are always Gaussian. The standard errors are the weighted fit's,
  inflated by its reduced :math:`\chi^2`. Five rather than three standard errors because texture that passes
  the smoothness tests is brighter where the image is brighter and fakes a small gain: with 3, weak Gaussian noise
  on textured photographs is called Poisson-Gaussian for about one image in eight, with 5 one in twenty-five at
  σ = 10/255 (BENCHMARKS.md, "Noise estimation", gives the rates).

Inputs are (B, C, H, W) images or (B, C, D, H, W) volumes; the channels (and a volume's slices) of a sample
are pooled, every sample gets its own parameters.

Example:
    >>> import torch
    >>> from selfinv.noise import PoissonGaussian, estimate
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.linspace(0.05, 1, 128).repeat(2, 1, 128, 1)
    >>> noise = estimate(x + 0.05 * torch.randn(x.shape, generator=g))
    >>> type(noise).__name__, [round(s, 2) for s in noise.sigma.tolist()]
    ('Gaussian', [0.05, 0.05])
    >>> noise = estimate(PoissonGaussian(0.02, 0.01)(x, generator=g))
    >>> type(noise).__name__, [round(v, 2) for v in noise.gain.tolist()]
    ('PoissonGaussian', [0.02, 0.02])
"""

from __future__ import annotations

import torch

from selfinv.noise.mean_variance import PoissonGaussianFit, fit_poisson_gaussian
from selfinv.noise.models import Gaussian, PoissonGaussian
from selfinv.noise.pca import estimate_sigma_pca
from selfinv.noise.wavelet import estimate_sigma

__all__ = ["BLACK_LEVEL_SIGNIFICANCE", "MODELS", "SIGNIFICANCE", "estimate", "gain_is_significant"]

#: the values of ``model``
MODELS = ("auto", "gaussian", "poisson_gaussian")
#: ``auto`` picks Poisson-Gaussian when the pooled gain exceeds this many standard errors
SIGNIFICANCE = 5.0
#: a sample has a black level when its fitted variance intercept is below minus this many standard errors
BLACK_LEVEL_SIGNIFICANCE = 3.0
#: the smallest image side :func:`estimate` reads
MIN_SIDE = 16
_MIN_GAIN = 1e-12


def _check(y, model: str, method: str, mask) -> None:
    if model not in MODELS:
        raise ValueError(f"estimate: model must be one of {', '.join(MODELS)}, got {model!r}")
    if method not in ("pca", "mad"):
        raise ValueError(f"estimate: method must be pca or mad, got {method!r}")
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"estimate: y must be a tensor, got {type(y).__name__}")
    if y.ndim not in (4, 5):
        raise ValueError(f"estimate: y must be (B, C, H, W) images or (B, C, D, H, W) volumes, got shape {tuple(y.shape)}")
    if y.shape[0] == 0 or min(y.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"estimate: images of {y.shape[-2]}x{y.shape[-1]} are too small to estimate noise from (need at "
                         f"least {MIN_SIDE}x{MIN_SIDE} and one sample)")
    if not (y.is_floating_point() or y.is_complex()):
        raise ValueError(f"estimate: y must be a floating-point or complex tensor, got {y.dtype}")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("estimate: y contains NaN or Inf")
    if model == "poisson_gaussian" and y.is_complex():
        raise ValueError("estimate: Poisson-Gaussian noise is defined for real measurements, got complex ones")
    if mask is not None and (not isinstance(mask, torch.Tensor) or mask.ndim != y.ndim):
        raise ValueError(f"estimate: mask must be a tensor broadcastable to y {tuple(y.shape)}, got "
                         f"{getattr(mask, 'shape', type(mask).__name__)}")


def gain_is_significant(fit: PoissonGaussianFit, level: float = SIGNIFICANCE) -> bool:
    r"""Whether the batch's pooled gain :math:`\bar\gamma` exceeds ``level`` standard errors (module docstring)."""
    ok = torch.isfinite(fit.gain) & torch.isfinite(fit.gain_se) & (fit.gain_se > 0)
    if not bool(ok.any()):
        return False
    w = 1 / fit.gain_se[ok] ** 2
    pooled = (w * fit.gain[ok]).sum() / w.sum()
    return bool(pooled > level * w.sum().rsqrt())


def _gaussian(y: torch.Tensor, mask, method: str) -> Gaussian:
    sigma = estimate_sigma_pca(y, mask) if method == "pca" else estimate_sigma(y, mask)
    _no_nan(sigma)
    return Gaussian(sigma)


def _no_nan(*values: torch.Tensor) -> None:
    for v in values:
        bad = (~torch.isfinite(v)).nonzero()
        if bad.numel():
            raise ValueError(f"estimate: sample {int(bad[0, 0])} has too few measured (or smooth) pixels to estimate the "
                             "noise from")


@torch.no_grad()
def estimate(y: torch.Tensor, model: str = "auto", mask: torch.Tensor | None = None,
             method: str = "pca") -> Gaussian | PoissonGaussian:
    r"""The noise model of measurements ``y``, with per-sample (B,) parameters (module docstring).

    Args:
        y: (B, C, H, W) or (B, C, D, H, W) measurements, at least 16×16 pixels (complex: Gaussian only).
        model: ``"auto"``, ``"gaussian"`` or ``"poisson_gaussian"``.
        mask: optional 0/1 tensor broadcastable to ``y``: the measured entries (zero-filled ones are not noise).
        method: the Gaussian estimator, ``"pca"`` (default) or ``"mad"``.

    Returns:
        :class:`~selfinv.noise.Gaussian` with ``sigma`` (B,) or :class:`~selfinv.noise.PoissonGaussian` with
        ``gain``, ``sigma`` and ``offset`` (the black level, 0 where there is none) (B,), float64.
    """
    _check(y, model, method, mask)
    y = y.detach()
    if model == "gaussian" or y.is_complex():
        return _gaussian(y, mask, method)
    fit = fit_poisson_gaussian(y, mask)
    if model == "auto" and not gain_is_significant(fit):
        return _gaussian(y, mask, method)
    _no_nan(fit.gain, fit.sigma2)
    gain = fit.gain.clamp_min(_MIN_GAIN)
    black = (fit.gain > 0) & (fit.sigma2 < -BLACK_LEVEL_SIGNIFICANCE * fit.sigma2_se.nan_to_num(float("inf")))
    offset = torch.where(black, -fit.sigma2 / gain, torch.zeros_like(fit.sigma2))
    return PoissonGaussian(gain, torch.where(black, 0, fit.sigma2).clamp_min(0).sqrt(), offset)
