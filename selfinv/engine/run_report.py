"""The report of one run: ``report.md`` (data, physics, model, steps, the last metrics), ``curves.png`` (the
training curves) and ``examples.png`` (test samples, else validation samples: measurement, no-learning
baseline, reconstruction and truth)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import torch

import selfinv
from selfinv.config import Config
from selfinv.data import collate
from selfinv.engine.build import Experiment
from selfinv.engine.data import build_test_set
from selfinv.engine.errors import error_line
from selfinv.engine.files import write_text_atomic
from selfinv.losses.base import estimate
from selfinv.training import baseline

if TYPE_CHECKING:  # annotations only: train_experiment writes this report; this module never imports it
    from selfinv.engine.train import RunResult

__all__ = ["describe_model", "example_rows", "write_run_report"]


def example_rows(model, loss, dataset, n: int, device) -> tuple[list[dict[str, torch.Tensor]], str]:
    """Measurement / baseline / reconstruction / truth for the first ``n`` samples of a data set (one at a
    time: test images may differ in size), and the measurement's title (``measurement y``, or
    ``measurement (Aᴴy)`` when y is not an image). The estimator's draws come from one generator seeded with 0."""
    from selfinv.training.figures import display_measurement

    if dataset is None or len(dataset) == 0:
        return [], "measurement"
    model.eval()
    loss.eval()
    estimator = loss.test_model(model)
    generator = torch.Generator().manual_seed(0)
    rows, title = [], "measurement"
    for i in range(min(n, len(dataset))):
        batch = collate([dataset[i]]).to(device)
        physics = dataset.make_physics(batch.params).to(device)
        with torch.no_grad():
            x_hat = estimate(estimator, batch.y, physics, generator)
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
    if examples_from is not None:
        return examples_from, "test", None
    try:
        test = build_test_set(exp.cfg)
    except Exception as e:  # the run is trained: a test set that cannot be built only changes the figure
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
        f"noise: {exp.cfg.noise.name if exp.cfg.noise else 'none'}"
        + (f" ({exp.noise_estimate.summary().replace(chr(10), '; ')})" if getattr(exp, "noise_estimate", None) is not None else ""),
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
        truth = "truth" in rows[0]
        lines += [f"The first {len(rows)} {shown_name} samples{note}; "
                  + ("PSNR against the ground truth under each panel; " if truth else "no ground truth, so no PSNR; ")
                  + f"the images share one display range (0.5 to 99.5 percentiles of {'the truth' if truth else 'them all'})"
                  + (", the measurement Aᴴy has its own" if "Aᴴy" in measurement else "") + ":",
                  "", "![examples](examples.png)", ""]
    lines += ["Checkpoints: `last.pt` (resume with `selfinv train CONFIG --resume`), `best.pt` (lowest validation loss); "
              "resolved configuration: `config.yaml`.", ""]
    write_text_atomic(run_dir / "report.md", "\n".join(lines))
    files.append(run_dir / "report.md")
    return files
