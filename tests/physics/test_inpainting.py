"""Inpainting operator and mask samplers."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.physics import Inpainting
from selfinv.physics.samplers import BernoulliMaskSampler, BlockMaskSampler


def test_mask_shapes_shared_per_channel_and_per_sample():
    x = torch.rand(2, 3, 4, 5)
    for mask in [torch.ones(4, 5), torch.ones(1, 1, 4, 5), torch.ones(1, 3, 4, 5), torch.ones(2, 1, 4, 5)]:
        assert Inpainting(mask).A(x).shape == x.shape
    with pytest.raises(ValueError, match="pixels but the mask"):
        Inpainting(torch.ones(4, 4)).A(x)
    with pytest.raises(ValueError, match="channels"):
        Inpainting(torch.ones(1, 2, 4, 5)).A(x)
    with pytest.raises(ValueError, match="batch"):
        Inpainting(torch.ones(3, 1, 4, 5)).A(x)
    with pytest.raises(ValueError, match="non-negative"):
        Inpainting(-torch.ones(4, 5))
    with pytest.raises(ValueError, match="NaN"):
        Inpainting(torch.full((4, 5), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        Inpainting(torch.ones(5))


def test_weighted_mask_pseudo_inverse():
    mask = torch.tensor([[0.5, 0.0], [2.0, 1.0]], dtype=torch.float64)
    op = Inpainting(mask)
    y = torch.tensor([[[[1.0, 0.0], [4.0, 3.0]]]], dtype=torch.float64)
    assert torch.equal(op.A_dagger(y)[0, 0], torch.tensor([[2.0, 0.0], [2.0, 3.0]], dtype=torch.float64))


def test_bernoulli_sampler_fraction_within_standard_error():
    sampler = BernoulliMaskSampler((64, 64), p=0.3, channels=3)
    m = sampler.sample(4, torch.Generator().manual_seed(0))
    assert m.shape == (4, 3, 64, 64)
    n = m.numel()
    assert abs(float(m.mean()) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    assert not torch.equal(m[0], m[1])
    assert torch.equal(m, sampler.sample(4, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="p must be"):
        BernoulliMaskSampler(8, p=0.0)


def test_block_sampler_holes():
    sampler = BlockMaskSampler((20, 30), block_size=(4, 6), n_blocks=1)
    m = sampler.sample(5, torch.Generator().manual_seed(0))
    assert m.shape == (5, 1, 20, 30)
    assert bool(((1 - m).flatten(1).sum(1) == 24).all())  # one 4×6 hole each
    holes = [tuple((m[i, 0] == 0).nonzero().min(0).values.tolist()) for i in range(5)]
    assert len(set(holes)) > 1
    with pytest.raises(ValueError, match="exceeds"):
        BlockMaskSampler(8, block_size=9)
