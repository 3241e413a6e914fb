"""From a validated :class:`~selfinv.config.Config` to the objects of a run: :func:`build_experiment`.

The data (:mod:`selfinv.engine.data`), the physics (:mod:`selfinv.engine.physics_builders`) and the loss and
model (:mod:`selfinv.engine.model_builders`) are built only through the registries; the schema, YAML I/O and
one-line errors live in :mod:`selfinv.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selfinv.config import Config, ConfigError, parse_config
from selfinv.engine.data import absolute_paths, build_data, split_data
from selfinv.engine.model_builders import (
    build_loss,
    build_model,
    resolve_pretrained,
    resolve_wrapper,
    unmet_backbone_needs,
)
from selfinv.losses import Loss

__all__ = ["Experiment", "build_experiment"]


@dataclass
class Experiment:
    """Everything a run needs, built from a :class:`Config`."""

    cfg: Config  # resolved (wrapper "auto" replaced, the measurement set's or the estimated noise filled in)
    dataset: Any  # the full data set (SimulatedDataset or MeasurementDataset)
    train: Any
    val: Any
    img_shape: tuple[int, ...]  # (C, H, W) of one image x; (C, D, H, W) of a volume (3-D networks)
    is_complex: bool
    normalization: Any  # selfinv.data.Normalization
    physics: Any  # a template operator with its noise (one sample)
    sampler: Any | None
    model: torch.nn.Module
    loss: Loss
    normalization_mode: str = "explicit"  # how the normalisation was chosen: auto, range, none or explicit
    noise_estimate: Any = None  # noise: {name: estimate}: the estimate (selfinv.engine.noise_estimate.NoiseEstimate)

    @property
    def data_info(self) -> dict[str, Any]:
        c, *size = self.img_shape  # (H, W), or (D, H, W) for volumes
        return {"channels": c, "complex": self.is_complex, "img_size": list(size), "normalization_mode": self.normalization_mode}


def build_experiment(cfg: Config) -> Experiment:
    """Data (train/validation split), physics, model and loss of a config; the config comes back resolved."""
    cfg = absolute_paths(cfg)
    mode = cfg.data.normalization if isinstance(cfg.data.normalization, str) else "explicit"
    data = build_data(cfg)
    cfg = data.cfg
    train, val = split_data(cfg, data.dataset)
    resolved = cfg.model_dump(mode="json")
    resolved["model"] = resolve_pretrained(resolved["model"])
    cfg = parse_config(resolved)
    resolved["model"]["wrapper"] = resolve_wrapper(cfg)
    cfg = parse_config(resolved)
    unmet = unmet_backbone_needs(cfg)
    if unmet:
        raise ConfigError(f"config: loss {cfg.loss.name} needs {unmet}")
    model = build_model(cfg, data.img_shape[0], data.is_complex)
    loss = build_loss(cfg, data.sampler, data.img_shape)
    return Experiment(cfg, data.dataset, train, val, data.img_shape, data.is_complex, data.normalization, data.physics,
                      data.sampler, model, loss, mode, data.noise_estimate)
