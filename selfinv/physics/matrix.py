r"""An explicit dense matrix acting on flattened signals, for small problems and theory tests."""

from __future__ import annotations

import torch

from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator


class Matrix(LinearOperator):
    r""":math:`y = A\,\mathrm{vec}(x)` for a dense :math:`A \in \mathbb{R}^{m\times n}` (or complex).

    The pseudo-inverse is closed form, from the SVD :math:`A = U S V^H` computed once:
    :math:`A^\dagger = V S^+ U^H` with singular values below ``rtol`` times the largest treated as 0.

    Args:
        matrix: (m, n) shared, or (B, m, n) one matrix per sample.
        in_shape: per-sample shape of x (default ``(n,)``); x is (B, *in_shape), y is (B, m).
        noise: noise model, or ``None``.
        rtol: relative threshold on singular values for the pseudo-inverse.

    Example:
        >>> import torch
        >>> from selfinv.physics import Matrix
        >>> op = Matrix(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
        >>> op.A_dagger(torch.tensor([[2.0]], dtype=torch.float64)).round(decimals=12)  # min-norm solution
        tensor([[1., 1.]], dtype=torch.float64)
    """

    _per_sample = ("matrix", "pinv")

    def __init__(
        self,
        matrix: torch.Tensor,
        in_shape: tuple[int, ...] | None = None,
        noise: NoiseModel | None = None,
        rtol: float = 1e-10,
    ) -> None:
        super().__init__(noise=noise)
        if not isinstance(matrix, torch.Tensor) or matrix.ndim not in (2, 3):
            shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
            raise ValueError(f"Matrix: matrix must be a (m, n) or (B, m, n) tensor, got {shape}")
        if not (matrix.is_floating_point() or matrix.is_complex()):
            matrix = matrix.to(torch.float64)
        if not bool(torch.isfinite(matrix).all()):
            raise ValueError("Matrix: matrix contains NaN or Inf")
        matrix = matrix.detach()
        if matrix.ndim == 2:
            matrix = matrix[None]
        n = matrix.shape[-1]
        self.in_shape = tuple(in_shape) if in_shape is not None else (n,)
        if _prod(self.in_shape) != n:
            raise ValueError(f"Matrix: in_shape {self.in_shape} has {_prod(self.in_shape)} entries but the matrix has {n} columns")
        self.is_complex = matrix.is_complex()
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        keep = s > rtol * s.amax(-1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
        s_inv = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
        pinv = vh.mH @ (s_inv.unsqueeze(-1).to(u.dtype) * u.mH)
        self.register_buffer("matrix", matrix)
        self.register_buffer("pinv", pinv)
        self.exact_dagger = True

    @property
    def shape(self) -> tuple[int, int]:
        """(m, n)."""
        return tuple(self.matrix.shape[-2:])

    @property
    def x_shape(self) -> tuple[int, ...]:
        """``in_shape``."""
        return self.in_shape

    def _mv(self, mat: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (mat.to(device=v.device, dtype=v.dtype) @ v.unsqueeze(-1)).squeeze(-1)

    def _A(self, x):
        return self._mv(self.matrix, x.reshape(x.shape[0], -1))

    def _A_adjoint(self, y):
        return self._mv(self.matrix.mH, y).reshape(y.shape[0], *self.in_shape)

    def _A_dagger(self, y, tol, max_iter):
        return self._mv(self.pinv, y).reshape(y.shape[0], *self.in_shape)

    def _check_x(self, x):
        if tuple(x.shape[1:]) != self.in_shape:
            raise self._shape_error("x", x, f"(B, {', '.join(map(str, self.in_shape))})")

    def _check_y(self, y):
        if y.ndim != 2 or y.shape[1] != self.matrix.shape[-2]:
            raise self._shape_error("y", y, f"(B, {self.matrix.shape[-2]})")


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
