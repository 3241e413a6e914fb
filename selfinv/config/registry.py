"""The schema sections read off the registries: one strict model per registered class, its keys the class's
constructor arguments.

Every registry section of a config (``physics``, ``physics.sampler``, ``noise``, ``loss`` and its ``extra``
terms, ``model.backbone``, ``model.wrapper``) is a discriminated union on ``name`` of one model per entry of
``OPERATORS``, ``SAMPLERS``, ``NOISE_MODELS``, ``LOSSES``, ``BACKBONES`` or ``WRAPPERS``: its fields are the
constructor's keyword arguments with their defaults (tensor-valued ones ``Any``), minus those the builders
fill in from the data (:data:`SIZE_ARGS`, the seed's generator, channels). :func:`registry_fields` reads the
same keys off a class, :func:`unwrap` takes a union apart again. :data:`LOSS_BACKBONES` and
:data:`LOCAL_OPERATORS` are facts the components carry, gathered over the registries.

Example:
    >>> from selfinv.noise import Gaussian
    >>> registry_fields("noise", Gaussian)          # ... (Ellipsis): a required key
    {'sigma': Ellipsis}
    >>> kind, members = unwrap(NoiseConfig)
    >>> kind, "gaussian" in members
    ('union', True)
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, create_model

from selfinv.losses import LOSSES
from selfinv.models import BACKBONES, WRAPPERS
from selfinv.noise import NOISE_MODELS
from selfinv.physics import OPERATORS, SAMPLERS

__all__ = [
    "LOCAL_OPERATORS",
    "LOSS_BACKBONES",
    "SIZE_ARGS",
    "BackboneConfig",
    "LossConfig",
    "LossTerm",
    "NoiseConfig",
    "PhysicsConfig",
    "SamplerConfig",
    "StrictModel",
    "WrapperConfig",
    "field_type",
    "registry_fields",
    "unwrap",
]

#: the default backbone of the losses that need a particular one (their ``needs_backbone``: a blind-spot
#: network, a bottleneck, no skip connection from the input), from each loss's ``default_backbone``
LOSS_BACKBONES: dict[str, dict[str, Any]] = {name: dict(cls.default_backbone) for name, cls in LOSSES.items() if cls.needs_backbone}

#: operators whose measurements are image-shaped and local (a pixel of y depends on the same pixel of x; their
#: ``crop_alignment`` is not None): reconstruct tiles them; the others are reconstructed whole
LOCAL_OPERATORS = tuple(name for name, cls in OPERATORS.items() if isinstance(cls.crop_alignment, int))

#: constructor arguments the builders fill in from the image size and never read from a config
SIZE_ARGS = ("img_size", "img_shape", "in_shape")
# and from the seed
_SEED_ARGS = ("generator",)
_SKIP = {
    "physics": {"noise", "dtype", *SIZE_ARGS, *_SEED_ARGS},
    "sampler": {"dtype", "device", *SIZE_ARGS},
    "noise": set(),
    "loss": set(),
    "backbone": {"in_channels", "out_channels"},
    "wrapper": {"backbone", "denoisers"},
}
# a loss's operator family (a required ``sampler`` argument) defaults to the physics' own (``physics.sampler``)
_PHYSICS_SAMPLER = "physics"


class StrictModel(BaseModel):
    """The base of every config model: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


_BASIC = {"float": float, "int": int, "str": str, "bool": bool}


def field_type(annotation: Any, default: Any) -> Any:
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


def _param_fields(section: str, cls: type) -> dict[str, tuple[Any, Any]]:
    """Fields of the model of ``cls``: its constructor's keyword arguments, minus the structural ones."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return {}
    out: dict[str, tuple[Any, Any]] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in _SKIP[section]:
            continue
        default = p.default
        if section == "loss" and p.name == "sampler" and default is p.empty:
            default = _PHYSICS_SAMPLER
        if isinstance(default, tuple):
            default = list(default)
        if default is p.empty:
            out[p.name] = (field_type(p.annotation, None), ...)
        else:
            out[p.name] = (field_type(p.annotation, default), default)
    return out


def registry_fields(section: str, cls: type) -> dict[str, Any]:
    """The config keys of a registered class in ``section`` ("loss", "physics", "noise", "sampler", "backbone",
    "wrapper"): its constructor's arguments minus those the builders fill in, with their defaults (``...`` for a
    required key). Read from the class itself, so it holds for a class registered after this module built the
    schema (``selfinv config init`` writes a loss's keys from it).

    Example:
        >>> from selfinv.losses import MOI
        >>> registry_fields("loss", MOI)
        {'sampler': 'physics', 'consistency': 'mc', 'weight': 1.0, 'renoise': False, 'stop_gradient': False}
    """
    if section not in _SKIP:
        raise ValueError(f"registry_fields: section must be one of {', '.join(_SKIP)}, got {section!r}")
    return {k: default for k, (_, default) in _param_fields(section, cls).items()}


def _shorthand(value: Any) -> Any:
    """``loss: sure`` is ``loss: {name: sure}``."""
    return {"name": value} if isinstance(value, str) else value


def _union(section: str, registry: dict[str, type], extra: dict[str, tuple[Any, Any]] | None = None,
           synthetic: Sequence[str] = (), tensor_fields_optional: bool = False) -> Any:
    """A discriminated union (on ``name``) of one strict model per registry entry."""
    members = []
    for name, cls in registry.items():
        fields = _param_fields(section, cls)
        if tensor_fields_optional:  # an operator's mask/kernel may come from its sampler instead
            fields = {k: ((Any, None) if v[1] is ... else v) for k, v in fields.items()}
        own = fields
        fields = {}
        for k, v in (extra or {}).items():
            fields[k] = own[k] if k in own else v  # EI/REI/MOI: the config's weight is their own λ
        fields.update({k: v for k, v in own.items() if k not in fields})
        model = create_model(f"{section}_{name}", __base__=StrictModel, name=(Literal[name], ...), **fields)
        model.__doc__ = f"{section} {name!r}: the arguments of {cls.__name__}"
        members.append(model)
    for name in synthetic:
        members.append(create_model(f"{section}_{name}", __base__=StrictModel, name=(Literal[name], ...)))
    return Annotated[Union[tuple(members)], BeforeValidator(_shorthand), Discriminator("name")]  # noqa: UP007


SamplerConfig = _union("sampler", SAMPLERS)
PhysicsConfig = _union("physics", OPERATORS, extra={"sampler": (SamplerConfig | None, None)}, tensor_fields_optional=True)
NoiseConfig = _union("noise", NOISE_MODELS)
LossTerm = _union("loss", LOSSES, extra={"weight": (float, 1.0)})
LossConfig = _union("loss", LOSSES, extra={"weight": (float, 1.0), "extra": (list[LossTerm], [])})
BackboneConfig = _union("backbone", BACKBONES)
WrapperConfig = _union("wrapper", WRAPPERS, synthetic=("none", "auto"))


def unwrap(ann: Any) -> tuple[str, Any]:
    """What a field's annotation holds: ``("union", {name: model})`` for a registry section, ``("model", model)``,
    ``("list", item annotation)`` or ``("leaf", annotation)`` (optional and annotated types unwrapped)."""
    origin = typing.get_origin(ann)
    if origin is Annotated:
        return unwrap(typing.get_args(ann)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return unwrap(args[0])
        if all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
            return "union", {typing.get_args(a.model_fields["name"].annotation)[0]: a for a in args}
        return "leaf", ann
    if origin is list:
        return "list", typing.get_args(ann)[0]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "model", ann
    return "leaf", ann
