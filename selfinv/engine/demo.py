"""The demo (``selfinv demo``): Gaussian denoising of the embedded photographs, a self-supervised loss against
the supervised reference, trained alike (:func:`~selfinv.engine.compare.run_comparison`) and reported in
``report.md`` beside the comparison's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfinv.config import Config, parse_config
from selfinv.engine.files import write_text_new

__all__ = ["DEMO", "demo_config", "demo_folder", "write_demo_report"]

#: the full demo and the quick smoke run
DEMO = {
    "full": {"steps": 1200, "patch_size": 40, "patches_per_image": 8, "test_size": 256, "width": 16},
    "quick": {"steps": 60, "patch_size": 32, "patches_per_image": 4, "test_size": 96, "width": 16},
}


def demo_config(loss: str, quick: bool, steps: int | None, test_size: int | None, device: str | None,
                test_images: list[str] | None = None) -> Config:
    """The demo's config for ``loss`` (its step budget is ``training.max_steps``)."""
    d = dict(DEMO["quick" if quick else "full"])
    return parse_config({
        "data": {"source": "embedded", "gray": True, "patch_size": d["patch_size"], "patches_per_image": d["patches_per_image"],
                 "val_fraction": 0.15, "test_size": test_size or d["test_size"], "test_images": test_images},
        "physics": {"name": "denoising"},
        "noise": {"name": "gaussian", "sigma": 0.1},
        "loss": {"name": loss},
        "model": {"backbone": {"name": "unet", "depth": 2, "width": d["width"]}, "wrapper": {"name": "none"}},
        "training": {"batch_size": 8, "lr": 2e-3, "epochs": 1, "max_steps": steps or d["steps"], "val_every": 5,
                     "device": device},
        "seed": 0,
    })


def demo_folder(out: Path | None) -> Path:
    """``out``, else ``selfinv-demo`` (numbered ``selfinv-demo-2``, ... when it exists)."""
    if out is not None:
        return out
    base = Path("selfinv-demo")
    if not base.exists():
        return base
    i = 2
    while Path(f"{base}-{i}").exists():
        i += 1
    return Path(f"{base}-{i}")


def write_demo_report(folder: Path, results: dict[str, Any], loss: str, seconds: float) -> None:
    """``report.md``: what the demo trained, the comparison's table, links to the runs' reports."""
    table = (folder / "results.md").read_text().split("\n", 2)[2]
    text = "\n".join([
        "# selfinv demo: learning to denoise without clean images",
        "",
        f"A small U-Net is trained twice on noisy patches of the photographs embedded in scikit-image (Gaussian noise, "
        f"sigma = 0.1): once with the self-supervised **{loss}** loss, which sees the noisy measurements only, and once "
        "with the supervised loss, which also sees the clean images (the reference). Both get the same data, "
        "network, number of steps and seed; PSNR and SSIM are measured on the held-out test photographs.",
        "",
        table.strip(),
        "",
        f"Training curves and validation examples of each run: [{loss}](runs/{loss}/report.md), "
        "[supervised](runs/supervised/report.md). Machine-readable results: `results.json`. "
        f"Total time: {seconds:.0f} s.",
        "",
    ])
    write_text_new(folder / "report.md", text)
