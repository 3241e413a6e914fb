"""The identifiability advisor on a config (``selfinv check``, ``compare --losses all-applicable``): the config's
operator (or operator family) on images of a test size, its transforms, and :func:`selfinv.advisor.advise`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from selfinv.advisor import Advice, advise
from selfinv.config import Config, ConfigError
from selfinv.engine.data import build_data
from selfinv.engine.images import image_channels
from selfinv.engine.model_builders import build_transform, transforms_of
from selfinv.engine.noise_estimate import placeholder
from selfinv.engine.physics_builders import build_noise, build_physics
from selfinv.losses import LOSSES

__all__ = ["ConfigAdvice", "applicable_losses", "config_advice"]


@dataclass
class ConfigAdvice:
    """The advisor's verdicts on a config (:func:`config_advice`)."""

    cfg: Config  # resolved, for measurement sets
    advice: Advice
    x_shape: tuple[int, int, int]  # the image shape of the rank tests
    family: str  # the operator family tested, as words to append to the physics name ("" for one operator)
    noise_estimate: Any = None  # noise: {name: estimate}: the estimate (selfinv.engine.noise_estimate.NoiseEstimate)

    @property
    def enabled_by_estimate(self) -> list[str]:
        """With an estimated noise: the applicable losses that need the noise level (their facts do not tolerate
        unknown noise), i.e. those the estimate makes usable."""
        if self.noise_estimate is None:
            return []
        return [v.loss for v in self.advice.verdicts if v.applicable and LOSSES[v.loss].example().info.noise_models
                is not None and not LOSSES[v.loss].example().info.unknown_separable_noise]


def _finite(t, shape) -> bool:
    try:
        t.elements(shape[-2:])
        return True
    except ValueError:
        return False


def config_advice(cfg: Config, size: int | None = None, transforms: Sequence[Any] = (), noise_unknown: bool = False,
                  on_skipped: Callable[[Any], None] | None = None) -> ConfigAdvice:
    """Which losses can learn from the config's measurements: its operator on ``size``-pixel images (default
    ``min(patch_size, 32)``, 16 for tomography, whose test is slow) or a measurement set's own operators (the
    first 32), the transforms of its losses and ``transforms`` (descriptions for
    :func:`~selfinv.engine.model_builders.build_transform`, named ``--transform[i]``). Transforms without a
    finite list of elements are skipped (``on_skipped(transform)``). With ``noise: {name: estimate}`` the noise is
    estimated from the training measurements (simulated ones for simulated data) and the advice is for it."""
    built = transforms_of(cfg)
    for i, t in enumerate(transforms):
        built.append(build_transform(t, f"--transform[{i}]"))
    estimated = None
    if cfg.data.source == "measurements":
        data = build_data(cfg)
        cfg, op, x_shape, estimated = data.cfg, data.physics, data.img_shape, data.noise_estimate
        ds = data.dataset
        # per-sample operators in the file: the family is the first (up to) 32 of them; per-sample noise
        # parameters (noise: estimate gives each measurement its own) do not make an operator family
        ops = {k: v[:32] for k, v in ds.params.items() if not k.startswith("noise.")}
        sampler = ds.make_physics(ops) if ops else None
    else:
        n = size or min(cfg.data.patch_size or 32, 16 if cfg.physics.name in ("tomography", "fanbeam_tomography") else 32)
        if n < 4:
            raise ConfigError("check: --size must be >= 4")
        x_shape = (image_channels(cfg), n, n)
        if placeholder(build_noise(cfg)) is not None:  # noise: estimate, from the simulated measurements
            data = build_data(cfg)
            cfg, estimated = data.cfg, data.noise_estimate
        op, sampler = build_physics(cfg, x_shape, build_noise(cfg))
    usable, seen = [], set()
    for t in built:
        if repr(t) in seen:
            continue
        seen.add(repr(t))
        if _finite(t, x_shape):
            usable.append(t)
        elif on_skipped is not None:
            on_skipped(t)
    fixed_family = sampler is not None and not callable(getattr(sampler, "sample", None))  # a measurement set's operators
    pairs = cfg.data.pairs or cfg.data.pairs_path is not None  # simulated, or second frames from files
    advice = advise(op, sampler=sampler, transforms=usable, pairs=pairs, noise_known=not noise_unknown,
                    x_shape=tuple(x_shape), **({"n_operators": None} if fixed_family else {}))
    if fixed_family:
        family = f" with the measurement set's {sampler.batch_size} operators"
    elif sampler is not None:
        family = f" with per-sample operators ({cfg.physics.sampler.name})"
    elif cfg.physics.sampler is not None:
        family = f" with one fixed operator ({cfg.physics.sampler.name}: every draw the same)"
    else:
        family = ""
    return ConfigAdvice(cfg, advice, tuple(x_shape), family, estimated)


def applicable_losses(cfg: Config) -> list[str]:
    """The losses the advisor finds applicable to a config's simulated data (32-pixel images at most), after
    ``supervised`` (the reference, with ground truth)."""
    if cfg.data.source == "measurements":
        raise ValueError("--losses all-applicable needs simulated data (data.source embedded or images)")
    n = min(cfg.data.patch_size or 32, 32)
    shape = (image_channels(cfg), n, n)
    op, sampler = build_physics(cfg, shape, build_noise(cfg))
    advice = advise(op, sampler=sampler, transforms=[t for t in transforms_of(cfg) if _finite(t, shape)],
                    pairs=cfg.data.pairs, x_shape=shape)
    return ["supervised", *advice.applicable]
