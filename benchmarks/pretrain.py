"""Pretrain the shipped operator-conditioned model (:class:`selfinv.models.RAM`) on a mixture of inverse problems.

    python benchmarks/pretrain.py --data ../shared/data [--preset cpu|gpu] [--steps N] [--out DIR] [--resume]
    python benchmarks/pretrain.py --data ../shared/data --install [--out DIR]   # ship OUT/ram.pt in the package

Supervised (L1 to the clean image), one task per step, drawn at random; every task draws its operator and its
noise level per sample:

=============  =====================================================  ==================================
task           operator                                               images
=============  =====================================================  ==================================
denoising      identity                                               gray, colour
inpainting     random pixel masks, kept fraction U(0.2, 0.9)          gray, colour
deblurring     Gaussian (σ U(0.5, 3)) or motion (length U(3, 11))     gray, colour
cs             structured random projections, m/n U(0.1, 0.5)         gray, colour
demosaicing    Bayer RGGB                                             colour
mri            single-coil Cartesian, acceleration 2–8, random or     complex (smooth random phase)
               Gaussian-density lines, 8 % centre
ct             parallel-beam, 10–90 views over 180°                   gray (CT slices and photographs)
=============  =====================================================  ==================================

Noise: Gaussian with σ U(0, 0.2) for denoising, U(0, 0.1) otherwise (CT: relative to the sinogram's RMS,
U(0, 0.05)), or (30 % of denoising, inpainting and demosaicing steps) Poisson with gain U(0.005, 0.05).

Images (``--data``, ../shared/data): train400_gray, McMaster 1–12 (13–18 are held out for the finetuning
benchmark), the knee slices P1–P16 (P17–P20 held out), the CT slices (head volume slices 0–79; 80–92 held
out), scikit-image's colour training photographs; never Set12, BSD68, McMaster 13–18. Without ``--data``
the embedded photographs alone (a smoke run). Validation every ``--val-every`` steps on fixed 64² crops of
the held-out images, one batch per task; the curve goes to ``log.csv`` and ``curve.png``. The result,
``ram.pt`` (the backbone's state dict, its architecture and the run's facts), is what the package ships:
``--install`` re-scores it on the held-out crops, writes ``selfinv/models/weights/ram-small.pt``, its model card
``ram-small.md`` and its SHA-256 into ``selfinv/models/pretrained.py``, and the curve to benchmarks/figures/.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfinv.data.bart import read_cfl  # noqa: E402
from selfinv.data.embedded import embedded_images  # noqa: E402
from selfinv.data.readers import list_images, read_image  # noqa: E402
from selfinv.models import RAM, BackProjection  # noqa: E402
from selfinv.noise import Gaussian, Poisson  # noqa: E402
from selfinv.physics import (  # noqa: E402
    MRI,
    BlurKernelSampler,
    CompressedSensing,
    Demosaicing,
    Denoising,
    Inpainting,
    MRIMaskSampler,
    Tomography,
)
from selfinv.physics.blur import Blur  # noqa: E402

PRESETS = {
    "cpu": {"widths": (32, 64, 128, 256), "n_blocks": 1, "steps": 14000, "batch": 8, "patch": 64, "lr": 5e-4},
    "gpu": {"widths": (64, 128, 256, 512), "n_blocks": 2, "steps": 100000, "batch": 32, "patch": 128, "lr": 2e-4},
}
TASKS = {"denoising": 0.14, "inpainting": 0.14, "deblurring": 0.15, "cs": 0.13, "demosaicing": 0.13, "mri": 0.16, "ct": 0.15}


def _unit(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.5)
    return np.clip((a - lo) / max(hi - lo, 1e-8), 0, 1)


def read_mha(path: Path) -> np.ndarray:
    """An uncompressed MetaImage (.mha, ``ElementDataFile = LOCAL``) volume as (D, H, W)."""
    raw = path.read_bytes()
    end = raw.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
    header = dict(line.split(" = ", 1) for line in raw[:end].decode().splitlines())
    dims = [int(v) for v in header["DimSize"].split()]
    dtype = {"MET_USHORT": "<u2", "MET_SHORT": "<i2", "MET_FLOAT": "<f4"}[header["ElementType"]]
    return np.frombuffer(raw[end:], dtype=dtype, count=int(np.prod(dims))).reshape(dims[::-1]).astype(np.float32)


def load_pools(data: Path | None) -> tuple[dict[str, list[torch.Tensor]], dict[str, list[torch.Tensor]]]:
    """Training and held-out images, as (C, H, W) float tensors in [0, 1], by kind: gray, colour, ct, mri."""
    train = {"gray": [], "colour": [], "ct": [], "mri": []}
    held = {"gray": [], "colour": [], "ct": [], "mri": []}
    colour = embedded_images(gray=False, split="train")
    train["colour"] += [torch.from_numpy(np.ascontiguousarray(c)) for c in colour]
    gray = embedded_images(gray=True, split="train")
    train["gray"] += [torch.from_numpy(np.ascontiguousarray(g)) for g in gray]
    if data is None:
        test = embedded_images(gray=True, split="test")
        held["gray"] = [torch.from_numpy(np.ascontiguousarray(t)) for t in test]
        held["colour"] = [torch.from_numpy(np.ascontiguousarray(c)) for c in embedded_images(gray=False, split="test")]
        train["ct"], train["mri"], held["ct"], held["mri"] = train["gray"], train["gray"], held["gray"], held["gray"]
        return train, held
    for p in list_images(data / "train400_gray"):
        train["gray"].append(torch.from_numpy(_unit(read_image(p))))
    mc = sorted(list_images(data / "mcmaster18_color"), key=lambda p: int(p.stem))
    for p in mc:
        (train if int(p.stem) <= 12 else held)["colour"].append(torch.from_numpy(_unit(read_image(p))))
    for k in range(1, 21):
        cfl = data / "mri_knee_mridata_stanford3dfse" / f"P{k}" / "knee-fully-sampled-reference.cfl"
        img = _unit(np.abs(read_cfl(cfl)).squeeze())[None]
        (train if k <= 16 else held)["mri"].append(torch.from_numpy(img))
    train["mri"] += train["gray"][:200]
    head = _unit(read_mha(data / "ct_dicom_slices" / "head.mha"))
    for i, s in enumerate(head):
        (train if i < 80 else held)["ct"].append(torch.from_numpy(s[None].copy()))
    for name in ("693_UNCI.dcm", "eCT_Supplemental.dcm"):
        a = read_image(data / "ct_dicom_slices" / name)
        for s in a.reshape(-1, *a.shape[-2:]):
            train["ct"].append(torch.from_numpy(_unit(s)[None]))
    held["ct"].append(torch.from_numpy(_unit(read_image(data / "ct_dicom_slices" / "CT_small.dcm")).reshape(1, 128, 128)))
    train["ct"] += train["gray"][200:]
    for p in sorted(list_images(data / "set12_gray"))[:6]:
        held["gray"].append(torch.from_numpy(_unit(read_image(p))))
    return train, held


def crops(pool: list[torch.Tensor], n: int, patch: int, g: torch.Generator) -> torch.Tensor:
    """n random patch² crops, random flips and 90° rotations (images smaller than patch are upsampled)."""
    out = []
    idx = torch.randint(len(pool), (n,), generator=g)
    for i in idx.tolist():
        img = pool[i]
        if min(img.shape[-2:]) < patch:
            img = F.interpolate(img[None], size=(max(patch, img.shape[-2]), max(patch, img.shape[-1])), mode="bilinear")[0]
        h, w = img.shape[-2:]
        top = int(torch.randint(h - patch + 1, (1,), generator=g))
        left = int(torch.randint(w - patch + 1, (1,), generator=g))
        c = img[:, top : top + patch, left : left + patch]
        k = int(torch.randint(4, (1,), generator=g))
        c = torch.rot90(c, k, (1, 2))
        if bool(torch.rand((), generator=g) < 0.5):
            c = c.flip(2)
        out.append(c)
    return torch.stack(out)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _noise(task: str, n: int, g: torch.Generator):
    if task in ("denoising", "inpainting", "demosaicing") and bool(torch.rand((), generator=g) < 0.3):
        return Poisson(_uniform(n, 0.005, 0.05, g))
    return Gaussian(_uniform(n, 0.0, 0.2 if task == "denoising" else 0.1, g))


def draw_task(task: str, train: dict, n: int, patch: int, g: torch.Generator):
    """One batch of a task: (x, physics), x complex for MRI."""
    colour = task == "demosaicing" or (task in ("denoising", "inpainting", "deblurring", "cs") and bool(torch.rand((), generator=g) < 0.5))
    pool = train["colour"] if colour else train["ct"] if task == "ct" else train["mri"] if task == "mri" else train["gray"]
    x = crops(pool, n, patch, g)
    noise = _noise(task, n, g)
    c = x.shape[1]
    if task == "denoising":
        op = Denoising(noise=noise)
    elif task == "inpainting":
        keep = _uniform(n, 0.2, 0.9, g)[:, None, None, None]
        mask = (torch.rand(n, 1, patch, patch, generator=g) < keep).float().expand(n, c, patch, patch).contiguous()
        op = Inpainting(mask, noise=noise)
    elif task == "deblurring":
        kind = "gaussian" if bool(torch.rand((), generator=g) < 0.5) else "motion"
        sampler = BlurKernelSampler(kind, size=15, sigma_range=(0.5, 3.0), length_range=(3.0, 11.0), dtype=torch.float32)
        op = Blur(sampler.sample(n, generator=g), noise=noise)
    elif task == "cs":
        ratio = float(_uniform(1, 0.1, 0.5, g))
        shape = (c, patch, patch)
        op = CompressedSensing(max(1, round(ratio * math.prod(shape))), shape, kind="structured", generator=g, noise=noise)
    elif task == "demosaicing":
        op = Demosaicing("RGGB", noise=noise)
    elif task == "mri":
        acc = float(_uniform(1, 2.0, 8.0, g))
        pattern = "random" if bool(torch.rand((), generator=g) < 0.5) else "gaussian"
        mask = MRIMaskSampler(patch, acceleration=acc, center_fraction=0.08, pattern=pattern).sample(n, generator=g)
        coarse = torch.rand(n, 1, 4, 4, generator=g) * 2 - 1
        phi = F.interpolate(coarse, size=(patch, patch), mode="bicubic", align_corners=True)
        x = (x * torch.exp(1j * math.pi * 0.5 * phi)).to(torch.complex64)
        op = MRI(mask, noise=Gaussian(_uniform(n, 0.0, 0.05, g)))
    elif task == "ct":
        views = int(torch.randint(10, 91, (1,), generator=g))
        op = Tomography(views, patch)
        rms = op.A(x).pow(2).flatten(1).mean(1).sqrt()
        op = op.with_noise(Gaussian(rms * _uniform(n, 0.0, 0.05, g)))
    else:
        raise ValueError(f"unknown task {task!r}")
    return x, op


def measure(x: torch.Tensor, op, g: torch.Generator) -> torch.Tensor:
    return op(x, generator=g)


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if x.is_complex():
        x_hat, x = x_hat.abs(), x.abs()
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


def validation_set(held: dict, patch: int, seed: int) -> dict[str, tuple]:
    g = torch.Generator().manual_seed(seed + 1)
    out = {}
    for task in TASKS:
        x, op = draw_task(task, held, 8, patch, g)
        y = measure(x, op, g)
        out[task] = (x, op, y, float(psnr(op.A_dagger(y), x).mean()))  # the pseudo-inverse's PSNR
    return out


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SELFINV_DATA"), help="../shared/data (empty: the embedded photographs)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pretrain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--install", action="store_true", help="ship OUT/ram.pt in the package (no training)")
    args = ap.parse_args(argv)
    if args.install:
        return install(args.out, Path(args.data) if args.data else None, args.seed)
    preset = dict(PRESETS[args.preset])
    steps = args.steps or preset["steps"]
    data = Path(args.data) if args.data else None
    args.out.mkdir(parents=True, exist_ok=True)
    train, held = load_pools(data)
    print({k: len(v) for k, v in train.items()}, "training images;", {k: len(v) for k, v in held.items()}, "held out", flush=True)
    arch = {"widths": list(preset["widths"]), "n_blocks": preset["n_blocks"]}
    torch.manual_seed(args.seed)
    net = RAM(1, 1, widths=arch["widths"], n_blocks=arch["n_blocks"])
    model = BackProjection(net, init="adjoint")
    opt = torch.optim.Adam(model.parameters(), lr=preset["lr"])
    warmup = min(500, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(warmup, 1)) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    g = torch.Generator().manual_seed(args.seed)
    start, elapsed = 0, 0.0
    log_path = args.out / "log.csv"
    if args.resume and (args.out / "last.pt").exists():
        ck = torch.load(args.out / "last.pt", weights_only=False)
        model.load_state_dict(ck["model"]), opt.load_state_dict(ck["opt"]), sched.load_state_dict(ck["sched"])
        g.set_state(ck["rng"])
        start, elapsed = ck["step"], ck["seconds"]
    elif log_path.exists():
        log_path.unlink()
    val = validation_set(held, preset["patch"], args.seed)
    print("pseudo-inverse PSNR on the validation crops: " + " ".join(f"{t} {v[3]:.2f}" for t, v in val.items()), flush=True)
    names, probs = list(TASKS), torch.tensor(list(TASKS.values()))
    running: dict[str, list[float]] = {t: [] for t in TASKS}
    t0 = time.perf_counter() - elapsed
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(["step", "seconds", "lr", *[f"train_{t}" for t in TASKS], *[f"val_psnr_{t}" for t in TASKS]])
        for step in range(start, steps):
            model.train()
            task = names[int(torch.multinomial(probs, 1, generator=g))]
            x, op = draw_task(task, train, preset["batch"], preset["patch"], g)
            y = measure(x, op, g)
            x_hat = model(y, op)
            loss = (x_hat - x).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running[task].append(loss.item())
            if (step + 1) % args.val_every == 0 or step + 1 == steps:
                model.eval()
                vals = []
                with torch.no_grad():
                    for t in TASKS:
                        vx, vop, vy, _ = val[t]
                        vals.append(float(psnr(model(vy, vop), vx).mean()))
                seconds = time.perf_counter() - t0
                tr = [sum(running[t]) / len(running[t]) if running[t] else float("nan") for t in TASKS]
                writer.writerow([step + 1, f"{seconds:.1f}", f"{sched.get_last_lr()[0]:.3g}", *[f"{v:.4f}" for v in tr],
                                 *[f"{v:.2f}" for v in vals]])
                fh.flush()
                running = {t: [] for t in TASKS}
                print(f"step {step + 1}/{steps} {seconds / 60:.1f} min  val PSNR " +
                      " ".join(f"{t} {v:.2f}" for t, v in zip(TASKS, vals, strict=True)), flush=True)
                save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                             "rng": g.get_state(), "step": step + 1, "seconds": seconds}, args.out / "last.pt")
    seconds = time.perf_counter() - t0
    final = {t: v for t, v in zip(TASKS, vals, strict=True)}
    out = args.out / "ram.pt"
    save_atomic({"format": "selfinv-pretrained-1", "arch": {"name": "ram", **arch}, "state_dict": net.state_dict(),
                 "facts": {"steps": steps, "batch": preset["batch"], "patch": preset["patch"], "seconds": round(seconds, 1),
                           "threads": torch.get_num_threads(), "preset": args.preset, "seed": args.seed,
                           "val_psnr": final, "torch": str(torch.__version__), "data": str(data) if data else "embedded"}}, out)
    plot_curve(log_path, args.out / "curve.png")
    print(f"wrote {out} after {steps} steps in {seconds / 60:.1f} min", flush=True)
    return out


SHIP = "ram-small"
CARD = """# {name}: an operator-conditioned reconstruction network (RAM-style), pretrained by selfinv

