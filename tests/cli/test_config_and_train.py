"""config init for every task, train, resume, refusing to overwrite, the resolved config and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from selfinv.cli.templates import TASKS
from selfinv.config import load_config, parse_config
from selfinv.training import load_checkpoint
from tests.cli.common import TINY, assert_one_line_error, run, tiny_denoising, write_yaml

COMMANDS = [["train"], ["check"], ["compare"], ["demo"], ["reconstruct"], ["evaluate"], ["info"], ["config"], ["config", "init"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_and_version_on_every_command(cmd):
    r = run(*cmd, "--help")
    assert r.exit_code == 0 and "Usage" in r.stdout
    if cmd != ["config"]:
        r = run(*cmd, "--version")
        assert r.exit_code == 0 and r.stdout.startswith("selfinv ")


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("selfinv ")


@pytest.mark.parametrize("task", TASKS)
def test_config_init_parses_and_trains_for_every_task(task, tmp_path):
    path = tmp_path / f"{task}.yaml"
    r = run("config", "init", "--task", task, "-o", path)
    assert r.exit_code == 0, r.stderr
    text = path.read_text()
    assert text.startswith("# selfinv config") and "physics:" in text
    cfg = load_config(path)  # parses as written
    assert cfg.data.source == "embedded"
    before = path.read_bytes()
    r = run("config", "init", "--task", task, "-o", path)
    assert_one_line_error(r, "already exists")
    assert path.read_bytes() == before
    args = ["train", path, "--run-dir", tmp_path / "run", "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    run_dir = tmp_path / "run"
    for name in ("last.pt", "config.yaml", "metrics.csv", "report.md", "curves.png", "examples.png"):
        assert (run_dir / name).is_file(), name
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["model"]["wrapper"]["name"] != "auto"
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["counters"]["step"] == 2
    assert ckpt["config"] == resolved and set(ckpt["normalization"]) == {"scale", "offset"}
    assert ckpt["data_info"]["complex"] == (task == "mri")


def test_config_init_to_stdout_and_refusals():
    r = run("config", "init", "--task", "ct", "--loss", "sure")
    assert r.exit_code == 0
    cfg = parse_config(yaml.safe_load(r.stdout))
    assert cfg.loss.name == "sure" and cfg.loss.extra[0].name == "ei"  # the nullspace term for a fixed operator
    assert_one_line_error(run("config", "init", "--task", "mri", "--loss", "noise2self"), "denoising")
    assert_one_line_error(run("config", "init", "--task", "xray"), "not one of")
    r = run("config", "init", "--task", "denoising", "--loss", "noise2noise")
    assert yaml.safe_load(r.stdout)["data"]["pairs"] is True  # a loss that needs pairs gets them


def test_train_refuses_existing_run_and_resume_continues_exactly(tmp_path):
    full = write_yaml(tmp_path / "full.yaml", tiny_denoising(tmp_path / "full", max_steps=None, epochs=2))
    half = write_yaml(tmp_path / "half.yaml", tiny_denoising(tmp_path / "half", max_steps=None, epochs=1))
    assert run("train", full).exit_code == 0
    assert run("train", half).exit_code == 0
    last = tmp_path / "half" / "last.pt"
    before = last.read_bytes()
    r = run("train", half, "--set", "training.epochs=2")
    assert_one_line_error(r, "exists", "--resume")
    assert last.read_bytes() == before  # nothing damaged
    r = run("train", half, "--set", "data.patch_size=24", "--resume")
    assert_one_line_error(r, "data.patch_size")
    r = run("train", half, "--set", "training.epochs=2", "--resume")
    assert r.exit_code == 0, r.stderr
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(last)
    assert a["counters"]["step"] == b["counters"]["step"] > 0
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k  # bit-identical to the uninterrupted run
    assert yaml.safe_load((tmp_path / "half" / "config.yaml").read_text())["training"]["epochs"] == 2


def test_resume_needs_a_checkpoint(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising(tmp_path / "nothing"))
    assert_one_line_error(run("train", cfg, "--resume"), "nothing to resume")


def test_set_overrides_and_run_dir_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tiny_denoising()
    del data["training"]["run_dir"]
    write_yaml(tmp_path / "exp.yaml", data)
    r = run("train", "exp.yaml", "--set", "loss.name=r2r", "--set", "loss.n_samples=2", "--set", "training.lr=3e-4")
    assert r.exit_code == 0, r.stderr
    resolved = yaml.safe_load((tmp_path / "runs" / "exp" / "config.yaml").read_text())
    assert resolved["loss"]["name"] == "r2r" and resolved["loss"]["n_samples"] == 2
    assert resolved["training"]["lr"] == pytest.approx(3e-4)
    assert "val_loss" in r.stdout and "report:" in r.stdout


def test_data_keys_for_studies_glob_paths_fixed_draws_true_noise_and_test_limits(tmp_path):
    from selfinv.config import ConfigError, parse_config
    from selfinv.engine.data import build_data, build_test_set

    for subject in ("a", "b", "c"):
        (tmp_path / subject).mkdir()
        np.save(tmp_path / subject / "img.npy", np.random.default_rng(len(subject)).random((16, 16), dtype=np.float32))
    base = tiny_denoising()
    base["data"] = {"source": "images", "path": f"{tmp_path}/*/*.npy", "test_path": f"{tmp_path}/*/*.npy",
                    "max_test_images": 2, "patch_size": 16, "patches_per_image": 1, "test_size": 16, "val_fraction": 0.34,
                    "true_noise": {"name": "gaussian", "sigma": 0.3}}
    base["physics"] = {"name": "inpainting", "mask": {"sampler": "bernoulli_mask", "img_size": 16, "p": 0.5, "seed": 7}}
    cfg = parse_config(base)
    data = build_data(cfg)
    ds, op = data.dataset, data.physics
    test = build_test_set(cfg)
    assert ds.names == ["a/img.npy@0,0", "b/img.npy@0,0", "c/img.npy@0,0"] and len(test) == 2
    mask = op.mask
    again = build_data(cfg).physics.mask
    assert torch.equal(mask, again) and 0.3 < float(mask.mean()) < 0.7  # one fixed, seeded draw for every image
    assert torch.equal(ds.y[:, :, mask[0, 0] == 0], torch.zeros_like(ds.y[:, :, mask[0, 0] == 0]))
    r = (ds.y - ds.x)[:, :, mask[0, 0] > 0]
    assert float(r.std()) > 0.2  # simulated with the true sigma 0.3 ...
    assert float(ds.make_physics({}).noise.sigma) == 0.1  # ... the losses assume 0.1
    with pytest.raises(ConfigError, match="needs noise"):
        build_data(parse_config({**base, "noise": None}))
    bad = {**base, "physics": {"name": "inpainting", "mask": {"sampler": "nope", "img_size": 16}}}
    with pytest.raises(ConfigError, match="not one of"):
        build_data(parse_config(bad))
