"""Small datasets and models shared by the training tests."""

from __future__ import annotations

import torch

from selfinv.data import SimulatedDataset, embedded_images
from selfinv.models import DnCNN
from selfinv.noise import Gaussian
from selfinv.physics import Denoising

NAMES = ["camera", "coins", "moon", "brick"]


def dataset_and_model(noise=None, physics=None, pairs=False, patches=4, size=16, seed=0):
    data = SimulatedDataset(
        embedded_images(names=NAMES),
        physics if physics is not None else Denoising(),
        noise=noise if noise is not None else Gaussian(0.1),
        seed=seed,
        patch_size=size,
        patches_per_image=patches,
        pairs=pairs,
    )
    torch.manual_seed(0)
    return data, DnCNN(1, 1, depth=3, width=8, batch_norm=False)
