"""One line on stderr per failure, exit code 1, no traceback unless ``--debug`` (or ``SELFINV_DEBUG=1``); the
lines themselves come from :mod:`selfinv.engine.errors`."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from selfinv.engine.errors import STATE, debug, error_line, one_line

__all__ = ["STATE", "debug", "error_line", "fail", "guarded", "note"]


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """An informational line on stderr (stdout stays for results)."""
    typer.echo(message, err=True)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; turn any exception into one line on stderr and exit code 1 (``--debug``: re-raise)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # `selfinv ... | head`: the reader left; stop quietly
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (no flush errors at exit)
            except OSError:
                pass
            raise typer.Exit(141) from None
        except KeyboardInterrupt:
            if debug():
                raise
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            from typer.exceptions import TyperException

            if isinstance(exc, TyperException) or debug():
                raise
            sys.stdout.flush()
            typer.echo(f"error: {error_line(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper
