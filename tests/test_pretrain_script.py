"""``benchmarks/pretrain.py`` runs end to end (2 steps on the embedded photographs) and writes a file the package
can load (weights only)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from selfinv.models import RAM

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pretraining_script_runs_and_writes_loadable_weights(tmp_path, one_thread):
    spec = importlib.util.spec_from_file_location("pretrain_script", ROOT / "benchmarks" / "pretrain.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = script.main(["--steps", "2", "--val-every", "1", "--out", str(tmp_path), "--data", ""])
    payload = torch.load(out, weights_only=True)
    net = RAM(1, 1, widths=payload["arch"]["widths"], n_blocks=payload["arch"]["n_blocks"])
    net.load_state_dict(payload["state_dict"])
    assert payload["facts"]["steps"] == 2 and set(payload["facts"]["val_psnr"]) == set(script.TASKS)
    assert (tmp_path / "log.csv").read_text().count("\n") == 3 and (tmp_path / "curve.png").exists()
