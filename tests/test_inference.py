"""Tiled inference: exactness for finite receptive fields, seams, memory, receptive-field measurement."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from selfinv.inference import _axis_tiles, _axis_windows, receptive_field, tiled_apply
from selfinv.models.unet import UNet
from selfinv.physics.mri import channels_to_complex, complex_to_channels

pytestmark = pytest.mark.usefixtures("one_thread")


def cnn(depth: int, cin: int = 2, cout: int = 3, width: int = 5, dtype=torch.float64, seed: int = 0) -> nn.Module:
    """``depth`` zero-padded 3x3 convolutions with bias and nonlinearities: receptive-field radius ``depth``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c = cin
    for i in range(depth):
        o = cout if i == depth - 1 else width
        layers.append(nn.Conv2d(c, o, 3, padding=1, bias=True))
        if i < depth - 1:
            layers.append(nn.ReLU() if i % 2 == 0 else nn.Tanh())
        c = o
    return nn.Sequential(*layers).to(dtype).eval()


def cuts(size: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Rows where the output switches from one tile to the next (default margin, no ramp: even overlaps)."""
    step = (tile - overlap) // align * align
    wins = _axis_windows(size, _axis_tiles(size, tile, step, align), (tile - step) - 2 * (overlap // 2))
    return [w[0] for w in wins[1:]]


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_equals_whole_image_float64(depth):
    net = cnn(depth)
    g = torch.Generator().manual_seed(depth)
    n = 0
    for (h, w), tile, extra in itertools.product(
        [(5, 7), (16, 16), (17, 40), (40, 33), (63, 64), (70, 29)], [8, 13, 16, 32], [0, 1, 3]
    ):
        overlap = 2 * depth + extra
        if overlap >= tile:
            continue
        x = torch.randn(2, 2, h, w, generator=g, dtype=torch.float64)
        ref = net(x)
        for batch_tiles in (1, 4):
            y = tiled_apply(net, x, tile, overlap, batch_tiles=batch_tiles)
            assert y.shape == ref.shape == (2, 3, h, w)
            assert (y - ref).abs().max() <= 1e-12 * ref.abs().max(), (h, w, tile, overlap, batch_tiles)
            n += 1
    assert n > 40


def test_equals_whole_image_float32():
    net = cnn(3, cin=3, cout=1, dtype=torch.float32)
    x = torch.randn(1, 3, 150, 97, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(x)
    for tile, overlap in [(32, 6), (40, 7), (64, 10), (97, 6)]:
        y = tiled_apply(net, x, tile, overlap, batch_tiles=2)
        assert y.dtype == torch.float32
        assert (y - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_cosine_margin_is_exact_for_radius_up_to_margin():
    """A margin below overlap // 2 gives a cross-fade; still exact when the receptive field is within it."""
    net = cnn(2)
    x = torch.randn(1, 2, 61, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = net(x)
    for tile, overlap, margin in [(24, 12, 2), (20, 9, 3), (32, 16, 2)]:
        y = tiled_apply(net, x, tile, overlap, margin=margin)
        assert (y - ref).abs().max() <= 1e-12 * ref.abs().max()
    bad = tiled_apply(net, x, 24, 12, margin=1)
    assert (bad - ref).abs().max() > 1e-4


@pytest.mark.parametrize("depth", [2, 3])
def test_overlap_too_small_leaves_a_seam_at_the_cuts(depth):
    """The guarantee is tight: margin = depth - 1 gives wrong pixels, and only next to the cuts."""
    net = cnn(depth, cin=1, cout=1)
    h, w, tile = 50, 44, 16
    x = torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = net(x)
    overlap = 2 * depth - 2
    err = (tiled_apply(net, x, tile, overlap) - ref).abs()[0, 0]
    assert err.max() > 1e-3 * ref.abs().max()
    near = torch.zeros(h, w, dtype=torch.bool)
    for c in cuts(h, tile, overlap):
        near[max(c - depth, 0) : c + depth, :] = True
    for c in cuts(w, tile, overlap):
        near[:, max(c - depth, 0) : c + depth] = True
    assert err[~near].max() <= 1e-12 * ref.abs().max()
    # with overlap 2 * depth the same net is exact
    assert (tiled_apply(net, x, tile, 2 * depth) - ref).abs().max() <= 1e-12 * ref.abs().max()


def test_windows_partition_of_unity():
    for size, tile, overlap, margin, align in itertools.product(
        [1, 9, 16, 17, 41, 100], [8, 16], [0, 3, 6], [0, 1, 3], [1, 2, 4]
    ):
        step = (tile - overlap) // align * align
        if margin > overlap // 2 or step < 1:
            continue
        tiles = _axis_tiles(size, tile, step, align)
        assert tiles[0][0] == 0 and tiles[-1][1] == size
        assert all(b - a <= max(tile + align - 1, 1) for a, b in tiles)
        assert all(a % align == 0 for a, _ in tiles)
        total = torch.zeros(size, dtype=torch.float64)
        for (a, b), (p, q, wts) in zip(tiles, _axis_windows(size, tiles, tile - step - 2 * margin), strict=True):
            assert (wts > 0).all() and a <= p < q <= b
            if a > 0:
                assert p >= a + margin  # zero within the margin of an interior edge
            if b < size:
                assert q <= b - margin
            total[p:q] += wts
        assert torch.allclose(total, torch.ones(size, dtype=torch.float64), rtol=0, atol=1e-15)


# ---------------------------------------------------------------- tiles, shapes, dtypes
def test_tiles_are_never_padded_and_small_images_go_whole():
    seen: list[tuple[int, ...]] = []

    def record(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return 2 * t

    x = torch.randn(1, 3, 70, 45)
    y = tiled_apply(record, x, 32, 8)
    assert set(seen) == {(1, 3, 32, 32)} and len(seen) == 3 * 2
    assert torch.equal(y, 2 * x)

    seen.clear()
    x = torch.randn(2, 1, 20, 31)  # smaller than a tile: one call with the whole image
    y = tiled_apply(record, x, 32, 8)
    assert seen == [(2, 1, 20, 31)] and torch.equal(y, 2 * x)

    seen.clear()
    x = torch.randn(1, 1, 20, 100)  # one tile high: strips
    tiled_apply(record, x, 32, 8)
    assert set(seen) == {(1, 1, 20, 32)}

    seen.clear()
    tiled_apply(record, torch.randn(1, 1, 70, 70), 32, 8, batch_tiles=4)
    assert seen == [(4, 1, 32, 32), (4, 1, 32, 32), (1, 1, 32, 32)]


def test_input_is_not_modified_and_no_graph_is_kept():
    net = cnn(1, cin=1, cout=1)
    x = torch.randn(1, 1, 40, 40, dtype=torch.float64)
    x0 = x.clone()

    def inplace(t):
        return net(t.mul_(2))

    y = tiled_apply(inplace, x, 16, 2)
    assert torch.equal(x, x0)
    assert not y.requires_grad
    assert (y - net(2 * x)).abs().max() < 1e-12


def test_complex_input_and_output():
    net = cnn(2, cin=2, cout=2)  # one complex channel as 2 real channels

    def fn(t):
        return channels_to_complex(net(complex_to_channels(t)))

    g = torch.Generator().manual_seed(3)
    x = torch.complex(torch.randn(2, 1, 45, 38, generator=g), torch.randn(2, 1, 45, 38, generator=g)).to(
        torch.complex128
    )
    ref = fn(x)
    y = tiled_apply(fn, x, 16, 4, batch_tiles=3)
    assert y.dtype == torch.complex128 and y.shape == ref.shape
    assert (y - ref).abs().max() <= 1e-12 * ref.abs().max()
    assert receptive_field(fn, 1, dtype=torch.complex128) == 2


def test_align_keeps_the_phase_of_periodic_operators():
    """fn is equivariant to even shifts only (a Bayer-like 2x2 periodic gain): exact with align=2."""
    net = cnn(1, cin=1, cout=1)

    def bayer_like(t):
        gain = torch.ones(t.shape[-2:], dtype=t.dtype)
        gain[0::2, 1::2] = 2.0
        gain[1::2, 0::2] = 3.0
        return net(t * gain)

    x = torch.randn(1, 1, 37, 42, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = bayer_like(x)
    y = tiled_apply(bayer_like, x, 16, 5, align=2)  # step 11 -> 10; last tiles start on even pixels
    assert (y - ref).abs().max() <= 1e-12 * ref.abs().max()
    assert (tiled_apply(bayer_like, x, 16, 5) - ref).abs().max() > 1e-3


def test_unet_close_and_seamless_with_a_large_overlap():
    """Receptive field far beyond the margin: close to the whole image, and no jump across the tile borders."""
    torch.manual_seed(0)
    net = UNet(1, 1, depth=3, width=4, up="bilinear").double().eval()
    assert receptive_field(net, 1) > 40  # much larger than the margin used below
    x = torch.randn(1, 1, 200, 248, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = nn.functional.avg_pool2d(x, 5, 1, 2)  # an image with some structure
    with torch.no_grad():
        ref = net(x)
    for margin in (None, 6):  # hard cut at the middle of the overlap, or a cosine cross-fade
        y = tiled_apply(net, x, 64, 32, align=8, margin=margin)
        assert (y - ref).norm() <= 1e-4 * ref.norm()
        # gradient magnitude across the tile borders vs elsewhere: the same as the whole image's
        dy = (y[..., 1:, :] - y[..., :-1, :]).abs().mean(dim=(0, 1, 3))
        dx = (y[..., 1:] - y[..., :-1]).abs().mean(dim=(0, 1, 2))
        dy_ref = (ref[..., 1:, :] - ref[..., :-1, :]).abs().mean(dim=(0, 1, 3))
        dx_ref = (ref[..., 1:] - ref[..., :-1]).abs().mean(dim=(0, 1, 2))
        assert ((dy / dy_ref) - 1).abs().max() < 1e-3 and ((dx / dx_ref) - 1).abs().max() < 1e-3
        rows = [c - 1 for c in cuts(200, 64, 32, 8)]
        assert dy[rows].mean() < 1.5 * dy.mean()
    # the error decays with the overlap (and is visible with a small one)
    errs = [float((tiled_apply(net, x, 64, ov, align=8) - ref).norm() / ref.norm()) for ov in (8, 16, 32)]
    assert errs[0] > 3 * errs[1] > 9 * errs[2] and errs[0] > 1e-6


# ---------------------------------------------------------------- receptive field
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_receptive_field_of_a_cnn(depth):
    assert receptive_field(cnn(depth), 2) == depth


def test_receptive_field_grows_the_probe():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 1, 25, padding=12))
    assert receptive_field(net, 1, size=9) == 13  # probes of 9, 17, 33 pixels
    with pytest.warns(UserWarning, match="at least"):
        assert receptive_field(net, 1, size=9, max_size=17) == 8
    assert receptive_field(lambda t: 3 * t, 4) == 0


# ---------------------------------------------------------------- arguments, progress
def test_argument_validation():
    net = cnn(1, cin=1, cout=1)
    x = torch.randn(1, 1, 20, 20, dtype=torch.float64)
    with pytest.raises(ValueError, match="tile > overlap"):
        tiled_apply(net, x, 8, 8)
    with pytest.raises(ValueError, match="tile > overlap"):
        tiled_apply(net, x, 8, -1)
    with pytest.raises(ValueError, match="integer"):
        tiled_apply(net, x, 8.0, 2)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        tiled_apply(net, x[0], 8, 2)
    with pytest.raises(ValueError, match="margin"):
        tiled_apply(net, x, 8, 2, margin=2)
    with pytest.raises(ValueError, match="align"):
        tiled_apply(net, x, 8, 6, align=4)
    with pytest.raises(ValueError, match="batch_tiles"):
        tiled_apply(net, x, 8, 2, batch_tiles=0)
    with pytest.raises(ValueError, match="same b, h, w"):
        tiled_apply(lambda t: t[..., 1:, :], x, 8, 2)
    with pytest.raises(ValueError, match="callable"):
        tiled_apply(None, x, 8, 2)
    with pytest.raises(ValueError, match="channels"):
        receptive_field(net, 0)


def test_progress_bar_on_stderr(capsys):
    x = torch.randn(1, 1, 40, 40)
    tiled_apply(lambda t: t, x, 16, 4, progress=True, device="cpu")
    err = capsys.readouterr().err
    assert "tiles" in err and "9/9" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_another_device_and_returns_on_the_input_device():
    net = cnn(2).cuda()
    x = torch.randn(1, 2, 100, 90, dtype=torch.float64)
    y = tiled_apply(net, x, 32, 4, device="cuda", batch_tiles=2)
    assert y.device == x.device
    assert (y - net(x.cuda()).cpu()).abs().max() <= 1e-12 * y.abs().max()


# ---------------------------------------------------------------- memory
_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, time, torch
    from torch import nn
    from selfinv.inference import tiled_apply

    def hwm_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1])

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1)).eval()
    net(torch.zeros(1, 1, 64, 64))  # load the kernels before the baseline
    x = torch.randn(1, 1, 4096, 4096)
    largest = []

    def fn(t):
        largest.append(t.numel())
        return net(t)

    base = hwm_kib()
    t0 = time.perf_counter()
    y = tiled_apply(fn, x, 512, 4)
    seconds = time.perf_counter() - t0
    # tiles and the whole image sum the same products in different orders (the CPU's convolution kernels choose
    # their blocking by input size), so equality holds up to float32 rounding: the classical forward-error
    # bound |fl(W x) - W x| <= gamma_k |W| |x|, gamma_k = k u / (1 - k u), per layer (k = 9 in-channels x 3 x 3
    # + bias terms), applied to the magnitudes of the network, |W2| relu-free(|W1| |x| + |b1|) + |b2|.
    crop_x = x[:, :, 990:1110, 1990:2110]
    ref = net(crop_x)[:, :, 10:110, 10:110]
    absnet = nn.Sequential(*(nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1) if isinstance(m, nn.Conv2d)
                             else nn.Identity() for m in net))
    with torch.no_grad():
        for a, m in zip(absnet, net):
            if isinstance(m, nn.Conv2d):
                a.weight.copy_(m.weight.abs()); a.bias.copy_(m.bias.abs())
        magnitude = absnet(crop_x.abs())[:, :, 10:110, 10:110]
    u = torch.finfo(torch.float32).eps / 2
    k = 9 * 4 + 1 + 9 * 1 + 1  # terms summed along the deepest path (both layers)
    bound = 2 * k * u / (1 - k * u) * magnitude
    err = (y[:, :, 1000:1100, 2000:2100] - ref).abs()
    ok = bool((err <= bound).all())
    worst = float((err / bound.clamp_min(1e-30)).max())
    print(json.dumps({"extra_mib": (hwm_kib() - base) / 1024, "seconds": seconds, "largest": max(largest),
                      "calls": len(largest), "shape": list(y.shape), "ok": ok, "worst": worst}))
    """
)


@pytest.mark.slow
def test_memory_is_bounded_on_a_4096_image():
    """4096x4096 float32 through a 2-layer, 4-channel CNN in 512 tiles: the peak resident memory grows by the
    output (64 MiB) plus a few tiles, not by the 4-channel 4096x4096 activations (~1.3 GiB whole-image)."""
    res = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    import json

    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["shape"] == [1, 1, 4096, 4096] and out["ok"]
    assert out["largest"] == 512 * 512 and out["calls"] == 9 * 9
    assert out["extra_mib"] < 64 + 192, out  # output + < 192 MiB of tiles and temporaries (1 GiB allowed by spec)
    print(f"\n4096x4096 tiled: {out['seconds']:.2f} s ({16.78 / out['seconds']:.1f} MP/s), +{out['extra_mib']:.0f} MiB")


def test_tiled_3d_equals_untiled_for_a_convolutional_network():
    """Volumes: overlapping 3-D tiles, blended, equal the whole-volume result when the tiles' margin covers the
    receptive field (a stack of two 3×3×3 convolutions: radius 2)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv3d(3, 2, 3, padding=1)).double()
    x = torch.randn(2, 1, 13, 18, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        whole = net(x)
    tiled = tiled_apply(net, x, tile=8, overlap=4, batch_tiles=3)
    assert tiled.shape == (2, 2, 13, 18, 11)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)
    seams = tiled_apply(net, x, tile=8, overlap=2)  # margin 1 < radius 2: wrong voxels next to the cuts
    assert not torch.allclose(seams, whole)
