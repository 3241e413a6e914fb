r"""The masks of the blind-spot losses (:mod:`selfinv.losses.masking`), for images and volumes alike.

Every function works on (B, C, H, W) images and (B, C, D, H, W) volumes: the *spatial* axes are all axes after
the channel axis, and a "pixel" is a voxel in 3-D.

* :func:`grid_mask`: Noise2Self's grid, :math:`w^n` phases partitioning the pixels of an n-D image.
* :func:`interpolate`: the weighted mean of the :math:`3^n - 1` neighbours (Batson & Royer's kernel, and its
  3-D extension: weight :math:`2^{1 - \|o\|_1}` for offset :math:`o`, so faces 1, edges 1/2, corners 1/4).
* :func:`neighbour_replace`: Noise2Void's replacement by a random neighbour of the :math:`(2r+1)^n` cube,
  never a hidden pixel.
* :func:`struct_line` and :func:`fill_uniform`: structN2V's line of hidden neighbours along one axis, filled with
  random values (Broaddus, Krull, Weigert, Schmidt & Myers, "Removing structured noise with self-supervised
  blind-spot networks", ISBI 2020).

Example:
    >>> import torch
    >>> m = grid_mask((2, 4, 4), 2, torch.arange(8))     # 3-D: 2³ phases
    >>> m.shape, bool(m.sum(0).eq(1).all())              # every voxel hidden by exactly one phase
    (torch.Size([8, 1, 2, 4, 4]), True)
    >>> line = struct_line(torch.zeros(1, 1, 5, 5, dtype=torch.bool).index_put_((torch.tensor([0]),) * 2 +
    ...                    (torch.tensor([2]), torch.tensor([2])), torch.tensor(True)), axis=-1, span=3)
    >>> line[0, 0, 2].tolist()                            # the pixel and one neighbour left and right
    [False, True, True, True, False]
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from selfinv import _random

__all__ = ["check_spatial", "fill_uniform", "grid_mask", "interpolate", "neighbour_replace", "struct_line",
           "uniform_int"]


def check_spatial(y: torch.Tensor, owner: str, min_size: int = 1) -> None:
    """Raise a one-line ValueError unless y is (B, C, H, W) or (B, C, D, H, W) with every spatial axis >= min_size."""
    if not isinstance(y, torch.Tensor) or y.ndim not in (4, 5):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{owner}: expects images (B, C, H, W) or volumes (B, C, D, H, W), got shape {got}")
    if min(y.shape[2:]) < min_size:
        side = "×".join([str(min_size)] * (y.ndim - 2))
        raise ValueError(f"{owner}: images must be at least {side}, got {tuple(y.shape[2:])}")


def uniform_int(shape: tuple[int, ...], n: torch.Tensor | int, generator, device) -> torch.Tensor:
    """Uniform integers in {0, ..., n-1} (n a scalar or a tensor broadcasting to ``shape``)."""
    u = _random.rand(shape, generator=generator, dtype=torch.float64, device=device)
    n_t = torch.as_tensor(n, device=device)
    return torch.minimum((u * n_t).floor().long(), n_t - 1)


def grid_mask(size: tuple[int, ...], grid: int, phase: torch.Tensor) -> torch.Tensor:
    r"""Noise2Self's grid masks on an n-D grid of ``size``: a pixel is hidden when its cell index
    :math:`\sum_k (i_k \bmod w)\, w^{n-1-k}` equals the sample's phase :math:`p \in \{0, \dots, w^n - 1\}`.

    Returns a (B, 1, *size) boolean mask (all channels of a pixel together); the :math:`w^n` phases partition
    the pixels.
    """
    device = phase.device
    cell = torch.zeros((), dtype=torch.long, device=device)
    for k, s in enumerate(size):
        axis = torch.arange(s, device=device) % grid
        cell = cell[..., None] * grid + axis.reshape(*([1] * k), s)
    return cell[None, None] == phase.reshape(-1, *([1] * (len(size) + 1)))


def _kernel(n: int, dtype, device) -> torch.Tensor:
    """The interpolation kernel of :func:`interpolate` on a 3^n cube, centre 0."""
    k = torch.zeros((3,) * n, dtype=dtype, device=device)
    for o in itertools.product((-1, 0, 1), repeat=n):
        d = sum(abs(v) for v in o)
        if d:
            k[tuple(v + 1 for v in o)] = 2.0 ** (1 - d)
    return k


def interpolate(y: torch.Tensor) -> torch.Tensor:
    """Weighted mean of the :math:`3^n - 1` neighbours, per channel, renormalised where neighbours are missing
    (the border); in 2-D Batson & Royer's kernel [[.5, 1, .5], [1, 0, 1], [.5, 1, .5]]."""
    if y.is_complex():
        return torch.complex(interpolate(y.real), interpolate(y.imag))
    spatial = tuple(y.shape[2:])
    conv = F.conv2d if len(spatial) == 2 else F.conv3d
    k = _kernel(len(spatial), y.dtype, y.device)[None, None]
    num = conv(y.reshape(-1, 1, *spatial), k, padding=1).reshape(y.shape)
    den = conv(torch.ones(1, 1, *spatial, dtype=y.dtype, device=y.device), k, padding=1)
    return num / den


