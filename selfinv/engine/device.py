"""The named device, checked before any work, with errors in our words.

``torch.device("cuda")`` succeeds on any machine; the failure comes later, deep inside ``.to()``, as
"Torch not compiled with CUDA enabled". :func:`check_device` asks first and says what to do instead; it is
:func:`selfinv.training.pick_device` with the option's name in the message.

Example:
    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: --device gpu: not a device name; use cpu, cuda, cuda:N or mps
"""

from __future__ import annotations

import torch

from selfinv.training import pick_device

__all__ = ["check_device"]


def check_device(name: str | None, option: str = "--device") -> torch.device:
    """The device ``name`` (``None``: cuda, then mps, then cpu), or a one-line ``ValueError`` saying why not
    (an unknown name; CUDA or MPS where they are not available; a CUDA index beyond the devices present)."""
    return pick_device(None if name is None else str(name).strip(), option)
