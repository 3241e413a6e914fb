"""What hangs off the training loop: logging, checkpoints, early stopping, progress.

A callback implements any of ``on_train_start(state)``, ``on_step_end(state, loss)``,
``on_epoch_end(state, metrics)`` and ``on_train_end(state)``. Only the main process (rank 0) writes
files. ``state`` is the loop's :class:`~selfinv.training.fit.TrainState`; a callback may set
``state.stop = True`` to end training after the current epoch.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from selfinv.training.checkpoint import save_checkpoint


class Callback:
    """Base class: every hook does nothing."""

    def on_train_start(self, state) -> None:
        pass

    def on_step_end(self, state, loss: float) -> None:
        pass

    def on_epoch_end(self, state, metrics: dict[str, float]) -> None:
        pass

    def on_train_end(self, state) -> None:
        pass


class CSVLogger(Callback):
    """Appends every epoch's metrics to ``run_dir/metrics.csv`` (and every step's loss to ``steps.csv``)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def _append(self, name: str, row: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def on_step_end(self, state, loss):
        if state.is_main:
            self._append("steps.csv", {"step": state.step, "epoch": state.epoch, "loss": loss})

    def on_epoch_end(self, state, metrics):
        if state.is_main:
            self._append("metrics.csv", {"epoch": state.epoch, "step": state.step, **metrics})


class TensorBoardLogger(Callback):
    """Scalars to TensorBoard when ``tensorboard`` is installed (silently absent otherwise)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def on_step_end(self, state, loss):
        if self.writer is not None and state.is_main:
            self.writer.add_scalar("train/loss", loss, state.step)

    def on_epoch_end(self, state, metrics):
        if self.writer is not None and state.is_main:
            for k, v in metrics.items():
                self.writer.add_scalar(f"epoch/{k}", v, state.step)

    def on_train_end(self, state):
        if self.writer is not None:
            self.writer.close()


class Checkpointer(Callback):
    """``last.pt`` every ``every_steps`` steps and every epoch, ``best.pt`` at the best validation loss."""

    def __init__(self, run_dir: str | Path, every_steps: int | None = None, monitor: str = "val_loss") -> None:
        self.run_dir, self.every_steps, self.monitor = Path(run_dir), every_steps, monitor

    def on_step_end(self, state, loss):
        if self.every_steps and state.step % self.every_steps == 0 and state.is_main:
            save_checkpoint(self.run_dir / "last.pt", state.checkpoint())

    def on_epoch_end(self, state, metrics):
        value = metrics.get(self.monitor, metrics.get("train_loss"))
        improved = value is not None and math.isfinite(value) and value < state.best
        if improved:
            state.best, state.best_epoch = value, state.epoch
        if state.is_main:
            save_checkpoint(self.run_dir / "last.pt", state.checkpoint())
            if improved:
                save_checkpoint(self.run_dir / "best.pt", state.checkpoint())


class EarlyStopping(Callback):
    """Stop when the validation loss has not improved for ``patience`` epochs."""

    def __init__(self, patience: int, monitor: str = "val_loss") -> None:
        self.patience, self.monitor = int(patience), monitor

    def on_epoch_end(self, state, metrics):
        if self.monitor in metrics and state.epoch - state.best_epoch >= self.patience:
            state.stop = True


class Progress(Callback):
    """A tqdm progress bar with ETA over the training steps (stderr, main process only)."""

    def __init__(self, total_steps: int, disable: bool | None = None) -> None:
        self.total, self.disable, self.bar = total_steps, disable, None

    def on_train_start(self, state):
        if not state.is_main:
            return
        from tqdm.auto import tqdm

        disable = self.disable if self.disable is not None else not sys.stderr.isatty()
        self.bar = tqdm(total=self.total, initial=state.step, desc="train", unit="step", disable=disable, file=sys.stderr)

    def on_step_end(self, state, loss):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", epoch=state.epoch)

    def on_epoch_end(self, state, metrics):
        if self.bar is not None and "val_loss" in metrics:
            self.bar.write(f"epoch {state.epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def on_train_end(self, state):
        if self.bar is not None:
            self.bar.close()
