"""Training a run folder (:func:`train_experiment`): checks first, then the fit loop, then the report.

A new run needs a new (or empty) folder, a resumed one its ``last.pt`` and the same configuration (only the
budget may change); a new run that fails or is interrupted before its first checkpoint leaves nothing behind.
"""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import selfinv
from selfinv.config import dump_yaml
from selfinv.engine.budget import fit_config, total_steps
from selfinv.engine.build import Experiment
from selfinv.engine.checkpoints import read_checkpoint
from selfinv.engine.device import check_device
from selfinv.engine.files import write_text_atomic
from selfinv.engine.run_report import write_run_report
from selfinv.training import Callback, Checkpointer, default_callbacks, fit

__all__ = [
    "RESUMABLE",
    "RUN_FILES",
    "Interrupted",
    "RunResult",
    "StepTimer",
    "check_run_folder",
    "checkpoint_extra",
    "config_differences",
    "train_experiment",
]

#: training options that may change when a run is resumed (the budget and how it is watched)
RESUMABLE = ("epochs", "max_steps", "patience", "checkpoint_every", "progress", "device", "run_dir")


class StepTimer(Callback):
    """Wall time of every optimisation step (validation, which runs between epochs, is excluded); ``step`` is
    the last step taken (None before the loop starts)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last = 0.0
        self.step: int | None = None

    def on_train_start(self, state):
        self._last = time.perf_counter()
        self.step = state.step

    def on_step_end(self, state, loss):
        now = time.perf_counter()
        self.times.append(now - self._last)
        self._last = now
        self.step = state.step

    def on_epoch_end(self, state, metrics):
        self._last = time.perf_counter()

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    if isinstance(d, list) and any(isinstance(v, dict) for v in d):
        out = {}
        for i, v in enumerate(d):
            out.update(_flat(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: d}


def config_differences(old: dict, new: dict, ignore_training: tuple[str, ...] = RESUMABLE) -> list[str]:
    """Keys whose values differ between two resolved configs (training budget keys excepted)."""
    a, b = _flat(old), _flat(new)
    skip = {f"training.{k}" for k in ignore_training}
    return [k for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]


@dataclass
class RunResult:
    """A finished run: its folder, final training state, training time, step times, history and the files of
    its report."""

    run_dir: Path
    state: Any
    seconds: float
    step_times: list[float]
    history: list[dict[str, float]]
    files: list[Path] = field(default_factory=list)

    @property
    def last(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def checkpoint_extra(exp: Experiment) -> dict[str, Any]:
    """What every checkpoint of a run carries besides the training state (enough to rebuild the model),
    and ``data_stats``: statistics of the training measurements (normalised units, at most 1e6 values), by
    which ``reconstruct`` notices inputs unlike them (:mod:`selfinv.data.stats`)."""
    from selfinv.data.stats import input_statistics

    y = getattr(exp.dataset, "y", None)
    return {
        "config": exp.cfg.model_dump(mode="json"),
        "normalization": exp.normalization.to_dict(),
        "data_info": exp.data_info,
        "selfinv_version": selfinv.__version__,
        "data_stats": input_statistics(y) if isinstance(y, torch.Tensor) and y.numel() else None,
    }


#: what a run writes into its folder (removed again when a new run fails before its first checkpoint)
RUN_FILES = ("config.yaml", "steps.csv", "metrics.csv", "last.pt", "best.pt", "report.md", "curves.png", "examples.png")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the step it stopped at, the step ``last.pt`` holds (None: no checkpoint was
    kept) and whether the run folder this call created was removed."""

    def __init__(self, run_dir: Path, step: int, saved_step: int | None, removed: bool) -> None:
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step, self.saved_step, self.removed = run_dir, step, saved_step, removed

    def line(self, command: str) -> str:
        """The error line; ``command`` is the one that started the run (``--resume`` is added)."""
        if self.saved_step is None:
            kept = "the run folder was removed" if self.removed else "the run folder holds nothing of it"
            return f"interrupted at step {self.step}, before the first checkpoint ({kept}); start again with: {command}"
        held = "that step" if self.saved_step == self.step else f"step {self.saved_step}, the last checkpoint"
        return f"interrupted at step {self.step} ({self.run_dir / 'last.pt'} holds {held}); continue with: {command} --resume"


def check_run_folder(run_dir: Path, resume: bool) -> None:
    """A new run needs a new (or empty) folder; ``--resume`` needs the folder's ``last.pt``."""
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise ValueError(f"{run_dir}: nothing to resume (no last.pt); start the run without --resume")
    elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ValueError(
            f"{run_dir}: the run folder exists; pass --resume to continue it, or choose another "
            "run folder (--run-dir or training.run_dir)"
        )


