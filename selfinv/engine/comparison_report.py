"""The report of a comparison: ``results.json`` (every run's metrics, timings and network evaluations, the
machine, the config), ``results.md`` (the same as a table), ``comparison.png`` (one test image per run), and the
table the command line prints (:func:`comparison_table`)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

import selfinv
from selfinv.config import Config
from selfinv.engine.files import clean_floats, to_json, write_text_new

__all__ = ["comparison_results", "comparison_table", "machine_info", "results_markdown", "write_comparison_report"]


def machine_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """The CPU, core and thread counts, versions and device a result was measured on."""
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


def comparison_results(runs: list[dict[str, Any]], baseline: dict[str, Any], test_name: str, n_test: int, cfg: Config,
                       device) -> dict[str, Any]:
    """The content of results.json (NaN as None)."""
    return clean_floats({
        "runs": runs,
        "baseline": baseline,
        "test_set": {"source": test_name, "n_images": n_test},
        "data_range": cfg.data.data_range,
        "machine": machine_info(device),
        "config": cfg.model_dump(mode="json"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


def write_comparison_report(out: Path, results: dict[str, Any], runs: list[dict[str, Any]], baseline: dict[str, Any],
                            shown: dict[str, torch.Tensor], measurement: str) -> None:
    """``results.json``, ``results.md`` and ``comparison.png`` (the ``shown`` images: truth, measurement, no
    learning and one reconstruction per run; ``measurement`` titles the measurement) in ``out``."""
    from selfinv.training.figures import comparison_figure

    write_text_new(out / "results.json", to_json(results) + "\n")
    write_text_new(out / "results.md", results_markdown(results))
    order = ["truth", "measurement", "no learning"] + [r["loss"] for r in runs]
    panels = {(measurement if k == "measurement" else k): shown[k] for k in order if k in shown}
    comparison_figure(out / "comparison.png", runs, baseline, panels, data_range=results["data_range"],
                      own_scale=(measurement,) if "Aᴴy" in measurement else ())


def _fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def results_markdown(results: dict[str, Any]) -> str:
    """results.md: one row per run beside the no-learning baseline."""
    m = results["machine"]
    b = results["baseline"]
    lines = [
        "# Loss comparison",
        "",
        f"Same model, data, number of steps and seed for every loss; metrics on the {results['test_set']['source']} "
        f"({results['test_set']['n_images']} images, data range {results['data_range']:g}). "
        f"Machine: {m['cpu']}, {m['threads']} threads, torch {m['torch']}, device {m['device']}.",
        "",
        "| loss | PSNR (dB) | SSIM | its own val loss¹ | steps | train s | step ms (median) | net evals/step (counted) | test ms/image |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| no learning | {_fmt(b.get('psnr'), '.2f')} | {_fmt(b.get('ssim'), '.3f')} | | | | | | |",
    ]
    for r in results["runs"]:
        if r.get("error"):
            lines.append(f"| {r['loss']} | failed: {r['error']} | | | | | | | |")
            continue
        step_ms = None if r["step_seconds_median"] is None else r["step_seconds_median"] * 1000
        test_ms = None if r["test_seconds_per_image"] is None else r["test_seconds_per_image"] * 1000
        lines.append(
            f"| {r['loss']} | {_fmt(r['psnr'], '.2f')} | {_fmt(r['ssim'], '.3f')} | {_fmt(r['val_loss'], '.4g')} | "
            f"{r['steps']} | {_fmt(r['train_seconds'], '.1f')} | {_fmt(step_ms, '.1f')} | "
            f"{r['network_evals_per_step']} ({_fmt(r['network_evals_counted'], 'd')}) | {_fmt(test_ms, '.1f')} |"
        )
    lines += ["", "¹ Each run's own training loss on the validation set: the losses measure different things on "
              "different scales, so this column follows one run, it does not rank the rows (PSNR and SSIM do).",
              "", "![comparison](comparison.png)", ""]
    return "\n".join(lines)


def comparison_table(results: dict[str, Any], labels: dict[str, str] | None = None) -> list[str]:
    """The lines of the short table ``compare`` and ``demo`` print: PSNR, SSIM, steps and training time per run
    (``labels`` renames rows, ``baseline`` the no-learning row)."""
    labels = labels or {}
    b = results["baseline"]
    lines = [f"{'':28}{'PSNR (dB)':>10}{'SSIM':>8}{'steps':>7}{'train s':>9}",
             f"{labels.get('baseline', 'no learning'):28}{_fmt(b.get('psnr'), '.2f'):>10}{_fmt(b.get('ssim'), '.3f'):>8}"]
    for r in results["runs"]:
        label = labels.get(r["loss"], r["loss"])
        if r.get("error"):
            lines.append(f"{label:28}failed: {r['error']}")
            continue
        lines.append(f"{label:28}{_fmt(r['psnr'], '.2f'):>10}{_fmt(r['ssim'], '.3f'):>8}{r['steps']:>7}"
                     f"{_fmt(r['train_seconds'], '.1f'):>9}")
    return lines
