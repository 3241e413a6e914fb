r"""Classical solvers for any linear operator: conjugate gradient for the pseudo-inverse (:func:`cg_dagger`), the
operator norm by power iteration (:func:`estimate_lipschitz`) and TV-regularised least squares by primal-dual
iterations (:func:`tv_reconstruct`).

They need only the operator's hooks (``_A``, ``_A_adjoint``, ``_normal``), so they sit below
:mod:`selfinv.physics.base`, whose ``LinearOperator.A_dagger`` calls :func:`cg_dagger` where no closed form exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from selfinv._batched import dot

if TYPE_CHECKING:  # annotations only: the operators call this solver, it never imports them
    from selfinv.physics.base import LinearOperator


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
    rs = dot(r, r)
    stop = (tol**2) * rs.clamp_min(torch.finfo(rs.dtype).tiny)
    for _ in range(max_iter):
        active = rs > stop
        if not bool(active.any()):
            break
        Ap = op._normal(p)
        pAp = dot(p, Ap)
        alpha = torch.where(active & (pAp > 0), rs / torch.where(pAp > 0, pAp, torch.ones_like(pAp)), torch.zeros_like(rs))
        x = x + _bcast(alpha, x).to(x.dtype) * p
        r = r - _bcast(alpha, r).to(r.dtype) * Ap
        rs_new = dot(r, r)
        beta = torch.where(active, rs_new / torch.where(rs > 0, rs, torch.ones_like(rs)), torch.zeros_like(rs))
        p = r + _bcast(beta, p).to(p.dtype) * p
        rs = torch.where(active, rs_new, rs)
    return x


def estimate_lipschitz(physics: LinearOperator, like: torch.Tensor, n_iter: int = 20) -> torch.Tensor:
    r"""Per-sample estimate of :math:`\|A\|^2 = \lambda_{\max}(A^H A)` by power iteration, shape (B,).

    ``like`` is an image-shaped tensor (dtype, device, shape). The start vector is drawn from a fixed seed
    and shared by the samples, so the estimate is deterministic and a batch equals its samples one by one;
    it does not touch the global random state. The Rayleigh quotient is returned (a slight underestimate);
    samples with :math:`A = 0` give 1.

    Example:
        >>> import torch
        >>> from selfinv.physics import Inpainting
        >>> from selfinv.physics.solvers import estimate_lipschitz
        >>> mask = torch.ones(2, 1, 4, 4); mask[1] *= 0.5
        >>> estimate_lipschitz(Inpainting(mask), torch.zeros(2, 1, 4, 4))
        tensor([1.0000, 0.2500])
    """
    g = torch.Generator().manual_seed(0)
    v = torch.randn((1, *like.shape[1:]), generator=g, dtype=like.dtype).to(like.device).expand_as(like).contiguous()
    lam = torch.ones(like.shape[0], dtype=like.real.dtype if like.is_complex() else like.dtype, device=like.device)
    for _ in range(n_iter):
        v = v / _bcast(dot(v, v).sqrt().clamp_min(torch.finfo(lam.dtype).tiny), v).to(v.dtype)
        w = physics.normal(v)
        lam = dot(v, w)
        v = w
    return torch.where(lam > 0, lam, torch.ones_like(lam))


def _gradient(x: torch.Tensor) -> torch.Tensor:
    """Forward differences along the last two axes, zero at the far edge (Neumann): (..., 2, H, W)."""
    zero_h = torch.zeros_like(x[..., :1, :])
    zero_w = torch.zeros_like(x[..., :, :1])
    dh = torch.cat([x[..., 1:, :] - x[..., :-1, :], zero_h], dim=-2)
    dw = torch.cat([x[..., :, 1:] - x[..., :, :-1], zero_w], dim=-1)
    return torch.stack([dh, dw], dim=-3)


def _gradient_adjoint(g: torch.Tensor) -> torch.Tensor:
    r"""The exact adjoint of :func:`_gradient` (minus the divergence): :math:`(D^\top p)_i = p_{i-1} - p_i`,
    with :math:`p_{-1} = 0` and the last difference (always zero) left out."""
    dh, dw = g.unbind(-3)
    dh = torch.cat([torch.zeros_like(dh[..., :1, :]), dh[..., :-1, :]], dim=-2) - torch.cat(
        [dh[..., :-1, :], torch.zeros_like(dh[..., :1, :])], dim=-2)
    dw = torch.cat([torch.zeros_like(dw[..., :, :1]), dw[..., :, :-1]], dim=-1) - torch.cat(
        [dw[..., :, :-1], torch.zeros_like(dw[..., :, :1])], dim=-1)
    return dh + dw


def total_variation(x: torch.Tensor) -> torch.Tensor:
    r"""Isotropic total variation per sample, :math:`\mathrm{TV}(x) = \sum_{c,i,j} \sqrt{|(D_h x)_{cij}|^2 +
    |(D_w x)_{cij}|^2}` (forward differences, complex magnitudes for complex images), shape (B,)."""
    return _gradient(x).abs().square().sum(-3).sqrt().flatten(1).sum(1)


def tv_objective(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    r"""Per-sample :math:`\tfrac12\|Ax - y\|^2 + \lambda\,\mathrm{TV}(x)`, the objective :func:`tv_reconstruct` minimises."""
    lam_t = torch.as_tensor(lam, dtype=x.real.dtype, device=x.device).expand(x.shape[0])
    return 0.5 * (op._A(x) - y).abs().square().flatten(1).sum(1) + lam_t * total_variation(x)


def tv_reconstruct(
    op: LinearOperator,
    y: torch.Tensor,
    lam: float | torch.Tensor,
    n_iter: int = 300,
    nonneg: bool = False,
    x0: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""TV-regularised least squares, :math:`\hat x = \arg\min_x \tfrac12\|Ax - y\|^2 + \lambda\,\mathrm{TV}(x)
    \;[+\ \iota_{x \ge 0}]`, by ``n_iter`` primal-dual (PDHG) iterations (Chambolle & Pock, JMIV 2011).

    The classical iterative baseline of the CT and MRI benchmarks (Rudin, Osher & Fatemi 1992; Sidky & Pan
    2008 for CT; Lustig et al. 2007 for compressed-sensing MRI). :math:`\mathrm{TV}` is isotropic
    (:func:`total_variation`); complex images (MRI) use complex magnitudes. With :math:`L = \|A\|^2` (per sample,
    by power iteration) the splitting is :math:`K = [A/\sqrt L;\ D/\sqrt 8]` (both blocks of norm ≤ 1), so the
    steps :math:`\tau = \sigma = 0.99/\sqrt 2` satisfy :math:`\tau\sigma\|K\|^2 < 1` for any operator and scale:

    .. math::

        p &\leftarrow \frac{p + \sigma (K_1\bar x - y/\sqrt L)}{1 + \sigma / L}, \qquad
        q \leftarrow \Pi_{\{|q_{ij}| \le \lambda\sqrt 8\}}\big(q + \sigma K_2 \bar x\big), \\
        x^+ &\leftarrow \operatorname{prox}_{\tau G}\big(x - \tau (K_1^H p + K_2^\top q)\big), \qquad
        \bar x \leftarrow 2x^+ - x.

    ``lam`` is a number or a (B,) tensor (one weight per sample; 0 gives least squares, the minimum-norm one
    only when started at zero). ``nonneg`` projects onto :math:`x \ge 0` (real images only). ``x0`` is the
    starting image (default zero). Choosing :math:`\lambda` without ground truth: hold out part of the
    measurements and keep the :math:`\lambda` that predicts them best (as BENCHMARKS.md's real CT and MRI
    sections do).

    Example:
        >>> import torch
        >>> from selfinv.physics import Inpainting
        >>> from selfinv.physics.solvers import tv_reconstruct
        >>> x = torch.zeros(1, 1, 16, 16); x[..., 4:12, 4:12] = 1.0           # piecewise constant
        >>> mask = (torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.5).float()
        >>> op = Inpainting(mask)
        >>> x_hat = tv_reconstruct(op, op.A(x), lam=0.05, n_iter=500)
        >>> bool((x_hat - x).abs().mean() < (op.A_dagger(op.A(x)) - x).abs().mean() / 2)
        True
    """
    if n_iter < 1:
        raise ValueError(f"tv_reconstruct: n_iter must be >= 1, got {n_iter}")
    ahy = op.A_adjoint(y)  # validates y's shape and type for the operator
    if not bool(torch.isfinite(y).all()):
        raise ValueError("tv_reconstruct: y contains NaN or Inf")
    lam_t = torch.as_tensor(lam, dtype=ahy.real.dtype, device=ahy.device)
    if lam_t.ndim > 1 or (lam_t.ndim == 1 and lam_t.numel() not in (1, ahy.shape[0])):
        raise ValueError(f"tv_reconstruct: lam must be a number or one value per sample ({ahy.shape[0]}), got shape "
                         f"{tuple(lam_t.shape)}")
    if not bool(torch.isfinite(lam_t).all()) or bool((lam_t < 0).any()):
        raise ValueError(f"tv_reconstruct: lam must be finite and >= 0, got {lam}")
    if nonneg and ahy.is_complex():
        raise ValueError("tv_reconstruct: nonneg=True needs a real image; this operator's images are complex")
    if x0 is not None:
        if x0.shape != ahy.shape:
            raise ValueError(f"tv_reconstruct: x0 has shape {tuple(x0.shape)}, the operator's images {tuple(ahy.shape)}")
        op.A(x0)  # validates x0
    lam_t = lam_t.expand(ahy.shape[0])
    rho = estimate_lipschitz(op, ahy).sqrt()  # ||A|| per sample
    s8 = 8.0**0.5
    x = torch.zeros_like(ahy) if x0 is None else x0.to(ahy.dtype).clone()
    if nonneg:
        x = x.clamp_min(0)
    x_bar = x
    yb = y / _bcast(rho, y).to(y.dtype)
    rho2 = _bcast(rho.square(), y)
    p = torch.zeros_like(y)
    q = torch.zeros_like(_gradient(x))
    bound = _bcast(lam_t * s8, q.sum(-3)).unsqueeze(-3)
    tau = sigma = 0.99 / 2**0.5
    for _ in range(n_iter):
        p = (p + sigma * (op._A(x_bar) / _bcast(rho, y).to(y.dtype) - yb)) / (1 + sigma / rho2)
        q = q + sigma * _gradient(x_bar) / s8
        q = q / (q.abs().square().sum(-3, keepdim=True).sqrt() / bound.clamp_min(torch.finfo(bound.dtype).tiny)).clamp_min(1.0)
        x_new = x - tau * (op._A_adjoint(p) / _bcast(rho, x).to(x.dtype) + _gradient_adjoint(q) / s8)
        if nonneg:
            x_new = x_new.clamp_min(0)
        x_bar = 2 * x_new - x
        x = x_new
    return x
