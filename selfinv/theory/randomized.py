r"""The rank of an unstructured averaged normal operator by an adaptive randomized range finder."""

from __future__ import annotations

import math

import torch

from selfinv import _random
from selfinv.theory.normal import _EPS, _AveragedNormal, _count


def _randomized(N: _AveragedNormal, dtype, tol, generator, block: int):
    r"""Adaptive randomized range finder (Halko, Martinsson & Tropp, SIAM Review 2011, Alg. 4.2) with deflation.

    Random blocks :math:`\Omega` are applied, projected off the basis Q found so far and orthonormalised
    into it, until a whole block leaves residuals below :math:`\epsilon / (10\sqrt{2/\pi})`; then
    :math:`\|(I - QQ^H) N\| \le \epsilon` with probability at least :math:`1 - 10^{-\text{block}}` (HMT
    Lemma 4.1). The rank is the number of Ritz values of :math:`Q^H N Q` above the tolerance.
    """
    n, shape = N.n, N.x_shape

    def apply(Q):  # Q: (n, k) -> N Q (n, k)
        return N(Q.mT.reshape(-1, *shape)).reshape(-1, n).mT

    def randn(k):
        return _random.randn((n, k), generator=generator, dtype=dtype, device=N.device)

    # estimate lambda_max by a few block power iterations (it sets the tolerance)
    Y = apply(randn(block))
    for _ in range(6):
        Y = apply(torch.linalg.qr(Y).Q)
    lam_est = float(torch.linalg.matrix_norm(Y, ord=2)) if Y.abs().max() > 0 else 0.0
    eps_abs = n * _EPS * lam_est if tol is None else float(tol)
    stop = eps_abs / (10 * math.sqrt(2 / math.pi))
    Q = torch.zeros(n, 0, dtype=dtype, device=N.device)
    while Q.shape[1] < n:
        Y = apply(randn(block))
        for _ in range(2):  # project twice (re-orthogonalisation)
            Y = Y - Q @ (Q.mH @ Y)
        if float(Y.norm(dim=0).max()) <= stop:
            break
        U, S, _ = torch.linalg.svd(Y, full_matrices=False)
        U = U[:, S > stop]
        U = U - Q @ (Q.mH @ U)
        Q = torch.cat([Q, torch.linalg.qr(U).Q], dim=1)[:, :n]
    if Q.shape[1] == 0:
        return 0, eps_abs, lam_est, "randomized-range-finder"
    T = Q.mH @ apply(Q)
    eig = torch.linalg.eigvalsh((T + T.mH) / 2)
    return (*_count(eig, n, tol), "randomized-range-finder")
