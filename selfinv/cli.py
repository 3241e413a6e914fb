"""The ``selfinv`` command line (commands arrive with the training engine; this is the entry point)."""

from __future__ import annotations

import typer

import selfinv

app = typer.Typer(
    help="selfinv: train image reconstruction networks from measurements alone.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"selfinv {selfinv.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Self-supervised image reconstruction: physics, losses, training."""


@app.command()
def info() -> None:
    """Print the installed version and the available operators and noise models."""
    from selfinv.noise import NOISE_MODELS
    from selfinv.physics import OPERATORS

    typer.echo(f"selfinv {selfinv.__version__}")
    typer.echo("operators: " + ", ".join(sorted(OPERATORS)))
    typer.echo("noise models: " + ", ".join(sorted(NOISE_MODELS)))


def main() -> None:
    app()
