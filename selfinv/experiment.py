"""The former home of the config → experiment builders, kept importable: they live in :mod:`selfinv.engine`
(:mod:`~selfinv.engine.build`, :mod:`~selfinv.engine.data`, :mod:`~selfinv.engine.physics_builders`,
:mod:`~selfinv.engine.model_builders`)."""

from __future__ import annotations

from selfinv.engine.build import Experiment, build_experiment
from selfinv.engine.data import build_test_set
from selfinv.engine.model_builders import build_loss, build_model, build_transform
from selfinv.engine.physics_builders import build_noise, build_physics

__all__ = [
    "Experiment",
    "build_experiment",
    "build_loss",
    "build_model",
    "build_noise",
    "build_physics",
    "build_test_set",
    "build_transform",
]
