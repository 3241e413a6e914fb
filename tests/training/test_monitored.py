"""Losses with learned state: fit passes them the schedule and logs what they report (UNSURE's η).

``loss.set_lr_factor`` is called before every step with lr / config.lr; ``loss.monitored()`` lands in
steps.csv (every step), the epoch metrics (metrics.csv, the history), and a resumed run writes exactly
what the uninterrupted run writes.
"""

from __future__ import annotations

import csv
import math

import pytest
import torch

from selfinv.data import split
from selfinv.losses import MC, UNSURE, UNSUREPoissonGaussian
from selfinv.training import Callback, Checkpointer, CSVLogger, FitConfig, fit
from tests.training.common import dataset_and_model
from tests.training.test_resume_logs import TIMING, Kill


class Recording(UNSURE):
    """UNSURE that remembers the learning-rate factors it was given."""

    def __init__(self):
        super().__init__()
        self.factors = []

    def set_lr_factor(self, factor):
        self.factors.append(factor)
        super().set_lr_factor(factor)


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _fit(run_dir, loss, config, callbacks=(), resume=None):
    data, model = dataset_and_model()
    train, val = split(data, 0.25, seed=0)  # 12 training samples: 3 steps per epoch at batch size 4
    return fit(model, loss, train, val, config, [CSVLogger(run_dir), Checkpointer(run_dir, every_steps=2), *callbacks],
               resume=resume)


def test_unsure_eta_is_logged_every_step_and_every_epoch(tmp_path):
    config = FitConfig(epochs=2, batch_size=4, device="cpu", seed=1, scheduler="none")
    trace = []

    class Trace(Callback):  # reads η right after each step, as the logger does
        def on_step_end(self, state, loss):
            trace.append(float(state.loss.eta))

    loss = UNSURE()
    state = _fit(tmp_path, loss, config, [Trace()])
    steps = _rows(tmp_path / "steps.csv")
    assert [float(r["eta"]) for r in steps] == trace and len(trace) == state.step == 6
    assert len(set(trace)) == 6  # it moves every step
    epochs = _rows(tmp_path / "metrics.csv")
    assert [float(r["eta"]) for r in epochs] == [trace[2], trace[5]] == [h["eta"] for h in state.history]
    assert trace[-1] == float(loss.eta)


def test_the_loss_follows_the_learning_rate_schedule():
    config = FitConfig(epochs=2, batch_size=4, device="cpu", seed=1, scheduler="cosine", lr=1e-3)
    loss = Recording()
    data, model = dataset_and_model()
    train, _ = split(data, 0.25, seed=0)
    fit(model, loss, train, None, config)
    total = 6
    want = [0.5 * (1 + math.cos(math.pi * t / total)) for t in range(total)]
    assert loss.factors == pytest.approx(want, abs=1e-12)  # the factor of the step about to be taken
    assert loss.lr_factor == pytest.approx(want[-1])


def test_a_sum_reports_its_terms_and_a_resumed_run_logs_exactly_what_the_uninterrupted_run_logs(tmp_path):
    config = FitConfig(epochs=3, batch_size=4, lr=1e-3, device="cpu", seed=1, val_every=2, scheduler="cosine")

    def make():
        return UNSURE() + 0.1 * MC()

    ref = _fit(tmp_path / "ref", make(), config)
    assert {"eta"} <= set(_rows(tmp_path / "ref" / "steps.csv")[0])
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "run", make(), config, [Kill(at_step=5)])
    state = _fit(tmp_path / "run", make(), config, resume=str(tmp_path / "run" / "last.pt"))
    assert state.step == ref.step == 9
    assert (tmp_path / "run" / "steps.csv").read_bytes() == (tmp_path / "ref" / "steps.csv").read_bytes()
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in _rows(tmp_path / "run" / "metrics.csv")]
    want = [{k: v for k, v in r.items() if k not in TIMING} for r in _rows(tmp_path / "ref" / "metrics.csv")]
    assert strip == want and all(r["eta"] for r in want)
    assert [h["eta"] for h in state.history] == [h["eta"] for h in ref.history]


def test_poisson_gaussian_multipliers_are_logged(tmp_path):
    from selfinv.noise import PoissonGaussian

    data, model = dataset_and_model(noise=PoissonGaussian(0.05, 0.05))
    train, _ = split(data, 0.25, seed=0)
    state = fit(model, UNSUREPoissonGaussian(), train, None, FitConfig(epochs=1, batch_size=4, device="cpu"),
                [CSVLogger(tmp_path)])
    row = _rows(tmp_path / "steps.csv")[-1]
    assert float(row["eta_gain"]) > 0 and float(row["eta_sigma2"]) >= 0
    assert {"eta_gain", "eta_sigma2"} <= set(state.history[-1])
    assert torch.isfinite(torch.tensor(float(row["eta_gain"])))
