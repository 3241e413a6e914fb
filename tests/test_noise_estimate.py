"""``selfinv.noise.estimate``: the noise model of measurements, per sample, from the measurements alone.

Oracles: the simulated truth, with tolerances from the estimators' standard errors — measured as the spread of
the estimates over seeded samples (the PCA level) or stated by the fit itself (the Poisson-Gaussian gain and
level, whose stated errors are checked against that spread). A biased or mis-scaled estimator fails the
mean-within-4-standard-errors checks.
"""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.data import embedded_images
from selfinv.data.embedded import TEST_NAMES
from selfinv.noise import Gaussian, PoissonGaussian, estimate, estimate_sigma, estimate_sigma_pca, fit_poisson_gaussian
from tests.helpers import gen

F64 = torch.float64


def ramp(b: int, n: int = 128, top: float = 1.0) -> torch.Tensor:
    """(b, 1, n, n) images rising from 0.05 to ``top`` along the width: every level of signal, no texture."""
    return torch.linspace(0.05, top, n, dtype=F64).repeat(b, 1, n, 1)


def test_pca_level_is_unbiased_on_pure_noise_within_its_standard_error():
    sigma, b = 0.1, 24
    est = estimate(0.5 + sigma * torch.randn(b, 1, 64, 64, generator=gen(0), dtype=F64), model="gaussian").sigma
    assert est.shape == (b,) and est.dtype == F64
    se = float(est.std()) / math.sqrt(b)
    assert 0 < float(est.std()) < 0.05 * sigma  # one 64x64 sample reads σ to a few percent
    assert abs(float(est.mean()) - sigma) < 4 * se
    # the scale follows the data: twice the noise, twice the estimate (the same draws)
    twice = estimate(0.5 + 2 * sigma * torch.randn(b, 1, 64, 64, generator=gen(0), dtype=F64), model="gaussian").sigma
    assert torch.allclose(twice, 2 * est, rtol=1e-6)


def test_each_sample_gets_its_own_level():
    sigmas = torch.tensor([0.02, 0.05, 0.1, 0.2], dtype=F64)
    y = ramp(4) + sigmas[:, None, None, None] * torch.randn(4, 1, 128, 128, generator=gen(1), dtype=F64)
    noise = estimate(y)
    assert isinstance(noise, Gaussian)
    assert torch.allclose(noise.sigma, sigmas, rtol=0.05)  # each within 5 % (SE ≈ 1 % at 128x128)


@pytest.mark.parametrize("level", [5 / 255, 25 / 255])
def test_pca_is_within_ten_percent_on_textured_photographs_where_the_mad_is_not(level):
    """The held-out photographs (camera, coins, moon, astronaut): texture inflates the MAD at weak noise."""
    pca_err, mad_err = [], []
    for img in embedded_images(names=list(TEST_NAMES)):
        x = torch.from_numpy(img)[None].to(F64)
        y = x + level * torch.randn(x.shape, generator=gen(2), dtype=F64)
        pca_err.append(abs(float(estimate_sigma_pca(y)[0]) / level - 1))
        mad_err.append(abs(float(estimate_sigma(y)[0]) / level - 1))
    assert max(pca_err) < 0.10, pca_err
    assert sum(pca_err) < sum(mad_err)
    if level < 0.05:
        assert max(mad_err) > 0.10  # why the PCA is the default


def test_poisson_gaussian_fit_is_unbiased_and_states_its_standard_errors():
    gain, sigma, b = 0.01, 0.02, 16
    y = PoissonGaussian(gain, sigma)(ramp(b, 192), generator=gen(3))
    fit = fit_poisson_gaussian(y)
    for est, se, truth in ((fit.gain, fit.gain_se, gain), (fit.sigma2, fit.sigma2_se, sigma**2)):
        spread = float(est.std())
        assert 0.6 < float(se.mean()) / spread < 1.6  # the stated error is the real one
        assert abs(float(est.mean()) - truth) < 4 * spread / math.sqrt(b)  # no bias (none from the block means)
    noise = estimate(y, model="poisson_gaussian")
    assert isinstance(noise, PoissonGaussian) and noise.gain.shape == (b,) and noise.sigma.shape == (b,)
    assert torch.allclose(noise.gain, fit.gain) and torch.allclose(noise.sigma**2, fit.sigma2.clamp_min(0))


def test_per_sample_poisson_gaussian_parameters():
    gains = torch.tensor([0.002, 0.02], dtype=F64)
    sigmas = torch.tensor([0.03, 0.005], dtype=F64)
    noise = estimate(PoissonGaussian(gains, sigmas)(ramp(2, 256), generator=gen(4)), model="poisson_gaussian")
    assert torch.allclose(noise.gain, gains, rtol=0.1)
    assert abs(float(noise.sigma[0]) / 0.03 - 1) < 0.1  # the second σ is a small share of its variance


