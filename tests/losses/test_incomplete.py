"""Losses for incomplete measurements: MC's nullspace blindness, MOI and splitting (SSDU)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.ei import EI, REI
from selfinv.losses.moi import MOI
from selfinv.losses.splitting import Splitting, split_masks
from selfinv.losses.supervised import MC
from selfinv.physics import Inpainting, MeasurementMask
from selfinv.physics.compressed_sensing import CompressedSensing
from selfinv.physics.samplers import BernoulliMaskSampler, MRIMaskSampler
from selfinv.transforms import Rotate, Shift

H = W = 8


class KeepAndFill(nn.Module):
    """f(y, A) = A†y + (I − A†A) u: keeps what is measured, fills the nullspace with a learned image u."""

    def __init__(self) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.zeros(1, 1, H, W, dtype=torch.float64))

    def forward(self, y, physics):
        x0 = physics.A_dagger(y)
        u = self.u.expand(y.shape[0], 1, H, W)
        return x0 + u - physics.A_dagger(physics.A(u))


class LinearFill(nn.Module):
    """f(y, A) = A†y + (I − A†A) W A†y: fills the nullspace linearly from what is measured."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(2)
        self.w = nn.Parameter(0.1 * torch.randn(H * W, H * W, generator=g, dtype=torch.float64))

    def forward(self, y, physics):
        x0 = physics.A_dagger(y)
        fill = (x0.flatten(1) @ self.w.T).reshape(x0.shape)
        return x0 + fill - physics.A_dagger(physics.A(fill))


