"""Finetuning the shipped pretrained network (the tutorial's Table 5 on 2 CPU cores).

    python benchmarks/finetune.py --data ../shared/data [--tasks cs,demosaicing,box_blur] [--ns 1,10,100]
                                  [--no-write] [--rewrite]

Images the model never saw: McMaster 13–18 (held out of pretraining, benchmarks/pretrain.py). Training
measurements: N random 128² colour crops of images 13–16; test: the 18 crops of a 3×3 grid of 128² crops of
images 17 and 18. Tasks: compressed sensing (structured random projections of the whole 3×128² vector, m = n/4,
σ = 0.05), Bayer demosaicing (σ = 0.05), and out of distribution, a 9×9 box blur (σ = 0.02; pretraining saw
Gaussian and motion blurs only). Rows, per task: the pseudo-inverse A†y, the pretrained model zero-shot, the same
model finetuned self-supervised (`selfinv.pretrained.finetune` defaults: SURE + 0.1·EI(shifts), Adam 1e-4),
the same architecture trained from scratch with that loss and budget (Adam 1e-3), and supervised finetuning (the
ceiling); N = 1, 10, 100 with 30, 60, 100 steps of batch 2; best.pt (lowest self-supervised validation loss) is
scored. Also: the time of one N = 1 finetuning of a 256² image at the defaults. Results:
benchmarks/results/finetune/ (results.json, figures); the section "Finetuning a pretrained model" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from run import publish  # noqa: E402

from selfinv.config import parse_config  # noqa: E402
from selfinv.data import MeasurementDataset, Normalization, read_image  # noqa: E402
from selfinv.data.readers import list_images  # noqa: E402
from selfinv.engine.build import build_experiment  # noqa: E402
from selfinv.engine.checkpoints import restore, restore_pretrained  # noqa: E402
from selfinv.engine.data import build_test_set  # noqa: E402
from selfinv.engine.evaluate import evaluate_dataset  # noqa: E402
from selfinv.engine.physics_builders import build_noise, build_physics  # noqa: E402
from selfinv.engine.train import train_experiment  # noqa: E402
from selfinv.models.pretrained import model_section  # noqa: E402
from selfinv.pretrained import finetune, finetune_config  # noqa: E402
from selfinv.training.metrics import psnr  # noqa: E402

NAME, TITLE = "finetune", "Finetuning a pretrained model"
MODEL = "ram-small"
SIZE = 128
STEPS = {1: 30, 10: 60, 100: 100}
TASKS = {
    "cs": {"label": "compressed sensing m = n/4, σ = 0.05",
           "physics": {"name": "compressed_sensing", "m": 3 * SIZE * SIZE // 4, "kind": "structured"},
           "noise": {"name": "gaussian", "sigma": 0.05}},
    "demosaicing": {"label": "demosaicing (Bayer), σ = 0.05", "physics": {"name": "demosaicing"},
                    "noise": {"name": "gaussian", "sigma": 0.05}},
    "box_blur": {"label": "box blur 9×9, σ = 0.02 (not in pretraining)",
                 "physics": {"name": "blur", "kernel": {"kind": "box", "size": 9}}, "noise": {"name": "gaussian", "sigma": 0.02}},
}


def rgb(path: Path) -> torch.Tensor:
    """An 8-bit colour file as (3, H, W) in [0, 1]."""
    arr, info = read_image(path, return_info=True)
    return torch.from_numpy(arr / np.float32(info.data_range[1] if info.bit_depth else 1.0)).clamp(0, 1)


def crops(data: Path, n_train: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    files = {int(p.stem): p for p in list_images(data / "mcmaster18_color")}
    imgs = {k: rgb(files[k]) for k in range(13, 19)}
    g = torch.Generator().manual_seed(seed)
    train = []
    for _ in range(n_train):
        k = 13 + int(torch.randint(4, (1,), generator=g))
        h, w = imgs[k].shape[-2:]
        t, l = int(torch.randint(h - SIZE + 1, (1,), generator=g)), int(torch.randint(w - SIZE + 1, (1,), generator=g))
        train.append(imgs[k][:, t : t + SIZE, l : l + SIZE])
    test = [imgs[k][:, 58 + SIZE * i : 58 + SIZE * (i + 1), 58 + SIZE * j : 58 + SIZE * (j + 1)]
            for k in (17, 18) for i in range(3) for j in range(3)]
    return torch.stack(train), torch.stack(test)


def simulate(cfg_dict: dict, x: torch.Tensor, path: Path, seed: int) -> None:
    cfg = parse_config(cfg_dict)
    op, _ = build_physics(cfg, tuple(x.shape[1:]), build_noise(cfg))
    y = op(x, generator=torch.Generator().manual_seed(seed))
    MeasurementDataset(y, op, x=x, normalization=Normalization(1.0, 0.0)).save(path, overwrite=True)


def base_config(task: dict, out: Path) -> dict:
    return {"physics": task["physics"], "noise": task["noise"],
            "data": {"source": "measurements", "path": str(out / "train.npz"), "test_path": str(out / "test.npz"),
                     "normalization": "none", "patch_size": None, "val_fraction": 0.2, "img_size": [3, SIZE, SIZE]},
            "training": {"batch_size": 2, "progress": False}}


def score(restored, cfg) -> dict:
    ds = build_test_set(cfg, normalization=restored.normalization)
    ev = evaluate_dataset(restored.model, restored.loss, ds, 1.0, restored.device, batch_size=6, seed=0)
    s = ev.summary()
    return {"psnr": s["psnr"], "ssim": s["ssim"], "baseline_psnr": s["baseline"]["psnr"], "baseline_ssim": s["baseline"]["ssim"]}


def run_one(kind: str, base: dict, n: int, out: Path) -> dict:
    steps = STEPS[n]
    folder = out / f"{kind}-n{n}"
    if (folder / "result.json").exists():
        return json.loads((folder / "result.json").read_text())
    if folder.exists():
        shutil.rmtree(folder)
    t0 = time.perf_counter()
    if kind == "finetuned":
        done = finetune(MODEL, base, n=n, steps=steps, run_dir=folder)
        seconds, best = done.run.seconds, done.best
    else:
        data = finetune_config(base, MODEL, n=n, steps=steps).model_dump(mode="json")
        if kind == "scratch":
            data["model"] = {**model_section(MODEL), "pretrained": None}
            data["training"]["lr"] = 1e-3
        else:  # supervised finetuning, the ceiling
            data["loss"] = {"name": "supervised"}
        exp = build_experiment(parse_config({**data, "training": {**data["training"], "run_dir": str(folder)}}))
        run = train_experiment(exp, folder, progress=False, report=False)
        seconds, best = run.seconds, folder / ("best.pt" if (folder / "best.pt").exists() else "last.pt")
    restored = restore(best)
    res = {"kind": kind, "n": n, "steps": steps, "train_seconds": round(seconds, 1),
           "wall_seconds": round(time.perf_counter() - t0, 1), **score(restored, restored.cfg)}
    (folder / "result.json").write_text(json.dumps(res))
    print(f"  {kind:10s} N={n:<4d} PSNR {res['psnr']:.2f} SSIM {res['ssim']:.3f} ({seconds:.0f} s)", flush=True)
    return res


def timing_256(data: Path, out: Path) -> dict:
    """One N = 1 finetuning of a 256² crop at the defaults (demosaicing, σ = 0.05): the issue's 60-second budget."""
    folder = out / "timing-256"
    img = rgb(data / "mcmaster18_color" / "13.tif")[None, :, 100:356, 100:356]
    task = TASKS["demosaicing"]
    base = base_config(task, folder)
    base["data"] = {k: v for k, v in base["data"].items() if k not in ("patch_size", "val_fraction")}  # the defaults
    base["training"] = {"progress": False}
    folder.mkdir(parents=True, exist_ok=True)
    simulate(base, img.contiguous(), folder / "train.npz", 5)
    simulate(base, img.contiguous(), folder / "test.npz", 6)
    t0 = time.perf_counter()
    done = finetune(MODEL, base, n=1, run_dir=folder / "run")
    return {"seconds_all": round(time.perf_counter() - t0, 1), "train_seconds": round(done.run.seconds, 1),
            "steps": done.run.state.step, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SELFINV_DATA"))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--ns", default="1,10,100")
    ap.add_argument("--kinds", default="finetuned,scratch,supervised")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / NAME)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--rewrite", action="store_true")
    args = ap.parse_args()
    out = args.out
    if args.rewrite:
        write(json.loads((out / "results.json").read_text()), out, args.no_write)
        return
    data = Path(args.data)
    ns = [int(v) for v in args.ns.split(",")]
    train_x, test_x = crops(data, max(ns))
    summary = {"tasks": {}, "ns": ns, "threads": torch.get_num_threads()}
    t_all = time.perf_counter()
    for key in args.tasks.split(","):
        task = TASKS[key]
        tdir = out / key
        tdir.mkdir(parents=True, exist_ok=True)
        base = base_config(task, tdir)
        simulate(base, train_x, tdir / "train.npz", 1)
        simulate(base, test_x, tdir / "test.npz", 2)
        cfg = parse_config(base)
        zero = score(restore_pretrained(MODEL, cfg), cfg)
        rows = {"zero-shot": zero}
        print(f"{key}: A†y {zero['baseline_psnr']:.2f}, zero-shot {zero['psnr']:.2f}", flush=True)
        for n in ns:
            for kind in args.kinds.split(","):
                rows[f"{kind}-{n}"] = run_one(kind, base, n, tdir)
        summary["tasks"][key] = {"label": task["label"], "rows": rows}
    summary["timing_256"] = timing_256(data, out)
    summary["seconds"] = round(time.perf_counter() - t_all, 1)
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    figure(summary, out, test_x)
    write(summary, out, args.no_write)


