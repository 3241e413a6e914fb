"""Writing results: files that must not exist yet, atomic replacements, new output folders, JSON without NaN."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["clean_floats", "new_folder", "to_json", "write_text_atomic", "write_text_new"]


def write_text_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet (exclusive create)."""
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step (a temporary file renamed over it)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def new_folder(path: Path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents); refuse one that exists with anything in it."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path}: the {what} exists and is not empty; choose another (nothing is overwritten)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def to_json(data: Any) -> str:
    """Indented JSON; paths as text, NaN and infinities as null."""

    def default(o):
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, float) and not math.isfinite(o):
            return None
        raise TypeError(type(o).__name__)

    return json.dumps(data, indent=2, default=default, allow_nan=False)


def clean_floats(d: Any) -> Any:
    """NaN/Inf → None, recursively (JSON has no NaN)."""
    if isinstance(d, dict):
        return {k: clean_floats(v) for k, v in d.items()}
    if isinstance(d, list):
        return [clean_floats(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d