def image(seed=0, b=4):
    return torch.rand(b, 1, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_mc_has_zero_gradient_on_the_nullspace_of_a_fixed_mask_and_moi_does_not():
    mask = (torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    physics = Inpainting(mask)
    x = image()
    y = physics(x)
    model = LinearFill()
    MC()(y, physics, model).backward()
    assert float(model.w.grad.abs().max()) == 0.0  # MC is blind to the whole nullspace: no gradient at all
    model.w.grad = None
    MOI(BernoulliMaskSampler(H, p=0.5))(y, physics, model, generator=torch.Generator().manual_seed(3)).backward()
    # MOI's gradient reaches the weights that fill the unobserved pixels
    unobserved = (mask == 0).flatten()
    assert float(model.w.grad[unobserved].abs().sum()) > 1e-3
    # and so does EI's: the shifted operators A T_g see the nullspace of A
    model.w.grad = None
    EI(Shift())(y, physics, model, generator=torch.Generator().manual_seed(4)).backward()
    assert float(model.w.grad[unobserved].abs().sum()) > 1e-3
    # while EI with a transform A is equivariant to (blur and shifts) would not help: see test_theory


def test_moi_counts_two_evaluations_and_draws_operators_per_sample():
    calls = []
    sampler = BernoulliMaskSampler(H, p=0.5)

    def model(y, physics):
        calls.append(physics)
        return physics.A_adjoint(y)

    physics = sampler(3, generator=torch.Generator().manual_seed(0))
    y = physics(image(b=3).float())
    MOI(sampler)(y, physics, model, generator=torch.Generator().manual_seed(1))
    assert len(calls) == 2 and MOI(sampler).info.train_evals == 2
    other = calls[1].mask
    assert other.shape[0] == 3 and not torch.equal(other[0], other[1])


def test_split_masks_exact_counts_only_acquired_entries_and_reproducible():
    acquired = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.3
    for kind in ("bernoulli", "gaussian"):
        s = split_masks(acquired, 0.6, kind, generator=torch.Generator().manual_seed(1))
        assert bool((s <= acquired).all())
        n_acq = acquired.flatten(1).sum(1)
        n_target = torch.round(0.4 * n_acq)
        assert torch.equal(s.flatten(1).sum(1), n_acq - n_target.long())
        assert torch.equal(s, split_masks(acquired, 0.6, kind, generator=torch.Generator().manual_seed(1)))
        assert not torch.equal(s[0], s[1])


def test_gaussian_split_holds_out_the_centre_preferentially():
    acquired = torch.ones(400, 1, 16, 16, dtype=torch.bool)
    s = split_masks(acquired, 0.6, "gaussian", gaussian_std=0.2, generator=torch.Generator().manual_seed(0)).double()
    held = 1 - s.mean(0)[0]
    assert held[6:10, 6:10].mean() > 1.5 * torch.cat([held[:3].flatten(), held[-3:].flatten()]).mean()
    u = split_masks(acquired, 0.6, "bernoulli", generator=torch.Generator().manual_seed(0)).double().mean((0, 1))
    se = math.sqrt(0.6 * 0.4 / 400)
    assert float((u - 0.6).abs().max()) < 5 * se  # uniform: every entry is an input with probability 0.6


def test_splitting_respects_per_sample_operator_masks_and_uses_subsampled_physics():
    physics = MRIMaskSampler(16, acceleration=2, center_fraction=0.25)(3, generator=torch.Generator().manual_seed(0))
    y = physics(torch.randn(3, 1, 16, 16, dtype=torch.complex128))
    seen = []

    def model(y_in, sub):
        seen.append((y_in, sub))
        return sub.A_adjoint(y_in)

    loss = Splitting(split_ratio=0.6)
    loss(y, physics, model, generator=torch.Generator().manual_seed(1))
    (y_in, sub), = seen
    assert isinstance(sub, type(physics))  # a mask operator stays a mask operator (closed-form A†)
    assert bool((sub.mask <= physics.mask).all())
    assert bool((y_in[sub.mask.expand_as(y_in) == 0] == 0).all())
    ratio = sub.mask.flatten(1).sum(1) / physics.mask.flatten(1).sum(1)
    assert bool(((ratio - 0.6).abs() < 0.02).all())



@pytest.mark.parametrize("consistency", ["none", "mc"])
def test_splitting_without_consistency_leaves_the_output_on_the_input_entries_free(consistency):
    """SSDU's held-out term alone gives exactly zero gradient to the output on the input entries S, so a
    network without data-consistency layers is unconstrained there; the default "mc" term constrains it."""
    fixed = (torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(5)) > 0.3).double()
    physics = Inpainting(fixed)
    y = physics(image(b=1))
    u = torch.zeros(1, 1, H, W, dtype=torch.float64, requires_grad=True)
    seen = []

    def model(y_in, sub):  # the output ignores the input: a free image
        seen.append(sub)
        return u

    Splitting(0.6, consistency=consistency)(y, physics, model, generator=torch.Generator().manual_seed(1)).backward()
    on_input = seen[0].mask.expand_as(u) > 0
    held_out = (fixed > 0) & ~on_input
    assert float(u.grad[held_out].abs().min()) > 0  # the held-out entries are always fitted
    if consistency == "none":
        assert float(u.grad[on_input].abs().max()) == 0.0
    else:
        assert float(u.grad[on_input].abs().min()) > 0
    assert float(u.grad[fixed == 0].abs().max()) == 0.0  # never measured: never constrained
    assert Splitting().consistency_name == "mc"

def train_fill(loss, physics_fn, steps=150, seed=0):
    """Gradient descent on u for KeepAndFill with the given loss; returns the learned u."""
    model = KeepAndFill()
    opt = torch.optim.SGD(model.parameters(), lr=4.0)
    g = torch.Generator().manual_seed(seed)
    x = image(seed=11, b=1).expand(16, 1, H, W)  # one image seen through many operators
    for _ in range(steps):
        physics = physics_fn(g)
        y = physics(x)
        opt.zero_grad()
        loss(y, physics, model, generator=g).backward()
        opt.step()
    return model.u.detach(), x[0:1]


def test_splitting_identifies_the_image_with_many_operators_but_not_with_one():
    sampler = BernoulliMaskSampler(H, p=0.5)
    u, x = train_fill(Splitting(0.6), lambda g: sampler(16, generator=g).to(torch.float64))
    assert float((u - x).abs().max()) < 1e-3  # every pixel is held out sometimes: u -> x everywhere
    fixed = (torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(5)) > 0.5).double()
    u, x = train_fill(Splitting(0.6), lambda g: Inpainting(fixed))
    never = fixed[0, 0] == 0
    assert float(u[0, 0][never].abs().max()) == 0.0  # never measured: no gradient, stays at 0
    assert float((u - x)[0, 0][~never].abs().max()) < 1e-3


