"""Shared by the UNSURE tests: the joint training loop of a model and the multipliers, and small fixtures."""

from __future__ import annotations

import math

import torch

from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from tests.helpers import gen

F64 = torch.float64


def train(loss, physics, sample_x, model, params, steps, lr=1e-2, seed=0, every=None):
    """Adam on the model, one ascent step of the loss's multipliers per call; mean of eta over the last 20 %.

    ``every(loss)`` is called after each step (a check that must hold all along)."""
    opt = torch.optim.Adam(params, lr=lr)
    g = gen(seed)
    tail, count = 0.0, 0
    for it in range(steps):
        y = physics(sample_x(g), generator=g)
        value = loss(y, physics, model, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
        if every is not None:
            every(loss)
        if it >= int(0.8 * steps):
            tail, count = tail + loss.eta.clone(), count + 1
    return tail / count


def cosines(n: int, k: int, first: int = 0) -> torch.Tensor:
    """(n, k) orthonormal basis of the k lowest-frequency cosines (DCT-II) from frequency ``first``."""
    i = torch.arange(n, dtype=F64)
    return torch.linalg.qr(torch.stack([torch.cos(math.pi * (i + 0.5) * f / n) for f in range(first, first + k)], 1))[0]



def noisy(seed: int = 0, b: int = 8, sigma: float = 0.1) -> tuple[torch.Tensor, Denoising]:
    physics = Denoising(noise=Gaussian(sigma))
    return physics(torch.rand(b, 16, generator=gen(seed), dtype=F64), generator=gen(seed + 1)), physics


def scale(a: float):
    return lambda y, physics: a * y
