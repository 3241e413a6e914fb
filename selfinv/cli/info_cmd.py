"""``info``: the version and what the registries hold."""

from __future__ import annotations

import typer

import selfinv
from selfinv.cli._app import VersionOption, app


@app.command()
def info(version: VersionOption = False) -> None:
    """Print the installed version and the available operators, samplers, noise models, losses and backbones."""
    from selfinv.config import TRANSFORMS
    from selfinv.losses import LOSSES
    from selfinv.models import BACKBONES, WRAPPERS
    from selfinv.models.pretrained import PRETRAINED
    from selfinv.noise import NOISE_MODELS
    from selfinv.physics import OPERATORS, SAMPLERS

    typer.echo(f"selfinv {selfinv.__version__}")
    typer.echo("operators: " + ", ".join(sorted(OPERATORS)))
    typer.echo("samplers: " + ", ".join(sorted(SAMPLERS)))
    typer.echo("noise models: " + ", ".join(sorted(NOISE_MODELS)))
    typer.echo("losses: " + ", ".join(LOSSES))
    typer.echo("backbones: " + ", ".join(BACKBONES) + "; wrappers: " + ", ".join([*WRAPPERS, "none", "auto"]))
    typer.echo("transforms: " + ", ".join(TRANSFORMS))
    typer.echo("pretrained: " + "; ".join(f"{name} ({entry.summary})" for name, entry in PRETRAINED.items()))
