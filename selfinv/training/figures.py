r"""Figures of a run (matplotlib, Agg: no display needed): reconstructions side by side and training curves.

* :func:`reconstruction_figure`: measurement / baseline / reconstruction / truth for a few samples, PSNR
  under each panel. The comparable panels of a row (truth, reconstructions, baseline, and y when it is an
  image) share one intensity scale: the 0.5 and 99.5 percentiles of the truth (else of the panels
  pooled), so that a few bright pixels do not darken a microscopy crop; a measurement shown as
  :math:`A^H y` gets its own scale (``own_scale``). Complex images are shown in magnitude, measurements
  that are not images (k-space, sinograms, compressed-sensing vectors) as :math:`A^H y`. Panels are
  drawn at a few screen pixels per image pixel for small images, at most 512 pixels for large ones.
* :func:`curves_figure`: training loss (per step and per epoch), validation loss, and validation PSNR
  beside the no-learning baseline, from a run's history (``TrainState.history``) or ``metrics.csv``.
* :func:`comparison_figure`: PSNR per loss (bars drawn from the no-learning baseline, up or down, so the
  gain is the bar) and example reconstructions.

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

__all__ = ["comparison_figure", "curves_figure", "display_limits", "display_measurement", "panel_pixels", "panel_scales",
           "psnr_bars", "read_history", "reconstruction_figure"]

PANELS = ("measurement", "baseline", "reconstruction", "truth")
DPI = 100
PERCENTILES = (0.5, 99.5)  # robust display range
MAX_PANEL = 512  # screen pixels: larger images are shown smaller
MIN_PANEL = 200  # screen pixels: room for the titles


def _figure(width: float, height: float):
    os.environ.setdefault("MPLBACKEND", "Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def display_limits(images: Sequence[np.ndarray], percentiles: tuple[float, float] = PERCENTILES) -> tuple[float, float]:
    """The display range of a group of images: robust percentiles of their pooled values (min/max let a
    few bright pixels darken everything else); min/max when the percentiles coincide.

    Example:
        >>> dark = np.zeros((20, 20)); dark[:10] = 0.1; dark[0, 0] = 50.0  # one hot pixel
        >>> display_limits([dark])
        (0.0, 0.1)
    """
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in images]) if images else np.zeros(0)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def panel_scales(images: dict[str, np.ndarray], own_scale: Sequence[str] = ()) -> dict[str, tuple[float, float]]:
    """Display range per panel: the panels not in ``own_scale`` share one (from the truth when there is
    one, else from all of them pooled); each panel of ``own_scale`` (a measurement shown as Aᴴy) has its own."""
    shared = [k for k in images if k not in own_scale]
    ref = [images["truth"]] if "truth" in shared else [images[k] for k in shared]
    common = display_limits(ref) if ref else (0.0, 1.0)
    return {k: (display_limits([images[k]]) if k in own_scale else common) for k in images}


def panel_pixels(side: int) -> int:
    """Screen pixels of a panel's longer side for an image whose longer side is ``side`` pixels: a whole
    number (at least 4, and enough for the title) of screen pixels per image pixel for small images, up to
    :data:`MAX_PANEL`; larger images are shown at :data:`MAX_PANEL`."""
    side = max(int(side), 1)
    if side > MAX_PANEL:
        return MAX_PANEL
    scale = max(1, min(MAX_PANEL // side, max(4, math.ceil(MIN_PANEL / side))))
    return side * scale


def _panel_inches(images: Sequence[np.ndarray], cap: float | None = None) -> tuple[float, float, str]:
    """(width, height) in inches of the panels of these images and the interpolation to draw them with."""
    h = max((a.shape[0] for a in images), default=32)
    w = max((a.shape[1] for a in images), default=32)
    side = max(h, w)
    px = panel_pixels(side)
    if cap is not None:
        px = min(px, max(int(cap * DPI), MIN_PANEL))
    interpolation = "nearest" if px >= side else "antialiased"
    return px * w / side / DPI, px * h / side / DPI, interpolation


def _show(ax, img: np.ndarray, lo: float, hi: float, interpolation: str) -> None:
    if img.ndim == 3:
        ax.imshow(np.clip((img - lo) / (hi - lo), 0, 1), interpolation=interpolation)
    else:
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation=interpolation)


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


def _range(truth: np.ndarray | None) -> float:
    """The data range PSNR uses when none is given: the truth's max - min."""
    if truth is None:
        return 1.0
    r = float(truth.max() - truth.min())
    return r if r > 0 else 1.0


def _psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 10 * math.log10(data_range**2 / max(mse, 1e-30))


