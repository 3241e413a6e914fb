"""Failures in one line: the message shown for an exception (:func:`error_line`), and whether full tracebacks
are wanted instead (:func:`debug`: the command line's ``--debug``, or ``SELFINV_DEBUG=1``).

A comparison records a failed run's error line in its results and goes on with the others; the command line
prints it as ``error: ...``.
"""

from __future__ import annotations

import os

__all__ = ["STATE", "debug", "error_line", "one_line"]

#: set by the command line's global ``--debug`` option
STATE = {"debug": False}


def debug() -> bool:
    """Whether errors should propagate with their tracebacks (``--debug`` or ``SELFINV_DEBUG``)."""
    return STATE["debug"] or os.environ.get("SELFINV_DEBUG", "") not in ("", "0")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _device_error(exc: BaseException) -> str | None:
    """torch's device failures (a device picked without the checks of ``pick_device``) in our words."""
    text = str(exc)
    if not isinstance(exc, (AssertionError, RuntimeError)):
        return None
    if "not compiled with CUDA" in text or "Torch not compiled with CUDA enabled" in text:
        return "CUDA is not available on this machine (this torch is a CPU build); use --device cpu"
    if "no NVIDIA driver" in text or ("CUDA driver" in text and "insufficient" in text):
        return "CUDA is not available on this machine (no usable NVIDIA driver); use --device cpu"
    if "invalid device ordinal" in text:
        return "that CUDA device does not exist on this machine (see nvidia-smi); use --device cuda:0 or cpu"
    if "MPS backend" in text and "not available" in text:
        return "MPS is not available on this machine; use --device cpu"
    return None


def error_line(exc: BaseException) -> str:
    """The message shown for an exception: ours as they are, anything else prefixed by its type."""
    from pydantic import ValidationError

    from selfinv.config import format_validation_error

    if isinstance(exc, ValidationError):
        return format_validation_error(exc)
    if isinstance(exc, (ValueError, FileNotFoundError, FloatingPointError)):
        msg = one_line(exc) or type(exc).__name__
        return msg if not isinstance(exc, FileNotFoundError) or not exc.filename else f"{exc.filename}: no such file"
    device = _device_error(exc)
    if device is not None:
        return device
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "out of memory: use a smaller --tile, a smaller batch size or another device"
    if isinstance(exc, OSError):
        return one_line(f"{getattr(exc, 'filename', None) or ''}{': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return one_line(f"{type(exc).__name__}: {first}") + " (run with --debug for the traceback)"
