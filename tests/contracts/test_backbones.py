"""Contract tests run on every registered backbone (``selfinv.models.registry.BACKBONES``).

A backbone is an image-to-image network built as ``cls(in_channels, out_channels, **options)``: it maps
(B, C_in, H, W) to (B, C_out, H, W) for any H, W, keeps the dtype, treats every sample of a batch on its own
(in eval mode), is callable as ``model(y, physics)`` and refuses a wrong input with a one-line ValueError.
A new backbone adds one entry to ``CASES`` (a small configuration, so the suite stays fast).
"""

from __future__ import annotations

import inspect

import pytest
import torch

from selfinv.models.registry import BACKBONES, build_backbone, spatial_dims
from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

#: a small configuration of every registered backbone, by registry name (the ``options`` of build_backbone)
CASES: dict[str, dict] = {
    "unet": {"depth": 2, "width": 4},
    "dncnn": {"depth": 3, "width": 4},
    "drunet": {"widths": (4, 8), "n_blocks": 1},
    "blindspot": {"width": 4, "depth": 1},
    "autoencoder": {"width": 4, "depth": 2, "bottleneck": 2},
    "unet3d": {"depth": 2, "width": 4},
    "ram": {"widths": (4, 8), "kinds": (2,), "prox_iterations": 2, "power_iterations": 3},
}
NAMES = list(CASES)
CIN, COUT = 2, 3
#: backbones that keep the channel count (residual on their input): built with CIN → CIN
SAME_CHANNELS = {"ram"}


def rand(name: str, batch: int, size: tuple[int, int], seed: int, cin: int = CIN) -> torch.Tensor:
    """A random input of the backbone's dimensionality: (B, C, H, W), or (B, C, 4, H, W) for 3-D backbones."""
    lead = (4,) if spatial_dims(name) == 3 else ()
    return torch.rand(batch, cin, *lead, *size, generator=gen(seed), dtype=torch.float64)


def cout_of(name: str) -> int:
    return CIN if name in SAME_CHANNELS else COUT


def build(name: str, cin: int = CIN, cout: int | None = None, dtype: torch.dtype = torch.float64, device: str = "cpu"):
    """The case's network, with weights drawn from seed 0 (the global random state is left as it was)."""
    cout = cout_of(name) if cout is None else cout
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_backbone(name, cin, cout, CASES[name])
    return net.to(device=device, dtype=dtype).eval()


def physics(batch: int) -> Denoising:
    """Denoising with a different Gaussian noise level per sample (what a noise-conditioned backbone reads)."""
    return Denoising(noise=Gaussian(torch.linspace(0.05, 0.2, batch, dtype=torch.float64)))


def test_every_registered_backbone_has_a_case():
    assert set(CASES) == set(BACKBONES), f"backbones without a contract case: {sorted(set(BACKBONES) - set(CASES))}"


@pytest.mark.parametrize("size", [(9, 7), (4, 12)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_maps_images_to_images_of_the_same_size_and_dtype(name, dtype, size, device):
    net = build(name, dtype=dtype, device=device)
    x = rand(name, 2, size, 1).to(device=device, dtype=dtype)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, cout_of(name), *x.shape[2:]), f"{name}: {tuple(x.shape)} -> {tuple(out.shape)}"
    assert out.dtype == dtype and out.device == x.device
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", NAMES)
def test_is_callable_as_model_y_physics(name):
    params = list(inspect.signature(BACKBONES[name].forward).parameters.values())[1:]  # after self
    assert len(params) >= 2 and params[1].name == "physics" and params[1].default is None, (
        f"{name}.forward must be (y, physics=None, ...), got ({', '.join(p.name for p in params)})"
    )
    net, x = build(name), rand(name, 3, (8, 8), 2)
    with torch.no_grad():
        assert net(x, physics(3)).shape == (3, cout_of(name), *x.shape[2:])


@pytest.mark.parametrize("name", NAMES)
def test_samples_of_a_batch_are_independent(name):
    """In eval mode, changing one sample changes its output only, and a batch equals its samples one by one."""
    net, p = build(name), physics(3)
    x = rand(name, 3, (8, 8), 3)
    x2 = x.clone()
    x2[1] += rand(name, 1, (8, 8), 4)[0]
    with torch.no_grad():
        out, out2 = net(x, p), net(x2, p)
        alone = torch.cat([net(x[i : i + 1], p.select(i)) for i in range(3)])
    torch.testing.assert_close(out2[[0, 2]], out[[0, 2]], rtol=0, atol=1e-12)
    assert not torch.allclose(out2[1], out[1])
    torch.testing.assert_close(alone, out, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_refuses_a_wrong_input_with_one_line(name):
    net = build(name)
    for bad in (torch.rand(1, CIN + 1, 8, 8, dtype=torch.float64), torch.rand(8, 8, dtype=torch.float64)):
        with pytest.raises(ValueError) as e:
            net(bad)
        assert "\n" not in str(e.value) and str(e.value)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    net = build(name).train()
    x = rand(name, 2, (8, 8), 5)
    net(x, physics(2)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not bool(torch.isfinite(p.grad).all())]
    assert not missing, f"{name}: parameters without a finite gradient: {missing}"
    assert sum(float(p.grad.abs().sum()) for p in net.parameters()) > 0
