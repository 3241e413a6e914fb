"""Configuration problems as one line: :class:`ConfigError`, and pydantic's errors in the config's words.

:func:`format_validation_error` turns the first error of a pydantic ``ValidationError`` into one line that
names the key as the user wrote it (``loss.extra[0].weight``, union tags removed), the allowed keys of an
unknown one (with the closest match), the registry names of an unknown ``name``, and how many more problems
there are.

Example:
    >>> from pydantic import ValidationError
    >>> try:
    ...     Config.model_validate({"training": {"lr": "fast"}})
    ... except ValidationError as e:
    ...     print(format_validation_error(e))
    config: training.lr = 'fast': input should be a valid number, unable to parse string as a number
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from selfinv.config.registry import unwrap
from selfinv.config.schema import Config

__all__ = ["ConfigError", "format_validation_error", "short_repr"]


class ConfigError(ValueError):
    """A configuration problem, as one line (``config: ...``)."""


ConfigError.__module__ = "selfinv.config"  # where users import it from (and tracebacks name it)


def _walk(loc: tuple) -> tuple[list, type[BaseModel] | None]:
    """The user-visible path of a pydantic error location (union tags removed) and its innermost model."""
    kind, cur = "model", Config
    path: list = []
    parent: type[BaseModel] | None = Config
    for part in loc:
        if kind == "model" and isinstance(part, str) and part in cur.model_fields:
            parent = cur
            path.append(part)
            kind, cur = unwrap(cur.model_fields[part].annotation)
        elif kind == "union" and isinstance(part, str) and part in cur:
            kind, cur = "model", cur[part]
            parent = cur
        elif kind == "list" and isinstance(part, int):
            path.append(part)
            kind, cur = unwrap(cur)
        else:
            path.append(part)
            kind, cur = "leaf", None
    return path, (cur if kind == "model" else parent)


def _dotted(path: Sequence) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "config"


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_validation_error(err: ValidationError, prefix: str = "config") -> str:
    """One line for the first error of a pydantic ValidationError (and how many more there are)."""
    errors = err.errors(include_url=False)
    rank = {"extra_forbidden": 0, "union_tag_invalid": 1, "union_tag_not_found": 1, "literal_error": 2}
    e = min(errors, key=lambda x: rank.get(x["type"], 3))
    path, model = _walk(tuple(e["loc"]))
    kind = e["type"]
    where = _dotted(path)
    if kind == "extra_forbidden":
        owner = _walk(tuple(e["loc"])[:-1])[1]
        allowed = [k for k in (owner.model_fields if owner is not None else {})]
        key = str(path[-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        msg = f"unknown key '{where}' (allowed: {', '.join(allowed)}" + (f"; did you mean '{hint[0]}'?)" if hint else ")")
    elif kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(e["ctx"]["expected_tags"]).split(",")]
        hint = difflib.get_close_matches(str(e["ctx"]["tag"]), tags, n=1)
        msg = f"{where}.name = {e['ctx']['tag']!r} is not one of {', '.join(tags)}" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    elif kind == "union_tag_not_found":
        msg = f"{where} needs a 'name'"
    elif kind == "missing":
        msg = f"missing key '{where}'"
    elif kind == "literal_error":
        expected = str(e["ctx"]["expected"]).replace("'", "").replace(" or ", ", ")
        msg = f"{where} = {short_repr(e['input'])} is not one of {expected}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"{where} must be a mapping of keys to values, got {short_repr(e['input'])}"
    else:
        msg = f"{where} = {short_repr(e['input'])}: {e['msg'][0].lower()}{e['msg'][1:]}"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{prefix}: {msg}"
