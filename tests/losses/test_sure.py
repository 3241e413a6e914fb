"""SURE, PURE and PG-URE: unbiasedness against closed forms and Monte-Carlo risks, within standard errors.

Every statistical check compares a Monte-Carlo mean over B independent noise draws (one batch) with
its expected value and passes when they agree within 4 standard errors (estimated from the same
draws). Where a test is meant to catch a wrong sign or constant, it also asserts that the term in
question is many standard errors large, so that the mistake could not hide inside the tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv import _random
from selfinv.losses.divergence import divergence, second_divergence
from selfinv.losses.supervised import Supervised
from selfinv.losses.sure import SURE
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, Poisson, PoissonGaussian
from selfinv.physics import MRI, Denoising, Inpainting, Matrix
from tests.helpers import gen

METHODS = ("mc", "hutchinson", "exact")
F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def mean_and_se(v: torch.Tensor) -> tuple[float, float]:
    v = v.detach()
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


def assert_close_in_se(values: torch.Tensor, expected: float, k: float = 4.0) -> float:
    mean, se = mean_and_se(values)
    assert abs(mean - expected) < k * se, (
        f"mean {mean:.6g} vs expected {expected:.6g}: {abs(mean - expected) / se:.2f} SE"
    )
    return se


def linear(W: torch.Tensor, c: torch.Tensor | float = 0.0):
    """f(y) = W y + c on flattened samples (shape kept when W is square)."""

    def model(y, physics):
        out = y.reshape(y.shape[0], -1) @ W.T + c
        return out.reshape(y.shape) if W.shape[0] == W.shape[1] else out

    return model


class Counting:
    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, y, physics):
        self.calls += 1
        return self.f(y, physics)


def random_W(n: int, seed: int, dtype=F64) -> torch.Tensor:
    g = gen(seed)
    return 0.3 * torch.eye(n, dtype=dtype) + 0.5 * torch.randn(n, n, generator=g, dtype=dtype) / math.sqrt(n)


# ----------------------------------------------------------------------------------------- Gaussian SURE
N_DRAWS = 20_000
n = 16
X = 0.5 + torch.rand(n, generator=gen(0), dtype=F64)
W = random_W(n, 1)
SIGMA = 0.3


def gaussian_risk(W: torch.Tensor, x: torch.Tensor, sigma: float) -> float:
    """(1/n) E‖Wy − x‖² = (1/n)[‖(I − W)x‖² + σ² tr(WᵀW)] (anchors §6.1)."""
    eye = torch.eye(len(x), dtype=x.dtype)
    return float(((eye - W) @ x).pow(2).sum() + sigma**2 * (W.T @ W).trace()) / len(x)


@pytest.mark.parametrize("method", METHODS)
def test_gaussian_sure_is_unbiased_for_a_linear_denoiser(method):
    physics = Denoising(noise=Gaussian(SIGMA))
    y = physics(X.expand(N_DRAWS, n), generator=gen(2))
    sure = SURE(divergence=method).per_sample(y, physics, linear(W), generator=gen(3))
    se = assert_close_in_se(sure, gaussian_risk(W, X, SIGMA))
    # the Monte-Carlo risk of the same draws agrees too (the closed form is right)
    assert_close_in_se(((y @ W.T - X) ** 2).mean(1), gaussian_risk(W, X, SIGMA))
    # the divergence term 2σ² tr(W)/n is far outside the tolerance: dropping or mis-scaling it fails
    assert 2 * SIGMA**2 * float(W.trace()) / n > 10 * se
    # and the loss is the batch mean, comparable to Supervised
    loss = SURE(divergence=method)(y, physics, linear(W), generator=gen(3))
    assert torch.allclose(loss, sure.mean())


def test_identity_model_gives_the_noise_variance():
    physics = Denoising(noise=Gaussian(SIGMA))
    y = physics(X.expand(N_DRAWS, n), generator=gen(4))
    identity = lambda y, physics: y  # noqa: E731
    exact = SURE(divergence="exact").per_sample(y, physics, identity)
    assert torch.allclose(exact, torch.full_like(exact, SIGMA**2), atol=1e-12)  # ‖y−y‖² − nσ² + 2σ²n = nσ²
    assert_close_in_se(SURE().per_sample(y, physics, identity, generator=gen(5)), SIGMA**2)


def test_per_sample_sigma_is_honoured():
    levels = torch.tensor([0.1, 0.5, 1.0], dtype=F64)
    sigma = levels.repeat(8000)  # sample b has σ = levels[b % 3]
    physics = Denoising(noise=Gaussian(sigma))
    y = physics(X.expand(len(sigma), n), generator=gen(6))
    sure = SURE().per_sample(y, physics, linear(W), generator=gen(7))
    expected = [gaussian_risk(W, X, float(s)) for s in levels]
    for i in range(3):
        se = assert_close_in_se(sure[i::3], expected[i])
    assert expected[2] - expected[0] > 20 * se  # three clearly different risks


def test_matrix_operator_measurement_domain_risk():
    m = 12
    A = torch.randn(m, n, generator=gen(8), dtype=F64) / 4
    V = 0.2 * torch.randn(n, m, generator=gen(9), dtype=F64)
    physics = Matrix(A, noise=Gaussian(SIGMA))
    y = physics(X.expand(N_DRAWS, n), generator=gen(10))
    AV = A @ V
    # (1/m) E‖A V y − A x‖² = (1/m)[‖(AV − I) A x‖² + σ² ‖AV‖²_F]
    risk = float(((AV - torch.eye(m, dtype=F64)) @ A @ X).pow(2).sum() + SIGMA**2 * AV.pow(2).sum()) / m
    for method in METHODS:
        assert_close_in_se(SURE(divergence=method).per_sample(y, physics, linear(V), generator=gen(11)), risk)


def test_inpainting_counts_only_measured_entries():
    mask = (torch.rand(1, 1, 4, 4, generator=gen(12)) > 0.4).to(F64)
    measured = int(mask.sum())
    assert 0 < measured < 16
    physics = Inpainting(mask, noise=Gaussian(SIGMA))
    x = X.reshape(1, 1, 4, 4)
    y = physics(x.expand(N_DRAWS, 1, 4, 4), generator=gen(13))
    mv = mask.flatten()
    MWM = mv[:, None] * W * mv[None, :]
    # y = M x + M ε, h = M W y: (1/m) E‖h − Mx‖² with m = 16 entries (zero-filled ones included)
    risk = float((mv * (W @ (mv * X) - X)).pow(2).sum() + SIGMA**2 * MWM.pow(2).sum()) / 16
    sure = SURE().per_sample(y, physics, linear(W), generator=gen(14))
    se = assert_close_in_se(sure, risk)
    assert (16 - measured) * SIGMA**2 / 16 > 10 * se  # counting σ² on unmeasured entries would fail


@pytest.mark.parametrize("method", METHODS)
def test_complex_data_count_real_degrees_of_freedom(method):
    nc = 8
    Wc = torch.randn(nc, nc, generator=gen(15), dtype=torch.complex128) / math.sqrt(nc) + 0.3 * torch.eye(nc)
    x = torch.randn(nc, generator=gen(16), dtype=torch.complex128)
    physics = Denoising(noise=Gaussian(SIGMA))  # σ on the real and on the imaginary part
    y = physics(x.expand(N_DRAWS, nc), generator=gen(17))
    # per real degree of freedom: (1/2n)[‖(I − W)x‖² + 2σ²‖W‖²_F]; SURE's divergence is 2 Re tr W
    eye = torch.eye(nc, dtype=torch.complex128)
    risk = float(((eye - Wc) @ x).abs().pow(2).sum() + 2 * SIGMA**2 * Wc.abs().pow(2).sum()) / (2 * nc)
    sure = SURE(divergence=method).per_sample(y, physics, linear(Wc), generator=gen(18))
    assert_close_in_se(sure, risk)


def test_mri_kspace_sure():
    mask = torch.zeros(8, 8, dtype=F64)
    mask[:, [0, 2, 3, 4, 6]] = 1
    physics = MRI(mask, noise=Gaussian(SIGMA))
    x = torch.randn(1, 1, 8, 8, generator=gen(19), dtype=torch.complex128)
    y = physics(x.expand(4000, 1, 8, 8), generator=gen(20))
    alpha = 0.7
    model = lambda y, physics: alpha * physics.A_adjoint(y)  # noqa: E731  (so h(y) = α y)
    ax2 = float(physics.A(x).abs().pow(2).sum())
    risk = ((alpha - 1) ** 2 * ax2 + alpha**2 * 2 * SIGMA**2 * float(mask.sum())) / (2 * 64)
    for method in ("mc", "hutchinson"):
        assert_close_in_se(SURE(divergence=method).per_sample(y, physics, model, generator=gen(21)), risk)


# ----------------------------------------------------------------------------------------- divergences
def test_mc_divergence_of_a_linear_map_mean_and_variance():
    """bᵀ(W(y + τb) − Wy)/τ = bᵀWb: mean tr W and variance 2‖sym W‖²_F for any τ (anchors §6.2)."""
    N = 40_000
    y = torch.randn(N, n, generator=gen(22), dtype=F64)
    h = lambda v: v @ W.T  # noqa: E731
    sym = (W + W.T) / 2
    for kw in ({"tau_rel": 1e-3}, {"tau": 10.0}, {"tau": 1e-6}):
        d = divergence(h, y, "mc", generator=gen(23), **kw)
        assert_close_in_se(d, float(W.trace()))
        var = float(d.var())
        m4 = float(((d - d.mean()) ** 4).mean())
        se_var = math.sqrt((m4 - var**2) / N)
        assert abs(var - 2 * float(sym.pow(2).sum())) < 4 * se_var


def test_mc_divergence_error_shrinks_with_tau():
    V = torch.randn(n, n, generator=gen(24), dtype=F64) / math.sqrt(n)
    h = lambda v: torch.tanh(v @ V.T) + 0.2 * v**2  # noqa: E731
    y = torch.randn(64, n, generator=gen(25), dtype=F64)
    directional = divergence(h, y, "hutchinson", generator=gen(26)).detach()  # bᵀJb for the same probes b
    errors = [
        float((divergence(h, y, "mc", tau=t, generator=gen(26)) - directional).abs().mean())
        for t in (1e-1, 1e-2, 1e-3, 1e-4)
    ]
    for big, small in zip(errors, errors[1:], strict=False):
        assert small < 0.2 * big, errors  # O(τ): one decade of τ, about one decade of error
    exact = divergence(h, y[:8], "exact").detach()
    mean_mc = divergence(h, y[:8].repeat(5000, 1), "mc", generator=gen(27)).reshape(5000, 8).mean(0)
    assert float((mean_mc - exact).abs().max()) < 0.1 * float(exact.abs().max())


def test_automatic_tau_makes_mc_divergence_scale_invariant():
    V1 = torch.randn(32, n, generator=gen(28), dtype=F64)
    V2 = torch.randn(n, 32, generator=gen(29), dtype=F64) / 32
    h = lambda v: torch.relu(v @ V1.T) @ V2.T + 0.5 * v  # noqa: E731  h(s y) = s h(y) for s > 0
    y = torch.rand(16, n, generator=gen(30), dtype=F64)
    unit = divergence(h, y, "mc", generator=gen(31))
    scaled = divergence(h, 255 * y, "mc", generator=gen(31))
    assert torch.allclose(unit, scaled, rtol=1e-8, atol=1e-10)
    # with one absolute step the [0, 255] data get a 255× smaller relative step: a different estimate
    assert not torch.allclose(
        divergence(h, y, "mc", tau=0.5, generator=gen(31)), divergence(h, 255 * y, "mc", tau=0.5, generator=gen(31))
    )


def test_hutchinson_is_unbiased_and_differentiable():
    y = torch.randn(N_DRAWS, n, generator=gen(32), dtype=F64)
    assert_close_in_se(divergence(lambda v: v @ W.T, y, "hutchinson", generator=gen(33)), float(W.trace()))
    layer = nn.Linear(n, n, bias=False).to(F64)
    y = torch.randn(5, n, generator=gen(34), dtype=F64)
    d = divergence(layer, y, "hutchinson", generator=gen(35))
    d.sum().backward()
    b = _random.randn((5, n), generator=gen(35), dtype=F64, device=y.device)
    # ∂(bᵀWb)/∂W = b bᵀ, summed over the batch (the training gradient is that of bᵀW(y + τb − y)/τ = bᵀWb,
    # up to rounding: see test_divergence_nonsmooth.py)
    assert torch.allclose(layer.weight.grad, b.T @ b)


def test_more_probes_reduce_the_variance():
    y = torch.randn(8000, n, generator=gen(36), dtype=F64)
    h = lambda v: v @ W.T  # noqa: E731
    one = divergence(h, y, "mc", generator=gen(37))
    four = divergence(h, y, "mc", n_probes=4, generator=gen(37))
    assert_close_in_se(four, float(W.trace()))
    assert float(four.var()) < 0.35 * float(one.var())


def test_network_evaluations_per_method():
    physics = Denoising(noise=Gaussian(0.1))
    y = physics(torch.rand(4, n, generator=gen(38), dtype=F64), generator=gen(39))
    for method, calls in (("mc", 2), ("hutchinson", 1), ("exact", 1)):
        model = Counting(linear(W))
        SURE(divergence=method)(y, physics, model, generator=gen(40))
        assert model.calls == calls, method
    # shared f(y): SURE (autograd divergence) first in a sum, then Supervised reuses its evaluation
    model = Counting(linear(W))
    (SURE(divergence="hutchinson") + Supervised())(y, physics, model, x=y, generator=gen(41))
    assert model.calls == 1
    # PG-URE with its second-order term: f(y), f(y + τb), f(y − τb)
    pg = Denoising(noise=PoissonGaussian(0.1, 0.1))
    y = pg(torch.rand(4, n, generator=gen(42), dtype=F64) + 0.5, generator=gen(43))
    for second_order, calls in ((True, 3), (False, 2)):
        model, loss = Counting(linear(W)), SURE(second_order=second_order)
        loss(y, pg, model, generator=gen(44))
        assert model.calls == calls == loss.train_evals_for(pg)  # what compare and loss_speed report


def test_hutchinson_sure_gives_model_gradients_and_works_without_grad():
    layer = nn.Linear(n, n).to(F64)
    physics = Denoising(noise=Gaussian(0.2))
    y = physics(torch.rand(8, n, generator=gen(45), dtype=F64), generator=gen(46))
    model = lambda y, physics: layer(y)  # noqa: E731
    SURE(divergence="hutchinson")(y, physics, model, generator=gen(47)).backward()
    assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0
    assert not y.requires_grad  # the caller's tensor is untouched
    with torch.no_grad():  # a validation pass
        value = SURE(divergence="hutchinson")(y, physics, model, generator=gen(47))
    assert not value.requires_grad
    again = SURE(divergence="hutchinson")(y, physics, model, generator=gen(47))
    assert torch.allclose(value, again.detach())


def test_seeded_generator_reproduces_the_loss():
    physics = Denoising(noise=Gaussian(0.2))
    y = physics(torch.rand(8, n, generator=gen(48), dtype=F64), generator=gen(49))
    a = SURE()(y, physics, linear(W), generator=gen(50))
    b = SURE()(y, physics, linear(W), generator=gen(50))
    c = SURE()(y, physics, linear(W), generator=gen(51))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------------------- Poisson / PG
def affine_risk(W, c, x, var):
    """(1/n) E‖W y + c − x‖² for y with mean x and independent entries of variance var."""
    return float(((W - torch.eye(len(x), dtype=x.dtype)) @ x + c).pow(2).sum() + (var * W.pow(2).sum(0)).sum()) / len(x)


@pytest.mark.parametrize("method", METHODS)
def test_pure_is_unbiased_for_an_affine_denoiser(method):
    """PURE's first-order Taylor step is exact for h affine in each y_i, so PURE is exactly unbiased here."""
    gains = torch.tensor([0.05, 0.3], dtype=F64)
    physics = Denoising(noise=Poisson(gains.repeat(N_DRAWS // 2)))
    y = physics(X.expand(N_DRAWS, n), generator=gen(52))
    c = 0.1
    sure = SURE(divergence=method).per_sample(y, physics, linear(W, c), generator=gen(53))
    for i, g in enumerate(gains.tolist()):
        se = assert_close_in_se(sure[i::2], affine_risk(W, c, X, g * X))
        # the weighted divergence 2γ Σ x_i W_ii / n and the offset γ x̄ are each many SE large
        assert 2 * g * float((X * W.diagonal()).sum()) / n > 8 * se
        assert g * float(X.mean()) > 8 * se


@pytest.mark.parametrize("method", METHODS)
def test_pgure_is_unbiased_for_an_affine_denoiser(method):
    gain, sigmas = 0.2, torch.tensor([0.3, 0.5], dtype=F64)  # per-sample σ: sample b has sigmas[b % 2]
    physics = Denoising(noise=PoissonGaussian(gain, sigmas.repeat(N_DRAWS // 2)))
    y = physics(X.expand(N_DRAWS, n), generator=gen(54))
    sure = SURE(divergence=method).per_sample(y, physics, linear(W, 0.1), generator=gen(55))
    for i, sigma in enumerate(sigmas.tolist()):
        se = assert_close_in_se(sure[i::2], affine_risk(W, 0.1, X, gain * X + sigma**2))
        assert 2 * sigma**2 * float(W.trace()) / n > 8 * se and sigma**2 > 8 * se


def test_hudson_identity_behind_pure():
    """E[x_i h_i(y)] = E[y_i h_i(y − γ e_i)] for y = γ P(x/γ), any h (the exact identity PURE approximates)."""
    gain, N = 0.25, 20_000
    V = torch.randn(n, n, generator=gen(56), dtype=F64) / math.sqrt(n)
    h = lambda v: torch.tanh(v @ V.T + 0.3) + 0.1 * v**2  # noqa: E731
    y = Denoising(noise=Poisson(gain))(X.expand(N, n), generator=gen(57))
    lhs = (X * h(y)).sum(1)
    rhs = torch.zeros(N, dtype=F64)
    for i in range(n):
        shifted = y.clone()
        shifted[:, i] -= gain
        rhs += y[:, i] * h(shifted)[:, i]
    se = assert_close_in_se(lhs - rhs, 0.0)
    assert abs(float((lhs - (y * h(y)).sum(1)).mean())) > 10 * se  # the naive E[yᵀh(y)] is not it


GAIN_Q, SIGMA_Q, C_Q = 0.3, 0.3, 0.5


def quadratic():
    """h_i = a y_i + c y_i² + (V y)_i: ∂²h_i/∂y_i² = 2c, so every Taylor remainder is known exactly."""
    V = 0.1 * torch.randn(n, n, generator=gen(58), dtype=F64) / math.sqrt(n)
    return lambda y, physics: 0.6 * y + C_Q * y**2 + y @ V.T


@pytest.mark.parametrize("method", ["mc", "exact"])
def test_pure_taylor_bias_is_the_predicted_one(method):
    """For h_i = a y_i + c y_i² + ..., E[PURE] − risk = 2cγ² x̄ exactly (the neglected Hudson remainder)."""
    physics = Denoising(noise=Poisson(GAIN_Q))
    y = physics(X.expand(N_DRAWS, n), generator=gen(59))
    model = quadratic()
    diff = SURE(divergence=method).per_sample(y, physics, model, generator=gen(60)) - ((model(y, None) - X) ** 2).mean(
        1
    )
    se = assert_close_in_se(diff, 2 * C_Q * GAIN_Q**2 * float(X.mean()))
    assert 2 * C_Q * GAIN_Q**2 * float(X.mean()) > 8 * se  # the bias is really there, and resolved


@pytest.mark.parametrize("method", ["mc", "exact"])
def test_pgure_second_order_term_has_a_minus_sign(method):
    """E[PGURE] − risk = 2cγ²x̄ with the term −2γσ²Σ∂²h_i, and 2cγ²x̄ + 4γσ²c without it."""
    physics = Denoising(noise=PoissonGaussian(GAIN_Q, SIGMA_Q))
    y = physics(X.expand(N_DRAWS, n), generator=gen(61))
    model = quadratic()
    risk = ((model(y, None) - X) ** 2).mean(1)
    taylor = 2 * C_Q * GAIN_Q**2 * float(X.mean())
    second = 4 * GAIN_Q * SIGMA_Q**2 * C_Q
    with_term = SURE(divergence=method).per_sample(y, physics, model, generator=gen(62)) - risk
    se = assert_close_in_se(with_term, taylor)
    assert second > 8 * se  # a flipped sign (bias taylor − second) or a dropped term would fail
    without = SURE(divergence=method, second_order=False).per_sample(y, physics, model, generator=gen(62)) - risk
    assert_close_in_se(without, taylor + second)


def test_second_divergence_estimators_agree():
    V = torch.randn(n, n, generator=gen(63), dtype=F64) / math.sqrt(n)
    h = lambda v: torch.tanh(v @ V.T) + 0.3 * v**2 - 0.1 * v**3  # noqa: E731
    y = torch.randn(4, n, generator=gen(64), dtype=F64)
    d1, d2 = second_divergence(h, y, "exact")
    reps = 4000
    for method in ("mc", "hutchinson"):
        e1, e2 = second_divergence(h, y.repeat(reps, 1), method, generator=gen(65))
        e1, e2 = e1.detach().reshape(reps, 4), e2.detach().reshape(reps, 4)
        for est, ref in ((e1, d1), (e2, d2)):
            se = est.std(0) / math.sqrt(reps)
            bias_allowance = 0.02 * ref.abs() if method == "mc" else 0  # O(τ²) finite differences
            assert torch.all((est.mean(0) - ref.detach()).abs() < 4 * se + bias_allowance), (method, est.mean(0), ref)


# ----------------------------------------------------------------------------------------- Tweedie
def test_sure_minimiser_is_the_oracle_shrinkage():
    """min_{a,b} SURE(a y + b) on x ~ N(μ, t²): â = 1 − σ²/s²_y exactly, → t²/(t² + σ²) (anchors §6.8)."""
    mu, t, sigma, B, d = 1.0, 0.5, 0.4, 50_000, 4
    g = gen(66)
    x = mu + t * torch.randn(B, d, generator=g, dtype=F64)
    physics = Denoising(noise=Gaussian(sigma))
    y = physics(x, generator=g)
    a = nn.Parameter(torch.tensor(1.0, dtype=F64))
    b = nn.Parameter(torch.tensor(0.0, dtype=F64))
    model = lambda y, physics: a * y + b  # noqa: E731
    opt = torch.optim.LBFGS(
        [a, b], lr=1, max_iter=50, line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15
    )
    loss = SURE(divergence="exact")

    def closure():
        opt.zero_grad()
        value = loss(y, physics, model)
        value.backward()
        return value

    opt.step(closure)
    s2 = float(y.var(unbiased=False))
    a, b = float(a.detach()), float(b.detach())
    assert abs(a - (1 - sigma**2 / s2)) < 1e-6  # the sample-level minimiser, exactly
    assert abs(b - sigma**2 / s2 * float(y.mean())) < 1e-6
    oracle = t**2 / (t**2 + sigma**2)
    v = t**2 + sigma**2
    se_a = sigma**2 / v * math.sqrt(2 / (B * d))  # delta method on s²_y
    assert abs(a - oracle) < 4 * se_a
    se_b = math.sqrt((mu * se_a) ** 2 + (1 - oracle) ** 2 * v / (B * d))
    assert abs(b - (1 - oracle) * mu) < 4 * se_b


def test_sure_minimiser_over_matrices_is_the_plug_in_wiener_filter():
    d, B, sigma = 4, 20_000, 0.5
    g = gen(67)
    L = torch.randn(d, d, generator=g, dtype=F64) / 2
    x = torch.randn(B, d, generator=g, dtype=F64) @ L.T
    physics = Denoising(noise=Gaussian(sigma))
    y = physics(x, generator=g)
    Wp = nn.Parameter(torch.zeros(d, d, dtype=F64))
    bp = nn.Parameter(torch.zeros(d, dtype=F64))
    model = lambda y, physics: y @ Wp.T + bp  # noqa: E731
    opt = torch.optim.LBFGS(
        [Wp, bp], lr=1, max_iter=100, line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15
    )
    loss = SURE(divergence="exact")

    def closure():
        opt.zero_grad()
        value = loss(y, physics, model)
        value.backward()
        return value

    opt.step(closure)
    S = torch.cov(y.T, correction=0)
    assert torch.allclose(Wp.detach(), torch.eye(d, dtype=F64) - sigma**2 * torch.linalg.inv(S), atol=1e-6)


# ----------------------------------------------------------------------------------------- errors
def test_unsupported_noise_is_a_clear_error():
    y = torch.rand(2, 4)
    for physics in (
        Denoising(noise=Gamma(2.0)),
        Denoising(),
        Denoising(noise=CorrelatedGaussian(0.1, torch.ones(1, 2))),
    ):
        with pytest.raises(ValueError, match="SURE: needs physics.noise"):
            SURE()(y, physics, lambda y, physics: y)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"divergence": "jacobian"},
        {"tau_rel": 0.0},
        {"tau_rel": -1e-3},
        {"tau2_rel": 0},
        {"n_probes": 0},
        {"n_probes": 1.5},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        SURE(**kwargs)


def test_divergence_rejects_unknown_method_and_bad_tau():
    y = torch.rand(2, 3)
    with pytest.raises(ValueError, match="unknown divergence method"):
        divergence(lambda v: v, y, "finite")
    with pytest.raises(ValueError, match="tau"):
        divergence(lambda v: v, y, "mc", tau=-1.0)
