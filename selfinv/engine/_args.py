"""Constructor arguments from config sections: what the builders of :mod:`selfinv.engine` share.

A registry class is built from the keys of its config section (:func:`section_params`), its constructor's
parameters and their annotations say which values need converting (:func:`init_parameters`,
:func:`annotation`), and a failed construction is one :class:`~selfinv.config.ConfigError` line naming the
section (:func:`construct`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from selfinv.config import ConfigError


def construct(cls: type, kwargs: dict, where: str):
    """``cls(**kwargs)``; a TypeError or ValueError becomes ``config: {where}: ...``."""
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"config: {where}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"config: {where}: {e}") from None


def section_params(model: BaseModel, drop: Sequence[str] = ("name",)) -> dict[str, Any]:
    """The keys of a config section and their values, ``drop`` left out."""
    return {k: getattr(model, k) for k in type(model).model_fields if k not in drop}


def init_parameters(cls: type) -> set[str]:
    """The names of the parameters of ``cls.__init__``."""
    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):  # pragma: no cover
        return set()


def annotation(cls: type, name: str) -> str:
    """The annotation of parameter ``name`` of ``cls.__init__``, as text ("" when there is none)."""
    try:
        ann = inspect.signature(cls.__init__).parameters[name].annotation
    except (TypeError, ValueError, KeyError):  # pragma: no cover
        return ""
    return ann if isinstance(ann, str) else str(ann)
