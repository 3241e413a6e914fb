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
    lines = physics.mask[:, 0, 0].sum(-1)  # acquired lines per sample: whole lines are kept or held out
    assert bool(((ratio - 0.6).abs() <= 0.5 / lines + 1e-9).all())  # the closest whole-line share
    kept_lines = sub.mask[:, 0].amax(-2)
    assert torch.equal(sub.mask[:, 0], kept_lines[:, None, :].expand_as(sub.mask[:, 0]))  # lines kept whole



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
    avg = loss.test_model(model, mode="average", n_samples=3)
    assert avg(y, physics, generator=torch.Generator().manual_seed(1)).shape == (2, 1, 6, 6)
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



def _renoise_case(noise: str, b: int):
    """A noise model with per-sample parameters, and the law of N(z) for a clean value z (per sample, shape (b,)):
    its mean and variance, with count-type noise simulated from z clipped at 0 and Gaussian noise not clipped."""
    from selfinv.noise import Gamma, Gaussian, Poisson, PoissonGaussian

    p = torch.linspace(0.05, 0.2, b, dtype=torch.float64)
    if noise == "gaussian":
        return Gaussian(p), lambda z: (z, p**2 + 0 * z)
    if noise == "poisson":
        return Poisson(p), lambda z: (z.clamp_min(0), p * z.clamp_min(0))
    if noise == "poisson_gaussian":
        return PoissonGaussian(0.1, p), lambda z: (z.clamp_min(0), 0.1 * z.clamp_min(0) + p**2)
    ell = torch.linspace(5.0, 20.0, b, dtype=torch.float64)
    return Gamma(ell), lambda z: (z.clamp_min(0), z.clamp_min(0) ** 2 / ell)


@pytest.mark.parametrize("loss_name", ["rei", "moi"])
@pytest.mark.parametrize("noise", ["gaussian", "poisson", "poisson_gaussian", "gamma"])
def test_rei_and_moi_renoise_with_the_noise_law_of_the_data_clipping_only_count_noise(loss_name, noise):
    """The estimate x̂ is a per-sample constant c (two positive, one negative, one zero), so that A T_g x̂ (REI) or
    A' x̂ (MOI) is c on the acquired entries whatever g or A'. The re-noised measurement the network sees must
    have, on the acquired entries, the noise model's mean and variance at c (c clipped at 0 for Poisson,
    Poisson-Gaussian and Gamma, not for Gaussian), within 4 standard errors; elsewhere it stays 0."""
    b, size = 4, 64
    model_noise, law = _renoise_case(noise, b)
    c = torch.tensor([0.6, 1.2, -0.3, 0.0], dtype=torch.float64)
    seen = []

    def model(v, physics):
        seen.append((v, physics))
        return c.reshape(-1, 1, 1, 1).expand(b, 1, size, size)

    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, 1, size, size, generator=g) > 0.4).double()
    if loss_name == "rei":
        physics = Inpainting(mask, noise=model_noise)
        loss = REI(Shift(), consistency="r2r" if noise == "gamma" else "sure")
    else:
        sampler = BernoulliMaskSampler(size, p=0.6)
        physics = sampler(b, generator=g, noise=model_noise).to(torch.float64)
        loss = MOI(sampler, renoise=True)
    y = physics(0.2 + 0.6 * torch.rand(b, 1, size, size, generator=g, dtype=torch.float64), generator=g)
    loss(y, physics, model, generator=torch.Generator().manual_seed(1))
    renoised, seen_physics = seen[-1]  # the equivariance / multi-operator term is evaluated last
    acquired = seen_physics.acquired(renoised).expand_as(renoised)
    if loss_name == "moi":
        assert not torch.equal(seen_physics.mask, physics.mask)  # another operator A'
    assert float(renoised[~acquired].abs().max()) == 0.0
    mean, var = law(c)
    for k in range(b):
        v = renoised[k][acquired[k]]
        n = v.numel()
        if float(var[k]) == 0.0:  # count noise at a clean value <= 0: exactly 0
            assert float(v.abs().max()) == 0.0, (k, float(v.abs().max()))
            continue
        d = v - mean[k]
        assert abs(float(d.mean())) < 4 * math.sqrt(float(var[k]) / n), (k, float(d.mean()), float(mean[k]))
        dev2 = (v - v.mean()) ** 2
        se_var = float(dev2.std()) / math.sqrt(n)
        assert abs(float(dev2.mean()) - float(var[k])) < 4 * se_var, (k, float(dev2.mean()), float(var[k]))


def low_frequency_images(n: int, seed: int) -> torch.Tensor:
    """Images in a shift-invariant subspace S of dimension 5 (constant and the lowest row/column Fourier modes):
    T_g S = S for every circular shift g."""
    i = torch.arange(H, dtype=torch.float64)
    cos, sin, one = torch.cos(2 * math.pi * i / H), torch.sin(2 * math.pi * i / H), torch.ones(H, dtype=torch.float64)
    basis = torch.stack([torch.outer(a, b) for a, b in ((one, one), (cos, one), (sin, one), (one, cos), (one, sin))])
    coef = torch.randn(n, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return 0.5 + 0.2 * torch.einsum("nk,khw->nhw", coef, basis)[:, None]


@pytest.mark.parametrize("name", ["ei", "mc"])
def test_ei_minimiser_is_the_image_on_a_shift_invariant_subspace_and_mc_is_not(name):
    """Closed form: for x in a shift-invariant subspace S on which A is injective, the linear model
    f(y) = A†y + (I − A†A) W A†y has EI loss 0 exactly when f(Ax) = x on S (then T_g x̂ = T_g x ∈ S is reproduced);
    the fill of the unobserved pixels is then the image itself, also on images it was not trained on. MC is blind
    to the nullspace: its loss is 0 for any W, and the fill stays wrong."""
    mask = (torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(1)) > 0.4).double()
    physics = Inpainting(mask)
    x, held_out = low_frequency_images(16, seed=0), low_frequency_images(8, seed=5)
    model = LinearFill()
    loss = EI(Shift()) if name == "ei" else MC()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        opt.zero_grad()
        loss(physics(x), physics, model, generator=g).backward()
        opt.step()
    never = (mask == 0).expand_as(held_out)
    with torch.no_grad():
        err = float((model(physics(held_out), physics) - held_out)[never].abs().max())
    zero_fill = float(held_out[never].abs().max())  # the error of A†y there: the image itself, about 0.5
    if name == "ei":
        assert err < 1e-6 * zero_fill, err
    else:
        assert err > 0.1 * zero_fill, err