def neighbour_replace(
    y: torch.Tensor,
    mask: torch.Tensor,
    radius: int,
    exclude_centre: bool,
    generator: torch.Generator | None,
    hidden: torch.Tensor | None = None,
    max_rounds: int = 32,
) -> torch.Tensor:
    """Replace each masked entry by the value of a random pixel of its :math:`(2r+1)^n` neighbourhood.

    ``mask`` is (B, 1, *spatial) (a pixel's channels are replaced together, by the same neighbour) or
    (B, C, *spatial). Sources are drawn uniformly among the neighbours inside the image (never the centre unless
    ``exclude_centre`` is False) and never among the ``hidden`` pixels (default: the masked ones), which would
    carry a hidden value into the input; sources that hit one are redrawn (vectorised rounds over all masked
    pixels) and, if still hidden after ``max_rounds`` rounds (only for very dense masks), set to 0. Returns a new
    tensor.
    """
    hidden = mask if hidden is None else hidden
    spatial = tuple(y.shape[2:])
    b, g, *pos = mask.nonzero(as_tuple=True)
    lo = [(p - radius).clamp_min(0) for p in pos]
    extent = [(p + radius).clamp_max(s - 1) - low + 1 for p, low, s in zip(pos, lo, spatial, strict=True)]
    count = math.prod(extent) - int(exclude_centre)
    centre = torch.zeros_like(b)
    for p, low, e in zip(pos, lo, extent, strict=True):  # mixed-radix index of the centre in its neighbourhood
        centre = centre * e + (p - low)

    def draw() -> list[torch.Tensor]:
        j = uniform_int(tuple(b.shape), count, generator, y.device)
        if exclude_centre:
            j = j + (j >= centre).long()  # skip the centre: uniform over the other neighbours
        out = []
        for low, e in zip(reversed(lo), reversed(extent), strict=True):
            out.append(low + j % e)
            j = torch.div(j, e, rounding_mode="floor")
        return out[::-1]

    def hits(src: list[torch.Tensor]) -> torch.Tensor:
        bad = hidden[(b, g, *src)]
        if exclude_centre:
            return bad
        is_centre = torch.stack([s == p for s, p in zip(src, pos, strict=True)]).all(0)
        return bad & ~is_centre  # withCP: the centre itself is allowed

    src = draw()
    bad = hits(src)
    for _ in range(max_rounds):  # rounds over all masked pixels at once, not a loop over pixels
        if not bool(bad.any()):
            break
        new = draw()
        src = [torch.where(bad, n, s) for n, s in zip(new, src, strict=True)]
        bad = hits(src)
    y_a = y.clone()
    zero = torch.zeros((), dtype=y.dtype, device=y.device)
    if mask.shape[1] == 1:  # all channels of a pixel together: values have shape (n, C)
        y_a[(b, slice(None), *pos)] = torch.where(bad[:, None], zero, y[(b, slice(None), *src)])
    else:
        y_a[(b, g, *pos)] = torch.where(bad, zero, y[(b, g, *src)])
    return y_a


def struct_line(mask: torch.Tensor, axis: int, span: int) -> torch.Tensor:
    """The mask dilated along one spatial ``axis`` (a negative index: -1 the columns, -2 the rows, -3 the slices)
    by ``span // 2`` pixels on each side: structN2V's line of hidden neighbours through every masked pixel
    (not wrapping around the border)."""
    half = span // 2
    out = mask.clone()
    size = mask.shape[axis]
    for k in range(1, min(half, size - 1) + 1):  # a loop over the line's offsets, not over pixels
        out.narrow(axis, k, size - k).logical_or_(mask.narrow(axis, 0, size - k))
        out.narrow(axis, 0, size - k).logical_or_(mask.narrow(axis, k, size - k))
    return out


def fill_uniform(y: torch.Tensor, where: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``y`` with the entries ``where`` replaced by values drawn uniformly between each sample's minimum and
    maximum (computed without gradient, so the new values carry no derivative of y), as structN2V does."""
    if y.is_complex():
        raise ValueError("structN2V: takes real images, got a complex tensor")
    flat = y.detach().flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1, *([1] * (y.ndim - 1)))
    u = _random.rand(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
    values = lo.reshape(shape) + u * (hi - lo).reshape(shape)
    return torch.where(where.expand_as(y), values, y)
