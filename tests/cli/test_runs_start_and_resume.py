"""selfinv train: a failed start leaves no dead end, Ctrl-C says how to resume, and a resumed run's logs and
report are those of the uninterrupted run."""

from __future__ import annotations

import csv
import shlex

import pytest
import torch

import selfinv.engine.train as runs
from selfinv.training import Callback, load_checkpoint
from tests.cli.common import assert_one_line_error, run, tiny_denoising, write_yaml

TIMING = ("epoch_seconds", "step_seconds_median")


class Stop(Callback):
    """Raises ``error`` (an exception class) right after step ``at_step``."""

    def __init__(self, at_step: int, error: type[BaseException]) -> None:
        self.at_step, self.error = at_step, error

    def on_step_end(self, state, loss):
        if state.step == self.at_step:
            raise self.error()


@pytest.fixture
def stop_at(monkeypatch):
    """``stop_at(k, error)``: the next runs of train_experiment raise ``error`` after step k."""

    original = runs.default_callbacks

    def install(at_step: int, error: type[BaseException] = KeyboardInterrupt) -> None:
        monkeypatch.setattr(runs, "default_callbacks", lambda *a, **k: [*original(*a, **k), Stop(at_step, error)])

    return install


def _error(r, *fragments: str) -> str:
    """The error line of a run that had started (after its announcement line)."""
    assert r.exit_code != 0 and "Traceback" not in r.stderr, r.stdout
    lines = r.stderr_lines
    assert len(lines) == 2 and lines[0].startswith("training ") and lines[1].startswith("error: "), lines
    for f in fragments:
        assert f in lines[1], lines[1]
    return lines[1]


def _rows(path):
    with path.open(newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


@pytest.mark.parametrize("args, fragment", [
    (["--device", "cuda"], "--device cuda: CUDA is not available on this machine"),
    (["--set", "training.batch_size=-1"], "batch_size"),
    (["--set", "training.max_steps=0"], "max_steps must be >= 1"),
])
def test_errors_known_before_the_start_create_no_folder(tmp_path, monkeypatch, args, fragment):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising(tmp_path / "run"))
    assert_one_line_error(run("train", cfg, *args), fragment)
    assert not (tmp_path / "run").exists()
    r = run("train", cfg)  # a plain rerun just works
    assert r.exit_code == 0, r.stderr


def test_a_run_failing_before_its_first_checkpoint_removes_only_what_it_made(tmp_path, stop_at):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising(tmp_path / "runs" / "run"))
    stop_at(1, RuntimeError)
    _error(run("train", cfg), "RuntimeError")
    assert not (tmp_path / "runs").exists()  # the folder this call created (and its parent) are gone
    (tmp_path / "mine").mkdir()  # a folder the user made: it stays, as it was
    _error(run("train", cfg, "--run-dir", tmp_path / "mine"), "RuntimeError")
    assert (tmp_path / "mine").is_dir() and list((tmp_path / "mine").iterdir()) == []
    stop_at(3, RuntimeError)  # after the first checkpoint (end of epoch 1, step 2): the run is kept for --resume
    _error(run("train", cfg), "RuntimeError")
    assert load_checkpoint(tmp_path / "runs" / "run" / "last.pt")["counters"]["step"] == 2


def test_ctrl_c_says_how_to_resume_and_the_resumed_run_matches_the_uninterrupted_one(tmp_path, stop_at):
    ref = write_yaml(tmp_path / "ref.yaml", tiny_denoising(tmp_path / "ref", max_steps=None, epochs=4, checkpoint_every=3))
    assert run("train", ref).exit_code == 0
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising(tmp_path / "x", max_steps=None, epochs=4, checkpoint_every=3))
    stop_at(4, KeyboardInterrupt)  # 2 steps per epoch: last.pt holds step 3, in the middle of epoch 2
    r = run("train", cfg, "--set", "training.lr=0.001", "--run-dir", tmp_path / "run")
    line = _error(r, "interrupted at step 4", "holds step 3, the last checkpoint", "continue with: selfinv train")
    assert r.exit_code == 130
    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[-1] == "--resume" and "--run-dir" in command and "training.lr=0.001" in command
    stop_at(0, KeyboardInterrupt)  # no more stops
    r = run(*command[1:])
    assert r.exit_code == 0, r.stderr
    done, want = tmp_path / "run", tmp_path / "ref"
    assert (done / "steps.csv").read_bytes() == (want / "steps.csv").read_bytes()  # no replayed steps
    assert _rows(done / "metrics.csv") == _rows(want / "metrics.csv")  # train_loss of the resumed epoch included
    a, b = load_checkpoint(done / "last.pt"), load_checkpoint(want / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_ctrl_c_before_the_first_checkpoint_leaves_nothing(tmp_path, stop_at):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising(tmp_path / "run"))
    stop_at(1, KeyboardInterrupt)
    r = run("train", cfg)
    _error(r, "interrupted at step 1, before the first checkpoint (the run folder was removed)",
                          f"start again with: selfinv train {cfg}")
    assert not (tmp_path / "run").exists()


def test_report_names_the_model_and_shows_test_samples(tmp_path):
    data = tiny_denoising(tmp_path / "run")
    cfg = write_yaml(tmp_path / "c.yaml", data)
    assert run("train", cfg).exit_code == 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "- model: dncnn (no wrapper)," in report and " in none" not in report
    assert "The first 2 test samples" in report  # data.test_images: camera, coins
    assert "val_loss (the sure loss on the validation set)" in report
    data["physics"] = {"name": "inpainting", "mask": {"sampler": "bernoulli_mask", "img_size": 16, "p": 0.5}}
    data["model"]["wrapper"] = {"name": "backprojection", "init": "adjoint"}
    data["data"]["test_size"] = 16
    data["training"]["run_dir"] = str(tmp_path / "inp")
    assert run("train", write_yaml(tmp_path / "i.yaml", data)).exit_code == 0
    assert "- model: dncnn in backprojection (init adjoint)," in (tmp_path / "inp" / "report.md").read_text()
