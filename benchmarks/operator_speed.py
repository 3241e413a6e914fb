"""Time A and Aᴴ of every operator at batch 8 × 256×256, the real-acquisition operators at the sizes of real scans
(batch 1), and the samplers' throughput.

Writes the table into BENCHMARKS.md between the ``operator-speed`` markers (the rest of the file is
kept) and the raw numbers into benchmarks/results/operator_speed.json.

    python benchmarks/operator_speed.py [--device cpu|cuda] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from selfinv.physics import CompressedSensing, Demosaicing, Denoising, FanBeamTomography, MultiCoilMRI, Tomography
from selfinv.physics.blur import Blur, BlurKernelSampler, gaussian_kernel
from selfinv.physics.samplers import BernoulliMaskSampler, BlockMaskSampler, MRIMaskSampler

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- operator-speed:begin -->", "<!-- operator-speed:end -->"
B, N = 8, 256


def timeit(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def operators(device: str) -> dict[str, tuple[object, torch.Tensor, str]]:
    g = torch.Generator().manual_seed(0)
    gray = torch.rand(B, 1, N, N, generator=g)
    rgb = torch.rand(B, 3, N, N, generator=g)
    cplx = torch.randn(B, 1, N, N, generator=g, dtype=torch.complex64)
    n_angles = 180
    ops = {
        "Denoising": (Denoising(), gray, "A = I"),
        "Inpainting (per-sample masks)": (BernoulliMaskSampler(N, 0.5)(B, generator=g), gray, "Bernoulli p = 0.5"),
        "MRI (per-sample masks)": (MRIMaskSampler(N, 4, 0.08)(B, generator=g), cplx, "×4 random lines, complex64"),
        "Tomography": (Tomography(n_angles, N), gray, f"{n_angles} angles, {N} detectors"),
        "Blur (shared kernel)": (Blur(gaussian_kernel(2.0, size=9)), gray, "9×9 Gaussian, FFT"),
        "Blur (per-sample kernels)": (Blur(BlurKernelSampler("gaussian", size=9).sample(B, generator=g)), gray, "9×9, FFT"),
        "CompressedSensing (structured)": (
            CompressedSensing(N * N // 4, (1, N, N), kind="structured", generator=g),
            gray,
            "m = n/4, signs + subsampled DCT",
        ),
        "Demosaicing": (Demosaicing("RGGB"), rgb, "Bayer RGGB"),
    }
    return {k: (op.to(device), x.to(device), note) for k, (op, x, note) in ops.items()}


def acquisitions(device: str) -> dict[str, tuple[object, torch.Tensor, str]]:
    """The operators of real scans at their sizes, one image: SENSE with 8 coils on 320², the HTC2022 fan beam
    (560 detectors × 181 views of 0.5° on the challenge's 512² grid) and the binned version the real-CT benchmark
    trains with (140 detectors of 0.8 mm × 91 views of 1° on 128²), beside parallel-beam Tomography at 512²."""
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(1, 8, 320, 320, generator=g, dtype=torch.complex64)
    maps = maps / maps.abs().square().sum(1, keepdim=True).sqrt()
    points = torch.rand(1, 1, 320, 320, generator=g) < 0.25
    htc = {"source_distance": 410.66, "detector_distance": 553.74}
    ops = {
        "MultiCoilMRI (SENSE)": (MultiCoilMRI(points.float(), maps), torch.randn(1, 1, 320, 320, generator=g,
                                 dtype=torch.complex64), "8 coils × 320², 25 % random points, complex64"),
        "FanBeamTomography (HTC2022)": (
            FanBeamTomography(torch.arange(181) * 0.5, 512, 560, detector_spacing=0.2, pixel_size=0.1483, **htc),
            torch.rand(1, 1, 512, 512, generator=g), "560 detectors × 181 views (90°), 512²"),
        "FanBeamTomography (binned ×4, 1°)": (
            FanBeamTomography(torch.arange(91) * 1.0, 128, 140, detector_spacing=0.8, pixel_size=0.5933, **htc),
            torch.rand(1, 1, 128, 128, generator=g), "140 detectors × 91 views, 128²"),
        "Tomography (parallel)": (Tomography(181, 512), torch.rand(1, 1, 512, 512, generator=g), "181 angles, 512²"),
    }
    return {k: (op.to(device), x.to(device), note) for k, (op, x, note) in ops.items()}


def samplers() -> dict[str, Callable[[torch.Generator], torch.Tensor]]:
    return {
        "BernoulliMaskSampler": BernoulliMaskSampler(N, 0.5).sample,
        "BlockMaskSampler (4 blocks 32×32)": BlockMaskSampler(N, 32, 4).sample,
        "MRIMaskSampler random ×4": MRIMaskSampler(N, 4, 0.08, "random").sample,
        "MRIMaskSampler gaussian ×4": MRIMaskSampler(N, 4, 0.08, "gaussian").sample,
        "MRIMaskSampler equispaced ×4": MRIMaskSampler(N, 4, 0.08, "equispaced").sample,
        "BlurKernelSampler gaussian 9×9": BlurKernelSampler("gaussian", size=9).sample,
        "BlurKernelSampler motion 9×9": BlurKernelSampler("motion", size=9).sample,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()

    rows, raw = [], {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__}
    def forward_adjoint(name: str, op, x) -> tuple[float, float]:
        """Median ms of A and of Aᴴ (recorded in ``raw``)."""
        y = op.A(x)
        t_a = timeit(lambda: op.A(x), args.repeats, args.device)
        t_h = timeit(lambda: op.A_adjoint(y), args.repeats, args.device)
        raw[name] = {"A_ms": t_a, "AH_ms": t_h}
        return t_a, t_h

    arows = []
    with torch.no_grad():
        for name, (op, x, note) in operators(args.device).items():
            t_a, t_h = forward_adjoint(name, op, x)
            rows.append(f"| {name} | {note} | {t_a:.1f} | {t_h:.1f} | {B * 1e3 / t_a:.0f} |")
            print(rows[-1], flush=True)
        for name, (op, x, note) in acquisitions(args.device).items():
            t_a, t_h = forward_adjoint(name, op, x)
            arows.append(f"| {name} | {note} | {t_a:.1f} | {t_h:.1f} | {1e3 / (t_a + t_h):.1f} |")
            print(arows[-1], flush=True)
    srows = []
    for name, sample in samplers().items():
        g = torch.Generator().manual_seed(0)
        t = timeit(lambda sample=sample, g=g: sample(B, g), args.repeats, "cpu")
        srows.append(f"| {name} | {t:.2f} | {B * 1e3 / t:.0f} |")
        raw[name] = {"sample_ms": t}
        print(srows[-1], flush=True)

    cpu = platform.processor() or platform.machine()
    table = "\n".join(
        [
            BEGIN,
            f"Batch {B} × {N}×{N}, float32 (complex64 for MRI), device `{args.device}` ({cpu}, "
            f"{torch.get_num_threads()} threads), torch {torch.__version__}; median of {args.repeats} runs after a warm-up. "
            "Regenerate with `python benchmarks/operator_speed.py`.",
            "",
            "| operator | setting | A (ms) | Aᴴ (ms) | images/s through A |",
            "|---|---|---:|---:|---:|",
            *rows,
            "",
            "The operators of real scans at their sizes (one image; the binned fan beam is what the real-CT section "
            "trains with):",
            "",
            "| operator | setting | A (ms) | Aᴴ (ms) | A + Aᴴ per s |",
            "|---|---|---:|---:|---:|",
            *arows,
            "",
            f"Samplers (a batch of {B} operators of size {N}×{N}, CPU):",
            "",
            "| sampler | ms per batch | operators/s |",
            "|---|---:|---:|",
            *srows,
            END,
        ]
    )
    if args.no_write:
        print(table)
        return
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "operator_speed.json").write_text(json.dumps(raw, indent=2))
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text() if bench.exists() else "# Benchmarks\n\n## Operator speed\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + table + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + table + "\n"
    bench.write_text(text)
    print(f"wrote {bench}")


if __name__ == "__main__":
    main()
