"""The engine: from a config to trained, evaluated and compared models, as a library (the command line,
:mod:`selfinv.cli`, parses, calls these and prints).

* Building, config → objects: :mod:`~selfinv.engine.physics_builders` (tensor arguments, noise, samplers,
  operators), :mod:`~selfinv.engine.model_builders` (losses, transforms, networks),
  :mod:`~selfinv.engine.images` (ground truth and simulated measurements), :mod:`~selfinv.engine.measurements`
  (real measurement sets), :mod:`~selfinv.engine.data` (the data set, its split, the test set: :class:`Data`),
  :mod:`~selfinv.engine.budget` (steps and epochs), :mod:`~selfinv.engine.build` (:class:`Experiment`).
* Running: :mod:`~selfinv.engine.train` (a run folder: :class:`RunResult`), :mod:`~selfinv.engine.checkpoints`
  (a model from its checkpoint), :mod:`~selfinv.engine.evaluate` (:class:`Evaluation`, sharing validation's
  batch loop), :mod:`~selfinv.engine.compare` (:class:`Comparison`), :mod:`~selfinv.engine.demo`,
  :mod:`~selfinv.engine.reconstruct` (files in, files out), :mod:`~selfinv.engine.advice` (the advisor on a
  config).
* Writing: :mod:`~selfinv.engine.run_report`, :mod:`~selfinv.engine.comparison_report`,
  :mod:`~selfinv.engine.files`; one-line errors: :mod:`~selfinv.engine.errors`; devices:
  :mod:`~selfinv.engine.device`.

The names below are imported on first use (``from selfinv.engine import run_comparison``), so that importing
one module of the engine (the command line's help does) does not load them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name → the module of the engine that defines it
_WHERE = {
    "Comparison": "compare",
    "ComparisonData": "compare",
    "ConfigAdvice": "advice",
    "Data": "data",
    "Evaluation": "evaluate",
    "Experiment": "build",
    "Interrupted": "train",
    "Restored": "checkpoints",
    "RunResult": "train",
    "Variant": "compare",
    "applicable_losses": "advice",
    "build_data": "data",
    "build_experiment": "build",
    "build_loss": "model_builders",
    "build_model": "model_builders",
    "build_noise": "physics_builders",
    "build_physics": "physics_builders",
    "build_test_set": "data",
    "build_transform": "model_builders",
    "check_device": "device",
    "config_advice": "advice",
    "count_network_evals": "evaluate",
    "error_line": "errors",
    "evaluate_dataset": "evaluate",
    "fit_config": "budget",
    "load_tensor": "physics_builders",
    "measurement_set": "measurements",
    "reconstruct_files": "reconstruct",
    "restore": "checkpoints",
    "run_comparison": "compare",
    "split_data": "data",
    "train_experiment": "train",
}

__all__ = [
    "Comparison",
    "ComparisonData",
    "ConfigAdvice",
    "Data",
    "Evaluation",
    "Experiment",
    "Interrupted",
    "Restored",
    "RunResult",
    "Variant",
    "applicable_losses",
    "build_data",
    "build_experiment",
    "build_loss",
    "build_model",
    "build_noise",
    "build_physics",
    "build_test_set",
    "build_transform",
    "check_device",
    "config_advice",
    "count_network_evals",
    "error_line",
    "evaluate_dataset",
    "fit_config",
    "load_tensor",
    "measurement_set",
    "reconstruct_files",
    "restore",
    "run_comparison",
    "split_data",
    "train_experiment",
]

if TYPE_CHECKING:  # for readers and type checkers; at run time __getattr__ imports on first use
    from selfinv.engine.advice import ConfigAdvice, applicable_losses, config_advice
    from selfinv.engine.budget import fit_config
    from selfinv.engine.build import Experiment, build_experiment
    from selfinv.engine.checkpoints import Restored, restore
    from selfinv.engine.compare import Comparison, ComparisonData, Variant, run_comparison
    from selfinv.engine.data import Data, build_data, build_test_set, split_data
    from selfinv.engine.device import check_device
    from selfinv.engine.errors import error_line
    from selfinv.engine.evaluate import Evaluation, count_network_evals, evaluate_dataset
    from selfinv.engine.model_builders import build_loss, build_model, build_transform
    from selfinv.engine.physics_builders import build_noise, build_physics, load_tensor
    from selfinv.engine.reconstruct import reconstruct_files
    from selfinv.engine.train import Interrupted, RunResult, train_experiment


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
