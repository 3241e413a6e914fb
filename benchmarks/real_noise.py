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

**FMD** (Zhang et al. 2019, the samples of the same folder): 8 gray 512² frames with their averages —
Confocal_FISH_3, BPAE_R (channel 0 of an RGB file whose 3 channels are equal), the 3 channels of WideField_BPAE
and the 3 slices of the 3-D BPAE stack (float32 files holding the integers 0-255), written as 8-bit TIFFs (y/ raw,
x/ average, matched by name) in ``fmd-data/``. There is no training split, so the protocol is "denoise your own
frames": each self-supervised run trains on the 8 raw frames themselves (``data.path`` is ``fmd-data/y``: the
averages are never read by training; ``data.val_fraction: 0``: validation on a band of each frame, so that every
frame is trained on) and each output is scored against its average. Supervised is not run (raw →
average on the test frames would be fitting the answer), nor Noise2Noise (one raw frame per field of view). The
same runs otherwise, with the same ``config()`` (but ``val_fraction``), and the same raw / BM3D / GAT+BM3D rows.

Scores: PSNR and SSIM against the average as they are, and PSNR after a least-squares affine fit of each output
to its reference (a·out + b): the 8-bit raw frames and averages of W2S differ in scale and offset (raw mean
0.223 vs average 0.319 on one channel), which caps the PSNR of any denoiser of the raw frame (FMD's agree: 42.05
vs 41.33 on BPAE_R).

Parts: ``--parts w2s,fmd`` (default both); each part's results are stored under its key in ``summary.json``
(a part not run keeps what is stored), and the section (one table and one figure per dataset) is rebuilt from
all stored parts. The figures (``benchmarks/figures/real_noise-<part>.png``) show one test frame's crop: raw,
GAT+BM3D, the best self-supervised network by affine PSNR, supervised (W2S) and the average; their crops are
stored in ``figure-<part>.npz`` (made from the stored checkpoints when missing), so ``--rewrite`` redraws them.

Usage: ``python benchmarks/real_noise.py --data ../shared/data [--parts w2s,fmd] [--steps 1500] [--no-write]
[--rewrite] [--out DIR]``.
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
NEEDS_REFERENCE = ("supervised",)  # not run on FMD, whose test frames are the training frames
PARTS = ("w2s", "fmd")
TITLES = {"w2s": "W2S widefield frames", "fmd": "FMD frames, denoising their own raw frames"}
# the FMD frames: (name, raw file, average file, channel of an RGB PNG or slice of the stack, None for a gray file)
FMD_FRAMES = [("fish_3", "FMD_2D_raw/Confocal_FISH_3.png", "FMD_2D_gt/gt_Confocal_FISH_3.png", None),
              ("bpae_r", "FMD_2D_raw/BPAE_R_Channel_noisy_image.png", "FMD_2D_gt/BPAE_R_Channel_gt_image.png", 0),
              *[(f"widefield_bpae_{c}", "FMD_2D_raw/WideField_BPAE_raw_rgb_new1.png",
                 "FMD_2D_gt/WideField_BPAE_gt_rgb_new1.png", c) for c in range(3)],
              *[(f"stack_bpae_{z}", "FMD_3D_raw/3D_volume_raw_stack1_32bit.tif", "FMD_3D_gt/3D_volume_gt_stack1_32bit.tif", z)
                for z in range(3)]]
# each part's figure: a test frame with structure and the top-left corner (row, column) of its CROP² crop
FIGURE_FRAMES = {"w2s": ("005_1.tif", 160, 224), "fmd": ("fish_3.tif", 224, 112)}
CROP = 192


