"""``demo``: denoise the embedded photographs, a self-supervised loss against the supervised reference
(:mod:`selfinv.engine.demo`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import VersionOption, app
from selfinv.cli._errors import fail, guarded, note


@app.command()
@guarded
def demo(
    loss: Annotated[str, typer.Option("--loss", help="The self-supervised loss to train (beside the supervised reference).")] = "sure",
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run of about 10 seconds (60 steps per model, 96-pixel test crops; the full demo takes about 1.5 minutes on 2 CPU cores).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default: ./selfinv-demo, numbered if it exists).")] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, hidden=True)] = None,
    test_size: Annotated[int | None, typer.Option("--test-size", min=8, hidden=True)] = None,
    test_images: Annotated[str | None, typer.Option("--test-images", hidden=True)] = None,
    version: VersionOption = False,
) -> None:
    """Denoise the embedded photographs: a self-supervised loss (SURE) against the supervised reference."""
    from selfinv.losses import LOSSES

    if loss not in LOSSES:
        fail(f"--loss {loss!r} is not one of {', '.join(LOSSES)}")
    if loss == "supervised":
        fail("--loss supervised is the reference the demo already trains; choose a self-supervised loss")
    from selfinv.engine.compare import run_comparison
    from selfinv.engine.comparison_report import comparison_table
    from selfinv.engine.demo import demo_config, demo_folder, write_demo_report
    from selfinv.engine.device import check_device

    check_device(device)
    folder = demo_folder(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        fail(f"{folder}: the report folder exists and is not empty; choose another with --out")
    names = [n.strip() for n in test_images.split(",")] if test_images else None
    cfg = demo_config(loss, quick, steps, test_size, device, names)
    n_steps, size = cfg.training.max_steps, cfg.data.test_size
    typer.echo(f"selfinv demo: Gaussian denoising (sigma = 0.1) of the photographs embedded in scikit-image; "
               f"{n_steps} steps per model on {cfg.data.patch_size}x{cfg.data.patch_size} patches of the 14 training "
               f"images, test on {size}x{size} crops of the held-out ones")
    t0 = time.perf_counter()
    comparison = run_comparison(cfg, [loss, "supervised"], folder, n_steps, progress, log=note)
    labels = {"baseline": "noisy (no learning)", loss: f"{loss} (self-supervised)", "supervised": "supervised (reference)"}
    for line in comparison_table(comparison.results, labels):
        typer.echo(line)
    write_demo_report(folder, comparison.results, loss, time.perf_counter() - t0)
    typer.echo(f"report: {folder / 'report.md'} ({time.perf_counter() - t0:.0f} s)")
    if comparison.failed:
        fail(f"{', '.join(comparison.failed)} failed; see {folder / 'results.json'}")
