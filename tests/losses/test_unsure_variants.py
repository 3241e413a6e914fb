"""UNSURE's variants with the DEFAULT arguments: the covariance of spatially correlated noise (a kernel K, covariance
K ⋆ Kᵀ, positive semi-definite by construction) and Poisson-Gaussian noise (gain and variance), each against the
saddle point the theory predicts in a linear model (see tests/losses/test_unsure.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.divergence import offsets
from selfinv.losses.unsure import UNSURECovariance, UNSUREPoissonGaussian, autocorrelation, kernel_for
from selfinv.noise import CorrelatedGaussian, Gaussian, PoissonGaussian
from selfinv.physics import Denoising
from tests.helpers import gen
from tests.losses.unsure_support import cosines, noisy, scale, train

F64 = torch.float64
SIGMA = 0.1  # the noise level of test_unsure.py


pytestmark = pytest.mark.usefixtures("one_thread")


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
