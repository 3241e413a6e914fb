"""Noise2Score: Tweedie's formulas against posterior means computed by quadrature, the Gamma guard and its
confidence bound, training on a Gaussian prior, the annealing counter, the perturbation scale, the backbone the
experiments give it, refusals and no in-place changes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.score import (
    GAMMA_BOUND_P,
    Noise2Score,
    TweedieEstimator,
    gamma_max_bound,
    gamma_quantile,
    noise_scale,
    tweedie,
)
from selfinv.noise import Gamma, Gaussian, Poisson, PoissonGaussian
from selfinv.physics import Denoising, Inpainting

# ---------------------------------------------------------------------- a toy prior on a fine grid (float64)
XS = torch.linspace(0.02, 2.0, 20001, dtype=torch.float64)
DX = float(XS[1] - XS[0])
PRIOR = 0.6 * torch.exp(-((XS - 0.4) ** 2) / (2 * 0.08**2)) + 0.4 * torch.exp(-((XS - 1.1) ** 2) / (2 * 0.15**2))
PRIOR = PRIOR / (PRIOR.sum() * DX)
H = 1e-5  # central differences of the log-marginal: error ~ H^2


def log_lik(kind: str, y: torch.Tensor, p: float) -> torch.Tensor:
    """log p(y | x) on the grid (last axis), up to terms constant in x; for Poisson y may be any real >= 0."""
    yy = y[..., None]
    if kind == "gaussian":
        return -((yy - XS) ** 2) / (2 * p**2)
    if kind == "poisson":  # y = p k, k ~ P(x/p), extended to real k with 1/Gamma(k+1)
        k, lam = yy / p, XS / p
        return k * torch.log(lam) - lam - torch.lgamma(k + 1)
    return -p * torch.log(XS) - p * yy / XS + (p - 1) * torch.log(yy)  # Gamma(shape p), y = x G / p


def log_marginal(kind, y, p):
    return torch.logsumexp(log_lik(kind, y, p) + torch.log(PRIOR * DX), -1)


def posterior_mean(kind, y, p, fn):
    w = torch.softmax(log_lik(kind, y, p) + torch.log(PRIOR), -1)
    return (w * fn(XS)).sum(-1)


def exact_score(kind, p):
    """The score of p_y, by central differences of the log-marginal computed by quadrature."""
    return lambda y, physics=None: (log_marginal(kind, y + H, p) - log_marginal(kind, y - H, p)) / (2 * H)


# ---------------------------------------------------------------------- Tweedie's formulas
def test_gaussian_tweedie_with_a_gaussian_prior_is_the_posterior_mean_per_sample():
    # x ~ N(mu, t^2): y + sigma^2 * score(y) = mu + t^2/(t^2 + sigma^2) (y - mu), per-sample sigma
    mu, t = 0.5, 0.2
    sigma = torch.tensor([0.05, 0.1, 0.4], dtype=torch.float64)
    physics = Denoising(noise=Gaussian(sigma))
    y = torch.linspace(-0.5, 1.5, 30, dtype=torch.float64).expand(3, 1, 30).contiguous()
    s2 = sigma[:, None, None] ** 2
    def score(y, physics):
        return -(y - mu) / (t**2 + s2)
    x_hat = Noise2Score().test_model(score)(y, physics)
    assert torch.allclose(x_hat, mu + t**2 / (t**2 + s2) * (y - mu), atol=1e-12)


def test_gaussian_tweedie_by_quadrature_on_a_mixture_prior():
    sigma = 0.1
    y = torch.linspace(0.0, 1.6, 81, dtype=torch.float64)[None]
    x_hat = tweedie(y, exact_score("gaussian", sigma), Denoising(noise=Gaussian(sigma)))
    truth = posterior_mean("gaussian", y, sigma, lambda x: x)
    assert float((x_hat - truth).abs().max()) < 1e-6


@pytest.mark.parametrize("zeta", [0.05, 0.01])
def test_poisson_tweedie_by_quadrature(zeta):
    physics = Denoising(noise=Poisson(zeta))
    k = torch.arange(0, int(2.0 / zeta), dtype=torch.float64)
    y = (zeta * k)[None]
    score = exact_score("poisson", zeta)
    e_log = posterior_mean("poisson", y, zeta, torch.log)
    e_x = posterior_mean("poisson", y, zeta, lambda x: x)
    # the exact exponential-family identity: E[log x | y] = log zeta + digamma(k + 1) + zeta * score(y)
    identity = math.log(zeta) + torch.digamma(k + 1) + zeta * score(y)
    assert float((identity - e_log).abs().max()) < 1e-6
    # "mean" (default): (y + zeta) exp(zeta score(y + zeta/2)) is Robbins' E[x | y] up to the midpoint rule;
    # weighted by p(y) its relative error is < 0.5% (measured 0.13% at zeta = 0.05, 0.003% at 0.01)
    p_y = torch.exp(log_marginal("poisson", y, zeta))
    p_y = p_y / p_y.sum()
    rel_mean = tweedie(y, score, physics, "mean") / e_x - 1
    assert float((p_y * rel_mean**2).sum().sqrt()) < 5e-3
    # "noise2score": (y + zeta/2) exp(zeta score(y)) is exp(E[log x | y]) with digamma(k+1) ~ log(k + 1/2) ...
    n2s = tweedie(y, score, physics, "noise2score")
    assert torch.allclose(n2s, torch.exp(e_log) * (k + 0.5) / torch.exp(torch.digamma(k + 1)), rtol=1e-6)
    # ... the posterior geometric mean, which sits below the mean (Jensen): a worse estimate of E[x | y]
    assert bool((torch.exp(e_log) <= e_x).all())
    rel_n2s = n2s / e_x - 1
    assert float((p_y * rel_n2s**2).sum()) > float((p_y * rel_mean**2).sum())


@pytest.mark.parametrize("ell", [5.0, 20.0])
def test_gamma_tweedie_by_quadrature(ell):
    physics = Denoising(noise=Gamma(ell))
    y = torch.linspace(0.05, 2.0, 100, dtype=torch.float64)[None]
    x_hat = tweedie(y, exact_score("gamma", ell), physics)
    # exact: l y / ((l - 1) - y score(y)) = 1 / E[1/x | y], the posterior harmonic mean ...
    e_inv = posterior_mean("gamma", y, ell, lambda x: 1 / x)
    assert float((x_hat * e_inv - 1).abs().max()) < 1e-6
    # ... which is below the posterior mean (Jensen)
    assert bool((x_hat <= posterior_mean("gamma", y, ell, lambda x: x) + 1e-12).all())


def test_gamma_quantile_is_the_quantile_of_the_relative_noise_factor():
    ell = torch.tensor([1.0, 3.0, 10.0, 100.0], dtype=torch.float64)
    for p in (1e-3, 0.05, 0.9):
        q = gamma_quantile(ell, p)
        assert torch.allclose(torch.special.gammainc(ell, ell * q), torch.full_like(ell, p), rtol=1e-9)
    # Monte Carlo: P(G/l <= q) = p, within 4 standard errors
    g = torch.Generator().manual_seed(0)
    n, p = 200_000, 0.05
    for shape in (3.0, 10.0):
        draws = Gamma(shape)(torch.ones(n, dtype=torch.float64), generator=g)
        frac = float((draws <= gamma_quantile(shape, p)).double().mean())
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n), (shape, frac)
    assert GAMMA_BOUND_P == 1e-3 and float(gamma_quantile(10.0)) == float(gamma_quantile(10.0, GAMMA_BOUND_P))
    assert float(gamma_quantile(10.0)) == pytest.approx(0.29605, abs=1e-4)  # scipy.stats.gamma(10, scale=0.1).ppf(1e-3)
    with pytest.raises(ValueError, match="p must be"):
        gamma_quantile(10.0, 1.0)


def test_gamma_max_bound_covers_the_brightest_pixel_with_probability_1_minus_p():
    # the worst case of the bound: one bright pixel (x = 1) among dark ones, so that max y is almost always the
    # bright pixel's y: P(max x > B) = P(max y < q) is then close to p (and never above it)
    n, p = 20_000, 0.05
    ell = torch.tensor([3.0, 10.0], dtype=torch.float64).repeat(n // 2)
    x = torch.full((n, 1, 4, 4), 0.05, dtype=torch.float64)
    x[:, 0, 1, 2] = 1.0
    y = Gamma(ell)(x, generator=torch.Generator().manual_seed(1))
    bound = gamma_max_bound(y, ell.reshape(-1, 1, 1, 1), p)
    assert bound.shape == (n, 1, 1, 1)
    miss = (bound.flatten() < 1.0).double()
    se = math.sqrt(p * (1 - p) / (n // 2))
    for k in range(2):  # per shape: close to p, and at most p + 4 SE
        assert abs(float(miss[k::2].mean()) - p) < 4 * se, (k, float(miss[k::2].mean()))
    # scalar shape, float32, all-zero samples: a positive, finite bound
    zero = gamma_max_bound(torch.zeros(2, 1, 3, 3), 10.0)
    assert bool((zero > 0).all()) and bool(torch.isfinite(zero).all())


def test_gamma_tweedie_guard_keeps_the_estimate_in_zero_to_the_bound():
    ell = torch.tensor([5.0, 20.0], dtype=torch.float64)
    physics = Denoising(noise=Gamma(ell))
    g = torch.Generator().manual_seed(0)
    y = physics(0.2 + 0.6 * torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64), generator=g)
    bound = gamma_max_bound(y, ell.reshape(-1, 1, 1, 1))
    # scores at and beyond the valid range s < (l - 1)/y: D = 0 (the old formula divided by eps) and D < 0
    edge = (ell.reshape(-1, 1, 1, 1) - 1) / y
    for s in (edge, edge * (1 - 1e-12), edge + 3.0, 1e6 * torch.ones_like(y)):
        out = tweedie(y, s, physics)
        assert torch.allclose(out, bound.expand_as(y), rtol=1e-9), float((out / bound).max())
    # arbitrary (badly learned) scores: always finite, non-negative and at most the bound
    s = 200 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    out = tweedie(y, s, physics)
    assert bool(torch.isfinite(out).all()) and bool((out >= 0).all()) and bool((out <= bound * (1 + 1e-12)).all())
    # inside the valid range the formula is untouched: s = 0 gives the flat-prior l y / (l - 1)
    flat = tweedie(y, torch.zeros_like(y), physics)
    assert torch.allclose(flat, ell.reshape(-1, 1, 1, 1) * y / (ell.reshape(-1, 1, 1, 1) - 1), rtol=1e-12)
    # float32 with a zero pixel: 0, not nan
    y32 = y.float().clone()
    y32[0, 0, 0, 0] = 0.0
    out = tweedie(y32, torch.zeros_like(y32), Denoising(noise=Gamma(ell.float())))
    assert float(out[0, 0, 0, 0]) == 0.0 and bool(torch.isfinite(out).all())


def test_tweedie_per_sample_poisson_and_gamma_and_no_in_place_change():
    y = torch.tensor([[0.4, 0.8], [0.3, 1.2]], dtype=torch.float64)
    before = y.clone()
    s = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    zeta = torch.tensor([0.1, 0.02], dtype=torch.float64)
    out = tweedie(y, s, Denoising(noise=Poisson(zeta)), "noise2score")
    assert torch.allclose(out, (y + zeta[:, None] / 2) * torch.exp(zeta[:, None] * s))
    mean = tweedie(y, lambda v, physics: -v, Denoising(noise=Poisson(zeta)))
    assert torch.allclose(mean, (y + zeta[:, None]) * torch.exp(-zeta[:, None] * (y + zeta[:, None] / 2)))
    ell = torch.tensor([3.0, 30.0], dtype=torch.float64)
    out = tweedie(y, s, Denoising(noise=Gamma(ell)))
    assert torch.allclose(out, ell[:, None] * y / ((ell[:, None] - 1) - y * s))
    assert torch.equal(y, before)
    with pytest.raises(ValueError, match="callable"):
        tweedie(y, s, Denoising(noise=Poisson(zeta)), "mean")
    with pytest.raises(ValueError, match="poisson_formula"):
        Noise2Score(poisson_formula="robbins")


# ---------------------------------------------------------------------- training
class AffineScore(nn.Module):
    """s(y) = a y + b per pixel: contains the exact score of a Gaussian prior."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, y, physics):
        return self.a * y + self.b


