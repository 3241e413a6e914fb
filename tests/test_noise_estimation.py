"""The robust noise-level estimate (MAD of the finest diagonal Haar coefficients, Donoho & Johnstone 1994).

Oracles: pure Gaussian noise (the estimator's own standard error, 1.166 σ/√K for K coefficients: the
sample median of |Z| has standard deviation 1/(2√K·2φ(0.6745))), and simulated Gaussian noise on the
embedded real photographs, where texture adds a small upward bias.
"""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.data import embedded_images
from selfinv.data.embedded import TEST_NAMES
from selfinv.noise_estimation import MAD_TO_SIGMA, estimate_sigma
from tests.helpers import gen

F64 = torch.float64


def test_the_constant_is_the_median_of_a_half_normal():
    assert abs(math.erf(MAD_TO_SIGMA / math.sqrt(2)) - 0.5) < 1e-15


@pytest.mark.parametrize("shape", [(64, 1, 64, 64), (64, 2, 32, 64), (64, 4096)])
def test_unbiased_on_pure_noise_within_its_standard_error(shape):
    sigma = 0.3
    y = 5.0 + sigma * torch.randn(shape, generator=gen(0), dtype=F64)  # an offset changes nothing
    est = estimate_sigma(y)
    assert est.shape == (shape[0],) and est.dtype == F64
    k = y[0].numel() // (2 if y.ndim == 2 else 4)  # coefficients per sample
    se = 1.166 * sigma / math.sqrt(k)
    assert float(est.std()) == pytest.approx(se, rel=0.3)  # the spread is the predicted standard error
    assert abs(float(est.mean()) - sigma) < 4 * se / math.sqrt(shape[0])


@pytest.mark.parametrize("sigma", [25 / 255, 0.2])
def test_within_ten_percent_on_real_images(sigma):
    """Each held-out photograph (camera, coins, moon, astronaut) plus simulated white Gaussian noise."""
    for name, img in zip(TEST_NAMES, embedded_images(names=list(TEST_NAMES)), strict=True):
        x = torch.from_numpy(img)[None]
        y = x + sigma * torch.randn(x.shape, generator=gen(1))
        ratio = float(estimate_sigma(y)[0]) / sigma
        assert 1 - 0.03 < ratio < 1.10, (name, ratio)  # texture only adds: the bias is upward


def test_weaker_noise_is_overestimated_by_texture_but_stays_close():
    """σ = 0.05: texture is a larger share of the finest details; still within 15 % on the held-out images."""
    ratios = []
    for img in embedded_images(names=list(TEST_NAMES)):
        x = torch.from_numpy(img)[None]
        ratios.append(float(estimate_sigma(x + 0.05 * torch.randn(x.shape, generator=gen(2)))[0]) / 0.05)
    assert all(0.97 < r < 1.15 for r in ratios), ratios


def test_patches_of_a_batch_are_estimated_one_by_one():
    x = torch.from_numpy(embedded_images(names=["camera"])[0])[None, :, :128, :256].reshape(1, 1, 128, 2, 128)
    x = x.permute(3, 0, 1, 2, 4).reshape(2, 1, 128, 128)
    sig = torch.tensor([0.05, 0.2]).reshape(2, 1, 1, 1)
    est = estimate_sigma(x + sig * torch.randn(x.shape, generator=gen(3)))
    assert abs(float(est[1]) / 0.2 - 1) < 0.1 and float(est[0]) < 0.1


def test_complex_and_masked_measurements():
    sigma = 0.1
    z = torch.complex(torch.randn(4, 1, 64, 64, generator=gen(4), dtype=F64),
                      torch.randn(4, 1, 64, 64, generator=gen(5), dtype=F64))
    assert torch.allclose(estimate_sigma(sigma * z), torch.full((4,), sigma, dtype=F64), rtol=0.05)  # σ per real dof
    # zero-filled entries are not noise: only the fully measured 2×2 blocks count
    y = sigma * torch.randn(16, 1, 64, 64, generator=gen(6), dtype=F64)
    mask = (torch.rand(1, 1, 64, 64, generator=gen(7)) < 0.9).to(F64)
    assert float(estimate_sigma(y * mask).mean()) < 0.95 * sigma  # zeros drag the median down ...
    est = estimate_sigma(y * mask, mask)  # ... unless masked
    se = 1.166 * sigma / math.sqrt(float((mask[..., 0::2, 0::2] * mask[..., 0::2, 1::2] * mask[..., 1::2, 0::2]
                                          * mask[..., 1::2, 1::2]).sum()))
    assert abs(float(est.mean()) - sigma) < 4 * se / 4 and float((est - sigma).abs().max()) < 4 * se
    assert bool(estimate_sigma(y, torch.zeros(1, 1, 64, 64)).isnan().all())  # nothing measured: no estimate


def test_bad_inputs():
    with pytest.raises(ValueError, match="estimate_sigma"):
        estimate_sigma(torch.zeros(5))
    with pytest.raises(ValueError, match="at least 2"):
        estimate_sigma(torch.zeros(2, 1, 1, 8))
