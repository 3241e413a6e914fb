r"""Neighbor2Neighbor (Huang, Li, Jia, Lu & Liu, CVPR 2021): train on pairs of neighbouring sub-images."""

from __future__ import annotations

import torch

from selfinv.losses.base import Loss, LossContext, LossInfo, sq_mean
from selfinv.losses.masks import uniform_int

__all__ = ["Neighbor2Neighbor", "neighbour_pairs", "subsample"]


def _cell_pairs(n: int) -> tuple[tuple[int, int], ...]:
    """The ordered pairs of face-adjacent pixels of a 2^n cell, cells numbered by their bits (the offset along
    the first axis is the highest bit): in 2-D 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1)."""
    return tuple(sorted((a, a ^ (1 << k)) for a in range(2**n) for k in range(n)))


#: the 8 ordered pairs of horizontally or vertically adjacent pixels of a 2×2 cell (as in the official code;
#: diagonal pairs are excluded), and the 24 of face-adjacent voxels of a 2×2×2 cell
_PAIRS = _cell_pairs(2)
_PAIRS_3D = _cell_pairs(3)


def neighbour_pairs(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random choices for the sub-samplers: a (B, 1, ⌊H/2⌋, ⌊W/2⌋, 2) tensor of cell indices (g1's, g2's), or
    (B, 1, ⌊D/2⌋, ⌊H/2⌋, ⌊W/2⌋, 2) for volumes.

    One ordered pair of face-adjacent pixels (voxels) per cell and per sample, shared by all channels.
    """
    pairs = _PAIRS if y.ndim == 4 else _PAIRS_3D
    cells = tuple(s // 2 for s in y.shape[2:])
    p = uniform_int((y.shape[0], 1, *cells), len(pairs), generator, y.device)
    return torch.tensor(pairs, device=y.device)[p]


def subsample(t: torch.Tensor, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The neighbour sub-samplers :math:`(g_1(t), g_2(t))` at half resolution, for every sample and channel.

    Images (B, C, H, W) use 2×2 cells, volumes (B, C, D, H, W) 2×2×2 cells (index :math:`4 d_z + 2 d_y + d_x`).
    An odd last row, column or slice is cropped (it belongs to no cell). One ``gather`` per sub-image: no loop
    over samples or channels.
    """
    B, C, spatial = t.shape[0], t.shape[1], tuple(t.shape[2:])
    half = [s // 2 for s in spatial]
    n = len(spatial)
    t = t[(..., *[slice(0, 2 * h) for h in half])]
    split = [v for h in half for v in (h, 2)]  # (h0, 2, h1, 2, ...)
    order = [0, 1, *[2 + 2 * k for k in range(n)], *[3 + 2 * k for k in range(n)]]
    cells = t.reshape(B, C, *split).permute(*order).reshape(B, C, *half, 2**n)
    index = pairs.expand(B, C, *half, 2)
    pick = [cells.gather(-1, index[..., k : k + 1]).squeeze(-1) for k in (0, 1)]
    return pick[0], pick[1]


class Neighbor2Neighbor(Loss):
    r"""Neighbor2Neighbor: predict one neighbour sub-image from the other, with a consistency regulariser.

    Each 2×2 cell of :math:`y` gives two horizontally or vertically adjacent pixels, chosen at random per cell
    and per sample (the same choice for every channel); :math:`g_1(y)` and :math:`g_2(y)` collect them into two
    half-resolution images whose noises are independent and whose clean parts are nearly equal. The loss is

    .. math::

        \mathcal{L}(y, f) = \frac1m\|f(g_1(y)) - g_2(y)\|^2
        + \gamma\,\frac1m\big\|f(g_1(y)) - g_2(y) - \big(g_1(\bar f(y)) - g_2(\bar f(y))\big)\big\|^2

    where :math:`\bar f(y)` is the network on the full image **without gradient** (as in the paper; the
    regulariser corrects for :math:`g_1(x) \neq g_2(x)`). One step costs exactly **2** network evaluations:
    :math:`f(g_1(y))` with gradient and :math:`\bar f(y)` under ``torch.no_grad()`` (or, inside a sum of losses
    whose earlier term already computed :math:`f(y)`, that shared evaluation, detached). The peer library
    evaluates :math:`f(y)` a third time with gradient before detaching it, and loops over channels.

    Odd sizes: the last row/column is cropped for the sub-sampled pair; :math:`\bar f(y)` is computed on the
    whole uncropped :math:`y`, and :math:`g_1, g_2` of it use the same crop. The half-resolution call receives
    the same physics (only denoising, for which it fits any size). The official code ramps :math:`\gamma` up
    linearly over training; here it is constant (scale the loss by a schedule to ramp it).

    Args:
        gamma: weight :math:`\gamma \geq 0` of the regulariser (2 for synthetic noise, 1 for real noise).

    Volumes (B, C, D, H, W): 2×2×2 cells, and one of the 24 ordered pairs of face-adjacent voxels per cell;
    :math:`g_1, g_2` are half-resolution volumes.

    The test-time estimator is the network itself on the full image.

    Example:
        >>> import torch
        >>> from selfinv.losses.neighbor import Neighbor2Neighbor
        >>> from selfinv.physics import Denoising
        >>> y = torch.rand(2, 3, 7, 8)                           # odd height: the last row is cropped
        >>> calls = []
        >>> def net(y, physics):
        ...     calls.append(tuple(y.shape))
        ...     return 0.9 * y
        >>> value = Neighbor2Neighbor()(y, Denoising(), net, generator=torch.Generator().manual_seed(0))
        >>> calls                                                # half-size with grad, full-size without
        [(2, 3, 3, 4), (2, 3, 7, 8)]
    """

    info = LossInfo(
        train_evals=2, uses_x_hat=False,  # its network input is g1(y), not y
        unknown_separable_noise=True,
        reference="Huang, Li, Jia, Lu & Liu, Neighbor2Neighbor, CVPR 2021",
    )

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not gamma >= 0:
            raise ValueError(f"Neighbor2Neighbor: gamma must be a number >= 0, got {gamma!r}")
        self.gamma = float(gamma)

    def _loss(self, ctx: LossContext) -> torch.Tensor:
        y = ctx.y
        if y.ndim not in (4, 5) or min(y.shape[2:]) < 2:
            raise ValueError(f"Neighbor2Neighbor: expects images (B, C, H, W) or volumes (B, C, D, H, W) with every "
                             f"spatial size >= 2, got shape {tuple(y.shape)}")
        pairs = neighbour_pairs(y, ctx.generator)
        g1, g2 = subsample(y, pairs)
        out = ctx.model(g1, ctx.physics)
        if not isinstance(out, torch.Tensor) or out.shape != g1.shape:
            raise ValueError(f"Neighbor2Neighbor: the model output on g1(y) must have shape {tuple(g1.shape)}")
        if ctx.evaluated:  # reuse f(y) if another term of a sum already evaluated it
            full = ctx.x_hat
        else:
            with torch.no_grad():
                full = ctx.model(y, ctx.physics)
        full = full.detach()
        if full.shape != y.shape:
            raise ValueError(f"Neighbor2Neighbor: the model output on y must have shape {tuple(y.shape)}")
        f1, f2 = subsample(full, pairs)
        diff = out - g2
        return sq_mean(diff) + self.gamma * sq_mean(diff - (f1 - f2))

    def extra_repr(self) -> str:
        return f"gamma={self.gamma:g}"
