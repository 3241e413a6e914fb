"""Plain helpers shared by the test files (fixtures live in tests/conftest.py).

Example:
    >>> import torch
    >>> from tests.helpers import gen
    >>> torch.equal(torch.rand(3, generator=gen(0)), torch.rand(3, generator=gen(0)))
    True
"""

from __future__ import annotations

import torch

#: the devices a ``device`` test runs on: the CPU, and the first GPU where one is present
DEVICES: list[str] = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (all test randomness goes through one of these)."""
    return torch.Generator().manual_seed(seed)
