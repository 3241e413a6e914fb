"""Multi-coil MRI (SENSE): numpy oracle, adjointness for every mask kind, the normal equations by CG, per-sample
masks and maps, broadcast maps, devices and dtypes, measurement groups shared by the coils, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfinv.noise import Gaussian
from selfinv.physics import MRI, MultiCoilMRI
from selfinv.physics.samplers import MRIMaskSampler
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

C128 = torch.complex128
H, W, COILS = 12, 10, 4


def crandn(*shape, seed=0, dtype=C128):
    g = gen(seed)
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


def unit_rss(maps: torch.Tensor) -> torch.Tensor:
    return maps / maps.abs().pow(2).sum(1, keepdim=True).sqrt()


def masks(n: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """One mask of every kind (n, 1, H, W): Cartesian lines, rows, 2-D uniform points, 2-D variable density with a
    fully sampled centre, and a mask per coil (n, C, H, W)."""
    g = gen(seed)
    lines = MRIMaskSampler((H, W), acceleration=2, center_fraction=0.2).sample(n, generator=g)
    yy, xx = torch.meshgrid(torch.arange(H) - H // 2, torch.arange(W) - W // 2, indexing="ij")
    density = torch.exp(-(yy**2 + xx**2) / 18.0)
    vd = (torch.rand(n, 1, H, W, generator=g) < density).float()
    vd[..., H // 2 - 2 : H // 2 + 2, W // 2 - 2 : W // 2 + 2] = 1
    return {
        "lines": lines,
        "rows": MRIMaskSampler((W, H), acceleration=2, center_fraction=0.2).sample(n, generator=g).transpose(-1, -2),
        "points": (torch.rand(n, 1, H, W, generator=g) > 0.6).float(),
        "variable_density": vd,
        "per_coil": (torch.rand(n, COILS, H, W, generator=g) > 0.5).float(),
    }


def numpy_sense(x: np.ndarray, mask: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """The oracle: y_c = M F(S_c x) with numpy's FFT, centred (ifftshift, fft2, fftshift) and orthonormal."""
    img = maps * x  # (B, C, H, W)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return mask * k


