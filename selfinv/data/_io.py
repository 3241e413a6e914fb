"""What the readers and writers share: one-line errors naming the file, value checks, the axis layout.

Every failure of :mod:`~selfinv.data.readers` and :mod:`~selfinv.data.writers` is a ``ValueError``
whose message starts with the file name (``_fail``); library exceptions are wrapped by ``_guard``
(chained, so ``--debug`` still shows them). ``_to_dchw`` maps an array labelled by a string over
D, C, H, W to the package's ``(C, H, W)`` / ``(D, C, H, W)`` convention.

Example:
    >>> import numpy as np
    >>> from pathlib import Path
    >>> _to_dchw(Path("a.npy"), np.zeros((5, 6, 3)), "HWC").shape
    (3, 5, 6)
    >>> str(_fail(Path("data/a.npy"), "is empty"))
    'a.npy: is empty'
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike

#: the letters of the package's layout, in order
AXES = "DCHW"


def _fail(path: Path, message: str) -> ValueError:
    return ValueError(f"{path.name}: {message}")


def _short(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _check_values(path: Path, a: np.ndarray) -> None:
    """Refuse an empty array and NaN/Inf values (checked once, at load time)."""
    if a.size == 0:
        raise _fail(path, f"the array is empty (shape {a.shape})")
    if a.dtype.kind in "fc":
        finite = np.isfinite(a)
        if not finite.all():
            n_nan = int(np.isnan(a).sum())
            n_inf = int((~finite).sum()) - n_nan
            raise _fail(path, f"contains {n_nan} NaN and {n_inf} Inf values (of {a.size}); fix or mask them before training")


def _check_array(path: Path, a: np.ndarray, what: str | None = None) -> None:
    """Refuse a non-numeric array (``what`` names it: ``"dataset 'y'"``), then as :func:`_check_values`."""
    if a.dtype.kind not in "iubfc":
        raise _fail(path, f"{what} has unsupported dtype {a.dtype}" if what else f"unsupported dtype {a.dtype}")
    _check_values(path, a)


def _as_float(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "c":
        return np.ascontiguousarray(a, dtype=np.complex64)
    return np.ascontiguousarray(a, dtype=np.float32)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence libraries that log warnings (tifffile on a truncated file) before we raise our one line."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for lg, _ in saved:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def _guard(path: Path, what: str, fn: Callable[[], Any], action: str = "read") -> Any:
    """Run a library call; any exception becomes one ValueError naming the file (our own pass through)."""
    hint = "; the file may be corrupt or truncated" if action == "read" else ""
    try:
        with _quiet("tifffile"):
            return fn()
    except ValueError as e:
        if str(e).startswith(f"{path.name}:"):
            raise
        raise _fail(path, f"cannot {action} {what} ({_short(e)}){hint}") from e
    except Exception as e:  # the libraries raise OSError, SyntaxError, KeyError, struct.error, ...
        raise _fail(path, f"cannot {action} {what} ({_short(e)}){hint}") from e


def _default_axes(ndim: int) -> str:
    return {2: "HW", 3: "CHW", 4: "DCHW"}.get(ndim, "")


def _tiff_axes(axes: str) -> str:
    """tifffile's axes letters → ours: Y→H, X→W, S/C→C, any other (pages, Z, T, ...)→D."""
    return "".join({"Y": "H", "X": "W", "S": "C", "C": "C"}.get(c, "D") for c in axes.upper())


class AxesMismatch(ValueError):
    """An axes string whose length is not the stored array's number of dimensions; ``shape`` (the stored
    array's) and ``axes`` are kept so that a caller can word the error in its own terms (``data.axes``)."""

    def __init__(self, path: Path, shape: tuple[int, ...], axes: str) -> None:
        super().__init__(f"{path.name}: axes {axes!r} do not match the array's {len(shape)} dimensions (shape {shape})")
        self.shape, self.axes = tuple(shape), axes


def _to_dchw(path: Path, a: np.ndarray, axes: str) -> np.ndarray:
    """Rearrange ``a`` (labelled by ``axes`` over D, C, H, W) to (C, H, W) or (D, C, H, W)."""
    axes = axes.upper()
    if len(axes) != a.ndim:
        raise AxesMismatch(path, a.shape, axes)
    if len(set(axes)) != len(axes) or not set(axes) <= set(AXES) or not {"H", "W"} <= set(axes):
        raise _fail(path, f"axes must be distinct letters among D, C, H, W including H and W, got {axes!r}")
    order = [axes.index(c) for c in AXES if c in axes]
    a = np.transpose(a, order)
    present = [c for c in AXES if c in axes]
    if "C" not in present:
        a = a[:, None] if "D" in present else a[None]
    return a
