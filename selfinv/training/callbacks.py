"""What hangs off the training loop: logging, checkpoints, early stopping, progress.

A callback implements any of ``on_train_start(state)``, ``on_step_end(state, loss)``,
``on_epoch_end(state, metrics)`` and ``on_train_end(state)``. Only the main process (rank 0) writes
files. ``state`` is the loop's :class:`~selfinv.training.fit.TrainState`; a callback may set
``state.stop = True`` to end training after the current epoch.
"""

from __future__ import annotations

import csv
import math
import os
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


def _write_csv_atomic(path: Path, header: list[str], rows: list[list[str]] | list[dict]) -> None:
    """Write a whole CSV file through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        if rows and isinstance(rows[0], dict):
            writer = csv.DictWriter(f, fieldnames=header, restval="")
            writer.writeheader()
            writer.writerows(rows)
        else:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
    os.replace(tmp, path)


class CSVLogger(Callback):
    """Appends every epoch's metrics to ``run_dir/metrics.csv`` (and every step's loss to ``steps.csv``, with
    the values the loss reports through ``loss.monitored()``, e.g. UNSURE's learned ``eta``).

    On a resumed run (``state.step > 0`` at the start) both files are first cut back to the checkpoint:
    the rows of the steps after it (written before the run was killed, and about to be taken again)
    are dropped, so the files end up as the uninterrupted run writes them. An epoch row with keys the
    header lacks (validation every few epochs) rewrites the file with the wider header; missing values
    are empty.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._headers: dict[str, list[str]] = {}

    def _header(self, path: Path) -> list[str]:
        if path.name not in self._headers:
            header: list[str] = []
            if path.is_file():
                with path.open(newline="") as f:
                    header = next(csv.reader(f), [])
            self._headers[path.name] = header
        return self._headers[path.name]

    def _append(self, name: str, row: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / name
        header = self._header(path)
        if not header:
            header = list(row)
            _write_csv_atomic(path, header, [row])
        elif set(row) <= set(header):
            with path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=header, restval="").writerow(row)
        else:  # new columns: rewrite the file under the wider header
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            header = header + [k for k in row if k not in header]
            _write_csv_atomic(path, header, [*rows, row])
        self._headers[name] = header

    def _truncate(self, name: str, step: int, max_rows: int | None = None) -> None:
        """Keep the rows with ``step <= step`` (at most ``max_rows``), byte for byte; atomic."""
        path = self.run_dir / name
        if not path.is_file():
            return
        with path.open(newline="") as f:
            table = list(csv.reader(f))
        if not table or "step" not in table[0]:
            return
        header, rows = table[0], table[1:]
        col = header.index("step")

        def keep(r: list[str]) -> bool:
            try:
                return float(r[col]) <= step
            except (IndexError, ValueError):
                return False

        kept = [r for r in rows if keep(r)][:max_rows]
        if len(kept) != len(rows):
            _write_csv_atomic(path, header, kept)

    def on_train_start(self, state):
        if state.is_main and state.step > 0:  # resumed: forget what the killed run logged after its checkpoint
            self._truncate("steps.csv", state.step)
            self._truncate("metrics.csv", state.step, max_rows=len(state.history))

    def on_step_end(self, state, loss):
        if state.is_main:
            self._append("steps.csv", {"step": state.step, "epoch": state.epoch, "loss": loss, **state.loss.monitored()})

    def on_epoch_end(self, state, metrics):
        if state.is_main:
            self._append("metrics.csv", {"epoch": state.epoch_label, "step": state.step, **metrics})


class TensorBoardLogger(Callback):
    """Scalars to TensorBoard when ``tensorboard`` is installed (silently absent otherwise); a resumed run
    purges the events logged after its checkpoint."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir, self.writer = Path(run_dir), None

    def on_train_start(self, state):
        if not state.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=state.step + 1 if state.step > 0 else None)

    def on_step_end(self, state, loss):
        if self.writer is not None and state.is_main:
            self.writer.add_scalar("train/loss", loss, state.step)
            for k, v in state.loss.monitored().items():
                self.writer.add_scalar(f"train/{k}", v, state.step)

    def on_epoch_end(self, state, metrics):
        if self.writer is not None and state.is_main:
            for k, v in metrics.items():
                self.writer.add_scalar(f"epoch/{k}", v, state.step)

    def on_train_end(self, state):
        if self.writer is not None:
            self.writer.close()


class Checkpointer(Callback):
    """``last.pt`` every ``every_steps`` steps and every epoch, ``best.pt`` at the best validation loss.

    ``saved_step`` is the step of the last ``last.pt`` this callback wrote (None before the first)."""

    def __init__(self, run_dir: str | Path, every_steps: int | None = None, monitor: str = "val_loss") -> None:
        self.run_dir, self.every_steps, self.monitor = Path(run_dir), every_steps, monitor
        self.saved_step: int | None = None

    def on_step_end(self, state, loss):
        if self.every_steps and state.step % self.every_steps == 0 and state.is_main:
            save_checkpoint(self.run_dir / "last.pt", state.checkpoint())
            self.saved_step = state.step

    def on_epoch_end(self, state, metrics):
        value = metrics.get(self.monitor, metrics.get("train_loss"))
        improved = value is not None and math.isfinite(value) and value < state.best
        if improved:
            state.best, state.best_epoch = value, state.epoch
        if state.is_main:
            save_checkpoint(self.run_dir / "last.pt", state.checkpoint())
            self.saved_step = state.step
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
            self.bar.set_postfix(loss=f"{loss:.4g}", epoch=state.epoch_label)

    def on_epoch_end(self, state, metrics):
        if self.bar is not None and "val_loss" in metrics:
            label = f"epoch {state.epoch_label}{' (partial)' if state.batch_in_epoch else ''}"
            self.bar.write(f"{label}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def on_train_end(self, state):
        if self.bar is not None:
            self.bar.close()
