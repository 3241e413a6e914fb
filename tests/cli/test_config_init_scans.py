"""`config init --task ct|mri --measurements FILE`: a config that trains on one real scan as is. Synthetic HTC2022
sinograms (.mat) and k-space (BART .cfl, fastMRI .h5), multi- and single-coil, rendered, parsed and trained for a
step; files that are no such scan refused in one line; the real HTC2022 and BART brain files (SELFINV_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import yaml

from selfinv.config import parse_config
from selfinv.data.bart import write_cfl
from tests.cli.common import assert_one_line_error, run

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = os.environ.get("SELFINV_DATA")
HTC = Path(DATA or "/nonexistent") / "ct_htc2022_sinograms" / "alexdenker_examples_30"
BRAIN = Path(DATA or "/nonexistent") / "mri_bart_brain_kspace" / "ksp.cfl"

#: a tiny training budget for any generated config
TINY = ["--set", "training.max_steps=1", "--set", "model.backbone.width=4", "--no-progress"]


#: the angles of a limited-angle scan: 60 over 30 degrees
LIMITED = tuple(np.arange(0.0, 30.0, 0.5))


def htc_file(path: Path, angles=LIMITED, n_det: int = 560) -> Path:
    """A synthetic HTC2022 scan (the layout of selfinv.data.htc2022's docstring, the challenge's geometry):
    CtDataLimited with a sinogram (angles, detectors) of a centred disc and the parameters."""
    angles = np.asarray(angles, dtype=np.float64)
    u = (np.arange(n_det) - (n_det - 1) / 2) / (n_det / 2)
    sino = np.tile(np.sqrt(np.clip(0.5 - u**2, 0, None)), (angles.size, 1))
    parameters = {"angles": angles, "distanceSourceOrigin": 410.66, "distanceSourceDetector": 553.74,
                  "numDetectorsPost": float(n_det), "pixelSizePost": 0.2,
                  "effectivePixelSizePost": 0.2 * 410.66 / 553.74, "distanceUnit": "mm"}
    scipy.io.savemat(path, {"CtDataLimited": {"sinogram": sino, "parameters": parameters}})
    return path


def kspace(coils: int, h: int = 32, w: int = 28, seed: int = 0) -> np.ndarray:
    """Complex k-space (coils, h, w) of a smooth object seen by smooth coils, every other column sampled outside a
    fully sampled 16 x 16 centre (ESPIRiT's calibration region)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    x = (xx**2 + yy**2 < 0.6) * np.exp(1j * xx)
    maps = [np.exp(-((xx - np.cos(a)) ** 2 + (yy - np.sin(a)) ** 2)) for a in np.arange(coils) * 2 * np.pi / coils]
    k = np.stack([np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(m * x), norm="ortho")) for m in maps])
    k = k + 1e-3 * (g.standard_normal(k.shape) + 1j * g.standard_normal(k.shape))
    mask = np.zeros((h, w), bool)
    mask[:, ::2] = True
    mask[h // 2 - 8 : h // 2 + 8, w // 2 - 8 : w // 2 + 8] = True
    return (k * mask).astype(np.complex64)


def render(tmp_path: Path, task: str, measurements: Path, *extra: str) -> tuple[Path, dict]:
    out = tmp_path / f"{task}.yaml"
    r = run("config", "init", "--task", task, "--measurements", measurements, "-o", out, *extra)
    assert r.exit_code == 0, r.stderr
    data = yaml.safe_load(out.read_text())
    parse_config(data)  # the schema accepts it
    return out, data


# ---------------------------------------------------------------------- CT: HTC2022 sinograms
def test_ct_template_writes_the_scans_geometry_and_trains(tmp_path):
    path = htc_file(tmp_path / "scan.mat")
    out, cfg = render(tmp_path, "ct", path)
    text = out.read_text()
    d, p = cfg["data"], cfg["physics"]
    assert d == {"source": "measurements", "path": str(path), "key": "CtDataLimited.sinogram", "axes": "XY",
                 "img_size": 128, "patch_size": None, "val_fraction": 0.0, "val_holdout": 0.2,
                 "normalization": "auto", "data_range": 1.0}
    assert p["name"] == "fanbeam_tomography" and p["angles"] == list(LIMITED)
    assert (p["n_detectors"], p["source_distance"], p["detector_distance"], p["detector_spacing"]) == (560, 410.66, 553.74, 0.2)
    assert p["pixel_size"] == pytest.approx(0.2 / (553.74 / 410.66) * 512 / 128)
    for field in ("parameters.angles", "parameters.numDetectorsPost", "parameters.distanceSourceOrigin",
                  "parameters.distanceSourceDetector", "parameters.pixelSizePost", "grid is 512", "~4x per doubling",
                  "selfinv check THIS.yaml --set data.img_size=16"):
        assert field in text, field
    assert cfg["noise"] is None  # EI with MC consistency reads no noise model
    assert cfg["loss"] == {"name": "ei", "weight": 100.0, "transform": {"name": "rotate", "n": 12}, "consistency": "mc",
                           "extra": []}
    assert "30 degrees covered, a limited-angle scan" in text and "12 copies of the 30-degree arc" in text
    assert cfg["model"] == {"backbone": {"name": "unet", "depth": 2, "width": 16},
                            "wrapper": {"name": "backprojection", "init": "fbp"}}
    assert cfg["training"]["run_dir"] == "runs/scan-ei" and cfg["training"]["batch_size"] == 1
    # it trains as written (on a 16-pixel grid over the same field of view, for speed)
    r = run("train", out, "--set", "data.img_size=16", "--set", f"physics.pixel_size={p['pixel_size'] * 8}",
            "--set", f"training.run_dir={tmp_path / 'run'}", *TINY)
    assert r.exit_code == 0, r.stderr
    assert "training ei on fanbeam_tomography" in r.stderr and (tmp_path / "run" / "last.pt").is_file()
    r = run("reconstruct", tmp_path / "run" / "last.pt", path, "-o", tmp_path / "out", "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert np.load(tmp_path / "out" / "scan.npy").shape == (1, 16, 16)


def test_ct_full_scans_keep_four_rotations_and_other_losses_get_their_noise(tmp_path):
    path = htc_file(tmp_path / "full.mat", angles=np.arange(0.0, 360.0, 2.0))
    out, cfg = render(tmp_path, "ct", path)
    assert cfg["loss"]["transform"] == {"name": "rotate", "n": 4} and "limited-angle" not in out.read_text()
    (tmp_path / "ct.yaml").unlink()
    _, cfg = render(tmp_path, "ct", path, "--loss", "rei")  # needs a noise model: a guessed level
    assert cfg["noise"]["name"] == "gaussian" and cfg["loss"]["consistency"] == "sure"
    (tmp_path / "ct.yaml").unlink()
    _, cfg = render(tmp_path, "ct", path, "--loss", "unsure")  # tolerates unknown noise; sees only the range of A
    assert cfg["noise"] == {"name": "unknown"} and cfg["loss"]["extra"][0]["name"] == "ei"


def test_ct_files_that_are_no_htc_scan_are_one_line_errors(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"sino": np.ones((4, 8))})
    np.save(tmp_path / "sino.npy", np.ones((4, 8)))
    for path, fragments in [
        (tmp_path / "other.mat", ["other.mat: is not an HTC2022 scan", "sinogram and parameters"]),
        (tmp_path / "sino.npy", ["sino.npy: expected an HTC2022 sinogram (.mat"]),
        (tmp_path / "missing.mat", ["missing.mat: no such file", "HTC2022"]),
    ]:
        assert_one_line_error(run("config", "init", "--task", "ct", "--measurements", path), *fragments)
    assert not (tmp_path / "ct.yaml").exists()


# ---------------------------------------------------------------------- MRI: k-space
def test_multicoil_bart_kspace_gets_sense_with_espirit_splitting_and_an_unrolled_network(tmp_path):
    write_cfl(tmp_path / "ksp", kspace(4).transpose(1, 2, 0)[None])  # BART: 1 x H x W x coils
    out, cfg = render(tmp_path, "mri", tmp_path / "ksp.cfl")
    text = out.read_text()
    assert cfg["physics"] == {"name": "multicoil_mri", "coil_maps": "espirit"}
    assert "key" not in cfg["data"] and cfg["data"]["patch_size"] is None
    assert (cfg["data"]["val_fraction"], cfg["data"]["val_holdout"]) == (0.0, 0.2)
    assert cfg["loss"] == {"name": "splitting", "weight": 1.0, "consistency": "none", "extra": []}
    assert cfg["noise"] is None and cfg["model"]["wrapper"]["name"] == "unrolled"
    assert "Multi-coil k-space: one slice of 32 x 28, 4 coils" in text and "(SSDU)" in text
    pytest.importorskip("sigpy")  # ESPIRiT
    r = run("train", out, "--set", f"training.run_dir={tmp_path / 'run'}", "--set", "model.wrapper.iterations=2", *TINY)
    assert r.exit_code == 0, r.stderr
    assert "training splitting on multicoil_mri" in r.stderr and "20% of the acquired entries" in r.stderr


def test_single_coil_kspace_gets_the_mri_operator_with_the_mask_from_its_zeros(tmp_path):
    write_cfl(tmp_path / "sc", kspace(1).transpose(1, 2, 0)[None])
    out, cfg = render(tmp_path, "mri", tmp_path / "sc.hdr")
    assert cfg["physics"] == {"name": "mri"} and "Single-coil k-space" in out.read_text()
    assert cfg["data"]["path"] == str(tmp_path / "sc.hdr")
    out.unlink()
    out, cfg = render(tmp_path, "mri", tmp_path / "sc")  # BART's base name: the .cfl is read
    assert cfg["data"]["path"] == str(tmp_path / "sc.cfl")
    r = run("train", out, "--set", f"training.run_dir={tmp_path / 'run'}", "--set", "model.wrapper.iterations=2", *TINY)
    assert r.exit_code == 0, r.stderr
    assert "training splitting on mri" in r.stderr and "mask is taken from the zeros" in r.stderr


def test_fastmri_files_are_read_as_their_kspace(tmp_path):
    k = np.stack([kspace(3, seed=s) for s in range(3)])  # (slices, coils, H, W)
    with h5py.File(tmp_path / "file1.h5", "w") as f:
        f.create_dataset("kspace", data=k)
        f.create_dataset("reconstruction_rss", data=np.ones((3, 8, 8), np.float32))
    out, cfg = render(tmp_path, "mri", tmp_path / "file1.h5")
    assert cfg["data"]["key"] == "kspace" and cfg["physics"]["name"] == "multicoil_mri"
    assert "3 slices of 32 x 28, 3 coils" in out.read_text() and cfg["training"]["epochs"] == 50


def test_mri_files_that_hold_no_kspace_are_one_line_errors(tmp_path):
    with h5py.File(tmp_path / "img.h5", "w") as f:
        f.create_dataset("image", data=np.ones((8, 8), np.float32))
    np.save(tmp_path / "k.npy", kspace(2))
    for path, fragments in [
        (tmp_path / "img.h5", ["img.h5: no kspace dataset", "BART .cfl/.hdr pair or a fastMRI .h5"]),
        (tmp_path / "k.npy", ["k.npy: expected k-space"]),
        (tmp_path / "nothing.cfl", ["nothing.hdr: is missing"]),
        (tmp_path / "nothing.h5", ["nothing.h5: no such file"]),
    ]:
        assert_one_line_error(run("config", "init", "--task", "mri", "--measurements", path), *fragments)


def test_measurements_for_other_tasks_and_volumes_are_refused():
    assert_one_line_error(run("config", "init", "--task", "inpainting", "--measurements", "x.tif"),
                          "--measurements is for --task denoising", "ct (an HTC2022 .mat sinogram)", "mri (k-space")
    assert_one_line_error(run("config", "init", "--task", "ct", "--measurements", "x.mat", "--volume"),
                          "--volume is for --task denoising")
    assert_one_line_error(run("config", "init", "--task", "ct", "--measurements", "x.mat", "--loss", "noise2void"),
                          "noise2void is defined for denoising")


# ---------------------------------------------------------------------- the real files (SELFINV_DATA)
@pytest.mark.skipif(not HTC.is_dir(), reason="set SELFINV_DATA to the shared data folder to run")
def test_real_htc2022_files_v5_and_v73_render():
    files = sorted(HTC.glob("*.mat"))
    assert any(f.name.endswith("_subsample73.mat") for f in files) and len(files) >= 2
    for f in files:
        r = run("config", "init", "--task", "ct", "--measurements", f)
        assert r.exit_code == 0, r.stderr
        cfg = yaml.safe_load(r.stdout)
        parse_config(cfg)
        assert len(cfg["physics"]["angles"]) == 61 and cfg["physics"]["n_detectors"] == 560
        assert cfg["physics"]["pixel_size"] == pytest.approx(0.1483223173330444 * 4)  # effectivePixelSizePost x 512/128
        assert cfg["loss"]["transform"] == {"name": "rotate", "n": 12}


@pytest.mark.skipif(not (HTC / "tb_subsample_30.mat").is_file(), reason="set SELFINV_DATA to the shared data folder to run")
def test_real_htc2022_scan_trains_as_generated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("config", "init", "--task", "ct", "--measurements", HTC / "tb_subsample_30.mat", "-o", "ct.yaml")
    assert r.exit_code == 0, r.stderr
    r = run("train", "ct.yaml", "--set", "training.max_steps=2", "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "runs" / "tb_subsample_30-ei" / "best.pt").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not BRAIN.is_file(), reason="set SELFINV_DATA to the shared data folder to run")
def test_real_brain_kspace_trains_as_generated(tmp_path, monkeypatch):
    pytest.importorskip("sigpy")
    monkeypatch.chdir(tmp_path)
    r = run("config", "init", "--task", "mri", "--measurements", BRAIN, "-o", "mri.yaml")
    assert r.exit_code == 0, r.stderr
    assert "8 coils, 12.7 % of k-space acquired" in (tmp_path / "mri.yaml").read_text()
    r = run("train", "mri.yaml", "--set", "training.max_steps=2", "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert "training splitting on multicoil_mri" in r.stderr
    assert (tmp_path / "runs" / "ksp-splitting" / "best.pt").is_file()
