r"""From a validated :class:`~selfinv.config.Config` to the objects of a run: data, physics, model, loss.

:func:`build_experiment` builds everything only through the registries (``OPERATORS``, ``SAMPLERS``,
``NOISE_MODELS``, ``LOSSES``, ``BACKBONES``, ``WRAPPERS``, :data:`selfinv.config.TRANSFORMS`); the
schema, YAML I/O and one-line errors live in :mod:`selfinv.config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from selfinv.config import (
    _SIZE_ARGS,
    KERNELS,
    TRANSFORMS,
    Config,
    ConfigError,
    SamplerConfig,
    WrapperConfig,
    _param_fields,
    _short,
    _unwrap,
    format_validation_error,
    parse_config,
)
from selfinv.losses import LOSSES, Loss
from selfinv.models import BACKBONES, WRAPPERS
from selfinv.noise import NOISE_MODELS, Unknown
from selfinv.noise import describe as describe_noise
from selfinv.physics import OPERATORS, SAMPLERS
from selfinv.training.fit import FitConfig
from selfinv.transforms import Product, Transform

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


# ====================================================================== builders
def _construct(cls: type, kwargs: dict, where: str):
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"config: {where}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"config: {where}: {e}") from None


def _params(model: BaseModel, drop: Sequence[str] = ("name",)) -> dict[str, Any]:
    return {k: getattr(model, k) for k in type(model).model_fields if k not in drop}


def _signature(cls: type) -> set[str]:
    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):  # pragma: no cover
        return set()


def _annotation(cls: type, name: str) -> str:
    try:
        ann = inspect.signature(cls.__init__).parameters[name].annotation
    except (TypeError, ValueError, KeyError):  # pragma: no cover
        return ""
    return ann if isinstance(ann, str) else str(ann)


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
        return _construct(KERNELS[kind], args, where).to(torch.float32)
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
    raise ConfigError(f"config: {where}: expected a file path, a nested list or a kernel description, got {_short(value)}")


def _drawn_tensor(value: dict, where: str) -> torch.Tensor:
    name, seed = value["sampler"], value.get("seed", 0)
    if name not in SAMPLERS:
        raise ConfigError(f"config: {where}.sampler = {name!r} is not one of {', '.join(SAMPLERS)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"config: {where}.seed must be an int, got {_short(seed)}")
    args = {k: v for k, v in value.items() if k not in ("sampler", "seed")}
    op = _construct(SAMPLERS[name], args, where)(1, generator=torch.Generator().manual_seed(seed))
    param = where.rsplit(".", 1)[-1]
    t = getattr(op, param, None)
    if not isinstance(t, torch.Tensor):
        raise ConfigError(f"config: {where}: the {name} sampler draws {type(op).__name__} operators, which have no {param!r}")
    return t.detach().clone()  # (1, ...): broadcast over the batch


def _physics_args(cls: type, params: dict, where: str) -> dict:
    """Convert tensor-valued arguments (the annotation mentions Tensor): a file or a kernel description always, a
    nested list unless the argument also takes a plain sequence (tomography angles)."""
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        ann = _annotation(cls, k)
        if "Tensor" in ann and (isinstance(v, (str, dict)) or (isinstance(v, list) and "Sequence" not in ann)):
            v = load_tensor(v, f"{where}.{k}")
        out[k] = v
    return out


def _size_args(cls: type, img_shape: tuple[int, int, int], seed: int) -> dict:
    c, h, w = img_shape
    sig = _signature(cls)
    values = {"img_size": (h, w), "img_shape": (c, h, w), "in_shape": (c, h, w)}
    out = {k: v for k, v in values.items() if k in sig}
    if "generator" in sig:  # random operators (compressed sensing): the same seed gives the same operator
        out["generator"] = torch.Generator().manual_seed(seed)
    return out


def build_noise(cfg: Config, section: Any = ..., where: str = "noise"):
    """The noise model of ``cfg.noise`` (or of another noise section, e.g. ``data.true_noise``; None for noiseless)."""
    section = cfg.noise if section is ... else section
    if section is None:
        return None
    cls = NOISE_MODELS[section.name]
    return _construct(cls, _physics_args(cls, _params(section), where), where)


def build_sampler(sampler_cfg, img_shape: tuple[int, int, int], seed: int = 0, where: str = "physics.sampler"):
    cls = SAMPLERS[sampler_cfg.name]
    args = {**_physics_args(cls, _params(sampler_cfg), where), **_size_args(cls, img_shape, seed)}
    return _construct(cls, args, where)


def build_physics(cfg: Config, img_shape: tuple[int, int, int], noise=None):
    """``(operator, sampler)`` for images of ``img_shape`` (C, H, W): a fixed operator (sampler None) or a
    sampler of per-sample operators with the operator it draws (one sample) as the template."""
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
        return op, sampler
    params = {k: v for k, v in _params(pc, ("name", "sampler")).items()}
    missing = [k for k, f in _param_fields("physics", pc.name, cls).items() if f[1] is ... and params.get(k) is None]
    if missing:
        raise ConfigError(
            f"config: physics {pc.name!r} needs {', '.join(missing)} (or a physics.sampler that draws "
            f"{'it' if len(missing) == 1 else 'them'} per sample)"
        )
    args = {**_physics_args(cls, params, "physics"), **_size_args(cls, img_shape, cfg.seed)}
    if noise is not None:
        args["noise"] = noise
    return _construct(cls, args, "physics"), None


def build_transform(value: Any, where: str = "loss.transform") -> Transform:
    """A transform from ``rotate``, ``{name: rotate, n: 4}`` or a list of them (their product)."""
    if isinstance(value, Transform):
        return value
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"config: {where}: an empty list of transforms")
        parts = [build_transform(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return parts[0] if len(parts) == 1 else Product(parts)
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(f"config: {where}: expected a transform name ({', '.join(TRANSFORMS)}) or {{name: ..., ...}}")
    name = value["name"]
    if name not in TRANSFORMS:
        hint = difflib.get_close_matches(str(name), list(TRANSFORMS), n=1)
        raise ConfigError(
            f"config: {where}.name = {name!r} is not one of {', '.join(TRANSFORMS)}" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        )
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items() if k != "name"}
    return _construct(TRANSFORMS[name], args, where)


def transforms_of(cfg: Config) -> list[Transform]:
    """The transforms named in the loss and its extra terms (for the advisor)."""
    out = []
    for i, term in enumerate([cfg.loss, *cfg.loss.extra]):
        if "transform" in type(term).model_fields:
            out.append(build_transform(term.transform, "loss.transform" if i == 0 else f"loss.extra[{i - 1}].transform"))
    return out


def _build_term(term, sampler, img_shape, seed: int, where: str) -> tuple[float, Loss]:
    cls = LOSSES[term.name]
    params = _params(term, ("name", "weight", "extra"))
    weight = term.weight
    if "weight" in _signature(cls):  # EI/REI/MOI: the weight of their own prior term
        params["weight"], weight = term.weight, 1.0
    for k, v in list(params.items()):
        ann = _annotation(cls, k)
        if k == "transform" or "Transform" in ann:
            params[k] = build_transform(v, f"{where}.{k}")
        elif k == "sampler" or "Sampler" in ann:
            if v == "physics":
                if sampler is None:
                    raise ConfigError(f"config: {where}.sampler = 'physics' needs a physics.sampler (or give {where}.sampler: {{name: ...}})")
                params[k] = sampler
            else:
                params[k] = build_sampler(_validate_sampler(v, f"{where}.sampler"), img_shape, seed, f"{where}.sampler")
    return weight, _construct(cls, params, where)


def _validate_sampler(value: Any, where: str):
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(SamplerConfig).validate_python(value)
    except ValidationError as e:
        line = format_validation_error(e, prefix="x")[3:]
        raise ConfigError(f"config: {where}: {line}") from None


def build_loss(cfg: Config, sampler=None, img_shape: tuple[int, int, int] = (1, 32, 32)) -> Loss:
    """``weight · loss + Σ weight_i · extra_i`` (a plain loss when there is nothing to add or scale)."""
    terms = [_build_term(cfg.loss, sampler, img_shape, cfg.seed, "loss")]
    terms += [_build_term(t, sampler, img_shape, cfg.seed, f"loss.extra[{i}]") for i, t in enumerate(cfg.loss.extra)]
    if len(terms) == 1 and terms[0][0] == 1.0:
        return terms[0][1]
    total = terms[0][0] * terms[0][1]
    for w, t in terms[1:]:
        total = total + w * t
    return total


def unmet_backbone_needs(cfg: Config) -> str | None:
    """What of its loss's ``needs_backbone`` the config's model lacks, in words (None: all met). Such losses
    also need the network without a physics wrapper."""
    needs = LOSSES[cfg.loss.name].needs_backbone
    if not needs:
        return None
    backbone = cfg.model.backbone.model_dump(mode="json")
    wrong = [f"model.backbone.{k} = {str(v).lower() if isinstance(v, bool) else v}"
             for k, v in needs.items() if backbone.get(k, object()) != v]
    if cfg.model.wrapper.name != "none":
        wrong.append("model.wrapper = none")
    if not wrong:
        return None
    got = ", ".join(f"{k} {backbone.get(k)!r}" for k in needs if k != "name")
    return (f"{' and '.join(wrong)} (got {cfg.model.backbone.name}{' with ' + got if got else ''} in "
            f"{cfg.model.wrapper.name}; LOSS_BACKBONES has a default)")


def fbp_init(y: torch.Tensor, physics) -> torch.Tensor:
    """``init: fbp`` of a wrapper: filtered back-projection (tomography), else the adjoint."""
    fbp = getattr(physics, "fbp", None)
    return fbp(y) if callable(fbp) else physics.A_adjoint(y)


def resolve_wrapper(cfg: Config) -> dict:
    """The wrapper ``auto`` stands for: none for denoising, back-projection (FBP for tomography) otherwise."""
    w = cfg.model.wrapper
    if w.name != "auto":
        return w.model_dump(mode="json")
    if cfg.physics.name == "denoising":
        return {"name": "none"}
    init = "fbp" if hasattr(OPERATORS[cfg.physics.name], "fbp") else "adjoint"
    return {"name": "backprojection", "init": init}


def build_model(cfg: Config, channels: int, is_complex: bool) -> torch.nn.Module:
    """The network for images of ``channels`` channels (2 real channels per complex one)."""
    n = channels * (2 if is_complex else 1)
    bc = cfg.model.backbone
    backbone_cls = BACKBONES[bc.name]
    backbone = _construct(backbone_cls, {"in_channels": n, "out_channels": n, **_params(bc)}, "model.backbone")
    wc = cfg.model.wrapper
    if wc.name == "auto":
        from pydantic import TypeAdapter

        wc = TypeAdapter(WrapperConfig).validate_python(resolve_wrapper(cfg))
    if wc.name == "none":
        return backbone
    params = _params(wc)
    if params.get("init") == "fbp":
        params["init"] = fbp_init
    first = "backbone" if "backbone" in _signature(WRAPPERS[wc.name]) else "denoisers"
    return _construct(WRAPPERS[wc.name], {first: backbone, **params}, "model.wrapper")


# ====================================================================== data
@dataclass
class Experiment:
    """Everything a run needs, built from a :class:`Config`."""

    cfg: Config  # resolved (wrapper "auto" replaced, the measurement set's noise filled in)
    dataset: Any  # the full data set (SimulatedDataset or MeasurementDataset)
    train: Any
    val: Any
    img_shape: tuple[int, int, int]  # (C, H, W) of one image x
    is_complex: bool
    normalization: Any  # selfinv.data.Normalization
    physics: Any  # a template operator with its noise (one sample)
    sampler: Any | None
    model: torch.nn.Module
    loss: Loss
    normalization_mode: str = "explicit"  # how the normalisation was chosen: auto, range, none or explicit

    @property
    def data_info(self) -> dict[str, Any]:
        c, h, w = self.img_shape
        return {"channels": c, "complex": self.is_complex, "img_size": [h, w], "normalization_mode": self.normalization_mode}


def _embedded(names: Sequence[str], gray: bool) -> tuple[list[np.ndarray], list[str]]:
    from selfinv.data import embedded_images, phantom

    imgs = []
    for name in names:
        if name == "phantom":
            img = phantom()
            imgs.append(img if gray else np.repeat(img, 3, axis=0))
        else:
            try:
                imgs.append(embedded_images(gray=gray, names=[name])[0])
            except ValueError as e:
                raise ConfigError(f"config: data.images: {e}") from None
    return imgs, list(names)


def _read_folder(folder: str, max_images: int | None, where: str, key: str | None = None):
    """The images of a folder, a glob pattern or one file (names relative to the pattern's fixed part), with
    the :class:`~selfinv.data.readers.ImageInfo` of each."""
    from selfinv.data import list_images, read_image
    from selfinv.data.readers import pattern_root
    from selfinv.data.sources import split_key

    path, key = split_key(folder, key)
    try:
        files = [path] if path.is_file() else list_images(folder)
    except ValueError as e:
        raise ConfigError(f"config: {where}: {e}") from None
    if not files:
        raise ConfigError(f"config: {where}: no readable image files in {folder}")
    files = files[:max_images] if max_images else files
    root = pattern_root(folder) if not path.is_file() else path.parent
    arrays, names, infos = [], [], []
    for f in files:
        try:
            arr, info = read_image(f, key=key, return_info=True)
        except ValueError as e:
            raise ConfigError(f"config: {where}: {str(e).replace('pass key=', 'set data.key (or FILE:KEY)')}") from None
        slices = list(arr) if arr.ndim == 4 else [arr]
        arrays += slices
        name = f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name
        names += [f"{name}[{i}]" for i in range(len(slices))] if arr.ndim == 4 else [name]
        infos += [info] * len(slices)
    channels = {}
    for n, a in zip(names, arrays, strict=True):
        channels.setdefault(int(a.shape[0]), []).append(n)
    if len(channels) > 1:
        desc = "; ".join(f"{c} channel{'s' if c > 1 else ''}: {', '.join(ns[:3])}{' ...' if len(ns) > 3 else ''}"
                         for c, ns in sorted(channels.items()))
        raise ConfigError(f"config: {where}: the images have different numbers of channels ({desc}); "
                          "convert them to one (e.g. gray) or use data.gray for the embedded photographs")
    return arrays, names, infos


def image_normalization(cfg: Config, arrays, names, infos, where: str):
    """The normalisation of ground-truth images under ``data.normalization`` (auto, range, none or explicit)."""
    from selfinv.data import Normalization

    mode = cfg.data.normalization
    if not isinstance(mode, str):
        return Normalization(**mode.model_dump())
    if mode == "none":
        return Normalization.identity()
    if mode == "auto" and not all(i.bit_depth == 8 for i in infos):
        sample = np.concatenate([(np.abs(a) if np.iscomplexobj(a) else a).reshape(-1)[:: max(1, a.size // 250_000)]
                                 for a in arrays])
        return Normalization.robust(torch.from_numpy(sample.astype(np.float64)), offset=not np.iscomplexobj(arrays[0]))
    norms: dict = {}
    for n, info in zip(names, infos, strict=True):
        norms.setdefault(Normalization.from_info(info), []).append(n)
    if len(norms) > 1:
        desc = "; ".join(f"{n.to_dict()}: {', '.join(v[:2])}" for n, v in norms.items())
        raise ConfigError(f"config: {where}: the files imply different normalisations ({desc}); set data.normalization")
    return next(iter(norms))


def _with_phase(imgs: list[np.ndarray], amplitude: float, seed: int) -> list[np.ndarray]:
    """Complex images x·exp(iφ) with a smooth random phase φ (bilinear upsampling of a 4×4 grid)."""
    import torch.nn.functional as F

    out = []
    for i, img in enumerate(imgs):
        g = torch.Generator().manual_seed(seed * 7919 + i)
        coarse = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
        phi = F.interpolate(coarse, size=img.shape[-2:], mode="bicubic", align_corners=True)[0].numpy()
        out.append((np.abs(img) * np.exp(1j * amplitude * np.pi * phi)).astype(np.complex64))
    return out


def _ground_truth(cfg: Config, test: bool):
    """Images for simulation: (arrays, names, normalization). The test images take the normalisation of the
    training images (one set of units for the model)."""
    from selfinv.data import TEST_NAMES, TRAIN_NAMES, Normalization

    d = cfg.data
    if d.source == "embedded":
        names = (d.test_images or list(TEST_NAMES)) if test else (d.images or list(TRAIN_NAMES))
        limit = d.max_test_images if test else d.max_images
        if limit:
            names = names[:limit]
        imgs, names = _embedded(names, d.gray)
        norm = d.normalization
        return imgs, names, Normalization(**norm.model_dump()) if not isinstance(norm, str) else Normalization.identity()
    folder = d.test_path if test else d.path
    if folder is None:
        raise ConfigError("config: data.path is required for data.source = images (a folder of ground-truth images)")
    where = "data.test_path" if test else "data.path"
    arrays, names, infos = _read_folder(folder, d.max_test_images if test else d.max_images, where, d.key)
    if test and isinstance(d.normalization, str) and d.normalization != "none":
        train_arrays, train_names, train_infos = _read_folder(d.path, d.max_images, "data.path", d.key)
        return arrays, names, image_normalization(cfg, train_arrays, train_names, train_infos, "data.path")
    return arrays, names, image_normalization(cfg, arrays, names, infos, where)


def _simulated(cfg: Config, imgs, names, norm, patch: int | None, noise, test: bool):
    from selfinv.data import SimulatedDataset, center_crop

    d = cfg.data
    if test:
        size = d.test_size or d.patch_size
        if size is not None:
            cropped = []
            for name, img in zip(names, imgs, strict=True):
                if min(img.shape[-2:]) < size:
                    raise ConfigError(
                        f"config: data.test_size = {size} is larger than the test image {name} ({img.shape[-2]}x{img.shape[-1]})"
                    )
                cropped.append(np.ascontiguousarray(center_crop(torch.from_numpy(np.asarray(img)), size).numpy()))
            imgs = cropped
    if not imgs:
        raise ConfigError("config: no images")
    chans = {img.shape[0] for img in imgs}
    if len(chans) > 1:
        odd = [n for n, i in zip(names, imgs, strict=True) if i.shape[0] != imgs[0].shape[0]]
        raise ConfigError(f"config: the images have different numbers of channels ({sorted(chans)}): {names[0]} has "
                          f"{imgs[0].shape[0]}, {odd[0]} has {next(i.shape[0] for n, i in zip(names, imgs, strict=True) if n == odd[0])}")
    c = imgs[0].shape[0]
    if patch is not None:
        h = w = patch
    else:
        shapes = {tuple(img.shape[-2:]) for img in imgs}
        if len(shapes) > 1:
            listing = ", ".join(f"{n} {tuple(i.shape[-2:])}" for n, i in list(zip(names, imgs, strict=True))[:3])
            raise ConfigError(
                f"config: the images have different sizes ({listing}, ...); set data.patch_size to train on patches"
                if not test else f"config: the test images have different sizes ({listing}, ...); set data.test_size"
            )
        h, w = next(iter(shapes))
    op, sampler = build_physics(cfg, (c, h, w), noise)
    if op.is_complex is True and cfg.data.phase > 0:
        imgs = _with_phase([norm.normalize(i) for i in imgs], cfg.data.phase, cfg.seed + (1 if test else 0))
        norm_used = norm
        from selfinv.data import Normalization

        norm = Normalization.identity()
    else:
        norm_used = norm
    if d.true_noise is not None and noise is None:
        raise ConfigError("config: data.true_noise needs noise (the model the losses assume) as well")
    true_noise = build_noise(cfg, d.true_noise, "data.true_noise")
    if isinstance(true_noise if true_noise is not None else noise, Unknown):
        raise ConfigError("config: noise 'unknown' describes real measurements and cannot simulate any: for simulated "
                          "data set data.true_noise to the noise that corrupts them (the losses still see 'unknown')")
    ds = SimulatedDataset(
        imgs,
        sampler if sampler is not None else op,
        noise=true_noise if true_noise is not None else noise,
        assumed_noise=noise if true_noise is not None else None,
        seed=cfg.seed + (10_007 if test else 0),
        patch_size=None if test else patch,
        patches_per_image=1 if test else d.patches_per_image,
        pairs=d.pairs,
        resample_noise_each_epoch=False if test else d.resample_noise_each_epoch,
        normalization=norm,
        names=names,
    )
    ds.normalization = norm_used
    return ds, op, sampler, (c, h, w)


def _measurement_physics_factory(cfg: Config, img_shape_hint, fallback_noise):
    """A callable ``(noise=None, y=None, **file_arrays) -> operator`` for a measurement set: the config's operator
    with the file's per-sample arrays, a mask from the zeros of y when the operator needs one and nobody gave it;
    the file's noise model, else ``fallback_noise``."""
    import warnings

    from selfinv.data.sources import MASK_FROM_ZEROS, mask_from_zeros

    cls = OPERATORS[cfg.physics.name]
    params = {k: v for k, v in _params(cfg.physics, ("name", "sampler")).items()}
    base = _physics_args(cls, params, "physics")
    sized = _size_args(cls, img_shape_hint, cfg.seed) if img_shape_hint is not None else {}
    if any(k in _signature(cls) for k in _SIZE_ARGS) and img_shape_hint is None:
        raise ConfigError(f"config: data.img_size is needed for {cfg.physics.name} measurement sets (the size of x)")
    required = [k for k, f in _param_fields("physics", cfg.physics.name, cls).items() if f[1] is ...]

    def factory(noise=None, y=None, **arrays):
        args = {**base, **sized, **arrays}
        if "mask" in required and args.get("mask") is None and y is not None and y.ndim == 4:
            args["mask"] = mask_from_zeros(y)
            warnings.warn(f"physics.mask: {MASK_FROM_ZEROS}", stacklevel=2)
        missing = [k for k in required if args.get(k) is None]
        if missing:
            raise ValueError(f"the {cfg.physics.name} operator needs {', '.join(missing)}: give physics.{missing[0]} in the "
                             f"config or a {missing[0]} array in the measurement set")
        try:
            return cls(**args, noise=noise if noise is not None else fallback_noise)
        except TypeError as e:
            raise ValueError(f"cannot build {cfg.physics.name} from the file's arrays {sorted(arrays)} and the config ({e})") from None

    return factory


def _normalization_arg(cfg: Config):
    from selfinv.data import Normalization

    norm = cfg.data.normalization
    return norm if isinstance(norm, str) else Normalization(**norm.model_dump())


def measurement_set(cfg: Config, path: str | Path, noise=None, img_shape=None, normalization=None, where: str = "data"):
    """A :class:`~selfinv.data.MeasurementDataset` with the config's operator, from any source
    :func:`selfinv.data.sources.load_measurements` reads (a measurement set, a folder with ``y/``, image files).

    ``noise`` replaces the file's noise model (None: the file's, else the config's); ``img_shape`` (C, H, W)
    sizes operators that need it (tomography, compressed sensing); ``normalization`` defaults to
    ``data.normalization`` (a trained model passes its own). The operator is checked against the first
    measurement (real/complex, shapes, channels). Returns ``(dataset, operator, x_shape, is_complex)``.
    """
    from selfinv.data.sources import load_measurements, split_key

    factory = _measurement_physics_factory(cfg, img_shape, build_noise(cfg))
    p, _ = split_key(path)
    ds = load_measurements(path, factory, key=cfg.data.key, noise=noise,
                           normalization=_normalization_arg(cfg) if normalization is None else normalization)
    op = ds.make_physics({k: v[:1] for k, v in ds.params.items()})
    try:
        x0 = op.A_adjoint(ds.y[:1])  # checks that the operator fits the data (real/complex, shapes, channels)
    except ValueError as e:
        raise ValueError(f"{p.name}: the measurements do not fit the {cfg.physics.name} operator: {e}") from None
    if ds.x is not None and tuple(ds.x.shape[1:]) != tuple(x0.shape[1:]):
        raise ValueError(f"{p.name}: x has shape {tuple(ds.x.shape[1:])} but A^H y has {tuple(x0.shape[1:])}")
    if x0.ndim != 4:
        raise ValueError(f"{p.name}: the images A^H y must be (C, H, W), got {tuple(x0.shape[1:])}; set {where}.img_size")
    return ds, op, tuple(int(s) for s in x0.shape[1:]), bool(x0.is_complex())


def _measurements(cfg: Config, path: str | None, noise, where: str):
    d = cfg.data
    if path is None:
        raise ConfigError(f"config: {where} is required for data.source = measurements (a measurement set, a folder or image files)")
    hint = None
    if d.img_size is not None:
        if len(d.img_size) not in (2, 3):
            raise ConfigError("config: data.img_size must be N, [H, W] or [C, H, W]")
        hint = tuple(d.img_size) if len(d.img_size) == 3 else (1, *d.img_size)
    try:
        return measurement_set(cfg, path, noise=noise, img_shape=hint)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"config: {where}: {str(e).replace('pass key=', 'set data.key (or FILE:KEY)')}") from None


