"""The no-reference residual checks (selfinv.noise.residual_check): each number's value on cases with a known answer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfinv.noise import Gaussian, PoissonGaussian, residual_check


def _image(n: int = 96) -> torch.Tensor:
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    x = 0.5 + 0.3 * torch.sin(8 * t)[:, None] * torch.cos(5 * t)[None, :]
    return x.expand(2, 1, n, n).clone()


def test_oracle_residual_is_the_noise():
    """x̂ = x: the residual is the noise, ratio 1 within its standard error sqrt(2/n), autocorrelations ~0."""
    g = torch.Generator().manual_seed(0)
    x = _image()
    noise = PoissonGaussian(torch.tensor([0.01, 0.02]), torch.tensor([0.02, 0.05]))
    y = noise(x, generator=g)
    c = residual_check(y, x, noise)
    n = x[0].numel()
    assert torch.allclose(c.variance_ratio, torch.ones(2, dtype=torch.float64), atol=4 * math.sqrt(2 / n))
    assert c.autocorrelation.shape == (2, 2)
    assert c.autocorrelation.abs().max() < 4 / math.sqrt(n)
    assert c.signal_correlation.abs().max() < 4 / math.sqrt(n)
    assert c.warnings() == []


def test_identity_and_oversmoothing_are_flagged():
    """x̂ = y leaves no residual to speak of (ratio 0); a heavy blur removes signal: ratio > 1, correlated residual."""
    g = torch.Generator().manual_seed(1)
    x = _image()
    x = x + 0.2 * (torch.arange(96, dtype=x.dtype) // 6 % 2)  # stripes of 6 pixels: edges a blur removes
    y = x + 0.05 * torch.randn(x.shape, generator=g, dtype=x.dtype)
    same = residual_check(y, y.clone(), Gaussian(0.05))
    assert float(same.variance_ratio.max()) == 0.0
    assert any("noise is left" in w for w in same.warnings())
    blur = F.avg_pool2d(F.pad(y, [7] * 4, mode="replicate"), 15, stride=1)
    c = residual_check(y, blur, Gaussian(0.05))
    assert float(c.variance_ratio.min()) > 1.25
    assert float(c.autocorrelation.min()) > 0.1
    assert any("over-smoothing" in w for w in c.warnings()) and any("correlated along" in w for w in c.warnings())


def test_partial_shrinkage_has_the_predicted_ratio():
    """x̂ = x + a·n leaves r = (1 − a)·n: ratio (1 − a)² exactly up to sampling error."""
    g = torch.Generator().manual_seed(2)
    x = _image()
    n = 0.1 * torch.randn(x.shape, generator=g, dtype=x.dtype)
    c = residual_check(x + n, x + 0.5 * n, Gaussian(0.1))
    assert torch.allclose(c.variance_ratio, torch.full((2,), 0.25, dtype=torch.float64), rtol=0.05)


def test_correlated_noise_shows_in_the_autocorrelation_per_axis():
    g = torch.Generator().manual_seed(3)
    x = torch.zeros(1, 1, 16, 64, 64, dtype=torch.float64)
    e = torch.randn(x.shape, generator=g, dtype=x.dtype)
    y = x + e + e.roll(1, dims=-1)  # correlated along x only: lag-1 autocorrelation 1/2
    c = residual_check(y, x)
    assert c.variance_ratio is None and c.axes == "zyx"
    assert c.autocorrelation.shape == (1, 3)
    assert abs(float(c.autocorrelation[0, 2]) - 0.5) < 0.03
    assert c.autocorrelation[0, :2].abs().max() < 0.03
    assert "x +0.49" in c.summary()


@pytest.mark.parametrize(("y", "x_hat", "match"), [
    (torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 7), "shape of y"),
    (torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), r"\(B, C, H, W\)"),
    (torch.full((1, 1, 8, 8), float("nan")), torch.zeros(1, 1, 8, 8), "NaN"),
    (torch.zeros(1, 1, 8, 8, dtype=torch.complex64), torch.zeros(1, 1, 8, 8, dtype=torch.complex64), "real"),
    (torch.zeros(1, 1, 2, 8), torch.zeros(1, 1, 2, 8), "at least 3"),
])
def test_bad_input(y, x_hat, match):
    with pytest.raises(ValueError, match=match):
        residual_check(y, x_hat)
