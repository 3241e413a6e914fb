r"""The dense rank: the n × n averaged normal matrix and its ``eigvalsh`` eigenvalues.

Cost n · G operator applications and :math:`O(n^3)`. For exact (permutation) transforms the matrix
:math:`\mathbb{E}_i A_i^\top A_i` is built once and its permuted copies are averaged by index gathers.
"""

from __future__ import annotations

import torch

from selfinv.theory.normal import _CHUNK, _AveragedNormal, _count


def _dense(N: _AveragedNormal, dtype, tol):
    n, shape = N.n, N.x_shape
    basis = torch.eye(n, dtype=dtype, device=N.device).reshape(n, *shape)
    if N.transform is not None and N.transform.exact:
        # T_g is a permutation: build M = mean_i A_i^H A_i once, then average the permuted copies
        # T_g^T M T_g = M[q_g][:, q_g] with q_g the inverse permutation (index gathers, no operator calls)
        M = _AveragedNormal([op for op, _ in N.ops], None, None, shape)(basis).reshape(n, n).mT
        index = torch.arange(n, dtype=torch.float64, device=N.device).reshape(1, *shape)
        out = torch.zeros_like(M)
        step = max(1, _CHUNK // (n * n))
        for start in range(0, N.group_size, step):
            p = N.tparams[start : start + step]
            q = N.transform.inverse(index.expand(len(p), *shape), p).reshape(len(p), n).long()
            out += M[q[:, :, None], q[:, None, :]].sum(0)
        M = out / N.group_size
    else:
        M = N(basis).reshape(n, n).mT  # column j = N e_j
    eig = torch.linalg.eigvalsh((M + M.mH) / 2)
    return (*_count(eig, n, tol), "eigvalsh")
