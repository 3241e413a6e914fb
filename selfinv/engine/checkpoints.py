"""A trained model rebuilt from a checkpoint alone (:func:`restore`): the configuration, normalisation and data
facts every checkpoint of ``selfinv train`` carries rebuild the network and the loss, then their weights load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfinv.config import Config, ConfigError, parse_config
from selfinv.data import Normalization
from selfinv.engine.build import build_experiment
from selfinv.engine.device import check_device
from selfinv.engine.model_builders import build_loss, build_model
from selfinv.engine.physics_builders import build_noise, build_physics
from selfinv.models.pretrained import PRETRAINED, is_pretrained_name
from selfinv.training import load_checkpoint

__all__ = ["Restored", "is_pretrained_name", "read_checkpoint", "restore", "restore_model", "restore_pretrained"]


@dataclass
class Restored:
    """A model rebuilt from a checkpoint alone."""

    path: Path
    cfg: Config
    model: torch.nn.Module
    loss: Any
    normalization: Normalization
    data_info: dict[str, Any]
    step: int
    device: torch.device
    data_stats: dict[str, float] | None = None  # of the training measurements; None for older checkpoints

    @property
    def img_shape(self) -> tuple[int, ...]:
        """(C, H, W) of the training images, or (C, D, H, W) of the training volumes (3-D networks)."""
        return int(self.data_info["channels"]), *(int(s) for s in self.data_info["img_size"])

    def estimator(self):
        self.model.eval()
        self.loss.eval()
        return self.loss.test_model(self.model)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """:func:`~selfinv.training.load_checkpoint`, with any unreadable file as one ValueError line."""
    path = Path(path)
    try:
        return load_checkpoint(path, map_location="cpu")
    except ValueError:
        raise
    except Exception as e:  # e.g. struct.error from a truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None


def restore(path: str | Path, device: str | None = None) -> Restored:
    """Rebuild model and loss from a checkpoint's stored configuration and load their weights."""
    path = Path(path)
    dev = check_device(device)
    ckpt = read_checkpoint(path)
    missing = [k for k in ("config", "data_info", "model") if k not in ckpt]
    if missing:
        raise ValueError(f"{path.name}: a checkpoint without its run configuration ({', '.join(missing)} missing: "
                         "not written by `selfinv train`); cannot rebuild the model")
    try:
        cfg = parse_config(ckpt["config"])
    except ConfigError as e:
        raise ValueError(f"{path.name}: its stored configuration does not fit this selfinv version ({e})") from None
    info = ckpt["data_info"]
    shape = (int(info["channels"]), *(int(v) for v in info["img_size"]))
    c = shape[0]
    model = build_model(cfg, c, bool(info["complex"]), init_weights=False)  # its own weights load below
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = " ".join(str(e).split("\n\t")[1:2]) or str(e).splitlines()[0]
        raise ValueError(
            f"{path.name}: its weights do not fit the model its configuration describes "
            f"({cfg.model.backbone.name} in {cfg.model.wrapper.name}): {' '.join(first.split())[:200]} "
            "(a checkpoint from another model?)"
        ) from None
    sampler = None
    if cfg.physics.sampler is not None:
        _, sampler = build_physics(cfg, shape, build_noise(cfg))
    loss = build_loss(cfg, sampler, shape)
    try:
        loss.load_state_dict(ckpt.get("loss", {}))
    except RuntimeError:
        raise ValueError(f"{path.name}: its loss state does not fit the loss {cfg.loss.name} of its configuration") from None
    norm = Normalization.from_dict(ckpt.get("normalization", {"scale": 1.0, "offset": 0.0}))
    model.to(dev)
    loss.to(dev)
    stats = ckpt.get("data_stats")
    return Restored(path, cfg, model, loss, norm, info, int(ckpt.get("counters", {}).get("step", 0)), dev,
                    data_stats=dict(stats) if isinstance(stats, dict) else None)


def restore_pretrained(name: str, cfg: Config, device: str | None = None) -> Restored:
    """A shipped pretrained network set up for a config's data (its channels, normalisation, noise and
    operator): the experiment of ``cfg`` with ``model.pretrained = name``, untrained (zero-shot, step 0)."""
    dev = check_device(device)
    data = cfg.model_dump(mode="json")
    data["model"] = {**data["model"], "pretrained": name}
    exp = build_experiment(parse_config(data))
    exp.model.to(dev)
    exp.loss.to(dev)
    return Restored(Path(name), exp.cfg, exp.model, exp.loss, exp.normalization, exp.data_info, 0, dev)


def restore_model(ref: str | Path, device: str | None = None, cfg: Config | None = None) -> Restored:
    """:func:`restore` of a checkpoint file, or :func:`restore_pretrained` of a shipped name with ``cfg``
    (a pretrained network has no operator or data units of its own: the config of the measurements says them)."""
    if is_pretrained_name(ref):
        if cfg is None:
            raise ValueError(f"{ref}: a pretrained network has no operator of its own; give the config of the "
                             "measurements (their physics, noise and data)")
        return restore_pretrained(str(ref), cfg, device)
    if cfg is not None:
        raise ValueError(f"{ref}: a checkpoint carries its own configuration; a config applies to pretrained names only "
                         f"({', '.join(PRETRAINED)})")
    return restore(ref, device)
