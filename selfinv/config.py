r"""The configuration of a training run: a pydantic schema generated from the registries, YAML I/O, builders.

A run is described by one YAML file with seven top-level keys (every one optional; the defaults train a
small U-Net with SURE on Gaussian denoising of the embedded photographs)::

    data:      where the images or measurements come from, patches, split, normalisation, data range
    physics:   {name: <OPERATORS key>, <operator parameters>, sampler: {name: <SAMPLERS key>, ...}}
    noise:     {name: <NOISE_MODELS key>, <parameters>}   (null: noiseless / the measurement set's)
    loss:      {name: <LOSSES key>, weight: 1.0, <parameters>, extra: [<more terms>]}
    model:     {backbone: {name: <BACKBONES key>, ...}, wrapper: {name: backprojection | unrolled | none | auto, ...}}
    training:  the fields of :class:`selfinv.training.FitConfig` + checkpoint_every, patience, run_dir, progress
    seed:      one integer for the data, the operators, the initialisation and the training draws

Every registry section is validated against the constructor of the class it names (the accepted keys are
the constructor's arguments, read from its signature), so a typo'd key or name is refused with one line::

    config: unknown key 'loss.nmae' (allowed: name, weight, extra, divergence, tau, ...)
    config: loss.name = 'sur' is not one of supervised, mc, noise2noise, r2r, sure, ...

:func:`load_config` reads a file and ``--set key=value`` overrides; :class:`ConfigError` carries the one-line
message. :func:`build_experiment` turns a :class:`Config` into data sets, physics, model and loss, only
through the registries (``OPERATORS``, ``SAMPLERS``, ``NOISE_MODELS``, ``LOSSES``, ``BACKBONES``,
``WRAPPERS`` and :data:`TRANSFORMS`).

Example:
    >>> cfg = parse_config({"loss": {"name": "r2r", "n_samples": 3}, "training": {"epochs": 2}})
    >>> cfg.loss.name, cfg.loss.n_samples, cfg.physics.name, cfg.noise.sigma
    ('r2r', 3, 'denoising', 0.1)
    >>> parse_config({"loss": {"name": "sure", "nmae": 1}})
    Traceback (most recent call last):
    ...
    selfinv.config.ConfigError: config: unknown key 'loss.nmae' (allowed: name, weight, extra, divergence, tau, tau_rel, tau2, tau2_rel, n_probes, second_order; did you mean 'name'?)
    >>> parse_config({"loss": "sur"})       # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    selfinv.config.ConfigError: config: loss.name = 'sur' is not one of supervised, mc, ...
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, ValidationError, create_model

from selfinv.losses import LOSSES, Loss
from selfinv.models import BACKBONES, WRAPPERS
from selfinv.noise import NOISE_MODELS
from selfinv.physics import OPERATORS, SAMPLERS
from selfinv.physics.blur import box_kernel, gaussian_kernel, motion_kernel
from selfinv.training.fit import SCHEDULERS, FitConfig
from selfinv.transforms import Product, Reflect, Rotate, Scale, Shift, Transform

__all__ = [
    "KERNELS",
    "LOCAL_OPERATORS",
    "LOSS_BACKBONES",
    "TRANSFORMS",
    "Config",
    "ConfigError",
    "Experiment",
    "build_experiment",
    "build_loss",
    "build_model",
    "build_noise",
    "build_physics",
    "build_test_set",
    "build_transform",
    "dump_yaml",
    "load_config",
    "parse_config",
]

#: group actions for equivariant imaging, by config name (``transform: rotate`` or ``{name: rotate, n: 4}``)
TRANSFORMS: dict[str, type[Transform]] = {"shift": Shift, "rotate": Rotate, "reflect": Reflect, "scale": Scale}

#: fixed blur kernels by config name (``kernel: {kind: gaussian, sigma: 1.5}``)
KERNELS: dict[str, Callable[..., torch.Tensor]] = {"gaussian": gaussian_kernel, "box": box_kernel, "motion": motion_kernel}

#: losses that need a particular backbone (they check a property of the network)
LOSS_BACKBONES: dict[str, dict[str, Any]] = {
    "blind_spot": {"name": "blindspot", "width": 16, "depth": 2},
    "autoencoder": {"name": "autoencoder", "width": 16, "depth": 2, "bottleneck": 4},
}

#: operators whose measurements are image-shaped and local (a pixel of y depends on nearby pixels of x):
#: reconstruct tiles them; the others are reconstructed whole
LOCAL_OPERATORS = ("denoising", "inpainting", "demosaicing")

# constructor arguments the builders fill in from the data (image size, seed) and never read from a config
_SIZE_ARGS = ("img_size", "img_shape", "in_shape")
_SEED_ARGS = ("generator",)
_SKIP = {
    "physics": {"noise", "dtype", *_SIZE_ARGS, *_SEED_ARGS},
    "sampler": {"dtype", "device", *_SIZE_ARGS},
    "noise": set(),
    "loss": set(),
    "backbone": {"in_channels", "out_channels"},
    "wrapper": {"backbone", "denoisers"},
}
# defaults the signatures cannot express
_DEFAULTS = {("loss", "moi", "sampler"): "physics"}


class ConfigError(ValueError):
    """A configuration problem, as one line (``config: ...``)."""


# ====================================================================== schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


_BASIC = {"float": float, "int": int, "str": str, "bool": bool}


def _field_type(annotation: Any, default: Any) -> Any:
    """A pydantic type from a constructor annotation: one basic type (optionally None), else Any.

    Tensors cannot come from a YAML file as such: tensor-valued arguments (masks, kernels) are ``Any`` and
    converted by the builders (a file path, a nested list, or a kernel description).
    """
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.replace("typing.", "").split("|")]
    optional = "None" in parts or default is None
    basics = [p for p in parts if p in _BASIC]
    others = [p for p in parts if p not in _BASIC and p != "None" and p != "torch.Tensor"]
    if len(basics) == 1 and not others:
        t = _BASIC[basics[0]]
        return t | None if optional else t
    if not basics and not others and isinstance(default, (bool, int, float, str)):
        return type(default) | None if optional else type(default)
    if others == ["tuple[float, float]"] and not basics:
        return tuple[float, float] | None if optional else tuple[float, float]
    return Any


def _param_fields(section: str, name: str, cls: type) -> dict[str, tuple[Any, Any]]:
    """Fields of the model of ``cls``: its constructor's keyword arguments, minus the structural ones."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return {}
    out: dict[str, tuple[Any, Any]] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in _SKIP[section]:
            continue
        default = _DEFAULTS.get((section, name, p.name), p.default)
        if isinstance(default, tuple):
            default = list(default)
        if default is p.empty:
            out[p.name] = (_field_type(p.annotation, None), ...)
        else:
            out[p.name] = (_field_type(p.annotation, default), default)
    return out


def _shorthand(value: Any) -> Any:
    """``loss: sure`` is ``loss: {name: sure}``."""
    return {"name": value} if isinstance(value, str) else value


def _union(section: str, registry: dict[str, type], extra: dict[str, tuple[Any, Any]] | None = None,
           synthetic: Sequence[str] = (), tensor_fields_optional: bool = False) -> Any:
    """A discriminated union (on ``name``) of one strict model per registry entry."""
    members = []
    for name, cls in registry.items():
        fields = _param_fields(section, name, cls)
        if tensor_fields_optional:  # an operator's mask/kernel may come from its sampler instead
            fields = {k: ((Any, None) if v[1] is ... else v) for k, v in fields.items()}
        own = fields
        fields = {}
        for k, v in (extra or {}).items():
            fields[k] = own[k] if k in own else v  # EI/REI/MOI: the config's weight is their own λ
        fields.update({k: v for k, v in own.items() if k not in fields})
        model = create_model(f"{section}_{name}", __base__=_Strict, name=(Literal[name], ...), **fields)
        model.__doc__ = f"{section} {name!r}: the arguments of {cls.__name__}"
        members.append(model)
    for name in synthetic:
        members.append(create_model(f"{section}_{name}", __base__=_Strict, name=(Literal[name], ...)))
    return Annotated[Union[tuple(members)], BeforeValidator(_shorthand), Discriminator("name")]  # noqa: UP007


SamplerConfig = _union("sampler", SAMPLERS)
PhysicsConfig = _union("physics", OPERATORS, extra={"sampler": (SamplerConfig | None, None)}, tensor_fields_optional=True)
NoiseConfig = _union("noise", NOISE_MODELS)
LossTerm = _union("loss", LOSSES, extra={"weight": (float, 1.0)})
LossConfig = _union("loss", LOSSES, extra={"weight": (float, 1.0), "extra": (list[LossTerm], [])})
BackboneConfig = _union("backbone", BACKBONES)
WrapperConfig = _union("wrapper", WRAPPERS, synthetic=("none", "auto"))