@pytest.mark.parametrize("kind", list(masks()))
def test_matches_numpy_and_is_adjoint_in_float64(kind):
    mask = masks(2)[kind]
    maps = crandn(2, COILS, H, W, seed=1)
    op = MultiCoilMRI(mask, maps)
    x, y = crandn(2, 1, H, W, seed=2), crandn(2, COILS, H, W, seed=3)
    np.testing.assert_allclose(op.A(x).numpy(), numpy_sense(x.numpy(), mask.numpy(), maps.numpy()), atol=1e-12)
    lhs, rhs = torch.vdot(op.A(x).flatten(), y.flatten()), torch.vdot(x.flatten(), op.A_adjoint(y).flatten())
    assert float((lhs - rhs).abs()) < 1e-12 * float(x.norm() * y.norm() * maps.abs().max() * COILS)
    torch.testing.assert_close(op.normal(x), op.A_adjoint(op.A(x)), rtol=1e-12, atol=1e-12)
    # the adjoint is the coil combination of the zero-filled coil images
    zero_filled = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(mask * y, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    torch.testing.assert_close(op.A_adjoint(y), (maps.conj() * zero_filled).sum(1, keepdim=True), rtol=1e-12, atol=1e-12)


def test_one_coil_with_unit_map_is_single_coil_mri():
    mask = masks(2)["points"]
    x = crandn(2, 1, H, W, seed=4)
    ones = torch.ones(1, 1, H, W, dtype=C128)
    torch.testing.assert_close(MultiCoilMRI(mask, ones).A(x), MRI(mask).A(x))
    torch.testing.assert_close(MultiCoilMRI(mask, ones).A_adjoint(MRI(mask).A(x)), MRI(mask).A_adjoint(MRI(mask).A(x)))


def test_fully_sampled_with_unit_rss_maps_is_an_isometry():
    maps = unit_rss(crandn(1, COILS, H, W, seed=5))
    op = MultiCoilMRI(torch.ones(H, W), maps)
    x = crandn(3, 1, H, W, seed=6)
    torch.testing.assert_close(op.A_adjoint(op.A(x)), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.A(x).norm(), x.norm())
    torch.testing.assert_close(op.A_dagger(op.A(x), tol=1e-12), x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["lines", "variable_density", "per_coil"])
def test_cg_pseudo_inverse_solves_the_normal_equations(kind):
    """A† y by CG: A^H A x† = A^H y for any y (not only in the range), A A† A = A, and x† is orthogonal to the
    nullspace (the minimum-norm solution)."""
    op = MultiCoilMRI(masks(2, seed=7)[kind], crandn(2, COILS, H, W, seed=8))
    y = crandn(2, COILS, H, W, seed=9)
    x_dag = op.A_dagger(y, tol=1e-12, max_iter=1000)
    residual = op.normal(x_dag) - op.A_adjoint(y)
    assert float(residual.norm() / op.A_adjoint(y).norm()) < 1e-9
    ax = op.A(crandn(2, 1, H, W, seed=10))
    assert float((op.A(op.A_dagger(ax, tol=1e-12, max_iter=1000)) - ax).norm() / ax.norm()) < 1e-9
    v = crandn(2, 1, H, W, seed=11)
    null = v - op.A_dagger(op.A(v), tol=1e-12, max_iter=1000)
    assert float(torch.vdot(null.flatten(), x_dag.flatten()).abs()) < 1e-8 * float(v.norm() * x_dag.norm())


@pytest.mark.parametrize("shared", ["mask", "maps", "neither"])
def test_a_batch_equals_its_samples_one_by_one(shared):
    mask = masks(1 if shared == "mask" else 3, seed=12)["variable_density"]
    maps = crandn(1 if shared == "maps" else 3, COILS, H, W, seed=13)
    op = MultiCoilMRI(mask, maps)
    assert op.batch_size == 3
    x, y = crandn(3, 1, H, W, seed=14), crandn(3, COILS, H, W, seed=15)
    for i in range(3):
        alone = MultiCoilMRI(mask[i : i + 1] if mask.shape[0] == 3 else mask, maps[i : i + 1] if maps.shape[0] == 3 else maps)
        torch.testing.assert_close(op.A(x)[i : i + 1], alone.A(x[i : i + 1]), rtol=0, atol=0)
        torch.testing.assert_close(op.A_adjoint(y)[i : i + 1], alone.A_adjoint(y[i : i + 1]), rtol=0, atol=0)
        torch.testing.assert_close(op.select(i).A(x[i : i + 1]), alone.A(x[i : i + 1]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="batch"):
        op.A(x[:2])


def test_shared_maps_broadcast_like_expanded_ones():
    mask, maps = masks(3, seed=16)["lines"], crandn(1, COILS, H, W, seed=17)
    x = crandn(3, 1, H, W, seed=18)
    torch.testing.assert_close(MultiCoilMRI(mask, maps).A(x), MultiCoilMRI(mask, maps.expand(3, -1, -1, -1)).A(x),
                               rtol=0, atol=0)
    assert MultiCoilMRI(torch.ones(H, W), maps).batch_size is None and MultiCoilMRI(mask, maps).batch_size == 3


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_devices_and_dtypes(dtype, device):
    maps = crandn(2, COILS, H, W, seed=19, dtype=torch.complex64)  # maps follow the data's precision
    op = MultiCoilMRI(masks(2)["points"], maps).to(device)
    x = crandn(2, 1, H, W, seed=20, dtype=dtype).to(device)
    y = op.A(x)
    assert y.dtype == dtype and y.device.type == device and y.shape == (2, COILS, H, W)
    assert op.A_adjoint(y).dtype == dtype and op.A_dagger(y, max_iter=5).shape == x.shape
    assert op.x_shape == (1, H, W) and op.coils == COILS


def test_noise_only_on_sampled_locations_and_groups_shared_by_the_coils():
    lines = masks(2, seed=21)["lines"]
    op = MultiCoilMRI(lines, crandn(1, COILS, H, W, seed=22), noise=Gaussian(0.1))
    x = crandn(2, 1, H, W, seed=23)
    y = op(x, generator=gen(24))
    sampled = lines.expand_as(y) > 0
    assert bool((y[~sampled] == 0).all()) and bool((y[sampled] != 0).all())
    groups = op.measurement_groups(y)
    assert groups.shape == (2, 1, H, W)  # one label per location, broadcast over the coils
    assert torch.equal(groups, torch.arange(W).expand(2, 1, H, W))  # Cartesian lines: one group per column
    points = MultiCoilMRI(masks(1, seed=25)["points"], crandn(1, COILS, H, W, seed=26))
    assert torch.equal(points.measurement_groups(y[:1])[0, 0], torch.arange(H * W).reshape(H, W))
    rows = MultiCoilMRI(masks(1, seed=25)["rows"], crandn(1, COILS, H, W, seed=26))
    assert torch.equal(rows.measurement_groups(y[:1])[0, 0], torch.arange(H)[:, None].expand(H, W))
    assert torch.equal(op.acquired(y), lines.expand_as(y) > 0)
    # measurement splitting holds out a location in every coil at once
    from selfinv.losses.splitting import split_masks

    keep = split_masks(op.acquired(y).expand(y.shape), 0.6, groups=groups, generator=gen(27))
    assert torch.equal(keep, keep[:, :1].expand_as(keep)) and 0 < float(keep[sampled].float().mean()) < 1


def test_subsample_keeps_the_coils_and_multiplies_the_masks():
    mask, maps = masks(2, seed=27)["variable_density"], crandn(2, COILS, H, W, seed=28)
    op = MultiCoilMRI(mask, maps)
    split = (torch.rand(2, COILS, H, W, generator=gen(29)) > 0.5).float()  # an entry-wise split: per coil
    sub = op.subsample(split)
    assert isinstance(sub, MultiCoilMRI) and torch.equal(sub.coil_maps, maps) and torch.equal(sub.mask, mask * split)
    x = crandn(2, 1, H, W, seed=30)
    torch.testing.assert_close(sub.A(x), split * op.A(x), rtol=0, atol=0)


def test_acceleration_and_no_learning():
    mask = torch.zeros(2, 1, H, W)
    mask[0, ..., ::2] = 1
    mask[1, ..., ::5] = 1
    op = MultiCoilMRI(mask, crandn(1, COILS, H, W, seed=31))
    torch.testing.assert_close(op.acceleration, torch.tensor([2.0, 5.0]))
    y = op.A(crandn(2, 1, H, W, seed=32))
    assert torch.equal(op.no_learning(y), op.A_adjoint(y))  # the zero-filled coil combination


def test_bad_inputs_are_one_line_errors():
    maps, mask = crandn(1, COILS, H, W, seed=33), torch.ones(H, W)
    op = MultiCoilMRI(mask, maps)
    bad = {
        "real x": lambda: op.A(torch.rand(1, 1, H, W)),
        "real y": lambda: op.A_adjoint(torch.rand(1, COILS, H, W)),
        "x with 2 channels": lambda: op.A(crandn(1, 2, H, W)),
        "x of another size": lambda: op.A(crandn(1, 1, H, W + 1)),
        "y with the wrong coil count": lambda: op.A_adjoint(crandn(1, COILS + 1, H, W)),
        "y of another size": lambda: op.A_adjoint(crandn(1, COILS, H - 1, W)),
        "mask of the wrong size": lambda: MultiCoilMRI(torch.ones(H, W + 2), maps),
        "mask with 2 channels for 4 coils": lambda: MultiCoilMRI(torch.ones(1, 2, H, W), maps),
        "mask and maps for other batches": lambda: MultiCoilMRI(torch.ones(2, 1, H, W), crandn(3, COILS, H, W)),
        "real maps": lambda: MultiCoilMRI(mask, maps.real),
        "3-D maps": lambda: MultiCoilMRI(mask, maps[0]),
        "NaN maps": lambda: MultiCoilMRI(mask, torch.where(maps.abs() > 1, maps, torch.nan + 0j)),
        "NaN mask": lambda: MultiCoilMRI(torch.full((H, W), float("nan")), maps),
        "maps named, not given": lambda: MultiCoilMRI(mask, "espirit"),
    }
    for what, call in bad.items():
        with pytest.raises(ValueError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and text.startswith("MultiCoilMRI"), (what, text)
    with pytest.raises(ValueError, match="espirit_maps"):
        MultiCoilMRI(mask, "espirit")
