"""``finetune``: a pretrained network (a shipped name or a checkpoint) finetuned self-supervised on a config's
measurements (:func:`selfinv.pretrained.finetune`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import SET_HELP, VersionOption, app
from selfinv.cli._errors import guarded, note


@app.command()
@guarded
def finetune(
    model: Annotated[str, typer.Argument(help="A shipped pretrained name (selfinv info lists them) or a checkpoint of selfinv train.")],
    config: Annotated[Path, typer.Argument(help="The YAML config of your data: physics, noise, and the measurements "
                                           "(or images to simulate from). Without a loss section the loss follows "
                                           "RAM's rule: SURE/PURE + 0.1 EI for noisy data, MC + 0.1 EI noiseless, "
                                           "splitting for unknown noise.")],
    n: Annotated[int | None, typer.Option("--n", min=1, help="Finetune on the first N measurements (N = 1 validates "
                                          "on held-out entries of the same measurement).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimisation steps (default 40, or the config's "
                                              "training budget).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="The run folder, new (default: training.run_dir, "
                                                 "else runs/finetune-<model>).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help=SET_HELP)] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: the best available).")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: when stderr is a terminal).")] = None,
    version: VersionOption = False,
) -> None:
    """Finetune a pretrained network on your measurements, self-supervised; best.pt is the lowest validation loss."""
    import sys

    from selfinv.engine.device import check_device
    from selfinv.pretrained import finetune as run_finetune
    from selfinv.pretrained.finetuning import finetune_config, finetune_folder

    overrides = list(set_ or [])
    if device is not None:
        check_device(device, "--device")
        overrides.append(f"training.device={device}")
    cfg = finetune_config(config, model, n, steps, overrides)
    finetune_folder(cfg, model, run_dir)  # a folder that exists is refused before anything is built
    show = sys.stderr.isatty() if progress is None else progress
    done = run_finetune(model, config, n, steps, run_dir, overrides, progress=show, log=note)
    last = done.run.last
    typer.echo(f"run: {done.run_dir} ({done.run.state.step} steps, {done.run.seconds:.1f} s training, {done.seconds:.1f} s in all)")
    parts = [f"{k} {last[k]:.4g}" for k in ("train_loss", "val_loss") if k in last]
    if "val_psnr" in last:
        parts.append(f"val PSNR {last['val_psnr']:.2f} dB (no learning {last.get('baseline_psnr', float('nan')):.2f} dB)")
    if parts:
        typer.echo(", ".join(parts))
    typer.echo(f"model: {done.best} (selfinv reconstruct / evaluate take it)")
