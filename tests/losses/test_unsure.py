"""UNSURE: the learned multipliers reach the saddle points the theory predicts, with the DEFAULT arguments.

The convergence tests train a linear model f(y) = W y + c jointly with the multipliers on a Gaussian (or
bounded) prior supported on a k-dimensional subspace, for which the saddle point is known in closed
form: the inner minimiser is W = I − Σ_η C⁻¹ (C the covariance of y, Σ_η the penalty's matrix), and the
multipliers are fixed by the constraints on W. The subspaces are spanned by low-frequency cosines (smooth
signals, like natural images: the data-driven start, a robust noise estimate, is meaningful on them).
Tolerances are a few percent of the target (the multiplier keeps fluctuating with the Monte-Carlo
divergence; we average the last 20 % of the steps). The update rules are checked exactly with the
exact divergence.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses import MC, SURE
from selfinv.losses.unsure import (
    MAX_LOG_STEP,
    UNSURE,
    UNSURECovariance,
    UNSUREPoissonGaussian,
    autocorrelation,
    kernel_for,
)
from selfinv.noise import (
    Gamma,
    Gaussian,
    PoissonGaussian,
    estimate_covariance,
    estimate_sigma_pca,
    fit_poisson_gaussian,
)
from selfinv.physics import Denoising, Inpainting
from tests.helpers import gen
from tests.losses.unsure_support import cosines, noisy, scale, train

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")



# ----------------------------------------------------------------------------------------- the ZED value
N, K, S, SIGMA = 16, 4, 1.0, 0.1


def zed_value(U: torch.Tensor, sigma: float) -> float:
    C = S**2 * U @ U.T + sigma**2 * torch.eye(U.shape[0], dtype=F64)
    return U.shape[0] / float(torch.linalg.inv(C).trace())


def test_zed_value_two_formulas_agree():
    """η̂ = n / tr(C⁻¹) = σ²/(1 − MMSE/σ²) > σ² for a Gaussian prior on a k-dimensional subspace."""
    U = cosines(N, K)
    C = S**2 * U @ U.T + SIGMA**2 * torch.eye(N, dtype=F64)
    eta_hat = zed_value(U, SIGMA)
    Cx = S**2 * U @ U.T
    mmse = float((Cx - Cx @ torch.linalg.inv(C) @ Cx).trace()) / N  # (1/n) tr Cov(x | y)
    assert abs(mmse - K / N * S**2 * SIGMA**2 / (S**2 + SIGMA**2)) < 1e-12
    assert abs(eta_hat - SIGMA**2 / (1 - mmse / SIGMA**2)) < 1e-12
    assert eta_hat > SIGMA**2
    # the expected error of the ZED solution, σ² MMSE/(σ² − MMSE), is above the MMSE
    W = torch.eye(N, dtype=F64) - eta_hat * torch.linalg.inv(C)
    err = float(((W - torch.eye(N, dtype=F64)) @ Cx @ (W - torch.eye(N, dtype=F64)).T + SIGMA**2 * W @ W.T).trace()) / N
    assert abs(err - SIGMA**2 * mmse / (SIGMA**2 - mmse)) < 1e-12 and err > mmse


def test_multiplier_converges_to_the_zed_value():
    U = cosines(N, K)
    eta_hat = zed_value(U, SIGMA)
    torch.manual_seed(0)
    layer = nn.Linear(N, N)
    loss = UNSURE()  # the defaults: η0 from the data, relative step, no momentum, MC divergence
    Uf = U.float()
    eta = train(loss, Denoising(noise=Gaussian(SIGMA)), lambda g: S * torch.randn(512, K, generator=g) @ Uf.T,
                lambda y, p: layer(y), layer.parameters(), 2000)
    assert abs(float(eta) / eta_hat - 1) < 0.03, (float(eta), eta_hat)
    assert eta_hat / SIGMA**2 - 1 > 0.3  # far from σ² (33 %): the test tells the two apart
    assert abs(float(loss.sigma) - math.sqrt(float(loss.eta))) < 1e-15


def test_from_an_identity_network_the_defaults_start_at_the_noise_level_and_do_not_overshoot():
    """A residual network starts near the identity (divergence 1 per entry), which pushes η up until the
    network learns to denoise. The defaults start η at the robust noise estimate of the first batch (not at
    a fixed 0.01: here σ = 0.2) and the ascent stays below 1.25 η̂ while the network catches up."""
    sigma = 0.2
    U = cosines(N, K)
    eta_hat = zed_value(U, sigma)
    layer = nn.Linear(N, N)
    nn.init.eye_(layer.weight)
    nn.init.zeros_(layer.bias)
    loss = UNSURE()
    Uf = U.float()
    trajectory = []
    eta = train(loss, Denoising(noise=Gaussian(sigma)), lambda g: S * torch.randn(256, K, generator=g) @ Uf.T,
                lambda y, p: layer(y), layer.parameters(), 1200, every=lambda l: trajectory.append(float(l.eta)))
    # the data-driven start (16 samples of a smooth signal leave a little signal in the finest differences)
    assert abs(trajectory[0] / sigma**2 - 1) < 0.35, trajectory[0]
    assert max(trajectory) < 1.25 * eta_hat, (max(trajectory), eta_hat)
    assert abs(float(eta) / eta_hat - 1) < 0.03, (float(eta), eta_hat)


# ----------------------------------------------------------------------------------------- start, updates, state


def image_batch(sigma: float, seed: int = 0, b: int = 32) -> tuple[torch.Tensor, Denoising]:
    """Flat images plus noise: the noise estimate is σ up to its standard error (≈ 1.2σ/√(b·256) per batch)."""
    physics = Denoising(noise=Gaussian(sigma))
    return physics(torch.full((b, 1, 32, 32), 0.5, dtype=F64), generator=gen(seed)), physics




def test_the_default_start_is_the_noise_estimate_of_the_first_training_batch():
    y, physics = image_batch(0.2)
    estimate = float((estimate_sigma_pca(y) ** 2).mean())  # the patch-PCA level (images of 32x32)
    assert abs(estimate / 0.04 - 1) < 0.1  # 4 standard errors
    for loss in (UNSURE(), UNSURECovariance(), UNSUREPoissonGaussian()):
        assert not bool(loss.initialised)
        loss(y, physics, scale(0.0), generator=gen(1))  # div = 0: the ascent leaves the start alone
        assert bool(loss.initialised) and int(loss.steps) == 1
        if isinstance(loss, UNSUREPoissonGaussian):  # the robust fit of local variance against local mean
            fit = fit_poisson_gaussian(y)  # the per-sample fit: median gain, median fitted variance at each mean
            gain, means = fit.gain.median().clamp_min(0), y.flatten(1).mean(1)
            start = torch.stack([gain, (fit.gain * means + fit.sigma2 - gain * means).median().clamp_min(0)])
            assert torch.allclose(loss.eta, start, atol=1e-15)
            assert abs(float(loss.eta[0]) * float(y.mean()) + float(loss.eta[1]) - 0.04) < 0.1 * 0.04
        elif isinstance(loss, UNSURECovariance):  # the robust covariance estimate, factored as K ⋆ K
            start = autocorrelation(kernel_for(estimate_covariance(y, 1)))
            assert torch.allclose(loss.eta, start, atol=1e-12)
            assert abs(float(start[1, 1]) / 0.04 - 1) < 0.1 and float((start - start[1, 1] * torch.eye(3)[1][:, None]
                                                                      * torch.eye(3)[1]).abs().max()) < 0.1 * 0.04
        else:
            assert abs(float(loss.eta) - estimate) < 1e-12
    # later batches do not restart it
    loss = UNSURE()
    loss(y, physics, scale(0.0), generator=gen(1))
    loss(image_batch(0.05, seed=3)[0], physics, scale(0.0), generator=gen(2))
    assert abs(float(loss.eta) - estimate) < 1e-12


def test_zero_filled_entries_do_not_bias_the_start():
    physics = Inpainting((torch.rand(1, 1, 32, 32, generator=gen(5)) < 0.8).to(F64), noise=Gaussian(0.2))
    y = physics(torch.full((8, 1, 32, 32), 0.5, dtype=F64), generator=gen(6))
    loss = UNSURE()
    loss(y, physics, scale(0.0), generator=gen(7))
    assert abs(float(loss.eta) / 0.04 - 1) < 0.1


def test_poisson_gaussian_starts_near_the_truth_on_real_images():
    """40 × 40 patches of the held-out photographs with gain 0.05 and σ = 0.05 (the benchmark's noise)."""
    from selfinv.data import embedded_images
    from selfinv.data.embedded import TEST_NAMES

    x = torch.cat([torch.from_numpy(img)[None, :, :160, :160].reshape(1, 1, 4, 40, 4, 40).permute(0, 2, 4, 1, 3, 5)
                   .reshape(16, 1, 40, 40) for img in embedded_images(names=list(TEST_NAMES))])
    physics = Denoising(noise=PoissonGaussian(0.05, 0.05))
    y = physics(x, generator=gen(3))
    loss = UNSUREPoissonGaussian()
    loss(y, physics, scale(0.0), generator=gen(4))
    assert abs(float(loss.gain) / 0.05 - 1) < 0.15 and abs(float(loss.eta[1]) / 0.05**2 - 1) < 0.6, loss.eta


def test_eval_before_the_first_training_step_uses_the_batch_estimate_and_stores_nothing():
    y, physics = image_batch(0.2)
    loss = UNSURE().eval()
    value = loss(y, physics, scale(0.5), generator=gen(1))
    assert not bool(loss.initialised) and float(loss.eta) == 0.0 and int(loss.steps) == 0
    # the value is the one a loss started at the estimate gives
    fixed = UNSURE(sigma_init=float(estimate_sigma_pca(y).pow(2).mean().sqrt())).eval()
    assert torch.allclose(value, fixed(y, physics, scale(0.5), generator=gen(1)), rtol=1e-12)


def test_eta_changes_only_in_training_mode_with_gradients():
    y, physics = noisy()
    loss = UNSURE(sigma_init=0.1)
    eta0 = loss.eta.clone()
    loss.eval()
    loss(y, physics, scale(0.5), generator=gen(2))
    assert torch.equal(loss.eta, eta0) and int(loss.steps) == 0
    loss.train()
    with torch.no_grad():  # a validation pass with the loss left in training mode
        loss(y, physics, scale(0.5), generator=gen(2))
    assert torch.equal(loss.eta, eta0)
    loss(y, physics, scale(0.5), generator=gen(2))
    assert float(loss.eta) > float(eta0) and int(loss.steps) == 1  # div(0.5 y) = 8 > 0: ascent raises η


def test_exact_update_rule():
    """c = mean(div h)/m'; log η ← log η + s·λ·c (λ the learning-rate factor; momentum 0 by default)."""
    y, physics = noisy()
    loss = UNSURE(sigma_init=0.1, divergence="exact")
    s = loss.step_size
    assert s == UNSURE().step_size and UNSURE().momentum == 0.0
    loss(y, physics, scale(0.5))  # div = 8 per sample of 16 entries: c = 0.5
    assert float(loss.eta) == pytest.approx(0.01 * math.exp(s * 0.5), rel=1e-14)
    loss.set_lr_factor(0.25)
    loss(y, physics, scale(-0.2))  # c = −0.2
    assert float(loss.eta) == pytest.approx(0.01 * math.exp(s * 0.5 - 0.25 * s * 0.2), rel=1e-14)
    loss.set_lr_factor(0.0)  # the schedule has ended: the multiplier stops with the network
    before = loss.eta.clone()
    loss(y, physics, scale(0.9))
    assert torch.equal(loss.eta, before) and int(loss.steps) == 3
    # a wild divergence moves log η by at most MAX_LOG_STEP
    big = UNSURE(sigma_init=0.1, step_size=1.0, divergence="exact")
    big(y, physics, scale(-50.0))
    assert float(big.eta) == pytest.approx(0.01 * math.exp(-MAX_LOG_STEP), rel=1e-14) and float(big.eta) > 0


def test_the_step_is_scale_free():
    """Data × 255 (a scale-equivariant model): the same relative trajectory, η × 255² (γ × 255 for PG)."""
    y, physics = noisy()
    y = y.abs().reshape(8, 1, 4, 4)
    for make in (lambda a: UNSURE(divergence="exact"), lambda a: UNSUREPoissonGaussian(divergence="exact"),
                 lambda a: UNSURECovariance(divergence="exact")):
        runs = []
        for a in (1.0, 255.0):
            loss = make(a)
            for i in range(4):
                loss(a * y, physics, scale(0.5 - 0.3 * i))
            runs.append(loss.eta.clone())
        unit = torch.tensor([255.0, 255.0**2], dtype=F64) if runs[0].numel() == 2 else 255.0**2
        assert torch.allclose(runs[1], runs[0] * unit, rtol=1e-9), type(make(1)).__name__


def test_momentum_is_a_true_exponential_average_when_asked_for():
    """v ← μv + (1−μ)g (v = g first); off by default (the official code and deepinv step with the raw gradient)."""
    y, physics = noisy()
    mu = 0.9
    loss = UNSURE(sigma_init=0.1, momentum=mu, divergence="exact")
    s = loss.step_size
    loss(y, physics, scale(0.5))
    loss(y, physics, scale(-0.2))
    v2 = mu * 0.5 + (1 - mu) * (-0.2)
    assert float(loss.velocity) == pytest.approx(v2, rel=1e-14)
    assert float(loss.eta) == pytest.approx(0.01 * math.exp(s * 0.5 + s * v2), rel=1e-14)


def test_eta_stays_a_variance():
    y, physics = noisy()
    loss = UNSURE(sigma_init=0.1, step_size=1.0, divergence="exact")
    for _ in range(50):
        loss(y, physics, scale(-1.0))  # div = −16: every step pushes η down as hard as it can
    assert 0 < float(loss.eta) < 1e-12
    pg = UNSUREPoissonGaussian(gain_init=0.0, sigma_init=0.0, step_size=100.0, divergence="exact")
    pg(y.abs(), physics, scale(-1.0))
    assert bool((pg.eta == 0).all())  # clamped at 0 ...
    pg(y.abs(), physics, scale(1.0))
    assert float(pg.eta[1]) > 0  # ... and able to leave it (the mean variance of the step is floored)


def test_eta_never_requires_grad_and_backward_works_after_many_steps():
    layer = nn.Linear(16, 16).double()
    loss = UNSURE()
    y, physics = noisy()
    for i in range(5):
        value = loss(y, physics, lambda y, p: layer(y), generator=gen(i))
        value.backward()  # no graph carried over from earlier steps: every backward works
        assert not loss.eta.requires_grad and loss.eta.grad_fn is None
        assert not loss.velocity.requires_grad
    assert int(loss.steps) == 5


def test_state_dict_round_trip():
    y, physics = image_batch(0.1)
    for cls in (UNSURE, UNSURECovariance, UNSUREPoissonGaussian):
        loss = cls()
        for i in range(3):
            loss(y, physics, scale(0.5 - 0.3 * i), generator=gen(i))
        state = loss.state_dict()
        assert {"eta", "velocity", "steps", "initialised"} <= set(state)
        restored = cls()
        restored.load_state_dict(state)
        assert all(torch.equal(restored.state_dict()[k], v) for k, v in state.items())
        # continuing from the checkpoint is the same as not stopping (no second data-driven start)
        loss(y, physics, scale(-0.1), generator=gen(9))
        restored(y, physics, scale(-0.1), generator=gen(9))
        assert torch.equal(restored.eta, loss.eta), cls.__name__
    assert "kernel" in UNSURECovariance().state_dict() and "moments" in UNSUREPoissonGaussian().state_dict()


def test_monitored_values():
    y, physics = image_batch(0.1)
    unsure, cov, pg = UNSURE(), UNSURECovariance(), UNSUREPoissonGaussian()
    for loss in (unsure, cov, pg):
        loss(y, physics, scale(0.5), generator=gen(0))
    assert unsure.monitored() == {"eta": float(unsure.eta)}
    assert pg.monitored() == {"eta_gain": float(pg.eta[0]), "eta_sigma2": float(pg.eta[1])}
    assert cov.monitored() == {"eta_centre": float(cov.eta[1, 1]), "eta_sum": float(cov.eta.sum())}
    assert SURE().monitored() == {} and MC().monitored() == {}
    combined = unsure + 0.5 * MC() + pg + UNSURE(sigma_init=0.3)
    assert combined.monitored() == {"eta": float(unsure.eta), "eta_gain": float(pg.eta[0]),
                                    "eta_sigma2": float(pg.eta[1]), "eta_2": 0.09}
    combined.set_lr_factor(0.5)  # reaches every term
    assert unsure.lr_factor == pg.lr_factor == 0.5


def test_does_not_read_the_noise_model():
    y = torch.rand(4, 16, generator=gen(3), dtype=F64)
    for physics in (Denoising(), Denoising(noise=Gamma(3.0)), Denoising(noise=PoissonGaussian(0.1, 0.1))):
        assert torch.isfinite(UNSURE()(y, physics, scale(0.5), generator=gen(4)))
    assert UNSURE.info.noise_models is None and UNSURE.info.unknown_separable_noise
    assert not UNSURE.info.unknown_coloured_noise and UNSURECovariance.info.unknown_coloured_noise
    assert not UNSUREPoissonGaussian.info.unknown_coloured_noise


def test_network_evaluations():
    y, physics = noisy()

    class Counting:
        calls = 0

        def __call__(self, y, physics):
            self.calls += 1
            return 0.5 * y

    for cls in (UNSURE, UNSUREPoissonGaussian, UNSURECovariance):
        data = y.reshape(8, 1, 4, 4) if cls is UNSURECovariance else y.abs()
        for method, calls in (("mc", 2), ("hutchinson", 1)):
            model = Counting()
            cls(divergence=method)(data, physics, model, generator=gen(5))  # the data-driven start costs none
            assert model.calls == calls, (cls.__name__, method)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: UNSURE(momentum=1.0), "momentum"),
        (lambda: UNSURE(step_size=0.0), "step_size"),
        (lambda: UNSURE(sigma_init=-0.1), "sigma_init"),
        (lambda: UNSURE(divergence="trace"), "divergence"),
        (lambda: UNSURECovariance(radius=-1), "radius"),
        (lambda: UNSUREPoissonGaussian(step_size=(1e-4, 1e-4)), "step_size"),
        (lambda: UNSUREPoissonGaussian(gain_init=float("nan")), "gain_init"),
        (lambda: UNSURE().set_lr_factor(-1.0), "learning-rate factor"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_covariance_variant_needs_images():
    y, physics = noisy()
    with pytest.raises(ValueError, match="images"):
        UNSURECovariance(sigma_init=0.1)(y, physics, scale(0.5))


# ----------------------------------------------------------------------------------------- covariance variant