**What it is.** `selfinv.models.RAM` inside `BackProjection(init="adjoint")`: a bias-free U-Net, 4 scales of
widths {widths}, {n_blocks} residual block(s) per scale, a proximal realignment of Aᵀy, σ and Poisson-gain maps as
input channels, and at every scale a Krylov term that applies AᵀA/‖A‖² to the features ({params:.2f} M parameters).
Written from the description of Terris et al., *Reconstruct Anything Model* (2025); not their weights.
Heads for gray (1 channel), complex (1 complex = 2 real channels) and colour (3 channels) images.
Use: `selfinv.pretrained.load("{name}")`, `selfinv finetune {name} CONFIG`, `selfinv evaluate {name} CONFIG`,
`selfinv reconstruct {name} FILES --config CONFIG`.

## Data
Supervised pretraining on clean images of ../shared/data (never their test sets): train400_gray (400 BSD
crops 180²), McMaster 1–12 (colour; 13–18 held out for the finetuning benchmark), knee MRI magnitude slices
P1–P16 (P17–P20 held out; a smooth random phase is added), CT slices (head volume slices 0–79, 693_UNCI,
eCT_Supplemental; slices 80–92 and CT_small held out) and scikit-image's colour training photographs; random
64² crops, flips and 90° rotations. Images in [0, 1].

