"""Raw k-space files: BART .cfl/.hdr round trips (Fortran order, odd and trailing dims), fastMRI multi-coil .h5
(layout, slices), the mask from the zeros, multi-coil measurement sets with ESPIRiT or given maps, and the config
path (data.source: measurements, physics multicoil_mri) through training and reconstruction; the real brain slice
with SELFINV_DATA."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from selfinv.config import ConfigError, parse_config
from selfinv.data import MeasurementDataset, read_fastmri, read_image
from selfinv.data.bart import read_cfl, write_cfl
from selfinv.data.kspace import kspace_dataset, read_kspace
from selfinv.physics import MultiCoilMRI
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")
H, W, COILS = 24, 20, 4


def crandn(*shape, seed=0):
    g = np.random.default_rng(seed)
    return (g.standard_normal(shape) + 1j * g.standard_normal(shape)).astype(np.complex64)


# ---------------------------------------------------------------------- BART
def test_cfl_round_trip_in_fortran_order_with_odd_dims(tmp_path):
    a = crandn(3, 5, 7, 2)
    write_cfl(tmp_path / "a", a)
    assert (tmp_path / "a.hdr").read_text().splitlines()[:2] == ["# Dimensions", "3 5 7 2 "]
    raw = np.fromfile(tmp_path / "a.cfl", np.complex64)
    assert np.array_equal(raw, a.ravel(order="F"))  # BART's layout: the first dimension varies fastest
    for name in ("a", "a.cfl", "a.hdr"):
        b = read_cfl(tmp_path / name)
        assert b.dtype == np.complex64 and b.shape == (3, 5, 7, 2) and np.array_equal(b, a)
    # trailing singleton dimensions are dropped, as BART's cfl.readcfl does; a header of 16 dims as BART writes
    (tmp_path / "k.hdr").write_text("# Dimensions\n1 5 3 2 1 1 1 1 1 1 1 1 1 1 1 1 \n# Command\nfmac\n")
    k = crandn(1, 5, 3, 2)
    k.ravel(order="F").tofile(tmp_path / "k.cfl")
    assert np.array_equal(read_cfl(tmp_path / "k.cfl"), k)
    write_cfl(tmp_path / "v", np.arange(4.0).reshape(4, 1, 1))
    assert read_cfl(tmp_path / "v").shape == (4,) and read_cfl(tmp_path / "v").dtype == np.complex64
    # the package's image layout of the same file: (C, H, W) with C the coils
    assert np.array_equal(read_image(tmp_path / "k.cfl"), np.transpose(k[0], (2, 0, 1)))


def test_cfl_errors_are_one_line(tmp_path):
    write_cfl(tmp_path / "a", crandn(4, 3))
    with pytest.raises(ValueError, match="a.hdr: already exists"):
        write_cfl(tmp_path / "a.cfl", crandn(4, 3))
    write_cfl(tmp_path / "a.cfl", crandn(2, 2), overwrite=True)
    assert read_cfl(tmp_path / "a").shape == (2, 2)
    (tmp_path / "t.cfl").write_bytes((tmp_path / "a.cfl").read_bytes()[:-8])
    (tmp_path / "t.hdr").write_text("# Dimensions\n2 2\n")
    (tmp_path / "h.cfl").write_bytes(b"")
    (tmp_path / "h.hdr").write_text("no dimensions here\n")
    nan = crandn(2, 2)
    nan[0, 0] = np.nan
    write_cfl(tmp_path / "n", nan)
    (tmp_path / "lonely.cfl").write_bytes(b"")
    for name, fragment in [("t", "t.cfl: has 24 bytes but"), ("h", "h.hdr: cannot read the BART header"),
                           ("n", "n.cfl: contains 1 NaN"), ("lonely", "lonely.hdr: is missing")]:
        with pytest.raises(ValueError, match=fragment) as err:
            read_cfl(tmp_path / name)
        assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- fastMRI
def fastmri_file(path: Path, n_slices: int = 3) -> tuple[Path, np.ndarray]:
    """A multi-coil fastMRI file: kspace (slices, coils, H, W) complex64 with every other column not sampled outside
    an 10-column centre, reconstruction_rss (slices, 8, 8), mask (W,), attributes."""
    k = crandn(n_slices, COILS, H, W, seed=1)
    cols = np.zeros(W, bool)
    cols[::2] = True
    cols[W // 2 - 5 : W // 2 + 5] = True
    k[..., ~cols] = 0
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=k)
        f.create_dataset("reconstruction_rss", data=np.ones((n_slices, 8, 8), np.float32))
        f.create_dataset("mask", data=cols.astype(np.float32))
        f.attrs["acquisition"] = "CORPD_FBK"
    return path, k


def test_fastmri_layout_and_slices(tmp_path):
    path, k = fastmri_file(tmp_path / "file1.h5")
    full = read_fastmri(path)
    assert full["kspace"].shape == (3, COILS, H, W) and full["kspace"].dtype == np.complex64
    assert np.array_equal(full["kspace"], k) and full["reconstruction"].shape == (3, 1, 8, 8)
    for slices, expect in [(1, [1]), ([0, 2], [0, 2]), (slice(1, 3), [1, 2]), (-1, [2])]:
        part = read_fastmri(path, slices=slices)
        assert np.array_equal(part["kspace"], k[expect]) and part["reconstruction"].shape[0] == len(expect)
    for bad in (3, [2, 0], [1, 1], [True], "0"):
        with pytest.raises(ValueError, match="file1.h5: slices"):
            read_fastmri(path, slices=bad)
    assert torch.equal(read_kspace(path), torch.from_numpy(k)) and read_kspace(path, slices=[2]).shape == (1, COILS, H, W)
    with pytest.raises(ValueError, match="real data"):
        read_kspace(f"{path}:reconstruction_rss")


def test_measurement_set_of_kspace_with_the_mask_of_its_zeros(tmp_path):
    path, k = fastmri_file(tmp_path / "scan.h5")
    maps = torch.from_numpy(crandn(1, COILS, H, W, seed=2))
    ds = kspace_dataset(path, coil_maps=maps, normalization="none")
    assert ds.y.shape == (3, COILS, H, W) and ds.names == ["scan[0]", "scan[1]", "scan[2]"]
    op = ds.make_physics(ds.params) if ds.params else ds.physics_template
    expected = torch.from_numpy((k != 0).any(1, keepdims=True).astype(np.float32))
    assert isinstance(op, MultiCoilMRI) and torch.equal(op.mask.expand(3, -1, -1, -1), expected)
    assert torch.equal(op.mask[0, 0, 0], torch.from_numpy(h5py.File(path)["mask"][()]))  # the file's own mask
    auto = kspace_dataset(path, coil_maps=maps)
    assert auto.normalization.scale > 0 and torch.allclose(auto.y * auto.normalization.scale, ds.y)
    for name in ("set.npz", "set.h5"):  # a saved set keeps its mask and maps (complex parameters)
        auto.save(tmp_path / name)
        back = MeasurementDataset.load(tmp_path / name)
        op_back = back.make_physics(back.params) if back.params else back.physics_template
        assert isinstance(op_back, MultiCoilMRI) and torch.equal(back.y, auto.y)
        assert torch.equal(op_back.coil_maps, maps) and torch.equal(op_back.mask.expand(3, -1, -1, -1), expected)
    given = kspace_dataset(k[:1], mask=torch.ones(H, W), coil_maps=maps[0])  # arrays; a mask and one map set
    assert float(given.physics_template.mask.mean()) == 1.0
    with pytest.raises(ValueError, match="MultiCoilMRI: y has shape"):
        kspace_dataset(k, coil_maps=maps[:, :2])  # maps of 2 coils for 4-coil k-space


# ---------------------------------------------------------------------- ESPIRiT and the config path
HS, WS = 32, 28  # ESPIRiT needs a calibration region with more patches than unknowns: 16 x 16 here


def smooth_kspace() -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """(BART-layout k-space (1, HS, WS, C) of a disc seen by smooth unit-RSS coils, undersampled with a 16 x 16 fully
    sampled centre, its mask (HS, WS), the disc (HS, WS))."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, HS, dtype=torch.float64), torch.linspace(-1, 1, WS, dtype=torch.float64),
                            indexing="ij")
    disc = (xx**2 + yy**2) < 0.7
    x = (disc * torch.exp(1j * xx)).to(torch.complex128)[None, None]
    maps = torch.stack([torch.exp(-((xx - np.cos(a)) ** 2 + (yy - np.sin(a)) ** 2)) * torch.exp(1j * a * yy)
                        for a in np.arange(COILS) * 2 * np.pi / COILS])
    maps = (maps / maps.abs().pow(2).sum(0).sqrt())[None]
    mask = (torch.rand(HS, WS, generator=gen(4)) < 0.4).float()
    mask[HS // 2 - 8 : HS // 2 + 8, WS // 2 - 8 : WS // 2 + 8] = 1
    y = MultiCoilMRI(mask, maps).A(x)[0]  # (C, HS, WS)
    return y.permute(1, 2, 0)[None].numpy().astype(np.complex64), mask, disc


def measurement_config(path, **physics) -> dict:
    return {"data": {"source": "measurements", "path": str(path), "patch_size": None},
            "physics": {"name": "multicoil_mri", "coil_maps": "espirit", **physics},
            "noise": {"name": "gaussian", "sigma": 0.01}, "loss": {"name": "splitting"},
            "model": {"backbone": {"name": "unet", "depth": 2, "width": 4}, "wrapper": {"name": "backprojection"}},
            "training": {"epochs": 1, "batch_size": 1, "max_steps": 1, "scheduler": "none", "device": "cpu"}, "seed": 0}


def test_config_measurements_from_cfl_and_fastmri(tmp_path):
    pytest.importorskip("sigpy")
    from selfinv.engine.measurements import measurement_set

    k, mask, disc = smooth_kspace()
    write_cfl(tmp_path / "ksp", k)
    for path, spec in [(tmp_path / "ksp.cfl", "espirit"), (tmp_path / "ksp.hdr", {"name": "espirit", "calib_size": 12})]:
        cfg = parse_config(measurement_config(path, coil_maps=spec))
        with pytest.warns(UserWarning, match="zeros of the measurements"):
            m = measurement_set(cfg, path)
        assert m.dataset.y.shape == (1, COILS, HS, WS) and m.dataset.y.is_complex() and m.x_shape == (1, HS, WS)
        op = m.physics
        assert isinstance(op, MultiCoilMRI) and torch.equal(op.mask[0, 0], mask)
        rss = op.coil_maps.abs().pow(2).sum(1).sqrt()[0]
        inner = torch.nn.functional.max_pool2d((~disc).double()[None, None], 5, 1, 2)[0, 0] == 0  # off the rim
        assert float((rss[inner] - 1).abs().max()) < 1e-4 and float(rss.max()) < 1 + 1e-5  # unit RSS on the object
    # maps from a file (BART's maps layout: (1, H, W, C)), and a fastMRI file read as k-space, not its reconstruction
    write_cfl(tmp_path / "maps", np.ones((1, HS, WS, COILS), np.complex64) / 2)
    cfg = parse_config(measurement_config(tmp_path / "ksp.cfl", coil_maps=str(tmp_path / "maps.cfl")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op = measurement_set(cfg, tmp_path / "ksp.cfl").physics
    assert torch.equal(op.coil_maps, torch.full((1, COILS, HS, WS), 0.5 + 0j))
    path, _ = fastmri_file(tmp_path / "f.h5", n_slices=2)
    cfg = parse_config(measurement_config(path, coil_maps={"name": "espirit", "kernel_size": 3}))  # a 10 x 10 centre
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = measurement_set(cfg, path)
    assert m.dataset.y.shape == (2, COILS, H, W) and m.physics.coil_maps.shape[0] == 1  # the first slice's operator
    assert m.dataset.params["coil_maps"].shape == (2, COILS, H, W)  # maps per slice


def test_config_errors_for_estimated_maps(tmp_path):
    from selfinv.engine.measurements import config_measurements
    from selfinv.engine.physics_builders import build_physics

    cfg = parse_config({"data": {"source": "embedded"}, "physics": {"name": "multicoil_mri", "coil_maps": "espirit",
                                                                     "mask": [[1.0] * 8] * 8}})
    with pytest.raises(ConfigError, match="physics.coil_maps: 'espirit' estimates it from measured data"):
        build_physics(cfg, (1, 8, 8))
    k, _, _ = smooth_kspace()
    write_cfl(tmp_path / "ksp", k)
    for spec, fragment in [({"name": "sense"}, "physics.coil_maps.name = 'sense' is not one of espirit"),
                           ({"name": "espirit", "calib": 8}, "physics.coil_maps: "),
                           ({"name": "espirit", "calib_size": 30}, "calib_size 30 is larger than the fully sampled")]:
        cfg = parse_config(measurement_config(tmp_path / "ksp.cfl", coil_maps=spec))
        with warnings.catch_warnings(), pytest.raises(ConfigError, match=fragment) as err:
            warnings.simplefilter("ignore")
            config_measurements(cfg, str(tmp_path / "ksp.cfl"), None, "data.path")
        assert "\n" not in str(err.value)


def test_kspace_trains_and_is_reconstructed_from_the_command_line(tmp_path):
    pytest.importorskip("sigpy")
    from tests.cli.common import run, write_yaml

    k, _, _ = smooth_kspace()
    write_cfl(tmp_path / "ksp", k)
    cfg = measurement_config(tmp_path / "ksp.cfl")
    cfg["training"]["run_dir"] = str(tmp_path / "run")
    r = run("train", write_yaml(tmp_path / "c.yaml", cfg), "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert "physics: multicoil_mri" in (tmp_path / "run" / "report.md").read_text()
    assert (tmp_path / "run" / "last.pt").is_file()
    r = run("reconstruct", tmp_path / "run" / "last.pt", tmp_path / "ksp.cfl", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    out = list((tmp_path / "out").iterdir())
    assert len(out) == 1 and np.load(out[0]).shape == (1, HS, WS)


@real
def test_real_brain_slice_as_a_config_measurement_set():
    pytest.importorskip("sigpy")
    from selfinv.engine.measurements import measurement_set

    path = Path(DATA) / "mri_bart_brain_kspace" / "ksp.cfl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = measurement_set(parse_config(measurement_config(path)), path)
    op = m.physics
    assert m.dataset.y.shape == (1, 8, 180, 230) and op.coil_maps.shape == (1, 8, 180, 230)
    assert abs(float(op.mask.mean()) - 0.1266) < 1e-3  # 12.7 % Poisson-disc sampling
    assert m.x_shape == (1, 180, 230) and m.is_complex
