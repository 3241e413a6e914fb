"""Physics ↔ tensors: per-sample operator parameters as a flat dict, and the record a measurement set stores.

A physics object lists the buffers that may hold one value per sample (``_per_sample``: a mask, a
blur kernel, a noise level), in itself and in its sub-modules (composed operators, the noise model).
:func:`per_sample_buffers` names them with dotted paths (``"mask"``, ``"ops.0.mask"``,
``"noise.sigma"``). A dataset stores, for each sample, the parameters that differ between samples
under those names, a batch stacks them, and :func:`with_params` puts a stacked dict back into a
template to obtain the batched physics, exactly as :meth:`~selfinv._batched.PerSample.select` slices
one. Nothing else about the operator needs to be serialisable.

This module is the one place where physics is serialised. A saved measurement set
(:mod:`selfinv.data.datasets.format`) records its physics as :func:`physics_record` gives it: the operator's
registry name and the noise model's description (:func:`selfinv.noise.describe`) in the meta data, the
per-sample parameters and the shared ones with a batch dimension of 1 as arrays; :func:`physics_from_record`
builds the operator back from them (or from an operator, class, registry name or factory the caller gives,
through :func:`physics_from`).

Example:
    >>> import torch
    >>> from selfinv.physics import Inpainting
    >>> from selfinv.noise import Gaussian
    >>> batched = Inpainting(torch.ones(4, 1, 2, 2), noise=Gaussian(0.1))
    >>> params = per_sample_params(batched)
    >>> list(params), params["mask"].shape
    (['mask'], torch.Size([4, 1, 2, 2]))
    >>> with_params(batched, {"mask": params["mask"][:3]}).batch_size
    3
"""

from __future__ import annotations

import copy
import inspect
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfinv._batched import PerSample
from selfinv.noise import NOISE_MODELS, NoiseModel
from selfinv.noise import describe as describe_noise

__all__ = [
    "MASK_FROM_ZEROS",
    "mask_from_zeros",
    "operator_name",
    "params_and_template",
    "per_sample_buffers",
    "per_sample_params",
    "physics_from",
    "physics_from_record",
    "physics_record",
    "shared_on_grid",
    "with_params",
]


def per_sample_buffers(physics: nn.Module) -> dict[str, torch.Tensor]:
    """Every buffer listed in a ``_per_sample`` of ``physics`` or of its sub-modules, by dotted name."""
    out: dict[str, torch.Tensor] = {}
    for prefix, module in physics.named_modules(remove_duplicate=False):
        if isinstance(module, PerSample):
            for name in module._per_sample:
                t = module._buffers.get(name)
                if t is not None:
                    out[f"{prefix}.{name}" if prefix else name] = t
    return out