def reconstruction_figure(
    path: str | Path,
    rows: Sequence[dict[str, Any]],
    data_range: float | None = None,
    titles: dict[str, str] | None = None,
    columns: Sequence[str] | None = None,
    own_scale: Sequence[str] = (),
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
        own_scale: panels with a display range of their own (a measurement shown as Aᴴy, which is not on
            the images' scale, and no PSNR under it); the others of a row share one (:func:`panel_scales`).
    """
    path = Path(path)
    if columns is None:
        columns = [p for p in PANELS if any(p in r for r in rows)]
        for r in rows:
            columns += [k for k in r if k not in columns]
    columns = [c for c in columns if any(r.get(c) is not None for r in rows)]
    titles = titles or {}
    n_rows, n_cols = max(len(rows), 1), max(len(columns), 1)
    all_images = [[_image(row[c]) if row.get(c) is not None else None for c in columns] for row in rows]
    pw, ph, interpolation = _panel_inches([a for r in all_images for a in r if a is not None])
    fig = _figure(pw * n_cols + 0.2, (ph + 0.55) * n_rows + 0.1)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row_images in enumerate(all_images):
        images = {c: a for c, a in zip(columns, row_images, strict=True) if a is not None}
        truth = images.get("truth")
        scales = panel_scales(images, own_scale)
        dr = data_range if data_range is not None else _range(truth)
        for j, c in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if c not in images:
                ax.axis("off")
                continue
            img = images[c]
            _show(ax, img, *scales[c], interpolation)
            if i == 0:
                ax.set_title(titles.get(c, c), fontsize=10)
            if truth is not None and c != "truth" and c not in own_scale and img.shape == truth.shape:
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


def psnr_bars(ax, results: Sequence[dict], baseline: dict | None) -> None:
    """PSNR per loss on ``ax``: with a no-learning PSNR, each bar is drawn from it (up for a gain, down for
    a loss) so the gaps are the bars, and the baseline is the dashed line the bars start on; without one,
    plain bars on an axis around the values."""
    ok = [r for r in results if r.get("psnr") is not None]
    base = baseline.get("psnr") if baseline else None
    if ok:
        names = [r["loss"] for r in ok]
        values = [float(r["psnr"]) for r in ok]
        lo, hi = min([*values, *([base] if base is not None else [])]), max([*values, *([base] if base is not None else [])])
        pad = max(0.5, 0.08 * (hi - lo))
        if base is not None:
            gains = [v - base for v in values]
            bars = ax.bar(range(len(ok)), gains, bottom=base, color=["tab:blue" if g >= 0 else "tab:orange" for g in gains])
            for b, v, g in zip(bars, values, gains, strict=True):
                ax.annotate(f"{v:.2f} ({g:+.2f})", (b.get_x() + b.get_width() / 2, v), ha="center",
                            va="bottom" if g >= 0 else "top", fontsize=8)
        else:
            bars = ax.bar(range(len(ok)), [v - (lo - 2 * pad) for v in values], bottom=lo - 2 * pad, color="tab:blue")
            for b, v in zip(bars, values, strict=True):
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(ok)), names, rotation=30 if len(ok) > 4 else 0, ha="right" if len(ok) > 4 else "center")
        ax.set_ylim(lo - 2 * pad if base is None else lo - 1.5 * pad, hi + 1.5 * pad)
    if base is not None:
        ax.axhline(base, color="tab:red", ls="--", lw=1, label=f"no learning {base:.2f} dB (the bars start here)")
        ax.legend(fontsize=8, loc="best")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("PSNR per loss, gain over no learning (same model, data, steps and seed)" if ok and base is not None
                 else "PSNR per loss (same model, data, steps and seed)" if ok else "no PSNR (no ground truth)", fontsize=10)


def comparison_figure(path: str | Path, results: Sequence[dict], baseline: dict | None,
                      examples: dict[str, torch.Tensor] | None = None, data_range: float | None = None,
                      own_scale: Sequence[str] = ()) -> Path:
    """PSNR per loss (:func:`psnr_bars`) and, below, example reconstructions of one test image (``examples``:
    panels by name, ``truth`` included when known; ``own_scale`` as in :func:`reconstruction_figure`)."""
    path = Path(path)
    examples = {k: v for k, v in (examples or {}).items() if v is not None}
    images = {k: _image(v) for k, v in examples.items()}
    n_ex = len(examples)
    pw, ph, interpolation = _panel_inches(list(images.values()), cap=18.0 / max(n_ex, 1))
    width = max(6.0, (pw + 0.1) * n_ex)
    fig = _figure(width, 3.4 + ((ph + 0.6) if n_ex else 0))
    if n_ex:
        grid = fig.add_gridspec(2, n_ex, height_ratios=[3.4, ph + 0.6])
        bar_ax = fig.add_subplot(grid[0, :])
    else:
        bar_ax = fig.add_subplot(1, 1, 1)
    psnr_bars(bar_ax, results, baseline)
    if n_ex:
        truth = images.get("truth")
        scales = panel_scales(images, own_scale)
        dr = data_range if data_range is not None else _range(truth)
        for j, (name, img) in enumerate(images.items()):
            ax = fig.add_subplot(grid[1, j])
            _show(ax, img, *scales[name], interpolation)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=9)
            if truth is not None and name != "truth" and name not in own_scale and img.shape == truth.shape:
                ax.set_xlabel(f"{_psnr(img, truth, dr):.2f} dB", fontsize=9)
    fig.savefig(path)
    return path
