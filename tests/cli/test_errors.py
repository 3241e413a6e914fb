"""Bad input: one line on stderr, exit code != 0, no traceback unless --debug, nothing already written damaged."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from selfinv.data import write_image
from selfinv.training import load_checkpoint, save_checkpoint
from tests.cli.common import assert_one_line_error, run, tiny_denoising, write_yaml


@pytest.fixture
def cfg(tmp_path):
    return write_yaml(tmp_path / "c.yaml", tiny_denoising(tmp_path / "run"))


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (["loss.nmae=1"], ["unknown key 'loss.nmae'", "allowed: name, weight, extra", "did you mean 'name'"]),
        (["loss.name=sur"], ["loss.name = 'sur' is not one of supervised, mc", "did you mean 'sure'"]),
        (["datta.x=1"], ["unknown key 'datta'"]),
        (["physics.sampler={name: mri_mask, acceleraton: 4}"], ["unknown key 'physics.sampler.acceleraton'"]),
        (["training.scheduler=cos"], ["training.scheduler = 'cos' is not one of cosine, step, none"]),
        (["training.lr=fast"], ["training.lr = 'fast'"]),
        (["noise.sigma=-0.1"], ["noise", "sigma must be >= 0"]),
        (["noise={name: poisson}"], ["missing key 'noise.gain'"]),
        (["model.backbone.dept=3"], ["unknown key 'model.backbone.dept'", "did you mean 'depth'"]),
        (["loss={name: ei, transform: rotat}"], ["loss.transform.name = 'rotat'", "did you mean 'rotate'"]),
        (["data.val_holdout=0"], ["data.val_holdout", "greater than 0"]),
        (["data.images=[nope, brick]"], ["unknown image"]),
        (["training"], ["expected key=value"]),
        (["loss.name=blind_spot"], ["needs model.backbone.name = blindspot"]),
    ],
)
def test_config_errors_are_one_line(cfg, overrides, fragments):
    args = ["train", cfg]
    for o in overrides:
        args += ["--set", o]
    line = assert_one_line_error(run(*args), *fragments)
    assert len(line) < 400


def test_missing_and_corrupt_config(tmp_path):
    assert_one_line_error(run("train", tmp_path / "missing.yaml"), "no such config file")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n  loss: 1\n")
    assert_one_line_error(run("train", bad), "invalid YAML", "line")
    bad.write_text("- just\n- a list\n")
    assert_one_line_error(run("check", bad), "mapping")


def test_images_of_mixed_sizes_nan_and_corrupt_files(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_image(folder / "a.png", np.zeros((20, 20), np.uint8))
    write_image(folder / "b.png", np.zeros((24, 20), np.uint8))
    data = tiny_denoising(tmp_path / "run")
    data["data"] = {"source": "images", "path": str(folder), "patch_size": None}
    assert_one_line_error(run("train", write_yaml(tmp_path / "c.yaml", data)), "different sizes", "patch_size")
    bad = np.ones((1, 20, 20), np.float32)
    bad[0, 3, 4] = np.nan
    np.save(folder / "c.npy", bad)
    data["data"]["patch_size"] = 16
    assert_one_line_error(run("train", write_yaml(tmp_path / "c.yaml", data)), "c.npy", "NaN")
    (folder / "c.npy").unlink()
    (folder / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    assert_one_line_error(run("train", write_yaml(tmp_path / "c.yaml", data)), "d.png", "cannot read")
    assert not (tmp_path / "run").exists()  # nothing was started


def test_reconstruct_bad_inputs(trained, tmp_path):
    _, run_dir = trained
    ckpt = run_dir / "best.pt"
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "nope.png", "-o", tmp_path / "o"), "nope.png")
    corrupt = tmp_path / "c.tif"
    corrupt.write_bytes(b"II*\x00garbage")
    assert_one_line_error(run("reconstruct", ckpt, corrupt, "-o", tmp_path / "o"), "c.tif", "cannot read")
    nan = np.zeros((1, 20, 20), np.float32)
    nan[0, 1, 1] = np.inf
    np.save(tmp_path / "inf.npy", nan)
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "inf.npy", "-o", tmp_path / "o"), "Inf")
    np.save(tmp_path / "rgb.npy", np.zeros((3, 20, 20), np.float32))  # the model takes 1 channel
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "rgb.npy", "-o", tmp_path / "o"), "channels")
    assert not any((tmp_path / "o").glob("*"))


def test_operator_that_does_not_fit_the_data(tmp_path):
    data = tiny_denoising(tmp_path / "run")
    data["physics"] = {"name": "demosaicing"}  # needs RGB images; the config asks for gray ones
    assert_one_line_error(run("train", write_yaml(tmp_path / "c.yaml", data)), "Demosaicing", "(B, 3, H, W)")
    data = tiny_denoising(tmp_path / "run")
    data["physics"] = {"name": "mri", "sampler": {"name": "bernoulli_mask", "p": 0.5}}
    assert_one_line_error(run("train", write_yaml(tmp_path / "c.yaml", data)), "draws Inpainting operators, not mri")
    # a real-valued measurement set (with its masks) for MRI
    mask = np.ones((4, 1, 16, 16), np.float32)
    np.savez(tmp_path / "real.npz", y=np.random.default_rng(0).random((4, 1, 16, 16)).astype(np.float32), mask=mask)
    data = tiny_denoising(tmp_path / "run")
    data["data"] = {"source": "measurements", "path": str(tmp_path / "real.npz"), "patch_size": None}
    data["physics"] = {"name": "mri"}
    assert_one_line_error(run("train", write_yaml(tmp_path / "m.yaml", data)), "real.npz", "must be complex")


def test_checkpoint_from_another_model(trained, tmp_path):
    cfg, run_dir = trained
    ckpt = load_checkpoint(run_dir / "best.pt")
    ckpt["config"]["model"]["backbone"]["width"] = 8
    save_checkpoint(tmp_path / "other.pt", {k: v for k, v in ckpt.items() if k != "format"})
    np.save(tmp_path / "y.npy", np.zeros((1, 20, 20), np.float32))
    assert_one_line_error(run("reconstruct", tmp_path / "other.pt", tmp_path / "y.npy", "-o", tmp_path / "o"), "other.pt", "do not fit")
    assert_one_line_error(run("evaluate", tmp_path / "other.pt", cfg), "do not fit")
    torch.save({"weights": torch.ones(3)}, tmp_path / "plain.pt")
    assert_one_line_error(run("evaluate", tmp_path / "plain.pt", cfg), "not a selfinv checkpoint")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert_one_line_error(run("evaluate", tmp_path / "junk.pt", cfg), "not a readable checkpoint")
    save_checkpoint(tmp_path / "bare.pt", {"model": ckpt["model"]})
    assert_one_line_error(run("evaluate", tmp_path / "bare.pt", cfg), "without its run configuration")


def test_debug_shows_the_traceback_and_default_does_not(tmp_path):
    cmd = [sys.executable, "-c", "from selfinv.cli import main; main()"]
    r = subprocess.run([*cmd, "train", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.yaml'}: no such config file"]
    r = subprocess.run([*cmd, "--debug", "train", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr and "ConfigError" in r.stderr


@pytest.mark.parametrize("cmd", [["compare", "--losses", "sure"], ["demo", "--quick"]], ids=lambda c: c[0])
def test_a_device_this_machine_lacks_is_refused_before_any_folder(tmp_path, monkeypatch, cmd):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising())
    args = [cmd[0], *([cfg] if cmd[0] == "compare" else []), *cmd[1:], "--out", tmp_path / "out", "--device", "cuda"]
    assert_one_line_error(run(*args), "--device cuda: CUDA is not available on this machine", "use --device cpu")
    assert not (tmp_path / "out").exists()
    assert_one_line_error(run(*args[:-1], "gpu"), "--device gpu: not a device name")


def test_torch_device_errors_read_in_our_words():
    from selfinv.cli._errors import error_line

    line = error_line(AssertionError("Torch not compiled with CUDA enabled"))
    assert line == "CUDA is not available on this machine (this torch is a CPU build); use --device cpu"
    assert "no usable NVIDIA driver" in error_line(RuntimeError("Found no NVIDIA driver on your system. Please check ..."))
