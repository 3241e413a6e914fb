r"""Losses, transforms and networks from a config.

Through the registries only (``LOSSES``, ``BACKBONES``, ``WRAPPERS``, :data:`selfinv.transforms.TRANSFORMS`): a
loss's constructor annotations say which of its keys are transforms or samplers; a loss term with its own
prior weight (EI, REI, MOI) takes the section's ``weight``; a model is initialised from the config's seed.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from selfinv._random import global_seed
from selfinv.config import Config, ConfigError, SamplerConfig, WrapperConfig, format_validation_error
from selfinv.config.registry import unwrap
from selfinv.engine._args import annotation, construct, init_parameters, section_params
from selfinv.engine.physics_builders import build_sampler, fbp_init
from selfinv.losses import LOSSES, Loss
from selfinv.models import BACKBONES, WRAPPERS
from selfinv.models.pretrained import PRETRAINED, is_pretrained_name, load_backbone_weights, model_section
from selfinv.physics import OPERATORS
from selfinv.training import load_checkpoint
from selfinv.transforms import TRANSFORMS, Product, Transform

__all__ = [
    "build_loss",
    "build_model",
    "build_transform",
    "resolve_pretrained",
    "resolve_wrapper",
    "section_fields",
    "transforms_of",
    "unmet_backbone_needs",
]


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
    return construct(TRANSFORMS[name], args, where)


def transforms_of(cfg: Config) -> list[Transform]:
    """The transforms named in the loss and its extra terms (for the advisor)."""
    out = []
    for i, term in enumerate([cfg.loss, *cfg.loss.extra]):
        if "transform" in type(term).model_fields:
            out.append(build_transform(term.transform, "loss.transform" if i == 0 else f"loss.extra[{i - 1}].transform"))
    return out


def _build_term(term, sampler, img_shape, seed: int, where: str) -> tuple[float, Loss]:
    cls = LOSSES[term.name]
    params = section_params(term, ("name", "weight", "extra"))
    weight = term.weight
    if "weight" in init_parameters(cls):  # EI/REI/MOI: the weight of their own prior term
        params["weight"], weight = term.weight, 1.0
    for k, v in list(params.items()):
        ann = annotation(cls, k)
        if k == "transform" or "Transform" in ann:
            params[k] = build_transform(v, f"{where}.{k}")
        elif k == "sampler" or "Sampler" in ann:
            if v == "physics":
                if sampler is None:
                    raise ConfigError(f"config: {where}.sampler = 'physics' needs a physics.sampler (or give {where}.sampler: {{name: ...}})")
                params[k] = sampler
            else:
                params[k] = build_sampler(_validate_sampler(v, f"{where}.sampler"), img_shape, seed, f"{where}.sampler")
    return weight, construct(cls, params, where)


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


def resolve_wrapper(cfg: Config) -> dict:
    """The wrapper ``auto`` stands for: none for denoising, back-projection (FBP for tomography) otherwise."""
    w = cfg.model.wrapper
    if w.name != "auto":
        return w.model_dump(mode="json")
    if cfg.physics.name == "denoising":
        return {"name": "none"}
    init = "fbp" if hasattr(OPERATORS[cfg.physics.name], "fbp") else "adjoint"
    return {"name": "backprojection", "init": init}


def resolve_pretrained(model: dict[str, Any]) -> dict[str, Any]:
    """A config's ``model`` section (a dict) with ``pretrained`` resolved: a shipped name brings its backbone
    and wrapper, a checkpoint those of its own configuration; without ``pretrained`` it is returned as is."""
    ref = model.get("pretrained")
    if not ref:
        return model
    if is_pretrained_name(ref):
        return {**model, **model_section(ref)}
    ckpt = _read_init_checkpoint(ref)
    stored = ckpt["config"].get("model", {})
    return {**model, "backbone": stored.get("backbone", model.get("backbone")), "wrapper": stored.get("wrapper", model.get("wrapper"))}


def _read_init_checkpoint(ref: str) -> dict[str, Any]:
    path = Path(ref)
    if not path.exists():
        known = ", ".join(PRETRAINED)
        raise ConfigError(f"config: model.pretrained = {ref!r} is neither a shipped pretrained network ({known}) nor a file")
    try:
        ckpt = load_checkpoint(path)
    except ValueError as e:
        raise ConfigError(f"config: model.pretrained: {e}") from None
    if not isinstance(ckpt.get("config"), dict) or "model" not in ckpt:
        raise ConfigError(f"config: model.pretrained: {path.name} has no run configuration (not written by selfinv train)")
    return ckpt


def _load_initial_weights(model: torch.nn.Module, ref: str, channels: int, is_complex: bool) -> None:
    if is_pretrained_name(ref):
        try:
            load_backbone_weights(getattr(model, "backbone", model), ref)
        except ValueError as e:
            raise ConfigError(f"config: model.pretrained: {e}") from None
        return
    ckpt = _read_init_checkpoint(ref)
    info = ckpt.get("data_info", {})
    theirs = (int(info.get("channels", channels)), bool(info.get("complex", is_complex)))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = " ".join(" ".join(str(e).split("\n\t")[1:2]).split())[:160] or str(e).splitlines()[0]
        kind = f"{theirs[0]} {'complex ' if theirs[1] else ''}channel(s)"
        ours = f"{channels} {'complex ' if is_complex else ''}channel(s)"
        why = f"it was trained on images of {kind}, these have {ours}" if theirs != (channels, is_complex) else first
        raise ConfigError(f"config: model.pretrained: the weights of {Path(ref).name} do not fit this model: {why}") from None


def build_model(cfg: Config, channels: int, is_complex: bool, init_weights: bool = True) -> torch.nn.Module:
    """The network for images of ``channels`` channels (2 real channels per complex one), its weights
    initialised from ``cfg.seed`` (layer constructors draw from PyTorch's global generator, which is seeded
    for the construction only: :func:`~selfinv._random.global_seed`), then, with ``init_weights`` and
    ``model.pretrained`` set (a resolved config: :func:`resolve_pretrained`), loaded from those weights."""
    with global_seed(cfg.seed):
        model = _build_model(cfg, channels, is_complex)
    if init_weights and cfg.model.pretrained:
        _load_initial_weights(model, cfg.model.pretrained, channels, is_complex)
    return model


def _build_model(cfg: Config, channels: int, is_complex: bool) -> torch.nn.Module:
    n = channels * (2 if is_complex else 1)
    bc = cfg.model.backbone
    backbone_cls = BACKBONES[bc.name]
    backbone = construct(backbone_cls, {"in_channels": n, "out_channels": n, **section_params(bc)}, "model.backbone")
    wc = cfg.model.wrapper
    if wc.name == "auto":
        from pydantic import TypeAdapter

        wc = TypeAdapter(WrapperConfig).validate_python(resolve_wrapper(cfg))
    if wc.name == "none":
        return backbone
    params = section_params(wc)
    if params.get("init") == "fbp":
        params["init"] = fbp_init
    first = "backbone" if "backbone" in init_parameters(WRAPPERS[wc.name]) else "denoisers"
    return construct(WRAPPERS[wc.name], {first: backbone, **params}, "model.wrapper")


def section_fields(union: Any, name: str) -> dict[str, Any]:
    """The keys of one registry entry of a section (e.g. ``section_fields(LossConfig, "sure")``) with their
    defaults (``...`` for required keys), ``name`` excluded.

    Example:
        >>> from selfinv.config import NoiseConfig
        >>> section_fields(NoiseConfig, "poisson_gaussian")
        {'gain': Ellipsis, 'sigma': Ellipsis, 'offset': 0.0}
    """
    kind, members = unwrap(union)
    if kind != "union" or name not in members:
        raise ConfigError(f"config: unknown name {name!r}")
    out = {}
    for k, f in members[name].model_fields.items():
        if k != "name":
            out[k] = ... if f.is_required() else f.default
    return out
