"""CorrelatedGaussian: moments and covariance by offset against σ²(k ⋆ k), within 4 standard errors.

Pixels of one image are correlated, so standard errors are computed from per-image averages: the
images of a batch are independent draws.
"""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.noise import NOISE_MODELS, CorrelatedGaussian
from tests.helpers import gen

F64 = torch.float64
KERNEL = torch.tensor([[0.2, 1.0, 0.0], [0.5, 1.0, -0.3], [0.0, 0.4, 0.1]], dtype=F64)
SIGMAS = torch.tensor([0.05, 0.3, 1.0], dtype=F64)
B, H = 6000, 12  # 2000 images per σ, 12 × 12 pixels (≥ 2·3 − 1, so no circular aliasing of offsets)


def draw(seed: int = 0, clean: float = 0.7) -> tuple[CorrelatedGaussian, torch.Tensor]:
    noise = CorrelatedGaussian(SIGMAS.repeat(B // 3), KERNEL)
    z = torch.full((B, 1, H, H), clean, dtype=F64)
    return noise, noise(z, generator=gen(seed)) - clean


def within(per_image: torch.Tensor, expected: float, k: float = 4.0) -> None:
    mean = float(per_image.mean())
    se = float(per_image.std() / math.sqrt(per_image.numel()))
    assert abs(mean - expected) < k * se, (mean, expected, se)


def test_mean_and_variance_per_sample_sigma():
    noise, e = draw()
    var_theory = noise.variance(torch.zeros(B, 1, H, H, dtype=F64))[:, 0, 0, 0]
    assert torch.allclose(var_theory, SIGMAS.repeat(B // 3) ** 2 * KERNEL.pow(2).sum())
    for i, s in enumerate(SIGMAS.tolist()):
        imgs = e[i::3].flatten(1)
        within(imgs.mean(1), 0.0)
        within(imgs.pow(2).mean(1), s**2 * float(KERNEL.pow(2).sum()))


@pytest.mark.parametrize("offset", [(0, 1), (1, 0), (1, -1), (1, 1), (2, 0), (0, 2), (2, -2), (3, 0)])
def test_covariance_at_offsets_is_sigma2_times_autocorrelation(offset):
    noise, e = draw(seed=1)
    dy, dx = offset
    cov = noise.covariance_kernel()  # (B, 5, 5), offset 0 at [2, 2]
    kh, kw = KERNEL.shape
    inside = abs(dy) < kh and abs(dx) < kw
    # E[n_i n_{i+o}]: shift the image by −o so that pixel i meets pixel i + o
    prod = (e * torch.roll(e, shifts=(-dy, -dx), dims=(-2, -1))).flatten(1).mean(1)
    for i, s in enumerate(SIGMAS.tolist()):
        expected = float(cov[i, kh - 1 + dy, kw - 1 + dx]) if inside else 0.0
        within(prod[i::3], expected)
        # the autocorrelation written out: Σ_p k[p] k[p + o]
        if inside:
            direct = sum(
                float(KERNEL[p, q] * KERNEL[p + dy, q + dx])
                for p in range(kh)
                for q in range(kw)
                if 0 <= p + dy < kh and 0 <= q + dx < kw
            )
            assert abs(expected - s**2 * direct) < 1e-12
    assert noise.covariance_kernel().shape == (B, 5, 5)


def test_covariance_kernel_is_symmetric_and_peaks_at_zero_offset():
    noise = CorrelatedGaussian(0.2, KERNEL)
    c = noise.covariance_kernel()
    assert c.shape == (5, 5) and torch.allclose(c, c.flip(0, 1))
    assert float(c[2, 2]) == pytest.approx(0.04 * float(KERNEL.pow(2).sum()))
    assert float(c.abs().max()) == float(c[2, 2])


def test_seed_reproduces_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    noise = CorrelatedGaussian(0.1, KERNEL)
    z = torch.zeros(2, 3, 8, 8, dtype=F64)
    a, b, c = noise(z, generator=gen(5)), noise(z, generator=gen(5)), noise(z, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.dtype == F64 and noise(z.float(), generator=gen(5)).dtype == torch.float32


def test_delta_kernel_is_white_gaussian_noise():
    z = torch.zeros(1, 1, 8, 8, dtype=F64)
    white = CorrelatedGaussian(0.3, torch.ones(1, 1))(z, generator=gen(7))
    g = gen(7)
    assert torch.allclose(white, 0.3 * torch.randn(1, 1, 8, 8, generator=g, dtype=F64))


def test_registered_and_validated():
    assert NOISE_MODELS["correlated_gaussian"] is CorrelatedGaussian
    with pytest.raises(ValueError, match="kernel"):
        CorrelatedGaussian(0.1, torch.ones(3))
    with pytest.raises(ValueError, match="kernel"):
        CorrelatedGaussian(0.1, torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="sigma"):
        CorrelatedGaussian(-0.1, torch.ones(2, 2))
    noise = CorrelatedGaussian(0.1, torch.ones(3, 3))
    with pytest.raises(ValueError, match="images"):
        noise(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="images"):
        noise(torch.zeros(2, 1, 2, 8))
    with pytest.raises(ValueError, match="real"):
        noise(torch.zeros(1, 1, 4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="batch"):
        CorrelatedGaussian(torch.tensor([0.1, 0.2]), torch.ones(2, 2))(torch.zeros(3, 1, 4, 4))
