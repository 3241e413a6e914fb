"""BENCHMARKS.md section "The SURE gap": why SURE trails supervised training, a controlled study (issue 12).

Every run uses the Gaussian ladder's data (noisy 40² crops of train400, σ = 25/255, Set12 central 128² crops for
the test) and seed; one factor changes at a time against the default SURE:

* the finite-difference step of the Monte-Carlo divergence, τ = τ_rel · max|y| (default 1e-3, i.e. σ/100 here),
  up to σ;
* the number of probes (the variance of the divergence estimate);
* the residual parametrisation f(y) = y − net(y) (the DnCNN default) against a plain network;
* the loss scale under Adam (a ×1000 weight: Adam is invariant to it up to ε, so the per-pixel normalisation of
  the estimate cannot matter);
* the learning-rate schedule (cosine against constant);
* the budget (400 and 1200 steps) and the network (the ladder's DnCNN, a 1.9 M-parameter U-Net).

Usage: ``python benchmarks/sure_gap.py --data ../shared/data [--parts dncnn,long,unet] [--no-write] [--rewrite]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

UNET = ["model.backbone={name: unet, depth: 3, width: 32}", "model.wrapper={name: none}"]


def sure(tau_rel: float) -> tuple[str, tuple[str, ...]]:
    return (f"sure-tau{tau_rel:g}", ("loss.name=sure", f"loss.tau_rel={tau_rel}"))


OLD = "loss.tau_rel=0.001"  # the default before this study (Metzler et al.'s max(y)/1000); the factors below were varied at it

#: the parts: (key, heading, steps, overrides of every run, runs)
PARTS = [
    ("dncnn", "DnCNN 8×32 (56 k parameters), 400 steps", 400, [], [
        "supervised", ("sure", ("loss.name=sure", OLD)), sure(1e-2), sure(3e-2), sure(1e-1),
        ("sure-4-probes", ("loss.name=sure", "loss.n_probes=4", OLD)),
        ("sure-weight-1000", ("loss.name=sure", "loss.weight=1000", OLD)),
        ("supervised-plain", ("loss.name=supervised", "model.backbone.residual=false")),
        ("sure-plain", ("loss.name=sure", "model.backbone.residual=false", OLD)),
        ("supervised-constant-lr", ("loss.name=supervised", "training.scheduler=none")),
        ("sure-constant-lr", ("loss.name=sure", "training.scheduler=none", OLD)),
    ]),
    ("long", "DnCNN 8×32, 1200 steps", 1200, [], ["supervised", ("sure", ("loss.name=sure", OLD)), sure(1e-2), sure(3e-2)]),
    ("unet", "U-Net depth 3, width 32 (1.9 M parameters), 600 steps", 600, UNET,
     ["supervised", ("sure", ("loss.name=sure", OLD)), sure(1e-2), sure(3e-2)]),
]

#: how the runs are labelled in the section (τ is the step of the Monte-Carlo divergence)
LABELS = {"sure": "sure, τ_rel = 1e-3 (the old default)", "sure-tau0.01": "sure, τ_rel = 1e-2 (the new default)",
          "sure-tau0.03": "sure, τ_rel = 3e-2", "sure-tau0.1": "sure, τ_rel = 0.1 (τ ≈ σ)",
          "sure-4-probes": "sure, τ_rel = 1e-3, 4 probes", "sure-weight-1000": "sure, τ_rel = 1e-3, loss × 1000",
          "supervised-plain": "supervised, plain DnCNN (no skip)", "sure-plain": "sure, τ_rel = 1e-3, plain DnCNN",
          "supervised-constant-lr": "supervised, constant lr", "sure-constant-lr": "sure, τ_rel = 1e-3, constant lr"}

DISCUSSION = """**What the study finds.** The estimator was unbiased all along; its *gradient* was too noisy. With τ = 10⁻³·max|y|
(σ/100 here) the finite difference bᵀ(h(y+τb) − h(y))/τ almost never crosses a ReLU's kink, so its derivative
with respect to the parameters that move the kinks (every bias before a ReLU) is a rare large term: unbiased
(it is the finite-difference version of the Stein gradient, see issue 12 item 1) but of variance ∝ 1/τ. The
remedies line up with that: four probes (a quarter of the variance) recover 0.3 dB, τ = 10⁻² (σ/10) recovers
0.5 dB at 400 steps and 0.6 dB at 1200 steps, and the gap no longer widens with training (−0.43 → −0.25 dB,
against −0.96 → −0.88 at 10⁻³), the sign of a variance problem rather than a bias. Past τ ≈ σ/3 the O(τ²) bias of
the finite difference takes over (τ = 3·10⁻² is already worse at 1200 steps, τ ≈ σ fails), so 10⁻² — DeepInverse's
default and the MC-SURE reference code's 0.01 — is the new default of `SURE` and the three UNSURE losses.
The other suspects are cleared: scaling the loss by 1000 changes nothing beyond the run-to-run spread (Adam is
scale invariant; −0.16 dB); a plain (non-residual) DnCNN lowers supervised and SURE alike; a constant learning
rate helps supervised by 0.2 dB and SURE by nothing. With the U-Net the gap goes from −0.70 to −0.19 dB, where
DeepInverse's SURE lands (0.2 dB) on the same data and budget. Remaining at the ladder's 400 steps: −0.43 dB with
the DnCNN (the issue's target is −0.3); it is −0.25 after 1200 steps."""


def table(results: dict) -> list[str]:
    runs = {r["loss"]: r for r in results["runs"]}
    sup = runs.get("supervised", {}).get("psnr")
    rows = ["| run | PSNR (dB) | Δ vs supervised | SSIM |", "|---|---:|---:|---:|"]
    b = results["baseline"]
    rows.append(f"| noisy (no learning) | {b['psnr']:.2f} | | {b['ssim']:.3f} |")
    for r in results["runs"]:
        if r.get("error"):
            rows.append(f"| {r['loss']} | failed: {r['error']} | | |")
            continue
        delta = "" if sup is None else f"{r['psnr'] - sup:+.2f}"
        rows.append(f"| {LABELS.get(r['loss'], r['loss'])} | {r['psnr']:.2f} | {delta} | {r['ssim']:.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--parts", default=None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section from stored results")
    args = parser.parse_args()
    if not args.data:
        parser.error("give the data folder with --data or SELFINV_DATA")
    from run import load_part_config, write_section

    from selfinv.engine import Variant, run_comparison

    out_root = ROOT / "benchmarks" / "results" / "sure_gap"
    chosen = [p for p in PARTS if not args.parts or p[0] in args.parts.split(",")]
    done, seconds = [], 0.0
    for key, heading, steps, common, runs in chosen:
        out = out_root / key
        if args.rewrite:
            results = json.loads((out / "results.json").read_text())
            seconds += float((out / "seconds.txt").read_text())
        else:
            if out.exists():
                shutil.rmtree(out)
            cfg = load_part_config({"config": "gaussian_ladder.yaml", "set": common}, args.data, "cpu", [], [])
            entries = [Variant(r[0], tuple(r[1])) if isinstance(r, tuple) else r for r in runs]
            t0 = time.perf_counter()
            results = run_comparison(cfg, entries, out, steps).results
            (out / "seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
            seconds += time.perf_counter() - t0
        done.append((heading, results))
    m = done[0][1]["machine"]
    lines = ["<!-- sure_gap:begin -->",
             f"Produced by `python benchmarks/sure_gap.py --data ../shared/data` ({seconds / 60:.0f} min on {m['cpu']}, "
             f"{m['threads']} threads, torch {m['torch']}). Data, noise, test set and seed of the Gaussian ladder; one "
             "factor changed per run (module docstring of the script). τ_rel is relative to max|y| ≈ 1, so τ_rel = 0.1 "
             "is τ ≈ σ. (Timings are not reported: other jobs shared the machine.)", ""]
    for heading, results in done:
        lines += [f"**{heading}**", "", *table(results), ""]
    lines += [DISCUSSION, "", "<!-- sure_gap:end -->"]
    body = "\n".join(lines)
    print(body)
    if not (args.no_write or args.parts):
        write_section("sure_gap", "The SURE gap (issue 12)", body)


if __name__ == "__main__":
    main()