def per_sample_params(physics: nn.Module, batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """The per-sample buffers whose leading dimension is the batch size (``physics.batch_size`` by default).

    An empty dict when every parameter is shared.
    """
    n = physics.batch_size if batch_size is None else batch_size
    if n is None:
        return {}
    return {k: t for k, t in per_sample_buffers(physics).items() if t.ndim > 0 and t.shape[0] == n}


def params_and_template(physics, n: int) -> tuple[dict[str, torch.Tensor], Any]:
    """(per-sample parameters (n, ...), the one-sample operator they fill in) of an operator of batch size n or
    None (shared parameters: no per-sample ones, the operator itself)."""
    if physics.batch_size is None:
        return {}, physics
    return per_sample_params(physics, n), physics.select(0)


def shared_on_grid(template: nn.Module, size: tuple[int, ...], exclude=()) -> dict[str, torch.Tensor]:
    """The shared per-sample buffers of ``template`` (batch dimension 1, names not in ``exclude``) that lie on the
    image grid ``size`` (H, W), without their batch dimension: what a crop of the image must crop too."""
    return {name: buf[0] for name, buf in per_sample_buffers(template).items()
            if name not in exclude and buf.ndim >= 3 and tuple(buf.shape[-2:]) == size and buf.shape[0] == 1}


_LEAF = object()


def with_params(template: nn.Module, params: dict[str, torch.Tensor]):
    """A copy of ``template`` whose named per-sample buffers are replaced by ``params`` (the template is untouched).

    Shared buffers stay as they are; sub-modules are copied only along the replaced paths.
    """
    if not params:
        return template
    known = per_sample_buffers(template)
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ValueError(
            f"{type(template).__name__}: no per-sample parameter named {', '.join(map(repr, unknown))}; "
            f"it has {', '.join(map(repr, known)) or 'none'}"
        )
    tree: dict = {}
    for name, value in params.items():
        *path, leaf = name.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node.setdefault(_LEAF, {})[leaf] = value
    return _replace(template, tree)


def _replace(module: nn.Module, tree: dict) -> nn.Module:
    new = copy.copy(module)
    new._buffers = dict(module._buffers)
    new._parameters = dict(module._parameters)
    new._modules = dict(module._modules)
    for leaf, value in tree.get(_LEAF, {}).items():
        new._buffers[leaf] = value
    for child, sub in tree.items():
        if child is not _LEAF:
            new._modules[child] = _replace(module._modules[child], sub)
    return new


# ---------------------------------------------------------------------- the record of a measurement set
def operator_name(op) -> str:
    """The registry name of an operator (``OPERATORS``), else its class name."""
    from selfinv.physics import OPERATORS

    for name, cls in OPERATORS.items():
        if type(op) is cls:
            return name
    return type(op).__name__


def physics_record(template, params: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """What a measurement set stores of its physics: ``({"operator": name, "noise": description}, arrays)``, the
    arrays being the per-sample ``params`` (N, ...) and the template's shared parameters of batch dimension 1
    (noise levels are in the description)."""
    arrays = dict(params)
    for name, t in per_sample_buffers(template).items():
        if name not in arrays and not name.startswith("noise.") and t.ndim > 0 and t.shape[0] == 1:
            arrays[name] = t
    return {"operator": operator_name(template), "noise": describe_noise(template.noise)}, arrays


def _noise_from(desc: dict[str, Any], where: Path) -> NoiseModel:
    cls = NOISE_MODELS.get(desc.get("name"))
    if cls is None:
        raise ValueError(f"{where.name}: unknown noise model {desc.get('name')!r} in the meta data; pass noise=")
    return cls(**{k: v for k, v in desc.items() if k != "name"})


def physics_from_record(physics, params: dict[str, torch.Tensor], noise: NoiseModel | None, meta: dict, where: Path,
                        y: torch.Tensor | None = None):
    """The operator of a stored measurement set (module docstring): ``physics`` (an operator whose per-sample
    parameters ``params`` replace its own; a class, registry name or factory called with them, see
    :func:`physics_from`; None: the ``operator`` of ``meta``, else ``Denoising``) with ``noise``, else the noise
    recorded in ``meta``. ``where`` (the file or folder) names the set in errors."""
    from selfinv.physics.base import LinearOperator
    from selfinv.physics.denoising import Denoising

    if noise is None and meta.get("noise"):
        noise = _noise_from(meta["noise"], where)
    if physics is None:
        name = meta.get("operator")
        if name is None:
            if params:
                raise ValueError(f"{where.name}: holds operator parameters {sorted(params)} but no operator name; pass physics=")
            return Denoising(noise=noise)
        physics = name
    if isinstance(physics, LinearOperator):
        op = physics.with_noise(noise) if noise is not None else physics
        return with_params(op, params)
    kwargs = {k: v for k, v in params.items() if "." not in k}
    nested = {k: v for k, v in params.items() if "." in k}
    try:
        op = physics_from(physics, kwargs, noise, y, where.name)
    except TypeError as e:
        raise ValueError(f"{where.name}: cannot build the operator from the parameters {sorted(kwargs)} ({e}); pass physics=") from e
    return with_params(op, nested)


#: the note attached to a mask derived from the zeros of y
MASK_FROM_ZEROS = "no mask given: the mask is taken from the zeros of the measurements (acquired where any channel is non-zero)"


def mask_from_zeros(y: torch.Tensor) -> torch.Tensor:
    """The acquired entries of zero-filled measurements y (N, C, H, W): (N, 1, H, W) float, 1 where any channel
    (coil) is non-zero. Exact for k-space (a measured sample is never exactly 0 in practice); for images with
    missing pixels stored as 0, a truly black measured pixel is taken as missing."""
    if y.ndim != 4:
        raise ValueError(f"mask_from_zeros: expected measurements (N, C, H, W), got shape {tuple(y.shape)}")
    return (y != 0).any(dim=1, keepdim=True).to(torch.float32)


def _requires_mask(cls) -> bool:
    try:
        p = inspect.signature(cls.__init__).parameters.get("mask")
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return p is not None and p.default is inspect.Parameter.empty


def physics_from(physics, params: dict[str, torch.Tensor], noise, y: torch.Tensor | None, where: str):
    """The operator of a measurement set: ``physics`` (an operator, a class, a registry name or a factory
    ``(noise=None, [y=None,] **arrays)``) with the set's per-sample ``params``; a required mask that nobody
    gave comes from the zeros of ``y``."""
    from selfinv.physics import OPERATORS
    from selfinv.physics.base import LinearOperator

    if isinstance(physics, LinearOperator) or physics is None:
        raise TypeError("physics_from: give a class, a registry name or a factory")
    if isinstance(physics, str):
        if physics not in OPERATORS:
            raise ValueError(f"{where}: unknown operator {physics!r}; known: {', '.join(OPERATORS)}")
        physics = OPERATORS[physics]
    kwargs = dict(params)
    if isinstance(physics, type):
        if _requires_mask(physics) and "mask" not in kwargs and y is not None:
            kwargs["mask"] = mask_from_zeros(y)
            warnings.warn(f"{where}: {MASK_FROM_ZEROS}", stacklevel=3)
        return physics(**kwargs, noise=noise)
    try:
        takes_y = "y" in inspect.signature(physics).parameters
    except (TypeError, ValueError):  # pragma: no cover
        takes_y = False
    return physics(**kwargs, noise=noise, **({"y": y} if takes_y else {}))