def fmd_set(data: Path, out: Path) -> Path:
    """The FMD frames as a measurement set folder: ``out/y`` raw frames, ``out/x`` their averages (8-bit TIFFs,
    matched by name; every file holds integers 0-255, checked, so the 8-bit copy is exact)."""
    import tifffile
    from PIL import Image

    src = data / "microscopy_fmd_w2s_real_noise"

    def frame(path: Path, index: int | None) -> np.ndarray:
        a = tifffile.imread(path) if path.suffix == ".tif" else np.asarray(Image.open(path))
        if index is not None:
            a = a[index] if path.suffix == ".tif" else a[..., index]
        if a.ndim != 2 or float(a.min()) < 0 or float(a.max()) > 255 or not np.array_equal(a, np.round(a)):
            raise ValueError(f"{path}[{index}]: expected one 2-D frame of integers 0-255, got {a.shape} {a.dtype}")
        return a.astype(np.uint8)

    for sub in ("y", "x"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for name, raw, avg, index in FMD_FRAMES:
        tifffile.imwrite(out / "y" / f"{name}.tif", frame(src / raw, index))
        tifffile.imwrite(out / "x" / f"{name}.tif", frame(src / avg, index))
    return out


def bpae_facts(test: Path) -> dict:
    """BPAE_R against slice 0 of the 3-D stack (the same raw frame contrast-stretched: slope and correlation of the
    line raw_R = a·raw_stack + b on the pixels below 255, the share clipped at 255) and the raw/average means."""
    import tifffile

    r, z = (tifffile.imread(test / "y" / f"{n}.tif").astype(np.float64) for n in ("bpae_r", "stack_bpae_0"))
    avg = tifffile.imread(test / "x" / "bpae_r.tif").astype(np.float64)
    keep = r < 255
    return {"slope": float(np.polyfit(z[keep], r[keep], 1)[0]), "corr": float(np.corrcoef(z[keep], r[keep])[0, 1]),
            "clipped": float((~keep).mean()), "raw_mean": float(r.mean()), "avg_mean": float(avg.mean())}


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
    """BM3D in the generalised Anscombe domain (Mäkitalo & Foi 2013) with each frame's Poisson-Gaussian estimate
    (gain γ, σ and black level c, Var y = γ(x − c) + σ²): f(y) = (2/γ)·sqrt(γ(y − c) + 3γ²/8 + σ²) has noise of
    variance ≈ 1; BM3D with σ = 1 there, then the algebraic inverse y = γf²/4 − 3γ/8 − σ²/γ + c (biased at very
    low counts; the exact unbiased inverse is not used)."""
    from selfinv.noise import PoissonGaussian, estimate

    try:
        import bm3d
    except ImportError:
        return None
    outs = []
    for y in ys:
        noise = estimate(y[None].double(), model="poisson_gaussian")
        assert isinstance(noise, PoissonGaussian)
        gain, sigma, c = float(noise.gain[0]), float(noise.sigma[0]), float(noise.offset[0])
        f = (2 / gain) * (gain * (y[0].double() - c) + 3 * gain**2 / 8 + sigma**2).clamp_min(0).sqrt()
        d = torch.from_numpy(np.asarray(bm3d.bm3d(f.numpy(), sigma_psd=1.0), dtype=np.float64))
        outs.append((gain * d**2 / 4 - 3 * gain / 8 - sigma**2 / gain + c).float()[None])
    return outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: w2s, fmd (default both)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_noise"), help="the results folder")
    parser.add_argument("--no-write", action="store_true",
                        help="print the section, leave BENCHMARKS.md and benchmarks/figures/ alone (figures go to --out)")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section and figures from the stored results")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        parser.error(f"--parts: choose from {', '.join(PARTS)} (got {args.parts!r})")
    if not args.data and not args.rewrite:
        parser.error("give the data folder with --data or SELFINV_DATA")
    out = Path(args.out).resolve()
    stored = load_summaries(out)
    if not args.rewrite:
        out.mkdir(parents=True, exist_ok=True)
        for part in parts:
            stored[part] = run_part(part, Path(args.data).resolve(), out, args.steps)
            (out / "summary.json").write_text(json.dumps(stored, indent=1))
    figures = out if args.no_write else ROOT / "benchmarks" / "figures"
    drawn = {part for part in PARTS if part in stored and figure(part, stored[part], out, figures / f"real_noise-{part}.png")}
    write(stored, drawn, args.no_write)


def load_summaries(out: Path) -> dict:
    """The stored results, part → summary (a summary.json from before the FMD part holds the W2S part alone)."""
    path = out / "summary.json"
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    return {"w2s": stored} if "rows" in stored else stored


def run_part(part: str, data: Path, out: Path, steps: int) -> dict:
    """Train the part's runs, score them and the classical rows on its test frames; the part's summary."""
    from real_measurements import w2s_sets

    from selfinv.config import parse_config
    from selfinv.engine import Variant, run_comparison

    for path in (out / part, out / f"{part}-data", out / f"figure-{part}.npz"):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    t0 = time.perf_counter()
    if part == "w2s":
        train, test = w2s_sets(data, out / "w2s-data")
        chosen = RUNS
        cfg = config(train, test)
    else:
        test = fmd_set(data, out / "fmd-data")
        train = test / "y"  # the raw frames alone: training never reads the averages
        chosen = [r for r in RUNS if (r if isinstance(r, str) else r[0]) not in NEEDS_REFERENCE]
        cfg = config(train, test)
        cfg["data"]["val_fraction"] = 0  # validation on a band of each frame: every frame is trained on
    runs = [r if isinstance(r, str) else Variant(r[0], tuple(r[1])) for r in chosen]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_comparison(parse_config(cfg), runs, out / part, steps).results
    names, ys, xs = test_frames(test)
    rows = [{"key": "raw", "label": "raw frame (no learning)", **scores(ys, xs), "frames": frame_scores(ys, xs)}]
    bm3d, sigmas = bm3d_outputs(ys)
    if bm3d is not None:
        gat = gat_bm3d_outputs(ys)
        rows.append({"key": "bm3d", "label": "BM3D, σ estimated per frame (patch PCA)", **scores(bm3d, xs),
                     "frames": frame_scores(bm3d, xs)})
        rows.append({"key": "gat_bm3d", "label": "BM3D after the generalised Anscombe transform, (γ, σ, black level c) "
                     "estimated per frame", **scores(gat, xs), "frames": frame_scores(gat, xs)})
    data_line = None
    for r in results["runs"]:
        label = r["loss"]
        if r.get("error"):
            rows.append({"key": label, "label": label, "error": r["error"]})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = apply_run(out / part / "runs" / label, ys)
        rows.append({"key": label, "label": label, **scores(outs, xs), "frames": frame_scores(outs, xs),
                     "psnr_engine": r["psnr"], "steps": r["steps"], "train_seconds": r["train_seconds"],
                     "evals": r.get("network_evals_per_step")})
        report = out / part / "runs" / label / "report.md"
        if data_line is None and report.exists():
            data_line = next((s[2:] for s in report.read_text().splitlines() if s.startswith("- data:")), None)
    return {"part": part, "seconds": time.perf_counter() - t0, "steps": steps, "machine": results["machine"],
            "rows": rows, "names": names, "sigmas": dict(zip(names, sigmas, strict=True)),
            "test": str(test.relative_to(out)), "data_line": data_line,
            **({"bpae": bpae_facts(test)} if part == "fmd" else {})}


def frame_scores(outs: list[torch.Tensor], refs: list[torch.Tensor]) -> list[float]:
    """PSNR after the affine fit, per frame."""
    return [psnr(affine(o, r).clamp(0, 1), r) for o, r in zip(outs, refs, strict=True)]


def key_of(row: dict) -> str:
    """A row's key (rows stored before keys existed: from the label)."""
    if "key" in row:
        return row["key"]
    label = row["label"]
    if label.startswith("raw frame"):
        return "raw"
    if label.startswith("BM3D after the generalised Anscombe"):
        return "gat_bm3d"
    return "bm3d" if label.startswith("BM3D") else label


def best_network(summary: dict) -> dict | None:
    """The self-supervised run with the highest PSNR after the affine fit."""
    nets = [r for r in summary["rows"] if key_of(r) not in ("raw", "bm3d", "gat_bm3d", *NEEDS_REFERENCE)
            and not r.get("error")]
    return max(nets, key=lambda r: r["psnr_affine"]) if nets else None


def figure_panels(part: str, summary: dict, out: Path) -> dict | None:
    """The figure's crops (each output fitted to the average on the whole frame, a·out + b), titles and whole-frame
    affine PSNRs: from ``figure-<part>.npz``, else made from the stored checkpoints and stored there."""
    path = out / f"figure-{part}.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    name, row, col = FIGURE_FRAMES[part]
    best = best_network(summary)
    if best is None or not (out / summary.get("test", "w2s-data/test")).exists():
        return None
    names, ys, xs = test_frames(out / summary.get("test", "w2s-data/test"))
    y, x = ys[names.index(name)], xs[names.index(name)]
    panels = [("raw frame", y)]
    gat = gat_bm3d_outputs([y])
    if gat is not None:
        panels.append(("GAT+BM3D", gat[0]))
    runs = out / part / "runs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panels.append((f"{best['label']} (best self-supervised)", apply_run(runs / best["label"], [y])[0]))
        sup = next((r for r in summary["rows"] if key_of(r) == "supervised" and not r.get("error")), None)
        if sup is not None and (runs / "supervised").exists():
            panels.append(("supervised (raw → average)", apply_run(runs / "supervised", [y])[0]))
    crops, titles, values = [], [], []
    for title, o in panels:
        fitted = affine(o, x)
        crops.append(fitted[0, row: row + CROP, col: col + CROP].numpy())
        titles.append(title)
        values.append(psnr(fitted.clamp(0, 1), x))
    crops.append(x[0, row: row + CROP, col: col + CROP].numpy())
    titles.append("average (reference)")
    values.append(float("nan"))
    stored = {"crops": np.stack(crops).astype(np.float32), "titles": np.array(titles), "psnr": np.array(values),
              "frame": np.array(name), "corner": np.array([row, col])}
    np.savez_compressed(path, **stored)
    return stored


def figure(part: str, summary: dict, out: Path, png: Path) -> bool:
    """One row of panels on one grey scale: the reference crop's 1st-99.5th percentiles (False: nothing to draw)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    panels = figure_panels(part, summary, out)
    if panels is None:
        print(f"{part}: no figure (no stored crops, checkpoints or test frames)", file=sys.stderr)
        return False
    crops, titles, values = panels["crops"], [str(t) for t in panels["titles"]], panels["psnr"]
    row, col = (int(v) for v in panels["corner"])
    lo, hi = np.percentile(crops[-1], [1, 99.5])
    fig, axes = plt.subplots(1, len(crops), figsize=(2.9 * len(crops), 3.5))
    for ax, crop, title, value in zip(axes, crops, titles, values, strict=True):
        ax.imshow(crop, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title if np.isnan(value) else f"{title}\n{value:.2f} dB (affine)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{TITLES[part]}: {str(panels['frame']).split('.')[0]}, crop rows {row}-{row + CROP}, columns "
                 f"{col}-{col + CROP}; each panel a·out + b fitted to the average", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    buf.seek(0)
    png.parent.mkdir(parents=True, exist_ok=True)
    Image.open(buf).convert("RGB").quantize(colors=128).save(png, optimize=True)
    return True


def intro(part: str, s: dict) -> str:
    m = s["machine"]
    produced = (f"Produced by `python benchmarks/real_noise.py --data ../shared/data --parts {part} --steps {s['steps']}` "
                f"({s['seconds'] / 60:.1f} min on {m['cpu']}, {m['threads']} threads, torch {m['torch']}).")
    defaults = (f"Each run: the `config init --measurements` defaults, {s['steps']} steps, `noise: {{name: estimate}}` "
                "(each frame's own estimate).")
    if part == "w2s":
        return (f"{produced} W2S widefield frames (8-bit, real camera noise): trained on the 12 raw frames of fields of "
                "view 1-4, scored on the 6 raw frames of fields 5-6 against their 400-frame averages, which no run sees "
                f"(supervised excepted: raw → average on the training frames). {defaults}")
    split = f" (the runs' data: {s['data_line'].removeprefix('data: ')})" if s.get("data_line") else ""
    b = s.get("bpae")
    twice = (f"BPAE_R is slice 0 of the 3-D stack contrast-stretched (×{b['slope']:.2f}, {100 * b['clipped']:.2f} % of "
             f"its pixels clipped at 255, correlation {b['corr']:.5f} elsewhere): one field of view and noise "
             "realisation counted twice. ") if b else ""
    means = f" (mean {b['raw_mean']:.2f} vs {b['avg_mean']:.2f} on BPAE_R, 8-bit units)" if b else ""
    return (f"{produced} FMD samples (Zhang et al., CVPR 2019; 8-bit, real noise): 8 gray 512² frames — Confocal_FISH_3, "
            "BPAE_R (channel 0 of an RGB file with 3 equal channels), the 3 channels of WideField_BPAE and the 3 slices "
            "of the 3-D BPAE stack — each scored against its average (the dataset's ground truth). FMD has no training "
            "split in this copy, so the protocol is *denoise your own frames*: every self-supervised run trains on the 8 "
            "raw frames themselves (`data.path` is the folder of raw frames, the averages are never read; "
            f"`data.val_fraction: 0`, the one change to the W2S config: validation on a band of each frame){split} and "
            "each output is scored against its average. **Supervised is not run**: training raw → average on the test "
            f"frames would be fitting the answer; nor is Noise2Noise (one raw frame per field of view). {twice}Raw frames "
            f"and averages agree in scale{means}, unlike W2S. {defaults}")


def part_lines(part: str, s: dict | None, drawn: bool) -> list[str]:
    lines = [f"### {TITLES[part]}", ""]
    if s is None:
        return [*lines, f"Not run yet (`python benchmarks/real_noise.py --data ../shared/data --parts {part}`).", ""]
    lines += [intro(part, s), ""]
    if drawn:
        name, row, col = FIGURE_FRAMES[part]
        lines += [f"![{TITLES[part]}: {name.split('.')[0]}, raw | GAT+BM3D | best self-supervised"
                  f"{' | supervised' if part == 'w2s' else ''} | average]"
                  f"(benchmarks/figures/real_noise-{part}.png)", "",
                  f"Test frame {name.split('.')[0]}, a {CROP}² crop (rows {row}-{row + CROP}, columns {col}-{col + CROP}): "
                  "each panel fitted to the average by least squares on the whole frame (a·out + b), all on one grey "
                  "scale (the average's 1st-99.5th percentiles in the crop); under each, the whole frame's PSNR after "
                  "that fit.", ""]
    lines += ["| run | PSNR (dB) | PSNR after affine fit (dB) | SSIM | network evals / step | train min |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in s["rows"]:
        if r.get("error"):
            lines.append(f"| {r['label']} | failed: {r['error']} | | | | |")
            continue
        evals = "" if r.get("evals") is None else str(r["evals"])
        minutes = "" if r.get("train_seconds") is None else f"{r['train_seconds'] / 60:.1f}"
        lines.append(f"| {r['label']} | {r['psnr']:.2f} | {r['psnr_affine']:.2f} | {r['ssim']:.3f} | {evals} | {minutes} |")
    best = best_network(s)
    shown = [r for r in s["rows"] if "frames" in r and (key_of(r) in ("raw", "gat_bm3d", "supervised") or r is best)]
    if shown and s.get("names"):
        heads = {"raw": "raw", "gat_bm3d": "GAT+BM3D", "supervised": "supervised"}
        lines += ["", "Per frame, PSNR after the affine fit (dB):", "",
                  "| frame | " + " | ".join(heads.get(key_of(r), f"{r['label']} (best self-supervised)") for r in shown) + " |",
                  "|---|" + "---:|" * len(shown)]
        for i, name in enumerate(s["names"]):
            lines.append(f"| {name.split('.')[0]} | " + " | ".join(f"{r['frames'][i]:.2f}" for r in shown) + " |")
    lines += ["", "Estimated σ of the test frames (patch PCA, the BM3D input): "
              + ", ".join(f"{k.split('.')[0]} {v:.3f}" for k, v in s["sigmas"].items()) + ".", ""]
    return lines


def write(stored: dict, drawn: set[str], no_write: bool) -> None:
    from run import write_section

    lines = ["<!-- real_noise:begin -->"]
    for part in PARTS:
        lines += part_lines(part, stored.get(part), part in drawn)
    lines += ["Published numbers: the W2S paper (Zhou et al., ECCV-W 2020, its denoising table) scores 16-bit frames "
              "of all 120 fields of view with networks trained for hours, and the FMD paper (Zhang et al., CVPR 2019) "
              "its full test sets; neither's values are in the project's references, so none is quoted here until "
              "checked. The one FMD number there (../shared/reference/anchors.md, deepinv's `demo_poisson2sparse`: "
              "27.5 → 30.1 dB) is for a two-photon FMD image with *simulated* Poisson noise (gain 0.01), not "
              "comparable with these real-noise scores.",
              "<!-- real_noise:end -->"]
    body = "\n".join(lines)
    print(body)
    if not no_write:
        write_section("real_noise", "Real fluorescence noise (issue 14)", body)


if __name__ == "__main__":
    main()
