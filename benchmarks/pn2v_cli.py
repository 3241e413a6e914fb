"""BENCHMARKS.md section "PN2V raw frame, end to end with the CLI": a raw EMCCD frame denoised as a new user would (issue 14).

The frame: ``PN2V_raw_noisy/20190520_tl_25um_50msec_05pc_488_130EM_Conv0000.tif`` of
../shared/data/microscopy_fmd_w2s_real_noise (Convallaria, the PN2V/DivNoising sample: 1024² uint16, raw EMCCD
counts, no ground truth). The folder's other file (``..._wf_130EM_FD0000.tif``) is a bright uniform disc, a
calibration frame, and is left out.

The script types what the README's "Denoising a folder of raw microscopy TIFFs" says, as subprocesses, in a fresh
folder ``benchmarks/results/pn2v_cli/`` (the working directory of every command): a folder ``raw/`` with a link
to the file, ``selfinv config init --task denoising --measurements raw``, ``selfinv check`` (as written, then
with ``--set 'noise={name: estimate}'`` for the noise estimate and the losses it enables), ``selfinv train``
(the config's own budget unless ``--steps``: then ``--set training.max_steps=N``) and ``selfinv reconstruct``.
Each command line, its wall time and its output are recorded; then the output TIFF is checked (dtype, shape,
axes, no clipping warning) and judged without a reference: the noise estimate (:func:`selfinv.noise.estimate`)
of the raw frame and of the output, and :func:`selfinv.noise.residual_check` of raw − output against the raw
frame's estimated noise (as estimated, and with the black level the mean-variance fit finds).

Usage: ``python benchmarks/pn2v_cli.py --data ../shared/data [--steps N] [--no-write] [--rewrite]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

RAW = "PN2V_raw_noisy/20190520_tl_25um_50msec_05pc_488_130EM_Conv0000.tif"
CROP = (384, 384, 256)  # row, column, side of the figure's crop (the stele's edge and two vascular bundles)
FIGURE = "pn2v_cli.png"


def run_cli(args: list[str], cwd: Path) -> dict:
    """One ``selfinv`` command, as typed (recorded with ``selfinv`` as the program), run with the venv's executable."""
    exe = Path(sys.executable).with_name("selfinv")
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    seconds = time.perf_counter() - t0
    record = {"command": shlex.join(["selfinv", *args]), "seconds": seconds, "returncode": proc.returncode,
              "stdout": proc.stdout, "stderr": proc.stderr}
    if proc.returncode != 0:
        raise SystemExit(f"`{record['command']}` failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return record


def check_lines(record: dict) -> list[str]:
    """The lines of ``selfinv check`` worth quoting: the noise estimate and its warnings, the losses it enables,
    the losses that apply, the configured loss."""
    keep = []
    applicable = []
    for line in (record["stdout"] + record["stderr"]).splitlines():
        s = line.strip()
        if s.startswith(("estimated noise:", "black level", "warning:", "With this estimate", "Configured loss:", "Physics:")):
            keep.append(s)
        elif s.startswith("✓"):
            applicable.append(s[1:].split(":")[0].strip())
    if applicable:
        keep.insert(len(keep) - 1 if keep and keep[-1].startswith("Configured") else len(keep),
                    "Losses that apply (✓): " + ", ".join(applicable) + ".")
    return keep


def noise_numbers(y, label: str):
    """The estimate (model auto) of (1, 1, H, W) y as numbers and as the model, the Gaussian (patch PCA) σ, and the
    mean-variance fit before its level is clamped (a significantly negative σ² is a black level)."""
    import torch

    from selfinv.noise import PoissonGaussian, estimate, fit_poisson_gaussian

    auto = estimate(y, model="auto")
    fit = fit_poisson_gaussian(y)
    out = {"label": label, "auto": type(auto).__name__, "pca_sigma": float(estimate(y, model="gaussian").sigma[0]),
           "fit_gain": float(fit.gain[0]), "fit_sigma2": float(fit.sigma2[0]), "fit_sigma2_se": float(fit.sigma2_se[0]),
           "sigma": float(auto.sigma[0])}
    if isinstance(auto, PoissonGaussian):
        out.update(gain=float(auto.gain[0]), offset=float(torch.as_tensor(getattr(auto, "offset", 0.0)).reshape(-1)[0]))
    return out, auto


def residual_numbers(y, x_hat, noise) -> dict:
    """:func:`selfinv.noise.residual_check` of y − x_hat against ``noise`` (the raw frame's estimate)."""
    from selfinv.noise import describe, residual_check

    chk = residual_check(y, x_hat, noise)
    return {"noise": describe(noise),
            "variance_ratio": float(chk.variance_ratio[0]), "autocorrelation_y": float(chk.autocorrelation[0, 0]),
            "autocorrelation_x": float(chk.autocorrelation[0, 1]), "signal_correlation": float(chk.signal_correlation[0]),
            "residual_std": float(chk.residual_std[0]), "summary": chk.summary(), "warnings": chk.warnings()}


def verify(raw: Path, denoised: Path, norm_scale: float, reconstruct_log: str) -> dict:
    """The output file against the input's, and the no-reference checks (in the run's normalised units: value / scale)."""
    import tifffile
    import torch

    with tifffile.TiffFile(raw) as t:
        a, axes_in = t.asarray(), t.series[0].axes
    with tifffile.TiffFile(denoised) as t:
        b, axes_out = t.asarray(), t.series[0].axes
    info = np.iinfo(b.dtype) if np.issubdtype(b.dtype, np.integer) else None
    out = {"dtype_in": str(a.dtype), "dtype_out": str(b.dtype), "shape_in": list(a.shape), "shape_out": list(b.shape),
           "axes_in": axes_in, "axes_out": axes_out, "scale": norm_scale,
           "clip_warning": "clipped" in reconstruct_log,
           "at_dtype_limits": int(((b == info.min) | (b == info.max)).sum()) if info else 0,
           "mean_in": float(a.mean()), "mean_out": float(b.mean()), "min_out": float(b.min()), "max_out": float(b.max())}
    y = torch.from_numpy(a.astype(np.float64) / norm_scale)[None, None]
    x_hat = torch.from_numpy(b.astype(np.float64) / norm_scale)[None, None]
    (raw, noise), (den, _) = noise_numbers(y, "raw frame"), noise_numbers(x_hat, "denoised output")
    out["noise"] = [raw, den]
    out["residual"] = residual_numbers(y, x_hat, noise)
    return out


def figure(raw: Path, denoised: Path, path: Path) -> None:
    """raw | denoised | residual: the full frame (2×2 binned to 512²) and a 256² crop; raw and denoised on one grey
    scale (the denoised frame's 1st–99.5th percentiles), the residual on its mean ± 3 standard deviations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile

    a, b = (tifffile.imread(p).astype(np.float64) for p in (raw, denoised))
    r = a - b
    lo, hi = np.percentile(b, [1, 99.5])
    mid, s = float(r.mean()), 3 * float(r.std())
    row, col, side = CROP

    def binned(v: np.ndarray) -> np.ndarray:
        h, w = v.shape
        return v[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean((1, 3))

    fig, axes = plt.subplots(2, 3, figsize=(11, 7.8))
    panels = [("raw frame", a, lo, hi), ("denoised (selfinv reconstruct)", b, lo, hi), ("residual raw − denoised", r, mid - s, mid + s)]
    for j, (title, v, vmin, vmax) in enumerate(panels):
        axes[0, j].imshow(binned(v), cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        axes[0, j].set_title(f"{title}\nfull 1024² (2×2 binned)", fontsize=10)
        axes[0, j].add_patch(plt.Rectangle((col / 2, row / 2), side / 2, side / 2, fill=False, color="tab:orange", lw=1))
        axes[1, j].imshow(v[row: row + side, col: col + side], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        axes[1, j].set_title(f"crop rows {row}-{row + side}, columns {col}-{col + side}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"PN2V Convallaria raw EMCCD frame (uint16); grey scale {lo:.0f}-{hi:.0f} counts, residual {mid:+.0f} ± {s:.0f}",
                 fontsize=11)
    fig.tight_layout(h_pad=2.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path, dpi=72)
    plt.close(fig)


def save_png(fig, path: Path, dpi: int) -> None:
    """The figure as a 128-colour palette PNG (grey panels and a few coloured marks: a third of the RGBA size)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=128).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--steps", type=int, default=None, help="a step budget (default: the config's own)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pn2v_cli"))
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md and benchmarks/figures/ alone")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section and figure from the stored results")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if args.rewrite:
        summary = json.loads((out / "summary.json").read_text())
    else:
        if not args.data:
            parser.error("give the data folder with --data or SELFINV_DATA")
        summary = run(Path(args.data).resolve(), out, args.steps)
    # with --no-write the figure goes to the results folder, not benchmarks/figures/
    figure(out / summary["raw"], out / summary["denoised"], (out if args.no_write else ROOT / "benchmarks" / "figures") / FIGURE)
    write(summary, args.no_write)


