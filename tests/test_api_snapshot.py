"""The public API, pinned: the names of ``selfinv`` and of each of its public modules and subpackages.

For every top-level module or package ``selfinv.<m>`` (names without a leading underscore) the snapshot lists
its sorted ``__all__`` (or, for a module without ``__all__``, the public names it defines itself), one
qualified name a line, in tests/api_snapshot.txt. Adding, renaming or removing a public name fails this test
until the snapshot is regenerated on purpose:

    SELFINV_UPDATE_API=1 .venv/bin/python -m pytest tests/test_api_snapshot.py

and the change to tests/api_snapshot.txt is reviewed with the code that caused it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import selfinv

SNAPSHOT = Path(__file__).with_name("api_snapshot.txt")
HEADER = (
    "# The public API of selfinv (tests/test_api_snapshot.py): each public module, then its __all__ (or the\n"
    "# public names it defines), one qualified name a line. Regenerate on purpose with\n"
    "#   SELFINV_UPDATE_API=1 .venv/bin/python -m pytest tests/test_api_snapshot.py\n"
)


def public_names(module) -> list[str]:
    """The module's ``__all__``, else the public names its own source defines at top level (functions,
    classes, assignments; not imports)."""
    if hasattr(module, "__all__"):
        return sorted(module.__all__)
    names = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return sorted(n for n in names if not n.startswith("_"))


def public_modules() -> list:
    """``selfinv`` and each of its public top-level modules and subpackages, imported."""
    names = [m.name for m in pkgutil.iter_modules(selfinv.__path__) if not m.name.startswith("_")]
    return [selfinv] + [importlib.import_module(f"selfinv.{name}") for name in names]


def current_api() -> list[str]:
    """Each public module's name and its qualified public names, as sorted lines."""
    lines = []
    for module in public_modules():
        lines.append(module.__name__)
        lines += [f"{module.__name__}.{name}" for name in public_names(module)]
    return sorted(lines)


def test_public_api_matches_the_snapshot():
    api = current_api()
    if os.environ.get("SELFINV_UPDATE_API", "") not in ("", "0"):
        SNAPSHOT.write_text(HEADER + "\n".join(api) + "\n")
    recorded = [line for line in SNAPSHOT.read_text().splitlines() if line and not line.startswith("#")]
    added, removed = sorted(set(api) - set(recorded)), sorted(set(recorded) - set(api))
    assert not added and not removed, (
        f"the public API changed: added {added}, removed {removed}. If that is on purpose, regenerate the snapshot "
        "with `SELFINV_UPDATE_API=1 .venv/bin/python -m pytest tests/test_api_snapshot.py` and commit "
        "tests/api_snapshot.txt with the change"
    )


def test_every_name_of_all_exists():
    """``__all__`` may only list names the module really has (a typo there breaks ``from selfinv.x import *``)."""
    for module in public_modules():
        missing = [name for name in getattr(module, "__all__", ()) if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ lists names it does not define: {missing}"
