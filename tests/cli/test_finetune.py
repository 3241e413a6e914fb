"""``selfinv finetune``, and the shipped pretrained name in ``info``, ``evaluate`` and ``reconstruct``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.cli.common import assert_one_line_error, run, write_yaml

pytestmark = pytest.mark.usefixtures("one_thread")


def _inpainting(**data) -> dict:
    return {
        "data": {"images": ["brick", "coffee"], "patch_size": 32, "patches_per_image": 1, "test_images": ["camera"],
                 "test_size": 32, **data},
        "physics": {"name": "inpainting", "sampler": {"name": "bernoulli_mask", "p": 0.5}},
        "noise": {"name": "gaussian", "sigma": 0.05},
        "training": {"batch_size": 2},
    }


def test_info_lists_the_shipped_networks():
    r = run("info")
    assert r.exit_code == 0
    assert "pretrained: ram-small (" in r.stdout


def test_finetune_on_one_measurement_then_evaluate_the_result(tmp_path):
    cfg = write_yaml(tmp_path / "inp.yaml", _inpainting())
    r = run("finetune", "ram-small", cfg, "--n", "1", "--steps", "2", "--run-dir", tmp_path / "ft")
    assert r.exit_code == 0, r.stderr
    assert "finetuning ram-small: loss ei (consistency sure, weight 0.1), Adam lr 0.0001, 2 steps, N = 1" in r.stderr
    assert "run: " in r.stdout and "(2 steps," in r.stdout and "best.pt" in r.stdout
    saved = torch.load(tmp_path / "ft" / "last.pt", weights_only=True)
    assert saved["config"]["model"]["pretrained"] == "ram-small" and saved["config"]["model"]["backbone"]["name"] == "ram"
    r = run("evaluate", tmp_path / "ft" / "best.pt", cfg)
    assert r.exit_code == 0, r.stderr
    r = run("finetune", "ram-small", cfg, "--steps", "1", "--run-dir", tmp_path / "ft")
    assert_one_line_error(r, "the run folder exists")


def test_zero_shot_evaluate_and_reconstruct_with_the_shipped_name(tmp_path):
    cfg = write_yaml(tmp_path / "inp.yaml", _inpainting())
    r = run("evaluate", "ram-small", cfg)
    assert r.exit_code == 0, r.stderr
    assert "no learning" in r.stdout
    r = run("evaluate", "ram-small", tmp_path / "set.npz")
    assert_one_line_error(r, "give a YAML config as DATA")
    den = write_yaml(tmp_path / "den.yaml", {"physics": {"name": "denoising"}, "noise": {"name": "gaussian", "sigma": 0.1},
                                             "data": {"images": ["brick"], "patch_size": 32, "normalization": "none"}})
    y = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    np.save(tmp_path / "y.npy", y)
    r = run("reconstruct", "ram-small", tmp_path / "y.npy", "--config", den, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    assert np.load(tmp_path / "out" / "y.npy").shape[-2:] == (40, 40)
    r = run("reconstruct", "ram-small", tmp_path / "y.npy", "-o", tmp_path / "out2")
    assert_one_line_error(r, "has no operator of its own")


def test_bad_models_are_one_line_errors(tmp_path, trained):
    cfg = write_yaml(tmp_path / "inp.yaml", _inpainting(gray=False))
    assert_one_line_error(run("finetune", "ram-smal", cfg, "--steps", "1", "--run-dir", tmp_path / "a"),
                          "neither a shipped pretrained network", "ram-small")
    # a gray denoising checkpoint (DnCNN, 1 channel) on colour images
    _, run_dir = trained
    r = run("finetune", run_dir / "last.pt", cfg, "--steps", "1", "--run-dir", tmp_path / "b")
    assert_one_line_error(r, "do not fit this model", "1 channel(s), these have 3")
    assert not (tmp_path / "b").exists()
