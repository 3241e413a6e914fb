"""Autograd divergences on piecewise-linear networks: their parameter gradients see the activation pattern.

For a ReLU network the Jacobian diagonal depends on a bias before a ReLU only through the activation
pattern, a step function, so the autograd derivative of :math:`b^\\top J b` with respect to that bias is
exactly 0. The derivative of the *expected* divergence is not: by Stein's lemma, for
:math:`y = x + \\sigma\\varepsilon`,

.. math:: \\nabla_\\theta\\, \\mathbb E[\\operatorname{div} f_\\theta(y)] = \\nabla_\\theta\\, \\mathbb E[(y - x)^\\top f_\\theta(y)] / \\sigma^2,

and the right side is an ordinary autograd gradient of a Monte-Carlo mean. The checks draw the same
noisy batches for the estimator and for this reference, split the draws into G groups, and compare the
per-group gradients paired: the mean difference must be within 4 standard errors of the difference
(estimated from the G groups, so it includes the noise of both sides), and the reference must be many of
those standard errors away from zero, so that a zero gradient (the defect) could not pass.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.divergence import divergence, second_divergence, shifted_divergences
from selfinv.losses.supervised import Supervised
from selfinv.losses.sure import SURE
from selfinv.models.dncnn import DnCNN
from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from tests.helpers import gen

F64 = torch.float64
SIGMA = 0.2
SIDE = 6  # 36 coordinates: "exact" makes one backward pass and two evaluations per coordinate


pytestmark = pytest.mark.usefixtures("one_thread")


def relu_net(act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Conv(1→4) – activation – Conv(4→1), float64, weights seeded so that every bias moves the pattern."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), act(), nn.Conv2d(4, 1, 3, padding=1)).to(F64)
    g = gen(2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=F64))
    return net


def clean_image() -> torch.Tensor:
    t = torch.linspace(0, 1, SIDE, dtype=F64)
    return (0.5 + 0.4 * torch.sin(3 * t[:, None] + 2 * t[None, :])).reshape(1, 1, SIDE, SIDE)


def paired_gradients(estimate, reference, param, groups: int, size: int, seed: int):
    """Per-group gradients of the two batch means with respect to ``param``: (groups, *param.shape) each."""
    x = clean_image()
    g = gen(seed)
    est, ref = [], []
    for _ in range(groups):
        y = x + SIGMA * torch.randn(size, 1, SIDE, SIDE, generator=g, dtype=F64)
        est.append(torch.autograd.grad(estimate(y, g).mean(), param)[0])
        ref.append(torch.autograd.grad(reference(y, x).mean(), param)[0])
    return torch.stack(est), torch.stack(ref)


def assert_same_gradient(est: torch.Tensor, ref: torch.Tensor) -> None:
    diff = est - ref
    se = diff.std(0) / math.sqrt(len(diff))
    z = diff.mean(0) / se
    assert bool((z.abs() < 4).all()), f"estimator {est.mean(0)} vs Stein {ref.mean(0)}: {z} SE"
    # the reference is far from 0 on the scale of the tolerance: a zero gradient would fail
    assert float((ref.mean(0).abs() / se).max()) > 6, (ref.mean(0), se)


def stein_divergence(net):
    """E[div f(y)] = E[(y − x)ᵀ f(y)] / σ² (Stein 1981): the oracle, per sample."""
    return lambda y, x: ((y - x) * net(y)).flatten(1).sum(1) / SIGMA**2


ESTIMATORS = {
    # name: (estimate(net) -> (y, generator) -> (B,), groups, draws per group)
    "mc": (lambda net: lambda y, g: divergence(net, y, "mc", generator=g), 40, 400),
    "hutchinson": (lambda net: lambda y, g: divergence(net, y, "hutchinson", generator=g), 40, 400),
    "exact": (lambda net: lambda y, g: divergence(net, y, "exact"), 30, 100),
    # the first-order term of PG-URE's pair, and the centre of UNSURE's shifted sums, are the same divergence
    "second_divergence": (lambda net: lambda y, g: second_divergence(net, y, "hutchinson", generator=g)[0], 40, 400),
    "shifted_centre": (
        lambda net: lambda y, g: shifted_divergences(net, y, 1, "hutchinson", generator=g)[:, 1, 1],
        40,
        400,
    ),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bias_gradient_of_the_divergence_matches_stein_on_a_relu_network(name):
    make, groups, size = ESTIMATORS[name]
    net = relu_net()
    est, ref = paired_gradients(make(net), stein_divergence(net), net[0].bias, groups, size, seed=1)
    assert_same_gradient(est, ref)


def test_sure_with_hutchinson_has_the_gradient_of_the_risk():
    """E[∇θ SURE] = ∇θ E‖f(y) − x‖²/n: SURE's parameter gradient against the supervised one (the oracle)."""
    net = relu_net()
    physics = Denoising(noise=Gaussian(SIGMA))
    model = lambda y, physics: net(y)  # noqa: E731
    sure = SURE(divergence="hutchinson")
    est, ref = paired_gradients(
        lambda y, g: sure.per_sample(y, physics, model, generator=g),
        lambda y, x: Supervised()(y, physics, model, x=x.expand_as(y)).reshape(1),
        net[0].bias,
        groups=40,
        size=400,
        seed=3,
    )
    assert_same_gradient(est, ref)


