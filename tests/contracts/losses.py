"""The registry of every loss for the contract tests: one entry per registered loss name.

Each case builds the loss, a physics it accepts (with per-sample noise parameters where the loss reads
the noise model) and the model it needs (most losses take any network; blind-spot and autoencoder
losses need their architectures). A new loss adds one entry here.
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


@dataclass(frozen=True)
class LossCase:
    #: builds (loss, physics, model) for a batch size
    build: Callable[[int], tuple]
    #: the loss needs an independent second measurement y2
    needs_y2: bool = False
    #: image size of the test batch
    size: tuple[int, int] = (8, 8)


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
    "r2r": case(_loss("r2r", "R2R")),
    "r2r_poisson": case(_loss("r2r", "R2R"), noise=lambda b: Poisson(torch.linspace(0.05, 0.2, b, dtype=torch.float64))),
    "r2r_gamma": case(_loss("r2r", "R2R"), noise=lambda b: Gamma(torch.linspace(5.0, 20.0, b, dtype=torch.float64))),
    "noisier2noise": case(_loss("noisier2noise", "Noisier2Noise")),
    "sure": case(_loss("sure", "SURE")),
    "sure_poisson": case(_loss("sure", "SURE"), noise=lambda b: Poisson(torch.linspace(0.05, 0.2, b, dtype=torch.float64))),
    "unsure": case(_loss("unsure", "UNSURE")),
    "unsure_covariance": case(_loss("unsure", "UNSURECovariance")),
    "unsure_pg": case(
        _loss("unsure", "UNSUREPoissonGaussian"),
        noise=lambda b: PoissonGaussian(0.05, torch.linspace(0.01, 0.05, b, dtype=torch.float64)),
    ),
    "noise2score": case(_loss("score", "Noise2Score")),
    "noise2void": case(_loss("masking", "Noise2Void")),
    "noise2self": case(_loss("masking", "Noise2Self")),
    "neighbor2neighbor": case(_loss("neighbor", "Neighbor2Neighbor")),
    "blind_spot": case(_loss("blindspot", "BlindSpot"), model=_blindspot_net),
    "autoencoder": case(_loss("autoencoder", "AutoencoderLoss"), model=_autoencoder_net),
    "splitting": case(_loss("splitting", "Splitting"), physics=_masks),
    "splitting_sure": case(_loss("splitting", "Splitting", consistency="sure"), physics=_masks),
    "splitting_r2r": case(_loss("splitting", "Splitting", consistency="r2r"), physics=_masks),
    "moi": case(_moi, physics=_masks),
    "ei": case(_transformed("EI"), physics=_masks),
    "rei": case(_transformed("REI"), physics=_masks),
    "rei_r2r": case(_transformed("REI", consistency="r2r"), physics=_masks),
}
