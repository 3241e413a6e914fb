"""Contract tests run on every registered noise model (``selfinv.noise.NOISE_MODELS``).

A noise model ``noise(z, generator=None) -> y`` draws measurements with mean z and the per-entry variance
``noise.variance(z)`` it states, reproducibly from the generator; its levels are floats or per-sample (B,)
tensors that broadcast over the rest of the shape; negative levels, a batch of the wrong size, complex
input it cannot handle and negative input to count-type noise are one-line ValueErrors. The moments are
checked by Monte Carlo with tolerances of 5 standard errors. A new noise model adds one entry to ``CASES``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import torch

from selfinv.noise import NOISE_MODELS, describe
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


@dataclass(frozen=True)
class Case:
    #: the noise levels (constructor arguments), one value per sample of a batch of 3 (all valid, all different)
    levels: dict[str, tuple[float, float, float]]
    #: other constructor arguments
    extra: dict = field(default_factory=dict)
    #: whether the model can simulate measurements (``Unknown`` cannot, by design)
    simulates: bool = True


CASES: dict[str, Case] = {
    "gaussian": Case({"sigma": (0.05, 0.1, 0.3)}),
    "poisson": Case({"gain": (0.02, 0.05, 0.2)}),
    "poisson_gaussian": Case({"gain": (0.02, 0.05, 0.2), "sigma": (0.1, 0.02, 0.05), "offset": (0.1, 0.0, 0.05)}),
    "gamma": Case({"shape": (1.0, 4.0, 20.0)}),
    "correlated_gaussian": Case(
        {"sigma": (0.05, 0.1, 0.3)}, {"kernel": torch.tensor([[0.1, 0.5, 0.2], [0.3, 1.0, 0.0], [0.0, 0.2, 0.4]])}
    ),
    "unknown": Case({}, {"separable": True}, simulates=False),
    "estimate": Case({}, {"model": "poisson_gaussian", "method": "mad"}, simulates=False),
}
NAMES = list(CASES)
SIMULATED = [n for n in NAMES if CASES[n].simulates]
B = 3


def build(name: str, per_sample: bool = True, sample: int = 0):
    """The case's model with (B,) levels, or with the scalar levels of one ``sample``."""
    case = CASES[name]
    levels = {k: torch.tensor(v, dtype=F64) if per_sample else v[sample] for k, v in case.levels.items()}
    return NOISE_MODELS[name](**levels, **case.extra)


def clean(n: int = 1, dtype: torch.dtype = F64) -> torch.Tensor:
    """A (B, n, 4, 4) clean signal with values in [0.2, 1], different for every pixel, the same along axis 1."""
    z = torch.linspace(0.2, 1.0, B * 16, dtype=F64).reshape(B, 1, 4, 4)
    return z.expand(B, n, 4, 4).to(dtype).contiguous()


def test_every_registered_noise_model_has_a_case():
    assert set(CASES) == set(NOISE_MODELS), f"noise models without a case: {sorted(set(NOISE_MODELS) - set(CASES))}"


@pytest.mark.parametrize("name", SIMULATED)
def test_monte_carlo_mean_and_variance_match_each_samples_levels(name):
    """N draws of every pixel (axis 1): the mean is z and the variance that of the scalar model with the
    sample's own levels, within 5 standard errors (of the mean: sqrt(v/N); of the variance: from the 4th
    central moment, sqrt((m4 - v^2)/N))."""
    n = 4000
    z = clean(n)
    y = build(name)(z, generator=gen(0))
    mean, var = y.mean(1), y.var(1)
    m4 = (y - y.mean(1, keepdim=True)).pow(4).mean(1)
    expected = torch.cat([build(name, per_sample=False, sample=b).variance(z[b : b + 1, :1])[:, 0] for b in range(B)])
    z_mean = (mean - z[:, 0]) / (expected / n).sqrt()
    z_var = (var - expected) / ((m4 - var**2).clamp_min(1e-30) / n).sqrt()
    assert float(z_mean.abs().max()) < 5, f"{name}: mean off by {float(z_mean.abs().max()):.1f} standard errors"
    assert float(z_var.abs().max()) < 5, f"{name}: variance off by {float(z_var.abs().max()):.1f} standard errors"


@pytest.mark.parametrize("name", SIMULATED)
def test_variance_broadcasts_per_sample_levels(name):
    z = clean(2)
    v = build(name).variance(z)
    assert v.shape == z.shape and bool((v >= 0).all())
    for b in range(B):
        torch.testing.assert_close(v[b : b + 1], build(name, per_sample=False, sample=b).variance(z[b : b + 1]))
    assert not torch.allclose(v[0], v[2])  # the samples' levels differ, so do their variances


@pytest.mark.parametrize("name", SIMULATED)
def test_reproducible_from_the_generator(name):
    noise, z = build(name), clean(2)
    a, b, c = (noise(z, generator=gen(s)) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, z)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("name", SIMULATED)
def test_keeps_shape_and_dtype_and_handles_complex_as_it_says(name, dtype):
    noise, z = build(name), clean(2, dtype)
    y = noise(z, generator=gen(0))
    assert y.shape == z.shape and y.dtype == dtype
    zc = torch.complex(z, z)
    if noise.supports_complex:
        yc = noise(zc, generator=gen(0))
        assert yc.dtype == zc.dtype and yc.shape == zc.shape and bool((yc.imag != z).any())
    else:
        with pytest.raises(ValueError, match="real"):
            noise(zc, generator=gen(0))


@pytest.mark.parametrize("name", SIMULATED)
def test_count_type_noise_refuses_negative_input(name):
    noise, z = build(name), clean(1)
    z[1, 0, 2, 2] = -0.1
    if noise.needs_nonnegative:
        with pytest.raises(ValueError, match="non-negative"):
            noise(z, generator=gen(0))
    else:
        assert noise(z, generator=gen(0)).shape == z.shape


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].levels])
def test_refuses_negative_levels_and_a_wrong_batch(name):
    case = CASES[name]
    cls = NOISE_MODELS[name]
    for level in case.levels:
        for bad in (-0.1, torch.tensor([0.1, -0.1, 0.2], dtype=F64)):
            levels = {k: (bad if k == level else v[0]) for k, v in case.levels.items()}
            with pytest.raises(ValueError, match=level) as e:
                cls(**levels, **case.extra)
            assert "\n" not in str(e.value)
    if case.simulates:
        with pytest.raises(ValueError):
            build(name)(clean(1)[:2], generator=gen(0))  # 3 per-sample levels, a batch of 2


def test_unknown_noise_cannot_be_simulated():
    for name in (n for n in NAMES if not CASES[n].simulates):
        with pytest.raises(ValueError, match="cannot be simulated"):
            build(name)(clean(1), generator=gen(0))


@pytest.mark.parametrize("name", NAMES)
def test_describe_rebuilds_the_model_through_the_registry(name):
    """``describe`` (what a run's config records) names the registry entry and the constructor's levels."""
    noise = build(name, per_sample=False)
    d = describe(noise)
    rebuilt = NOISE_MODELS[d.pop("name")](**{**CASES[name].extra, **d})
    assert type(rebuilt) is type(noise) and repr(rebuilt) == repr(noise)
    for k in CASES[name].levels:
        assert math.isclose(float(getattr(rebuilt, k)), float(getattr(noise, k)))
