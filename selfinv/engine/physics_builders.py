r"""Physics from a config: tensor-valued arguments, noise models, operator samplers and operators.

Everything is built through the registries (``OPERATORS``, ``SAMPLERS``, ``NOISE_MODELS``,
:data:`selfinv.physics.KERNELS`); a tensor-valued argument (a mask, a kernel, a matrix) is a file, a nested
list, a kernel description or one seeded draw of a sampler (:func:`load_tensor`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfinv.config import Config, ConfigError, registry_fields
from selfinv.config.errors import short_repr
from selfinv.config.registry import SIZE_ARGS
from selfinv.engine._args import annotation, construct, init_parameters, section_params
from selfinv.noise import NOISE_MODELS
from selfinv.physics import KERNELS, OPERATORS, SAMPLERS, espirit_maps

__all__ = [
    "ESTIMATORS",
    "build_noise",
    "build_physics",
    "build_sampler",
    "estimated_arguments",
    "fbp_init",
    "load_tensor",
    "operator_arguments",
    "size_arguments",
    "takes_image_size",
]

def load_tensor(value: Any, where: str) -> torch.Tensor:
    """A tensor-valued argument: a file (read_image; integer masks scaled to [0, 1]), a nested list, a
    kernel description ``{kind: gaussian | box | motion, ...}`` (:data:`KERNELS`), or one seeded draw of a
    sampler ``{sampler: bernoulli_mask, img_size: 64, p: 0.5, seed: 0}`` (the drawn operator's parameter of
    the same name: one fixed random mask for every image)."""
    from selfinv.data import read_image

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict) and "sampler" in value:  # one fixed draw: {sampler: bernoulli_mask, img_size: 64, p: 0.5, seed: 0}
        return _drawn_tensor(value, where)
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind not in KERNELS:
            raise ConfigError(f"config: {where}.kind = {kind!r} is not one of {', '.join(KERNELS)}")
        args = {k: v for k, v in value.items() if k != "kind"}
        return construct(KERNELS[kind], args, where).to(torch.float32)
    if isinstance(value, (str, Path)):
        try:
            arr, info = read_image(value, return_info=True)
        except ValueError as e:
            raise ConfigError(f"config: {where}: {e}") from None
        if info.bit_depth is not None:
            arr = arr / np.float32(info.data_range[1])
        t = torch.from_numpy(np.ascontiguousarray(arr))
        return t[None] if t.ndim == 3 else t
    if isinstance(value, (list, tuple)):
        try:
            return torch.tensor(value, dtype=torch.float32)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config: {where}: not a numeric array ({e})") from None
    raise ConfigError(f"config: {where}: expected a file path, a nested list or a kernel description, got {short_repr(value)}")


def _drawn_tensor(value: dict, where: str) -> torch.Tensor:
    name, seed = value["sampler"], value.get("seed", 0)
    if name not in SAMPLERS:
        raise ConfigError(f"config: {where}.sampler = {name!r} is not one of {', '.join(SAMPLERS)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"config: {where}.seed must be an int, got {short_repr(seed)}")
    args = {k: v for k, v in value.items() if k not in ("sampler", "seed")}
    op = construct(SAMPLERS[name], args, where)(1, generator=torch.Generator().manual_seed(seed))
    param = where.rsplit(".", 1)[-1]
    t = getattr(op, param, None)
    if not isinstance(t, torch.Tensor):
        raise ConfigError(f"config: {where}: the {name} sampler draws {type(op).__name__} operators, which have no {param!r}")
    return t.detach().clone()  # (1, ...): broadcast over the batch


#: tensor arguments that a config may ask to estimate from the measured data instead of giving them, by argument and
#: estimator name: ``coil_maps: espirit`` or ``coil_maps: {name: espirit, calib_size: 20}`` (the keyword arguments
#: of :func:`selfinv.physics.espirit_maps`), resolved by :func:`estimated_arguments`
ESTIMATORS: dict[str, dict[str, Any]] = {"coil_maps": {"espirit": espirit_maps}}


def _estimate(name: str, value: Any, where: str) -> dict | None:
    """``{"name": estimator, **its arguments}`` when ``value`` asks to estimate argument ``name``, else None."""
    known = ESTIMATORS.get(name)
    if known is None:
        return None
    if isinstance(value, str) and value in known:
        return {"name": value}
    if isinstance(value, dict) and "name" in value:
        if value["name"] not in known:
            raise ConfigError(f"config: {where}.{name}.name = {value['name']!r} is not one of {', '.join(known)}")
        return dict(value)
    return None


def estimated_arguments(args: dict, y: torch.Tensor | None, where: str = "physics") -> dict:
    """``args`` with the arguments given as estimators (:data:`ESTIMATORS`: ``coil_maps: espirit``) computed from the
    measurements ``y`` (N, C, H, W), one per measurement (with ``args``' mask, if any)."""
    out = dict(args)
    for k, v in args.items():
        spec = _estimate(k, v, where)
        if spec is None:
            continue
        name = spec.pop("name")
        if y is None or y.ndim != 4:
            raise ConfigError(f"config: {where}.{k}: {name} estimates it from measured data (N, C, H, W); use "
                              f"data.source: measurements, or give {where}.{k} as a file")
        mask = args.get("mask")
        out[k] = construct(functools.partial(ESTIMATORS[k][name], y),
                           {**spec, "mask": mask if isinstance(mask, torch.Tensor) else None}, f"{where}.{k}")
    return out


def _tensor_arguments(cls: type, params: dict, where: str) -> dict:
    """Convert tensor-valued arguments (the annotation mentions Tensor): a file or a kernel description always, a
    nested list unless the argument also takes a plain sequence (tomography angles). An estimator (:data:`ESTIMATORS`)
    is kept as it is, for :func:`estimated_arguments`."""
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        if _estimate(k, v, where) is not None:
            out[k] = v
            continue
        ann = annotation(cls, k)
        if "Tensor" in ann and (isinstance(v, (str, dict)) or (isinstance(v, list) and "Sequence" not in ann)):
            v = load_tensor(v, f"{where}.{k}")
        out[k] = v
    return out


def size_arguments(cls: type, img_shape: tuple[int, int, int], seed: int) -> dict:
    """The size arguments (:data:`selfinv.config.registry.SIZE_ARGS`) that ``cls`` takes, for images of
    ``img_shape`` (C, H, W), and a generator seeded with ``seed`` when it takes one."""
    c, h, w = img_shape[0], *img_shape[-2:]  # volumes (C, D, H, W): the operators that take a size are 2-D
    sig = init_parameters(cls)
    values = {"img_size": (h, w), "img_shape": (c, h, w), "in_shape": (c, h, w)}
    out = {k: v for k, v in values.items() if k in sig}
    if "generator" in sig:  # random operators (compressed sensing): the same seed gives the same operator
        out["generator"] = torch.Generator().manual_seed(seed)
    return out


def takes_image_size(cls: type) -> bool:
    """Whether the operator class is sized for its images (it takes one of the size arguments)."""
    return any(k in init_parameters(cls) for k in SIZE_ARGS)


def operator_arguments(cfg: Config) -> dict:
    """The ``physics`` section's arguments of its operator (unset ones left out, tensor-valued ones loaded)."""
    cls = OPERATORS[cfg.physics.name]
    return _tensor_arguments(cls, section_params(cfg.physics, ("name", "sampler")), "physics")


def build_noise(cfg: Config, section: Any = ..., where: str = "noise"):
    """The noise model of ``cfg.noise`` (or of another noise section, e.g. ``data.true_noise``; None for noiseless)."""
    section = cfg.noise if section is ... else section
    if section is None:
        return None
    cls = NOISE_MODELS[section.name]
    return construct(cls, _tensor_arguments(cls, section_params(section), where), where)


def build_sampler(sampler_cfg, img_shape: tuple[int, int, int], seed: int = 0, where: str = "physics.sampler"):
    """The sampler of a sampler section (``physics.sampler``, a loss's ``sampler``), sized for images of
    ``img_shape``; a random one is seeded with ``seed``."""
    cls = SAMPLERS[sampler_cfg.name]
    args = {**_tensor_arguments(cls, section_params(sampler_cfg), where), **size_arguments(cls, img_shape, seed)}
    return construct(cls, args, where)


def build_physics(cfg: Config, img_shape: tuple[int, int, int], noise=None):
    """``(operator, sampler)`` for images of ``img_shape`` (C, H, W): a fixed operator (sampler None) or a
    sampler of per-sample operators with the operator it draws (one sample) as the template. A sampler whose draws
    are all the same (``is_fixed``: a radio observation without random tracks) gives that one fixed operator."""
    pc = cfg.physics
    cls = OPERATORS[pc.name]
    if pc.sampler is not None:
        sampler = build_sampler(pc.sampler, img_shape, cfg.seed)
        try:
            op = sampler(1, generator=torch.Generator().manual_seed(cfg.seed), noise=noise)
        except ValueError as e:
            raise ConfigError(f"config: physics.sampler: {e}") from None
        if type(op) is not cls:
            raise ConfigError(
                f"config: physics.sampler {pc.sampler.name!r} draws {type(op).__name__} operators, not {pc.name} "
                f"(choose a sampler of {cls.__name__} operators or another physics.name)"
            )
        if getattr(sampler, "is_fixed", False):  # every draw is the same operator: the sampler describes one
            return op, None
        return op, sampler
    params = {k: v for k, v in section_params(pc, ("name", "sampler")).items()}
    missing = [k for k, d in registry_fields("physics", cls).items() if d is ... and params.get(k) is None]
    if missing:
        raise ConfigError(
            f"config: physics {pc.name!r} needs {', '.join(missing)} (or a physics.sampler that draws "
            f"{'it' if len(missing) == 1 else 'them'} per sample)"
        )
    args = {**_tensor_arguments(cls, params, "physics"), **size_arguments(cls, img_shape, cfg.seed)}
    estimated = [k for k, v in args.items() if _estimate(k, v, "physics") is not None]
    if estimated:
        raise ConfigError(f"config: physics.{estimated[0]}: {params[estimated[0]]!r} estimates it from measured data; "
                          f"use data.source: measurements, or give physics.{estimated[0]} as a file for simulated data")
    if noise is not None:
        args["noise"] = noise
    return construct(cls, args, "physics"), None


def fbp_init(y: torch.Tensor, physics) -> torch.Tensor:
    """``init: fbp`` of a wrapper: filtered back-projection (tomography), else the adjoint."""
    fbp = getattr(physics, "fbp", None)
    return fbp(y) if callable(fbp) else physics.A_adjoint(y)
