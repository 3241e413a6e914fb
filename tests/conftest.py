"""Tests marked ``slow`` (training checks of a minute or more) run only with ``SELFINV_SLOW=1``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SELFINV_SLOW", "") not in ("", "0"):
        return
    skip = pytest.mark.skip(reason="slow training check: set SELFINV_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
