"""The console-script entry point (commands arrive with the training engine)."""

from __future__ import annotations

from typer.testing import CliRunner

import selfinv
from selfinv.cli import app


def test_version_and_help():
    runner = CliRunner()
    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and selfinv.__version__ in out.output
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0 and "measurements" in out.output


def test_info_lists_every_operator_and_noise_model():
    out = CliRunner().invoke(app, ["info"])
    assert out.exit_code == 0
    for name in ["inpainting", "mri", "tomography", "blur", "compressed_sensing", "demosaicing", "poisson_gaussian"]:
        assert name in out.output