def _absolute_paths(cfg: Config) -> Config:
    data = cfg.model_dump(mode="json", exclude_unset=True)  # keeps which keys the user set
    data.setdefault("data", {})
    data.setdefault("physics", cfg.physics.model_dump(mode="json"))
    for key in ("path", "test_path"):
        if data["data"].get(key):
            data["data"][key] = str(Path(data["data"][key]).expanduser().resolve())
    for k, v in list(data["physics"].items()):
        if isinstance(v, str) and k not in ("name",) and Path(v).suffix and Path(v).expanduser().exists():
            data["physics"][k] = str(Path(v).expanduser().resolve())
    return parse_config(data)


def _resolved(cfg: Config, **data: Any) -> Config:
    """The config with ``data`` keys replaced (what the run really used, for config.yaml and checkpoints)."""
    dumped = cfg.model_dump(mode="json")
    dumped["data"].update(data)
    return parse_config(dumped)


def _bands(imgs, names, fraction: float, patch: int | None):
    """Ground-truth images cut into a training band and a validation band (the last ``fraction`` of the longer
    side): validation within each image, when there is one image or ``data.val_fraction`` is 0."""
    if patch is None:
        raise ConfigError("config: validation within one image needs data.patch_size (patches of a training band and "
                          "of a validation band), or more images with data.val_fraction > 0")
    train, val = [], []
    for name, img in zip(names, imgs, strict=True):
        h, w = img.shape[-2:]
        axis = -2 if h >= w else -1
        size = img.shape[axis]
        cut = int(round((1 - fraction) * size))
        if min(cut, size - cut, img.shape[-1 if axis == -2 else -2]) < patch:
            raise ConfigError(f"config: {name} ({h}x{w}) is too small to hold out a {fraction:.0%} band for validation "
                              f"with {patch}-pixel patches; lower data.patch_size or change data.val_holdout")
        first, second = (img[..., :cut, :], img[..., cut:, :]) if axis == -2 else (img[..., :cut], img[..., cut:])
        train.append((f"{name}[train band]", np.ascontiguousarray(first)))
        val.append((f"{name}[validation band]", np.ascontiguousarray(second)))
    both = train + val
    return [a for _, a in both], [n for n, _ in both], len(train)


