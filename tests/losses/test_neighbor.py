"""Neighbor2Neighbor: two evaluations per step, the neighbour sub-sampler, odd sizes, where gradients flow."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from selfinv.losses.base import sq_mean
from selfinv.losses.neighbor import Neighbor2Neighbor, neighbour_pairs, subsample
from selfinv.losses.supervised import MC
from selfinv.noise import Gaussian
from selfinv.physics import Denoising, Inpainting
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.double()

    def forward(self, y, physics=None):
        return y + self.conv(y)


class Recorder:
    """Records each call: input shape, whether grad was enabled, and the output."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, y, physics):
        out = self.model(y, physics)
        self.calls.append((tuple(y.shape), torch.is_grad_enabled(), out))
        return out


def positions(b: int, c: int, h: int, w: int) -> torch.Tensor:
    """Each entry holds w·row + col + 1000·channel."""
    t = torch.arange(h * w, dtype=torch.float64).reshape(h, w)
    return (t + 1000.0 * torch.arange(c, dtype=torch.float64)[:, None, None]).expand(b, c, h, w).contiguous()


@pytest.mark.parametrize("shape", [(2, 3, 8, 10), (2, 3, 7, 9), (1, 1, 2, 3)])
def test_exactly_two_calls_full_resolution_without_grad(shape):
    y = torch.rand(shape, dtype=torch.float64, generator=gen(0))
    rec = Recorder(Net(shape[1]))
    loss = Neighbor2Neighbor()(y, Denoising(), rec, generator=gen(1))
    half = (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    assert [(s, g) for s, g, _ in rec.calls] == [(half, True), (tuple(shape), False)]
    assert rec.calls[0][2].requires_grad and not rec.calls[1][2].requires_grad
    assert loss.ndim == 0 and loss.requires_grad
    assert len(rec.calls) == Neighbor2Neighbor.info.train_evals == 2


def test_subsampler_picks_adjacent_pixels_of_the_same_cell_shared_by_channels():
    B, C, H, W = 500, 3, 6, 8
    y = positions(B, C, H, W)
    pairs = neighbour_pairs(y, gen(2))
    assert pairs.shape == (B, 1, H // 2, W // 2, 2)
    g1, g2 = subsample(y, pairs)
    assert g1.shape == g2.shape == (B, C, H // 2, W // 2)
    p1, p2 = g1.long() % 1000, g2.long() % 1000
    assert torch.equal(g1.long() // 1000, torch.arange(C)[:, None, None].expand_as(g1))  # channel c from channel c
    assert torch.equal(p1, p1[:, :1].expand_as(p1)) and torch.equal(p2, p2[:, :1].expand_as(p2))  # shared choice
    r1, c1, r2, c2 = p1 // W, p1 % W, p2 // W, p2 % W
    i = torch.arange(H // 2)[:, None]
    j = torch.arange(W // 2)[None, :]
    assert bool(((r1 // 2 == i) & (c1 // 2 == j) & (r2 // 2 == i) & (c2 // 2 == j)).all())  # same 2×2 cell
    assert bool(((r1 - r2).abs() + (c1 - c2).abs() == 1).all())  # different and adjacent (never diagonal)
    # the 8 ordered adjacent pairs are equally likely, per cell and per sample
    code = ((r1 % 2) * 2 + c1 % 2) * 4 + (r2 % 2) * 2 + c2 % 2
    counts = torch.bincount(code[:, 0].flatten(), minlength=16).double()
    used = counts > 0
    assert int(used.sum()) == 8
    n = float(counts.sum())
    se = math.sqrt(n * (1 / 8) * (7 / 8))
    assert float((counts[used] - n / 8).abs().max()) < 4 * se
    assert not torch.equal(pairs[0], pairs[1])


def test_odd_sizes_crop_the_last_row_and_column_and_the_value_matches_the_formula():
    net = Net(2)
    y = torch.rand(3, 2, 7, 9, dtype=torch.float64, generator=gen(3))
    rec = Recorder(net)
    value = Neighbor2Neighbor(gamma=1.5)(y, Denoising(), rec, generator=gen(4))
    pairs = neighbour_pairs(y, gen(4))
    g1, g2 = subsample(y, pairs)
    assert g1.shape == (3, 2, 3, 4)
    assert torch.equal(subsample(y[..., :6, :8], pairs)[0], g1)  # the last row/column is cropped
    assert rec.calls[1][0] == (3, 2, 7, 9)  # f(y) on the uncropped y
    with torch.no_grad():
        full = net(y)
    f1, f2 = subsample(full, pairs)
    out = net(g1)
    expected = sq_mean(out - g2) + 1.5 * sq_mean(out - g2 - (f1 - f2))
    assert torch.allclose(value, expected)


def test_gradients_flow_only_through_the_half_resolution_pass():
    y = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=gen(5))
    net = Net()
    Neighbor2Neighbor(gamma=2.0)(y, Denoising(), net, generator=gen(6)).backward()
    got = [p.grad.clone() for p in net.parameters()]
    # reference: both terms through f(g1(y)), the full-resolution output detached
    net.zero_grad()
    pairs = neighbour_pairs(y, gen(6))
    g1, g2 = subsample(y, pairs)
    f1, f2 = subsample(net(y).detach(), pairs)
    out = net(g1)
    (sq_mean(out - g2) + 2.0 * sq_mean(out - g2 - (f1 - f2))).backward()
    assert all(torch.allclose(a, p.grad) for a, p in zip(got, net.parameters(), strict=True))
    # and with a full-resolution pass that kept its gradient, the result would differ
    net.zero_grad()
    f1, f2 = subsample(net(y), pairs)
    out = net(g1)
    (sq_mean(out - g2) + 2.0 * sq_mean(out - g2 - (f1 - f2))).backward()
    assert not all(torch.allclose(a, p.grad) for a, p in zip(got, net.parameters(), strict=True))


def test_in_a_sum_the_shared_evaluation_is_reused():
    y = torch.rand(2, 1, 6, 6, dtype=torch.float64, generator=gen(7))
    net = Net(1)
    rec = Recorder(net)
    (MC() + Neighbor2Neighbor())(y, Denoising(), rec, generator=gen(8))
    assert [(s, g) for s, g, _ in rec.calls] == [((2, 1, 6, 6), True), ((2, 1, 3, 3), True)]  # 2 calls, not 3
    value = (MC() + Neighbor2Neighbor())(y, Denoising(), net, generator=gen(8))
    assert torch.allclose(value, MC()(y, Denoising(), net) + Neighbor2Neighbor()(y, Denoising(), net, generator=gen(8)))


class _CountOps(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def test_no_loop_over_channels_or_samples():
    counts = []
    for shape in [(1, 1, 8, 8), (16, 32, 32, 32)]:
        y = torch.rand(shape)
        with _CountOps() as ops:
            subsample(y, neighbour_pairs(y, gen(9)))
        counts.append(ops.n)
    assert counts[0] == counts[1], counts


def test_contract():
    physics = Denoising(noise=Gaussian(0.1))
    y = physics(torch.rand(3, 3, 9, 10, dtype=torch.float64, generator=gen(10)), generator=gen(11))
    y0 = y.clone()
    net = Net()
    loss = Neighbor2Neighbor()
    value = loss(y, physics, net, generator=gen(12))
    assert value.ndim == 0
    value.backward()
    assert all(bool(p.grad.abs().sum() > 0) for p in net.parameters())
    assert torch.equal(y, y0)
    with torch.no_grad():
        assert float(loss(y, physics, net, generator=gen(12))) == float(value)
        assert float(loss(y, physics, net, generator=gen(13))) != float(value)
    assert loss.test_model(net) is net
    info = loss.info
    assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (2, 1, True, False)
    assert (info.unknown_separable_noise, info.unknown_coloured_noise, info.noise_models, info.general_operator) == (
        True,
        False,
        None,
        False,
    )
    with pytest.raises(ValueError, match="gamma"):
        Neighbor2Neighbor(gamma=-1)
    with pytest.raises(ValueError, match="spatial size >= 2"):
        loss(torch.rand(1, 1, 1, 8), Denoising(), net)
    with pytest.raises(ValueError, match="only defined for denoising"):
        loss(torch.rand(1, 1, 8, 8), Inpainting(torch.ones(8, 8)), net)
