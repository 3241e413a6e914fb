"""The operator-conditioned network (selfinv.models.ram.RAM): its proximal step, its operator normalisation, one
set of weights for gray, complex and colour images, and its errors."""

from __future__ import annotations

import pytest
import torch

from selfinv.models import RAM, BackProjection
from selfinv.models.ram import _Normal
from selfinv.noise import Gaussian
from selfinv.physics import MRI, Blur, Inpainting, Tomography, gaussian_kernel
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(c: int = 1, **kw) -> RAM:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = RAM(c, c, widths=(4, 8), **kw).double()
        for k in [*net.enc_krylov, net.body_krylov, *net.dec_krylov]:  # switch the (zero-initialised) conditioning on
            for m in k.mix.values():
                torch.nn.init.normal_(m.weight, std=0.3)
    return net.eval()


def test_prox_step_solves_its_linear_system():
    """x0 = (I + γ N)^{-1} (1 + γ) b with N = AᵀA / L and γ = τ² / σ̃², against a dense solve (float64)."""
    n = 8
    op = Blur(gaussian_kernel(1.5, size=5).double(), noise=Gaussian(0.02))
    net = _net(prox_iterations=n * n)
    b = torch.rand(2, 1, n, n, generator=gen(0), dtype=torch.float64)
    L = torch.full((2,), 0.9, dtype=torch.float64)
    normal = _Normal(op, L, False)
    sigma = torch.tensor([0.02, 0.05], dtype=torch.float64)
    x0 = net._prox(b, normal, sigma)
    eye = torch.eye(n * n, dtype=torch.float64)
    N = torch.stack([normal(e.reshape(1, 1, n, n).expand(2, 1, n, n).contiguous()).reshape(2, -1) for e in eye], -1)
    gamma = (net.tau.detach().double() / sigma) ** 2
    for i in range(2):
        want = torch.linalg.solve(eye + gamma[i] * N[i], (1 + gamma[i]) * b[i].reshape(-1))
        torch.testing.assert_close(x0[i].reshape(-1), want, rtol=1e-7, atol=1e-9)
    assert not torch.allclose(x0, b)  # the step does something for a blur


def test_output_does_not_depend_on_the_units_of_the_measurements():
    """A → cA, y → cy, σ → cσ leaves the output unchanged (everything is relative to L = ‖A‖²)."""
    x = torch.rand(2, 1, 16, 16, generator=gen(1), dtype=torch.float64)
    op = Tomography(12, 16, noise=Gaussian(0.3))
    y = op(x, generator=gen(2))
    net = BackProjection(_net(), init="adjoint")
    c = 7.5
    scaled = (op * c).with_noise(Gaussian(0.3 * c))
    with torch.no_grad():
        torch.testing.assert_close(net(c * y, scaled), net(y, op), rtol=1e-6, atol=1e-8)


def test_the_operator_conditions_the_output():
    """Same back-projection, another operator: another output (the Krylov terms see AᵀA)."""
    net = _net()
    b = torch.rand(1, 1, 16, 16, generator=gen(3), dtype=torch.float64)
    m1 = (torch.rand(1, 1, 16, 16, generator=gen(4)) > 0.5).double()
    m2 = (torch.rand(1, 1, 16, 16, generator=gen(5)) > 0.5).double()
    with torch.no_grad():
        assert not torch.allclose(net(b, Inpainting(m1)), net(b, Inpainting(m2)))


def test_one_state_dict_serves_gray_complex_and_colour():
    torch.manual_seed(0)
    state = RAM(1, 1, widths=(4, 8)).state_dict()
    assert {k.split(".")[1] for k in state if k.startswith("heads.")} == {"1", "2", "3"}
    colour = RAM(3, 3, widths=(4, 8))
    colour.load_state_dict(state)  # the same keys whatever the nominal channels
    mask = (torch.rand(3, 1, 8, 8, generator=gen(6)) > 0.3).float()
    model = BackProjection(colour, init="adjoint")
    mri = MRI(mask, noise=Gaussian(0.01))
    y = mri.A(torch.randn(3, 1, 8, 8, generator=gen(7), dtype=torch.complex64))
    out = model(y, mri)  # 1 complex channel = 2 real ones: the complex head
    assert out.dtype == torch.complex64 and out.shape == (3, 1, 8, 8)
    rgb = Inpainting(mask.expand(3, 3, 8, 8).contiguous())
    assert model(rgb.A(torch.rand(3, 3, 8, 8)), rgb).shape == (3, 3, 8, 8)
    with pytest.raises(ValueError, match="heads for"):
        colour(torch.rand(1, 4, 8, 8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_channels": 2, "out_channels": 3}, "must be one of kinds"),
        ({"in_channels": 4, "out_channels": 4}, "must be one of kinds"),
        ({"in_channels": 1, "out_channels": 1, "widths": ()}, "must not be empty"),
        ({"in_channels": 1, "out_channels": 1, "sigma_min": 0.0}, "sigma_min"),
        ({"in_channels": 1, "out_channels": 1, "prox_iterations": -1}, "prox_iterations"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        RAM(**kwargs)
    assert "\n" not in str(e.value)


def test_bad_inputs_are_one_line_errors():
    net = _net(3)
    mask = torch.ones(1, 1, 8, 8)
    with pytest.raises(ValueError, match="2 real channels per complex one"):
        net(torch.rand(1, 3, 8, 8, dtype=torch.float64), MRI(mask))
    with pytest.raises(ValueError, match="real"):
        net(torch.rand(1, 1, 8, 8, dtype=torch.complex128))
    with pytest.raises(ValueError, match="batch of 3") as e:  # the operator's own per-sample check
        net(torch.rand(2, 1, 8, 8, dtype=torch.float64), Inpainting(mask, noise=Gaussian(torch.tensor([0.1, 0.2, 0.3]))))
    assert "\n" not in str(e.value)
