r"""Self-supervised finetuning of a pretrained network on 1–100 measurements (Terris et al., 2025, §finetuning).

:func:`finetune_config` turns a user's config (physics, noise, data) into a finetuning run:

* ``model.pretrained`` = the shipped name or checkpoint (its architecture replaces the config's model);
* the loss, unless the config names one, follows RAM's finetuning rule from the noise model:
  known Gaussian / Poisson / Poisson–Gaussian noise → SURE (PURE) consistency + 0.1 · EI,
  :math:`\mathcal L = \mathrm{SURE}(y) + 0.1\,\|T_g \hat x - f(A T_g \hat x + \varepsilon)\|^2` without the
  renoising (``ei`` with ``consistency: sure``); noiseless → MC + 0.1 · EI; unknown noise → splitting
  (measurement splitting needs no noise model). EI's group is shifts, rotations for MRI (equivariant to shifts);
* Adam at :data:`FINETUNE_LR` for :data:`FINETUNE_STEPS` steps — the config file's ``training.lr`` and budget are
  for training from scratch and are replaced; ``steps`` and ``--set training.lr=...`` (``overrides``) set them;
* ``data.max_images`` = N. With N = 1 the engine validates on held-out entries of the same measurement
  (``data.val_holdout``), otherwise on a held-out share of the measurements; ``best.pt`` is the step of the
  lowest self-supervised validation loss (early stopping by selection).

Example:
    >>> from selfinv.pretrained.finetuning import finetune_config
    >>> cfg = finetune_config({"physics": {"name": "inpainting", "sampler": {"name": "bernoulli_mask", "p": 0.5}},
    ...                        "noise": {"name": "gaussian", "sigma": 0.05}}, "ram-small", n=1)
    >>> cfg.loss.name, cfg.loss.consistency, cfg.loss.weight, cfg.training.max_steps, cfg.data.max_images
    ('ei', 'sure', 0.1, 40, 1)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinv.config import Config, ConfigError, apply_overrides, parse_config, read_yaml
from selfinv.engine.build import build_experiment
from selfinv.engine.train import RunResult, check_run_folder, train_experiment
from selfinv.models.pretrained import PRETRAINED

__all__ = ["FINETUNE_LR", "FINETUNE_STEPS", "Finetuned", "default_finetune_loss", "finetune", "finetune_config", "finetune_folder"]

#: Adam's learning rate for finetuning (RAM's code: 1e-4; DeepInverse's demo: 5e-5)
FINETUNE_LR = 1e-4
#: the default step budget: N = 1 at 256² fits in about a minute on 2 CPU cores (BENCHMARKS.md)
FINETUNE_STEPS = 40
#: EI's prior weight in the default loss (RAM's 0.1)
EI_WEIGHT = 0.1

_KNOWN_NOISE = ("gaussian", "poisson", "poisson_gaussian")
_COMPLEX_OPERATORS = ("mri", "multicoil_mri")


def default_finetune_loss(cfg: Config) -> dict[str, Any]:
    """The ``loss`` section RAM's finetuning rule gives for a config's noise and physics (module docstring)."""
    noise = cfg.noise.name if cfg.noise is not None else None
    transform = "rotate" if cfg.physics.name in _COMPLEX_OPERATORS else "shift"
    if noise is None:
        if cfg.physics.name == "denoising":
            raise ConfigError("config: noiseless denoising leaves nothing to learn; give the noise model (noise: ...)")
        return {"name": "ei", "transform": transform, "consistency": "mc", "weight": EI_WEIGHT}
    if noise in _KNOWN_NOISE:
        return {"name": "ei", "transform": transform, "consistency": "sure", "weight": EI_WEIGHT}
    return {"name": "splitting"}


def _config_dict(config: str | Path | dict | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, dict):
        return copy.deepcopy(config)
    return read_yaml(config)


def finetune_config(config: str | Path | dict | None, model: str, n: int | None = None, steps: int | None = None,
                    overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The finetuning run of ``model`` (a shipped name or a checkpoint path) on a config (a YAML path or dict)."""
    if not isinstance(model, str) or not model:
        raise ConfigError(f"finetune: MODEL must be a shipped name ({', '.join(PRETRAINED)}) or a checkpoint path")
    for name, v in (("n", n), ("steps", steps)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"finetune: {name} must be an integer >= 1, got {v!r}")
    data = apply_overrides(_config_dict(config), list(overrides))
    if model not in PRETRAINED and not Path(model).is_file():
        raise ConfigError(f"finetune: {model!r} is neither a shipped pretrained network ({', '.join(PRETRAINED)}) nor a checkpoint file")
    data["model"] = {**(data.get("model") or {}), "pretrained": model}
    if "loss" not in data:
        data["loss"] = default_finetune_loss(parse_config(data))
    # a config's training section is for training from scratch (the templates write lr 1e-3 and a long budget):
    # finetuning keeps its own rate and budget unless --set / overrides (or steps) say otherwise
    given = (apply_overrides({}, list(overrides)).get("training") or {}) if overrides else {}
    training = dict(data.get("training") or {})
    data["training"] = training
    if "lr" not in given:
        training["lr"] = FINETUNE_LR
    if steps is not None or not ({"max_steps", "epochs"} & set(given)):
        training["max_steps"] = steps or FINETUNE_STEPS
        training["epochs"] = training["max_steps"]  # an epoch is at least one step: the steps decide
    if n is not None:
        data["data"] = {**(data.get("data") or {}), "max_images": n}
    return parse_config(data)