# ----------------------------------------------------------------------------------------- what stays the same
@pytest.mark.parametrize("method", ["hutchinson", "exact"])
def test_values_are_the_autograd_estimates_in_training_and_in_evaluation(method):
    net = relu_net()
    y = clean_image() + SIGMA * torch.randn(8, 1, SIDE, SIDE, generator=gen(4), dtype=F64)
    trained = divergence(net, y, method, generator=gen(5))
    assert trained.requires_grad
    with torch.no_grad():
        evaluated = divergence(net, y, method, generator=gen(5))
    assert torch.allclose(trained.detach(), evaluated, rtol=1e-12, atol=1e-12)


def test_smooth_network_keeps_its_autograd_gradient():
    """For a smooth network the difference along the probe is bᵀJb + O(τ): the gradient moves by O(τ) only."""
    net = relu_net(nn.Tanh)
    y = clean_image() + SIGMA * torch.randn(16, 1, SIDE, SIDE, generator=gen(6), dtype=F64)
    params = list(net.parameters())
    new = torch.autograd.grad(divergence(net, y, "hutchinson", generator=gen(7)).sum(), params, allow_unused=True)
    # the double-backward gradient of bᵀJb for the same probes
    b = torch.randn(y.shape, generator=gen(7), dtype=F64)
    y_in = y.clone().requires_grad_(True)
    (jtb,) = torch.autograd.grad((net(y_in) * b).sum(), y_in, create_graph=True)
    old = torch.autograd.grad((jtb * b).sum(), params, allow_unused=True)
    for a, o in zip(new, old, strict=True):
        if o is None:  # the last bias: the divergence does not depend on it (its difference cancels)
            assert a is None or float(a.abs().max()) < 1e-8
            continue
        # τ = 10⁻³ max|y| ≈ 10⁻³: a relative change of order 10⁻³ (10⁻² allowed)
        assert torch.allclose(a, o, rtol=1e-2, atol=1e-2 * float(o.abs().max())), (a, o)


# ----------------------------------------------------------------------------------------- evaluations
class Counting(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, y, physics=None):
        self.calls += 1
        return self.net(y)


def test_network_evaluations_with_parameters():
    physics = Denoising(noise=Gaussian(SIGMA))
    y = physics(clean_image().expand(4, 1, SIDE, SIDE), generator=gen(8))
    n = SIDE * SIDE
    for method, n_probes, train_calls in (
        ("mc", 1, 2),
        ("hutchinson", 1, 2),
        ("hutchinson", 3, 4),
        ("exact", 1, 1 + 2 * n),
    ):
        model = Counting(relu_net())
        SURE(divergence=method, n_probes=n_probes)(y, physics, model, generator=gen(9)).backward()
        assert model.calls == train_calls, (method, n_probes, model.calls)
        model.calls = 0
        with torch.no_grad():  # evaluation: no differences; f(y), then f(y) once more with a graph for autograd
            SURE(divergence=method, n_probes=n_probes)(y, physics, model, generator=gen(9))
        assert model.calls == (1 + n_probes if method == "mc" else 2), (method, model.calls)
    # a map without parameters has no parameter gradient to correct: one evaluation
    for method in ("hutchinson", "exact"):
        model = Counting(nn.Identity())
        SURE(divergence=method)(y, physics, model, generator=gen(9))
        assert model.calls == 1


# ----------------------------------------------------------------------------------------- training
def test_sure_with_hutchinson_trains_a_relu_dncnn():
    """A tiny DnCNN (ReLU) trained by SURE with the autograd divergence leaves the identity (> 3 dB gain).

    Measured (150 Adam steps, seed 0): 19.99 dB noisy, 26.25 dB after training; the autograd gradient
    without the pattern term stayed at 20.44 dB.
    """
    from skimage import data

    img = torch.nn.functional.avg_pool2d(torch.tensor(data.camera(), dtype=torch.float32)[None, None] / 255, 2)
    physics = Denoising(noise=Gaussian(0.1))
    side, batch = 32, 8

    def patches(g, count):
        i = torch.randint(0, img.shape[-2] - side, (count,), generator=g).tolist()
        j = torch.randint(0, img.shape[-1] - side, (count,), generator=g).tolist()
        return torch.stack([img[0, :, a : a + side, c : c + side] for a, c in zip(i, j, strict=True)])

    def psnr(a, b):
        return float((10 * torch.log10(1 / ((a - b) ** 2).flatten(1).mean(1))).mean())

    gv = gen(123)
    xv = patches(gv, 64)
    yv = physics(xv, generator=gv)
    torch.manual_seed(0)  # the network's initial weights only
    net = DnCNN(1, 1, depth=4, width=16, batch_norm=False)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss = SURE(divergence="hutchinson")
    g = gen(1)
    for _ in range(150):
        x = patches(g, batch)
        value = loss(physics(x, generator=g), physics, net, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
    with torch.no_grad():
        gain = psnr(net(yv).clamp(0, 1), xv) - psnr(yv, xv)
    assert gain > 3.0, gain
