"""``check`` on a measurement set with ``noise: estimate``: the per-measurement noise parameters are not an operator family."""

import numpy as np
import torch

from selfinv.config import parse_config
from selfinv.engine.advice import config_advice
from tests.cli.common import tiny_denoising


def test_estimated_noise_parameters_do_not_make_an_operator_family(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(0.1, 0.9, 64).repeat(64, 1)
    for i in range(3):
        np.save(tmp_path / f"frame{i}.npy", (x + 0.05 * torch.randn(64, 64, generator=g))[None].numpy().astype(np.float32))
    cfg = tiny_denoising()
    cfg["data"] = {"source": "measurements", "path": str(tmp_path), "patch_size": 32, "normalization": "none"}
    cfg["noise"] = {"name": "estimate"}
    checked = config_advice(parse_config(cfg))
    assert checked.noise_estimate is not None  # each frame has its own noise parameters in the data set
    assert checked.family == ""  # was " with the measurement set's None operators"
    for loss in ("moi", "splitting"):  # one operator (A = I): nothing for a family to fill
        assert not checked.advice.verdict(loss).applicable
