"""Speed of every loss: median training-step time relative to the supervised step, in the same run.

Each loss trains the same network (DnCNN, 8 layers × 32 channels) on the same batch (8 × 1 × 64 × 64
crops of the embedded photographs, Gaussian noise σ = 25/255; inpainting masks for the
incomplete-measurement losses) for a few warm-up steps and then ``--steps`` timed steps, interleaved
round-robin across losses so that machine load affects them alike. The target (issue #7) is a ratio
of at most its network-evaluation count × 1.1. Test-time cost per image uses ``loss.test_model``.

    python benchmarks/loss_speed.py [--steps 20] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from selfinv.data import embedded_images
from selfinv.losses import LOSSES
from selfinv.models import Autoencoder, BackProjection, BlindSpotNet, DnCNN
from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from selfinv.physics.samplers import BernoulliMaskSampler

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- loss-speed:begin -->", "<!-- loss-speed:end -->"
B, S = 8, 64
INCOMPLETE = ("splitting", "moi", "ei", "rei")


def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    imgs = [torch.from_numpy(im) for im in embedded_images(names=["camera", "coins", "moon", "brick"])]
    crops = []
    for i in range(B):
        im = imgs[i % len(imgs)]
        top = int(torch.randint(0, im.shape[-2] - S, (1,), generator=g))
        left = int(torch.randint(0, im.shape[-1] - S, (1,), generator=g))
        crops.append(im[:, top : top + S, left : left + S])
    return torch.stack(crops)


#: the supervised step on the incomplete-measurement setting: the reference of the losses in INCOMPLETE
SUP_INCOMPLETE = "supervised (inpainting)"


def setup(name: str, x: torch.Tensor):
    torch.manual_seed(0)
    noise = Gaussian(25 / 255)
    if name == SUP_INCOMPLETE:
        loss, physics, model, y, y2, opt = setup("splitting", x)
        return LOSSES["supervised"].example(), physics, model, y, y2, opt
    if name in INCOMPLETE:
        physics = BernoulliMaskSampler(S, p=0.5)(B, generator=torch.Generator().manual_seed(1), noise=noise)
        model = BackProjection(DnCNN(1, 1, depth=8, width=32, batch_norm=False), init="adjoint")
    else:
        physics = Denoising(noise=noise)
        model = DnCNN(1, 1, depth=8, width=32, batch_norm=False)
    if name == "blind_spot":
        model = BlindSpotNet(1, 1, width=32, depth=2)
    if name == "autoencoder":
        model = Autoencoder(1, bottleneck=4, width=32, depth=3)
    if name == "moi":
        from selfinv.losses import MOI

        loss = MOI(BernoulliMaskSampler(S, p=0.5))
    else:
        loss = LOSSES[name].example()
    y = physics(x, generator=torch.Generator().manual_seed(2))
    y2 = physics(x, generator=torch.Generator().manual_seed(3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    return loss, physics, model, y, y2, opt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    x = batch()
    names = [n for n in LOSSES if n not in ("unsure_covariance", "unsure_pg")] + [SUP_INCOMPLETE]
    runs = {n: setup(n, x) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for it in range(args.steps + 3):
        for n in names:
            loss, physics, model, y, y2, opt = runs[n]
            g = torch.Generator().manual_seed(100 + it)
            t0 = time.perf_counter()
            value = loss(y, physics, model, x=x, y2=y2, generator=g)
            opt.zero_grad()
            value.backward()
            opt.step()
            if it >= 3:
                times[n].append(time.perf_counter() - t0)
    results = []
    sup = statistics.median(times["supervised"])
    sup_incomplete = statistics.median(times[SUP_INCOMPLETE])
    for n in names:
        loss, physics, model, y, y2, opt = runs[n]
        est = loss.test_model(model)
        with torch.no_grad():
            est(y, physics)
            t0 = time.perf_counter()
            for _ in range(3):
                est(y, physics)
            test = (time.perf_counter() - t0) / (3 * B)
        med = statistics.median(times[n])
        evals = loss.train_evals_for(physics)
        ref = sup_incomplete if n in INCOMPLETE else sup
        results.append({"loss": n, "step_ms": 1e3 * med, "ratio": med / ref, "evals": evals,
                        "within_target": med / ref <= 1.1 * evals, "test_ms_per_image": 1e3 * test})
    lines = [
        BEGIN,
        f"Batch {B} × 1 × {S}×{S}, DnCNN 8 × 32 (BlindSpotNet / Autoencoder for their losses), Adam, "
        f"CPU {platform.machine()} with {torch.get_num_threads()} threads, torch {torch.__version__}; median of "
        f"{args.steps} steps after 3 warm-up steps, losses interleaved. Regenerate with `python benchmarks/loss_speed.py`.",
        "",
        "| loss | network evals / step | step (ms) | ÷ supervised step (same setting) | target ≤ evals × 1.1 | "
        "test time / image (ms) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in results:
        lines.append(f"| {r['loss']} | {r['evals']} | {r['step_ms']:.1f} | {r['ratio']:.2f} | "
                     f"{'yes' if r['within_target'] else 'no'} | {r['test_ms_per_image']:.2f} |")
    lines += ["", "Losses on incomplete measurements (splitting, MOI, EI, REI) run on 50 % inpainting with a back-projection "
              "wrapper, and their ratios are to the supervised step in that setting (its own row); blind-spot and autoencoder use "
              "their own architectures, so their ratios compare different networks.", END]
    text = "\n".join(lines)
    print(text)
    if args.no_write:
        return
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "loss_speed.json").write_text(json.dumps(results, indent=2))
    bench = ROOT / "BENCHMARKS.md"
    doc = bench.read_text()
    if BEGIN in doc:
        doc = doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip() + "\n\n## Speed of the losses\n\n" + text + "\n"
    bench.write_text(doc)


if __name__ == "__main__":
    main()
