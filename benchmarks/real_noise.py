"""BENCHMARKS.md section "Real fluorescence noise": denoisers trained on raw microscope frames alone (issue 14).

**W2S** (Zhou et al. 2020, 8-bit widefield frames of ../shared/data/microscopy_fmd_w2s_real_noise): one raw frame
per field of view and channel, and the average of 400 frames as the reference. Training on fields of view 1-4
(12 raw frames, never their averages), testing on fields 5-6 (6 frames of 512²). Every run is the config a user
gets from ``selfinv config init --task denoising --measurements RAW`` (a U-Net of width 16 on 64² patches cut
anew every epoch, Adam 1e-3 with a cosine schedule) with ``noise: {name: estimate}``: the losses that need the
noise level take each frame's own estimate (Poisson-Gaussian for PG-URE and PG-UNSURE's start, the patch-PCA σ
for R2R, whose recorruption has no exact Poisson-Gaussian form). Supervised (raw → average, the same 12 frames)
is the ceiling; BM3D with the frame's estimated σ the classical baseline. Noise2Noise needs a second raw frame
of each field of view, which this copy of W2S does not have.

Scores: PSNR and SSIM against the average as they are, and PSNR after a least-squares affine fit of each output
to its reference (a·out + b): the 8-bit raw frames and averages of W2S differ in scale and offset (raw mean
0.223 vs average 0.319 on one channel), which caps the PSNR of any denoiser of the raw frame.

Usage: ``python benchmarks/real_noise.py --data ../shared/data [--steps 1500] [--no-write] [--rewrite]``.
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

RUNS = ["noise2void", "noise2self", "neighbor2neighbor", ("pg-ure", ["loss.name=sure"]),
        ("r2r-gaussian", ["loss.name=r2r", "noise={name: estimate, model: gaussian}"]), "unsure", "unsure_pg",
        "supervised"]


def config(train: Path, test: Path) -> dict:
    return {"data": {"source": "measurements", "path": str(train), "test_path": str(test), "patch_size": 64},
            "physics": {"name": "denoising"}, "noise": {"name": "estimate"}, "loss": {"name": "neighbor2neighbor"},
            "model": {"backbone": {"name": "unet", "depth": 2, "width": 16}, "wrapper": {"name": "none"}},
            "training": {"batch_size": 8, "epochs": 100000}, "seed": 0}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def affine(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """a·out + b, least squares against ref."""
    A = torch.stack([out.flatten(), torch.ones_like(out.flatten())], 1).double()
    coef = torch.linalg.lstsq(A, ref.flatten().double()[:, None]).solution[:, 0]
    return (coef[0] * out.double() + coef[1]).to(out.dtype)


def scores(outs: list[torch.Tensor], refs: list[torch.Tensor]) -> dict:
    from selfinv.training.metrics import ssim

    return {"psnr": float(np.mean([psnr(o.clamp(0, 1), r) for o, r in zip(outs, refs, strict=True)])),
            "psnr_affine": float(np.mean([psnr(affine(o, r).clamp(0, 1), r) for o, r in zip(outs, refs, strict=True)])),
            "ssim": float(np.mean([float(ssim(o.clamp(0, 1)[None], r[None], data_range=1.0)) for o, r in
                                   zip(outs, refs, strict=True)]))}


def test_frames(test: Path) -> tuple[list[str], list[torch.Tensor], list[torch.Tensor]]:
    from selfinv.data import read_image

    names = sorted(p.name for p in (test / "y").iterdir())
    ys = [torch.from_numpy(read_image(test / "y" / n)).float() / 255 for n in names]
    xs = [torch.from_numpy(read_image(test / "x" / n)).float() / 255 for n in names]
    return names, ys, xs


def apply_run(run_dir: Path, ys: list[torch.Tensor]) -> list[torch.Tensor]:
    """The run's test-time estimator on each whole raw frame (values in [0, 1] = the 8-bit file / 255), through
    the normalisation stored in its checkpoint; the operator carries the run's recorded (median) noise model."""
    from selfinv.engine import build_noise, build_physics, restore
    from selfinv.losses.base import estimate

    ckpt = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    r = restore(ckpt)
    est, norm = r.estimator(), r.normalization
    outs = []
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for y in ys:
            physics, _ = build_physics(r.cfg, tuple(y.shape), build_noise(r.cfg))
            x = estimate(est, norm.normalize(y[None] * 255), physics, generator=g)
            outs.append(norm.denormalize(x)[0] / 255)
    return outs


def bm3d_outputs(ys: list[torch.Tensor]) -> tuple[list[torch.Tensor] | None, list[float]]:
    from selfinv.noise import estimate

    sigmas = [float(estimate(y[None].double(), model="gaussian").sigma[0]) for y in ys]
    try:
        import bm3d
    except ImportError:
        return None, sigmas
    outs = [torch.from_numpy(np.asarray(bm3d.bm3d(y[0].double().numpy(), sigma_psd=s), dtype=np.float32))[None]
            for y, s in zip(ys, sigmas, strict=True)]
    return outs, sigmas


