"""Noise2Noise: the risk identity (Monte Carlo, within 4 standard errors), subtraction of the noise term, errors."""

from __future__ import annotations

import pytest
import torch

from selfinv.losses.base import sq_mean
from selfinv.losses.n2n import Noise2Noise
from selfinv.losses.supervised import MC
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, Poisson, PoissonGaussian
from selfinv.physics import Denoising, Inpainting, Matrix

CHUNKS, PER_CHUNK = 400, 50  # 20,000 independent pairs (y_a, y_b), in 400 calls of the loss


def f_nonlinear(y, physics=None):
    """A fixed nonlinear 'denoiser' (any f works in the identity)."""
    return 0.8 * torch.tanh(2.0 * y) + 0.1 * y**2


def mean_se(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std() / len(values) ** 0.5)


def clean(shape=(PER_CHUNK, 1, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand(shape[1:], generator=g, dtype=torch.float64).expand(shape).contiguous()


def gap_statistics(physics, x, f, subtract_noise=False, seed=1):
    """Per chunk: N2N(y_a, y_b) minus the measurement-domain supervised risk (1/m)||A f(y_a) - A x||^2."""
    g = torch.Generator().manual_seed(seed)
    loss = Noise2Noise(subtract_noise=subtract_noise)
    gaps = []
    for _ in range(CHUNKS):
        ya, yb = physics(x, generator=g), physics(x, generator=g)
        n2n = loss(ya, physics, f, y2=yb)
        risk = sq_mean(physics.A(f(ya)) - physics.A(x))
        gaps.append(float(n2n - risk))
    return mean_se(gaps)


@pytest.mark.parametrize(
    "noise, expected",
    [
        (Gaussian(0.2), lambda x: 0.2**2),
        (Poisson(0.05), lambda x: float((0.05 * x).mean())),  # Var(y_b | x) = gain * x
        (Gamma(10.0), lambda x: float((x**2 / 10.0).mean())),  # Var(y_b | x) = x^2 / l
    ],
    ids=["gaussian", "poisson", "gamma"],
)
def test_noise2noise_identity_denoising(noise, expected):
    # E (1/n)||f(y_a) - y_b||^2 = E (1/n)||f(y_a) - x||^2 + (1/n) E||eps_b||^2 for a fixed nonlinear f
    physics = Denoising(noise=noise)
    x = clean()
    mean, se = gap_statistics(physics, x, f_nonlinear)
    assert abs(mean - expected(x)) < 4 * se, (mean, expected(x), se)


def test_noise2noise_identity_with_an_operator():
    # A != I (a random 12 x 16 matrix): E (1/m)||y_b - A f(y_a)||^2 = E (1/m)||A f(y_a) - A x||^2 + sigma^2
    g = torch.Generator().manual_seed(3)
    A = torch.randn(12, 16, generator=g, dtype=torch.float64) / 4
    W = torch.randn(16, 12, generator=g, dtype=torch.float64) / 3
    physics = Matrix(A, noise=Gaussian(0.3))
    x = clean((PER_CHUNK, 16))

    def f(y, physics=None):
        return torch.tanh(y @ W.T)

    mean, se = gap_statistics(physics, x, f)
    assert abs(mean - 0.09) < 4 * se, (mean, se)
    # with the noise term subtracted the loss estimates the measurement-domain risk itself
    mean, se = gap_statistics(physics, x, f, subtract_noise=True)
    assert abs(mean) < 4 * se, (mean, se)


@pytest.mark.parametrize(
    "noise",
    [
        Gaussian(torch.tensor([0.05, 0.1, 0.3] * 10 + [0.2] * 20, dtype=torch.float64)),  # per-sample sigma
        Poisson(torch.tensor([0.02, 0.1] * 25, dtype=torch.float64)),  # per-sample gain
        PoissonGaussian(0.05, 0.1),
        Gamma(torch.tensor([2.0, 20.0] * 25, dtype=torch.float64)),
        CorrelatedGaussian(0.1, torch.ones(3, 3) / 3),  # coloured noise: per-entry variance sigma^2 ||k||^2
    ],
    ids=["gaussian", "poisson", "poisson_gaussian", "gamma", "correlated_gaussian"],
)
def test_subtracting_the_noise_term_estimates_the_risk(noise):
    physics = Denoising(noise=noise)
    mean, se = gap_statistics(physics, clean(), f_nonlinear, subtract_noise=True)
    assert abs(mean) < 4 * se, (mean, se)


def test_subtracted_noise_term_ignores_unacquired_entries():
    # inpainting zero-fills unmeasured pixels: they carry no noise, so nothing is subtracted there
    mask = (torch.arange(16).reshape(1, 1, 4, 4) % 3 != 0).double()
    physics = Inpainting(mask, noise=Gaussian(0.2))
    mean, se = gap_statistics(physics, clean(), f_nonlinear, subtract_noise=True)
    assert abs(mean) < 4 * se, (mean, se)
    mean, se = gap_statistics(physics, clean(), f_nonlinear)
    expected = 0.04 * float(mask.mean())  # the loss averages over every entry, noise only on the acquired ones
    assert abs(mean - expected) < 4 * se, (mean, expected, se)


def test_minimiser_is_the_posterior_mean_direction():
    # the N2N value ranks two estimators like the supervised risk does (identity with a common constant)
    physics = Denoising(noise=Gaussian(0.3))
    g = torch.Generator().manual_seed(0)
    x = 0.5 + 0.1 * torch.randn(4000, 1, 4, 4, generator=g, dtype=torch.float64)
    ya, yb = physics(x, generator=g), physics(x, generator=g)
    def shrink(y, physics):
        return 0.5 + (0.01 / 0.1) * (y - 0.5)  # the Wiener filter, E[x | y]
    def identity(y, physics):
        return y
    loss = Noise2Noise()
    assert float(loss(ya, physics, shrink, y2=yb)) < float(loss(ya, physics, identity, y2=yb))


# ---------------------------------------------------------------------- contract
def test_scalar_gradient_one_evaluation_and_no_in_place_change():
    physics = Denoising(noise=Gaussian(0.1))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 8, 8, generator=g)
    y, y2 = physics(x, generator=g), physics(x, generator=g)
    y_before, y2_before = y.clone(), y2.clone()
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    calls = []

    def model(y, physics):
        calls.append(1)
        return net(y)

    value = (Noise2Noise() + 0.5 * MC())(y, physics, model, y2=y2)  # the terms share f(y)
    assert value.ndim == 0 and len(calls) == 1
    value.backward()
    assert net.weight.grad is not None and float(net.weight.grad.abs().sum()) > 0
    assert torch.equal(y, y_before) and torch.equal(y2, y2_before)


def test_missing_or_mismatched_second_measurement():
    physics = Denoising(noise=Gaussian(0.1))
    y = torch.rand(2, 1, 4, 4)
    def model(y, physics):
        return y
    with pytest.raises(ValueError, match="y2"):
        Noise2Noise()(y, physics, model)
    with pytest.raises(ValueError, match="shape"):
        Noise2Noise()(y, physics, model, y2=torch.rand(2, 1, 4, 5))
    with pytest.raises(ValueError, match="Tensor"):
        Noise2Noise()(y, physics, model, y2=[1.0])


def test_subtract_noise_needs_a_known_noise_model():
    y = torch.rand(2, 1, 4, 4)
    def model(y, physics):
        return y
    with pytest.raises(ValueError, match="noise"):
        Noise2Noise(subtract_noise=True)(y, Denoising(), model, y2=y.clone())
    # without subtraction the noise model is not read at all (unknown noise is fine)
    assert float(Noise2Noise()(y, Denoising(), model, y2=y.clone())) == 0.0
    with pytest.raises(ValueError, match="bool"):
        Noise2Noise(subtract_noise="yes")


def test_info():
    info = Noise2Noise.info
    assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (1, 1, False, True)
    assert info.unknown_separable_noise and info.unknown_coloured_noise
    assert info.noise_models is None and info.general_operator
    assert Noise2Noise().test_model(f_nonlinear) is f_nonlinear