def figure(summary: dict, out: Path, test_x: torch.Tensor) -> None:
    """Test crop 0 of each task: truth, A†y, zero-shot, finetuned and scratch at N = 10, supervised at N = 10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary["tasks"])
    cols = ["truth", "A†y", "zero-shot", "finetuned-10", "scratch-10", "supervised-10"]
    fig, axes = plt.subplots(len(tasks), len(cols), figsize=(2.2 * len(cols), 2.3 * len(tasks)), squeeze=False)
    for r, key in enumerate(tasks):
        tdir = out / key
        cfg = parse_config(base_config(TASKS[key], tdir))
        ds = build_test_set(cfg, normalization=Normalization(1.0, 0.0))
        y, op = ds.y[:1], ds.physics_template
        imgs = {"truth": test_x[:1], "A†y": op.A_dagger(y)}
        with torch.no_grad():
            imgs["zero-shot"] = restore_pretrained(MODEL, cfg).model(y, op)
            for c in cols[3:]:
                kind, n = c.split("-")
                folder = tdir / f"{kind}-n{n}"
                ck = folder / "best.pt" if (folder / "best.pt").exists() else folder / "last.pt"
                if ck.exists():
                    imgs[c] = restore(ck).model(y, op)
        for c, name in enumerate(cols):
            ax = axes[r, c]
            ax.axis("off")
            if name in imgs:
                im = imgs[name][0].clamp(0, 1).permute(1, 2, 0).numpy()
                p = float(psnr(imgs[name].clamp(0, 1), test_x[:1], 1.0)) if name != "truth" else None
                ax.imshow(im)
                ax.set_title(name + (f"\n{p:.2f} dB" if p is not None else ""), fontsize=8)
        axes[r, 0].text(-10, SIZE / 2, key, rotation=90, va="center", ha="right", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"{NAME}.png", dpi=90)
    plt.close(fig)


def write(summary: dict, out: Path, no_write: bool) -> None:
    ns = summary["ns"]
    lines = [f"<!-- {NAME}:begin -->", "", "Run: `python benchmarks/finetune.py --data ../shared/data` (2 CPU threads, alone; "
             f"{summary.get('seconds', 0) / 60:.0f} min). Model `{MODEL}` (2.3 M parameters, pretrained by "
             "`benchmarks/pretrain.py`, model card `selfinv/models/weights/ram-small.md`). Test: 18 crops 128² of McMaster 17–18, "
             "never seen in pretraining; training measurements: N crops of McMaster 13–16. PSNR (dB) / SSIM on the test "
             "crops; seconds = training time of the run (validation included).", ""]
    for t in summary["tasks"].values():
        rows = t["rows"]
        z = rows["zero-shot"]
        lines += [f"**{t['label']}**", "", "| method | " + " | ".join(f"N = {n}" for n in ns) + " |",
                  "|---|" + "---|" * len(ns),
                  "| no learning (A†y; y for the blur) |" + f" {z['baseline_psnr']:.2f} / {z['baseline_ssim']:.3f} |" * len(ns),
                  "| pretrained, zero-shot |" + f" {z['psnr']:.2f} / {z['ssim']:.3f} |" * len(ns)]
        for kind, label in (("finetuned", "pretrained + self-supervised finetuning"),
                            ("scratch", "same network from scratch, same loss and steps"),
                            ("supervised", "pretrained + supervised finetuning (ceiling)")):
            cells = []
            for n in ns:
                r = rows.get(f"{kind}-{n}")
                cells.append(f"{r['psnr']:.2f} / {r['ssim']:.3f} ({r['train_seconds']:.0f} s)" if r else "—")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    tm = summary.get("timing_256")
    if tm:
        lines += [f"N = 1 finetuning of one 256² demosaicing measurement at the defaults (`selfinv finetune`, {tm['steps']} "
                  f"steps): {tm['train_seconds']:.0f} s training, {tm['seconds_all']:.0f} s in all ({tm['threads']} threads).", ""]
    lines += [f"![finetuning](benchmarks/figures/{NAME}.png)", "", f"<!-- {NAME}:end -->"]
    publish(NAME, TITLE, "\n".join(lines), out / f"{NAME}.png", no_write)


if __name__ == "__main__":
    main()
