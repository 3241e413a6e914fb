"""reconstruct (shape, dtype and units kept; never overwrites; tiles) and evaluate (metrics beside the baseline)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfinv.data import SimulatedDataset, embedded_images, read_image, write_image
from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from tests.cli.common import assert_one_line_error, run


def noisy(shape=(40, 36), seed=0) -> np.ndarray:
    x = embedded_images(names=["camera"])[0][:, 100 : 100 + shape[0], 200 : 200 + shape[1]]
    return np.clip(x + 0.1 * np.random.default_rng(seed).standard_normal(x.shape), 0, 1).astype(np.float32)


@pytest.fixture
def inputs(tmp_path):
    y = noisy()
    write_image(tmp_path / "a.png", np.rint(y * 255).astype(np.uint8))
    write_image(tmp_path / "b.tif", y)
    return tmp_path / "a.png", tmp_path / "b.tif"


def test_reconstruct_keeps_shape_dtype_and_never_overwrites(trained, inputs, tmp_path):
    _, run_dir = trained
    png, tif = inputs
    out = tmp_path / "out"
    r = run("reconstruct", run_dir / "best.pt", png, tif, "-o", out, "--no-progress")
    assert r.exit_code == 0, r.stderr
    for src, unit in ((png, 255.0), (tif, 1.0)):
        a, ia = read_image(src, return_info=True)
        b, ib = read_image(out / src.name, return_info=True)
        assert b.shape == a.shape and ib.dtype == ia.dtype
        assert not np.array_equal(a, b)
        assert abs(b.mean() - a.mean()) < 0.1 * unit  # the input's units (8-bit values, floats in [0, 1])
    before = (out / png.name).read_bytes()
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", out), "already exists")
    assert (out / png.name).read_bytes() == before
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", png.parent), "is an input")


def test_reconstruct_tiles_large_images_like_the_whole_image(trained, inputs, tmp_path):
    _, run_dir = trained
    _, tif = inputs
    assert run("reconstruct", run_dir / "best.pt", tif, "-o", tmp_path / "whole", "--tile", "0").exit_code == 0
    r = run("reconstruct", run_dir / "best.pt", tif, "-o", tmp_path / "tiled", "--tile", "16", "--overlap", "8")
    assert r.exit_code == 0, r.stderr
    whole, tiled = read_image(tmp_path / "whole" / tif.name), read_image(tmp_path / "tiled" / tif.name)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)  # a 2-layer DnCNN: receptive field 2 <= overlap / 2


def test_evaluate_config_and_measurement_sets(trained, tmp_path):
    cfg, run_dir = trained
    r = run("evaluate", run_dir / "best.pt", cfg)
    assert r.exit_code == 0, r.stderr
    assert "no learning" in r.stdout and "PSNR" in r.stdout and "data range 1" in r.stdout
    r = run("evaluate", run_dir / "best.pt", cfg, "--json", "-o", tmp_path / "ev.json")
    res = json.loads(r.stdout)
    assert res["n_images"] == 2 and res["psnr"] > 0 and res["ssim"] is not None and res["baseline"]["psnr"] > 0
    assert json.loads((tmp_path / "ev.json").read_text()) == res
    ds = SimulatedDataset(embedded_images(names=["moon", "coins"]), Denoising(), noise=Gaussian(0.1), patch_size=24,
                          patches_per_image=2)
    ds.save(tmp_path / "m.npz")
    ds.save(tmp_path / "m.h5", include_x=False)
    res = json.loads(run("evaluate", run_dir / "best.pt", tmp_path / "m.npz", "--json").stdout)
    assert res["n_images"] == 4 and res["psnr"] is not None and len(res["per_image"]) == 4
    r = run("evaluate", run_dir / "best.pt", tmp_path / "m.h5")
    assert r.exit_code == 0 and "no ground truth" in r.stdout and "loss on the data" in r.stdout


def test_reconstruct_measurement_set(trained, tmp_path):
    _, run_dir = trained
    ds = SimulatedDataset(embedded_images(names=["moon"]), Denoising(), noise=Gaussian(0.1), patch_size=24, patches_per_image=3)
    ds.save(tmp_path / "m.npz")
    r = run("reconstruct", run_dir / "best.pt", tmp_path / "m.npz", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    x = np.load(tmp_path / "out" / "m.npy")
    assert x.shape == (3, 1, 24, 24) and x.dtype == np.float32


def test_reconstruct_inpainting_needs_the_mask_of_the_measurement(tmp_path):
    from tests.cli.common import TINY

    cfg = tmp_path / "inp.yaml"
    assert run("config", "init", "--task", "inpainting", "-o", cfg).exit_code == 0
    args = ["train", cfg, "--run-dir", tmp_path / "run", "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    assert run(*args).exit_code == 0
    x = noisy((32, 32))
    mask = (np.random.default_rng(1).random((1, 32, 32)) < 0.5).astype(np.float32)
    np.save(tmp_path / "y.npy", x * mask)
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "mask_small.npy", mask[:, :16, :16])
    ckpt = tmp_path / "run" / "last.pt"
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o1"), "--mask")
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o2", "--mask",
                              tmp_path / "mask_small.npy"), "mask")
    r = run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o3", "--mask", tmp_path / "mask.npy")
    assert r.exit_code == 0, r.stderr
    assert np.load(tmp_path / "o3" / "y.npy").shape == (1, 32, 32)
    # tiled: the mask travels with the measurement through the tiles
    r = run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o4", "--mask", tmp_path / "mask.npy", "--tile", "16")
    assert r.exit_code == 0, r.stderr