class NormalizationConfig(_Strict):
    """``u = (v - offset) / scale`` (:class:`selfinv.data.Normalization`)."""

    scale: float = 1.0
    offset: float = 0.0


class DataConfig(_Strict):
    """Where the training data come from and how they are cut."""

    source: Literal["embedded", "images", "measurements"] = "embedded"
    images: list[str] | None = None  # embedded: names (default: the training split); "phantom" = Shepp-Logan
    test_images: list[str] | None = None  # embedded: names for evaluation (default: the test split)
    path: str | None = None  # images: a folder of ground-truth images; measurements: .npz/.h5 or a folder
    test_path: str | None = None  # the same for evaluation (default: the validation split)
    gray: bool = True  # embedded: luminance (1 channel) or RGB (3)
    phase: float = Field(0.0, ge=0)  # complex operators (MRI): amplitude (× π rad) of a smooth random phase
    img_size: list[int] | None = None  # measurements: (C,) H, W of x for operators that need it (tomography, CS)
    patch_size: int | None = Field(32, ge=4)  # train on random square patches (null: whole images of one size)
    patches_per_image: int = Field(4, ge=1)
    test_size: int | None = Field(None, ge=4)  # evaluation: central crop side (default: patch_size)
    max_images: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.25, gt=0, lt=1)
    normalization: NormalizationConfig | None = None  # null: from the files (8-bit → /255), none for arrays
    data_range: float = Field(1.0, gt=0)  # of the normalised images, for PSNR/SSIM
    pairs: bool = False  # simulate a second measurement y2 (Noise2Noise)
    resample_noise_each_epoch: bool = False


def _fit_fields() -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(FitConfig):
        if f.name in ("seed", "data_range"):  # top-level seed, data.data_range
            continue
        t = Literal[tuple(SCHEDULERS)] if f.name == "scheduler" else _field_type(f.type, f.default)
        out[f.name] = (t, f.default)
    return out


TrainingConfig = create_model(
    "TrainingConfig",
    __base__=_Strict,
    checkpoint_every=(int | None, None),  # also write last.pt every this many steps
    patience=(int | None, None),  # early stopping after this many epochs without a better validation loss
    run_dir=(str | None, None),  # default: runs/<config file name>
    progress=(bool | None, None),  # progress bar (default: when stderr is a terminal)
    **_fit_fields(),
)
TrainingConfig.__doc__ = "The fields of selfinv.training.FitConfig (minus seed and data_range) and the run's options."


class ModelConfig(_Strict):
    """A backbone from BACKBONES inside a physics-aware wrapper from WRAPPERS (or none)."""

    backbone: BackboneConfig = Field(default={"name": "unet", "depth": 2, "width": 16}, validate_default=True)
    wrapper: WrapperConfig = Field(default={"name": "auto"}, validate_default=True)


class Config(_Strict):
    """A training run (module docstring)."""

    data: DataConfig = Field(default_factory=DataConfig)
    physics: PhysicsConfig = Field(default={"name": "denoising"}, validate_default=True)
    noise: NoiseConfig | None = Field(default={"name": "gaussian", "sigma": 0.1}, validate_default=True)
    loss: LossConfig = Field(default={"name": "sure"}, validate_default=True)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    seed: int = 0