def finetune_folder(cfg: Config, model: str, run_dir: str | Path | None = None) -> Path:
    """The run folder (``run_dir``, else ``training.run_dir``, else ``runs/finetune-<model>``), checked to be new."""
    folder = Path(run_dir or cfg.training.run_dir or Path("runs") / f"finetune-{Path(model).stem}")
    check_run_folder(folder, resume=False)
    return folder


def finetune_summary(cfg: Config, model: str) -> str:
    """One line: the model, the loss, the optimiser and the budget of a finetuning run."""
    t = cfg.training
    budget = f"{t.max_steps} steps" if t.max_steps else f"{t.epochs} epochs"
    weight = f" (consistency {cfg.loss.consistency}, weight {cfg.loss.weight:g})" if hasattr(cfg.loss, "consistency") else ""
    extra = "".join(f" + {e.weight:g}·{e.name}" for e in cfg.loss.extra)
    return (f"finetuning {model}: loss {cfg.loss.name}{weight}{extra}, Adam lr {t.lr:g}, {budget}"
            + (f", N = {cfg.data.max_images}" if cfg.data.max_images else ""))


@dataclass
class Finetuned:
    """A finished finetuning run."""

    run: RunResult
    cfg: Config
    run_dir: Path
    seconds: float  # the whole call: data, loading, training, report

    @property
    def best(self) -> Path:
        """The checkpoint of the lowest validation loss (``last.pt`` when the run had no validation)."""
        best = self.run_dir / "best.pt"
        return best if best.is_file() else self.run_dir / "last.pt"


def finetune(model: str, config: str | Path | dict | None, n: int | None = None, steps: int | None = None,
             run_dir: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), progress: bool | None = False,
             log=None) -> Finetuned:
    """Finetune ``model`` (a shipped name or a checkpoint) on the config's measurements into a new run folder.

    Args:
        model: ``"ram-small"`` (:func:`selfinv.pretrained.names`) or a checkpoint of ``selfinv train``.
        config: YAML path or dict: physics, noise and data (measurements, or images to simulate from).
        n: train on the first n measurements (``data.max_images``).
        steps: optimisation steps (default :data:`FINETUNE_STEPS`, or the config's budget).
        run_dir: a new folder (default ``training.run_dir``, else ``runs/finetune-<name>``); never overwritten.
        overrides: ``key=value`` strings as ``--set``.
        log: called with the run's summary line (:func:`finetune_summary`) and the engine's lines.
    """
    t0 = time.perf_counter()
    cfg = finetune_config(config, model, n, steps, overrides)
    folder = finetune_folder(cfg, model, run_dir)
    exp = build_experiment(cfg)
    if log is not None:
        log(finetune_summary(exp.cfg, model))
    result = train_experiment(exp, folder, progress=progress, log=log, title=f"finetuning {model}")
    return Finetuned(result, exp.cfg, folder, time.perf_counter() - t0)
