r"""Figures of a run (matplotlib, Agg: no display needed): reconstructions side by side and training curves.

* :func:`reconstruction_figure`: measurement / baseline / reconstruction / truth for a few samples, on one
  shared intensity scale per row (the truth's range, else the reconstruction's), PSNR under each panel;
  complex images are shown in magnitude, and measurements that are not images (k-space, sinograms,
  compressed-sensing vectors) as :math:`A^H y`.
* :func:`curves_figure`: training loss (per step and per epoch), validation loss, and validation PSNR
  beside the no-learning baseline, from a run's history (``TrainState.history``) or ``metrics.csv``.
* :func:`comparison_figure`: PSNR per loss (bars, the baseline as a line) and example reconstructions.

Every function writes a PNG and returns its path; nothing touches the global pyplot state.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from selfinv.training.figures import reconstruction_figure
    >>> x = torch.rand(1, 1, 16, 16)
    >>> path = reconstruction_figure(Path(tempfile.mkdtemp()) / "r.png",
    ...                              [{"measurement": x + 0.1, "reconstruction": x, "truth": x}], data_range=1.0)
    >>> path.stat().st_size > 0
    True
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["comparison_figure", "curves_figure", "display_measurement", "read_history", "reconstruction_figure"]

PANELS = ("measurement", "baseline", "reconstruction", "truth")


def _figure(width: float, height: float):
    os.environ.setdefault("MPLBACKEND", "Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _image(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) → (H, W) or (H, W, 3) real array (magnitude for complex)."""
    a = t.detach().cpu() if isinstance(t, torch.Tensor) else torch.as_tensor(np.asarray(t))
    if a.is_complex():
        a = a.abs()
    a = a.to(torch.float64)
    while a.ndim > 3:
        a = a[0]
    if a.ndim == 2:
        return a.numpy()
    if a.shape[0] == 3:
        return a.permute(1, 2, 0).numpy()
    if a.shape[0] == 1:
        return a[0].numpy()
    return a.pow(2).mean(0).sqrt().numpy()  # other channel counts: root mean square


def display_measurement(y: torch.Tensor, physics, x_like: torch.Tensor | None = None) -> tuple[torch.Tensor, str]:
    """What to show for a measurement: y itself when it is an image, else :math:`A^H y` (titled so)."""
    image_like = y.ndim == 4 and not y.is_complex()
    if image_like and x_like is not None:
        image_like = tuple(y.shape[-2:]) == tuple(x_like.shape[-2:])
    if image_like:
        return y, "measurement y"
    with torch.no_grad():
        return physics.A_adjoint(y), "measurement (Aᴴy)"


def _psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 10 * math.log10(data_range**2 / max(mse, 1e-30))


def reconstruction_figure(
    path: str | Path,
    rows: Sequence[dict[str, Any]],
    data_range: float | None = None,
    titles: dict[str, str] | None = None,
    columns: Sequence[str] | None = None,
) -> Path:
    """Panels side by side, one row per sample, PSNR (against ``truth``) under each.

    Args:
        path: the PNG to write.
        rows: per sample, a dict of (C, H, W) or (1, C, H, W) tensors by panel name (``measurement``,
            ``baseline``, ``reconstruction``, ``truth``, or any other names given in ``columns``);
            missing panels are left out of the row.
        data_range: the data range for PSNR (default: the truth's max - min).
        titles: panel titles by name (default: the names).
        columns: panel order (default :data:`PANELS` plus any other names, in order of appearance).
    """
    path = Path(path)
    if columns is None:
        columns = [p for p in PANELS if any(p in r for r in rows)]
        for r in rows:
            columns += [k for k in r if k not in columns]
    columns = [c for c in columns if any(r.get(c) is not None for r in rows)]
    titles = titles or {}
    n_rows, n_cols = max(len(rows), 1), max(len(columns), 1)
    fig = _figure(2.6 * n_cols, 2.8 * n_rows)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        images = {c: _image(row[c]) for c in columns if row.get(c) is not None}
        truth = images.get("truth")
        ref = truth if truth is not None else images.get("reconstruction", next(iter(images.values()), None))
        lo, hi = (float(ref.min()), float(ref.max())) if ref is not None else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        dr = data_range if data_range is not None else (hi - lo)
        for j, c in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if c not in images:
                ax.axis("off")
                continue
            img = images[c]
            if img.ndim == 3:
                ax.imshow(np.clip((img - lo) / (hi - lo), 0, 1), interpolation="nearest")
            else:
                ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            if i == 0:
                ax.set_title(titles.get(c, c), fontsize=10)
            if truth is not None and c != "truth" and img.shape == truth.shape:
                ax.set_xlabel(f"{_psnr(img, truth, dr):.2f} dB", fontsize=10)
    fig.savefig(path)
    return path


def read_history(source: str | Path | Sequence[dict]) -> list[dict[str, float]]:
    """A run's epoch history: a list of dicts (``TrainState.history``) or a run folder / ``metrics.csv``."""
    if not isinstance(source, (str, Path)):
        return [dict(r) for r in source]
    path = Path(source)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        return []
    out = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k] = float(v)
                except (TypeError, ValueError):
                    continue
            out.append(parsed)
    return out