def _range_warning(ds, op, where: str) -> None:
    """Warn when the normalised images are far from the [0, 1] the models, noise levels and PSNR assume."""
    import warnings

    from selfinv.data.sources import _back_projection

    n = min(len(ds), 8)
    if n == 0:
        return
    if ds.x is not None:
        ref = ds.x[:n]
    else:
        batch_op = ds.make_physics({k: v[:n] for k, v in ds.params.items()}) if ds.params else op
        ref = _back_projection(batch_op, ds.y[:n])
    ref = ref.abs() if ref.is_complex() else ref
    high = float(torch.quantile(ref.reshape(-1)[:: max(1, ref.numel() // 1_000_000)].double().abs(), 0.995))
    if high > 10 or 0 < high < 0.1:
        warnings.warn(f"{where}: after normalisation the images reach about {high:.3g}, far from the [0, 1] the model, "
                      "the noise levels and PSNR (data.data_range) assume; set data.normalization (auto picks a robust "
                      "scale)", stacklevel=3)


def build_data(cfg: Config) -> tuple[Any, Any, tuple[int, int, int], bool, Any, Any, Config]:
    """(dataset, physics template, img_shape, is_complex, normalization, sampler, resolved cfg) for training.

    The resolved config records what was used: the normalisation as ``{scale, offset}``, ``patch_size: null`` for
    measurements that cannot be cut into patches, the measurement set's noise model when the config has none."""
    from selfinv.data.patches import crop_alignment

    noise = build_noise(cfg)
    d = cfg.data
    explicit = set(d.model_fields_set)  # keys the user wrote (defaults adapt to measurement sets)
    if d.source == "measurements":
        if d.true_noise is not None:
            raise ConfigError("config: data.true_noise is for simulated data (data.source embedded or images)")
        ds, op, img_shape, is_complex = _measurements(cfg, d.path, noise, "data.path")
        # physics.sampler, if given, models the operator family for the losses that draw operators (MOI)
        sampler = build_sampler(cfg.physics.sampler, img_shape, cfg.seed) if cfg.physics.sampler is not None else None
        if noise is None and op.noise is not None:  # record the measurement set's noise in the resolved config
            desc = describe_noise(op.noise)
            if desc is not None:
                cfg = parse_config({**cfg.model_dump(mode="json"), "noise": desc})
        patch = d.patch_size
        if patch is not None and crop_alignment(op) is None:
            if "patch_size" in explicit:
                raise ConfigError(
                    f"config: data.patch_size = {patch}: {cfg.physics.name} measurements cannot be cut into patches (a crop "
                    "of k-space, a sinogram or a blurred image is not the measurement of a crop of the image); set "
                    "data.patch_size: null to train on whole measurements"
                )
            patch = None
        elif patch is not None and min(ds.y.shape[-2:]) < patch:
            raise ConfigError(f"config: data.patch_size = {patch} is larger than the measurements "
                              f"({ds.y.shape[-2]}x{ds.y.shape[-1]}); lower it, or null for whole measurements")
        per_image = d.patches_per_image
        if patch is not None and "patches_per_image" not in explicit:  # an epoch covers every pixel once
            per_image = max(per_image, round(ds.y.shape[-2] * ds.y.shape[-1] / patch**2))
        cfg = _resolved(cfg, patch_size=patch, patches_per_image=per_image, normalization=ds.normalization.to_dict())
        _range_warning(ds, op, "data.path")
        return ds, op, img_shape, is_complex, ds.normalization, sampler, cfg
    imgs, names, norm = _ground_truth(cfg, test=False)
    groups = len(imgs)
    within = d.val_fraction == 0 or groups < 2
    if within:
        imgs, names, n_bands = _bands(imgs, names, d.val_holdout, d.patch_size)
    ds, op, sampler, img_shape = _simulated(cfg, imgs, names, norm, d.patch_size, noise, test=False)
    if within:
        ds.validation_groups = torch.arange(n_bands, 2 * n_bands)
    cfg = _resolved(cfg, normalization=ds.normalization.to_dict())
    _range_warning(ds, op, "data.path" if d.source == "images" else "data")
    return ds, op, img_shape, bool(op.is_complex is True), ds.normalization, sampler, cfg


def split_data(cfg: Config, ds) -> tuple[Any, Any]:
    """The (training, validation) sets of a built data set: by source image / measurement (``data.val_fraction``),
    or within each measurement when there is one or ``val_fraction`` is 0 (:mod:`selfinv.training.holdout`:
    a band of the image, or held-out acquired entries); measurement sets of pixel-wise operators are then cut
    into new random patches every epoch (``data.patch_size``)."""
    from selfinv.data import RandomPatches, Subset, split
    from selfinv.training.holdout import within_measurements

    d = cfg.data
    bands = getattr(ds, "validation_groups", None)
    try:
        if bands is not None:  # simulated: a training and a validation band of every image
            is_val = torch.isin(ds.groups, bands)
            idx = torch.arange(len(ds))
            return Subset(ds, idx[~is_val]), Subset(ds, idx[is_val])
        if d.val_fraction == 0 or torch.unique(ds.groups).numel() < 2:
            train, val = within_measurements(ds, d.val_holdout, cfg.seed)
        else:
            train, val = split(ds, d.val_fraction, seed=cfg.seed)
        if d.source == "measurements" and d.patch_size is not None:
            train = RandomPatches(train, d.patch_size, d.patches_per_image, seed=cfg.seed)
    except ValueError as e:
        raise ConfigError(f"config: data: {e}") from None
    return train, val


def build_test_set(cfg: Config, normalization=None):
    """The evaluation data of a config: the test split (embedded), ``data.test_path``, or None (use validation).

    ``normalization`` (a trained model's) replaces the config's, so that test data are in the model's units."""
    noise = build_noise(cfg)
    if normalization is not None:
        cfg = _resolved(cfg, normalization=normalization.to_dict())
    if cfg.data.source == "measurements":
        if cfg.data.test_path is None:
            return None
        return _measurements(cfg, cfg.data.test_path, noise, "data.test_path")[0]
    if cfg.data.source == "images" and cfg.data.test_path is None:
        return None
    imgs, names, norm = _ground_truth(cfg, test=True)
    return _simulated(cfg, imgs, names, norm, None, noise, test=True)[0]


def build_experiment(cfg: Config) -> Experiment:
    """Data (train/validation split), physics, model and loss of a config; the config comes back resolved."""
    cfg = _absolute_paths(cfg)
    mode = cfg.data.normalization if isinstance(cfg.data.normalization, str) else "explicit"
    ds, op, img_shape, is_complex, norm, sampler, cfg = build_data(cfg)
    train, val = split_data(cfg, ds)
    resolved = cfg.model_dump(mode="json")
    resolved["model"]["wrapper"] = resolve_wrapper(cfg)
    cfg = parse_config(resolved)
    unmet = unmet_backbone_needs(cfg)
    if unmet:
        raise ConfigError(f"config: loss {cfg.loss.name} needs {unmet}")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, img_shape[0], is_complex)
    loss = build_loss(cfg, sampler, img_shape)
    return Experiment(cfg, ds, train, val, img_shape, is_complex, norm, op, sampler, model, loss, mode)


def fit_config(cfg: Config):
    """The :class:`~selfinv.training.FitConfig` of a config."""
    t = cfg.training
    kwargs = {f.name: getattr(t, f.name) for f in dataclasses.fields(FitConfig) if f.name in type(t).model_fields}
    try:
        return FitConfig(**kwargs, seed=cfg.seed, data_range=cfg.data.data_range)
    except ValueError as e:
        raise ConfigError(f"config: training: {e}") from None


def total_steps(cfg: Config, n_train: int) -> int:
    """The number of optimisation steps a run takes (as :func:`selfinv.training.fit` counts them)."""
    from selfinv.training.fit import epoch_batches

    per_epoch = len(epoch_batches(n_train, cfg.training.batch_size, cfg.seed, 0))
    steps = per_epoch * cfg.training.epochs
    return min(steps, cfg.training.max_steps) if cfg.training.max_steps is not None else steps


def steps_to_epochs(cfg: Config, n_train: int, steps: int) -> int:
    """The number of epochs that hold ``steps`` steps."""
    from selfinv.training.fit import epoch_batches

    per_epoch = len(epoch_batches(n_train, cfg.training.batch_size, cfg.seed, 0))
    return max(1, math.ceil(steps / per_epoch))


def section_fields(union: Any, name: str) -> dict[str, Any]:
    """The keys of one registry entry of a section (e.g. ``section_fields(LossConfig, "sure")``) with their
    defaults (``...`` for required keys), ``name`` excluded.

    Example:
        >>> from selfinv.config import NoiseConfig
        >>> section_fields(NoiseConfig, "poisson_gaussian")
        {'gain': Ellipsis, 'sigma': Ellipsis}
    """
    kind, members = _unwrap(union)
    if kind != "union" or name not in members:
        raise ConfigError(f"config: unknown name {name!r}")
    out = {}
    for k, f in members[name].model_fields.items():
        if k != "name":
            out[k] = ... if f.is_required() else f.default
    return out
