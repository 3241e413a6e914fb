"""Checkpoints: written atomically, loaded with ``weights_only=True`` (a pickle payload is refused).

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (model, optimiser, scheduler
and loss state, epoch/step counters, RNG states, the resolved configuration and the normalisation),
so it loads without executing any code. It is first written to a temporary file in the same folder
and then renamed over the target: a process killed mid-write leaves the previous checkpoint intact.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from selfinv.training import load_checkpoint, save_checkpoint
    >>> path = Path(tempfile.mkdtemp()) / "last.pt"
    >>> save_checkpoint(path, {"model": {"w": torch.ones(2)}, "step": 3})
    >>> load_checkpoint(path)["step"]
    3
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "selfinv-checkpoint-1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _refusal(torch_message: str) -> str:
    """torch's weights-only refusal (a paragraph) in one short line of ours, naming the pickled object."""
    found = re.search(r"GLOBAL ([\w.]+)", torch_message)
    what = f"it pickles {found.group(1)}" if found else "it holds pickled objects"
    return (f"refused: not a weights-only checkpoint ({what}; loading it would run code); selfinv loads only "
            "plain state dicts: re-save the file's state_dict if you trust it")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; anything else is a one-line ValueError.

    Loading uses ``torch.load(weights_only=True)``: a file that would need to unpickle arbitrary
    objects (and so could run code) is refused, never executed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: {_refusal(str(e))}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'corrupt'})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a selfinv checkpoint (format {state.get('format') if isinstance(state, dict) else type(state).__name__!r})")
    return state