def run(data: Path, out: Path, steps: int | None) -> dict:
    from selfinv.engine import restore
    from selfinv.engine.comparison_report import machine_info

    source = data / "microscopy_fmd_w2s_real_noise" / RAW
    if not source.exists():
        raise SystemExit(f"{source}: not found")
    if out.exists():
        shutil.rmtree(out)
    (out / "raw").mkdir(parents=True)
    (out / "raw" / source.name).symlink_to(source)
    t0 = time.perf_counter()
    budget = ["--set", f"training.max_steps={steps}"] if steps else []
    log = [run_cli(["config", "init", "--task", "denoising", "--measurements", "raw", "-o", "pn2v.yaml"], out),
           run_cli(["check", "pn2v.yaml"], out),
           run_cli(["check", "pn2v.yaml", "--set", "noise={name: estimate}"], out),
           run_cli(["train", "pn2v.yaml", "--run-dir", "run", *budget], out),
           run_cli(["reconstruct", "run/best.pt", f"raw/{source.name}", "-o", "denoised"], out)]
    seconds = time.perf_counter() - t0
    epochs = metrics_summary(out / "run" / "metrics.csv")
    r = restore(out / "run" / "best.pt")
    summary = {"seconds": seconds, "steps": steps, "machine": machine_info("cpu"),
               "omp_threads": os.environ.get("OMP_NUM_THREADS"), "raw": f"raw/{source.name}",
               "denoised": f"denoised/{source.name}", "log": log, "config": (out / "pn2v.yaml").read_text(),
               "train_tail": [s for s in (log[3]["stdout"] + log[3]["stderr"]).splitlines() if s.strip()][-4:],
               "report": [s[2:] for s in (out / "run" / "report.md").read_text().splitlines() if s.startswith("- ")],
               "epochs": epochs,
               "checks": verify(out / "raw" / source.name, out / "denoised" / source.name, r.normalization.scale,
                                log[4]["stdout"] + log[4]["stderr"])}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def metrics_summary(path: Path) -> dict:
    """Epochs, steps and the epoch of the lowest validation loss (the one ``best.pt`` keeps) from ``metrics.csv``."""
    import csv

    rows = list(csv.DictReader(path.open()))
    best = min(rows, key=lambda r: float(r["val_loss"]))
    return {"epochs": len(rows), "steps": int(rows[-1]["step"]), "best_epoch": int(best["epoch"]),
            "best_step": int(best["step"]), "best_val_loss": float(best["val_loss"]),
            "last_val_loss": float(rows[-1]["val_loss"]), "train_loss": float(rows[-1]["train_loss"])}


