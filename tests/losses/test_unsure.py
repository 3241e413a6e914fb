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
from selfinv.losses.divergence import offsets
from selfinv.losses.unsure import (
    MAX_LOG_STEP,
    UNSURE,
    UNSURECovariance,
    UNSUREPoissonGaussian,
    autocorrelation,
    kernel_for,
)
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, PoissonGaussian
from selfinv.noise_estimation import estimate_covariance, estimate_poisson_gaussian, estimate_sigma
from selfinv.physics import Denoising, Inpainting
from tests.helpers import gen

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def train(loss, physics, sample_x, model, params, steps, lr=1e-2, seed=0, every=None):
    """Adam on the model, one ascent step of the loss's multipliers per call; mean of eta over the last 20 %.

    ``every(loss)`` is called after each step (a check that must hold all along)."""
    opt = torch.optim.Adam(params, lr=lr)
    g = gen(seed)
    tail, count = 0.0, 0
    for it in range(steps):
        y = physics(sample_x(g), generator=g)
        value = loss(y, physics, model, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
        if every is not None:
            every(loss)
        if it >= int(0.8 * steps):
            tail, count = tail + loss.eta.clone(), count + 1
    return tail / count


def cosines(n: int, k: int, first: int = 0) -> torch.Tensor:
    """(n, k) orthonormal basis of the k lowest-frequency cosines (DCT-II) from frequency ``first``."""
    i = torch.arange(n, dtype=F64)
    return torch.linalg.qr(torch.stack([torch.cos(math.pi * (i + 0.5) * f / n) for f in range(first, first + k)], 1))[0]


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
def noisy(seed: int = 0, b: int = 8, sigma: float = 0.1) -> tuple[torch.Tensor, Denoising]:
    physics = Denoising(noise=Gaussian(sigma))
    return physics(torch.rand(b, 16, generator=gen(seed), dtype=F64), generator=gen(seed + 1)), physics


def image_batch(sigma: float, seed: int = 0, b: int = 32) -> tuple[torch.Tensor, Denoising]:
    """Flat images plus noise: the noise estimate is σ up to its standard error (≈ 1.2σ/√(b·256) per batch)."""
    physics = Denoising(noise=Gaussian(sigma))
    return physics(torch.full((b, 1, 32, 32), 0.5, dtype=F64), generator=gen(seed)), physics


def scale(a: float):
    return lambda y, physics: a * y


def test_the_default_start_is_the_noise_estimate_of_the_first_training_batch():
    y, physics = image_batch(0.2)
    estimate = float((estimate_sigma(y) ** 2).mean())
    assert abs(estimate / 0.04 - 1) < 0.1  # 4 standard errors
    for loss in (UNSURE(), UNSURECovariance(), UNSUREPoissonGaussian()):
        assert not bool(loss.initialised)
        loss(y, physics, scale(0.0), generator=gen(1))  # div = 0: the ascent leaves the start alone
        assert bool(loss.initialised) and int(loss.steps) == 1
        if isinstance(loss, UNSUREPoissonGaussian):  # the robust fit of local variance against local mean
            assert torch.allclose(loss.eta, torch.tensor(estimate_poisson_gaussian(y), dtype=F64), atol=1e-15)
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
    fixed = UNSURE(sigma_init=float(estimate_sigma(y).pow(2).mean().sqrt())).eval()
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
H = 6
NC = H * H


def shift_matrix(dy: int, dx: int) -> torch.Tensor:
    """(T_o)_{ij} = 1 if j = i + o (circularly on an H × H grid): tr(T_oᵀ J) = Σ_i ∂h_i/∂y_{i+o}."""
    T = torch.zeros(NC, NC, dtype=F64)
    for r in range(H):
        for c in range(H):
            T[r * H + c, ((r + dy) % H) * H + (c + dx) % H] = 1
    return T


def covariance_saddle_point(C: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """The multipliers (symmetric kernel) at which W = I − Σ_η C⁻¹ meets every symmetrised constraint."""
    reps = [o for o in offsets(radius) if o > (0, 0) or o == (0, 0)]  # one offset of each ± pair
    basis = [torch.eye(NC, dtype=F64) if o == (0, 0) else shift_matrix(*o) + shift_matrix(-o[0], -o[1]) for o in reps]
    Ci = torch.linalg.inv(C)
    M = torch.tensor([[float((Sp.T @ Sq @ Ci).trace()) for Sq in basis] for Sp in basis], dtype=F64)
    rhs = torch.tensor([float(NC)] + [0.0] * (len(reps) - 1), dtype=F64)  # tr(S_pᵀ) = n δ_p0
    coef = torch.linalg.solve(M, rhs)
    k = 2 * radius + 1
    kernel = torch.zeros(k, k, dtype=F64)
    for (dy, dx), value in zip(reps, coef.tolist(), strict=True):
        kernel[radius + dy, radius + dx] = kernel[radius - dy, radius - dx] = value
    return kernel


def noise_covariance_matrix(noise: CorrelatedGaussian) -> torch.Tensor:
    ck = noise.covariance_kernel().to(F64)
    kh, kw = noise.kernel.shape
    cov = torch.zeros(NC, NC, dtype=F64)
    for dy in range(-(kh - 1), kh):
        for dx in range(-(kw - 1), kw):
            cov += ck[dy + kh - 1, dx + kw - 1] * shift_matrix(dy, dx)
    return cov


def spectrum_min(eta: torch.Tensor, size: int = 16) -> float:
    """The smallest value of the Fourier transform of a centred (2r+1)² kernel: ≥ 0 iff it is a covariance."""
    r = eta.shape[-1] // 2
    grid = torch.zeros(size, size, dtype=F64)
    grid[: 2 * r + 1, : 2 * r + 1] = eta
    return float(torch.fft.fft2(torch.roll(grid, (-r, -r), (0, 1))).real.min())


def smooth_images_basis() -> torch.Tensor:
    """(36, 3) orthonormal: the three lowest 2-D cosines on the 6 × 6 grid (smooth images)."""
    r = torch.arange(H, dtype=F64)

    def c(f):
        return torch.cos(math.pi * (r + 0.5) * f / H)

    return torch.linalg.qr(torch.stack([torch.outer(c(a), c(b)).reshape(-1) for a, b in ((0, 0), (0, 1), (1, 0))], 1))[0]


def kernel_saddle_point(C: torch.Tensor, start: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """The saddle point over covariances Σ = K ⋆ K: K maximises the dual D(Σ) = (2 tr Σ − tr(Σ C⁻¹ Σ))/n (the
    value of the Lagrangian at its minimiser W = I − Σ C⁻¹), by L-BFGS from ``start``."""
    shifts = [shift_matrix(dy, dx) for dy, dx in offsets(radius)]
    Ci = torch.linalg.inv(C)

    def dual(kernel):
        S = sum(w * T for w, T in zip(autocorrelation(kernel).reshape(-1), shifts, strict=True))
        return (2 * S.trace() - (S @ Ci @ S).trace()) / NC

    kernel = kernel_for(start).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([kernel], max_iter=200, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = -dual(kernel)
        value.backward()
        return value

    opt.step(closure)
    return autocorrelation(kernel.detach())


def train_covariance(kernel: torch.Tensor, amplitude: float = 0.3, steps: int = 1500):
    """Smooth 6 × 6 images of the given amplitude plus noise σ·(kernel ⊛ ε); the defaults, checked PSD at every step."""
    noise = CorrelatedGaussian(SIGMA, kernel)
    basis = smooth_images_basis()
    C = amplitude**2 * basis @ basis.T + noise_covariance_matrix(noise)
    layer = nn.Linear(NC, NC)
    loss = UNSURECovariance(radius=1)  # the defaults: start from the data, Σ = K ⋆ K, relative step
    Uf = basis.float()
    spectra = []
    eta = train(
        loss,
        Denoising(noise=noise),
        lambda g: (amplitude * torch.randn(256, 3, generator=g) @ Uf.T).reshape(-1, 1, H, H),
        lambda y, p: layer(y.reshape(y.shape[0], -1)).reshape(y.shape),
        layer.parameters(),
        steps,
        seed=12,
        every=lambda l: spectra.append(spectrum_min(l.eta)),
    )
    assert min(spectra) > -1e-12 * float(loss.eta.max()), min(spectra)  # a covariance at every step
    unconstrained = covariance_saddle_point(C)
    return eta, kernel_saddle_point(C, unconstrained), unconstrained, noise, loss


def test_autocorrelation_is_the_covariance_of_the_filtered_noise():
    K = torch.tensor([[1.0, 0.5], [0.4, -0.3]], dtype=F64)
    brute = torch.zeros(3, 3, dtype=F64)
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            brute[dy + 1, dx + 1] = sum(K[p, q] * K[p + dy, q + dx] for p in range(2) for q in range(2)
                                        if 0 <= p + dy < 2 and 0 <= q + dx < 2)
    assert torch.allclose(autocorrelation(K), brute, atol=1e-15)
    assert torch.allclose(autocorrelation(0.1 * K), CorrelatedGaussian(0.1, K.float()).covariance_kernel().to(F64), atol=1e-7)
    # and back: a factorable covariance is factored exactly (up to the kernel's symmetries)
    for k in (K, torch.full((3, 3), 1 / 3, dtype=F64), torch.randn(3, 3, generator=gen(1), dtype=F64)):
        target = autocorrelation(k)
        assert float((autocorrelation(kernel_for(target)) - target).abs().max()) < 1e-6 * float(target.abs().max())


def test_the_covariance_is_positive_semi_definite_whatever_the_constraints_say():
    """A model with a large negative Jacobian at offset (0, 1) pushes that covariance entry far below what
    the centre allows (a per-offset ascent then leaves the cone of covariances); Σ = K ⋆ K cannot."""
    physics = Denoising(noise=Gaussian(0.1))
    y = physics(torch.full((4, 1, 6, 6), 0.5, dtype=F64), generator=gen(0))
    loss = UNSURECovariance(sigma_init=0.1, step_size=1.0, divergence="exact")

    def hostile(v, p):
        return v - 3.0 * torch.roll(v, shifts=-1, dims=-1)  # ∂h_i/∂y_{i+(0,1)} = −3

    for _ in range(20):
        loss(y, physics, hostile)
        assert spectrum_min(loss.eta) > -1e-12 * float(loss.eta.max())
        assert torch.equal(loss.eta, loss.eta.flip(0, 1))
    assert torch.allclose(loss.eta, autocorrelation(loss.kernel), atol=0)


def test_covariance_variant_learns_the_correlated_noise_kernel():
    """Noise σ·(k ⊛ ε) with k = [[1, .5], [.4, 0]]: covariance σ²(k ⋆ k) on a 3 × 3 window of offsets.

    The defaults reach the saddle point computed from C (every entry within 3 % of its centre; here the
    saddle point over K ⋆ K is the unconstrained one), which is the true covariance up to the ZED
    over-estimate: the level above the truth, the correlations (entries over the centre) within 0.06 of
    the truth's (the learned ones within 0.08), the off-centre multipliers far from 0. PSD at every step (train_covariance)."""
    eta, theory, unconstrained, noise, loss = train_covariance(torch.tensor([[1.0, 0.5], [0.4, 0.0]]))
    true = noise.covariance_kernel().to(F64)  # 3 × 3 here: the window holds the whole covariance
    centre = float(theory[1, 1])
    assert float((theory - unconstrained).abs().max()) < 0.005 * centre  # (nearly) factorable here
    assert torch.equal(eta, eta.flip(0, 1))  # symmetric, as a covariance
    assert float((eta - theory).abs().max()) < 0.03 * centre, (eta, theory)
    assert centre > float(true[1, 1]) and float((theory / centre - true / true[1, 1]).abs().max()) < 0.06
    assert float((eta / eta[1, 1] - true / true[1, 1]).abs().max()) < 0.08  # the learned correlations
    assert float(eta[1, 2]) > 0.25 * centre and float(eta[2, 1]) > 0.25 * centre  # Cov at (0, ±1), (±1, 0)
    assert loss.kernel.shape == (2, 2)


def test_covariance_variant_stays_nearly_white_for_white_noise():
    """White noise: the level within 3 % of the saddle point's; the off-centre values stay below 10 % of the
    centre (the saddle point's own are up to 8 %: the ZED over-estimate sits where the smooth signal is)."""
    eta, theory, _, _, _ = train_covariance(torch.tensor([[1.0]]))
    centre = float(theory[1, 1])
    assert abs(float(eta[1, 1]) / centre - 1) < 0.03
    off = eta.clone()
    off[1, 1] = 0
    assert float(off.abs().max()) < 0.1 * centre


# ----------------------------------------------------------------------------------------- Poisson-Gaussian
def pg_saddle_point(mu, U, a, gain, sigma):
    """f(y) = μ + W(y − μ): W = I − D_η C⁻¹ with D_η = diag(η_γ μ + η_σ), and Σμ_i W_ii = Σ W_ii = 0."""
    C = a**2 / 3 * U @ U.T + torch.diag(gain * mu + sigma**2)  # z ~ U[−a, a]^k: Cov = a²/3 I
    ci = torch.linalg.inv(C).diagonal()
    M = torch.stack([torch.stack([(mu**2 * ci).sum(), (mu * ci).sum()]), torch.stack([(mu * ci).sum(), ci.sum()])])
    return torch.linalg.solve(M, torch.stack([mu.sum(), torch.tensor(float(mu.numel()), dtype=F64)])), M


def train_pg(mu, a, gain, sigma, steps=4000):
    n, k = mu.numel(), 3
    U = cosines(n, k, first=1)
    theory, M = pg_saddle_point(mu, U, a, gain, sigma)
    layer = nn.Linear(n, n)
    muf, Uf = mu.float(), U.float()
    loss = UNSUREPoissonGaussian()  # the defaults
    eta = train(
        loss,
        Denoising(noise=PoissonGaussian(gain, sigma)),
        lambda g: muf + (2 * torch.rand(256, k, generator=g) - 1) * a @ Uf.T,
        lambda y, p: muf + layer(y - muf),
        layer.parameters(),
        steps,
        seed=22,
    )
    return eta, theory, M, loss


def test_poisson_gaussian_defaults_reach_the_saddle_point_on_unit_range_data():
    """Data in [0, 1] (means 0.15 … 0.9), gain 0.05 and σ = 0.05: the constraints' weights y and 1 are nearly
    collinear (the saddle point's 2 × 2 system has condition number > 20); the preconditioned default ascent
    still finds both multipliers (3 % each), the gain close to the true gain."""
    gain, sigma = 0.05, 0.05
    eta, theory, M, loss = train_pg(torch.linspace(0.15, 0.9, 16, dtype=F64), 0.1, gain, sigma)
    assert float(torch.linalg.cond(M)) > 20
    assert torch.all((eta / theory - 1).abs() < 0.03), (eta, theory)
    assert abs(float(theory[0]) / gain - 1) < 0.02 and float(theory[1]) > sigma**2  # the ZED over-estimate
    assert abs(float(loss.gain) - float(loss.eta[0])) == 0 and abs(float(loss.sigma) ** 2 - float(loss.eta[1])) < 1e-15


def test_poisson_gaussian_defaults_on_a_wider_range():
    """The same defaults on means 0.4 … 4 (the step is scale-free)."""
    eta, theory, _, _ = train_pg(torch.linspace(0.4, 4.0, 16, dtype=F64), 0.3, 0.05, 0.1)
    assert torch.all((eta / theory - 1).abs() < 0.03), (eta, theory)


def test_poisson_gaussian_step_is_the_preconditioned_newton_step():
    """η ← max(0, η + s·λ·v̄·M̂⁻¹c), v̄ = η_γ ȳ + η_σ, M̂ the mean of the batches' moments of (y, 1)."""
    y, physics = noisy()
    y = y.abs()
    loss = UNSUREPoissonGaussian(gain_init=0.05, sigma_init=0.1, divergence="exact")
    s = loss.step_size
    loss(y, physics, scale(0.5))  # ∂_i h_i = 0.5: c = 0.5 (mean y, 1)
    m1, m2 = float(y.mean()), float((y * y).mean())
    M = torch.tensor([[m2, m1], [m1, 1.0]], dtype=F64)
    c = 0.5 * torch.tensor([m1, 1.0], dtype=F64)
    eta0 = torch.tensor([0.05, 0.01], dtype=F64)
    vbar = 0.05 * m1 + 0.01
    expected = (eta0 + s * vbar * torch.linalg.solve(M, c)).clamp_min(0)
    assert torch.allclose(loss.eta, expected, rtol=1e-12) and torch.allclose(loss.moments, M, rtol=1e-12)
    # the identity: c ∝ M's second column, so only the constant part moves, by s·v̄/2
    assert abs(float(loss.eta[0]) - 0.05) < 1e-15 and float(loss.eta[1]) == pytest.approx(0.01 + s * vbar * 0.5, rel=1e-12)
