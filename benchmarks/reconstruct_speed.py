"""`selfinv reconstruct` throughput and peak memory on a 4096×4096 image, and test-time cost per image.

    python benchmarks/reconstruct_speed.py [--size 4096] [--no-write]

For each model (the ladder's DnCNN 8×32 and the config templates' U-Net), one training step makes a real
checkpoint through ``selfinv train``; a noisy 4096² image is written as float32 .npy; ``selfinv reconstruct``
runs in a fresh process (tiled: 512² tiles with a 32-pixel margin), timed end to end (process start, reading,
writing included) and by its reconstruction alone; peak memory is the child's maximum resident set size.
Results go to benchmarks/results/reconstruct_speed.json and the "reconstruct-speed" block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SELFINV = [str(Path(sys.executable).parent / "selfinv")]  # the console script of this environment
MODELS = {
    "DnCNN 8×32 (ladder)": {"name": "dncnn", "depth": 8, "width": 32, "batch_norm": False},
    "U-Net depth 2, width 16 (templates)": {"name": "unet", "depth": 2, "width": 16},
}


def checkpoint(folder: Path, backbone: dict) -> Path:
    cfg = {
        "data": {"source": "embedded", "images": ["brick", "cell"], "test_images": ["camera"], "patch_size": 32,
                 "patches_per_image": 2, "test_size": 32, "val_fraction": 0.5},
        "physics": {"name": "denoising"}, "noise": {"name": "gaussian", "sigma": 0.1}, "loss": {"name": "sure"},
        "model": {"backbone": backbone, "wrapper": {"name": "none"}},
        "training": {"max_steps": 1, "batch_size": 2, "run_dir": str(folder / "run"), "device": "cpu"}, "seed": 0,
    }
    (folder / "c.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([*SELFINV, "train", str(folder / "c.yaml"), "--no-progress"], check=True, capture_output=True)
    return folder / "run" / "last.pt"


def measure(ckpt: Path, image: Path, out: Path, tile: int | None) -> dict:
    """Wall time and peak resident memory of one ``selfinv reconstruct`` process (``os.wait4``: that child only)."""
    cmd = [*SELFINV, "reconstruct", str(ckpt), str(image), "--output", str(out), "--device", "cpu", "--no-progress"]
    if tile is not None:
        cmd += ["--tile", str(tile)]
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        log.seek(0)
        err = log.read().strip()
    if code != 0:
        return {"error": err.splitlines()[-1] if err else f"exit code {code}"}
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB on Linux


def in_process(ckpt: Path, size: int) -> dict:
    """The reconstruction alone (no process start or I/O): tiled_apply of the checkpoint's model."""
    import torch

    from selfinv.config import parse_config
    from selfinv.engine import build_model
    from selfinv.inference import receptive_field, tiled_apply
    from selfinv.physics import Denoising
    from selfinv.training import load_checkpoint

    state = load_checkpoint(ckpt)
    cfg = parse_config(state["config"])
    model = build_model(cfg, 1, False)
    model.load_state_dict(state["model"])
    model.eval()
    y = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    physics = Denoising()
    with torch.no_grad():
        tiled_apply(lambda t: model(t, physics), y[..., :512, :512], tile=512, overlap=32)  # warm-up
        t0 = time.perf_counter()
        tiled_apply(lambda t: model(t, physics), y, tile=512, overlap=32)
        seconds = time.perf_counter() - t0
        small = y[..., :256, :256]
        t0 = time.perf_counter()
        for _ in range(5):
            model(small, physics)
        per_256 = (time.perf_counter() - t0) / 5
    return {"seconds": seconds, "mp_per_s": size * size / 1e6 / seconds, "receptive_field": receptive_field(model, 1),
            "ms_per_256_image": per_256 * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        image = tmp / "noisy.npy"
        np.save(image, (rng.random((args.size, args.size), dtype=np.float32) * 0.8 + 0.1
                        + rng.normal(0, 0.1, (args.size, args.size)).astype(np.float32)))
        for i, (label, backbone) in enumerate(MODELS.items()):
            folder = tmp / f"m{i}"
            folder.mkdir()
            ckpt = checkpoint(folder, backbone)
            cli = measure(ckpt, image, folder / "out", None)
            core = in_process(ckpt, args.size)
            rows.append({"model": label, "cli": cli, "core": core})
            print(label, cli, core, flush=True)
    result = {"size": args.size, "rows": rows, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu": platform.machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "reconstruct_speed.json").write_text(json.dumps(result, indent=1))
    mp = args.size * args.size / 1e6
    lines = [
        "<!-- reconstruct-speed:begin -->",
        f"One {args.size}×{args.size} float32 image ({mp:.1f} MP), device `cpu` ({result['cpu']}, {result['threads']} threads), "
        f"torch {result['torch']}. `selfinv reconstruct` in a fresh process (512² tiles, 32-pixel margin; start-up, "
        "reading and writing included) and the tiled reconstruction alone. Regenerate with "
        "`python benchmarks/reconstruct_speed.py`.",
        "",
        "| model | receptive-field radius | `reconstruct` wall (s) | MP/s end to end | peak memory (MiB) | "
        "reconstruction alone (s) | MP/s | ms per 256² image |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c, k = r["cli"], r["core"]
        if "error" in c:
            lines.append(f"| {r['model']} | {k['receptive_field']} | failed: {c['error']} | | | {k['seconds']:.2f} | "
                         f"{k['mp_per_s']:.1f} | {k['ms_per_256_image']:.1f} |")
            continue
        peak = f"{c['peak_rss_mib']:.0f}"
        lines.append(f"| {r['model']} | {k['receptive_field']} | {c['wall_s']:.1f} | {mp / c['wall_s']:.1f} | {peak} | "
                     f"{k['seconds']:.2f} | {k['mp_per_s']:.1f} | {k['ms_per_256_image']:.1f} |")
    lines.append("<!-- reconstruct-speed:end -->")
    body = "\n".join(lines)
    print(body)
    if args.no_write:
        return
    bench = ROOT / "BENCHMARKS.md"
    doc = bench.read_text()
    begin, end = "<!-- reconstruct-speed:begin -->", "<!-- reconstruct-speed:end -->"
    if begin in doc:
        doc = doc[: doc.index(begin)] + body + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n## Reconstruction throughput\n\n" + body + "\n"
    bench.write_text(doc)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
