"""Run one benchmark experiment and regenerate its section of BENCHMARKS.md.

    python benchmarks/run.py gaussian_ladder [--data ../shared/data] [--preset cpu|gpu] [--out DIR]

Each experiment is a ``selfinv compare`` config in ``benchmarks/configs/`` plus the losses to compare and
the literature's numbers (../shared/reference/anchors.md). Data come from ``--data`` or ``SELFINV_DATA``.
The CPU preset fits in ≤ 30 minutes on 2 cores; ``--preset gpu`` scales model, patches and steps up.
Results: ``benchmarks/results/<experiment>/`` (results.json, results.md, comparison.png; not committed);
the section (table + figure copied to ``benchmarks/figures/``) is rewritten in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENTS = {
    "gaussian_ladder": {
        "title": "Gaussian denoising ladder",
        "losses": ["supervised", "noise2noise", "sure", "r2r", "unsure", "noise2score", "noise2self", "noise2void",
                   "neighbor2neighbor", "blind_spot", "autoencoder", "mc"],
        "gpu": ["training.max_steps=20000", "data.patches_per_image=16", "model.backbone.depth=17",
                "model.backbone.width=64", "data.test_size=256"],
        "literature": [
            ("Supervised (DnCNN, BSD68)", "29.20", "Net-SURE table [V]"),
            ("SURE (DnCNN-SURE, BSD68)", "28.97 (−0.23)", "Soltanayev & Chun 2018 [V]"),
            ("Noise2Noise", "≈ supervised (−0.02)", "NVlabs N2N README, Kodak/BSD300 RGB [V]"),
            ("R2R (50 test samples)", "≈ supervised −0.1…0.3", "Pang et al. 2021 [S/R]"),
            ("Neighbor2Neighbor", "supervised −0.35", "Kodak RGB [S]"),
            ("Noise2Void", "27.71 (−1.35 vs 29.06)", "Krull et al. 2019, BSD68 [S]"),
            ("BM3D (BSD68)", "28.56", "Net-SURE table [V]"),
            ("MC", "= noisy input (≈ 20.2)", "tutorial: f*(y) = y"),
        ],
    },
}


def literature_table(rows) -> list[str]:
    out = ["| method | literature (PSNR, dB) | source |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return out


def section(name: str, spec: dict, results: dict, seconds: float, preset: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    base = results.get("baseline") or {}
    sup = next((r for r in results["runs"] if r["loss"] == "supervised" and r.get("psnr") is not None), None)
    lines = [
        begin,
        f"Preset `{preset}`, {results['runs'][0].get('steps')} steps per loss, same model/data/seed; "
        f"{results.get('machine', {}).get('cpu', 'cpu')} with {results.get('machine', {}).get('threads', '?')} threads; "
        f"{seconds / 60:.1f} min in total. Regenerate with `python benchmarks/run.py {name} --preset {preset}`.",
        "",
        f"![{spec['title']}](benchmarks/figures/{name}.png)",
        "",
        "| loss | PSNR (dB) | Δ vs supervised | SSIM | network evals / step | s / step (median) | test s / image |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    if base:
        lines.append(f"| no learning (noisy input) | {base.get('psnr', float('nan')):.2f} | | {base.get('ssim', float('nan')):.3f} | | | |")
    for r in results["runs"]:
        if r.get("error"):
            lines.append(f"| {r['loss']} | failed: {r['error']} | | | | | |")
            continue
        delta = f"{r['psnr'] - sup['psnr']:+.2f}" if sup and r.get("psnr") is not None else ""
        lines.append(
            f"| {r['loss']} | {r['psnr']:.2f} | {delta} | {r['ssim']:.3f} | {r['network_evals_per_step']} | "
            f"{r['step_seconds_median']:.3f} | {r['test_seconds_per_image']:.3f} |"
        )
    lines += ["", "Literature, for comparison (different networks, data and budgets: compare gaps, not levels):", ""]
    lines += literature_table(spec["literature"])
    lines.append(end)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--preset", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out", default=None)
    parser.add_argument("--losses", default=None, help="comma-separated subset (default: the experiment's list)")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if not args.data:
        parser.error("give the data folder with --data or SELFINV_DATA")
    spec = EXPERIMENTS[args.experiment]
    from selfinv.cli.compare_cmd import run_comparison
    from selfinv.config import apply_overrides, parse_config, read_yaml

    text = (ROOT / "benchmarks" / "configs" / f"{args.experiment}.yaml").read_text()
    data = read_yaml_text(text.replace("${DATA}", str(Path(args.data).resolve())), read_yaml)
    overrides = spec["gpu"] + ["training.device=null"] if args.preset == "gpu" else []
    cfg = parse_config(apply_overrides(data, overrides))
    out = Path(args.out or ROOT / "benchmarks" / "results" / args.experiment)
    if out.exists():
        shutil.rmtree(out)  # results are regenerated, never hand-edited (benchmarks/results is not committed)
    losses = args.losses.split(",") if args.losses else spec["losses"]
    t0 = time.perf_counter()
    run_comparison(cfg, losses, out)
    seconds = time.perf_counter() - t0
    body = section(args.experiment, spec, json.loads((out / "results.json").read_text()), seconds, args.preset)
    print(body)
    if args.no_write:
        return
    (ROOT / "benchmarks" / "figures").mkdir(parents=True, exist_ok=True)
    if (out / "comparison.png").exists():
        shutil.copy(out / "comparison.png", ROOT / "benchmarks" / "figures" / f"{args.experiment}.png")
    bench = ROOT / "BENCHMARKS.md"
    doc = bench.read_text()
    begin, end = f"<!-- {args.experiment}:begin -->", f"<!-- {args.experiment}:end -->"
    if begin in doc:
        doc = doc[: doc.index(begin)] + body + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + f"\n\n## {spec['title']}\n\n" + body + "\n"
    bench.write_text(doc)


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