def _steps(run_dir: Path | None) -> tuple[list[float], list[float]]:
    if run_dir is None or not (run_dir / "steps.csv").is_file():
        return [], []
    xs, ys = [], []
    with (run_dir / "steps.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                xs.append(float(row["step"]))
                ys.append(float(row["loss"]))
            except (KeyError, ValueError):
                continue
    return xs, ys


def curves_figure(path: str | Path, history: str | Path | Sequence[dict], run_dir: str | Path | None = None,
                  title: str | None = None) -> Path:
    """Loss curves (train per step when ``run_dir/steps.csv`` exists, train and validation per epoch) and,
    with ground truth, validation PSNR beside the no-learning baseline."""
    path = Path(path)
    rows = read_history(history)
    if run_dir is None and isinstance(history, (str, Path)):
        run_dir = Path(history) if Path(history).is_dir() else Path(history).parent
    sx, sy = _steps(Path(run_dir) if run_dir is not None else None)
    has_psnr = any("val_psnr" in r for r in rows)
    fig = _figure(10 if has_psnr else 5.5, 3.6)
    axes = fig.subplots(1, 2 if has_psnr else 1, squeeze=False)[0]
    ax = axes[0]
    if sx:
        ax.plot(sx, sy, color="0.75", lw=0.8, label="train (per step)")
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r and math.isfinite(r[key])]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, ms=3, label=key.replace("_", " "))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ys = [v for v in sy] + [r.get(k) for r in rows for k in ("train_loss", "val_loss") if r.get(k) is not None]
    if ys and min(ys) > 0 and max(ys) / max(min(ys), 1e-30) > 30:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title or "training", fontsize=10)
    if has_psnr:
        ax = axes[1]
        for key, style in (("val_psnr", "-o"), ("baseline_psnr", "--")):
            pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, ms=3, label={"val_psnr": "validation", "baseline_psnr": "no learning"}[key])
        ax.set_xlabel("step")
        ax.set_ylabel("PSNR (dB)")
        ax.legend(fontsize=8)
        ax.set_title("validation PSNR", fontsize=10)
    fig.savefig(path)
    return path


def comparison_figure(path: str | Path, results: Sequence[dict], baseline: dict | None,
                      examples: dict[str, torch.Tensor] | None = None, data_range: float | None = None) -> Path:
    """PSNR per loss (bars; the no-learning baseline as a dashed line) and, below, example reconstructions
    of one test image (``examples``: panels by name, ``truth`` included when known)."""
    path = Path(path)
    ok = [r for r in results if r.get("psnr") is not None]
    examples = {k: v for k, v in (examples or {}).items() if v is not None}
    n_ex = len(examples)
    fig = _figure(max(6.0, 2.2 * max(n_ex, 1)), 3.4 + (2.6 if n_ex else 0))
    if n_ex:
        grid = fig.add_gridspec(2, n_ex, height_ratios=[1.2, 1])
        bar_ax = fig.add_subplot(grid[0, :])
    else:
        bar_ax = fig.add_subplot(1, 1, 1)
    if ok:
        names = [r["loss"] for r in ok]
        values = [r["psnr"] for r in ok]
        bars = bar_ax.bar(range(len(ok)), values, color="tab:blue")
        for b, v in zip(bars, values, strict=True):
            bar_ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
        bar_ax.set_xticks(range(len(ok)), names, rotation=30 if len(ok) > 4 else 0, ha="right" if len(ok) > 4 else "center")
        lows = values + ([baseline["psnr"]] if baseline and baseline.get("psnr") is not None else [])
        bar_ax.set_ylim(min(lows) - 2, max(values) + 1.5)
    if baseline and baseline.get("psnr") is not None:
        bar_ax.axhline(baseline["psnr"], color="tab:red", ls="--", lw=1, label=f"no learning {baseline['psnr']:.2f} dB")
        bar_ax.legend(fontsize=8, loc="lower right")
    bar_ax.set_ylabel("test PSNR (dB)")
    bar_ax.set_title("PSNR per loss (same model, data, steps and seed)" if ok else "no PSNR (no ground truth)", fontsize=10)
    if n_ex:
        truth = _image(examples["truth"]) if "truth" in examples else None
        ref = truth if truth is not None else _image(next(iter(examples.values())))
        lo, hi = float(ref.min()), float(ref.max())
        hi = hi if hi > lo else lo + 1
        dr = data_range if data_range is not None else hi - lo
        for j, (name, t) in enumerate(examples.items()):
            ax = fig.add_subplot(grid[1, j])
            img = _image(t)
            if img.ndim == 3:
                ax.imshow(np.clip((img - lo) / (hi - lo), 0, 1))
            else:
                ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=9)
            if truth is not None and name != "truth" and img.shape == truth.shape:
                ax.set_xlabel(f"{_psnr(img, truth, dr):.2f} dB", fontsize=9)
    fig.savefig(path)
    return path