# ====================================================================== errors
def _unwrap(ann: Any) -> tuple[str, Any]:
    origin = typing.get_origin(ann)
    if origin is Annotated:
        return _unwrap(typing.get_args(ann)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
        if all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
            return "union", {typing.get_args(a.model_fields["name"].annotation)[0]: a for a in args}
        return "leaf", ann
    if origin is list:
        return "list", typing.get_args(ann)[0]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "model", ann
    return "leaf", ann


def _walk(loc: tuple) -> tuple[list, type[BaseModel] | None]:
    """The user-visible path of a pydantic error location (union tags removed) and its innermost model."""
    kind, cur = "model", Config
    path: list = []
    parent: type[BaseModel] | None = Config
    for part in loc:
        if kind == "model" and isinstance(part, str) and part in cur.model_fields:
            parent = cur
            path.append(part)
            kind, cur = _unwrap(cur.model_fields[part].annotation)
        elif kind == "union" and isinstance(part, str) and part in cur:
            kind, cur = "model", cur[part]
            parent = cur
        elif kind == "list" and isinstance(part, int):
            path.append(part)
            kind, cur = _unwrap(cur)
        else:
            path.append(part)
            kind, cur = "leaf", None
    return path, (cur if kind == "model" else parent)


def _dotted(path: Sequence) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "config"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_validation_error(err: ValidationError, prefix: str = "config") -> str:
    """One line for the first error of a pydantic ValidationError (and how many more there are)."""
    errors = err.errors(include_url=False)
    rank = {"extra_forbidden": 0, "union_tag_invalid": 1, "union_tag_not_found": 1, "literal_error": 2}
    e = min(errors, key=lambda x: rank.get(x["type"], 3))
    path, model = _walk(tuple(e["loc"]))
    kind = e["type"]
    where = _dotted(path)
    if kind == "extra_forbidden":
        owner = _walk(tuple(e["loc"])[:-1])[1]
        allowed = [k for k in (owner.model_fields if owner is not None else {})]
        key = str(path[-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        msg = f"unknown key '{where}' (allowed: {', '.join(allowed)}" + (f"; did you mean '{hint[0]}'?)" if hint else ")")
    elif kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(e["ctx"]["expected_tags"]).split(",")]
        hint = difflib.get_close_matches(str(e["ctx"]["tag"]), tags, n=1)
        msg = f"{where}.name = {e['ctx']['tag']!r} is not one of {', '.join(tags)}" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    elif kind == "union_tag_not_found":
        msg = f"{where} needs a 'name'"
    elif kind == "missing":
        msg = f"missing key '{where}'"
    elif kind == "literal_error":
        expected = str(e["ctx"]["expected"]).replace("'", "").replace(" or ", ", ")
        msg = f"{where} = {_short(e['input'])} is not one of {expected}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"{where} must be a mapping of keys to values, got {_short(e['input'])}"
    else:
        msg = f"{where} = {_short(e['input'])}: {e['msg'][0].lower()}{e['msg'][1:]}"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{prefix}: {msg}"


# ====================================================================== reading and writing
def parse_config(data: dict | None) -> Config:
    """Validate a dict (e.g. a parsed YAML file); any problem is one :class:`ConfigError` line."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: the file must hold a mapping of keys (data, physics, ...), got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML; list items by index: ``loss.extra.0.weight``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. training.lr=1e-3)")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".")]
        if not all(parts):
            raise ConfigError(f"--set {item!r}: empty key")
        node: Any = data
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"--set {key}: '{p}' is not an index of the list {'.'.join(parts[:i])}")
                if last:
                    node[int(p)] = _yaml_value(text)
                else:
                    node = node[int(p)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")
            if last:
                node[p] = _yaml_value(text)
            else:
                if isinstance(node.get(p), str):  # shorthand "loss: sure" -> {name: sure}
                    node[p] = {"name": node[p]}
                elif node.get(p) is None:
                    node[p] = {}
                node = node[p]
    return data


def read_yaml(path: str | Path) -> dict:
    """A YAML file as a dict; a missing or malformed file is one ConfigError line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path.name}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path.name}: cannot read the file ({type(e).__name__}: {e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: a config is a mapping of keys (data, physics, noise, loss, model, training, seed)")
    return data


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (``None``: the defaults), apply ``--set`` overrides and validate."""
    data = read_yaml(path) if path is not None else {}
    return parse_config(apply_overrides(data, overrides))


def dump_yaml(cfg: Config | dict) -> str:
    """The configuration as YAML (the resolved form written into run folders)."""
    import yaml

    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else cfg
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


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
    """A tensor-valued argument: a file (read_image; integer masks scaled to [0, 1]), a nested list, or
    a kernel description ``{kind: gaussian | box | motion, ...}`` (:data:`KERNELS`)."""
    from selfinv.data import read_image

    if isinstance(value, torch.Tensor):
        return value
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


def build_noise(cfg: Config):
    """The noise model of ``cfg.noise`` (None for noiseless)."""
    if cfg.noise is None:
        return None
    cls = NOISE_MODELS[cfg.noise.name]
    return _construct(cls, _physics_args(cls, _params(cfg.noise), "noise"), "noise")


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

    @property
    def data_info(self) -> dict[str, Any]:
        c, h, w = self.img_shape
        return {"channels": c, "complex": self.is_complex, "img_size": [h, w]}


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


def _read_folder(folder: str, max_images: int | None, where: str):
    from selfinv.data import Normalization, list_images, read_image

    try:
        files = list_images(folder)
    except ValueError as e:
        raise ConfigError(f"config: {where}: {e}") from None
    if not files:
        raise ConfigError(f"config: {where}: no readable image files in {folder}")
    files = files[:max_images] if max_images else files
    arrays, names, norms = [], [], {}
    for f in files:
        arr, info = read_image(f, return_info=True)
        slices = list(arr) if arr.ndim == 4 else [arr]
        arrays += slices
        names += [f"{f.name}[{i}]" for i in range(len(slices))] if arr.ndim == 4 else [f.name]
        norms.setdefault(Normalization.from_info(info), []).append(f.name)
    if len(norms) > 1:
        desc = "; ".join(f"{n.to_dict()}: {', '.join(v[:2])}" for n, v in norms.items())
        raise ConfigError(f"config: {where}: the files imply different normalisations ({desc}); set data.normalization")
    return arrays, names, next(iter(norms))


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
    """Images for simulation: (arrays, names, normalization or None)."""
    from selfinv.data import TEST_NAMES, TRAIN_NAMES, Normalization

    d = cfg.data
    norm = Normalization(**d.normalization.model_dump()) if d.normalization is not None else None
    if d.source == "embedded":
        names = (d.test_images or list(TEST_NAMES)) if test else (d.images or list(TRAIN_NAMES))
        if d.max_images and not test:
            names = names[: d.max_images]
        imgs, names = _embedded(names, d.gray)
        return imgs, names, norm or Normalization.identity()
    folder = d.test_path if test else d.path
    if folder is None:
        raise ConfigError("config: data.path is required for data.source = images (a folder of ground-truth images)")
    arrays, names, file_norm = _read_folder(folder, d.max_images, "data.test_path" if test else "data.path")
    return arrays, names, norm or file_norm


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
        raise ConfigError(f"config: the images have different numbers of channels ({sorted(chans)})")
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
    ds = SimulatedDataset(
        imgs,
        sampler if sampler is not None else op,
        noise=noise,
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
    """A callable ``(**file_arrays, noise) -> operator`` for MeasurementDataset.load / from_folder: the config's
    operator with the file's per-sample arrays; the file's noise model, else ``fallback_noise``."""
    cls = OPERATORS[cfg.physics.name]
    params = {k: v for k, v in _params(cfg.physics, ("name", "sampler")).items()}
    base = _physics_args(cls, params, "physics")
    sized = _size_args(cls, img_shape_hint, cfg.seed) if img_shape_hint is not None else {}
    if any(k in _signature(cls) for k in _SIZE_ARGS) and img_shape_hint is None:
        raise ConfigError(f"config: data.img_size is needed for {cfg.physics.name} measurement sets (the size of x)")

    def factory(noise=None, **arrays):
        try:
            return cls(**{**base, **sized, **arrays}, noise=noise if noise is not None else fallback_noise)
        except TypeError as e:
            raise ValueError(f"cannot build {cfg.physics.name} from the file's arrays {sorted(arrays)} and the config ({e})") from None

    return factory


def measurement_set(cfg: Config, path: str | Path, noise=None, img_shape=None, normalization=None, where: str = "data"):
    """A :class:`~selfinv.data.MeasurementDataset` (``.npz``/``.h5`` file or folder) with the config's operator.

    ``noise`` replaces the file's noise model (None: the file's, else the config's); ``img_shape`` (C, H, W)
    sizes operators that need it (tomography, compressed sensing). The operator is checked against the
    first measurement (real/complex, shapes, channels). Returns ``(dataset, operator, x_shape, is_complex)``.
    """
    from selfinv.data import MeasurementDataset

    factory = _measurement_physics_factory(cfg, img_shape, build_noise(cfg))
    p = Path(path)
    if p.is_dir():
        ds = MeasurementDataset.from_folder(p, physics=factory, noise=noise, normalization=normalization)
    elif p.is_file():
        ds = MeasurementDataset.load(p, physics=factory, noise=noise, normalization=normalization)
    else:
        raise ValueError(f"{p}: no such file or folder")
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
    from selfinv.data import Normalization

    d = cfg.data
    if path is None:
        raise ConfigError(f"config: {where} is required for data.source = measurements (.npz/.h5 file or a folder)")
    hint = None
    if d.img_size is not None:
        if len(d.img_size) not in (2, 3):
            raise ConfigError("config: data.img_size must be [H, W] or [C, H, W]")
        hint = tuple(d.img_size) if len(d.img_size) == 3 else (1, *d.img_size)
    norm = Normalization(**d.normalization.model_dump()) if d.normalization is not None else None
    try:
        return measurement_set(cfg, path, noise=noise, img_shape=hint, normalization=norm)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"config: {where}: {e}") from None


def _describe_noise(noise) -> dict | None:
    if noise is None:
        return None
    name = next((k for k, c in NOISE_MODELS.items() if type(noise) is c), None)
    if name is None:
        return None
    out: dict[str, Any] = {"name": name}
    for p in noise._per_sample:
        t = getattr(noise, p)
        out[p] = float(t.reshape(-1)[0]) if t.numel() else None
    return out


def _absolute_paths(cfg: Config) -> Config:
    data = cfg.model_dump(mode="json")
    for key in ("path", "test_path"):
        if data["data"].get(key):
            data["data"][key] = str(Path(data["data"][key]).expanduser().resolve())
    for k, v in list(data["physics"].items()):
        if isinstance(v, str) and k not in ("name",) and Path(v).suffix and Path(v).expanduser().exists():
            data["physics"][k] = str(Path(v).expanduser().resolve())
    return parse_config(data)


def build_data(cfg: Config) -> tuple[Any, Any, tuple[int, int, int], bool, Any, Any, Config]:
    """(dataset, physics template, img_shape, is_complex, normalization, sampler, resolved cfg) for training."""
    noise = build_noise(cfg)
    if cfg.data.source == "measurements":
        ds, op, img_shape, is_complex = _measurements(cfg, cfg.data.path, noise, "data.path")
        # physics.sampler, if given, models the operator family for the losses that draw operators (MOI)
        sampler = build_sampler(cfg.physics.sampler, img_shape, cfg.seed) if cfg.physics.sampler is not None else None
        if noise is None and op.noise is not None:  # record the measurement set's noise in the resolved config
            desc = _describe_noise(op.noise)
            if desc is not None:
                cfg = parse_config({**cfg.model_dump(mode="json"), "noise": desc})
        return ds, op, img_shape, is_complex, ds.normalization, sampler, cfg
    imgs, names, norm = _ground_truth(cfg, test=False)
    ds, op, sampler, img_shape = _simulated(cfg, imgs, names, norm, cfg.data.patch_size, noise, test=False)
    return ds, op, img_shape, bool(op.is_complex is True), ds.normalization, sampler, cfg


def build_test_set(cfg: Config):
    """The evaluation data of a config: the test split (embedded), ``data.test_path``, or None (use validation)."""
    noise = build_noise(cfg)
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
    from selfinv.data import split

    cfg = _absolute_paths(cfg)
    ds, op, img_shape, is_complex, norm, sampler, cfg = build_data(cfg)
    try:
        train, val = split(ds, cfg.data.val_fraction, seed=cfg.seed)
    except ValueError as e:
        raise ConfigError(f"config: data: {e} (add images, or patches from more images)") from None
    resolved = cfg.model_dump(mode="json")
    resolved["model"]["wrapper"] = resolve_wrapper(cfg)
    cfg = parse_config(resolved)
    needed = LOSS_BACKBONES.get(cfg.loss.name)
    if needed is not None and (cfg.model.backbone.name != needed["name"] or cfg.model.wrapper.name != "none"):
        raise ConfigError(
            f"config: loss {cfg.loss.name} needs model.backbone.name = {needed['name']} and model.wrapper = none "
            f"(got {cfg.model.backbone.name} in {cfg.model.wrapper.name})"
        )
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, img_shape[0], is_complex)
    loss = build_loss(cfg, sampler, img_shape)
    return Experiment(cfg, ds, train, val, img_shape, is_complex, norm, op, sampler, model, loss)


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
