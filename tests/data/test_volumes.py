"""Volumes as measurements of 3-D networks: reading stacks whole, 3-D random patches, and a tiny end-to-end run
(train on random 3-D crops of the real cryo-ET tomogram, then reconstruct it in 3-D tiles)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from selfinv.data import RandomPatches, random_positions, write_image
from selfinv.data.volumes import load_volumes

pytestmark = pytest.mark.usefixtures("one_thread")

_DATA = os.environ.get("SELFINV_DATA") or ("/work/shared/data" if Path("/work/shared/data").is_dir() else None)
TOMO = Path(_DATA, "microscopy_bundled", "tomo.tif") if _DATA else None


def test_stacks_are_read_whole_and_cut_into_3d_patches(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.tif", "b.tif"):
        write_image(tmp_path / name, rng.random((6, 1, 10, 12)).astype(np.float32))
    ds = load_volumes(tmp_path, normalization="none")
    assert tuple(ds.y.shape) == (2, 1, 6, 10, 12) and ds.names == ["a.tif", "b.tif"]
    patches = RandomPatches(ds, (4, 5, 6), patches_per_item=3, seed=0)
    assert len(patches) == 6
    s = patches[4]
    f, t, l = patches.positions[4].tolist()
    assert tuple(s.y.shape) == (1, 4, 5, 6)
    assert torch.equal(s.y, ds.y[1, :, f : f + 4, t : t + 5, l : l + 6])
    first = patches.positions.clone()
    patches.set_epoch(1)
    assert not torch.equal(first, patches.positions)  # new crops every epoch
    pos = random_positions((6, 10, 12), (4, 5, 6), 50, torch.Generator().manual_seed(0))
    assert pos.shape == (50, 3) and bool((pos >= 0).all()) and bool((pos <= torch.tensor([2, 5, 6])).all())


def test_an_image_is_not_a_volume(tmp_path):
    write_image(tmp_path / "one.tif", np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="needs volumes") as e:
        load_volumes(tmp_path / "one.tif")
    assert "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.skipif(TOMO is None or not TOMO.is_file(), reason="the shared data folder (SELFINV_DATA) is missing")
def test_train_unet3d_on_tomogram_crops_and_reconstruct_in_3d_tiles(tmp_path):
    from selfinv.config import parse_config
    from selfinv.engine import build_experiment, reconstruct_files, train_experiment
    from selfinv.engine.reconstruct import plan_outputs

    cfg = parse_config({
        "data": {"source": "measurements", "path": str(TOMO), "patch_size": 16, "patch_depth": 8, "patches_per_image": 4},
        "noise": {"name": "unknown"},
        "loss": {"name": "noise2void", "ratio": 0.02},
        "model": {"backbone": {"name": "unet3d", "depth": 1, "width": 2}},
        "training": {"epochs": 1, "batch_size": 2, "progress": False},
    })
    exp = build_experiment(cfg)
    assert exp.img_shape == (1, 101, 135, 135) and exp.cfg.data.patch_depth == 8
    assert tuple(exp.train[0].y.shape) == (1, 8, 16, 16)
    train_experiment(exp, tmp_path / "run", progress=False, log=lambda line: None)
    ckpt = tmp_path / "run" / "best.pt"
    out = tmp_path / "out"
    reconstruct_files(ckpt, plan_outputs([TOMO], out), out, tile=64, overlap=8, log=lambda line: None)
    import tifffile

    x = tifffile.imread(out / "tomo.tif")
    assert x.shape == (101, 135, 135) and x.dtype == np.float32 and np.isfinite(x).all()


def test_a_3d_network_refuses_images_as_a_config_error():
    from selfinv.config import ConfigError, parse_config
    from selfinv.engine import build_experiment

    cfg = parse_config({"data": {"source": "embedded"}, "model": {"backbone": {"name": "unet3d", "depth": 1}}})
    with pytest.raises(ConfigError, match="3-D network"):
        build_experiment(cfg)
