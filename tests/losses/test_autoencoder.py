"""Autoencoder (any size, documented bottleneck) and AutoencoderLoss (refuses models without a bottleneck)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.autoencoder import AutoencoderLoss
from selfinv.losses.base import sq_mean
from selfinv.models.autoencoder import Autoencoder
from selfinv.noise import Gaussian
from selfinv.physics import Denoising, Inpainting

pytestmark = pytest.mark.usefixtures("one_thread")


def make_ae(*args, **kwargs) -> Autoencoder:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Autoencoder(*args, **kwargs).double()


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (13, 16), (32, 32), (33, 9)])
@pytest.mark.parametrize("depth", [1, 3])
def test_shapes_and_bottleneck_dimension(size, depth):
    ae = make_ae(3, bottleneck=2, width=8, depth=depth)
    y = torch.rand(2, 3, *size, dtype=torch.float64)
    assert ae(y, Denoising()).shape == y.shape
    code = ae.encode(y)
    s = 2**depth
    assert code.shape == (2, 2, math.ceil(size[0] / s), math.ceil(size[1] / s))
    assert code[0].numel() == ae.bottleneck_dim(*size)


def test_compression_and_defaults():
    ae = Autoencoder(1)
    assert (ae.bottleneck, ae.stride) == (4, 8)
    assert ae.compression == 4 / 64 and ae.bottleneck_dim(64, 64) == 4 * 8 * 8
    assert Autoencoder(3, bottleneck=4, depth=3).compression == 4 / (3 * 64)
    with pytest.raises(ValueError, match="bottleneck"):
        Autoencoder(1, bottleneck=0)
    with pytest.raises(ValueError, match="expects y of shape"):
        ae(torch.rand(1, 2, 8, 8))


def test_output_depends_on_y_only_through_the_code():
    ae = make_ae(1, bottleneck=1, width=8, depth=2)
    y = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    J = torch.autograd.functional.jacobian(lambda t: ae(t), y).reshape(64, 64)
    assert torch.linalg.matrix_rank(J) <= ae.bottleneck_dim(8, 8)  # 1·2·2 = 4 of 64 dimensions


def test_loss_contract_and_refusal():
    ae = make_ae(1, width=8, depth=2)
    physics = Denoising(noise=Gaussian(0.1))
    y = physics(torch.rand(3, 1, 9, 10, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    y0 = y.clone()
    value = AutoencoderLoss()(y, physics, ae)
    assert value.ndim == 0 and torch.allclose(value, sq_mean(y - ae(y)))
    value.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in ae.parameters())
    assert torch.equal(y, y0)
    assert AutoencoderLoss().test_model(ae) is ae

    class Plain(nn.Module):
        def forward(self, y, physics=None):
            return y

    for model in [Plain(), lambda y, physics: y]:
        with pytest.raises(ValueError, match="bottleneck"):
            AutoencoderLoss()(y, physics, model)
    with pytest.raises(ValueError, match="only defined for denoising"):
        AutoencoderLoss()(torch.rand(1, 1, 8, 8), Inpainting(torch.ones(8, 8)), make_ae(1, width=4, depth=1))
    info = AutoencoderLoss.info
    assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (1, 1, True, False)
    assert (info.unknown_separable_noise, info.unknown_coloured_noise, info.noise_models, info.general_operator) == (
        True,
        True,
        None,
        False,
    )
