"""The pixel-wise A = I losses on volumes (B, C, D, H, W), the 3-D masks, and structN2V's line mask."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfinv.losses import LOSSES
from selfinv.losses.masking import Noise2Self, Noise2Void
from selfinv.losses.masks import grid_mask, interpolate
from selfinv.losses.neighbor import neighbour_pairs, subsample
from selfinv.noise import Gaussian, PoissonGaussian
from selfinv.physics import Denoising
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (2, 1, 8, 16, 16)
VOLUME_LOSSES = ["noise2void", "noise2self", "neighbor2neighbor", "r2r", "sure", "unsure", "unsure_covariance",
                 "unsure_pg", "noise2noise"]


class Conv3dNet(nn.Module):
    def __init__(self, layers: int = 2) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        for i in range(layers):
            mods += [nn.Conv3d(1 if i == 0 else 4, 4 if i < layers - 1 else 1, 3, padding=1)]
            if i < layers - 1:
                mods.append(nn.Tanh())
        self.net = nn.Sequential(*mods).double()

    def forward(self, y, physics=None):
        return y + self.net(y)


@pytest.mark.parametrize("name", VOLUME_LOSSES)
def test_loss_runs_on_volumes_with_gradients(name):
    torch.manual_seed(0)
    net = Conv3dNet()
    noise = PoissonGaussian(0.05, 0.02) if name == "unsure_pg" else Gaussian(0.1)
    y = torch.rand(SHAPE, generator=gen(1), dtype=torch.float64)
    y2 = y + 0.1 * torch.randn(SHAPE, generator=gen(2), dtype=torch.float64)
    value = LOSSES[name]()(y, Denoising(noise=noise), net, y2=y2, generator=gen(3))
    assert value.ndim == 0 and bool(torch.isfinite(value))
    value.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def _input_gradient(net, y_a_of, y, index):
    """d f(y_a(y))[index] / d y, with y_a built from y by the loss's (fixed-draw) replacement."""
    y = y.clone().requires_grad_(True)
    out = net(y_a_of(y))
    (g,) = torch.autograd.grad(out[index], y)
    return g


def test_noise2void_3d_mask_is_blind():
    """Output at every masked voxel is independent of the input there (exact: its gradient is 0)."""
    torch.manual_seed(0)
    net, loss = Conv3dNet(3), Noise2Void(ratio=0.02, radius=1)
    y = torch.rand(1, 1, 6, 8, 8, generator=gen(4), dtype=torch.float64)
    mask = loss.sample_mask(y, gen(5))
    assert mask.shape == (1, 1, 6, 8, 8) and int(mask.sum()) == round(0.02 * 384)
    for b, c, d, h, w in mask.nonzero().tolist():
        g = _input_gradient(lambda t: net(t) - t, lambda t: loss.replace(t, mask, gen(6)), y, (b, c, d, h, w))
        assert float(g[b, c, d, h, w]) == 0.0
        assert float(g.abs().sum()) > 0  # it sees the rest of its neighbourhood
    y_a = loss.replace(y, mask, gen(6))
    assert torch.equal(y_a[~mask], y[~mask])


