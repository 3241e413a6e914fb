"""Resume bookkeeping (the CSV logs end as the uninterrupted run writes them), partial epochs, devices,
the max_steps and pickle refusals."""

from __future__ import annotations

import csv
import importlib
import os

import pytest
import torch

from selfinv.data import split
from selfinv.losses import SURE
from selfinv.training import Callback, Checkpointer, CSVLogger, FitConfig, Progress, fit, load_checkpoint, pick_device
from tests.training.common import dataset_and_model

fit_module = importlib.import_module("selfinv.training.fit")  # the module (the package exports the function)

TIMING = ("epoch_seconds", "step_seconds_median")


class Kill(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, state, loss):
        if state.step == self.at_step:
            raise KeyboardInterrupt


def _run(run_dir, config, callbacks=(), resume=None):
    data, model = dataset_and_model()
    train, val = split(data, 0.25, seed=0)  # 12 training samples: 3 steps per epoch at batch size 4
    return fit(model, SURE(), train, val, config, [CSVLogger(run_dir), Checkpointer(run_dir, every_steps=2), *callbacks],
               resume=resume)


def _rows(path):
    with path.open(newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def test_a_resumed_run_logs_exactly_what_the_uninterrupted_run_logs(tmp_path):
    # validation every 2nd epoch: the metrics header widens at epoch 2 (and the rows stay aligned)
    config = FitConfig(epochs=3, batch_size=4, lr=1e-3, device="cpu", seed=1, val_every=2, scheduler="none")
    ref = _run(tmp_path / "ref", config)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "run", config, [Kill(at_step=5)])  # steps 1-3: epoch 1, 4-6: epoch 2; killed mid-epoch
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["counters"]["step"] == 4 and ckpt["counters"]["batch_in_epoch"] == 1 and len(ckpt["epoch_losses"]) == 1
    assert len(_rows(tmp_path / "run" / "steps.csv")) == 5  # step 5 was logged before the kill
    state = _run(tmp_path / "run", config, resume=str(tmp_path / "run" / "last.pt"))
    assert state.step == ref.step == 9
    assert (tmp_path / "run" / "steps.csv").read_bytes() == (tmp_path / "ref" / "steps.csv").read_bytes()
    got, want = _rows(tmp_path / "run" / "metrics.csv"), _rows(tmp_path / "ref" / "metrics.csv")
    assert got == want  # same rows, losses equal as floats (as written), the resumed epoch's train_loss included
    assert [r["epoch"] for r in want] == ["1", "2", "3"] and want[0]["val_loss"] == "" and want[1]["val_loss"] != ""
    assert [h["train_loss"] for h in state.history] == [h["train_loss"] for h in ref.history]


def test_a_partial_epoch_is_labelled_as_the_epoch_it_is_and_resumes(tmp_path, capsys):
    config = FitConfig(epochs=3, batch_size=4, device="cpu", seed=1, max_steps=4, scheduler="none")
    data, model = dataset_and_model()
    train, val = split(data, 0.25, seed=0)
    state = fit(model, SURE(), train, val, config, [CSVLogger(tmp_path), Checkpointer(tmp_path), Progress(4, disable=False)])
    assert [(h["epoch"], h["step"]) for h in state.history] == [(1, 3), (2, 4)]  # not (1, 3), (1, 4)
    out = capsys.readouterr()
    printed = [line.split(":")[0] for line in (out.out + out.err).splitlines() if line.startswith("epoch ")]
    assert printed == ["epoch 1", "epoch 2 (partial)"], printed
    assert [r["epoch"] for r in _rows(tmp_path / "metrics.csv")] == ["1", "2"]
    # a larger budget continues the partial epoch where it stopped
    more = FitConfig(epochs=3, batch_size=4, device="cpu", seed=1, scheduler="none")
    data, model = dataset_and_model()
    train, val = split(data, 0.25, seed=0)
    state = fit(model, SURE(), train, val, more, [CSVLogger(tmp_path)], resume=str(tmp_path / "last.pt"))
    assert state.step == 9 and state.epoch == 3
    assert [(h["epoch"], h["step"]) for h in state.history] == [(1, 3), (2, 4), (2, 6), (3, 9)]


def test_max_steps_below_one_is_refused():
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        FitConfig(max_steps=0)


def test_devices_this_machine_lacks_are_one_line_in_our_words(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ValueError) as e:
        pick_device("cuda", "--device")
    assert str(e.value) == (f"--device cuda: CUDA is not available on this machine (torch {torch.__version__}, a CPU build); "
                            "use --device cpu")
    with pytest.raises(ValueError, match=r"training.device 'cuda:1': CUDA is not available"):
        pick_device("cuda:1", "training.device")
    with pytest.raises(ValueError, match="not a device name"):
        pick_device("gpu")
    monkeypatch.setattr(fit_module, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"this machine has 1 CUDA device \(cuda:0\)"):
        pick_device("cuda:2")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):  # fit checks before it moves anything
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        data, model = dataset_and_model()
        fit(model, SURE(), data, None, FitConfig(epochs=1, device="cuda"))


def test_a_pickle_payload_is_refused_in_one_short_line(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"format": "selfinv-checkpoint-1", "model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError) as e:
        load_checkpoint(tmp_path / "evil.pt")
    line = str(e.value)
    assert "\n" not in line and len(line) < 250 + len(str(tmp_path)), line
    assert line.startswith(f"{tmp_path / 'evil.pt'}: refused: not a weights-only checkpoint") and "system" in line
    assert "Weights only load failed" not in line and "https://" not in line
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # a whole pickled module
    with pytest.raises(ValueError, match=r"refused: .*it pickles torch.nn.modules.linear.Linear"):
        load_checkpoint(tmp_path / "module.pt")
