"""BENCHMARKS.md section "Real multi-coil MRI (issue 15)": self-supervised reconstruction of one real 8-coil slice.

Data: ``mri_bart_brain_kspace/ksp.cfl`` (BART workshop, one 180×230 phase-encode plane of a 3-D brain scan, 8
coils, Poisson-disc variable-density undersampling to ~12.7 % with a fully sampled calibration centre) and
``img.cfl``, BART ``pics``'s reconstruction with 2 ESPIRiT map sets: its root-sum-of-squares magnitude over the 2
sets is the **reference** (another reconstruction from the same data, not ground truth). N = 1: one measurement.

Protocol. Coil maps: :func:`selfinv.physics.espirit_maps` of the calibration centre (its defaults, one map set;
the engine computes the same from each file). Scale: the engine's ``auto`` rule (99.5th percentile of
:math:`|A^H y|` becomes 1) on all acquired data; both k-space files below are written in these units and trained
with ``normalization: none``, so the two experiments share units. Two experiments:

* **all acquired points**: zero-filled :math:`A^H y`, CG-SENSE (10 iterations and ``A_dagger``'s default), BART
  pics, TV (:func:`selfinv.physics.solvers.tv_reconstruct`, λ chosen without a reference: 10 % of the acquired
  locations outside the calibration square are held out in all coils, TV runs on the rest over a λ grid, the λ
  of least held-out k-space error is rerun on everything), and networks trained through the engine on this one
  slice: SSDU (``splitting``, consistency none) with a MoDL-style unrolled network, EI with rotations (+ MC), and
  the same SSDU with ZS-SSL validation (20 % of the acquired entries held out, ``best.pt`` kept);
* **retrospective SSDU protocol**: the calibration square plus a random 50 % (seed 0) of the other acquired
  locations (all coils) is written as its own ``.cfl`` and every method runs on it; scores against BART pics
  and against our TV from all acquired points, and the error on the removed (measured) points.

Scores: every magnitude is scaled to the reference by the least-squares fit inside the support (reference > 10 %
of its max, holes filled, dilated 4 px); PSNR (data range = the reference's max) and SSIM
(:mod:`selfinv.training.metrics`) in the support (SSIM on its bounding box) and over the full image; the data fit
‖Ax − y‖/‖y‖ on the acquired points of each experiment (no reference needed).

Usage: ``python benchmarks/real_mri.py --data ../shared/data [--steps 150] [--runs ssdu,ei] [--no-write] [--rewrite]``.
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

NAME, TITLE, FOLDER = "real_mri", "Real multi-coil MRI (issue 15)", "mri_bart_brain_kspace"
SEED, TV_HOLDOUT, TV_ITER, KEEP, CG_FEW, ZS_HOLDOUT, PLAIN_HOLDOUT = 0, 0.10, 300, 0.5, 10, 0.2, 0.02
LAMBDAS = [float(v) for v in np.geomspace(3e-4, 3e-2, 5)]  # TV weights in the normalised units
WRAPPER = {"name": "unrolled", "mode": "modl", "iterations": 5, "cg_iterations": 5, "init": "adjoint", "lipschitz": 1.0}
MODEL = {"backbone": {"name": "dncnn", "depth": 5, "width": 16, "batch_norm": False}, "wrapper": WRAPPER}
RUNS = [("ssdu", ["loss.name=splitting"], "last.pt"),
        ("ei", ["loss.name=ei", "loss.transform={name: rotate, degrees: [-180, 180]}"], "last.pt"),
        ("ssdu-zsssl", ["loss.name=splitting", f"data.val_holdout={ZS_HOLDOUT}"], "best.pt")]
LABELS = {"zf": "zero-filled A^H y", "cg10": f"CG-SENSE, {CG_FEW} it.", "cg": "CG-SENSE, A_dagger default (tol 1e-6, ≤ 200 it.)",
          "bart": "BART pics (the reference)", "tv": "TV", "ssdu": "SSDU, unrolled (splitting)",
          "ei": "EI, rotations + MC, unrolled", "ssdu-zsssl": "SSDU + ZS-SSL validation"}
COLUMNS = [("zf", "zero-filled"), ("cg10", f"CG-SENSE {CG_FEW} it."), ("tv", "TV"), ("ssdu", "SSDU unrolled"),
           ("ei", "EI rotations"), ("bart", "BART pics")]


def load(data: Path):
    """K-space (1, C, H, W) complex64 and the reference magnitude (H, W) (RSS over BART's 2 map sets)."""
    from selfinv.data.bart import read_cfl
    from selfinv.data.kspace import read_kspace

    y = read_kspace(data / FOLDER / "ksp.cfl")
    img = read_cfl(data / FOLDER / "img.cfl")
    if tuple(y.shape) != (1, 8, 180, 230) or img.shape != (1, 180, 230, 1, 2):
        raise SystemExit(f"{FOLDER}: unexpected shapes {tuple(y.shape)}, {img.shape}")
    return y, np.sqrt((np.abs(img[0, :, :, 0]) ** 2).sum(-1)).astype(np.float64)


def operator(y: torch.Tensor):
    """The SENSE operator of k-space y (its acquired locations: non-zero in any coil) with ESPIRiT maps of y's centre."""
    from selfinv.physics import MultiCoilMRI, espirit_maps

    mask = (y != 0).any(1)[0].numpy()
    return MultiCoilMRI(torch.from_numpy(mask.astype(np.float32)), espirit_maps(y)), mask


def calibration(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The fully sampled centre square (as ``espirit_maps`` finds it) and its side."""
    from selfinv.physics.coil_maps import calibration_size

    side = int(calibration_size(torch.from_numpy(mask)[None, None].float())[0])
    c = np.zeros_like(mask)
    h, w = mask.shape
    c[h // 2 - side // 2:h // 2 - side // 2 + side, w // 2 - side // 2:w // 2 - side // 2 + side] = True
    return c, side


def pick(where: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` locations of ``where`` drawn uniformly without replacement (a fixed seed)."""
    idx = np.flatnonzero(where)
    out = np.zeros(where.size, dtype=bool)
    out[np.random.default_rng(seed).choice(idx, size=count, replace=False)] = True
    return out.reshape(where.shape)


def rel_err(op, x, y, where=None) -> float:
    """‖W(Ax − y)‖ / ‖W y‖ on the locations ``where`` (default: everything y holds)."""
    r, t = op.A(x) - y, y
    if where is not None:
        w = torch.from_numpy(where)
        r, t = r * w, t * w
    return float(r.norm() / t.norm())


def classical(op, y, mask, calib) -> tuple[dict, dict]:
    """Zero-filled, CG-SENSE and TV (λ by held-out k-space error) of one experiment: rows and the λ search."""
    from selfinv.physics import MultiCoilMRI
    from selfinv.physics.solvers import tv_reconstruct

    rows = {}
    for key, fn in (("zf", op.A_adjoint), ("cg10", lambda v: op.A_dagger(v, max_iter=CG_FEW)), ("cg", op.A_dagger)):
        t0 = time.perf_counter()
        rows[key] = (fn(y), time.perf_counter() - t0)
    held = pick(mask & ~calib, round(TV_HOLDOUT * mask.sum()), SEED + 1)
    rest = torch.from_numpy(mask & ~held)
    op_in = MultiCoilMRI(rest.float(), op.coil_maps)
    t0 = time.perf_counter()
    errors = [rel_err(op, tv_reconstruct(op_in, y * rest, lam, n_iter=TV_ITER), y, held) for lam in LAMBDAS]
    lam = LAMBDAS[int(np.argmin(errors))]
    search = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows["tv"] = (tv_reconstruct(op, y, lam, n_iter=TV_ITER), time.perf_counter() - t0)
    return rows, {"lambdas": LAMBDAS, "held_out_errors": errors, "lam": lam, "held_out_locations": int(held.sum()),
                  "search_seconds": search}


def config(path: Path) -> dict:
    return {"data": {"source": "measurements", "path": str(path), "normalization": "none", "val_holdout": PLAIN_HOLDOUT},
            "physics": {"name": "multicoil_mri", "coil_maps": "espirit"}, "noise": {"name": "unknown"},
            "loss": {"name": "splitting", "consistency": "none", "split_ratio": 0.6}, "model": MODEL,
            "training": {"batch_size": 1, "epochs": 100000, "val_every": 10}, "seed": SEED}


def train(path: Path, out: Path, steps: int, chosen: list) -> dict:
    from selfinv.config import parse_config
    from selfinv.engine import Variant, run_comparison

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_comparison(parse_config(config(path)), [Variant(k, tuple(o)) for k, o, _ in chosen], out, steps).results


def apply_run(ckpt: Path, y: torch.Tensor, op) -> tuple[torch.Tensor, int]:
    """The trained network on all the experiment's acquired data (as ZS-SSL and SSDU test), and its step."""
    from selfinv.engine import restore
    from selfinv.losses.base import estimate

    r = restore(ckpt)
    s = r.normalization.scale
    with torch.no_grad():
        x = estimate(r.estimator(), (y / s).to(r.device), op.to(r.device), torch.Generator().manual_seed(SEED))
    op.to("cpu")
    return x.cpu() * s, r.step


def support(ref: np.ndarray):
    from scipy.ndimage import binary_dilation, binary_fill_holes

    sup = binary_dilation(binary_fill_holes(ref > 0.1 * ref.max()), iterations=4)
    rows, cols = np.flatnonzero(sup.any(1)), np.flatnonzero(sup.any(0))
    return sup, (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))


def scores(mag: np.ndarray, ref: np.ndarray, sup, box) -> tuple[dict, np.ndarray]:
    """PSNR/SSIM of ``mag`` after its least-squares scale to ``ref`` (fitted in the support); the scaled image."""
    from selfinv.training.metrics import psnr, ssim

    a = float((mag[sup] * ref[sup]).sum() / max(float((mag[sup] ** 2).sum()), 1e-30))
    m, r = a * mag, float(ref.max())

    def t(v):
        return torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64))[None, None]

    return {"psnr_support": float(psnr(t(m[sup]), t(ref[sup]), r)), "ssim_support": float(ssim(t(m[box]), t(ref[box]), r)),
            "psnr_full": float(psnr(t(m), t(ref), r)), "ssim_full": float(ssim(t(m), t(ref), r))}, m


