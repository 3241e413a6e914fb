"""``noise: {name: estimate}``: the noise model read off a data set's measurements (:func:`selfinv.noise.estimate`).

:func:`estimate_dataset_noise` estimates it per measurement and as one concrete noise section (the median of the
per-measurement parameters), which replaces ``estimate`` in the resolved config, so that the run's
``config.yaml``, its report and its checkpoints hold a concrete model and ``reconstruct``/``evaluate`` need no
second estimate. For training, a set of measured frames keeps each frame's own estimate (the noise of real frames
varies: the gain of the 18 W2S frames spans 0.015–0.14): :func:`data_with_estimated_noise` gives the losses
that need the level (SURE, PURE, R2R, ...) the parameters of the frame each sample or patch comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from selfinv.config import Config, ConfigError, parse_config
from selfinv.engine.physics_builders import build_noise
from selfinv.noise import Estimate, Gaussian, NoiseModel, PoissonGaussian, describe, estimate

__all__ = ["NoiseEstimate", "data_with_estimated_noise", "estimate_dataset_noise", "placeholder"]

#: the most measurements read for the estimate (the first ones of the data set); sets of up to this many
#: measurements get a per-measurement noise model for training
MAX_MEASUREMENTS = 1024


@dataclass
class NoiseEstimate:
    """The noise of a data set's measurements: per measurement (``per_sample``, (N,) parameters) and as one model
    (``noise``, the medians)."""

    per_sample: NoiseModel
    noise: NoiseModel
    n: int
    requested: str  # the model asked for: auto, gaussian or poisson_gaussian
    black_level: torch.Tensor | None = None  # (N,) c of Var = γ(x − c) + σ², the model's offset (0: none)

    def black_level_note(self) -> str | None:
        """One line when some measurements have a black level: a variance line with a significantly negative
        intercept, Var = γ(x − c) (a camera offset, pedestal, Foi et al. 2008), which the Poisson-Gaussian model
        now carries as its ``offset`` c (the losses that use the noise level read y − c)."""
        if self.black_level is None or not bool((self.black_level > 0).any()):
            return None
        c = self.black_level[self.black_level > 0]
        return (f"black level c = {float(c.median()):.3g} (range {float(c.min()):.3g} to {float(c.max()):.3g}) "
                f"estimated on {c.numel()} of {self.n} measurements: Var = γ(x − c) + σ², the Poisson-Gaussian "
                "losses (PG-URE) use y − c")

    @property
    def section(self) -> dict:
        """``noise`` as a config section (``{"name": "gaussian", "sigma": ...}``)."""
        return describe(self.noise)

    def summary(self) -> str:
        """One line: the model, each parameter's median and range over the measurements."""
        parts = []
        for name in self.per_sample._shown():
            t = getattr(self.per_sample, name).to(torch.float64)
            parts.append(f"{'σ' if name == 'sigma' else name} {float(t.median()):.4g} (range {float(t.min()):.4g} to "
                         f"{float(t.max()):.4g})")
        chosen = "" if self.requested != "auto" else (
            " — the gain is significant (Poisson-Gaussian)" if isinstance(self.noise, PoissonGaussian)
            else " — no significant signal-dependent part (Gaussian)")
        line = (f"estimated noise: {type(self.noise).__name__}, {', '.join(parts)}; median over {self.n} "
                f"measurement{'s' if self.n != 1 else ''}{chosen}")
        note = self.black_level_note()
        return line if note is None else f"{line}\n{note}"


def placeholder(noise) -> Estimate | None:
    """The :class:`~selfinv.noise.Estimate` placeholder if ``noise`` is one, else None."""
    return noise if isinstance(noise, Estimate) else None


