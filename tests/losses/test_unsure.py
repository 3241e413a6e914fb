"""UNSURE: the learned multipliers reach the saddle points the theory predicts; state, momentum, eval mode.

The convergence tests train a linear model f(y) = W y + c jointly with the multipliers on a Gaussian (or
bounded) prior supported on a k-dimensional subspace, for which the saddle point is known in closed
form: the inner minimiser is W = I − Σ_η C⁻¹ (C the covariance of y, Σ_η the penalty's matrix), and the
multipliers are fixed by the constraints on W. Tolerances are a few percent of the target (the
multiplier keeps fluctuating with the Monte-Carlo divergence; we average the last 20 % of the steps).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.divergence import offsets
from selfinv.losses.unsure import UNSURE, UNSURECovariance, UNSUREPoissonGaussian
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, PoissonGaussian
from selfinv.physics import Denoising

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: thread hand-offs cost more than they save (and stall on a busy 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def train(loss, physics, sample_x, model, params, steps, lr=1e-2, seed=0):
    """Adam on the model, one ascent step of the loss's multipliers per call; mean of eta over the last 20 %."""
    opt = torch.optim.Adam(params, lr=lr)
    g = gen(seed)
    tail, count = 0.0, 0
    for it in range(steps):
        y = physics(sample_x(g), generator=g)
        value = loss(y, physics, model, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
        if it >= int(0.8 * steps):
            tail, count = tail + loss.eta.clone(), count + 1
    return tail / count


# ----------------------------------------------------------------------------------------- the ZED value
N, K, S, SIGMA = 16, 4, 1.0, 0.1


def subspace(seed: int = 0) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(N, K, generator=gen(seed), dtype=F64))[0]


def test_zed_value_two_formulas_agree():
    """η̂ = n / tr(C⁻¹) = σ²/(1 − MMSE/σ²) > σ² for a Gaussian prior on a k-dimensional subspace."""
    U = subspace()
    C = S**2 * U @ U.T + SIGMA**2 * torch.eye(N, dtype=F64)
    eta_hat = N / float(torch.linalg.inv(C).trace())
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
    U = subspace().float()
    C = S**2 * U.double() @ U.double().T + SIGMA**2 * torch.eye(N, dtype=F64)
    eta_hat = N / float(torch.linalg.inv(C).trace())
    layer = nn.Linear(N, N)
    loss = UNSURE()  # the defaults: σ0 = 0.1 (η0 = 0.01), step 1e-4, momentum 0.9, MC divergence
    physics = Denoising(noise=Gaussian(SIGMA))
    eta = train(
        loss,
        physics,
        lambda g: S * torch.randn(512, K, generator=g) @ U.T,
        lambda y, p: layer(y),
        layer.parameters(),
        1500,
    )
    assert abs(float(eta) / eta_hat - 1) < 0.03, (float(eta), eta_hat)
    assert eta_hat / SIGMA**2 - 1 > 0.3  # far from σ² (33 %): the test tells the two apart
    assert abs(float(loss.sigma) - math.sqrt(float(loss.eta))) < 1e-15


# ----------------------------------------------------------------------------------------- state and updates
def noisy(seed: int = 0, b: int = 8) -> tuple[torch.Tensor, Denoising]:
    physics = Denoising(noise=Gaussian(0.1))
    return physics(torch.rand(b, 16, generator=gen(seed), dtype=F64), generator=gen(seed + 1)), physics


def scale(a: float):
    return lambda y, physics: a * y


def test_eta_changes_only_in_training_mode_with_gradients():
    y, physics = noisy()
    loss = UNSURE(step_size=1e-3)
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


def test_exact_update_rule_with_momentum():
    """g = 2·mean(div h)/m; v ← μv + (1−μ)g (v = g first); η ← max(0, η + s v). Exact divergence: g is exact."""
    y, physics = noisy()
    s, mu = 1e-3, 0.9
    loss = UNSURE(sigma_init=0.1, step_size=s, momentum=mu, divergence="exact")
    loss(y, physics, scale(0.5))  # div = 8 per sample of 16 entries: g = 1
    loss(y, physics, scale(-0.2))  # g = −0.4
    v2 = mu * 1.0 + (1 - mu) * (-0.4)
    assert abs(float(loss.eta) - (0.01 + s * 1.0 + s * v2)) < 1e-15
    assert abs(float(loss.velocity) - v2) < 1e-15
    # without momentum (and in the peer library, which ignores its momentum) the second step is s·g
    plain = UNSURE(sigma_init=0.1, step_size=s, momentum=0.0, divergence="exact")
    plain(y, physics, scale(0.5))
    plain(y, physics, scale(-0.2))
    assert abs(float(plain.eta) - (0.01 + s * 1.0 - s * 0.4)) < 1e-15
    assert abs(float(loss.eta) - float(plain.eta)) > 1e-4  # momentum changes the trajectory


