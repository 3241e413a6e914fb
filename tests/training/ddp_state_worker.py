"""Run by torchrun in tests/training/test_ddp_state.py: two DDP steps of losses with learned state (UNSURE's
multipliers) or capability checks (the blind-spot network), each rank saving its loss state and weights."""

from __future__ import annotations

import sys

import torch

from selfinv.losses import UNSURE, BlindSpot, UNSURECovariance, UNSUREPoissonGaussian
from selfinv.models import BlindSpotNet
from selfinv.training import FitConfig, fit
from tests.training.common import dataset_and_model


def _blind_spot_net(predict_variance: bool = False) -> BlindSpotNet:
    torch.manual_seed(0)  # the network's initial weights
    return BlindSpotNet(1, width=4, depth=1, predict_variance=predict_variance)


#: name -> (loss, model); the UNSURE variants start from the data (each process estimates from its own batch)
SCENARIOS = {
    "unsure": lambda: (UNSURE(), None),
    "unsure_pg": lambda: (UNSUREPoissonGaussian(), None),
    "unsure_covariance": lambda: (UNSURECovariance(radius=1), None),
    "blind_spot": lambda: (BlindSpot(), _blind_spot_net()),
    "blind_spot_variance": lambda: (BlindSpot(), _blind_spot_net(predict_variance=True)),
}


def train(name: str, batch_size: int) -> dict[str, dict[str, torch.Tensor]]:
    """Two steps of ``name`` (global batch of 8); the loss's buffers and the weights after them."""
    loss, model = SCENARIOS[name]()
    data, dncnn = dataset_and_model()
    model = dncnn if model is None else model
    fit(model, loss, data, None, FitConfig(epochs=1, batch_size=batch_size, max_steps=2, device="cpu", seed=3))
    return {"loss": {k: v.clone() for k, v in loss.state_dict().items()},
            "model": {k: v.clone() for k, v in model.state_dict().items()}}


if __name__ == "__main__":
    out = sys.argv[1]
    torch.set_num_threads(1)
    results = {name: train(name, batch_size=4) for name in SCENARIOS}
    rank = torch.distributed.get_rank()
    torch.save(results, f"{out}/rank{rank}.pt")
    torch.distributed.barrier()  # both ranks leave together; the process group is destroyed at exit