def estimate_dataset_noise(dataset, physics, request: Estimate, img_shape: tuple[int, ...],
                           where: str = "noise") -> NoiseEstimate:
    """The noise of the first :data:`MAX_MEASUREMENTS` measurements of ``dataset`` (a measurement or simulated set
    with ``y``; its per-sample operators, when it has some, tell which entries are measured).

    The measurements must be images: those of an operator acting pixel by pixel (its ``crop_alignment`` is set:
    denoising, inpainting), or real ones of the image's shape ``img_shape`` (C, H, W) (blur); k-space, sinograms
    and compressed measurements are refused. Any problem (too small, complex with ``poisson_gaussian``, too few
    measured pixels) is one :class:`~selfinv.config.ConfigError` line naming ``where``."""
    y = dataset.y[:MAX_MEASUREMENTS]
    op0 = physics.select(0) if getattr(physics, "batch_size", None) else physics
    pixelwise = isinstance(getattr(op0, "crop_alignment", None), int)
    if not (pixelwise or (not y.is_complex() and tuple(y.shape[1:]) == tuple(img_shape))):
        raise ConfigError(f"config: {where}: estimate reads the noise from measurements that are images, not from "
                          f"{type(op0).__name__} measurements {tuple(y.shape[1:])}; give the noise model and its level")
    params = getattr(dataset, "params", None) or {}
    op = dataset.make_physics({k: v[: y.shape[0]] for k, v in params.items()}) if params else physics
    try:
        mask = op.acquired(y)
    except (ValueError, RuntimeError, TypeError):
        mask = None
    if isinstance(mask, torch.Tensor) and (mask.ndim != y.ndim or bool(mask.all())):
        mask = None
    if y.ndim not in (4, 5) or y.shape[-1] < 16 or y.shape[-2] < 16:
        raise ConfigError(f"config: {where}: estimate reads the noise from image-shaped measurements (B, C, H, W) of at "
                          f"least 16x16, got {tuple(y.shape)}; give the noise model and its level instead")
    try:
        per = estimate(y, model=request.model, mask=mask, method=request.method)
    except ValueError as e:
        raise ConfigError(f"config: {where}: {e}") from None
    black = None
    if isinstance(per, PoissonGaussian):  # the black level (significantly negative intercept) is its offset
        one = PoissonGaussian(float(per.gain.median()), float(per.sigma.median()), float(per.offset.median()))
        black = per.offset
    else:
        one = Gaussian(float(per.sigma.median()))
    return NoiseEstimate(per, one, int(y.shape[0]), request.model, black)


def data_with_estimated_noise(cfg: Config, build: Callable[[Config], Any]):
    """The data of a config whose noise is ``estimate``: ``build(cfg)`` (the data with the placeholder), the noise
    estimated from its measurements (simulated ones for simulated data, which need ``data.true_noise``), and
    ``build`` again with the concrete model in the config; the result carries the estimate (``noise_estimate``)."""
    request = placeholder(build_noise(cfg))
    if cfg.data.source != "measurements" and cfg.data.true_noise is None:
        raise ConfigError("config: noise 'estimate' reads the noise off measurements: for simulated data set "
                          "data.true_noise to the noise that corrupts them (it is then estimated from the simulated ones)")
    first = build(cfg)
    est = estimate_dataset_noise(first.dataset, first.physics, request, first.img_shape)
    data = cfg.model_dump(mode="json", exclude_unset=True)
    data["noise"] = est.section
    out = build(parse_config(data))
    out.noise_estimate = est
    _per_measurement_noise(out.dataset, est)
    return out


def _per_measurement_noise(dataset, est: NoiseEstimate) -> None:
    """Give a measurement set each measurement's own estimated noise parameters (per-sample operator parameters
    ``noise.<name>``, which patches and batches carry along), when every measurement was estimated; a set with
    other per-sample operator parameters, or simulated data (one known noise), keeps the single model."""
    from selfinv.data.datasets.measured import MeasurementDataset

    if not isinstance(dataset, MeasurementDataset) or dataset.params or est.n != len(dataset):
        return
    template = dataset.physics_template.noise
    if type(template) is not type(est.per_sample):
        return
    for name in est.per_sample._shown():  # a black level only where one was found: no zero offsets carried
        value = getattr(est.per_sample, name).to(dataset.y.dtype if not dataset.y.is_complex() else torch.float32)
        dataset.params[f"noise.{name}"] = value.reshape(len(dataset))
