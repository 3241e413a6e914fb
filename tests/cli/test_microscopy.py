"""Raw microscopy TIFFs to denoised TIFFs with the CLI alone: `config init --measurements`, Noise2Noise from file
pairs (a second folder, T-stack frames), bad input in one line, outputs in the input's dtype and axes (tiled like
untiled), the normalisation stored in the checkpoint and undone, and the README workflow on the real W2S frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from selfinv.data import read_image, write_image
from selfinv.engine.checkpoints import restore
from tests.cli.common import assert_one_line_error, run, write_yaml

DATA = os.environ.get("SELFINV_DATA")


def _clean(h=40, w=36) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return 300 + 200 * np.sin(yy / 5.0) * np.cos(xx / 7.0)


def _raw(seed: int, h=40, w=36) -> np.ndarray:
    """A 16-bit raw frame: one field of view, new Poisson-like noise per seed."""
    return np.clip(_clean(h, w) + 20 * np.random.default_rng(seed).standard_normal((h, w)), 0, None).astype(np.uint16)


def _config(root: Path, data: dict, loss: str = "noise2noise", **training) -> Path:
    cfg = {
        "data": {"source": "measurements", "patch_size": 16, "patches_per_image": 2, **data},
        "noise": {"name": "unknown"},
        "loss": {"name": loss},
        "model": {"backbone": {"name": "dncnn", "depth": 2, "width": 4, "batch_norm": False}, "wrapper": {"name": "none"}},
        "training": {"max_steps": 3, "batch_size": 2, "scheduler": "none", "run_dir": str(root / "run"), **training},
    }
    return write_yaml(root / "cfg.yaml", cfg)


@pytest.fixture
def folders(tmp_path):
    """raw/ and raw2/: two raw frames of each of three fields of view (same names)."""
    for sub, offset in (("raw", 0), ("raw2", 100)):
        (tmp_path / sub).mkdir()
        for i in range(3):
            write_image(tmp_path / sub / f"fov{i}.tif", _raw(offset + i))
    return tmp_path


def test_noise2noise_trains_from_a_second_folder_of_frames(folders):
    cfg = _config(folders, {"path": str(folders / "raw"), "pairs_path": str(folders / "raw2")})
    r = run("train", cfg, "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert "training noise2noise" in r.stderr and (folders / "run" / "best.pt").is_file()


def test_noise2noise_trains_from_the_frames_of_a_t_stack(tmp_path):
    tifffile.imwrite(tmp_path / "movie.tif", np.stack([_raw(i) for i in range(6)]), imagej=True, metadata={"axes": "TYX"})
    cfg = _config(tmp_path, {"path": str(tmp_path / "movie.tif"), "axes": "TYX", "pairs": True})
    r = run("train", cfg, "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert "3 training" in r.stderr or "training noise2noise" in r.stderr
    restored = restore(tmp_path / "run" / "best.pt")
    assert restored.cfg.data.axes == "TYX" and restored.cfg.data.pairs
    out = tmp_path / "out"
    r = run("reconstruct", tmp_path / "run" / "best.pt", tmp_path / "movie.tif", "-o", out, "--no-progress")
    assert r.exit_code == 0, r.stderr
    with tifffile.TiffFile(out / "movie.tif") as t:  # the same dtype and axes, ImageJ hyperstack
        assert t.is_imagej and t.series[0].axes == "TYX" and t.series[0].shape == (6, 40, 36)
        assert t.series[0].dtype == np.uint16


def test_bad_microscopy_input_is_one_line(folders, tmp_path):
    tifffile.imwrite(tmp_path / "img.tif", np.zeros((31, 61, 57), np.uint16))
    cfg = _config(tmp_path, {"path": str(tmp_path / "img.tif"), "axes": "YX"}, loss="noise2void")
    assert_one_line_error(run("train", cfg), "img.tif has shape (31, 61, 57) but data.axes is 'YX'")
    cfg = _config(folders, {"path": str(folders / "raw"), "pairs": True})
    assert_one_line_error(run("train", cfg), "data.pairs is true but the measurements have no second frames")
    write_image(folders / "raw2" / "fov3.tif", _raw(3))
    write_image(folders / "raw" / "fov3.tif", _raw(3, 40, 30))
    cfg = _config(folders, {"path": str(folders / "raw"), "pairs_path": str(folders / "raw2")})
    assert_one_line_error(run("train", cfg), "fov3.tif (40, 30) and its pair fov3.tif (40, 36) differ in size")
    assert_one_line_error(run("train", cfg, "--set", "data.axes=TZYX"), "data.axes", "expected distinct letters")


@pytest.fixture(scope="module")
def trained_16bit(tmp_path_factory):
    """A Noise2Void run on 16-bit frames with an explicit normalisation: (root, checkpoint)."""
    root = tmp_path_factory.mktemp("raw16")
    (root / "raw").mkdir()
    for i in range(3):
        write_image(root / "raw" / f"fov{i}.tif", _raw(i))
    cfg = _config(root, {"path": str(root / "raw"), "normalization": {"scale": 1000.0}}, loss="noise2void")
    r = run("train", cfg, "--no-progress")
    assert r.exit_code == 0, r.stderr
    return root, root / "run" / "best.pt"


def test_the_normalisation_is_stored_in_the_checkpoint_and_undone_on_output(trained_16bit, tmp_path):
    root, ckpt = trained_16bit
    restored = restore(ckpt)
    assert restored.normalization.scale == 1000.0 and restored.data_info["normalization_mode"] == "explicit"
    a = read_image(root / "raw" / "fov0.tif")
    r = run("reconstruct", ckpt, root / "raw" / "fov0.tif", "-o", tmp_path / "out", "--no-progress")
    assert r.exit_code == 0, r.stderr
    b, info = read_image(tmp_path / "out" / "fov0.tif", return_info=True)
    assert info.dtype == "uint16" and b.shape == a.shape
    assert abs(b.mean() / a.mean() - 1) < 0.3, (a.mean(), b.mean())  # in the file's units, not the model's
    # an 8-bit file goes through the stored scale too (not / 255): the same values as 16-bit give the same output
    values = np.clip(_clean() / 2, 0, 255)
    write_image(tmp_path / "eight.tif", values.astype(np.uint8))
    write_image(tmp_path / "sixteen.tif", values.astype(np.uint8).astype(np.uint16))
    r = run("reconstruct", ckpt, tmp_path / "eight.tif", tmp_path / "sixteen.tif", "-o", tmp_path / "out2", "--no-progress")
    assert r.exit_code == 0, r.stderr
    out8, out16 = read_image(tmp_path / "out2" / "eight.tif"), read_image(tmp_path / "out2" / "sixteen.tif")
    np.testing.assert_array_equal(out8, np.clip(out16, 0, 255))


def test_reconstruct_keeps_dtype_and_axes_and_tiles_like_the_whole_stack(trained_16bit, tmp_path):
    _, ckpt = trained_16bit
    stack = np.stack([_raw(10 + i, 48, 52) for i in range(3)], axis=-1)  # YXT: frames last
    tifffile.imwrite(tmp_path / "yxt.tif", stack)  # no metadata: the layout comes from --axes
    outs = {}
    for label, extra in (("whole", ["--tile", "0"]), ("tiled", ["--tile", "16", "--overlap", "8"])):
        r = run("reconstruct", ckpt, tmp_path / "yxt.tif", "-o", tmp_path / label, "--axes", "YXT", "--no-progress", *extra)
        assert r.exit_code == 0, r.stderr
        assert "yxt.tif: residual check: residual std" in r.stderr and "lag-1 autocorrelation y" in r.stderr
        with tifffile.TiffFile(tmp_path / label / "yxt.tif") as t:
            assert t.series[0].axes == "YXT" and t.series[0].dtype == np.uint16 and t.series[0].shape == (48, 52, 3)
            outs[label] = t.series[0].asarray().astype(np.int64)
    assert np.abs(outs["tiled"] - outs["whole"]).max() <= 1  # seam-free: equal up to the rounding to integers
    assert not np.array_equal(outs["whole"], stack)
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "yxt.tif", "-o", tmp_path / "bad", "--axes", "YX"),
                          "yxt.tif has shape (48, 52, 3) but --axes is 'YX'")


def test_config_init_with_measurements_writes_a_runnable_config(folders, tmp_path):
    out = tmp_path / "m.yaml"
    r = run("config", "init", "--task", "denoising", "--measurements", folders / "raw", "-o", out)
    assert r.exit_code == 0, r.stderr
    cfg = yaml.safe_load(out.read_text())
    assert cfg["data"]["source"] == "measurements" and cfg["data"]["path"] == str(folders / "raw")
    assert cfg["noise"] == {"name": "unknown"} and cfg["loss"]["name"] == "neighbor2neighbor"
    assert cfg["training"]["run_dir"] == "runs/raw-neighbor2neighbor"
    assert_one_line_error(run("config", "init", "--task", "mri", "--measurements", folders / "raw"),
                          "a folder, not one scan file (folders of raw frames are --task denoising's)")


def test_check_on_raw_frames_of_unknown_noise_prints_the_estimate_and_what_it_enables(folders, tmp_path):
    out = tmp_path / "m.yaml"
    assert run("config", "init", "--task", "denoising", "--measurements", folders / "raw", "-o", out).exit_code == 0
    r = run("check", out, "--set", "data.patch_size=16")
    assert r.exit_code == 0, r.stderr
    assert "✗ sure: needs the noise model" in r.stdout  # as configured: noise unknown
    assert "estimated noise: Gaussian" in r.stdout  # _raw: additive noise of std 20 on 100-500
    enabled = next(line for line in r.stdout.splitlines() if line.startswith("With noise: {name: estimate}"))
    assert "sure" in enabled and "r2r" in enabled and "neighbor2neighbor" not in enabled


def test_config_init_for_volumes_writes_a_3d_config(tmp_path):
    """--volume (or a TIFF whose metadata names a Z axis) gives ZYX axes, 3-D patches and a 3-D U-Net; a stack of
    unnamed slices gets a note pointing at --volume; the 3-D config trains."""
    vol = np.stack([_raw(20 + z, 48, 44) for z in range(12)])
    tifffile.imwrite(tmp_path / "q.tif", vol)  # no metadata: axes QYX
    tifffile.imwrite(tmp_path / "z.tif", vol, imagej=True, metadata={"axes": "ZYX"})
    r = run("config", "init", "--task", "denoising", "--measurements", tmp_path / "q.tif")
    assert r.exit_code == 0 and "unet3d" not in r.stdout and "use --volume" in r.stderr, r.stderr
    for args in ((tmp_path / "q.tif", "--volume"), (tmp_path / "z.tif",)):
        r = run("config", "init", "--task", "denoising", "--measurements", *args)
        cfg = yaml.safe_load(r.stdout)
        assert cfg["data"]["axes"] == "ZYX" and cfg["data"]["patch_depth"] == 32
        assert cfg["model"]["backbone"]["name"] == "unet3d"
    cfg["data"].update(patch_size=16, patch_depth=8)
    cfg["training"].update(max_steps=2, batch_size=2, run_dir=str(tmp_path / "run"))
    r = run("train", write_yaml(tmp_path / "v.yaml", cfg), "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert_one_line_error(run("config", "init", "--task", "denoising", "--volume"), "--volume is for --measurements")


@pytest.mark.slow
@pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")
def test_readme_workflow_on_the_real_w2s_frames(tmp_path, monkeypatch):
    """The README's three commands (plus check) as written, with a 20-step budget: raw 8-bit TIFFs in, 8-bit out."""
    monkeypatch.chdir(tmp_path)
    raw = Path(DATA) / "microscopy_fmd_w2s_real_noise" / "W2S_avg1_noisy"
    r = run("config", "init", "--task", "denoising", "--measurements", raw, "-o", "w2s.yaml")
    assert r.exit_code == 0, r.stderr
    r = run("check", "w2s.yaml")
    assert r.exit_code == 0 and "✓ neighbor2neighbor" in r.stdout, r.stderr
    assert "18 of 18 files have saturated pixels" in r.stderr  # (shown once per process: here, not again by train)
    r = run("train", "w2s.yaml", "--set", "training.max_steps=20", "--no-progress")
    assert r.exit_code == 0, r.stderr
    files = sorted(raw.glob("*.tif"))[:2]
    r = run("reconstruct", "runs/W2S_avg1_noisy-neighbor2neighbor/best.pt", *files, "-o", "denoised", "--no-progress")
    assert r.exit_code == 0, r.stderr
    for f in files:
        with tifffile.TiffFile(tmp_path / "denoised" / f.name) as t:
            assert t.series[0].dtype == np.uint8 and t.series[0].shape == (512, 512) and t.series[0].axes == "YX"
