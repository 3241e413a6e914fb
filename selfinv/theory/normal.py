r"""The averaged normal operator :math:`N = \mathbb{E}_{i,g} T_g^\top A_i^H A_i T_g` of a family, and what it needs.

The family comes from one operator, a list or a sampler (:func:`_family`), noiseless; its input shape, device
and domain (real or complex) are read from the operators. :class:`_AveragedNormal` applies :math:`N` to a
block of images, batched over operators, transforms and images in chunks of ``_CHUNK`` scalars. :func:`_count`
is the numerical rank every algorithm reports: the eigenvalues above ``tol`` (default
:math:`n\,\varepsilon\,\lambda_{\max}`).
"""

from __future__ import annotations

import math

import torch

from selfinv.physics.base import LinearOperator
from selfinv.theory.bounds import _positive_int

#: largest number of scalars per batched operator call (memory of the internal chunks)
_CHUNK = 1 << 22
_EPS = torch.finfo(torch.float64).eps


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _is_sampler(obj) -> bool:
    return not isinstance(obj, LinearOperator) and callable(obj) and hasattr(obj, "sample")


def _family(physics, n_operators, generator) -> list[LinearOperator]:
    if _is_sampler(physics):
        if n_operators is None:
            raise ValueError("rank_condition: pass n_operators to draw operators from a sampler")
        ops = [physics(_positive_int(n_operators, "n_operators"), generator)]
    elif n_operators is not None:
        raise ValueError("rank_condition: n_operators is only for samplers; a list or an operator fixes the family")
    elif isinstance(physics, LinearOperator):
        ops = [physics]
    elif isinstance(physics, (list, tuple)) and physics and all(isinstance(p, LinearOperator) for p in physics):
        ops = list(physics)
    else:
        raise ValueError(
            "physics must be a LinearOperator, a non-empty list of them, or an operator sampler "
            f"(with .sample and __call__), got {type(physics).__name__}"
        )
    return [op.with_noise(None) for op in ops]


def _infer_shape(ops: list[LinearOperator], x_shape) -> tuple[int, ...]:
    if x_shape is not None:
        shape = tuple(int(s) for s in x_shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"x_shape must be the per-sample input shape, e.g. (C, H, W), got {x_shape!r}")
        return shape
    for op in ops:
        if op.x_shape is not None:  # the operator's own statement (a mask, an image size, a matrix)
            return tuple(op.x_shape)
    raise ValueError(f"cannot infer the input shape of {type(ops[0]).__name__}: pass x_shape=(C, H, W)")


def _device(ops: list[LinearOperator]) -> torch.device:
    """The device of the operators' buffers (CPU when they have none)."""
    for op in ops:
        for t in op.buffers():
            return t.device
    return torch.device("cpu")


def _dtype(ops: list[LinearOperator]) -> torch.dtype:
    kinds = {op.is_complex for op in ops if op.is_complex is not None}
    if len(kinds) > 1:
        raise ValueError("the operators mix real and complex domains")
    return torch.complex128 if kinds == {True} else torch.float64


class _AveragedNormal:
    r"""``V -> mean over (i, g) of T_g^T A_i^H A_i T_g v`` for a block V of shape (k, *x_shape), batched and chunked."""

    def __init__(self, ops, transform, tparams, x_shape, full_group=False):
        self.device = _device(ops)
        self.full_group = full_group  # tparams are transform.elements (every element, uniformly)
        self.ops = [(op, op.batch_size) for op in ops]
        self.transform, self.tparams = transform, tparams
        self.x_shape = x_shape
        self.n = math.prod(x_shape)
        self.n_operators = sum(b or 1 for _, b in self.ops)
        self.group_size = 1 if tparams is None else len(tparams)

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(V)
        k, ng = V.shape[0], self.group_size
        step = max(1, _CHUNK // self.n)
        for op, b in self.ops:
            total = (b or 1) * ng * k
            for start in range(0, total, step):
                t = torch.arange(start, min(total, start + step))
                v, g, s = t % k, (t // k) % ng, t // (k * ng)
                x = V[v]
                if self.transform is not None:
                    x = self.transform.apply(x, self.tparams[g])
                z = (op.select(s) if b else op).normal(x)
                if self.transform is not None:
                    z = self.transform.adjoint(z, self.tparams[g])
                out.index_add_(0, v.to(out.device), z)
        return out / (self.n_operators * ng)


def _measurements(op: LinearOperator, x_shape, dtype) -> list[int]:
    """Measurements per operator sample: the entries of A x the operator really acquires (``op.acquired``: not
    those a mask zero-fills), counted in the units of the image: a complex measurement of a real image (a
    visibility of a sky) is two real numbers."""
    x = torch.zeros(op.batch_size or 1, *x_shape, dtype=dtype, device=_device([op]))
    y = op.A(x)
    per_entry = 2 if y.is_complex() and not x.is_complex() else 1
    return [per_entry * int(m) for m in op.acquired(y).expand(y.shape).flatten(1).sum(1).tolist()]


def _count(eig: torch.Tensor, n: int, tol: float | None) -> tuple[int, float, float]:
    lmax = float(eig.max()) if eig.numel() else 0.0
    lmax = max(lmax, 0.0)
    t = n * _EPS * lmax if tol is None else float(tol)
    return int((eig > t).sum()), t, lmax
