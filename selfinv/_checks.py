"""Argument checks shared by the constructors of losses and models.

Each check returns the value when it passes and otherwise raises a ``ValueError`` worded
``"{owner}: {name} must be ..., got {value!r}"``, so a wrong argument names the class and the argument.
A bool is never accepted as a number (``True`` is an ``int`` to Python, never a count or a level here).

Example:
    >>> check_int(3, "depth", "UNet", low=0)
    3
    >>> check_int(True, "width", "UNet")
    Traceback (most recent call last):
    ...
    ValueError: UNet: width must be an integer >= 1, got True
    >>> check_either("zero", ("zero", "interpolate"), "replacement", "Noise2Self")
    'zero'
"""

from __future__ import annotations

from collections.abc import Sequence


def is_int(value: object) -> bool:
    """An ``int`` that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An ``int`` or a ``float`` that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(value: object, name: str, owner: str, low: int = 1) -> int:
    """``value`` if it is an integer >= ``low``."""
    if not is_int(value) or value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return value


def check_ints(owner: str, low: int = 1, **values: object) -> None:
    """:func:`check_int` of every keyword argument, in order."""
    for name, value in values.items():
        check_int(value, name, owner, low)


def check_positive_int(value: object, name: str, owner: str) -> int:
    """``value`` if it is an integer >= 1 (worded "a positive integer")."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


def check_positive(value: object, name: str, owner: str) -> float:
    """``value`` as a float if it is a number > 0."""
    if not is_number(value) or not value > 0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")
    return float(value)


def check_fraction(value: object, name: str, owner: str) -> float:
    """``value`` as a float if it is a number in (0, 1)."""
    if not is_number(value) or not 0 < value < 1:
        raise ValueError(f"{owner}: {name} must be in (0, 1), got {value!r}")
    return float(value)


def check_bool(value: object, name: str, owner: str) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be a bool, got {value!r}")
    return value


def check_either(value: object, choices: tuple[str, str], name: str, owner: str) -> str:
    """``value`` if it is one of two names (worded "'a' or 'b'")."""
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be {choices[0]!r} or {choices[1]!r}, got {value!r}")
    return value


def check_one_of(value: object, choices: Sequence[str], name: str, owner: str) -> str:
    """``value`` if it is one of ``choices`` (worded "one of a, b, c")."""
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(choices)}, got {value!r}")
    return value
