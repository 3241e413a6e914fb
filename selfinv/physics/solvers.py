r"""Conjugate gradient for the pseudo-inverse of any linear operator: :func:`cg_dagger`.

It needs only the operator's hooks ``_A_adjoint`` and ``_normal``, so it sits below
:mod:`selfinv.physics.base`, whose ``LinearOperator.A_dagger`` calls it where no closed form exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: the operators call this solver, it never imports them
    from selfinv.physics.base import LinearOperator


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample real inner product Re<a, b> (shape (B,))."""
    return (a.conj() * b).real.flatten(1).sum(1) if a.is_complex() else (a * b).flatten(1).sum(1)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def cg_dagger(op: LinearOperator, y: torch.Tensor, tol: float = 1e-6, max_iter: int = 200) -> torch.Tensor:
    r"""Minimum-norm least-squares solution of :math:`\min_x \|Ax - y\|` for every sample of a batch.

    Conjugate gradient on :math:`A^H A x = A^H y` from :math:`x_0 = 0`: the iterates stay in the range
    of :math:`A^H`, so the limit is :math:`A^\dagger y`. The batch is solved at once with per-sample
    step sizes; a sample stops updating once its residual is below ``tol`` times :math:`\|A^H y\|`.
    """
    b = op._A_adjoint(y)
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = _dot(r, r)
    stop = (tol**2) * rs.clamp_min(torch.finfo(rs.dtype).tiny)
    for _ in range(max_iter):
        active = rs > stop
        if not bool(active.any()):
            break
        Ap = op._normal(p)
        pAp = _dot(p, Ap)
        alpha = torch.where(active & (pAp > 0), rs / torch.where(pAp > 0, pAp, torch.ones_like(pAp)), torch.zeros_like(rs))
        x = x + _bcast(alpha, x).to(x.dtype) * p
        r = r - _bcast(alpha, r).to(r.dtype) * Ap
        rs_new = _dot(r, r)
        beta = torch.where(active, rs_new / torch.where(rs > 0, rs, torch.ones_like(rs)), torch.zeros_like(rs))
        p = r + _bcast(beta, p).to(p.dtype) * p
        rs = torch.where(active, rs_new, rs)
    return x