def test_momentum_changes_a_training_trajectory():
    def run(momentum):
        layer = nn.Linear(16, 16).double()
        torch.nn.init.eye_(layer.weight)
        loss = UNSURE(step_size=1e-4, momentum=momentum)
        physics = Denoising(noise=Gaussian(0.1))
        train(
            loss,
            physics,
            lambda g: torch.rand(64, 16, generator=g, dtype=F64),
            lambda y, p: layer(y),
            layer.parameters(),
            20,
        )
        return float(loss.eta)

    assert abs(run(0.9) - run(0.0)) > 1e-5


def test_eta_is_never_negative():
    y, physics = noisy()
    loss = UNSURE(sigma_init=0.1, step_size=1.0, divergence="exact")
    for _ in range(3):
        loss(y, physics, scale(-1.0))  # div = −16: a big step would go far below 0
        assert float(loss.eta) == 0.0
    cov = UNSURECovariance(sigma_init=0.1, step_size=1.0, divergence="exact")
    pg = UNSUREPoissonGaussian(step_size=1.0, divergence="exact")
    img = y.reshape(8, 1, 4, 4)
    cov(img, physics, scale(-1.0))
    pg(y.abs(), physics, scale(-1.0))
    assert float(cov.eta[1, 1]) == 0.0 and bool((pg.eta == 0).all())


def test_eta_never_requires_grad_and_backward_works_after_many_steps():
    layer = nn.Linear(16, 16).double()
    loss = UNSURE(step_size=1e-3)
    y, physics = noisy()
    for i in range(5):
        value = loss(y, physics, lambda y, p: layer(y), generator=gen(i))
        value.backward()  # no graph carried over from earlier steps: every backward works
        assert not loss.eta.requires_grad and loss.eta.grad_fn is None
        assert not loss.velocity.requires_grad
    assert int(loss.steps) == 5


