"""Tiny configs and helpers shared by the CLI tests (16-pixel patches, 4-channel networks, a few steps)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from selfinv.cli import app

#: overrides that make any generated config tiny
TINY = [
    "data.images=[brick, cell, coffee]",
    "data.patch_size=16",
    "data.patches_per_image=2",
    "data.test_images=[camera, coins]",
    "data.test_size=32",
    "training.max_steps=2",
    "training.batch_size=2",
    "model.backbone.width=4",
]


def tiny_denoising(run_dir: Path | None = None, **training) -> dict:
    """A denoising config: SURE, a 2-layer DnCNN (receptive-field radius 2), 3 training images."""
    return {
        "data": {"images": ["brick", "cell", "coffee"], "patch_size": 16, "patches_per_image": 2, "val_fraction": 0.34,
                 "test_images": ["camera", "coins"], "test_size": 32},
        "physics": {"name": "denoising"},
        "noise": {"name": "gaussian", "sigma": 0.1},
        "loss": {"name": "sure"},
        "model": {"backbone": {"name": "dncnn", "depth": 2, "width": 4, "batch_norm": False}, "wrapper": {"name": "none"}},
        "training": {"epochs": 2, "batch_size": 2, "max_steps": 3, "scheduler": "none", "run_dir": str(run_dir) if run_dir else None,
                     **training},
        "seed": 0,
    }


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Result:
    def __init__(self, r) -> None:
        self.exit_code, self.stdout, self.stderr, self.exception = r.exit_code, r.stdout, r.stderr, r.exception

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run(*args: str | Path) -> Result:
    """Invoke the CLI in-process; stdout and stderr apart."""
    return Result(CliRunner().invoke(app, [str(a) for a in args]))


def assert_one_line_error(r: Result, *fragments: str) -> str:
    assert r.exit_code != 0, r.stdout
    lines = r.stderr_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]