def run_experiment(key: str, y, op, mask, calib, runs: dict | None, out: Path, chosen, y_all=None, op_all=None,
                   refs=None) -> dict:
    """Every row of one experiment: classical reconstructions, then the trained runs; saves scaled magnitudes."""
    rows, tv = classical(op, y, mask, calib)
    images = {k: (x, s, None) for k, (x, s) in rows.items()}
    for label, _, ckpt in chosen:
        r = next((v for v in (runs or {}).get("runs", []) if v["loss"] == label), None)
        if r is None or r.get("error"):
            images[label] = (None, None, r["error"] if r else "not run")
            continue
        t0 = time.perf_counter()
        try:
            x, r["checkpoint_step"] = apply_run(out / f"compare-{key}" / "runs" / label / ckpt, y, op)
        except Exception as e:  # noqa: BLE001 - one run failing at test time must not lose the others
            images[label] = (None, None, f"at test time: {type(e).__name__}: {e}")
            continue
        images[label] = (x, r["train_seconds"] + time.perf_counter() - t0, None)
    sup, box = refs["support"]
    (out / "outputs" / key).mkdir(parents=True, exist_ok=True)
    result = []
    for k, (x, seconds, error) in images.items():
        row = {"key": k, "label": LABELS[k] + (f" (λ = {tv['lam']:.2g})" if k == "tv" else ""), "seconds": seconds}
        if x is None:
            result.append({**row, "error": error})
            continue
        mag = x[0, 0].abs().double().numpy()
        row["vs_bart"], scaled = scores(mag, refs["bart"], sup, box)
        np.save(out / "outputs" / key / f"{k}.npy", scaled.astype(np.float32))
        row["data_fit"] = rel_err(op, x, y)
        if y_all is not None:
            row["vs_tv_all"] = scores(mag, refs["tv_all"], sup, box)[0]
            row["removed_error"] = rel_err(op_all, x, y_all, refs["removed"])
        if k in ("ssdu", "ei", "ssdu-zsssl"):
            r = next(v for v in runs["runs"] if v["loss"] == k)
            row.update(steps=r["steps"], step_seconds=r["step_seconds_median"], train_seconds=r["train_seconds"],
                       checkpoint=next(c for lab, _, c in chosen if lab == k), checkpoint_step=r["checkpoint_step"])
        result.append(row)
    return {"rows": result, "tv": tv, "acquired": int(mask.sum()), "fraction": float(mask.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--runs", default=None, help="comma-separated network runs (default: all; smoke tests)")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section and figure from the stored results")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / NAME
    if args.rewrite:
        summary = json.loads((out / "summary.json").read_text())
        figure(summary, out, out / f"{NAME}.png")
        write(summary, out, args.no_write)
        return
    if not args.data:
        parser.error("give the data folder with --data or SELFINV_DATA")
    chosen = RUNS if not args.runs else [r for r in RUNS if r[0] in args.runs.split(",")]
    if args.runs and not chosen:
        parser.error(f"--runs: none of {args.runs!r} is one of {', '.join(r[0] for r in RUNS)}")
    from selfinv.data.bart import write_cfl
    from selfinv.data.sources import auto_normalization
    from selfinv.engine.comparison_report import machine_info

    if out.exists():
        shutil.rmtree(out)  # results are regenerated, never hand-edited (benchmarks/results is not committed)
    (out / "data").mkdir(parents=True)
    t0 = time.perf_counter()
    raw, bart = load(Path(args.data).resolve())
    op, mask = operator(raw)
    scale = auto_normalization(raw, op).scale  # the engine's "auto" rule, applied once to all acquired data
    y = raw / scale
    calib, side = calibration(mask)
    others = mask & ~calib
    keep = calib & mask | pick(others, round(KEEP * others.sum()), SEED)
    y_r = y * torch.from_numpy(keep)
    op_r, _ = operator(y_r)  # ESPIRiT of the retrospective file's own centre (the same calibration square)
    files = {}
    for key, k in (("all", y), ("retro", y_r)):
        files[key] = out / "data" / f"ksp_{key}.cfl"
        write_cfl(files[key], k[0].permute(1, 2, 0)[None].numpy())  # BART order: 1, H, W, coils
    prepared = time.perf_counter() - t0
    trained = {key: train(files[key], out / f"compare-{key}", args.steps, chosen) if chosen else None for key in files}
    sup = support(bart)
    full = run_experiment("all", y, op, mask, calib, trained["all"], out, chosen, refs={"bart": bart, "support": sup})
    tv_all = np.load(out / "outputs" / "all" / "tv.npy").astype(np.float64)  # scaled to the reference already
    refs = {"bart": bart, "support": sup, "tv_all": tv_all, "removed": mask & ~keep}
    retro = run_experiment("retro", y_r, op_r, keep, calib, trained["retro"], out, chosen, y, op, refs)
    np.save(out / "outputs" / "all" / "bart.npy", bart.astype(np.float32))
    full["rows"].insert(3, {"key": "bart", "label": LABELS["bart"], "seconds": None, "vs_bart": None, "data_fit": None})
    summary = {"seconds": time.perf_counter() - t0, "prepare_seconds": prepared, "steps": args.steps, "scale": scale,
               "calibration": side, "shape": list(y.shape), "machine": machine_info("cuda" if torch.cuda.is_available() else "cpu"), "all": full, "retro": retro,
               "maps_equal": bool(torch.allclose(op.coil_maps, op_r.coil_maps, atol=1e-4)),
               "runs_chosen": [c[0] for c in chosen], "model": MODEL}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    figure(summary, out, out / f"{NAME}.png")
    write(summary, out, args.no_write)


def figure(summary: dict, out: Path, path: Path) -> None:
    """Scaled magnitudes (rows: all points, retrospective) and their errors against BART, one grey scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    ref = np.load(out / "outputs" / "all" / "bart.npy")
    hi = float(np.percentile(ref, 99.5))
    fig, axes = plt.subplots(4, len(COLUMNS), figsize=(2.0 * len(COLUMNS), 7.4), layout="constrained")
    for i, exp in enumerate(("all", "retro")):
        rows = {r["key"]: r for r in summary[exp]["rows"]}
        for j, (key, title) in enumerate(COLUMNS):
            if exp == "retro" and key == "bart":
                key, title = "tv", "TV, all points (2nd ref.)"
                exp_file = out / "outputs" / "all" / "tv.npy"
            else:
                exp_file = out / "outputs" / exp / f"{key}.npy"
            top, err = axes[2 * i, j], axes[2 * i + 1, j]
            top.axis("off")
            err.axis("off")
            if not exp_file.exists():
                top.set_title(f"{title}\nnot run", fontsize=7.5)
                continue
            m = np.load(exp_file)
            r = rows.get(key, {}) if not title.startswith("TV, all") else {}
            sub = "" if not r.get("vs_bart") else f"{r['vs_bart']['psnr_support']:.1f} dB / {r['vs_bart']['ssim_support']:.3f}"
            top.imshow(m, cmap="gray", vmin=0, vmax=hi, interpolation="nearest")
            top.set_title(f"{title}\n{sub}", fontsize=7.5)
            if key != "bart":
                err.imshow(np.abs(m - ref), cmap="gray", vmin=0, vmax=hi / 5, interpolation="nearest")
                err.set_title("|error vs BART| ×5", fontsize=7)
    fig.suptitle("Top: all acquired points (12.7 %); bottom: retrospective (calibration + 50 % of the rest). Magnitudes "
                 "LS-scaled to BART pics, one grey scale; PSNR / SSIM in the support vs BART", fontsize=8.5)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80, format="png")
    plt.close(fig)
    Image.open(buf).convert("L").save(path, optimize=True)


def table(exp: dict, retro: bool) -> list[str]:
    if retro:
        head = ["| method (retrospective data) | PSNR / SSIM vs BART, support | PSNR full vs BART | PSNR / SSIM vs TV-all, "
                "support | data fit, kept points | error on the removed points | time s |", "|---|---:|---:|---:|---:|---:|---:|"]
    else:
        head = ["| method (all acquired points) | PSNR support (dB) | SSIM support | PSNR full | SSIM full | data fit "
                "‖Ax−y‖/‖y‖ | time s |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines = list(head)
    for r in exp["rows"]:
        label = r["label"] + (f", {r['steps']} steps, {r['checkpoint']} (step {r['checkpoint_step']})" if r.get("steps") else "")
        if r.get("error"):
            lines.append(f"| {label} | failed: {r['error']} |" + " |" * (len(head[1].split("|")) - 4))
            continue
        v, t = r.get("vs_bart"), "" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        if r["key"] == "bart":
            lines.append(f"| {label} | reference | | | | n/a (other maps) | |")
        elif retro:
            w = r["vs_tv_all"]
            lines.append(f"| {label} | {v['psnr_support']:.2f} / {v['ssim_support']:.3f} | {v['psnr_full']:.2f} | "
                         f"{w['psnr_support']:.2f} / {w['ssim_support']:.3f} | {r['data_fit']:.4f} | {r['removed_error']:.4f} | {t} |")
        else:
            lines.append(f"| {label} | {v['psnr_support']:.2f} | {v['ssim_support']:.3f} | {v['psnr_full']:.2f} | "
                         f"{v['ssim_full']:.3f} | {r['data_fit']:.4f} | {t} |")
    return lines


def reading(summary: dict) -> list[str]:
    """The honest reading, from the numbers."""
    out = []
    for exp, words in (("all", "With all acquired points"), ("retro", "On the retrospective data")):
        rows = [r for r in summary[exp]["rows"] if r.get("vs_bart")]
        best = max(rows, key=lambda r: r["vs_bart"]["psnr_support"])
        tv = next(r for r in rows if r["key"] == "tv")
        nets = [r for r in rows if r.get("steps")]
        s = (f"{words}, the closest to BART pics in the support is {best['label']} "
             f"({best['vs_bart']['psnr_support']:.2f} dB, SSIM {best['vs_bart']['ssim_support']:.3f}).")
        for n in nets:
            d = n["vs_bart"]["psnr_support"] - tv["vs_bart"]["psnr_support"]
            s += f" {n['label']}: {d:+.2f} dB against TV"
            if exp == "retro":
                s += f", removed-point error {n['removed_error']:.4f} vs TV's {tv['removed_error']:.4f}"
            s += ";"
        out.append(s.rstrip(";") + ("." if nets else ""))
    rows = [r for r in summary["retro"]["rows"] if r.get("vs_bart")]
    if len(rows) > 2:
        a = np.argsort(np.argsort([r["removed_error"] for r in rows]))
        b = np.argsort(np.argsort([-r["vs_bart"]["psnr_support"] for r in rows]))
        rho = float(np.corrcoef(a, b)[0, 1])
        out.append(f"The measured check and the reference agree {'well' if rho > 0.7 else 'only partly' if rho > 0.3 else 'poorly'}: "
                   f"the rank correlation between the error on the removed points (lower is better) and PSNR vs BART "
                   f"(higher is better) over the {len(rows)} retrospective rows is {rho:+.2f}. The removed points are real "
                   "measurements no method saw, so this column needs no reference; PSNR vs BART measures resemblance to "
                   "another regularised reconstruction, not accuracy.")
    rows = [r for r in summary["all"]["rows"] if r.get("data_fit") is not None]
    lo, hi = min(rows, key=lambda r: r["data_fit"]), max(rows, key=lambda r: r["data_fit"])
    out.append(f"The data fit alone does not rank methods: {lo['label']} fits the acquired points best "
               f"({lo['data_fit']:.4f}, {lo['vs_bart']['psnr_support']:.2f} dB), {hi['label']} worst ({hi['data_fit']:.4f}).")
    gap = [r for r in rows if r.get("steps") and r["vs_bart"]["psnr_full"] < r["vs_bart"]["psnr_support"] - 3]
    if gap:
        out.append(f"Full-image PSNR of {', '.join(r['key'] for r in gap)} falls far below the support's: outside the "
                   "ESPIRiT support the maps are zero, A sees nothing there, and the unrolled network's output (its "
                   "denoiser's, since the data-consistency step leaves those pixels alone) is constrained by no loss.")
    return out


def write(summary: dict, out: Path, no_write: bool) -> None:
    from run import publish

    m, a, r = summary["machine"], summary["all"], summary["retro"]
    nets = {row["key"]: row for row in a["rows"] if row.get("steps")}
    step = ", ".join(f"{k} {v['step_seconds']:.2f}" for k, v in nets.items() if v.get("step_seconds"))
    lam = "; ".join(f"{w}: λ = {e['tv']['lam']:.2g} (grid {', '.join(f'{v:.2g}' for v in e['tv']['lambdas'])}; held-out "
                    f"errors {', '.join(f'{v:.4f}' for v in e['tv']['held_out_errors'])}"
                    f"{'; at the edge of the grid' if e['tv']['lam'] in (e['tv']['lambdas'][0], e['tv']['lambdas'][-1]) else ''}; "
                    f"{e['tv']['search_seconds']:.0f} s)"
                    for w, e in (("all points", a), ("retrospective", r)))
    lines = [
        f"<!-- {NAME}:begin -->",
        f"Produced by `python benchmarks/real_mri.py --data ../shared/data --steps {summary['steps']}` "
        f"({summary['seconds'] / 60:.1f} min on {m['cpu']}, {m['threads']} threads, device {m['device']}, torch {m['torch']}). "
        f"`{FOLDER}`: one real 8-coil slice (180×230, BART workshop), Poisson-disc undersampled to "
        f"{100 * a['fraction']:.1f} % ({a['acquired']} locations) with a fully sampled {summary['calibration']}² "
        "calibration square. N = 1: every method sees this one measurement.",
        "",
        "**Reference.** BART `pics`'s reconstruction in the folder, root-sum-of-squares over its 2 ESPIRiT map sets: "
        "another regularised reconstruction of the same data, **not ground truth**. Each magnitude is scaled to it by "
        "the least-squares fit inside the support (reference > 10 % of its max, holes filled, dilated 4 px); PSNR "
        "uses data range = the reference's max, SSIM is `selfinv.training.metrics.ssim` (support: its bounding box).",
        "",
        f"**Setup.** Coil maps: `espirit_maps` (sigpy ESPIRiT, defaults, calibration {summary['calibration']}²), "
        "**one** map set — soft-SENSE with 2 sets is not supported, BART used 2, so BART's data fit through our "
        f"operator is not defined (n/a). Scale: the engine's `auto` rule (99.5th percentile of |A^H y| → 1) divides the "
        f"k-space by {summary['scale']:.4g}; both files are trained with `normalization: none`. TV: "
        f"`selfinv.physics.solvers.tv_reconstruct` ({TV_ITER} PDHG iterations); λ without a reference — {lam}. Networks: "
        f"a MoDL-style `unrolled` wrapper (5 iterations, 5 CG steps of data consistency, x₀ = A^H y) around one "
        f"shared DnCNN (depth 5, width 16, no batch norm: one image per batch), Adam 1e-3 cosine, batch 1, {summary['steps']} steps each; SSDU = "
        "`splitting` (split 0.6, consistency none), EI = `ei` with `rotate` of any angle (the slice is not square, "
        "90° rotations are refused) + MC. With one measurement the engine always holds out `data.val_holdout` of "
        f"the acquired entries for validation: the SSDU and EI runs use {PLAIN_HOLDOUT:.0%} and keep `last.pt`; the "
        f"ZS-SSL run {ZS_HOLDOUT:.0%} and keeps `best.pt` (least held-out k-space error, checked every 10 steps). "
        f"Every network is then applied to all the experiment's acquired data. Median s / step: {step or 'n/a'}; "
        "the time column holds training + inference for the networks.",
        "",
        *table(a, False),
        "",
        f"**Retrospective SSDU protocol.** Kept: the calibration square plus {KEEP:.0%} (seed {SEED}) of the other "
        f"acquired locations, all coils ({100 * r['fraction']:.1f} % of k-space, {r['acquired']} locations), written as "
        "its own `.cfl`; every method reruns on it (ESPIRiT from its own centre, "
        f"{'identical maps' if summary['maps_equal'] else 'maps differ from the full data'}). Scored against BART "
        "pics and against our TV from all acquired points (LS-scaled to BART), and by the relative error "
        "‖R(Ax − y)‖/‖Ry‖ on the removed locations R: real measurements none of the methods saw.",
        "",
        *table(r, True),
        "",
        f"![All points and the retrospective data: every method, LS-scaled, and its error vs BART](benchmarks/figures/{NAME}.png)",
        "",
        "**Not run.** MOI needs several operators; a single scan has one, so it cannot apply. `noisier2noise` in "
        "selfinv adds Gaussian noise for denoising, not the k-space-mask variant (Millard & Chiew 2023).",
        "",
        "**Reading.** " + " ".join(reading(summary)),
        f"<!-- {NAME}:end -->",
    ]
    publish(NAME, TITLE, "\n".join(lines), out / f"{NAME}.png", no_write)


if __name__ == "__main__":
    main()
