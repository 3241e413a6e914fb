"""The black level (camera offset) c of Poisson-Gaussian noise, Var y = γ(x − c) + σ²: the model, its estimate, and
PG-URE and UNSURE with it.

Statistical checks compare Monte-Carlo means with their expected values within a few standard errors estimated from
the same draws; where a check is meant to catch the offset being ignored, it also asserts that the bias it would
leave is many standard errors large.
"""

from __future__ import annotations

import math

import pytest
import torch

from selfinv import _random
from selfinv.losses.sure import SURE
from selfinv.losses.unsure import UNSUREPoissonGaussian
from selfinv.noise import NOISE_MODELS, PoissonGaussian, describe, estimate
from selfinv.physics import Denoising, Inpainting
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def mean_and_se(v: torch.Tensor) -> tuple[float, float]:
    v = v.detach()
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


# ------------------------------------------------------------------------------------------------ the model
def test_monte_carlo_mean_and_variance_with_per_sample_offsets():
    """y = c + γ P((z − c)/γ) + σ ε: mean z and variance γ(z − c) + σ², per sample, within 5 standard errors; below
    the black level no photon is counted (mean c, variance σ²)."""
    gain = torch.tensor([0.02, 0.05, 0.1], dtype=F64)
    sigma = torch.tensor([0.0, 0.03, 0.01], dtype=F64)
    offset = torch.tensor([0.05, 0.2, 0.0], dtype=F64)
    noise = PoissonGaussian(gain, sigma, offset)
    n = 20_000
    z = torch.linspace(0.25, 1.0, 3 * 8, dtype=F64).reshape(3, 1, 8)
    y = noise(z.expand(3, n, 8).contiguous(), generator=gen(0))
    mean, var = y.mean(1), y.var(1)
    m4 = (y - y.mean(1, keepdim=True)).pow(4).mean(1)
    expected = gain[:, None] * (z[:, 0] - offset[:, None]) + sigma[:, None] ** 2
    torch.testing.assert_close(noise.variance(z)[:, 0], expected)
    assert float(((mean - z[:, 0]) / (expected / n).sqrt()).abs().max()) < 5
    assert float(((var - expected) / ((m4 - var**2) / n).sqrt()).abs().max()) < 5
    counts = (y[0] - 0.05) / 0.02  # σ = 0: y − c is γ times a count
    assert torch.allclose(counts, counts.round(), atol=1e-8)
    below = PoissonGaussian(0.05, 0.02, offset=0.3)
    zb = torch.full((1, n), 0.1, dtype=F64)
    yb = below(zb, generator=gen(1))
    assert abs(float(yb.mean()) - 0.3) < 5 * 0.02 / math.sqrt(n) and float(below.variance(zb)[0, 0]) == 0.02**2


def test_offset_zero_samples_exactly_as_the_model_without_offset():
    """offset=0 (the default, a float or a zero tensor) is bit for bit the Poisson-Gaussian draw γ P(z/γ) + σ ε."""
    z = torch.rand(4, 1, 8, 8, generator=gen(2), dtype=F64)
    g = gen(3)
    reference = 0.05 * _random.poisson(z / 0.05, generator=g) + 0.02 * _random.randn(tuple(z.shape), generator=g, dtype=F64,
                                                                              device=z.device)
    for noise in (PoissonGaussian(0.05, 0.02), PoissonGaussian(0.05, 0.02, 0.0),
                  PoissonGaussian(0.05, 0.02, torch.zeros(4, dtype=F64))):
        assert torch.equal(noise(z, generator=gen(3)), reference)
        assert torch.equal(noise.variance(z), 0.05 * z + 0.02**2)
    assert repr(PoissonGaussian(0.05, 0.02)) == "PoissonGaussian(gain=0.05, sigma=0.02)"
    assert describe(PoissonGaussian(0.05, 0.02)) == {"name": "poisson_gaussian", "gain": 0.05, "sigma": 0.02}


def test_a_nonzero_offset_is_shown_and_rebuilt_through_the_registry():
    noise = PoissonGaussian(0.05, 0.0, offset=0.1)
    assert repr(noise) == "PoissonGaussian(gain=0.05, sigma=0, offset=0.1)"
    d = describe(noise)
    assert d == {"name": "poisson_gaussian", "gain": 0.05, "sigma": 0.0, "offset": 0.1}
    assert repr(NOISE_MODELS[d.pop("name")](**d)) == repr(noise)


