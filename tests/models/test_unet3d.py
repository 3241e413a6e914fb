"""The 3-D U-Net: volume shapes, gradients, homogeneity, and the one-line error of a volume too small for its depth."""

from __future__ import annotations

import pytest
import torch

from selfinv.models import BACKBONES, UNet3d, build_backbone, spatial_dims
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size", [(4, 9, 7), (5, 8, 12)])
@pytest.mark.parametrize("options", [{}, {"batch_norm": True, "bias": False, "down": "conv", "up": "trilinear"}])
def test_maps_volumes_to_volumes(size, options):
    net = UNet3d(2, 3, depth=2, width=2, **options).double().eval()
    x = torch.rand(2, 2, *size, generator=gen(0), dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 3, *size) and out.dtype == torch.float64 and bool(torch.isfinite(out).all())


def test_residual_bias_free_and_registry():
    net = UNet3d(1, 1, depth=1, width=2, bias=False).double().eval()
    x = torch.rand(1, 1, 4, 6, 6, generator=gen(1), dtype=torch.float64)
    torch.testing.assert_close(net(2.5 * x), 2.5 * net(x))
    assert net.residual and not UNet3d(1, 2, depth=1, width=2).residual
    assert BACKBONES["unet3d"] is UNet3d and spatial_dims("unet3d") == 3 and spatial_dims(net) == 3
    assert spatial_dims("unet") == 2
    assert build_backbone("unet3d", 1, 1, {"depth": 1, "width": 2}).depth == 1


def test_gradients_reach_every_parameter():
    net = UNet3d(1, 1, depth=2, width=2, batch_norm=True).double().train()
    net(torch.rand(2, 1, 4, 8, 8, generator=gen(2), dtype=torch.float64)).square().mean().backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in net.parameters())


def test_too_small_volume_and_wrong_inputs_are_one_line_errors():
    net = UNet3d(1, 1, depth=3, width=2)
    with pytest.raises(ValueError, match=r"UNet3d: a 4×32×32 volume is too small for depth 3.*depth <= 2") as e:
        net(torch.rand(1, 1, 4, 32, 32))
    assert "\n" not in str(e.value)
    for bad, match in ((torch.rand(1, 1, 8, 8), "B, C, D, H, W"), (torch.rand(1, 2, 8, 8, 8), "1 input channels"),
                       (torch.rand(1, 1, 8, 8, 8, dtype=torch.complex64), "real volumes")):
        with pytest.raises(ValueError, match=match):
            net(bad)
    with pytest.raises(ValueError, match="up must be"):
        UNet3d(1, 1, up="bilinear")
