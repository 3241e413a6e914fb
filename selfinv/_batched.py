"""Per-sample parameters shared by noise models and operators, and per-sample inner products.

A module lists the names of its tensors that may carry one value per sample in ``_per_sample``.
The leading dimension of such a tensor is either 1 (shared by the whole batch) or B (one per sample).
``batch_size`` reports B (``None`` when everything is shared) and ``select`` returns a copy that keeps
only some samples, which is how a batch of B is compared with B batches of 1 and how datasets slice
a batched physics.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class PerSample(nn.Module):
    """Mixin for modules whose listed buffers may be per sample (leading dimension B)."""

    _per_sample: tuple[str, ...] = ()

    @property
    def batch_size(self) -> int | None:
        """The number of samples the per-sample parameters describe, or ``None`` if all are shared."""
        sizes = set()
        for module in self.modules():  # self and every descendant (composed operators, noise models)
            if isinstance(module, PerSample):
                for name in module._per_sample:
                    t = module._buffers.get(name)
                    if t is not None and t.ndim > 0 and t.shape[0] != 1:
                        sizes.add(int(t.shape[0]))
        if len(sizes) > 1:
            raise ValueError(f"{type(self).__name__}: per-sample parameters disagree on the batch size: {sorted(sizes)}")
        return sizes.pop() if sizes else None

    def _check_batch(self, n: int, what: str = "input") -> None:
        b = self.batch_size
        if b is not None and b != n:
            raise ValueError(
                f"{type(self).__name__}: per-sample parameters are for a batch of {b}, but the {what} has batch size {n}"
            )

    def select(self, index: int | slice | torch.Tensor) -> PerSample:
        """A copy restricted to the samples ``index`` (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        new = copy.copy(self)
        new._buffers = dict(self._buffers)
        new._parameters = dict(self._parameters)
        new._modules = dict(self._modules)
        for name in self._per_sample:
            t = self._buffers.get(name)
            if t is not None and t.ndim > 0 and t.shape[0] != 1:
                new._buffers[name] = t[index]
        for name, child in self._modules.items():
            new._modules[name] = _select(child, index)
        return new


def _select(module: nn.Module | None, index) -> nn.Module | None:
    """Select samples in a module, recursing through plain containers such as ModuleList."""
    if module is None or isinstance(module, PerSample):
        return module.select(index) if module is not None else None
    if not any(isinstance(m, PerSample) for m in module.modules()):
        return module
    new = copy.copy(module)
    new._modules = {k: _select(v, index) for k, v in module._modules.items()}
    return new


def as_param(value: float | torch.Tensor, name: str, owner: str) -> torch.Tensor:
    """A float or a (B,) tensor as a float64 tensor (0-d or 1-d); anything else is a clear error."""
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be a number or a (B,) tensor, got a bool")
    if isinstance(value, (int, float)):
        t = torch.tensor(float(value), dtype=torch.float64)
    elif isinstance(value, torch.Tensor):
        if value.is_complex():
            raise ValueError(f"{owner}: {name} must be real, got a complex tensor")
        if value.ndim > 1:
            raise ValueError(f"{owner}: {name} must be a number or a (B,) tensor, got shape {tuple(value.shape)}")
        t = value.detach().to(torch.float64) if not value.is_floating_point() else value.detach()
    else:
        raise ValueError(f"{owner}: {name} must be a number or a (B,) tensor, got {type(value).__name__}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{owner}: {name} must be finite, got {value}")
    return t


def broadcast_param(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a 0-d or (B,) parameter to broadcast against ``like`` of shape (B, ...)."""
    real = like.dtype.to_real() if like.is_complex() else like.dtype
    p = p.to(device=like.device, dtype=real)
    if p.ndim == 0:
        return p
    return p.reshape(-1, *([1] * (like.ndim - 1)))


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample real inner product :math:`\\operatorname{Re}\\langle a, b\\rangle` over real degrees of freedom, (B,).

    Complex entries count as pairs of real numbers (``Re(conj(a) b)``), whichever of the two is complex.
    """
    if a.is_complex() or b.is_complex():
        return (a.conj() * b).real.flatten(1).sum(1)
    return (a * b).flatten(1).sum(1)
