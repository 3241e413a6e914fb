"""What the commands share: training a run folder, rebuilding a model from a checkpoint, evaluating a data set."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import selfinv
from selfinv.config import Config, ConfigError, dump_yaml, parse_config
from selfinv.data import Normalization, collate
from selfinv.experiment import Experiment, build_loss, build_model, build_noise, build_physics, fit_config, total_steps
from selfinv.training import (
    Callback,
    Checkpointer,
    baseline,
    default_callbacks,
    fit,
    load_checkpoint,
    psnr,
    ssim,
)

#: training options that may change when a run is resumed (the budget and how it is watched)
RESUMABLE = ("epochs", "max_steps", "patience", "checkpoint_every", "progress", "device", "run_dir")


# ---------------------------------------------------------------------- files
def write_text_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet (exclusive create)."""
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def new_folder(path: Path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents); refuse one that exists with anything in it."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path}: the {what} exists and is not empty; choose another (nothing is overwritten)")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------- timing
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


# ---------------------------------------------------------------------- training
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
    from selfinv.cli._device import check_device

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


def example_rows(model, loss, dataset, n: int, device) -> tuple[list[dict[str, torch.Tensor]], str]:
    """Measurement / baseline / reconstruction / truth for the first ``n`` samples of a data set (one at a
    time: test images may differ in size), and the measurement's title (``measurement y``, or
    ``measurement (Aᴴy)`` when y is not an image)."""
    from selfinv.training.figures import display_measurement

    if dataset is None or len(dataset) == 0:
        return [], "measurement"
    model.eval()
    loss.eval()
    estimator = loss.test_model(model)
    torch.manual_seed(0)
    rows, title = [], "measurement"
    for i in range(min(n, len(dataset))):
        batch = collate([dataset[i]]).to(device)
        physics = dataset.make_physics(batch.params).to(device)
        with torch.no_grad():
            x_hat = estimator(batch.y, physics)
            x0 = baseline(batch.y, physics)
            shown, title = display_measurement(batch.y, physics, x_hat)
        row = {"measurement": shown[0], "baseline": x0[0], "reconstruction": x_hat[0]}
        if shown[0].shape == x0[0].shape and torch.equal(shown[0], x0[0]):
            del row["baseline"]  # denoising: the baseline is y itself
        if batch.x is not None:
            row["truth"] = batch.x[0]
        rows.append({k: v.cpu() for k, v in row.items()})
    return rows, title


def describe_model(cfg: Config) -> str:
    """``unet (no wrapper)``, ``unet in backprojection (init fbp)``."""
    backbone, wrapper = cfg.model.backbone.name, cfg.model.wrapper
    if wrapper.name == "none":
        return f"{backbone} (no wrapper)"
    if wrapper.name == "auto":
        return f"{backbone} in the wrapper the physics calls for"
    params = ", ".join(f"{k} {v}" for k, v in wrapper.model_dump(mode="json").items() if k != "name" and v is not None)
    return f"{backbone} in {wrapper.name}" + (f" ({params})" if params else "")


def _examples_set(exp: Experiment, examples_from):
    """The data set the report shows examples of and its name: the given one, the config's test set, or the
    validation set (when the config has no test set, or it cannot be built: the reason comes back too)."""
    from selfinv.experiment import build_test_set

    if examples_from is not None:
        return examples_from, "test", None
    try:
        test = build_test_set(exp.cfg)
    except Exception as e:  # the run is trained: a test set that cannot be built only changes the figure
        from selfinv.cli._errors import error_line

        return exp.val, "validation", error_line(e)
    if test is None or len(test) == 0:
        return exp.val, "validation", None
    return test, "test", None


