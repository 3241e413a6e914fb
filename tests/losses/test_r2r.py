"""R2R / GR2R: the recorruption laws and independence (Monte Carlo, within 4 standard errors), the risk
identity, the noise handed to the network, the test-time estimator, per-sample parameters and errors."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.losses.base import sq_mean
from selfinv.losses.r2r import R2R, R2REstimator, pang_to_alpha, recorrupt
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, Poisson, PoissonGaussian
from selfinv.physics import Denoising, Inpainting, Matrix

ALPHA = 0.2
N = 40_000  # draws per sample


def per_sample(*values):
    return torch.tensor(values, dtype=torch.float64)


def moments_ok(a: torch.Tensor, theory: torch.Tensor, what: str) -> None:
    """Per sample (rows of a (B, N) tensor): the sample mean of a is within 4 standard errors of theory."""
    mean = a.mean(1)
    se = a.std(1) / math.sqrt(a.shape[1])
    assert torch.all((mean - theory).abs() < 4 * se), (what, mean, theory, se)


def check_pair(y1, y2, x, var1, var2):
    """Unbiased, the variances of the noise model of each, and uncorrelated (rows = samples)."""
    n1, n2 = (y1 - x).flatten(1), (y2 - x).flatten(1)
    moments_ok(n1, torch.zeros(n1.shape[0], dtype=n1.dtype), "E[y1] = x")
    moments_ok(n2, torch.zeros(n2.shape[0], dtype=n2.dtype), "E[y2] = x")
    # sample variance vs theory: the standard error of the mean of the centred squares
    moments_ok((n1 - n1.mean(1, keepdim=True)) ** 2, var1, "Var(y1)")
    moments_ok((n2 - n2.mean(1, keepdim=True)) ** 2, var2, "Var(y2)")
    moments_ok(n1 * n2, torch.zeros(n1.shape[0], dtype=n1.dtype), "Cov(y1, y2) = 0")


# ---------------------------------------------------------------------- Gaussian
def test_gaussian_pair_is_independent_with_the_stated_variances_per_sample():
    sigma = per_sample(0.05, 0.2, 1.0)
    physics = Denoising(noise=Gaussian(sigma))
    g = torch.Generator().manual_seed(0)
    x = torch.full((3, 1, N), 0.5, dtype=torch.float64)
    y = physics(x, generator=g)
    y1, y2, physics1 = recorrupt(y, physics, ALPHA, generator=g)
    check_pair(y1, y2, x, sigma**2 / (1 - ALPHA), sigma**2 / ALPHA)
    # the network is told the law of its input: Gaussian(sigma / sqrt(1 - alpha)), per sample
    assert isinstance(physics1.noise, Gaussian)
    assert torch.allclose(physics1.noise.sigma, sigma / math.sqrt(1 - ALPHA))
    assert torch.equal(physics.noise.sigma, sigma)  # the original is untouched


def test_the_pytorch_demo_pairing_is_correlated_and_would_be_caught():
    # anchors §1.5: y1 = y + alpha*sigma*w, y2 = (y - (1 - alpha) y1)/alpha has Cov = sigma^2 (1 - alpha(1 - alpha))
    sigma = 0.3
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(1, N, dtype=torch.float64)
    y = x + sigma * torch.randn(1, N, generator=g, dtype=torch.float64)
    y1 = y + ALPHA * sigma * torch.randn(1, N, generator=g, dtype=torch.float64)
    y2 = (y - (1 - ALPHA) * y1) / ALPHA
    prod = (y1 * y2)[0]
    cov, se = float(prod.mean()), float(prod.std() / math.sqrt(N))
    theory = sigma**2 * (1 - ALPHA * (1 - ALPHA))
    assert abs(cov - theory) < 4 * se and cov > 20 * se  # the covariance check above would fail on it


def test_gaussian_risk_identity_and_subtracted_version():
    # E R2R = E (1/n)||x - f(y1)||^2 + sigma^2/alpha for a fixed nonlinear f (paired with the same y1);
    # with the constant subtracted it is the supervised risk at the inflated noise sigma^2/(1 - alpha)
    sigma, chunks = 0.2, 300
    physics = Denoising(noise=Gaussian(sigma))
    g = torch.Generator().manual_seed(2)
    x = (0.2 + 0.6 * torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64)).expand(50, 1, 4, 4)
    seen = []

    def f(y, physics):
        seen.append(y)
        return 0.8 * torch.tanh(2 * y) + 0.1 * y**2

    gaps, sub, inflated = [], [], []
    inflated_physics = Denoising(noise=Gaussian(sigma / math.sqrt(1 - ALPHA)))
    for _ in range(chunks):
        y = physics(x, generator=g)
        value = R2R(alpha=ALPHA)(y, physics, f, generator=g)
        gaps.append(float(value - sq_mean(f(seen[-1], None) - x)))
        sub.append(float(R2R(alpha=ALPHA, subtract_noise=True)(y, physics, f, generator=g)))
        inflated.append(float(sq_mean(f(inflated_physics(x, generator=g), None) - x)))  # an independent MC run
    gaps_t, sub_t, inf_t = (torch.tensor(v, dtype=torch.float64) for v in (gaps, sub, inflated))
    se = float(gaps_t.std() / math.sqrt(chunks))
    assert abs(float(gaps_t.mean()) - sigma**2 / ALPHA) < 4 * se, (float(gaps_t.mean()), sigma**2 / ALPHA, se)
    diff_se = math.sqrt(float(sub_t.var() + inf_t.var()) / chunks)
    assert abs(float(sub_t.mean() - inf_t.mean())) < 4 * diff_se, (float(sub_t.mean()), float(inf_t.mean()), diff_se)


def test_risk_identity_with_an_operator_and_zero_filled_measurements():
    # inpainting: unacquired entries stay exactly 0 in y1 and y2 (they are not re-noised), and
    # E R2R = E (1/m)||A f(y1) - A x||^2 + (sigma^2/alpha) * (fraction acquired)
    mask = (torch.arange(16).reshape(1, 1, 4, 4) % 3 != 0).double()
    physics = Inpainting(mask, noise=Gaussian(0.1))
    g = torch.Generator().manual_seed(3)
    x = (0.2 + 0.6 * torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64)).expand(50, 1, 4, 4)
    y = physics(x, generator=g)
    y1, y2, _ = recorrupt(y, physics, ALPHA, generator=g)
    assert bool((y1[:, :, mask[0, 0] == 0] == 0).all()) and bool((y2[:, :, mask[0, 0] == 0] == 0).all())
    seen = []

    def f(y, physics):
        seen.append(y)
        return torch.tanh(y) + 0.3

    gaps = []
    for _ in range(300):
        y = physics(x, generator=g)
        value = R2R(alpha=ALPHA)(y, physics, f, generator=g)
        gaps.append(float(value - sq_mean(physics.A(f(seen[-1], None)) - physics.A(x))))
    t = torch.tensor(gaps, dtype=torch.float64)
    expected = 0.01 / ALPHA * float(mask.mean())
    assert abs(float(t.mean()) - expected) < 4 * float(t.std() / math.sqrt(len(gaps))), (float(t.mean()), expected)


def test_risk_identity_with_a_dense_operator_and_poisson_noise():
    g = torch.Generator().manual_seed(4)
    A = torch.rand(6, 8, generator=g, dtype=torch.float64)  # non-negative, so Ax is a valid Poisson rate
    physics = Matrix(A, noise=Poisson(0.05))
    x = (0.2 + 0.6 * torch.rand(1, 8, generator=g, dtype=torch.float64)).expand(50, 8)
    seen = []

    def f(y, physics):
        seen.append(y)
        return torch.sigmoid(y[:, :1] - y[:, 1:2]) * torch.ones(y.shape[0], 8, dtype=y.dtype)

    gaps, sub = [], []
    for _ in range(300):
        y = physics(x, generator=g)
        value = R2R(alpha=ALPHA)(y, physics, f, generator=g)
        gaps.append(float(value - sq_mean(physics.A(f(seen[-1], None)) - physics.A(x))))
        value = R2R(alpha=ALPHA, subtract_noise=True)(y, physics, f, generator=g)
        sub.append(float(value - sq_mean(physics.A(f(seen[-1], None)) - physics.A(x))))
    expected = float((0.05 * physics.A(x)).mean()) / ALPHA  # Var(y2 | x) = gain * Ax / alpha
    for values, target in ((gaps, expected), (sub, 0.0)):
        t = torch.tensor(values, dtype=torch.float64)
        assert abs(float(t.mean()) - target) < 4 * float(t.std() / math.sqrt(len(values))), (float(t.mean()), target)


# ---------------------------------------------------------------------- Poisson and Gamma (GR2R)
def test_poisson_binomial_thinning_per_sample_gain():
    gain = per_sample(0.02, 0.1, 0.5)
    physics = Denoising(noise=Poisson(gain))
    g = torch.Generator().manual_seed(5)
    x = per_sample(0.3, 0.7, 2.0)[:, None].expand(3, N).contiguous()
    y = physics(x, generator=g)
    y1, y2, physics1 = recorrupt(y, physics, ALPHA, generator=g)
    gb = gain[:, None]
    # z - w ~ P((1 - a) x / gain) and w ~ P(a x / gain), independent: y1, y2 unbiased, uncorrelated,
    # Var(y1) = gain x / (1 - a) and Var(y2) = gain x / a
    check_pair(y1, y2, x, (gain * x[:, 0]) / (1 - ALPHA), (gain * x[:, 0]) / ALPHA)
    # y1 is Poisson with gain gain/(1 - a): integer counts in that unit, and the network is told so
    counts1 = y1 * (1 - ALPHA) / gb
    assert torch.allclose(counts1, counts1.round(), atol=1e-6)
    assert isinstance(physics1.noise, Poisson) and torch.allclose(physics1.noise.gain, gain / (1 - ALPHA))
    # binomial thinning: w <= z and y = (1 - a) y1 + a y2 exactly
    assert torch.allclose((1 - ALPHA) * y1 + ALPHA * y2, y, atol=1e-9)
    assert bool((y1 >= 0).all()) and bool((y2 >= 0).all())


def test_poisson_y1_has_the_poisson_law_it_is_announced_with():
    # P(count1 = 0) = exp(-(1 - a) x / gain) for Poisson(gain/(1 - a)) noise: a check beyond two moments
    gain, xv = 0.25, 0.5
    physics = Denoising(noise=Poisson(gain))
    g = torch.Generator().manual_seed(6)
    y = physics(torch.full((1, N), xv, dtype=torch.float64), generator=g)
    y1, _, _ = recorrupt(y, physics, ALPHA, generator=g)
    zero = (y1 == 0).double()[0]
    p = math.exp(-(1 - ALPHA) * xv / gain)
    assert abs(float(zero.mean()) - p) < 4 * math.sqrt(p * (1 - p) / N)


def test_gamma_beta_splitting_per_sample_shape():
    ell = per_sample(2.0, 5.0, 50.0)
    physics = Denoising(noise=Gamma(ell))
    g = torch.Generator().manual_seed(7)
    x = per_sample(0.3, 0.7, 2.0)[:, None].expand(3, N).contiguous()
    y = physics(x, generator=g)
    y1, y2, physics1 = recorrupt(y, physics, ALPHA, generator=g)
    xb = x[:, 0]
    # G(1 - w) ~ Gamma(l(1 - a)) and G w ~ Gamma(l a), independent (beta-gamma algebra)
    check_pair(y1, y2, x, xb**2 / (ell * (1 - ALPHA)), xb**2 / (ell * ALPHA))
    assert isinstance(physics1.noise, Gamma) and torch.allclose(physics1.noise.shape, ell * (1 - ALPHA))
    assert torch.allclose((1 - ALPHA) * y1 + ALPHA * y2, y)
    # the law of y1 is Gamma(l(1 - a)): its third central moment is 2 x^3 / (l(1 - a))^2
    n1 = y1 - x
    moments_ok(n1**3, 2 * xb**3 / (ell * (1 - ALPHA)) ** 2, "third moment of y1")


def test_gamma_small_shape_times_alpha_is_finite():
    physics = Denoising(noise=Gamma(0.5))  # l * a = 0.1: both gamma draws can be tiny
    g = torch.Generator().manual_seed(8)
    y = physics(torch.full((2, 5000), 1.0, dtype=torch.float64), generator=g)
    y1, y2, _ = recorrupt(y, physics, 0.2, generator=g)
    assert bool(torch.isfinite(y1).all()) and bool(torch.isfinite(y2).all())


def test_poisson_needs_integer_counts_and_poisson_gaussian_is_refused():
    def model(y, physics):
        return y
    y = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="integer counts"):
        R2R()(y, Denoising(noise=Poisson(0.1)), model)
    physics = Denoising(noise=PoissonGaussian(0.1, 0.05))
    for call in (lambda: R2R()(y, physics, model), lambda: R2R().test_model(model)(y, physics)):
        with pytest.raises(ValueError, match="Poisson-Gaussian") as err:
            call()
        assert "Gaussian, Poisson, Gamma" in str(err.value)
    with pytest.raises(ValueError, match="noise"):
        R2R()(y, Denoising(), model)
    # coloured noise would need omega ~ N(0, Sigma): not a supported model
    with pytest.raises(ValueError, match="Gaussian, Poisson, Gamma"):
        R2R()(y, Denoising(noise=CorrelatedGaussian(0.1, torch.ones(3, 3) / 3)), model)


# ---------------------------------------------------------------------- the test-time estimator
@pytest.mark.parametrize(
    "noise",
    [Gaussian(per_sample(0.1, 0.3)), Poisson(per_sample(0.05, 0.2)), Gamma(per_sample(3.0, 30.0))],
    ids=["gaussian", "poisson", "gamma"],
)
def test_estimator_averages_fresh_recorruptions(noise):
    # for a linear f, E[f(y1) | y] = f(y) (E[y1 | y] = y for all three laws): the N-sample average
    # converges to f(y), within 4 standard errors of the average of N draws
    physics = Denoising(noise=noise)
    g = torch.Generator().manual_seed(9)
    y = physics(torch.full((2, 1, 4, 4), 0.6, dtype=torch.float64), generator=g)
    calls, outs = [], []

    def f(v, physics1):
        calls.append(physics1)
        out = 0.7 * v + 0.2 * v.roll(1, -1) - 0.1 * v.roll(1, -2)  # a linear map mixing pixels
        outs.append(out)
        return out

    n = 2000
    est = R2R(alpha=ALPHA).test_model(f, n_samples=n)
    out = est(y, physics, generator=torch.Generator().manual_seed(10))
    assert len(calls) == n and isinstance(est, R2REstimator)
    stack = torch.stack(outs)
    assert torch.allclose(out, stack.mean(0))
    se = stack.std(0) / math.sqrt(n)
    target = f(y, physics)
    assert bool(((out - target).abs() < 4 * se).all()), float(((out - target).abs() / se).max())
    # every call saw the physics describing y1, with the per-sample parameters
    assert all(type(p.noise) is type(noise) for p in calls)
    # reproducible from the generator, different with another seed, N=1 is a single call
    est5 = R2R(alpha=ALPHA).test_model(f, n_samples=5)
    again = est5(y, physics, generator=torch.Generator().manual_seed(11))
    same = est5(y, physics, generator=torch.Generator().manual_seed(11))
    other = est5(y, physics, generator=torch.Generator().manual_seed(12))
    assert torch.equal(again, same) and not torch.equal(again, other)
    calls.clear()
    R2R().test_model(f, n_samples=1)(y, physics)
    assert len(calls) == 1


def test_estimator_defaults_and_module_registration():
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    def model(y, physics):
        return net(y)
    loss = R2R()
    assert loss.alpha == 0.15 and loss.n_samples == 5
    est = loss.test_model(model)
    assert est.n_samples == 5 and est.alpha == 0.15
    module = _Wrap(net)
    wrapped = R2R().test_model(module)
    assert any(m is module for m in wrapped.modules())  # a module model is a submodule (state_dict, .to)
    with pytest.raises(ValueError, match="n_samples"):
        loss.test_model(model, n_samples=0)


class _Wrap(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, y, physics):
        return self.net(y)


# ---------------------------------------------------------------------- parametrisations and contract
def test_pang_parametrisation():
    assert pang_to_alpha(0.5) == pytest.approx(0.2)
    assert R2R(alpha_pang=0.5).alpha == pytest.approx(0.2)
    assert math.sqrt(0.15 / 0.85) == pytest.approx(0.42, abs=0.005)
    # the same pair: y_a = y + a_P w, y_b = y - w / a_P
    physics = Denoising(noise=Gaussian(0.3))
    y = physics(torch.zeros(1, 100, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    y1, y2, _ = recorrupt(y, physics, pang_to_alpha(0.5), generator=torch.Generator().manual_seed(1))
    w = (y1 - y) / 0.5
    assert torch.allclose(y2, y - w / 0.5)
    with pytest.raises(ValueError, match="not both"):
        R2R(alpha=0.2, alpha_pang=0.5)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            R2R(alpha=bad)


@pytest.mark.parametrize(
    "noise", [Gaussian(per_sample(0.05, 0.2)), Poisson(per_sample(0.05, 0.2)), Gamma(per_sample(5.0, 20.0))]
)
def test_scalar_gradient_one_evaluation_no_in_place_change(noise):
    physics = Denoising(noise=noise)
    g = torch.Generator().manual_seed(0)
    y = physics(0.2 + 0.6 * torch.rand(2, 1, 8, 8, generator=g), generator=g)
    before = y.clone()
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    calls = []

    def model(v, physics1):
        calls.append(physics1)
        return net(v)

    value = R2R()(y, physics, model, generator=g)
    assert value.ndim == 0 and len(calls) == 1 and calls[0].noise is not physics.noise
    value.backward()
    assert float(net.weight.grad.abs().sum()) > 0
    assert torch.equal(y, before)
    with torch.no_grad():
        R2R().test_model(model)(y, physics)
    assert torch.equal(y, before)


def test_info():
    info = R2R.info
    assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (1, ">1", True, True)
    assert not info.unknown_separable_noise and not info.unknown_coloured_noise
    assert info.noise_models == (Gaussian, Poisson, Gamma) and info.general_operator
