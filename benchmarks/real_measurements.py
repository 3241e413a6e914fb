"""BENCHMARKS.md section "Real measurements": training from measurement files alone, at the defaults a user gets.

Two cases from ../shared/data, each scored against a reference the training never sees:

* **W2S raw fluorescence frames** (real Poisson-Gaussian camera noise, level unknown): the measurement set is the
  folder of raw frames (``noise: {name: unknown}``, patches cut every epoch); the references are the 400-frame
  averages. Training on fields of view 1-4 (12 frames), testing on fields 5-6 (6 frames); plus the single-frame
  (N = 1) run, validated on a held-out band of its frame.
* **One knee slice of k-space** (N = 1): 4x random Cartesian undersampling of a fully sampled reference slice,
  Gaussian noise, given as a raw complex k-space file (no mask file: the mask comes from its zeros; raw scanner
  units: the auto normalisation scales it). Validation on 20 % held-out k-space samples; the test is the slice itself
  (zero-shot), scored against the fully sampled reference.

Usage: ``python benchmarks/real_measurements.py --data ../shared/data [--steps 400] [--no-write]``.
"""

from __future__ import annotations

import argparse
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


def w2s_sets(data: Path, out: Path) -> tuple[Path, Path]:
    """Measurement folders (y/ raw frames, x/ 400-frame averages, matched by name) for training and testing."""
    src = data / "microscopy_fmd_w2s_real_noise"
    sets = {"train": ("001", "002", "003", "004"), "test": ("005", "006")}
    for name, fovs in sets.items():
        for sub in ("y", "x"):
            (out / name / sub).mkdir(parents=True, exist_ok=True)
        for fov in fovs:
            for ch in range(3):
                (out / name / "y" / f"{fov}_{ch}.tif").symlink_to(src / "W2S_avg1_noisy" / f"input_avg1_{fov}_{ch}.tif")
                (out / name / "x" / f"{fov}_{ch}.tif").symlink_to(src / "W2S_avg400_clean" / f"target_avg400_{fov}_{ch}.tif")
    return out / "train", out / "test"


def knee_kspace(data: Path, out: Path, sigma: float = 0.02) -> Path:
    """One fully sampled knee slice → 4x random-line k-space with noise (σ relative to the image's 99.5th
    percentile), written as a raw complex .npy of k-space (in the file's units) and a set with the reference x."""
    from selfinv.data import MeasurementDataset, read_image
    from selfinv.physics import MRI
    from selfinv.physics.samplers import MRIMaskSampler

    x = torch.from_numpy(read_image(data / "mri_knee_mridata_stanford3dfse" / "P1" / "knee-fully-sampled-reference.cfl"))[None]
    scale = float(torch.quantile(x.abs().flatten(), 0.995))
    g = torch.Generator().manual_seed(0)
    op = MRIMaskSampler(tuple(x.shape[-2:]), acceleration=4, center_fraction=0.08, pattern="random")(1, generator=g)
    y = op.A(x.to(torch.complex64))
    noise = sigma * scale * torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g))
    y = (y + noise * op.mask).to(torch.complex64)
    out.mkdir(parents=True, exist_ok=True)
    MeasurementDataset(y, MRI(op.mask), x=x.to(torch.complex64)).save(out / "knee.npz")
    return out / "knee.npz", scale


