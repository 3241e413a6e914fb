"""Run by torchrun in tests/training/test_fit.py: one DDP step, rank 0 saves the weights."""

from __future__ import annotations

import sys

import torch

from selfinv.losses import Supervised
from selfinv.training import FitConfig, fit
from tests.training.common import dataset_and_model

if __name__ == "__main__":
    out = sys.argv[1]
    torch.set_num_threads(1)
    data, model = dataset_and_model()
    state = fit(model, Supervised(), data, None, FitConfig(epochs=1, batch_size=4, max_steps=2, device="cpu", seed=3))
    if state.dist.rank == 0:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)
    state.dist.barrier()  # both ranks leave together; the process group is destroyed at exit
