"""Noisier2Noise: the correction identity (anchors §6.7) and the trained linear estimator."""

from __future__ import annotations

import math

import torch

from selfinv.losses import Noisier2Noise
from selfinv.noise import Gaussian
from selfinv.physics import Denoising


def test_correction_turns_the_learned_minimiser_into_the_posterior_mean_given_z():
    """Gaussian prior x ~ N(mu, t²): fit f(z) = a z + b by least squares on the loss's own draws of z."""
    mu, t, sigma, alpha, n = 0.5, 0.2, 0.1, 0.8, 200_000
    g = torch.Generator().manual_seed(0)
    x = mu + t * torch.randn(n, 1, 1, 1, generator=g, dtype=torch.float64)
    physics = Denoising(noise=Gaussian(sigma))
    y = physics(x, generator=g)
    model = torch.nn.Linear(1, 1, dtype=torch.float64)
    f = lambda z, physics: model(z.reshape(-1, 1)).reshape(z.shape)  # noqa: E731
    loss = Noisier2Noise(alpha=alpha)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=50, line_search_fn="strong_wolfe")
    gen = torch.Generator().manual_seed(1)

    def closure():
        opt.zero_grad()
        value = loss(y, physics, f, generator=torch.Generator().manual_seed(1))
        value.backward()
        return value

    opt.step(closure)
    d = t**2 + sigma**2 * (1 + alpha**2)
    a_y = (t**2 + sigma**2) / d  # E[y | z] slope
    se = math.sqrt(sigma**2 / (d * n)) * 4  # rough standard error of a regression slope, 4 SE
    assert abs(float(model.weight.detach()) - a_y) < se + 1e-3
    # the corrected estimator has the slope of E[x | z] = mu + t²/d (z − mu)
    est = loss.test_model(f, n_samples=1, generator=gen)
    z0 = torch.tensor([[[[0.2]]], [[[0.8]]]], dtype=torch.float64)
    with torch.no_grad():
        # evaluate the correction on fixed z (bypassing the random draw) through the formula itself
        corrected = ((1 + alpha**2) * f(z0, physics) - z0) / alpha**2
    slope = float((corrected[1] - corrected[0]) / 0.6)
    assert abs(slope - t**2 / d) < 2 * (se + 1e-3) * (1 + alpha**2) / alpha**2
    assert est(y[:4], physics).shape == y[:4].shape
