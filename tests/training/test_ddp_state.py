"""DDP-correct state (two processes, gloo): UNSURE's multipliers are the same on every rank, and the blind-spot
loss reads its capabilities through the DistributedDataParallel wrapper (and all-reduces predict_variance's
gradients), matching one process on the global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.ddp_state_worker import SCENARIOS, train

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Every scenario's state after two DDP steps, per rank (one torchrun launch for all of them)."""
    out = tmp_path_factory.mktemp("ddp_state")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(ROOT / "tests/training/ddp_state_worker.py"), str(out)]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ranks_hold_the_same_learned_state_and_weights(ranks, name):
    a, b = ranks[0][name], ranks[1][name]
    for part in ("loss", "model"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{name}: {part}.{k} differs between the ranks"
    if name.startswith("unsure"):
        assert int(a["loss"]["steps"]) == 2 and bool(a["loss"]["initialised"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blind_spot", "blind_spot_variance"])
def test_blind_spot_under_ddp_matches_one_process_on_the_global_batch(ranks, name):
    one = train(name, batch_size=8)
    for k, v in one["model"].items():
        assert torch.allclose(v, ranks[0][name]["model"][k], atol=1e-6), k
