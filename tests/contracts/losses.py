"""The registry of every loss for the contract tests: one entry per registered loss name.

Each case builds the loss, a physics it accepts (with per-sample noise parameters where the loss reads
the noise model) and the model it needs (most losses take any network; blind-spot and autoencoder
losses need their architectures), and states what its test-time estimator returns for a known model
(``estimate``). A new loss adds one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from selfinv.noise import Gamma, Gaussian, Poisson, PoissonGaussian


class TinyNet(nn.Module):
    """A small CNN called as model(y, physics), for contract tests."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, channels, 3, padding=1))

    def forward(self, y, physics=None):
        return y + self.net(y)


class Counting(nn.Module):
    """Wraps a model and counts its calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        for name in ("blind_spot", "bottleneck_dim", "predict_variance"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def forward(self, y, physics=None):
        self.calls += 1
        return self.model(y, physics)


def model_itself(f, y, physics):
    """The estimate of a loss whose test-time estimator is the network: f(y)."""
    return f(y, physics)


@dataclass(frozen=True)
class LossCase:
    #: builds (loss, physics, model) for a batch size
    build: Callable[[int], tuple]
    #: the loss needs an independent second measurement y2
    needs_y2: bool = False
    #: image size of the test batch
    size: tuple[int, int] = (8, 8)
    #: ``estimate(f, y, physics)``: the expected output of ``loss.test_model(f)(y, physics)`` for a pointwise
    #: affine model f (the mean over the estimator's own random draws, if it makes any)
    estimate: Callable = model_itself
    #: the estimator draws random numbers (its output for a model that reads its input varies between calls)
    random_estimator: bool = False


def _denoising(noise):
    from selfinv.physics import Denoising

    return Denoising(noise=noise)


def _sigma(b):
    return Gaussian(torch.linspace(0.05, 0.2, b, dtype=torch.float64))


def case(
    make_loss: Callable[[], nn.Module],
    noise: Callable[[int], object] = _sigma,
    model=TinyNet,
    physics: Callable[[int, object], object] | None = None,
    **kw,
) -> LossCase:
    make_physics = physics or (lambda b, n: _denoising(n))
    return LossCase(lambda b: (make_loss(), make_physics(b, noise(b)), model()), **kw)


def _masks(b, noise):
    """Per-sample random inpainting masks (a multi-operator family)."""
    from selfinv.physics.samplers import BernoulliMaskSampler

    return BernoulliMaskSampler(8, p=0.6)(b, generator=torch.Generator().manual_seed(7), noise=noise)


def _moi():
    from selfinv.losses.moi import MOI
    from selfinv.physics.samplers import BernoulliMaskSampler

    return MOI(BernoulliMaskSampler(8, p=0.6))


def _loss(module: str, name: str, **kwargs):
    def make():
        import importlib

        return getattr(importlib.import_module(f"selfinv.losses.{module}"), name)(**kwargs)

    return make


def _noisier2noise_estimate(alpha):
    def estimate(f, y, physics):
        # E[((1 + a^2) f(z) - z) / a^2] with E[z | y] = y, and E[f(z)] = f(y) for an affine f
        return ((1 + alpha**2) * f(y, physics) - y) / alpha**2

    return estimate


def _tweedie_estimate(f, y, physics):
    """Tweedie with score f (the formulas of selfinv.losses.score.tweedie, written out)."""
    from selfinv.losses.base import noise_param
    from selfinv.losses.score import gamma_max_bound

    noise = physics.noise
    if isinstance(noise, Gaussian):
        return y + noise_param(noise, "sigma", y) ** 2 * f(y, physics)
    if isinstance(noise, Poisson):  # the default "mean" formula
        zeta = noise_param(noise, "gain", y)
        return (y + zeta) * torch.exp(zeta * f(y + zeta / 2, physics))
    ell = noise_param(noise, "shape", y)
    den = (ell - 1) - y * f(y, physics)
    out = ell * y / den
    # the case stays where the guard is inactive: a positive denominator and an estimate below the bound
    assert bool((den > 0).all()) and bool((out < gamma_max_bound(y, ell)).all()), "the Gamma case left the formula's range"
    return out


def _jinvariant_zero_estimate(f, y, physics):
    # Noise2Self's J-invariant average with "zero" replacement: each output pixel comes from a pass in which that
    # pixel was set to 0, so a pointwise model gives f(0) everywhere, whatever y
    return f(torch.zeros_like(y), physics)


def _blindspot_net():
    from selfinv.models.blindspot import BlindSpotNet

    return BlindSpotNet(1, 1)


def _autoencoder_net():
    from selfinv.models.autoencoder import Autoencoder

    return Autoencoder(1)


def _transformed(name, consistency=None):
    def make():
        from selfinv.losses import ei
        from selfinv.transforms import Shift

        cls = getattr(ei, name)
        return cls(Shift()) if consistency is None else cls(Shift(), consistency=consistency)

    return make


LOSS_CASES: dict[str, LossCase] = {
    "supervised": case(_loss("supervised", "Supervised")),
    "mc": case(_loss("supervised", "MC")),
    "noise2noise": case(_loss("n2n", "Noise2Noise"), needs_y2=True),
    # R2R averages f over recorrupted y1 with E[y1 | y] = y: f(y) for an affine f
    "r2r": case(_loss("r2r", "R2R"), random_estimator=True),
    "r2r_poisson": case(_loss("r2r", "R2R"), noise=lambda b: Poisson(torch.linspace(0.05, 0.2, b, dtype=torch.float64)),
                        random_estimator=True),
    "r2r_gamma": case(_loss("r2r", "R2R"), noise=lambda b: Gamma(torch.linspace(5.0, 20.0, b, dtype=torch.float64)),
                      random_estimator=True),
    # alpha != 1, so that 1/alpha and 1/alpha^2 differ
    "noisier2noise": case(_loss("noisier2noise", "Noisier2Noise", alpha=0.5), estimate=_noisier2noise_estimate(0.5),
                          random_estimator=True),
    "sure": case(_loss("sure", "SURE")),
    "sure_poisson": case(_loss("sure", "SURE"), noise=lambda b: Poisson(torch.linspace(0.05, 0.2, b, dtype=torch.float64))),
    "unsure": case(_loss("unsure", "UNSURE")),
    "unsure_covariance": case(_loss("unsure", "UNSURECovariance")),
    "unsure_pg": case(
        _loss("unsure", "UNSUREPoissonGaussian"),
        noise=lambda b: PoissonGaussian(0.05, torch.linspace(0.01, 0.05, b, dtype=torch.float64)),
    ),
    "noise2score": case(_loss("score", "Noise2Score"), estimate=_tweedie_estimate),
    "noise2score_poisson": case(
        _loss("score", "Noise2Score"), noise=lambda b: Poisson(torch.linspace(0.05, 0.2, b, dtype=torch.float64)),
        estimate=_tweedie_estimate,
    ),
    "noise2score_gamma": case(
        _loss("score", "Noise2Score"), noise=lambda b: Gamma(torch.linspace(10.0, 20.0, b, dtype=torch.float64)),
        estimate=_tweedie_estimate,
    ),
    "noise2void": case(_loss("masking", "Noise2Void")),
    "noise2void_struct": case(_loss("masking", "Noise2Void", struct_axis="horizontal", struct_span=3)),
    "noise2self": case(_loss("masking", "Noise2Self"), estimate=_jinvariant_zero_estimate),
    "neighbor2neighbor": case(_loss("neighbor", "Neighbor2Neighbor")),
    "blind_spot": case(_loss("blindspot", "BlindSpot"), model=_blindspot_net),
    "autoencoder": case(_loss("autoencoder", "AutoencoderLoss"), model=_autoencoder_net),
    "splitting": case(_loss("splitting", "Splitting"), physics=_masks),
    "splitting_sure": case(_loss("splitting", "Splitting", consistency="sure"), physics=_masks),
    "splitting_r2r": case(_loss("splitting", "Splitting", consistency="r2r"), physics=_masks),
    "moi": case(_moi, physics=_masks),
    "ei": case(_transformed("EI"), physics=_masks),
    "rei": case(_transformed("REI"), physics=_masks),
    "rei_r2r": case(_transformed("REI", consistency="r2r"), physics=_masks, random_estimator=True),  # R2R's estimator
}