def test_splitting_loss_on_general_operators_and_test_time_modes():
    g = torch.Generator().manual_seed(0)
    physics = CompressedSensing(20, (1, 6, 6), kind="gaussian", generator=g)
    y = physics(torch.rand(2, 1, 6, 6, generator=g))
    model = lambda y, physics: physics.A_dagger(y)  # noqa: E731
    loss = Splitting(0.5, consistency="mc")
    assert loss(y, physics, model, generator=g).ndim == 0
    assert loss.test_model(model) is model
    avg = loss.test_model(model, mode="average", n_samples=3, generator=torch.Generator().manual_seed(1))
    assert avg(y, physics).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="mode"):
        loss.test_model(model, mode="median")
    with pytest.raises(ValueError, match="split_ratio"):
        Splitting(1.0)
    sub = physics.subsample(torch.ones(2, 20))
    assert isinstance(sub.ops[0], MeasurementMask)


def test_ei_draws_a_transform_per_sample_and_counts_evaluations():
    seen = []

    def model(y, physics):
        seen.append(y)
        return y

    physics = Inpainting(torch.ones(1, 1, H, W))
    x = torch.zeros(3, 1, H, W)
    x[:, :, 0, 0] = 1.0  # a single bright pixel: its position after T_g tells g
    loss = EI(Shift())
    loss(physics(x), physics, model, generator=torch.Generator().manual_seed(0))
    assert len(seen) == 2 == loss.info.train_evals
    positions = {int(t[0].flatten().argmax()) for t in seen[1]}
    assert len(positions) > 1  # different shifts for different samples
    assert REI(Rotate(4)).info.train_evals == 3
    assert REI(Rotate(4), consistency="r2r").info.train_evals == 3
    with pytest.raises(ValueError, match="transform"):
        EI("shift")
    with pytest.raises(ValueError, match="consistency"):
        REI(Shift(), consistency="mc")



@pytest.mark.parametrize("noise", ["poisson", "poisson_gaussian"])
def test_rei_and_moi_renoise_count_data_from_estimates_that_dip_below_zero(noise):
    from selfinv.noise import Poisson, PoissonGaussian

    model_noise = Poisson(0.1) if noise == "poisson" else PoissonGaussian(0.1, 0.05)
    seen = []

    def model(y, physics):  # an estimate with negative values, as networks give early in training
        seen.append(y)
        return physics.A_adjoint(y) - 0.5

    physics = Inpainting(torch.ones(1, 1, H, W), noise=model_noise)
    y = physics(image(), generator=torch.Generator().manual_seed(0))
    value = REI(Shift(), consistency="sure")(y, physics, model, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(value)
    renoised = seen[-1]  # f(N(A T x̂)): simulated from A T x̂ clipped at 0
    if noise == "poisson":
        assert bool((renoised >= 0).all()) and bool((renoised == 0).any())
    moi = MOI(BernoulliMaskSampler(H, p=0.5), renoise=True)
    assert torch.isfinite(moi(y, physics, model, generator=torch.Generator().manual_seed(2)))

def test_ei_minimiser_fills_the_nullspace_with_shifts_on_a_fixed_mask():
    """EI with shifts identifies a fixed random inpainting mask (the rank condition holds), MC does not."""
    mask = (torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(1)) > 0.4).double()
    physics = Inpainting(mask)
    u, x = train_fill_ei(physics, EI(Shift(), weight=1.0))
    # the nullspace fill is learned where MC alone gives no signal
    never = mask[0, 0] == 0
    assert float(u[0, 0][never].abs().max()) > 1e-3


def train_fill_ei(physics, loss, steps=40):
    model = LinearFill()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(0)
    x = image(seed=11, b=8)
    for _ in range(steps):
        opt.zero_grad()
        loss(physics(x), physics, model, generator=g).backward()
        opt.step()
    fill = model(physics(x), physics) - physics.A_dagger(physics(x))
    return fill[:1].detach(), x[:1]