@pytest.mark.parametrize("bad", [-0.05, torch.tensor([0.1, -0.01], dtype=F64), float("nan")])
def test_a_negative_offset_is_a_one_line_error(bad):
    with pytest.raises(ValueError, match="offset") as e:
        PoissonGaussian(0.05, 0.01, offset=bad)
    assert "\n" not in str(e.value)


def test_the_config_takes_an_optional_offset():
    from selfinv.config import ConfigError, parse_config
    from selfinv.engine.physics_builders import build_noise

    noise = build_noise(parse_config({"noise": {"name": "poisson_gaussian", "gain": 0.05, "sigma": 0.0, "offset": 0.1}}))
    assert isinstance(noise, PoissonGaussian) and float(noise.offset) == 0.1
    assert float(build_noise(parse_config({"noise": {"name": "poisson_gaussian", "gain": 0.05, "sigma": 0.01}})).offset) == 0
    with pytest.raises((ConfigError, ValueError), match="offset"):
        build_noise(parse_config({"noise": {"name": "poisson_gaussian", "gain": 0.05, "sigma": 0.0, "offset": -0.1}}))


# ------------------------------------------------------------------------------------------------ the estimate
def smooth_image(b: int = 2) -> torch.Tensor:
    """(b, 1, 512, 512): the camera man of skimage.data, blurred (σ = 2 px) and scaled to [0.1, 0.9]."""
    skimage_data = pytest.importorskip("skimage.data")
    from skimage.filters import gaussian

    img = gaussian(skimage_data.camera().astype(float) / 255, 2)
    img = (img - img.min()) / (img.max() - img.min()) * 0.8 + 0.1
    return torch.from_numpy(img).to(F64)[None, None].repeat(b, 1, 1, 1)


def test_estimate_recovers_a_black_level_and_keeps_none_where_there_is_none():
    """γ = 0.02, c = 0.05, σ = 0: the estimate has offset ≈ c (25 %), σ = 0, and its variance is the true one
    γ(x − c) on the image's range; σ = 0.02 and c = 0 still give offset 0."""
    x = smooth_image()
    y = PoissonGaussian(0.02, 0.0, 0.05)(x, generator=gen(4))
    noise = estimate(y, model="poisson_gaussian")
    assert isinstance(noise, PoissonGaussian)
    assert torch.allclose(noise.offset, torch.full((2,), 0.05, dtype=F64), rtol=0.25), noise.offset
    assert torch.allclose(noise.gain, torch.full((2,), 0.02, dtype=F64), rtol=0.1) and bool((noise.sigma == 0).all())
    levels = torch.linspace(0.1, 0.9, 9, dtype=F64).repeat(2, 1)
    truth = 0.02 * (levels - 0.05)
    assert float(((noise.variance(levels) - truth) / truth).abs().max()) < 0.1
    clamped = 0.02 * levels  # the model without the black level: off by γc, 50 % at the darkest level
    assert float(((clamped - truth) / truth).abs().max()) > 0.4
    plain = estimate(PoissonGaussian(0.02, 0.02)(x, generator=gen(5)), model="poisson_gaussian")
    assert bool((plain.offset == 0).all()) and torch.allclose(plain.sigma, torch.full((2,), 0.02, dtype=F64), rtol=0.3)
    assert "offset" not in repr(plain)


# ------------------------------------------------------------------------------------------------ PG-URE
N_DRAWS, n = 20_000, 16
X = 0.5 + torch.rand(n, generator=gen(6), dtype=F64)
#: a circular 3-tap moving average: a smoother (tr W = n/3), so ignoring the offset biases PG-URE by −γc/3
W = (torch.eye(n, dtype=F64) + torch.eye(n, dtype=F64).roll(1, 0) + torch.eye(n, dtype=F64).roll(-1, 0)) / 3


def linear(W: torch.Tensor, b: float = 0.0):
    return lambda y, physics: y @ W.T + b


