"""A tiny trained run shared by the CLI tests."""

from __future__ import annotations

import pytest

from tests.cli.common import run, tiny_denoising, write_yaml


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny trained denoising run: (config path, run folder)."""
    root = tmp_path_factory.mktemp("trained")
    cfg = write_yaml(root / "den.yaml", tiny_denoising(root / "run"))
    r = run("train", cfg)
    assert r.exit_code == 0, r.stderr
    return cfg, root / "run"
