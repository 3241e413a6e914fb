"""The ``selfinv`` command line.

Commands: ``demo``, ``config init``, ``train``, ``check``, ``evaluate``, ``reconstruct``, ``compare``, ``info``;
``--version``, ``--help`` on every command and ``--debug`` (before the command) for full tracebacks. Every
failure is one line on stderr (``error: ...``) and exit code 1; nothing already written is overwritten.
"""

from __future__ import annotations

from selfinv.cli import compare_cmd, inference_cmd, train_cmd  # noqa: F401  (the commands register themselves)
from selfinv.cli._app import app, config_app

__all__ = ["app", "config_app", "main"]


def main() -> None:
    app()