## Operators and noise
One task per step, drawn with these probabilities; operators and noise levels are drawn per sample:
denoising {p_denoising:.2f}, inpainting (pixel masks, kept fraction U(0.2, 0.9)) {p_inpainting:.2f},
deblurring (Gaussian σ U(0.5, 3) or motion length U(3, 11), 15×15) {p_deblurring:.2f}, compressed sensing
(structured random projections, m/n U(0.1, 0.5)) {p_cs:.2f}, demosaicing (Bayer RGGB) {p_demosaicing:.2f},
single-coil Cartesian MRI (acceleration U(2, 8), random or Gaussian-density lines, 8 % centre) {p_mri:.2f},
parallel-beam CT (10–90 views) {p_ct:.2f}. Noise: Gaussian σ U(0, 0.2) for denoising, U(0, 0.1) otherwise
(MRI U(0, 0.05) on k-space; CT U(0, 0.05) × the sinogram's RMS); Poisson with gain U(0.005, 0.05) in 30 % of
the denoising, inpainting and demosaicing steps. Outside these ranges (other operators, other noise) expect to
finetune: `selfinv finetune`.

## Training
L1 loss, Adam (lr {lr:g}, warm-up then cosine to 2 %), batch {batch}, {steps} steps, gradient clipping 1.0, seed
{seed}; {minutes:.0f} min on {threads} CPU threads (torch {torch}), `python benchmarks/pretrain.py --data
../shared/data` (preset `{preset}`). Curve: benchmarks/figures/pretrain_curve.png.

## PSNR
On fixed held-out 64² crops (8 per task, drawn once from the held-out images; dB, the pseudo-inverse A†y for
reference; A†y of a noisy blur amplifies the noise):

| task | A†y | {name} |
|---|---|---|
{rows}

The finetuning benchmark (BENCHMARKS.md, "Finetuning a pretrained model") scores it on 128² McMaster test crops.

## Licence
The weights are derived from: BSDS (train400: non-commercial research and education), McMaster (licence not
stated), mridata.org knee data (mridata.org terms), pydicom-data CT (MIT) and VTK's head volume (BSD),
scikit-image photographs (scikit-image's data licences). Use them for research; check these terms before any
other use. The code is BSD-3-Clause.

## Checksum
`{file}` SHA-256 `{sha256}`, {size_mb:.1f} MB (checked by selfinv before loading).
"""


def install(out: Path, data: Path | None, seed: int) -> Path:
    """Re-score OUT/ram.pt on the held-out crops, ship it (weights, model card, checksum) and copy its curve."""
    import hashlib
    import re
    import shutil

    payload = torch.load(out / "ram.pt", weights_only=False)  # our own file; written back weights-only below
    payload["facts"] = {k: (str(v) if k == "torch" else v) for k, v in payload["facts"].items()}
    arch = payload["arch"]
    net = RAM(1, 1, widths=arch["widths"], n_blocks=arch["n_blocks"])
    net.load_state_dict(payload["state_dict"])
    model = BackProjection(net, init="adjoint").eval()
    _, held = load_pools(data)
    val = validation_set(held, payload["facts"]["patch"], seed)
    rows = []
    with torch.no_grad():
        for task, (x, op, y, pinv) in val.items():
            rows.append(f"| {task} | {pinv:.2f} | {float(psnr(model(y, op), x).mean()):.2f} |")
    weights = ROOT / "selfinv" / "models" / "weights"
    target = weights / f"{SHIP}.pt"
    save_atomic(payload, target)
    torch.load(target, weights_only=True)  # loadable as the package loads it
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    f = payload["facts"]
    card = CARD.format(name=SHIP, widths=tuple(arch["widths"]), n_blocks=arch["n_blocks"],
                       params=sum(p.numel() for p in net.parameters()) / 1e6, rows="\n".join(rows),
                       lr=PRESETS[f["preset"]]["lr"], batch=f["batch"], steps=f["steps"], seed=f["seed"],
                       minutes=f["seconds"] / 60, threads=f["threads"], torch=f["torch"], preset=f["preset"],
                       file=target.name, sha256=sha, size_mb=target.stat().st_size / 2**20,
                       **{f"p_{t}": p for t, p in TASKS.items()})
    (weights / f"{SHIP}.md").write_text(card, encoding="utf-8")
    catalog = ROOT / "selfinv" / "models" / "pretrained.py"
    text = catalog.read_text()
    text = re.sub(r'(file="' + SHIP + r'\.pt",\n\s*sha256=")[0-9a-f]{64}"', lambda m: m.group(1) + sha + '"', text)
    catalog.write_text(text)
    if (out / "curve.png").exists():
        shutil.copy(out / "curve.png", ROOT / "benchmarks" / "figures" / "pretrain_curve.png")
    print(card)
    return target


def plot_curve(log_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(log_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for t in TASKS:
        ax[0].plot(steps, [float(r[f"train_{t}"]) for r in rows], label=t)
        ax[1].plot(steps, [float(r[f"val_psnr_{t}"]) for r in rows], label=t)
    ax[0].set(xlabel="step", ylabel="training L1", yscale="log", title="training loss (per task)")
    ax[1].set(xlabel="step", ylabel="PSNR (dB)", title="held-out 64² crops")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