def test_training_recovers_the_posterior_mean_on_a_gaussian_prior():
    # x ~ N(0.5, 0.2^2) per pixel, sigma = 0.1: E[x | y] = 0.5 + 0.8 (y - 0.5), MMSE = 0.008.
    # AR-DAE with the default schedule (delta 0.1 -> 0.001) learns the score of the noise level
    # sigma sqrt(1 + delta^2), a bias of order delta^2; the rest is optimisation noise. Tolerance:
    # the excess error over the posterior mean below 2% of the MMSE (measured 0.001-0.24% over 6 seeds).
    mu, t, sigma, steps = 0.5, 0.2, 0.1, 400
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    physics = Denoising(noise=Gaussian(sigma))
    model, loss = AffineScore(), Noise2Score(total_steps=steps)
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        y = physics(mu + t * torch.randn(32, 1, 16, 16, generator=g), generator=g)
        value = loss(y, physics, model, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
        sched.step()
    assert int(loss.step) == steps and loss.delta == pytest.approx(0.001)
    x = mu + t * torch.randn(256, 1, 16, 16, generator=g)
    y = physics(x, generator=g)
    with torch.no_grad():
        x_hat = loss.test_model(model)(y, physics)
    mmse = t**2 * sigma**2 / (t**2 + sigma**2)
    posterior = mu + t**2 / (t**2 + sigma**2) * (y - mu)
    excess = float(((x_hat - posterior) ** 2).mean())
    assert excess < 0.02 * mmse, excess / mmse
    assert float(((x_hat - x) ** 2).mean()) < 1.05 * mmse


# ---------------------------------------------------------------------- the annealing counter and the perturbation
def test_annealing_counter_advances_only_in_training_mode_and_is_saved():
    physics = Denoising(noise=Gaussian(0.1))
    y = torch.rand(2, 1, 4, 4)
    def model(y, physics):
        return -y
    loss = Noise2Score(delta_max=0.1, delta_min=0.001, total_steps=4)
    assert "step" in loss.state_dict() and loss.delta == 0.1
    for _ in range(3):
        loss(y, physics, model)
    assert int(loss.step) == 3
    loss.eval()
    for _ in range(5):
        loss(y, physics, model)
    assert int(loss.step) == 3
    loss.train()
    for _ in range(3):
        loss(y, physics, model)
    assert int(loss.step) == 6 and loss.delta == pytest.approx(0.001)  # clamped at delta_min after total_steps
    restored = Noise2Score(total_steps=4)
    restored.load_state_dict(loss.state_dict())
    assert int(restored.step) == 6 and restored.delta == pytest.approx(0.001)
    # linear schedule
    mid = Noise2Score(delta_max=0.1, delta_min=0.001, total_steps=4)
    mid.load_state_dict({"step": torch.tensor(2)})
    assert mid.delta == pytest.approx(0.0505)


def test_perturbation_is_relative_to_the_noise_level_per_sample():
    y = torch.full((3, 1, 8, 8), 0.5, dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.1, 0.4], dtype=torch.float64)
    loss = Noise2Score()
    sa = loss.perturbation(y, Denoising(noise=Gaussian(sigma)))
    assert torch.allclose(sa.flatten(), 0.1 * sigma)
    # Poisson: delta sqrt(gain * mean y), but never below half a count (gain / 2)
    gain = torch.tensor([0.5, 0.001, 0.01], dtype=torch.float64)
    sa = loss.perturbation(y, Denoising(noise=Poisson(gain)))
    assert torch.allclose(sa.flatten(), torch.maximum(0.1 * (gain * 0.5).sqrt(), gain / 2))
    assert float(sa[0]) == pytest.approx(0.25) and float(sa[1]) == pytest.approx(0.1 * math.sqrt(0.0005))
    # Gamma: delta sqrt(mean(y^2) / (l + 1)), whose expectation is delta * x / sqrt(l)
    ell = torch.tensor([4.0, 9.0, 99.0], dtype=torch.float64)
    assert torch.allclose(noise_scale(Gamma(ell), y).flatten(), (0.25 / (ell + 1)).sqrt())


