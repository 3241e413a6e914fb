"""The typer application objects (commands register on them from their modules)."""

from __future__ import annotations

from typing import Annotated

import typer

import selfinv
from selfinv.cli._errors import STATE

app = typer.Typer(
    help="selfinv: train image reconstruction networks from measurements alone (self-supervised learning).\n\n"
    "Typical workflow: selfinv config init --task mri -o mri.yaml; selfinv check mri.yaml; selfinv train mri.yaml; "
    "selfinv evaluate runs/mri-rei/best.pt mri.yaml; selfinv reconstruct runs/mri-rei/best.pt kspace.npy -o out/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

config_app = typer.Typer(help="Write configuration files.", no_args_is_help=True, add_completion=False,
                         pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"selfinv {selfinv.__version__}")
        raise typer.Exit()


#: ``--version`` on every command
VersionOption = Annotated[
    bool, typer.Option("--version", callback=_version, is_eager=True, expose_value=False, help="Print the version and exit.")
]


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
) -> None:
    """Self-supervised image reconstruction: physics, losses, training."""
    STATE["debug"] = debug
    _warnings_as_lines()


def _warnings_as_lines() -> None:
    """Python warnings (the library's cautions about the data) as one ``warning: ...`` line on stderr each."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        typer.echo(f"warning: {text}", err=True)

    warnings.showwarning = show


#: the help of ``--set`` (train, check, compare)
SET_HELP = "Override a config key, e.g. --set training.lr=3e-4 --set loss.name=r2r (repeatable; values are YAML)."
