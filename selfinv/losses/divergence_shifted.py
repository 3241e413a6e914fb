r"""The shifted sums :math:`D_o = \sum_i \partial h_i / \partial y_{i+o}` of UNSURE with an unknown noise covariance.

Part of the divergence estimators (:mod:`selfinv.losses.divergence`, which re-exports :func:`offsets` and
:func:`shifted_divergences`); they run the loop of :func:`~selfinv.losses.divergence_base.linear_estimates`
with one read-out per offset.
"""

from __future__ import annotations

import torch

from selfinv._batched import dot
from selfinv.losses import divergence_base as base


def offsets(radius: int) -> list[tuple[int, int]]:
    """The (2r+1)² spatial offsets (dy, dx), row-major, matching a (2r+1, 2r+1) kernel."""
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _roll(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """roll(t)[..., i, j] = t[..., i - dy, j - dx] (circular over the last two axes)."""
    return torch.roll(t, shifts=(dy, dx), dims=(-2, -1))


class _Shifted(base.Readout):
    r""":math:`D_o` for every offset o: :math:`b_{\cdot+o}^\top J b` along a probe, :math:`\sum_j (J^\top b)_j
    b_{j-o}` from a vector-Jacobian product, and :math:`\partial h_j / \partial y_{j+o}` from row j (the column
    j of a central difference holds :math:`\partial h_{j-o} / \partial y_j` at entry j − o)."""

    def __init__(self, y: torch.Tensor, radius: int, mask: torch.Tensor | None, method: str) -> None:
        self.offs = offsets(radius)
        self.w = base.full_weight(y, None, mask) if method == "exact" else None

    def along(self, b, jb):
        return torch.stack([dot(_roll(b, -dy, -dx), jb) for dy, dx in self.offs], 1)

    def along_transpose(self, b, jtb):
        return torch.stack([dot(_roll(b, dy, dx), jtb) for dy, dx in self.offs], 1)

    def row(self, e, jte):  # shift the unit vector to j + o and read the row there
        return torch.stack([dot(_roll(e, dy, dx) * self.w, jte) for dy, dx in self.offs], 1)

    def column(self, e, je):
        return torch.stack([dot(_roll(e * self.w, -dy, -dx), je) for dy, dx in self.offs], 1)


@base.respect_grad_mode
def shifted_divergences(
    h: base.Map, y: torch.Tensor, radius: int, method: str = "mc", h_y: torch.Tensor | None = None, *,
    mask: torch.Tensor | None = None, tau: float | torch.Tensor | None = None, tau_rel: float = 1e-3,
    n_probes: int = 1, generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The sums :math:`D_o = \sum_i \partial h_i / \partial y_{i+o}` for every spatial offset :math:`o` of a (2r+1)² kernel.

    Offsets act circularly on the last two axes of y (channels are not mixed). Returns (B, 2r+1, 2r+1);
    the centre is the divergence. With one probe :math:`b`, :math:`D_o \approx b_{\cdot+o}^\top \Delta`
    where :math:`\Delta = (h(y+\tau b) - h(y))/\tau` (``"mc"``, one extra evaluation for all offsets) or
    :math:`\Delta = J b` (``"hutchinson"``, written as :math:`\sum_j (J^\top b)_j b_{j-o}`), since
    :math:`\mathbb E[b_{i+o} b_j] = \delta_{j, i+o}`. ``"exact"`` reads the Jacobian row by row. For
    :math:`\Sigma` stationary with support in the kernel, :math:`\operatorname{tr}(\Sigma J) = \sum_o \Sigma[o] D_o`.
    In training (gradients enabled, ``h`` with parameters) the autograd methods keep these values and take
    their parameter gradients from differences (module docstring): the ``"mc"`` sums along the same probe
    (one more evaluation per probe) or central differences per coordinate, which read the Jacobian column by
    column (two more per coordinate).
    """
    base.check_method(method, "shifted_divergences")
    n_probes = base.check_n_probes(n_probes)
    if y.ndim < 3:
        raise ValueError(f"shifted_divergences: needs images (B, ..., H, W), got shape {tuple(y.shape)}")
    k = 2 * radius + 1
    readout = _Shifted(y, radius, mask, method)
    return base.linear_estimates(h, y, method, h_y, readout, mask, tau, tau_rel, n_probes, generator).reshape(
        y.shape[0], k, k
    )
