"""Noise models: moments against theory (within 4 standard errors), per-sample parameters, errors, seeds."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.noise import Gamma, Gaussian, NoiseModel, Poisson, PoissonGaussian

N = 40_000  # draws per sample: the standard error of a moment is ~ 1/sqrt(N)


def per_sample(*values):
    return torch.tensor(values, dtype=torch.float64)


MODELS = {
    "gaussian": lambda: Gaussian(per_sample(0.05, 0.2, 1.0)),
    "poisson": lambda: Poisson(per_sample(0.01, 0.1, 1.0)),
    "poisson_gaussian": lambda: PoissonGaussian(per_sample(0.02, 0.1, 0.5), per_sample(0.0, 0.1, 0.3)),
    "gamma": lambda: Gamma(per_sample(0.5, 2.0, 20.0)),  # shape < 1 exercises the boosted sampler
}
CLEAN = per_sample(0.3, 0.7, 2.0)  # one clean value per sample


def draw(noise: NoiseModel, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    z = CLEAN[:, None, None].expand(3, 1, N).contiguous()
    return z, noise(z, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(MODELS))
def test_mean_and_variance_match_theory_per_sample(name):
    noise = MODELS[name]()
    z, y = draw(noise)
    y = y.flatten(1)
    mean, var = y.mean(1), y.var(1)
    theory_var = noise.variance(z).flatten(1)[:, 0]
    # the standard errors of the sample mean and the sample variance, from the data's own moments
    se_mean = (theory_var / N).sqrt()
    m4 = ((y - mean[:, None]) ** 4).mean(1)
    se_var = ((m4 - var**2) / N).sqrt()
    assert torch.all((mean - CLEAN).abs() < 4 * se_mean), (mean, CLEAN, se_mean)
    assert torch.all((var - theory_var).abs() < 4 * se_var), (var, theory_var, se_var)
    # and the three samples really have different variances (per-sample parameters were used)
    assert len(set(theory_var.tolist())) == 3


def test_variance_formulas():
    z = torch.tensor([[0.0, 1.0, 3.0]], dtype=torch.float64)
    assert torch.allclose(Gaussian(0.5).variance(z), torch.full_like(z, 0.25))
    assert torch.allclose(Poisson(0.2).variance(z), 0.2 * z)
    assert torch.allclose(PoissonGaussian(0.2, 0.5).variance(z), 0.2 * z + 0.25)
    assert torch.allclose(Gamma(4.0).variance(z), z**2 / 4)


def test_poisson_output_is_gain_times_integers():
    gain = per_sample(0.1, 0.37)
    z = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = Poisson(gain)(z, generator=torch.Generator().manual_seed(1))
    counts = y / gain[:, None, None, None]
    assert torch.allclose(counts, counts.round(), atol=1e-9)
    assert bool((counts >= 0).all())


def test_complex_gaussian_adds_sigma_to_real_and_imaginary_parts():
    z = torch.zeros(1, N, dtype=torch.complex128)
    y = Gaussian(0.3)(z, generator=torch.Generator().manual_seed(0))
    se = 0.09 * math.sqrt(2 / N)
    assert abs(float(y.real.var()) - 0.09) < 4 * se and abs(float(y.imag.var()) - 0.09) < 4 * se
    assert abs(float((y.real * y.imag).mean())) < 4 * 0.09 / math.sqrt(N)


@pytest.mark.parametrize("name", list(MODELS))
def test_seed_reproduces_the_draw(name):
    noise = MODELS[name]()
    _, a = draw(noise, seed=5)
    _, b = draw(noise, seed=5)
    _, c = draw(noise, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampling_does_not_touch_global_rng():
    state = torch.random.get_rng_state()
    for make in MODELS.values():
        draw(make())
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: Gaussian(-0.1), "sigma"),
        (lambda: Gaussian(float("nan")), "sigma"),
        (lambda: Gaussian(torch.tensor([0.1, -0.2])), "sigma"),
        (lambda: Poisson(0.0), "gain"),
        (lambda: Poisson(-1.0), "gain"),
        (lambda: PoissonGaussian(0.1, -0.1), "sigma"),
        (lambda: PoissonGaussian(0.0, 0.1), "gain"),
        (lambda: Gamma(0.0), "shape"),
        (lambda: Gamma(torch.ones(2, 2)), "shape"),
        (lambda: Gaussian("0.1"), "sigma"),
    ],
)
def test_invalid_parameters_name_the_parameter(make, param):
    with pytest.raises(ValueError, match=param):
        make()


@pytest.mark.parametrize("noise", [Poisson(0.1), PoissonGaussian(0.1, 0.1), Gamma(2.0)])
def test_count_noise_rejects_negative_nan_and_complex_input(noise):
    with pytest.raises(ValueError, match="non-negative"):
        noise(-torch.ones(1, 4))
    with pytest.raises(ValueError, match="NaN"):
        noise(torch.full((1, 4), float("nan")))
    with pytest.raises(ValueError, match="real"):
        noise(torch.ones(1, 4, dtype=torch.complex64))


def test_per_sample_parameter_must_match_batch():
    with pytest.raises(ValueError, match="batch"):
        Gaussian(per_sample(0.1, 0.2))(torch.zeros(3, 4))
    # a length-1 parameter is shared by any batch
    assert Gaussian(per_sample(0.1))(torch.zeros(3, 4), generator=torch.Generator()).shape == (3, 4)


def test_select_keeps_the_samples_parameters():
    noise = PoissonGaussian(per_sample(0.1, 0.2, 0.3), 0.05)
    sub = noise.select(torch.tensor([2, 0]))
    assert torch.equal(sub.gain, per_sample(0.3, 0.1)) and float(sub.sigma) == 0.05
    assert noise.batch_size == 3 and sub.batch_size == 2


def test_dtype_and_device_follow_the_input():
    for dtype in (torch.float32, torch.float64):
        z = torch.rand(2, 3, dtype=dtype)
        for noise in (Gaussian(0.1), Poisson(0.1), PoissonGaussian(0.1, 0.1), Gamma(3.0)):
            assert noise(z, generator=torch.Generator()).dtype == dtype