def test_clipped_measurements_are_read_from_their_unclipped_part():
    """Brightened past 1 and clipped to [0, 1] (a third of each image saturated), plus a floor at 0: the fit
    leaves the clipped blocks and those near the clip out; without that the variance flattens at the top."""
    gain, sigma = 0.01, 0.05
    x = ramp(8, 192, top=1.5)
    y = PoissonGaussian(gain, sigma)(x, generator=gen(5)).clamp(0, 1)
    fit = fit_poisson_gaussian(y)
    assert abs(float(fit.gain.median()) / gain - 1) < 0.1
    assert abs(float(fit.sigma2.median().sqrt()) / sigma - 1) < 0.1
    # the same blocks read without the clipping rule are biased (the top bins' variance is truncated)
    from selfinv.noise.wavelet import estimate_poisson_gaussian

    naive_gain, _ = estimate_poisson_gaussian(y)
    assert abs(naive_gain / gain - 1) > 0.2


def test_auto_picks_gaussian_for_white_noise_and_poisson_gaussian_for_counts():
    white = estimate(ramp(4) + 0.05 * torch.randn(4, 1, 128, 128, generator=gen(6), dtype=F64))
    assert isinstance(white, Gaussian) and torch.allclose(white.sigma, torch.full((4,), 0.05, dtype=F64), rtol=0.05)
    x = torch.from_numpy(embedded_images(names=["camera"])[0])[None].to(F64)
    assert isinstance(estimate(x + 0.1 * torch.randn(x.shape, generator=gen(7), dtype=F64)), Gaussian)
    counts = estimate(PoissonGaussian(0.02, 0.01)(ramp(4), generator=gen(8)))
    assert isinstance(counts, PoissonGaussian) and torch.allclose(counts.gain, torch.full((4,), 0.02, dtype=F64), rtol=0.1)


def test_volumes_pool_their_slices():
    b, d = 3, 4
    sig = torch.tensor([0.05, 0.1, 0.2], dtype=F64)
    y = 0.5 + sig[:, None, None, None, None] * torch.randn(b, 1, d, 48, 48, generator=gen(9), dtype=F64)
    noise = estimate(y)
    assert isinstance(noise, Gaussian) and torch.allclose(noise.sigma, sig, rtol=0.05)
    vol = ramp(2, 96)[:, :, None].expand(2, 1, 3, 96, 96)
    pg = estimate(PoissonGaussian(0.02, 0.01)(vol, generator=gen(10)), model="poisson_gaussian")
    assert torch.allclose(pg.gain, torch.full((2,), 0.02, dtype=F64), rtol=0.1)


def test_complex_measurements_are_gaussian_per_real_degree_of_freedom():
    z = torch.complex(torch.randn(2, 1, 64, 64, generator=gen(11), dtype=F64), torch.randn(2, 1, 64, 64, generator=gen(12), dtype=F64))
    noise = estimate(0.1 * z)  # auto: complex data are Gaussian
    assert isinstance(noise, Gaussian) and torch.allclose(noise.sigma, torch.full((2,), 0.1, dtype=F64), rtol=0.05)


def test_masked_entries_are_not_noise():
    y = 0.1 * torch.randn(2, 1, 64, 64, generator=gen(13), dtype=F64)
    mask = torch.ones(1, 1, 64, 64, dtype=F64)
    mask[..., 20:40, :] = 0
    sigma = estimate(y * mask, model="gaussian", mask=mask).sigma
    assert torch.allclose(sigma, torch.full((2,), 0.1, dtype=F64), rtol=0.06)
    assert float(estimate(y * mask, model="gaussian").sigma.max()) < 0.09  # the zeros, taken for signal, pull it down


@pytest.mark.parametrize(("y", "kwargs", "fragment"), [
    (torch.full((1, 1, 32, 32), float("nan")), {}, "NaN or Inf"),
    (torch.full((1, 1, 32, 32), float("inf")), {}, "NaN or Inf"),
    (torch.zeros(1, 32, 32), {}, "(B, C, H, W)"),
    (torch.zeros(1, 1, 8, 64), {}, "too small"),
    (torch.zeros(1, 1, 32, 32, dtype=torch.int64), {}, "floating-point"),
    (torch.zeros(1, 1, 32, 32), {"model": "poisson"}, "model must be"),
    (torch.zeros(1, 1, 32, 32), {"method": "bm3d"}, "method must be"),
    (torch.zeros(1, 1, 32, 32, dtype=torch.complex64), {"model": "poisson_gaussian"}, "real measurements"),
    ([[1.0]], {}, "must be a tensor"),
])
def test_bad_input_is_one_line(y, kwargs, fragment):
    with pytest.raises(ValueError, match="estimate") as e:
        estimate(y, **kwargs)
    assert fragment in str(e.value) and "\n" not in str(e.value)
