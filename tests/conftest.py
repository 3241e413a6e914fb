"""Shared test set-up: the ``slow`` marker's opt-in, and the fixtures every test folder may use.

* Tests marked ``slow`` (training and subprocess checks of 10 s or more) run only when ``SELFINV_SLOW=1`` or
  when the environment variable ``CI`` is ``true`` (CI runs everything; a local ``pytest`` stays fast).
* ``one_thread``: torch on one thread for a module (opt in with
  ``pytestmark = pytest.mark.usefixtures("one_thread")``), for files of tiny tensors where OpenMP hand-offs
  cost more than they save and stall on a busy 2-core machine. The previous thread count is restored after.
* ``device``: a test that takes a ``device`` argument runs once per device of :data:`tests.helpers.DEVICES`
  (the CPU, plus ``cuda`` where a GPU is present).

Plain helpers that tests import (``gen``, ``DEVICES``) live in :mod:`tests.helpers`.
"""

from __future__ import annotations

import os

import pytest
import torch

from tests.helpers import DEVICES


def run_slow() -> bool:
    """Whether the ``slow`` tests run: ``SELFINV_SLOW`` set to anything but "" or "0", or ``CI=true``."""
    return os.environ.get("SELFINV_SLOW", "") not in ("", "0") or os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    if run_slow():
        return
    skip = pytest.mark.skip(reason="slow check: set SELFINV_SLOW=1 (or CI=true) to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for the module's tests; the previous thread count is restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """A device name: "cpu", and "cuda" where a GPU is present (one test per device)."""
    return request.param