def test_noise2self_3d_grid_and_interpolation():
    masks = grid_mask((4, 5, 6), 2, torch.arange(8))
    assert bool(masks.sum(0).eq(1).all())  # the 2³ phases partition the voxels
    ones = torch.ones(1, 1, 4, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(interpolate(ones), ones)  # a weighted mean, renormalised at the border
    loss = Noise2Self(width=2, replacement="interpolate")
    y = torch.rand(3, 1, 4, 6, 6, generator=gen(7), dtype=torch.float64)
    _, mask = loss.split(y, gen(8))
    assert [int(m.sum()) for m in mask] == [18, 18, 18]  # 1/8 of the voxels
    net = Conv3dNet(1)  # one 3×3×3 layer: the interpolated value never uses a hidden voxel
    f = loss.test_model(net, mode="average")
    y = y.requires_grad_(True)
    (g,) = torch.autograd.grad(f(y)[0, 0, 2, 3, 3], y)
    assert float(g[0, 0, 2, 3, 3]) == 0.0  # the J-invariant average over 8 phases is blind


def test_neighbor2neighbor_3d_picks_two_adjacent_voxels_of_each_cell():
    y = torch.arange(2 * 1 * 5 * 6 * 4, dtype=torch.float64).reshape(2, 1, 5, 6, 4)
    pairs = neighbour_pairs(y, gen(9))
    assert pairs.shape == (2, 1, 2, 3, 2, 2)
    g1, g2 = subsample(y, pairs)
    assert g1.shape == g2.shape == (2, 1, 2, 3, 2)
    strides = torch.tensor([24.0, 4.0, 1.0], dtype=torch.float64)  # the index of voxel (d, h, w) in one volume
    for a, b in ((g1, g2),):
        offset = (b - a).abs()
        assert bool((offset > 0).all())  # two different voxels ...
        assert bool(torch.isin(offset, strides).all())  # ... adjacent along one axis
        base = torch.stack(torch.meshgrid(*[torch.arange(n) * 2 for n in (2, 3, 2)], indexing="ij")).to(torch.float64)
        corner = (base * strides[:, None, None, None]).sum(0)
        within = a[:, 0] - torch.arange(2)[:, None, None, None] * 120 - corner  # position inside the cell
        assert bool(torch.isin(within, torch.tensor([0.0, 1, 4, 5, 24, 25, 28, 29])).all())


@pytest.mark.parametrize("axis,direction", [("horizontal", -1), ("vertical", -2)])
def test_struct_n2v_hides_the_line_exactly(axis, direction):
    """Noise correlated along one axis: the blind-spot prediction has no access to the masked line (the gradient of
    the output at the blind pixel w.r.t. the line's inputs is exactly 0), plain N2V does."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1)).double()
    y = torch.rand(1, 1, 16, 16, generator=gen(10), dtype=torch.float64)
    eps = torch.randn(1, 1, 16, 16, generator=gen(11), dtype=torch.float64)
    kernel = torch.ones(5, dtype=torch.float64) / 5 ** 0.5  # noise correlated along rows (or columns) only
    shape = (1, 1, 1, 5) if direction == -1 else (1, 1, 5, 1)
    y = y + torch.nn.functional.conv2d(eps, kernel.reshape(shape), padding="same")
    struct = Noise2Void(ratio=0.01, radius=2, struct_axis=axis, struct_span=5)
    plain = Noise2Void(ratio=0.01, radius=2)
    mask = struct.sample_mask(y, gen(12))
    for _, _, r, c in mask.nonzero().tolist():
        line = [(r, c + k) if direction == -1 else (r + k, c) for k in range(-2, 3)]
        line = [(i, j) for i, j in line if 0 <= i < 16 and 0 <= j < 16]
        g = _input_gradient(net, lambda t: struct.replace(t, mask, gen(13)), y, (0, 0, r, c))
        assert all(float(g[0, 0, i, j]) == 0.0 for i, j in line)
        assert float(g.abs().sum()) > 0  # it still sees the pixels off the line
        g_plain = _input_gradient(net, lambda t: plain.replace(t, mask, gen(13)), y, (0, 0, r, c))
        assert float(g_plain[0, 0, r, c]) == 0.0
        assert any(float(g_plain[0, 0, i, j]) != 0.0 for i, j in line if (i, j) != (r, c))  # plain N2V sees the line


def test_struct_n2v_on_volumes_and_arguments():
    loss = Noise2Void(ratio=0.02, struct_axis="depth", struct_span=3)
    y = torch.rand(1, 1, 6, 8, 8, generator=gen(14), dtype=torch.float64)
    y_a, mask = loss.split(y, gen(15))
    d, h, w = mask[0, 0].nonzero()[0].tolist()
    for k in (-1, 1):
        if 0 <= d + k < 6:
            assert float(y_a[0, 0, d + k, h, w]) != float(y[0, 0, d + k, h, w])
    with pytest.raises(ValueError, match="for volumes"):
        loss(torch.rand(1, 1, 8, 8), Denoising(), lambda t, p: t)
    for kwargs, match in (({"struct_span": 4}, "odd"), ({"struct_axis": "diagonal"}, "struct_axis"),
                          ({"struct_axis": "horizontal", "replacement": "uniform_withCP"}, "uniform")):
        with pytest.raises(ValueError, match=match):
            Noise2Void(**kwargs)
