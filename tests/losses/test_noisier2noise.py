"""Noisier2Noise: the test-time correction against its closed form (anchors §6.7) with an oracle model, the law
of the added noise, the estimator's risk, and the trained linear estimator.

Gaussian prior :math:`x \\sim \\mathcal N(\\mu, t^2)` per pixel, :math:`y = x + \\sigma n`, :math:`z = y + \\alpha\\sigma\\omega`:
with :math:`d = t^2 + (1+\\alpha^2)\\sigma^2`, :math:`\\mathbb E[y\\mid z] = \\mu + \\frac{t^2+\\sigma^2}{d}(z-\\mu)` (the minimiser
of the loss) and :math:`\\mathbb E[x\\mid z] = \\mu + \\frac{t^2}{d}(z-\\mu)`, which the correction
:math:`((1+\\alpha^2)f(z) - z)/\\alpha^2` must return.
"""

from __future__ import annotations

import math

import torch

from selfinv.losses import Noisier2Noise
from selfinv.noise import Gaussian
from selfinv.physics import Denoising

MU, T = 0.5, 0.2


def oracle(sigma: torch.Tensor, alpha: float, seen: list | None = None):
    """f(z) = E[y | z] for the Gaussian prior (per-sample sigma, shape (B, 1, 1, 1)); records its inputs."""
    d = T**2 + (1 + alpha**2) * sigma**2

    def f(z, physics):
        if seen is not None:
            seen.append((z.clone(), physics))
        return MU + (T**2 + sigma**2) / d * (z - MU)

    return f, d


def test_correction_of_the_oracle_is_the_posterior_mean_given_each_draw():
    alpha, n_samples = 0.5, 3  # alpha != 1: a 1/alpha instead of 1/alpha^2 would pass at alpha = 1
    sigma = torch.tensor([0.05, 0.1, 0.3], dtype=torch.float64).reshape(-1, 1, 1, 1)
    physics = Denoising(noise=Gaussian(sigma.flatten()))
    g = torch.Generator().manual_seed(0)
    y = physics(MU + T * torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64), generator=g)
    seen = []
    f, d = oracle(sigma, alpha, seen)
    out = Noisier2Noise(alpha=alpha, n_samples=n_samples).test_model(f)(
        y, physics, generator=torch.Generator().manual_seed(1)
    )
    assert len(seen) == n_samples
    z_bar = torch.stack([z for z, _ in seen]).mean(0)
    # exact: the average over the draws of E[x | z_i] = mu + t^2/d (z_i - mu)
    assert torch.allclose(out, MU + T**2 / d * (z_bar - MU), atol=1e-12)
    # the network is told the law of z: Gaussian with sigma sqrt(1 + alpha^2), per sample
    for _, physics_z in seen:
        assert torch.allclose(physics_z.noise.sigma, sigma.flatten() * math.sqrt(1 + alpha**2))


def test_added_noise_has_the_law_of_the_data_noise_scaled_by_alpha():
    alpha = 0.7
    sigma = torch.tensor([0.05, 0.2], dtype=torch.float64)
    physics = Denoising(noise=Gaussian(sigma))
    y = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = []

    def record(z, physics):
        seen.append(z.clone())
        return z

    Noisier2Noise(alpha=alpha, n_samples=2).test_model(record)(y, physics, generator=torch.Generator().manual_seed(1))
    m1, m2 = (z - y for z in seen)
    n = m1[0].numel()
    for b in range(2):
        var = (alpha * float(sigma[b])) ** 2
        assert abs(float(m1[b].mean())) < 4 * math.sqrt(var / n)
        assert abs(float(m1[b].var()) / var - 1) < 4 * math.sqrt(2 / n)
        corr = float((m1[b] * m2[b]).mean()) / var  # independent draws
        assert abs(corr) < 4 / math.sqrt(n)


def test_risk_of_the_oracle_estimator_is_its_closed_form():
    """MSE of the corrected oracle over N draws: (1-k)^2 t^2 + k^2 sigma^2 + k^2 alpha^2 sigma^2 / N, k = t^2/d;
    above the MMSE given y (the price of the noisier input), and N draws reduce it."""
    alpha, sigma, n = 0.5, 0.1, 200_000
    physics = Denoising(noise=Gaussian(sigma))
    g = torch.Generator().manual_seed(2)
    x = MU + T * torch.randn(n, 1, 1, 1, generator=g, dtype=torch.float64)
    y = physics(x, generator=g)
    f, d = oracle(torch.tensor(sigma, dtype=torch.float64), alpha)
    k = T**2 / d
    mmse_y = T**2 * sigma**2 / (T**2 + sigma**2)
    for n_samples in (1, 4):
        est = Noisier2Noise(alpha=alpha, n_samples=n_samples).test_model(f)
        err2 = (est(y, physics, generator=torch.Generator().manual_seed(3)) - x) ** 2
        expected = (1 - k) ** 2 * T**2 + k**2 * sigma**2 + k**2 * alpha**2 * sigma**2 / n_samples
        se = float(err2.std()) / math.sqrt(n)
        assert abs(float(err2.mean()) - expected) < 4 * se, (n_samples, float(err2.mean()), expected)
        assert expected > mmse_y


def test_trained_linear_model_and_its_estimator():
    """Fit f(z) = a z + b by least squares on the loss's own draws of z; the estimator built on it has the slope of
    E[x | z] in y."""
    sigma, alpha, n = 0.1, 0.8, 200_000
    g = torch.Generator().manual_seed(0)
    x = MU + T * torch.randn(n, 1, 1, 1, generator=g, dtype=torch.float64)
    physics = Denoising(noise=Gaussian(sigma))
    y = physics(x, generator=g)
    model = torch.nn.Linear(1, 1, dtype=torch.float64)

    def f(z, physics):
        return model(z.reshape(-1, 1)).reshape(z.shape)

    loss = Noisier2Noise(alpha=alpha)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss(y, physics, f, generator=torch.Generator().manual_seed(1))
        value.backward()
        return value

    opt.step(closure)
    d = T**2 + sigma**2 * (1 + alpha**2)
    a_y = (T**2 + sigma**2) / d  # E[y | z] slope
    se_a = math.sqrt(sigma**2 / (d * n))  # rough standard error of a regression slope
    a = float(model.weight.detach())
    assert abs(a - a_y) < 4 * se_a + 1e-3
    # the estimator on constant images y0 in {0.2, 0.8}: its mean slope in y is ((1 + a^2) a - 1)/a^2 ~ t^2/d
    y0 = torch.tensor([0.2, 0.8], dtype=torch.float64).reshape(2, 1, 1, 1).expand(2, 1, 64, 64)
    with torch.no_grad():
        out = loss.test_model(f, n_samples=1)(y0, physics, generator=torch.Generator().manual_seed(4))
    slope = float((out[1].mean() - out[0].mean()) / 0.6)
    gain = ((1 + alpha**2) * a - 1) / alpha**2
    se_slope = math.sqrt(2) * abs(gain) * alpha * sigma / 64 / 0.6  # from the draws of z
    assert abs(slope - gain) < 4 * se_slope
    assert abs(slope - T**2 / d) < 4 * se_slope + (4 * se_a + 1e-3) * (1 + alpha**2) / alpha**2
    assert out.shape == y0.shape
