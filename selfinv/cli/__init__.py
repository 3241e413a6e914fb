"""The ``selfinv`` command line.

Commands: ``demo``, ``config init``, ``train``, ``finetune``, ``check``, ``evaluate``, ``reconstruct``, ``compare``, ``info``;
``--version``, ``--help`` on every command and ``--debug`` (before the command) for full tracebacks. Every
failure is one line on stderr (``error: ...``) and exit code 1; nothing already written is overwritten.

One module per command (``*_cmd.py``): it parses the arguments, calls the engine (:mod:`selfinv.engine`) and
prints. The commands register themselves on the Typer app (:mod:`selfinv.cli._app`) when imported, in the
order ``--help`` lists them (:data:`COMMANDS`).
"""

from __future__ import annotations

import importlib

from selfinv.cli._app import app, config_app

__all__ = ["app", "config_app", "main"]

#: the command modules, in the order ``--help`` lists their commands
COMMANDS = ("info_cmd", "config_cmd", "train_cmd", "finetune_cmd", "check_cmd", "compare_cmd", "demo_cmd", "reconstruct_cmd", "evaluate_cmd")
for _module in COMMANDS:
    importlib.import_module(f"{__name__}.{_module}")


def main() -> None:
    app()