def _make_run_folder(run_dir: Path) -> list[Path]:
    """Create the run folder; the folders this call created, innermost first (none when it existed empty)."""
    made = [p for p in [run_dir, *run_dir.parents] if not p.exists()]
    run_dir.mkdir(parents=True, exist_ok=True)
    return made


def _undo_start(run_dir: Path, made: list[Path]) -> bool:
    """Remove what a run that failed before its first checkpoint wrote, and the folders this call created
    when nothing else is in them; True when the run folder is gone. Other files are never touched."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for tmp in run_dir.glob(".*.tmp"):  # temporary files of atomic writes cut short
        if any(tmp.name.startswith(f".{name}.") for name in RUN_FILES):
            tmp.unlink(missing_ok=True)
    shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    for folder in made:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): leave it and its parents
            break
    return bool(made) and not run_dir.exists()


def train_experiment(exp: Experiment, run_dir: str | Path, resume: bool = False, progress: bool | None = None,
                     report: bool = True, title: str | None = None, epoch_lines: bool = True,
                     log=None, examples_from=None) -> RunResult:
    """Train ``exp`` into ``run_dir`` (a new folder, or the run to resume), then write its report and figures.

    Everything that can be checked (the training options, the device, the folder) is checked before the
    folder is created; a new run that fails or is interrupted before its first checkpoint removes what it
    wrote (and the folder, when this call created it), so that starting it again just works. Ctrl-C
    raises :class:`Interrupted`.

    ``log(line)`` announces the run once the folder checks have passed (errors before it are one line alone).
    ``examples_from``: the data set of the report's example figure (default: the config's test set, else
    the validation set)."""
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    resolved = exp.cfg.model_dump(mode="json")
    cfg = exp.cfg
    fcfg = fit_config(cfg)
    check_device(fcfg.device, "training.device")
    check_run_folder(run_dir, resume)
    made: list[Path] = []
    resumed_step = 0
    if resume:
        saved = read_checkpoint(last)
        resumed_step = int(saved.get("counters", {}).get("step", 0))
        if "config" not in saved:
            raise ValueError(f"{last}: holds no selfinv configuration; cannot resume it with this config")
        diff = config_differences(saved["config"], resolved)
        if diff:
            k = diff[0]
            before, after = _flat(saved["config"]).get(k), _flat(resolved).get(k)
            raise ValueError(
                f"{run_dir}: the config differs from the run's ({k}: {before!r} -> {after!r}"
                f"{f', and {len(diff) - 1} more' if len(diff) > 1 else ''}); only the training budget "
                f"({', '.join('training.' + r for r in RESUMABLE[:4])}) may change on --resume"
            )
    else:
        made = _make_run_folder(run_dir)
    n_steps = total_steps(cfg, len(exp.train))
    timer = StepTimer()
    callbacks = default_callbacks(run_dir, n_steps, every_steps=cfg.training.checkpoint_every,
                                  patience=cfg.training.patience,
                                  progress=progress if progress is not None else cfg.training.progress)
    if not epoch_lines and not progress:  # no bar and no per-epoch lines (compare, demo)
        from selfinv.training import Progress

        callbacks = [cb for cb in callbacks if not isinstance(cb, Progress)]
    checkpointer = next(cb for cb in callbacks if isinstance(cb, Checkpointer))
    try:
        if log is not None:
            within = getattr(exp.val, "description", None)  # validation within the measurements (one measurement)
            log(f"{'resuming' if resume else 'training'} {exp.cfg.loss.name} on {exp.cfg.physics.name}: "
                f"{len(exp.train)} training / {len(exp.val)} validation samples"
                + (f" (validation on {within})" if within else "") + f" -> {run_dir}")
            if getattr(exp, "noise_estimate", None) is not None:
                log(exp.noise_estimate.summary())
        write_text_atomic(run_dir / "config.yaml", "# resolved configuration of this run (selfinv "
                          f"{selfinv.__version__})\n" + dump_yaml(resolved))
        t0 = time.perf_counter()
        state = fit(exp.model, exp.loss, exp.train, exp.val, fcfg, [timer, *callbacks],
                    resume=str(last) if resume else None, extra_state=checkpoint_extra(exp))
        seconds = time.perf_counter() - t0
        result = RunResult(run_dir, state, seconds, timer.times, list(state.history))
        if report:
            result.files = write_run_report(exp, result, title=title, examples_from=examples_from)
    except BaseException as e:
        removed = False
        if not resume and not last.is_file():  # nothing to resume: leave no dead end behind
            removed = _undo_start(run_dir, made)
        if isinstance(e, KeyboardInterrupt) and not isinstance(e, Interrupted):
            saved_step = checkpointer.saved_step if checkpointer.saved_step is not None else (resumed_step if resume else None)
            step = timer.step if timer.step is not None else resumed_step
            raise Interrupted(run_dir, step, saved_step, removed) from None
        raise
    return result
