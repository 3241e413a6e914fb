"""The training budget of a config: its :class:`~selfinv.training.FitConfig`, and steps against epochs as
:func:`selfinv.training.fit` counts them."""

from __future__ import annotations

import dataclasses
import math

from selfinv.config import Config, ConfigError
from selfinv.training.fit import FitConfig, epoch_batches

__all__ = ["fit_config", "steps_to_epochs", "total_steps"]


def fit_config(cfg: Config) -> FitConfig:
    """The :class:`~selfinv.training.FitConfig` of a config."""
    t = cfg.training
    kwargs = {f.name: getattr(t, f.name) for f in dataclasses.fields(FitConfig) if f.name in type(t).model_fields}
    try:
        return FitConfig(**kwargs, seed=cfg.seed, data_range=cfg.data.data_range)
    except ValueError as e:
        raise ConfigError(f"config: training: {e}") from None


def total_steps(cfg: Config, n_train: int) -> int:
    """The number of optimisation steps a run takes (as :func:`selfinv.training.fit` counts them)."""
    per_epoch = len(epoch_batches(n_train, cfg.training.batch_size, cfg.seed, 0))
    steps = per_epoch * cfg.training.epochs
    return min(steps, cfg.training.max_steps) if cfg.training.max_steps is not None else steps


def steps_to_epochs(cfg: Config, n_train: int, steps: int) -> int:
    """The number of epochs that hold ``steps`` steps."""
    per_epoch = len(epoch_batches(n_train, cfg.training.batch_size, cfg.seed, 0))
    return max(1, math.ceil(steps / per_epoch))