def gat_bm3d_outputs(ys: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """BM3D in the generalised Anscombe domain (Mäkitalo & Foi 2013) with each frame's Poisson-Gaussian estimate:
    f(y) = (2/γ)·sqrt(γy + 3γ²/8 + σ²) has noise of variance ≈ 1; BM3D with σ = 1 there, then the algebraic
    inverse y = γf²/4 − 3γ/8 − σ²/γ (biased at very low counts; the exact unbiased inverse is not used)."""
    from selfinv.noise import PoissonGaussian, estimate

    try:
        import bm3d
    except ImportError:
        return None
    outs = []
    for y in ys:
        noise = estimate(y[None].double(), model="poisson_gaussian")
        assert isinstance(noise, PoissonGaussian)
        gain, sigma = float(noise.gain[0]), float(noise.sigma[0])
        f = (2 / gain) * (gain * y[0].double() + 3 * gain**2 / 8 + sigma**2).clamp_min(0).sqrt()
        d = torch.from_numpy(np.asarray(bm3d.bm3d(f.numpy(), sigma_psd=1.0), dtype=np.float64))
        outs.append((gain * d**2 / 4 - 3 * gain / 8 - sigma**2 / gain).float()[None])
    return outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section from the stored results")
    args = parser.parse_args()
    if not args.data:
        parser.error("give the data folder with --data or SELFINV_DATA")
    from real_measurements import w2s_sets

    from selfinv.config import parse_config
    from selfinv.engine import Variant, run_comparison

    out = ROOT / "benchmarks" / "results" / "real_noise"
    if args.rewrite:
        write(json.loads((out / "summary.json").read_text()), args.no_write)
        return
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    train, test = w2s_sets(Path(args.data).resolve(), out / "w2s-data")
    runs = [r if isinstance(r, str) else Variant(r[0], tuple(r[1])) for r in RUNS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_comparison(parse_config(config(train, test)), runs, out / "w2s", args.steps).results
    names, ys, xs = test_frames(test)
    rows = [{"label": "raw frame (no learning)", **scores(ys, xs)}]
    bm3d, sigmas = bm3d_outputs(ys)
    if bm3d is not None:
        rows.append({"label": "BM3D, σ estimated per frame (patch PCA)", **scores(bm3d, xs)})
        rows.append({"label": "BM3D after the generalised Anscombe transform, (γ, σ) estimated per frame",
                     **scores(gat_bm3d_outputs(ys), xs)})
    for r in results["runs"]:
        label = r["loss"]
        if r.get("error"):
            rows.append({"label": label, "error": r["error"]})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = apply_run(out / "w2s" / "runs" / label, ys)
        rows.append({"label": label, **scores(outs, xs), "psnr_engine": r["psnr"], "steps": r["steps"],
                     "train_seconds": r["train_seconds"], "evals": r.get("network_evals_per_step")})
    summary = {"seconds": time.perf_counter() - t0, "steps": args.steps, "machine": results["machine"], "rows": rows,
               "sigmas": dict(zip(names, sigmas, strict=True))}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    write(summary, args.no_write)


def write(summary: dict, no_write: bool) -> None:
    from run import write_section

    m = summary["machine"]
    lines = [
        "<!-- real_noise:begin -->",
        f"Produced by `python benchmarks/real_noise.py --data ../shared/data --steps {summary['steps']}` "
        f"({summary['seconds'] / 60:.1f} min on {m['cpu']}, {m['threads']} threads, torch {m['torch']}). W2S widefield "
        "frames (8-bit, real camera noise): trained on the 12 raw frames of fields of view 1-4, scored on the 6 raw "
        "frames of fields 5-6 against their 400-frame averages, which no run sees (supervised excepted: raw → average on "
        f"the training frames). Each run: the `config init --measurements` defaults, {summary['steps']} steps, "
        "`noise: {name: estimate}` (each frame's own estimate).",
        "",
        "| run | PSNR (dB) | PSNR after affine fit (dB) | SSIM | network evals / step | train min |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rows"]:
        if r.get("error"):
            lines.append(f"| {r['label']} | failed: {r['error']} | | | | |")
            continue
        evals = "" if r.get("evals") is None else str(r["evals"])
        minutes = "" if r.get("train_seconds") is None else f"{r['train_seconds'] / 60:.1f}"
        lines.append(f"| {r['label']} | {r['psnr']:.2f} | {r['psnr_affine']:.2f} | {r['ssim']:.3f} | {evals} | {minutes} |")
    sig = summary["sigmas"]
    lines += ["", "Estimated σ of the test frames (patch PCA, the BM3D input): "
              + ", ".join(f"{k.split('.')[0]} {v:.3f}" for k, v in sig.items()) + ".",
              "",
              "Published numbers: the W2S paper (Zhou et al., ECCV-W 2020, its denoising table) scores 16-bit frames "
              "of all 120 fields of view with networks trained for hours; its values are not in the project's "
              "references and are not quoted here until checked.",
              "<!-- real_noise:end -->"]
    body = "\n".join(lines)
    print(body)
    if not no_write:
        write_section("real_noise", "Real fluorescence noise (issue 14)", body)


if __name__ == "__main__":
    main()