def write(summary: dict, no_write: bool) -> None:
    import yaml
    from run import write_section

    m, log, c, e = summary["machine"], summary["log"], summary["checks"], summary["epochs"]
    threads = summary.get("omp_threads") or m["threads"]
    training = yaml.safe_load(summary["config"])["training"]
    budget = (f"`--set training.max_steps={summary['steps']}`" if summary["steps"] else
              f"the config's own (`training.epochs: {training['epochs']}`, `max_steps: {training['max_steps']}`)")
    raw_n, out_n = c["noise"]
    scale = c["scale"]
    lines = [
        "<!-- pn2v_cli:begin -->",
        f"Produced by `python benchmarks/pn2v_cli.py --data ../shared/data"
        f"{' --steps ' + str(summary['steps']) if summary['steps'] else ''}` ({summary['seconds'] / 60:.1f} min on "
        f"{m['cpu']}, {threads} threads, torch {m['torch']}). The frame: "
        "`PN2V_raw_noisy/20190520_tl_25um_50msec_05pc_488_130EM_Conv0000.tif` (Convallaria, the PN2V/DivNoising sample; "
        f"{'x'.join(map(str, c['shape_in']))} {c['dtype_in']}, raw EMCCD counts, mean {c['mean_in']:.0f}, no ground "
        "truth). The folder's other file (`..._wf_130EM_FD0000.tif`, a bright uniform disc) is a calibration frame "
        f"and is left out. Training budget: {budget}.",
        "",
        "The commands, as run in a fresh folder (`benchmarks/results/pn2v_cli/`; `raw/` holds a link to the file), "
        "and their wall times:",
        "",
        "```bash",
        "mkdir raw && ln -s \"$SELFINV_DATA/microscopy_fmd_w2s_real_noise/PN2V_raw_noisy/"
        "20190520_tl_25um_50msec_05pc_488_130EM_Conv0000.tif\" raw/",
        *[f"{r['command']}   # {r['seconds']:.1f} s" for r in log],
        "```",
        "",
        "What `check` printed (as written, the config says `noise: {name: unknown}`, so it lists the losses that need "
        "no noise model; the second `check` estimates the noise from the frame):",
        "",
        "```text",
        *check_lines(log[1]),
        *check_lines(log[2]),
        "```",
        "",
        f"Training: {e['steps']} steps in {e['epochs']} epochs ({'; '.join(summary['report'][1:2] + summary['report'][-1:])}); "
        f"`best.pt`, the lowest validation loss ({e['best_val_loss']:.3g}; last {e['last_val_loss']:.3g}), is from "
        f"epoch {e['best_epoch']} (step {e['best_step']}).",
        "",
        f"**The output file**: `denoised/{Path(summary['denoised']).name}`, {c['dtype_out']}, "
        f"{'x'.join(map(str, c['shape_out']))}, axes {c['axes_out']} (input: {c['dtype_in']}, "
        f"{'x'.join(map(str, c['shape_in']))}, {c['axes_in']}); clipping warning: "
        f"{'**yes**' if c['clip_warning'] else 'none'}; {c['at_dtype_limits']} pixels at the dtype's limits; values "
        f"{c['min_out']:.0f}–{c['max_out']:.0f}, mean {c['mean_out']:.1f} (input mean {c['mean_in']:.1f}).",
        "",
        f"**No-reference checks** (in the run's normalised units, counts / {scale:.1f}, the checkpoint's `auto` "
        "scale). The noise estimate of each frame (`selfinv.noise.estimate`, model auto: gain γ, σ and the black level "
        "c of Var y = γ(x − c) + σ²), the patch-PCA σ (a Gaussian reading) and the mean-variance fit's level σ² before "
        "it is clamped at 0:",
        "",
        "| frame | estimate (auto) | gain γ | σ | black level c | patch-PCA σ | fitted σ² (± s.e.) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for n in (raw_n, out_n):
        gain = f"{n['gain']:.5f}" if "gain" in n else ""
        offset = f"{n['offset']:.4f}" if "offset" in n else ""
        lines.append(f"| {n['label']} | {n['auto']} | {gain} | {n['sigma']:.5f} | {offset} | {n['pca_sigma']:.5f} | "
                     f"{n['fit_sigma2']:.2e} ± {n['fit_sigma2_se']:.1e} |")
    r = c["residual"]
    noise = ", ".join(f"{k} {v:.4g}" for k, v in r["noise"].items() if k != "name")
    lines += ["",
              f"`selfinv.noise.residual_check(y, x_hat, noise)` of the residual raw − denoised, with the raw frame's "
              f"estimate as the noise ({r['noise']['name']}: {noise}); the thresholds of its `warnings()` are a "
              "variance ratio of 0.8–1.25, |lag-1 autocorrelation| ≤ 0.1 and |correlation with the output's detail| ≤ 0.1:",
              "",
              "| variance ratio | lag-1 autocorr. y | lag-1 autocorr. x | corr. with output detail | residual std | "
              "warnings |",
              "|---:|---:|---:|---:|---:|---|",
              f"| {r['variance_ratio']:.2f} | {r['autocorrelation_y']:+.3f} | {r['autocorrelation_x']:+.3f} | "
              f"{r['signal_correlation']:+.3f} | {r['residual_std']:.4f} | {'; '.join(r['warnings']) or 'none'} |"]
    ratio = raw_n["pca_sigma"] / max(out_n["pca_sigma"], 1e-12)
    lines += ["",
              "How it is judged without ground truth: the output must keep the file's type, size and axes and the "
              f"frame's mean (here {c['mean_out']:.1f} vs {c['mean_in']:.1f}); the noise left in it, read the same way "
              f"as in the raw frame, must be far lower (patch-PCA σ {raw_n['pca_sigma']:.4f} → {out_n['pca_sigma']:.4f}, "
              f"÷{ratio:.1f}); and the part removed, raw − output, must look like the noise: of the noise model's "
              "variance, white (lag-1 autocorrelations near 0) and without the output's edges (near-0 correlation with "
              "its detail). These are necessary conditions, not a score: a residual that passes them can still hide a "
              "small bias, and over-smoothing shows as a variance ratio above 1 with edges in the residual panel.",
              "",
              f"![PN2V raw frame denoised with the CLI: raw, denoised, residual](benchmarks/figures/{FIGURE})",
              "",
              "<!-- pn2v_cli:end -->"]
    body = "\n".join(lines)
    print(body)
    if not no_write:
        write_section("pn2v_cli", "PN2V raw frame, end to end with the CLI (issue 14)", body)


if __name__ == "__main__":
    main()