def affine_risk(W, b, x, var):
    """(1/n) E‖W y + b − x‖² for y with mean x and independent entries of variance var."""
    return float(((W - torch.eye(len(x), dtype=x.dtype)) @ x + b).pow(2).sum() + (var * W.pow(2).sum(0)).sum()) / len(x)


@pytest.mark.parametrize("method", ["mc", "hutchinson", "exact"])
def test_pgure_with_the_offset_is_unbiased_and_without_it_is_not(method):
    """y = c + γ P((x − c)/γ) + σ ε, f(y) = W y + b: E[PG-URE] is the risk within 4 SE with the offset; the same
    measurements read as c = 0 give the bias (γc/n)(2 tr W − n) = −γc/3, more than 8 SE."""
    gain, sigma, c = 0.2, 0.1, 0.4
    y = Denoising(noise=PoissonGaussian(gain, sigma, c))(X.expand(N_DRAWS, n), generator=gen(7))
    risk = affine_risk(W, 0.05, X, gain * (X - c) + sigma**2)
    sure = SURE(divergence=method).per_sample(y, Denoising(noise=PoissonGaussian(gain, sigma, c)), linear(W, 0.05),
                                              generator=gen(8))
    mean, se = mean_and_se(sure)
    assert abs(mean - risk) < 4 * se, (mean, risk, se)
    ignored = SURE(divergence=method).per_sample(y, Denoising(noise=PoissonGaussian(gain, sigma)), linear(W, 0.05),
                                                 generator=gen(8))
    bias = gain * c * (2 * float(W.trace()) - n) / n
    assert abs(bias) > 8 * se
    mean_ignored, se_ignored = mean_and_se(ignored)
    assert abs(mean_ignored - risk - bias) < 4 * se_ignored  # what the old model gave: biased towards smoothing


