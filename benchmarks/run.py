"""Run one benchmark experiment and regenerate its section of BENCHMARKS.md.

    python benchmarks/run.py EXPERIMENT [--data ../shared/data] [--preset cpu|gpu] [--out DIR]

An experiment is one or more parts; a part is a ``selfinv compare`` config in ``benchmarks/configs/`` plus
the runs to compare: loss names, or labelled :class:`~selfinv.engine.compare.Variant` runs (the config with
``--set``-style overrides: another assumed noise level, a mask per image, fewer training images...).
The experiments, their runs and the literature's numbers (../shared/reference/anchors.md) are in
``benchmarks/experiments.py``. Data come from ``--data`` or ``SELFINV_DATA``. Each CPU preset fits in ≤ 30
minutes on 2 cores except ``mri`` (about 70 minutes: its self-supervised runs need 3000 steps); ``--preset gpu`` scales model, patches and steps up. Results:
``benchmarks/results/<experiment>/<part>/`` (results.json, results.md, comparison.png; not committed); the
section (tables, figures copied to ``benchmarks/figures/``) is rewritten between its markers in
BENCHMARKS.md, and the hand-written discussion after the end marker is kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from experiments import EXPERIMENTS  # noqa: E402


def runs_of(part: dict):
    from selfinv.engine import Variant

    return [r if isinstance(r, str) else Variant(r[0], tuple(r[1])) for r in part["runs"]]


def load_part_config(part: dict, data_dir: str, preset: str, gpu: list[str], extra: list[str]):
    from selfinv.config import apply_overrides, parse_config, read_yaml

    text = (ROOT / "benchmarks" / "configs" / part["config"]).read_text().replace("${DATA}", str(Path(data_dir).resolve()))
    data = read_yaml_text(text, read_yaml)
    overrides = list(part.get("set", []))
    if preset == "gpu":
        overrides += list(gpu) + ["training.device=null"]
    overrides += list(extra)
    return parse_config(apply_overrides(data, [o.replace("${DATA}", str(Path(data_dir).resolve())) for o in overrides]))


def extra_test_sets(cfg, part: dict, data_dir: str) -> dict:
    from selfinv.config import apply_overrides, parse_config
    from selfinv.engine import build_test_set

    out = {}
    for label, overrides in part.get("extra_tests", {}).items():
        o = [s.replace("${DATA}", str(Path(data_dir).resolve())) for s in overrides]
        out[label] = build_test_set(parse_config(apply_overrides(cfg.model_dump(mode="json"), o)))
    return out


# ---------------------------------------------------------------------- classical references
def bm3d_rows(cfg, tests: dict) -> dict:
    """BM3D (the optional ``bm3d`` package) on every test set of a Gaussian denoising part: label → metrics."""
    try:
        import bm3d
    except ImportError:
        return {"error": "the optional bm3d package is not installed (pip install bm3d)"}
    import numpy as np
    import torch

    from selfinv.training.metrics import psnr, ssim

    sigma = float(cfg.noise.sigma)
    out: dict = {}
    for label, ds in tests.items():
        t0 = time.perf_counter()
        est = np.stack([bm3d.bm3d(ds.y[i, 0].numpy().astype(np.float64), sigma_psd=sigma) for i in range(len(ds))])
        seconds = (time.perf_counter() - t0) / len(ds)
        x_hat = torch.from_numpy(est[:, None]).to(ds.x.dtype)
        out[label] = {"psnr": float(psnr(x_hat, ds.x, cfg.data.data_range).mean()),
                      "ssim": float(ssim(x_hat, ds.x, cfg.data.data_range).mean()), "seconds_per_image": seconds}
    return out


# ---------------------------------------------------------------------- analyses
def learned_multipliers(results: dict, out: Path, cfg) -> list[str]:
    """UNSURE's learned multiplier η against σ² and the theory's σ²/(1 − MMSE/σ²) (MMSE from the supervised run)."""
    import torch

    from selfinv.training import load_checkpoint

    sup = next((r for r in results["runs"] if r["loss"] == "supervised" and r.get("psnr")), None)
    lines = ["| run | noise σ (true) | learned η | √η | σ² | predicted η̂ = σ²/(1 − MSE_sup/σ²) | MSE_sup | "
             "ZED error MSE + MSE²/(σ² − MSE), as PSNR |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    found = False
    for r in results["runs"]:
        if r.get("error") or not r["loss"].startswith("unsure"):
            continue
        state = load_checkpoint(Path(r["run_dir"]) / "last.pt").get("loss") or {}
        if "eta" not in state:
            continue
        found = True
        eta = torch.as_tensor(state["eta"], dtype=torch.float64)
        sigma = float(cfg.noise.sigma)
        if eta.numel() > 1:  # covariance variant: the centre entry estimates the variance σ²‖k‖²
            centre = eta.reshape(-1)[eta.numel() // 2]
            k = torch.as_tensor(cfg.noise.kernel, dtype=torch.float64) if cfg.noise.name == "correlated_gaussian" else None
            var = sigma**2 * float((k**2).sum()) if k is not None else sigma**2
            eta_v = float(centre)
        else:
            var, eta_v = sigma**2, float(eta)
        mse = 10 ** (-sup["psnr"] / 10) * cfg.data.data_range**2 if sup else float("nan")
        pred = var / (1 - mse / var) if sup and mse < var else float("nan")
        zed = mse + mse**2 / (var - mse) if sup and mse < var else float("nan")
        zed_psnr = 10 * math.log10(cfg.data.data_range**2 / zed) if zed == zed else float("nan")
        lines.append(f"| {r['loss']} | {math.sqrt(var):.4f} | {eta_v:.5f} | {math.sqrt(max(eta_v, 0)):.4f} | {var:.5f} | "
                     f"{pred:.5f} | {mse:.5f} | {zed_psnr:.2f} dB |")
    return lines if found else []


def sample_curve(results: dict, out: Path, name: str) -> list[str]:
    """Test PSNR against the number of training images (runs labelled ``loss@N``): a figure and a table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[int, float]] = {}
    for r in results["runs"]:
        if "@" in r["loss"] and r.get("psnr") is not None:
            loss, n = r["loss"].split("@")
            curves.setdefault(loss, {})[int(n)] = r["psnr"]
    if not curves:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for loss, pts in curves.items():
        ns = sorted(pts)
        ax.plot(ns, [pts[n] for n in ns], "o-", label=loss)
    if results.get("baseline", {}).get("psnr"):
        ax.axhline(results["baseline"]["psnr"], color="gray", ls="--", label="noisy input")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("test PSNR (dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=120)
    plt.close(fig)
    ns = sorted({n for pts in curves.values() for n in pts})
    lines = ["| training images | " + " | ".join(curves) + " | gap (dB) |", "|---:|" + "---:|" * (len(curves) + 1)]
    for n in ns:
        vals = [curves[c].get(n) for c in curves]
        gap = f"{vals[0] - vals[1]:+.2f}" if len(vals) == 2 and None not in vals else ""
        lines.append(f"| {n} | " + " | ".join("—" if v is None else f"{v:.2f}" for v in vals) + f" | {gap} |")
    return lines


# ---------------------------------------------------------------------- the section
def part_table(results: dict, classical: dict | None) -> list[str]:
    base = results.get("baseline") or {}
    runs = results["runs"]
    sup = next((r for r in runs if r["loss"] == "supervised" and r.get("psnr") is not None), None)
    extras = sorted({k for r in runs for k in r.get("extra", {})})
    per_run_base = any(r.get("baseline", base).get("psnr") != base.get("psnr") for r in runs if not r.get("error"))
    head = "| run | PSNR (dB) | Δ vs supervised | SSIM |"
    rule = "|---|---:|---:|---:|"
    if per_run_base:
        head, rule = head + " no learning (its data) |", rule + "---:|"
    for e in extras:
        head, rule = head + f" PSNR {e} |", rule + "---:|"
    head += " network evals / step | s / step (median) | train min | test s / image |"
    rule += "---:|---:|---:|---:|"
    lines = [head, rule]
    n_extra = len(extras) + (1 if per_run_base else 0)
    first = base.get("psnr")
    if first is not None:
        cells = [f"{first:.2f}", "", f"{base.get('ssim', float('nan')):.3f}"] + [""] * (1 if per_run_base else 0)
        for e in extras:
            eb = next((r["extra"][e]["baseline"]["psnr"] for r in runs if e in r.get("extra", {})), None)
            cells.append("" if eb is None else f"{eb:.2f}")
        lines.append("| no learning (baseline) | " + " | ".join(cells) + " | | | | |")
    if classical and "error" in classical:
        lines.append(f"| BM3D | not run: {classical['error']} |" + " |" * (2 + n_extra + 4))
    elif classical:
        main = classical["main"]
        cells = [f"{main['psnr']:.2f}", f"{main['psnr'] - sup['psnr']:+.2f}" if sup else "", f"{main['ssim']:.3f}"]
        cells += [""] * (1 if per_run_base else 0)
        cells += [f"{classical[e]['psnr']:.2f}" if e in classical else "" for e in extras]
        lines.append("| BM3D (classical, σ known) | " + " | ".join(cells) + f" | | | | {main['seconds_per_image']:.3f} |")
    for r in runs:
        if r.get("error"):
            lines.append(f"| {r['loss']} | failed: {r['error']} |" + " |" * (2 + n_extra + 4))
            continue
        delta = f"{r['psnr'] - sup['psnr']:+.2f}" if sup else ""
        cells = [f"{r['psnr']:.2f}", delta, f"{r['ssim']:.3f}"]
        if per_run_base:
            cells.append(f"{r['baseline']['psnr']:.2f}")
        cells += [f"{r['extra'][e]['psnr']:.2f}" if e in r.get("extra", {}) else "" for e in extras]
        cells += [str(r["network_evals_per_step"]), f"{r['step_seconds_median']:.3f}", f"{r['train_seconds'] / 60:.1f}",
                  f"{r['test_seconds_per_image']:.3f}"]
        lines.append(f"| {r['loss']} | " + " | ".join(cells) + " |")
    variants = [r for r in runs if r.get("overrides")]
    if variants:
        lines += ["", "Runs with overrides of the part's config: " + "; ".join(
            f"**{r['loss']}**: `{' ; '.join(r['overrides'])}`" for r in variants) + "."]
    return lines


def literature_table(rows) -> list[str]:
    out = ["| method | literature | source |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return out


def section(name: str, spec: dict, parts: list[tuple[dict, dict, dict, list[str]]], seconds: float, preset: str) -> str:
    first = parts[0][1]
    machine = first.get("machine", {})

    def budget(results: dict) -> tuple:
        return results["runs"][0].get("steps"), results.get("machine", {}).get("threads", "?")

    shared = len({budget(results) for _, results, _, _ in parts}) == 1  # else each part says its own
    steps, threads = budget(first)
    lines = [
        f"<!-- {name}:begin -->",
        f"Preset `{preset}`, " + (f"{steps} steps per run, " if shared else "steps and threads per part below, ")
        + f"the same model/data/seed within a part; {machine.get('cpu', 'cpu')}"
        + (f" with {threads} threads" if shared else "") + f", device `{machine.get('device', 'cpu')}`; "
        f"{seconds / 60:.1f} min in total. Regenerate with `python benchmarks/run.py {name} --preset {preset}`.",
    ]
    for part, results, classical, analysis in parts:
        if len(parts) > 1 or part.get("heading"):
            lines += ["", f"### {part.get('heading', part['key'])}"]
        if not shared:
            n_steps, n_threads = budget(results)
            lines += ["", f"{n_steps} steps per run, {n_threads} thread{'' if n_threads == 1 else 's'}."]
        if part.get("about"):
            lines += ["", part["about"]]
        fig = f"{name}-{part['key']}.png" if len(parts) > 1 else f"{name}.png"
        lines += ["", f"![{part.get('heading', spec['title'])}](benchmarks/figures/{fig})", ""]
        lines += part_table(results, classical)
        if analysis:
            lines += [""] + analysis
    lines += ["", "Literature, for comparison (different networks, data and budgets: compare gaps, not levels):", ""]
    lines += literature_table(spec["literature"])
    lines.append(f"<!-- {name}:end -->")
    return "\n".join(lines)


def write_section(name: str, title: str, body: str) -> None:
    bench = ROOT / "BENCHMARKS.md"
    doc = bench.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin in doc:
        doc = doc[: doc.index(begin)] + body + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + f"\n\n## {title}\n\n" + body + "\n"
    bench.write_text(doc)


def publish(name: str, title: str, body: str, figure: Path, no_write: bool) -> None:
    """Print a section; unless ``no_write``, copy its figure to benchmarks/figures/ (committed) and write the section
    into BENCHMARKS.md (:func:`write_section`)."""
    print(body)
    if no_write:
        return
    figures = ROOT / "benchmarks" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copy(figure, figures / figure.name)
    write_section(name, title, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--preset", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out", default=None)
    parser.add_argument("--parts", default=None, help="comma-separated part keys (default: all; writes no section)")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section from the stored results (no training)")
    parser.add_argument("--set", action="append", default=[], help="a further override of every part (smoke tests; writes no section)")
    args = parser.parse_args()
    if not args.data:
        parser.error("give the data folder with --data or SELFINV_DATA")
    spec = EXPERIMENTS[args.experiment]
    from selfinv.engine import build_test_set, run_comparison

    out_root = Path(args.out or ROOT / "benchmarks" / "results" / args.experiment)
    chosen = spec["parts"] if not args.parts else [p for p in spec["parts"] if p["key"] in args.parts.split(",")]
    t0 = time.perf_counter()
    done: list = []
    for part in chosen:
        cfg = load_part_config(part, args.data, args.preset, spec.get("gpu", []), args.set)
        out = out_root / part["key"]
        if args.rewrite:
            results = json.loads((out / "results.json").read_text())
            classical = json.loads((out / "bm3d.json").read_text()) if (out / "bm3d.json").exists() else None
            stored = out / "seconds.txt"  # older results: the training time of the runs
            t0 -= float(stored.read_text()) if stored.exists() else sum(r.get("train_seconds") or 0 for r in results["runs"])
        else:
            if out.exists():
                shutil.rmtree(out)  # results are regenerated, never hand-edited (benchmarks/results is not committed)
            started = time.perf_counter()
            extra = extra_test_sets(cfg, part, args.data)
            results = run_comparison(cfg, runs_of(part), out, extra_tests=extra).results
            classical = None
            if part.get("bm3d"):
                classical = bm3d_rows(cfg, {"main": build_test_set(cfg), **extra})
                (out / "bm3d.json").write_text(json.dumps(classical, indent=1))
            (out / "seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")
        analysis: list[str] = []
        if part.get("analysis") == "unsure_eta":
            analysis = learned_multipliers(results, out, cfg)
        elif part.get("analysis") == "curve":
            analysis = sample_curve(results, out, args.experiment)
        done.append((part, results, classical, analysis))
    seconds = time.perf_counter() - t0
    body = section(args.experiment, spec, done, seconds, args.preset)
    print(body)
    if args.no_write or args.parts or args.set:
        return
    figures = ROOT / "benchmarks" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for part, *_ in done:
        src = out_root / part["key"]
        png = src / ("curve.png" if part.get("analysis") == "curve" else "comparison.png")
        if png.exists():
            shutil.copy(png, figures / (f"{args.experiment}-{part['key']}.png" if len(done) > 1 else f"{args.experiment}.png"))
    write_section(args.experiment, spec["title"], body)


def read_yaml_text(text: str, read_yaml) -> dict:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return read_yaml(f.name)
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    main()
