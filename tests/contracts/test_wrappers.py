"""Contract tests run on every registered physics-aware wrapper (``selfinv.models.registry.WRAPPERS``).

A wrapper is a reconstruction network ``model(y, physics) -> x_hat`` around an image-to-image backbone. For
every image-shaped operator of the operator contract (tests/contracts/operators.py) it returns an image of
x's shape and dtype (complex for MRI), runs the backbone on real image-domain tensors only (2C channels for
C complex ones) and hands it the physics, treats each sample with its own operator, lets gradients reach
the backbone, and refuses a backbone of the wrong channel count with a one-line ValueError.
A new wrapper adds one entry to ``CASES``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
from torch import nn

from selfinv.models.registry import WRAPPERS
from selfinv.models.wrappers import BackProjection, Unrolled
from tests.contracts.operators import OPERATOR_CASES
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64

#: every registered wrapper around a given backbone, in small configurations, by case name
CASES: dict[str, Callable[[nn.Module], nn.Module]] = {
    "backprojection": lambda net: BackProjection(net),
    "backprojection_pinv": lambda net: BackProjection(net, init="pinv"),
    "unrolled_pgd": lambda net: Unrolled(net, iterations=2),
    "unrolled_modl": lambda net: Unrolled(net, iterations=2, mode="modl", init="adjoint", cg_iterations=3, shared=False),
}
#: the cases that start from the pseudo-inverse A^dagger y (conjugate gradient for most operators)
PINV_STARTS = {"backprojection_pinv", "unrolled_pgd"}
NAMES = list(CASES)
B = 3


class Probe(nn.Module):
    """A 3 x 3 convolution (c -> c channels, float64, seeded) that records what it is called with."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, dtype=F64)
        with torch.no_grad():
            self.conv.weight.copy_(0.2 * torch.randn(self.conv.weight.shape, generator=gen(9), dtype=F64))
        self.seen: list[tuple[tuple[int, ...], torch.dtype, bool]] = []

    def forward(self, x: torch.Tensor, physics=None) -> torch.Tensor:
        self.seen.append((tuple(x.shape), x.dtype, physics is not None))
        return x + self.conv(x)


def _image_shaped() -> list[str]:
    """The operator cases whose images are (B, C, H, W) (the others act on vectors, not images)."""
    return [name for name, case in OPERATOR_CASES.items() if case.build(1, False, F64, gen(0))[1].ndim == 4]


OPERATORS = _image_shaped()


def setup(wrapper: str, operator: str, extra_channels: int = 0):
    """(model, probes, physics, x, y): per-sample physics and noisy measurements of a float64 image x; probes
    are the model's backbones (copies of one probe when the wrapper makes one per iteration)."""
    physics, x = OPERATOR_CASES[operator].build(B, True, F64, gen(0))
    model = CASES[wrapper](Probe(x.shape[1] * (2 if x.is_complex() else 1) + extra_channels))
    with torch.no_grad():
        y = physics(x, generator=gen(1))
    return model, [m for m in model.modules() if isinstance(m, Probe)], physics, x, y


def test_every_registered_wrapper_has_a_case():
    covered = {type(build(Probe(1))) for build in CASES.values()}
    missing = [name for name, cls in WRAPPERS.items() if cls not in covered]
    assert not missing, f"wrappers without a contract case: {missing}"


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_forward_is_model_y_physics(name):
    params = list(inspect.signature(WRAPPERS[name].forward).parameters)
    assert params[1:3] == ["y", "physics"], f"{name}.forward takes ({', '.join(params[1:])})"


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("wrapper", NAMES)
def test_output_is_in_the_image_domain_and_the_backbone_sees_images(wrapper, operator):
    model, probes, physics, x, y = setup(wrapper, operator)
    with torch.no_grad():
        out = model(y, physics)
    assert out.shape == x.shape and out.dtype == x.dtype, f"{tuple(out.shape)} {out.dtype} for {tuple(x.shape)} {x.dtype}"
    assert bool(torch.isfinite(out).all())
    channels = x.shape[1] * (2 if x.is_complex() else 1)
    seen = [s for p in probes for s in p.seen]
    assert seen and all(s == ((B, channels, *x.shape[2:]), F64, True) for s in seen), seen


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("wrapper", NAMES)
def test_samples_are_reconstructed_independently(wrapper, operator):
    """Changing the measurements of sample 1 changes its reconstruction only, and a batch with per-sample
    operators equals its samples reconstructed one by one (``physics.select(i)``). The second check is skipped
    where the wrapper starts from a pseudo-inverse solved by conjugate gradient (operators whose contract case
    has dagger_rtol > 1e-8): CG on an ill-conditioned A^H A amplifies the last-bit differences between batched
    and single operator calls (to 2 % for the tomography cases)."""
    model, _, physics, x, y = setup(wrapper, operator)
    y2 = y.clone()
    y2[1] = 2 * y[1] + 0.5
    with torch.no_grad():
        out, out2 = model(y, physics), model(y2, physics)
    torch.testing.assert_close(out2[[0, 2]], out[[0, 2]], rtol=1e-9, atol=1e-10)
    assert not torch.allclose(out2[1], out[1])
    if wrapper in PINV_STARTS and OPERATOR_CASES[operator].dagger_rtol > 1e-8:
        return
    with torch.no_grad():
        alone = torch.cat([model(y[i : i + 1], physics.select(i)) for i in range(B)])
    torch.testing.assert_close(alone, out, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("wrapper", NAMES)
def test_gradients_reach_the_backbone(wrapper):
    model, probes, physics, x, y = setup(wrapper, "inpainting")
    model(y, physics).abs().sum().backward()
    grads = [p.grad for probe in probes for p in probe.parameters()]
    assert grads and all(g is not None and bool(g.abs().sum() > 0) for g in grads)


@pytest.mark.parametrize("wrapper", NAMES)
def test_refuses_a_backbone_of_the_wrong_channel_count(wrapper):
    model, _, physics, x, y = setup(wrapper, "mri", extra_channels=1)
    with pytest.raises(ValueError, match="channels") as e:
        model(y, physics)
    assert "\n" not in str(e.value)