def test_the_network_sees_a_perturbed_input_with_the_annealed_scale():
    sigma = 0.2
    physics = Denoising(noise=Gaussian(sigma))
    y = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    seen = []
    loss = Noise2Score(delta_max=0.5, delta_min=0.5)
    loss(y, physics, lambda v, physics: seen.append(v) or torch.zeros_like(v), generator=torch.Generator().manual_seed(0))
    # the input is y + sigma_a u with sigma_a = 0.5 * 0.2 = 0.1, and the loss value is mean(u^2) for s = 0
    assert float(seen[0].std()) == pytest.approx(0.1, rel=0.05)


# ---------------------------------------------------------------------- contract
@pytest.mark.parametrize("noise", [Gaussian(torch.tensor([0.05, 0.2])), Poisson(torch.tensor([0.05, 0.2])), Gamma(5.0)])
def test_scalar_gradient_one_evaluation_no_in_place_change(noise):
    physics = Denoising(noise=noise)
    g = torch.Generator().manual_seed(0)
    y = physics(0.2 + 0.6 * torch.rand(2, 1, 8, 8, generator=g), generator=g)
    before = y.clone()
    net = nn.Conv2d(1, 1, 3, padding=1)
    calls = []

    def model(v, physics):
        calls.append(1)
        return net(v)

    value = Noise2Score()(y, physics, model, generator=g)
    assert value.ndim == 0 and len(calls) == 1
    value.backward()
    assert float(net.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        est = Noise2Score().test_model(model)
        out = est(y, physics)
    assert isinstance(est, TweedieEstimator) and out.shape == y.shape and len(calls) == 2
    assert torch.equal(y, before)


def test_refuses_other_physics_and_noise():
    y = torch.rand(1, 1, 4, 4)
    def model(y, physics):
        return y
    inpainting = Inpainting(torch.ones(1, 1, 4, 4), noise=Gaussian(0.1))
    with pytest.raises(ValueError, match="denoising"):
        Noise2Score()(y, inpainting, model)
    with pytest.raises(ValueError, match="denoising"):
        Noise2Score().test_model(model)(y, inpainting)
    for physics in (Denoising(noise=PoissonGaussian(0.1, 0.1)), Denoising()):
        with pytest.raises(ValueError, match="Gaussian, Poisson, Gamma"):
            Noise2Score()(y, physics, model)
        with pytest.raises(ValueError, match="Gaussian, Poisson, Gamma"):
            Noise2Score().test_model(model)(y, physics)
    for kwargs in ({"delta_max": 0.0}, {"delta_min": 0.2, "delta_max": 0.1}, {"total_steps": 0}):
        with pytest.raises(ValueError):
            Noise2Score(**kwargs)


def test_info_and_mmse_optimality_per_noise_model():
    info = Noise2Score.info
    # one flag for the class, and Gamma (harmonic mean) and Poisson "noise2score" (geometric mean) are not MMSE
    assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (1, 1, True, False)
    assert Noise2Score().mmse_optimal_for(Gaussian(0.1))  # exact (quadrature test above)
    assert Noise2Score().mmse_optimal_for(Poisson(0.1))  # Robbins' mean, up to the midpoint rule
    assert not Noise2Score(poisson_formula="noise2score").mmse_optimal_for(Poisson(0.1))
    assert not Noise2Score().mmse_optimal_for(Gamma(10.0))
    with pytest.raises(ValueError, match="Gaussian, Poisson, Gamma"):
        Noise2Score().mmse_optimal_for(PoissonGaussian(0.1, 0.1))
    assert not info.unknown_separable_noise and not info.unknown_coloured_noise
    assert info.noise_models == (Gaussian, Poisson, Gamma) and not info.general_operator


# ---------------------------------------------------------------------- the network the experiments give it
def test_experiments_give_noise2score_a_network_without_a_skip_connection_from_the_input():
    """The network's output is the score, of size ~(x - y)/sigma^2, not an image: a residual network y - net(y)
    would have to learn net(y) = y - s(y). The experiments' backbone must not add y to its output."""
    from selfinv.config import LOSS_BACKBONES
    from selfinv.models import BACKBONES

    spec = dict(LOSS_BACKBONES["noise2score"])
    torch.manual_seed(0)
    net = BACKBONES[spec.pop("name")](1, 1, **spec).eval()
    assert net.residual is False
    for p in net.parameters():  # a network whose every weight is zero outputs 0, not y
        nn.init.zeros_(p)
    y = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert float(net(y).abs().max()) == 0.0