def test_pgure_per_sample_offsets_and_masked_entries():
    """Per-sample offsets (one sample without): each sample's PG-URE is unbiased; on inpainting the zero-filled
    entries carry no noise and no offset."""
    gain, sigma = 0.2, 0.1
    offsets = torch.tensor([0.0, 0.4], dtype=F64)
    mask = (torch.rand(1, n, generator=gen(9)) > 0.3).to(F64)
    physics = Inpainting(mask.reshape(1, 1, 4, 4), noise=PoissonGaussian(gain, sigma, offsets.repeat(N_DRAWS // 2)))
    y = physics(X.reshape(1, 1, 4, 4).expand(N_DRAWS, 1, 4, 4), generator=gen(10))
    assert bool((y.reshape(N_DRAWS, n)[:, mask[0] == 0] == 0).all())
    model = lambda v, physics: (v.reshape(v.shape[0], n) @ W.T).reshape(v.shape)  # noqa: E731
    sure = SURE(divergence="exact").per_sample(y, physics, model, generator=gen(11))
    for i, c in enumerate(offsets.tolist()):
        m, var = mask[0], mask[0] * (gain * (X - c) + sigma**2)  # y = M(noisy x): mean M x, variance M var
        MWM = m[:, None] * W * m[None, :]  # h(y) = M W y = M W M y
        risk = float((MWM @ X - m * X).pow(2).sum() + (MWM.pow(2).sum(0) * var).sum()) / n
        mean, se = mean_and_se(sure[i::2])
        assert abs(mean - risk) < 4 * se, (c, mean, risk, se)


def test_offset_zero_gives_the_same_loss_bit_for_bit():
    """A zero offset (float, tensor, or a per-sample tensor that is zero for this sample) changes nothing."""
    gain, sigma = 0.2, 0.1
    y = Denoising(noise=PoissonGaussian(gain, sigma))(X.expand(8, n), generator=gen(12))
    model = lambda v, physics: torch.tanh(v @ W.T) + 0.1 * v**2  # noqa: E731
    for method in ("mc", "exact"):
        ref = SURE(divergence=method).per_sample(y, Denoising(noise=PoissonGaussian(gain, sigma)), model,
                                                 generator=gen(13)).detach()
        for offset in (0.0, torch.zeros(8, dtype=F64)):
            out = SURE(divergence=method).per_sample(y, Denoising(noise=PoissonGaussian(gain, sigma, offset)), model,
                                                     generator=gen(13)).detach()
            assert torch.equal(out, ref)
        mixed = torch.tensor([0.0, 0.3] * 4, dtype=F64)  # the offset path, with c = 0 on the even samples
        out = SURE(divergence=method).per_sample(y, Denoising(noise=PoissonGaussian(gain, sigma, mixed)), model,
                                                 generator=gen(13)).detach()
        assert torch.equal(out[0::2], ref[0::2]) and not torch.equal(out[1::2], ref[1::2])


# ------------------------------------------------------------------------------------------------ UNSURE
def test_unsure_poisson_gaussian_starts_from_the_black_level_and_keeps_the_variance_non_negative():
    """On black-level data the data-driven start has the negative level −γc (the variance line γ(y − c)), and the
    ascent keeps η_σ ≥ −η_γ c₀; a checkpoint without the black-level buffer still loads."""
    x = smooth_image(4)[..., 100:356, 100:356]  # a 256×256 crop with levels 0.1 … 0.9
    y = PoissonGaussian(0.02, 0.0, 0.1)(x, generator=gen(14))
    physics = Denoising()
    loss = UNSUREPoissonGaussian(step_size=10.0, divergence="hutchinson")
    loss(y, physics, lambda v, p: 0 * v, generator=gen(15))  # the first training step: div = 0 keeps the start
    c0 = float(loss.black_level)
    assert abs(c0 / 0.1 - 1) < 0.25, c0
    assert abs(float(loss.eta[0]) / 0.02 - 1) < 0.1 and float(loss.eta[1]) < 0 and float(loss.sigma) == 0
    torch.testing.assert_close(loss.eta[1], -loss.eta[0] * c0)  # the start is the line γ(y − c₀)
    for _ in range(3):  # div < 0 pushes η_σ down as hard as it can: it stops at the bound, η_γ stays > 0
        loss(y, physics, lambda v, p: -v, generator=gen(16))
        assert float(loss.eta[0]) > 0
        torch.testing.assert_close(loss.eta[1], -loss.eta[0] * c0, rtol=1e-12, atol=0)
    state = {k: v for k, v in loss.state_dict().items() if k != "black_level"}
    restored = UNSUREPoissonGaussian()
    restored.load_state_dict(state)
    assert float(restored.black_level) == 0 and torch.equal(restored.eta, loss.eta)


# ------------------------------------------------------------------------------------------------ the engine
def test_measured_frames_carry_their_own_black_level_into_the_patches(tmp_path):
    """noise: estimate on frames with a black level: the config records the median model with its offset, every
    patch carries its frame's offset (``noise.offset``) and the physics the loss builds from a patch has it."""
    import numpy as np

    from selfinv.config import parse_config
    from selfinv.engine.build import build_experiment
    from tests.cli.common import tiny_denoising

    folder = tmp_path / "raw"
    folder.mkdir()
    x = torch.linspace(0.25, 1.0, 256, dtype=F64).repeat(1, 1, 256, 1)
    offsets = [0.1, 0.2]
    for i, c in enumerate(offsets):
        y = PoissonGaussian(0.05, 0.002, c)(x, generator=gen(20 + i))
        np.save(folder / f"frame{i}.npy", y[0].numpy().astype(np.float32))
    cfg = tiny_denoising()
    cfg["data"] = {"source": "measurements", "path": str(folder), "patch_size": 32, "normalization": "none",
                   "val_fraction": 0.0}
    cfg["noise"] = {"name": "estimate", "model": "poisson_gaussian"}
    exp = build_experiment(parse_config(cfg))
    per_frame = exp.dataset.params["noise.offset"]
    assert torch.allclose(per_frame.double(), torch.tensor(offsets, dtype=F64), rtol=0.25), per_frame
    assert abs(exp.cfg.noise.offset / float(per_frame.double().median()) - 1) < 1e-6
    assert "black level c" in exp.noise_estimate.summary()
    assert {float(exp.train[i].params["noise.offset"]) for i in range(len(exp.train))} == {float(v) for v in per_frame}
    patch = exp.train[0]
    physics = exp.train.make_physics({k: v[None] for k, v in patch.params.items()})
    assert float(physics.noise.offset.reshape(-1)[0]) == float(patch.params["noise.offset"])
