"""The noise estimators under their former module name: they live in :mod:`selfinv.noise` now (a re-export).

Example:
    >>> from selfinv.noise_estimation import estimate_sigma
    >>> from selfinv import noise
    >>> estimate_sigma is noise.estimate_sigma
    True
"""

from __future__ import annotations

from selfinv.noise.pca import estimate_sigma_pca
from selfinv.noise.wavelet import MAD_TO_SIGMA, estimate_covariance, estimate_poisson_gaussian, estimate_sigma

__all__ = ["MAD_TO_SIGMA", "estimate_covariance", "estimate_poisson_gaussian", "estimate_sigma", "estimate_sigma_pca"]