def run(cfg_dict: dict, runs: list, out: Path, steps: int):
    from selfinv.config import parse_config
    from selfinv.engine import run_comparison

    if out.exists():
        shutil.rmtree(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_comparison(parse_config(cfg_dict), runs, out, steps).results


def table(results: dict, baseline_label: str) -> list[str]:
    rows = ["| run | PSNR (dB) | SSIM | steps | train s | step ms |", "|---|---|---|---|---|---|"]
    b = results["baseline"]
    rows.append(f"| {baseline_label} | {b['psnr']:.2f} | {b['ssim']:.3f} | | | |")
    for r in results["runs"]:
        if r.get("error"):
            rows.append(f"| {r['loss']} | failed: {r['error']} | | | | |")
            continue
        rows.append(f"| {r['loss']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['steps']} | {r['train_seconds']:.0f} | "
                    f"{1000 * r['step_seconds_median']:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section from the stored results (no training)")
    args = parser.parse_args()
    if not args.data:
        parser.error("give the data folder with --data or SELFINV_DATA")
    from selfinv.engine import Variant

    data = Path(args.data).resolve()
    out = ROOT / "benchmarks" / "results" / "real_measurements"
    if args.rewrite:
        stored = json.loads((out / "summary.json").read_text())
        w2s, knee = (json.loads((out / k / "results.json").read_text()) for k in ("w2s", "knee"))
        write_body(stored["seconds"], stored["steps"], stored["scale"], w2s, knee, args.no_write)
        return
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    train, test = w2s_sets(data, out / "w2s-data")
    unet = {"backbone": {"name": "unet", "depth": 2, "width": 16}, "wrapper": {"name": "none"}}
    w2s = run({"data": {"source": "measurements", "path": str(train), "test_path": str(test), "patch_size": 64},
               "noise": {"name": "unknown"}, "loss": {"name": "noise2self"}, "model": unet,
               "training": {"batch_size": 8, "epochs": 1000}, "seed": 0},
              ["noise2self", "neighbor2neighbor", "noise2void",
               Variant("noise2self-one-frame", (f"data.path={train / 'y' / '001_0.tif'}",))],
              out / "w2s", args.steps)
    knee_set, scale = knee_kspace(data, out / "knee-data")
    raw = out / "knee-data" / "knee-raw.npy"
    from selfinv.data import MeasurementDataset

    np.save(raw, MeasurementDataset.load(knee_set).y[0].numpy())  # k-space alone, raw units, no mask file
    knee = run({"data": {"source": "measurements", "path": str(raw), "test_path": str(knee_set)},
                "physics": {"name": "mri"}, "noise": {"name": "unknown"}, "loss": {"name": "splitting"},
                "model": {"backbone": {"name": "unet", "depth": 2, "width": 16}, "wrapper": {"name": "backprojection"}},
                "training": {"batch_size": 1, "epochs": 100000}, "seed": 0},
               ["splitting", Variant("splitting-ssdu", ("loss.name=splitting", "loss.consistency=none")), "mc"],
               out / "knee", args.steps)
    seconds = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps({"seconds": seconds, "steps": args.steps, "scale": scale}, indent=1))
    write_body(seconds, args.steps, scale, w2s, knee, args.no_write)


def write_body(seconds: float, steps: int, scale: float, w2s: dict, knee: dict, no_write: bool) -> None:
    from run import write_section

    m = w2s["machine"]
    lines = [
        "<!-- real_measurements:begin -->",
        f"Produced by `python benchmarks/real_measurements.py --data ../shared/data --steps {steps}` ({seconds / 60:.1f} min "
        f"on {m['cpu']}, {m['threads']} threads, torch {m['torch']}). Everything at the defaults a user gets: "
        "`data.normalization: auto`, `noise: {name: unknown}`, a U-Net of width 16, Adam 1e-3 with a cosine "
        f"schedule, {steps} steps; the references are used for the scores only.",
        "",
        "**W2S raw widefield frames** (real camera noise, 8-bit; train fields of view 1-4 = 12 frames, test fields 5-6 = 6 "
        "frames of 512², against the 400-frame averages). Patches of 64² are cut anew every epoch (before this issue a "
        "measurement set trained on whole frames, 1 step per epoch, and learned nothing: 21.13 vs 21.04 dB in 20 steps). "
        "`noise2self-one-frame` trains on one raw frame (N = 1), validated on a held-out band of it.",
        "",
        *table(w2s, "noisy frame (no learning)"),
        "",
        "**One knee slice, raw k-space** (N = 1: 4x random lines with an 8 % centre, complex Gaussian noise σ = 2 % of the "
        f"image's 99.5th percentile; the file is k-space in raw units (scale {scale:.3g}), no mask file). Noise level "
        "unknown to the losses; validation on 20 % of the acquired samples held out; the score is on the slice itself "
        "against the fully sampled reference (zero-shot).",
        "",
        *table(knee, "zero-filled (no learning)"),
        "",
        "What it shows. On real microscopy noise the blind-spot family learns from raw frames alone (about +4 dB and "
        "SSIM 0.18 → 0.65 over the raw frame in 400 steps); a single frame (N = 1) comes within about 0.6 dB of 12 "
        "frames. On one k-space slice the file path runs end to end (raw units scaled automatically, the mask from the "
        "zeros, a held-out 20 % of the samples for validation), but no loss beats zero-filling: MC has nothing to learn "
        "the missing lines from (it equals zero-filled), entry-wise splitting never holds out a whole line, so the "
        "network is never asked to fill one (issue 12 measured the same on 64² crops), and the held-out term alone "
        "(SSDU, consistency none) leaves the acquired entries unconstrained (the inpainting benchmark's finding). "
        "Learning the nullspace from one Cartesian slice needs line-wise splitting (issue 12) or equivariance with a "
        "known noise level (REI).",
        "",
        "<!-- real_measurements:end -->",
    ]
    body = "\n".join(lines)
    print(body)
    if not no_write:
        write_section("real_measurements", "Real measurements, no ground truth (issue 11)", body)


if __name__ == "__main__":
    main()
