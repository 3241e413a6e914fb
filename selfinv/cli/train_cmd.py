"""``train``: a network from a config, into its run folder (:func:`selfinv.engine.train.train_experiment`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import SET_HELP, VersionOption, app
from selfinv.cli._errors import debug, fail, guarded, note


@app.command()
@guarded
def train(
    config: Annotated[Path, typer.Argument(help="The YAML config (selfinv config init writes one).")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help=SET_HELP)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in its run folder exactly from last.pt.")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="The run folder (default: training.run_dir, else runs/<config name>).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: training.device, else the best available).")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: when stderr is a terminal).")] = None,
    version: VersionOption = False,
) -> None:
    """Train a network from a config; writes checkpoints, metrics, figures and report.md into the run folder."""
    import shlex

    from selfinv.config import load_config
    from selfinv.engine.budget import fit_config
    from selfinv.engine.build import build_experiment
    from selfinv.engine.device import check_device
    from selfinv.engine.train import Interrupted, check_run_folder, train_experiment

    overrides = list(set_ or [])
    if device is not None:
        overrides.append(f"training.device={device}")
    cfg = load_config(config, overrides)
    folder = run_dir or (Path(cfg.training.run_dir) if cfg.training.run_dir else Path("runs") / config.stem)
    # everything that can be checked is checked before the run folder is created
    fit_config(cfg)
    check_device(cfg.training.device, "--device" if device is not None else "training.device")
    check_run_folder(folder, resume)
    cfg = load_config(config, [*overrides, f"training.run_dir={json.dumps(str(folder))}"])
    exp = build_experiment(cfg)
    try:
        result = train_experiment(exp, folder, resume=resume, progress=progress, log=note)
    except Interrupted as e:
        if debug():
            raise
        again = ["selfinv", "train", str(config), *(a for o in set_ or [] for a in ("--set", o)),
                 *(["--device", device] if device is not None else []), *(["--run-dir", str(run_dir)] if run_dir else [])]
        fail(e.line(shlex.join(again)), code=130)
    last = result.last
    typer.echo(f"run: {folder} ({result.state.step} steps, {result.seconds:.1f} s)")
    parts = [f"{k} {last[k]:.4g}" for k in ("train_loss", "val_loss") if k in last]
    if "val_psnr" in last:
        parts.append(f"val PSNR {last['val_psnr']:.2f} dB (no learning {last.get('baseline_psnr', float('nan')):.2f} dB)")
    if parts:
        typer.echo(", ".join(parts))
    typer.echo(f"report: {folder / 'report.md'}")