def test_state_dict_round_trip():
    y, physics = noisy()
    loss = UNSURE(step_size=1e-3)
    for i in range(3):
        loss(y, physics, scale(0.5 - 0.3 * i), generator=gen(i))
    state = loss.state_dict()
    assert {"eta", "velocity", "steps"} <= set(state)
    restored = UNSURE(step_size=1e-3)
    restored.load_state_dict(state)
    assert torch.equal(restored.eta, loss.eta) and torch.equal(restored.velocity, loss.velocity)
    # continuing from the checkpoint is the same as not stopping
    loss(y, physics, scale(-0.1), generator=gen(9))
    restored(y, physics, scale(-0.1), generator=gen(9))
    assert torch.equal(restored.eta, loss.eta)
    for cls in (UNSURECovariance, UNSUREPoissonGaussian):
        assert {"eta", "velocity", "steps"} <= set(cls().state_dict())


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

    for cls, kwargs in ((UNSURE, {}), (UNSUREPoissonGaussian, {}), (UNSURECovariance, {})):
        data = y.reshape(8, 1, 4, 4) if cls is UNSURECovariance else y.abs()
        for method, calls in (("mc", 2), ("hutchinson", 1)):
            model = Counting()
            cls(divergence=method, **kwargs)(data, physics, model, generator=gen(5))
            assert model.calls == calls, (cls.__name__, method)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: UNSURE(momentum=1.0), "momentum"),
        (lambda: UNSURE(step_size=0.0), "step_size"),
        (lambda: UNSURE(sigma_init=-0.1), "sigma_init"),
        (lambda: UNSURE(divergence="trace"), "divergence"),
        (lambda: UNSURECovariance(radius=-1), "radius"),
        (lambda: UNSUREPoissonGaussian(step_size=(1e-4, 1e-4, 1e-4)), "step_size"),
        (lambda: UNSUREPoissonGaussian(gain_init=float("nan")), "gain_init"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_covariance_variant_needs_images():
    y, physics = noisy()
    with pytest.raises(ValueError, match="images"):
        UNSURECovariance()(y, physics, scale(0.5))


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


def train_covariance(kernel: torch.Tensor):
    noise = CorrelatedGaussian(SIGMA, kernel)
    U = torch.linalg.qr(torch.randn(NC, 3, generator=gen(11), dtype=F64))[0]
    C = U @ U.T + noise_covariance_matrix(noise)
    layer = nn.Linear(NC, NC)
    loss = UNSURECovariance(radius=1)  # defaults: step 1e-4, momentum 0.9, white start σ0² = 0.01
    Uf = U.float()
    eta = train(
        loss,
        Denoising(noise=noise),
        lambda g: (torch.randn(256, 3, generator=g) @ Uf.T).reshape(-1, 1, H, H),
        lambda y, p: layer(y.reshape(y.shape[0], -1)).reshape(y.shape),
        layer.parameters(),
        1200,
        seed=12,
    )
    return eta, covariance_saddle_point(C), noise


def test_covariance_variant_learns_the_correlated_noise_kernel():
    """Noise σ·(k ⊛ ε) with k = [[1, .5], [.4, 0]]: covariance σ²(k ⋆ k) on a 3 × 3 window of offsets.

    Verified: the learned kernel equals the saddle point computed from C (all entries within 3 % of its
    centre), that saddle point is the true covariance up to the ZED over-estimate (within 5 % of the
    centre, centre above the true variance), and the off-centre multipliers are far from zero.
    """
    eta, theory, noise = train_covariance(torch.tensor([[1.0, 0.5], [0.4, 0.0]]))
    true = noise.covariance_kernel().to(F64)  # 3 × 3 here: the window holds the whole covariance
    centre = float(theory[1, 1])
    assert torch.equal(eta, eta.flip(0, 1))  # symmetric, as a covariance
    assert float((eta - theory).abs().max()) < 0.03 * centre, (eta, theory)
    assert float((theory - true).abs().max()) < 0.05 * centre and centre > float(true[1, 1])
    assert float(eta[1, 2]) > 0.25 * centre and float(eta[2, 1]) > 0.25 * centre  # Cov at (0, ±1), (±1, 0)


def test_covariance_variant_stays_white_for_white_noise():
    eta, theory, _ = train_covariance(torch.tensor([[1.0]]))
    centre = float(theory[1, 1])
    assert abs(float(eta[1, 1]) / centre - 1) < 0.03
    off = eta.clone()
    off[1, 1] = 0
    assert float(off.abs().max()) < 0.02 * centre  # the saddle point's own off-centre values are < 0.5 %
    assert abs(float(eta[1, 1]) - float(UNSURE().eta)) > 0.05 * centre  # it did move from its start


# ----------------------------------------------------------------------------------------- Poisson-Gaussian
def test_poisson_gaussian_variant_reaches_its_saddle_point():
    """f(y) = μ + W(y − μ): W = I − D_η C⁻¹ with D_η = diag(η_γ μ + η_σ), and Σμ_i W_ii = Σ W_ii = 0.

    The two constraints give a 2 × 2 linear system for (η_γ, η_σ). The steps are preconditioned by the
    diagonal of that system (as one would tune them per multiplier); momentum and MC divergence as defaults.
    """
    n, k, a, gain, sigma = 16, 3, 0.3, 0.05, 0.1
    mu = torch.linspace(0.4, 4.0, n, dtype=F64)
    U = torch.linalg.qr(torch.randn(n, k, generator=gen(21), dtype=F64))[0]
    C = a**2 / 3 * U @ U.T + torch.diag(gain * mu + sigma**2)  # z ~ U[−a, a]^k: Cov = a²/3 I
    ci = torch.linalg.inv(C).diagonal()
    M = torch.stack([torch.stack([(mu**2 * ci).sum(), (mu * ci).sum()]), torch.stack([(mu * ci).sum(), ci.sum()])])
    theory = torch.linalg.solve(M, torch.stack([mu.sum(), torch.tensor(float(n), dtype=F64)]))
    steps = tuple((0.03 / (2 * M.diagonal() / n)).tolist())
    layer = nn.Linear(n, n)
    muf, Uf = mu.float(), U.float()
    loss = UNSUREPoissonGaussian(gain_init=0.1, sigma_init=0.1, step_size=steps)
    eta = train(
        loss,
        Denoising(noise=PoissonGaussian(gain, sigma)),
        lambda g: muf + (2 * torch.rand(512, k, generator=g) - 1) * a @ Uf.T,
        lambda y, p: muf + layer(y - muf),
        layer.parameters(),
        2000,
        seed=22,
    )
    assert torch.all((eta / theory - 1).abs() < 0.03), (eta, theory)
    assert abs(float(theory[0]) / gain - 1) < 0.05  # the gain multiplier is close to the true gain
    assert abs(float(loss.gain) - float(loss.eta[0])) == 0 and abs(float(loss.sigma) ** 2 - float(loss.eta[1])) < 1e-15
