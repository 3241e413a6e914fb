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
message. :func:`selfinv.experiment.build_experiment` turns a :class:`Config` into data sets, physics, model
and loss, only through the registries (``OPERATORS``, ``SAMPLERS``, ``NOISE_MODELS``, ``LOSSES``, ``BACKBONES``,
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
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, ValidationError, create_model

from selfinv.losses import LOSSES
from selfinv.models import BACKBONES, WRAPPERS
from selfinv.noise import NOISE_MODELS
from selfinv.physics import OPERATORS, SAMPLERS
from selfinv.physics.blur import box_kernel, gaussian_kernel, motion_kernel
from selfinv.training.fit import SCHEDULERS, FitConfig
from selfinv.transforms import Reflect, Rotate, Scale, Shift, Transform

__all__ = [
    "KERNELS",
    "LOCAL_OPERATORS",
    "LOSS_BACKBONES",
    "TRANSFORMS",
    "Config",
    "ConfigError",
    "dump_yaml",
    "load_config",
    "parse_config",
]

#: group actions for equivariant imaging, by config name (``transform: rotate`` or ``{name: rotate, n: 4}``)
TRANSFORMS: dict[str, type[Transform]] = {"shift": Shift, "rotate": Rotate, "reflect": Reflect, "scale": Scale}

#: fixed blur kernels by config name (``kernel: {kind: gaussian, sigma: 1.5}``)
KERNELS: dict[str, Callable[..., torch.Tensor]] = {"gaussian": gaussian_kernel, "box": box_kernel, "motion": motion_kernel}

#: the default backbone of the losses that need a particular one (their ``needs_backbone``: a blind-spot
#: network, a bottleneck, no skip connection from the input)
LOSS_BACKBONES: dict[str, dict[str, Any]] = {
    "blind_spot": {"name": "blindspot", "width": 16, "depth": 2},
    "autoencoder": {"name": "autoencoder", "width": 16, "depth": 2, "bottleneck": 4},
    # the output is the score s(y), not an image: no skip connection from the input (residual=False)
    "noise2score": {"name": "dncnn", "depth": 8, "width": 32, "batch_norm": False, "residual": False},
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

    scale: float = Field(1.0, gt=0, description="divide by this")
    offset: float = Field(0.0, description="after subtracting this (images only: measurements take a scale only)")


def _size_list(value: Any) -> Any:
    return [value, value] if isinstance(value, int) and not isinstance(value, bool) else value


def _auto_normalization(value: Any) -> Any:
    return "auto" if value is None else value


class DataConfig(_Strict):
    """Where the training data come from, how they are cut, normalised and split."""

    source: Literal["embedded", "images", "measurements"] = Field(
        "embedded", description="embedded: photographs shipped with scikit-image; images: your ground-truth images "
        "(measurements are simulated from them); measurements: your measurements, no ground truth needed")
    images: list[str] | None = Field(None, description="embedded: image names (default: the training split); "
                                     "'phantom' is the Shepp-Logan phantom")
    test_images: list[str] | None = Field(None, description="embedded: image names for evaluation (default: the test split)")
    path: str | None = Field(None, description="images: a folder or glob pattern of ground-truth images. measurements: "
                             "a measurement set (.npz/.h5 holding y and per-sample parameters; a folder with y/ and "
                             "optional x/ (references), y2/ (second measurements), one folder per parameter such as "
                             "mask/, meta.json), or image files holding y (a folder, a glob such as raw/*.tif, or one "
                             "file; FILE:KEY picks an array of an .h5/.npz/.mat file)")
    test_path: str | None = Field(None, description="the same for evaluation (default: the validation split)")
    key: str | None = Field(None, description="the array of .h5/.npz/.mat files to read (e.g. kspace, "
                            "CtDataLimited.sinogram); also written path: FILE:KEY")
    gray: bool = Field(True, description="embedded: luminance (1 channel) or RGB (3)")
    phase: float = Field(0.0, ge=0, description="complex operators (MRI) on real images: amplitude (× π rad) of a "
                         "smooth random phase")
    img_size: Annotated[list[int] | None, BeforeValidator(_size_list)] = Field(
        None, description="measurements: the size of x, N (square), [H, W] or [C, H, W], for operators whose "
        "measurements do not show it (tomography, compressed sensing)")
    patch_size: int | None = Field(32, ge=4, description="train on random square patches of this side (null: whole "
                                   "images of one size). images: patches of the ground truth, simulated once. "
                                   "measurements: new random crops every epoch, for operators acting pixel by pixel "
                                   "(denoising, inpainting, demosaicing); operators whose measurements cannot be cut "
                                   "(MRI k-space, sinograms, compressed sensing, blur) train on whole measurements and "
                                   "refuse an explicit patch_size")
    patches_per_image: int = Field(4, ge=1, description="images: patches cut from each image (fixed). measurements: "
                                   "random patches per measurement and epoch (default: enough to cover each "
                                   "measurement once per epoch, (H x W) / patch_size²)")
    test_size: int | None = Field(None, ge=4, description="evaluation: central crop side (default: patch_size)")
    max_images: int | None = Field(None, ge=1, description="use the first this many training images")
    max_test_images: int | None = Field(None, ge=1, description="and the first this many test images")
    true_noise: NoiseConfig | None = Field(None, description="simulated data: the noise that corrupts them when it "
                                           "differs from `noise` (what the losses assume), e.g. to study a "
                                           "mis-specified or unknown noise level")
    val_fraction: float = Field(0.25, ge=0, lt=1, description="share of the measurements (source images) held out "
                                "for validation; 0, or a single measurement, validates within each measurement "
                                "(see val_holdout)")
    val_holdout: float = Field(0.2, gt=0, lt=1, description="validation within measurements: the share of each "
                               "measurement held out — a band of the image for operators acting pixel by pixel, "
                               "acquired entries (k-space samples, sinogram bins) otherwise, never seen in training; "
                               "the validation loss is then the prediction error on them")
    normalization: Annotated[NormalizationConfig | Literal["auto", "range", "none"], BeforeValidator(_auto_normalization)] = Field(
        "auto", description="auto: 8-bit files / 255, anything else (16-bit, float, complex, DICOM) by a robust scale "
        "(99.5th percentile of |x|, or of the back-projection |A^H y| for measurements) so that values lie in about "
        "[0, 1]; range: the file type's range (8-bit / 255, 16-bit / 65535, floats as they are); none; or "
        "{scale, offset}. Stored in checkpoints and undone on output")
    data_range: float = Field(1.0, gt=0, description="of the normalised images, for PSNR and SSIM")
    pairs: bool = Field(False, description="simulate a second measurement y2 of each image (Noise2Noise)")
    resample_noise_each_epoch: bool = Field(False, description="simulated data: new noise every epoch (turns any "
                                            "loss into Noise2Noise; off by default)")


def _field_comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field of a dataclass, from its source (its documentation)."""
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # pragma: no cover - no source (frozen apps)
        return {}
    out = {}
    for line in source.splitlines():
        m = re.match(r"\s+(\w+): [^=]+=[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _fit_fields() -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    docs = _field_comments(FitConfig)
    for f in dataclasses.fields(FitConfig):
        if f.name in ("seed", "data_range"):  # top-level seed, data.data_range
            continue
        t = Literal[tuple(SCHEDULERS)] if f.name == "scheduler" else _field_type(f.type, f.default)
        out[f.name] = (t, Field(f.default, description=docs.get(f.name)))
    return out


TrainingConfig = create_model(
    "TrainingConfig",
    __base__=_Strict,
    checkpoint_every=(int | None, Field(None, ge=1, description="also write last.pt every this many steps")),
    patience=(int | None, Field(None, ge=1, description="early stopping after this many epochs without a better "
                                "validation loss")),
    run_dir=(str | None, Field(None, description="the run folder (default: runs/<config file name>); never "
                               "overwritten, continued with --resume")),
    progress=(bool | None, Field(None, description="progress bar (default: when stderr is a terminal)")),
    **_fit_fields(),
)
TrainingConfig.__doc__ = "The fields of selfinv.training.FitConfig (minus seed and data_range) and the run's options."


class ModelConfig(_Strict):
    """A backbone from BACKBONES inside a physics-aware wrapper from WRAPPERS (or none)."""

    backbone: BackboneConfig = Field(default={"name": "unet", "depth": 2, "width": 16}, validate_default=True,
                                     description="the network (in and out channels follow the data)")
    wrapper: WrapperConfig = Field(default={"name": "auto"}, validate_default=True,
                                   description="how the network sees the physics: auto is none for denoising, "
                                   "back-projection (filtered for tomography) otherwise")


class Config(_Strict):
    """A training run (module docstring)."""

    data: DataConfig = Field(default_factory=DataConfig, description="where the data come from")
    physics: PhysicsConfig = Field(default={"name": "denoising"}, validate_default=True,
                                   description="the forward operator A and its parameters")
    noise: NoiseConfig | None = Field(default={"name": "gaussian", "sigma": 0.1}, validate_default=True,
                                      description="the noise model the losses assume, levels in normalised units; "
                                      "{name: unknown} for real data of unknown noise; null: noiseless (or a "
                                      "measurement set's recorded noise)")
    loss: LossConfig = Field(default={"name": "sure"}, validate_default=True, description="the training loss")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the network")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="the optimisation and the run")
    seed: int = Field(0, description="one integer for the data, the operators, the initialisation and the training draws")


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
