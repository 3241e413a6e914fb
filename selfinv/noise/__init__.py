r"""Noise models :math:`y \sim p(y \mid z)` (:mod:`selfinv.noise.models`) and their estimation from the measurements.

* :mod:`~selfinv.noise.models`: ``Gaussian``, ``Poisson``, ``PoissonGaussian``, ``Gamma``, ``CorrelatedGaussian``,
  ``Unknown`` and the config placeholder ``Estimate``, the registry ``NOISE_MODELS`` and ``describe``;
* :func:`estimate` (:mod:`~selfinv.noise.estimation`): the noise model of a batch of measurements, per sample;
* the estimators it uses: the patch-PCA level (:mod:`~selfinv.noise.pca`, Chen, Zhu & Heng 2015 with the
  weak-texture patches of Liu, Tanaka & Okutomi 2013), the wavelet MAD level, the robust variogram and the batch
  Poisson-Gaussian start of UNSURE (:mod:`~selfinv.noise.wavelet`), and the per-sample Poisson-Gaussian
  mean–variance fit (:mod:`~selfinv.noise.mean_variance`, Foi et al. 2008);
* :func:`residual_check` (:mod:`~selfinv.noise.residual`): whether the part a denoiser removed looks like the noise.

Example:
    >>> import torch
    >>> from selfinv.noise import Gaussian, estimate
    >>> y = Gaussian(0.1)(torch.full((2, 1, 64, 64), 0.5), generator=torch.Generator().manual_seed(0))
    >>> [round(s, 2) for s in estimate(y, model="gaussian").sigma.tolist()]
    [0.1, 0.1]
"""

from __future__ import annotations

from selfinv.noise.estimation import estimate, gain_is_significant
from selfinv.noise.mean_variance import PoissonGaussianFit, fit_poisson_gaussian
from selfinv.noise.models import (
    ESTIMABLE,
    NOISE_MODELS,
    CorrelatedGaussian,
    Estimate,
    Gamma,
    Gaussian,
    NoiseModel,
    Poisson,
    PoissonGaussian,
    Unknown,
    describe,
)
from selfinv.noise.pca import estimate_sigma_pca
from selfinv.noise.residual import ResidualCheck, residual_check
from selfinv.noise.wavelet import MAD_TO_SIGMA, estimate_covariance, estimate_poisson_gaussian, estimate_sigma

__all__ = [
    "ESTIMABLE",
    "MAD_TO_SIGMA",
    "NOISE_MODELS",
    "CorrelatedGaussian",
    "Estimate",
    "Gamma",
    "Gaussian",
    "NoiseModel",
    "Poisson",
    "PoissonGaussian",
    "PoissonGaussianFit",
    "ResidualCheck",
    "Unknown",
    "describe",
    "estimate",
    "estimate_covariance",
    "estimate_poisson_gaussian",
    "estimate_sigma",
    "estimate_sigma_pca",
    "fit_poisson_gaussian",
    "gain_is_significant",
    "residual_check",
]
