"""Per-sample operator parameters as a flat dict of tensors, and the physics they describe.

A physics object lists the buffers that may hold one value per sample (``_per_sample``: a mask, a
blur kernel, a noise level), in itself and in its sub-modules (composed operators, the noise model).
:func:`per_sample_buffers` names them with dotted paths (``"mask"``, ``"ops.0.mask"``,
``"noise.sigma"``). A dataset stores, for each sample, the parameters that differ between samples
under those names, a batch stacks them, and :func:`with_params` puts a stacked dict back into a
template to obtain the batched physics, exactly as :meth:`~selfinv._batched.PerSample.select` slices
one. Nothing else about the operator needs to be serialisable.

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

import torch
from torch import nn

from selfinv._batched import PerSample

__all__ = ["per_sample_buffers", "per_sample_params", "with_params"]


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