def write_run_report(exp: Experiment, result: RunResult, title: str | None = None, examples_from=None) -> list[Path]:
    """``report.md``, ``curves.png`` and ``examples.png`` (test samples, else validation samples) in the run folder."""
    from selfinv.training.figures import curves_figure, reconstruction_figure

    run_dir = result.run_dir
    device = next(exp.model.parameters()).device if any(True for _ in exp.model.parameters()) else torch.device("cpu")
    files = [curves_figure(run_dir / "curves.png", result.history, run_dir, title=title or exp.cfg.loss.name)]
    shown_set, shown_name, why_not_test = _examples_set(exp, examples_from)
    rows, measurement = example_rows(exp.model, exp.loss, shown_set, 3, device)
    if rows:
        files.append(reconstruction_figure(run_dir / "examples.png", rows, data_range=exp.cfg.data.data_range,
                                           titles={"reconstruction": f"reconstruction ({exp.cfg.loss.name})",
                                                   "baseline": "no learning", "measurement": measurement},
                                           own_scale=("measurement",) if "Aᴴy" in measurement else ()))
    last = result.last
    loss_name = exp.cfg.loss.name + "".join(f" + {t.name}" for t in exp.cfg.loss.extra)
    lines = [
        f"# selfinv run: {exp.cfg.loss.name} on {exp.cfg.physics.name}",
        "",
        f"- selfinv {selfinv.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        f"- data: {exp.cfg.data.source}, {len(exp.train)} training / {len(exp.val)} validation samples of "
        f"{'x'.join(map(str, exp.img_shape))}{' (complex)' if exp.is_complex else ''}",
        f"- physics: {exp.cfg.physics.name}{' (per-sample operators: ' + exp.cfg.physics.sampler.name + ')' if exp.cfg.physics.sampler else ''}, "
        f"noise: {exp.cfg.noise.name if exp.cfg.noise else 'none'}",
        f"- model: {describe_model(exp.cfg)}, {sum(p.numel() for p in exp.model.parameters())} parameters",
        f"- steps: {result.state.step}, training time {result.seconds:.1f} s"
        + (f", median step {statistics.median(result.step_times) * 1000:.1f} ms" if result.step_times else ""),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    labels = {"train_loss": f"train_loss (the {loss_name} loss)", "val_loss": f"val_loss (the {loss_name} loss on the validation set)"}
    for k in ("train_loss", "val_loss", "val_psnr", "val_ssim", "baseline_psnr", "baseline_ssim"):
        if k in last:
            lines.append(f"| {labels.get(k, k)} | {last[k]:.4g} |")
    lines += ["", "![training curves](curves.png)", ""]
    if rows:
        note = f" (the test set could not be built: {why_not_test})" if why_not_test else ""
        lines += [f"The first {len(rows)} {shown_name} samples{note}; PSNR against the ground truth under each panel; "
                  f"the images share one display range (0.5 to 99.5 percentiles of {'the truth' if 'truth' in rows[0] else 'them all'})"
                  + (", the measurement Aᴴy has its own" if "Aᴴy" in measurement else "") + ":",
                  "", "![examples](examples.png)", ""]
    lines += ["Checkpoints: `last.pt` (resume with `selfinv train CONFIG --resume`), `best.pt` (lowest validation loss); "
              "resolved configuration: `config.yaml`.", ""]
    write_text_atomic(run_dir / "report.md", "\n".join(lines))
    files.append(run_dir / "report.md")
    return files


# ---------------------------------------------------------------------- checkpoints
@dataclass
class Restored:
    """A model rebuilt from a checkpoint alone."""

    path: Path
    cfg: Config
    model: torch.nn.Module
    loss: Any
    normalization: Normalization
    data_info: dict[str, Any]
    step: int
    device: torch.device
    data_stats: dict[str, float] | None = None  # of the training measurements; None for older checkpoints

    @property
    def img_shape(self) -> tuple[int, int, int]:
        h, w = self.data_info["img_size"]
        return int(self.data_info["channels"]), int(h), int(w)

    def estimator(self):
        self.model.eval()
        self.loss.eval()
        return self.loss.test_model(self.model)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """:func:`~selfinv.training.load_checkpoint`, with any unreadable file as one ValueError line."""
    path = Path(path)
    try:
        return load_checkpoint(path, map_location="cpu")
    except ValueError:
        raise
    except Exception as e:  # e.g. struct.error from a truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None


def restore(path: str | Path, device: str | None = None) -> Restored:
    """Rebuild model and loss from a checkpoint's stored configuration and load their weights."""
    path = Path(path)
    from selfinv.cli._device import check_device

    dev = check_device(device)
    ckpt = read_checkpoint(path)
    missing = [k for k in ("config", "data_info", "model") if k not in ckpt]
    if missing:
        raise ValueError(f"{path.name}: a checkpoint without its run configuration ({', '.join(missing)} missing: "
                         "not written by `selfinv train`); cannot rebuild the model")
    try:
        cfg = parse_config(ckpt["config"])
    except ConfigError as e:
        raise ValueError(f"{path.name}: its stored configuration does not fit this selfinv version ({e})") from None
    info = ckpt["data_info"]
    c, (h, w) = int(info["channels"]), info["img_size"]
    model = build_model(cfg, c, bool(info["complex"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = " ".join(str(e).split("\n\t")[1:2]) or str(e).splitlines()[0]
        raise ValueError(
            f"{path.name}: its weights do not fit the model its configuration describes "
            f"({cfg.model.backbone.name} in {cfg.model.wrapper.name}): {' '.join(first.split())[:200]} "
            "(a checkpoint from another model?)"
        ) from None
    sampler = None
    if cfg.physics.sampler is not None:
        _, sampler = build_physics(cfg, (c, h, w), build_noise(cfg))
    loss = build_loss(cfg, sampler, (c, h, w))
    try:
        loss.load_state_dict(ckpt.get("loss", {}))
    except RuntimeError:
        raise ValueError(f"{path.name}: its loss state does not fit the loss {cfg.loss.name} of its configuration") from None
    norm = Normalization.from_dict(ckpt.get("normalization", {"scale": 1.0, "offset": 0.0}))
    model.to(dev)
    loss.to(dev)
    stats = ckpt.get("data_stats")
    return Restored(path, cfg, model, loss, norm, info, int(ckpt.get("counters", {}).get("step", 0)), dev,
                    data_stats=dict(stats) if isinstance(stats, dict) else None)


# ---------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    n: int
    has_truth: bool
    loss: float | None
    psnr: list[float]
    ssim: list[float]
    baseline_psnr: list[float]
    baseline_ssim: list[float]
    seconds_per_image: float
    names: list[str]
    examples: dict[str, torch.Tensor] = field(default_factory=dict)
    measurement_title: str = "measurement"  # of examples["measurement"]: "measurement y" or "measurement (Aᴴy)"

    @staticmethod
    def _mean(v: list[float]) -> float | None:
        return float(sum(v) / len(v)) if v else None

    def summary(self) -> dict[str, Any]:
        return {
            "n_images": self.n,
            "psnr": self._mean(self.psnr),
            "ssim": self._mean(self.ssim),
            "baseline": {"psnr": self._mean(self.baseline_psnr), "ssim": self._mean(self.baseline_ssim)},
            "loss": self.loss,
            "seconds_per_image": self.seconds_per_image,
        }


def evaluate_dataset(model, loss, dataset, data_range: float | None, device, batch_size: int = 4, seed: int = 0,
                     with_loss: bool = True, examples: int = 0, progress: bool = False) -> Evaluation:
    """Per-image PSNR/SSIM of the loss's test-time estimator and of the no-learning baseline (with ground
    truth), the loss on the data (self-supervised, with fixed draws), and the estimator's time per image."""
    from tqdm.auto import tqdm

    from selfinv.training.figures import display_measurement

    model.eval()
    loss.eval()
    estimator = loss.test_model(model)
    out = Evaluation(len(dataset), False, None, [], [], [], [], 0.0, list(getattr(dataset, "names", [])))
    total_loss, n_loss, seconds = 0.0, 0, 0.0
    batches = [list(range(i, min(i + batch_size, len(dataset)))) for i in range(0, len(dataset), batch_size)]
    torch.manual_seed(seed)
    for b, idx in enumerate(tqdm(batches, desc="evaluate", unit="batch", disable=not progress, leave=False)):
        batch = collate([dataset[i] for i in idx]).to(device)
        physics = dataset.make_physics(batch.params).to(device)
        if with_loss:
            g = torch.Generator().manual_seed(seed * 1_000_003 + b)
            try:
                with torch.no_grad():
                    value = loss(batch.y, physics, model, x=batch.x, y2=batch.y2, generator=g)
                total_loss += float(value) * len(idx)
                n_loss += len(idx)
            except ValueError:  # e.g. the supervised loss on data without ground truth
                with_loss = False
        with torch.no_grad():
            t0 = time.perf_counter()
            x_hat = estimator(batch.y, physics)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - t0
            x0 = baseline(batch.y, physics)
        if batch.x is not None and data_range is not None:
            out.has_truth = True
            out.psnr += psnr(x_hat, batch.x, data_range).tolist()
            out.ssim += ssim(x_hat, batch.x, data_range).tolist()
            out.baseline_psnr += psnr(x0, batch.x, data_range).tolist()
            out.baseline_ssim += ssim(x0, batch.x, data_range).tolist()
        if b == 0 and examples:
            shown, title = display_measurement(batch.y, physics, x_hat)
            out.examples = {"measurement": shown[0].cpu(), "no learning": x0[0].cpu(), "reconstruction": x_hat[0].cpu()}
            out.measurement_title = title
            if batch.x is not None:
                out.examples["truth"] = batch.x[0].cpu()
    out.loss = total_loss / n_loss if n_loss else None
    out.seconds_per_image = seconds / max(len(dataset), 1)
    return out


class CallCounter:
    """Counts forward calls of a module (network evaluations)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.count = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *args) -> None:
        self.count += 1

    def close(self) -> None:
        self._handle.remove()


def count_network_evals(model, loss, dataset, device, batch_size: int, seed: int) -> int | None:
    """Network evaluations of one training step, counted (one forward and backward pass on a training batch)."""
    if len(dataset) == 0:
        return None
    idx = list(range(min(batch_size, len(dataset))))
    batch = collate([dataset[i] for i in idx]).to(device)
    physics = dataset.make_physics(batch.params).to(device)
    model.train()
    loss.train()
    counter = CallCounter(model)
    try:
        value = loss(batch.y, physics, model, x=batch.x, y2=batch.y2, generator=torch.Generator().manual_seed(seed))
        value.backward()
    finally:
        counter.close()
        model.zero_grad(set_to_none=True)
    return counter.count


def machine_info(device: torch.device | str | None = None) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "selfinv": selfinv.__version__,
        "device": str(device) if device is not None else None,
    }
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def to_json(data: Any) -> str:
    def default(o):
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, float) and not math.isfinite(o):
            return None
        raise TypeError(type(o).__name__)

    return json.dumps(data, indent=2, default=default, allow_nan=False)


def clean_floats(d: Any) -> Any:
    """NaN/Inf → None, recursively (JSON has no NaN)."""
    if isinstance(d, dict):
        return {k: clean_floats(v) for k, v in d.items()}
    if isinstance(d, list):
        return [clean_floats(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d
