r"""Tiled inference: apply an image-to-image network to images too large for memory, without seams.

:func:`tiled_apply` runs ``fn`` (a network's test-time estimator on image-shaped measurements: denoising,
inpainting, demosaicing; ``fn`` maps (b, C, h, w) to (b, C', h, w)) over overlapping tiles and blends the
tiles into one pre-allocated output. :func:`receptive_field` measures how far a network looks, to pick
``overlap``.

Tiling (each axis on its own). Tiles of ``tile`` pixels start every ``step = tile - overlap`` pixels (rounded
down to a multiple of ``align``); the last tile is shifted inward so that it ends flush with the image border
(never padded), and an axis no longer than ``tile`` is one tile (so a small image goes through ``fn`` whole).
Every tile touching the image border is flush with it, so ``fn`` sees the border, and its padding, exactly
as on the whole image; only the *interior* tile edges are artificial.

Window. Take the overlap band of two neighbouring tiles along an axis, ``L`` pixels long (``tile - step``
in the regular grid, more where the last tile was shifted inward), and ``n = (tile - step) - 2 * margin``
(``margin`` defaults to ``overlap // 2``, so ``n`` is 0, or 1 for an odd overlap, unless ``align`` widened
the overlap). At position ``k = 0 .. L-1`` of the band, with ``z = ceil((L - n) / 2)``, the right tile
has weight

.. math::

    w(k) = 0 \ (k < z), \qquad w(k) = \tfrac12 - \tfrac12\cos\Bigl(\pi\,\frac{k - z + 1}{n + 1}\Bigr)
    \ (z \le k < z + n), \qquad w(k) = 1 \ (k \ge z + n),

and the left tile ``1 - w(k)``: the cut (``n = 0``) or the cosine cross-fade is centred in the band, and
each tile has weight 0 on at least ``margin`` pixels next to each of its artificial edges (on
``(L - n) / 2`` of them in wider bands). A tile's 1-D window is the product of its two sides' factors,
divided by the sum over the tiles (which only matters where three tiles overlap, ``overlap > tile / 2``),
a partition of unity; the 2-D window is the product of the row and the column windows. With the default
margin every output pixel is thus copied from the tile where it lies deepest inside (the tile's "core"),
at least ``overlap // 2`` pixels from an artificial edge. A smaller ``margin`` gives a smooth cosine
cross-fade over ``overlap - 2 * margin`` pixels, at the cost of a smaller exact radius.

Exact guarantee. Suppose that ``fn`` acts on the samples of a batch independently and that there is an
``r`` such that, for every image, ``fn(x)[..., i, j]`` depends only on the pixels of ``x`` within
Chebyshev distance ``r`` of ``(i, j)`` and on where the image borders are relative to ``(i, j)``, by a
rule invariant to translations by multiples of ``align`` (a stack of convolutions, with any padding mode,
and pointwise operations: a stack of ``d`` 3×3 convolutions has ``r = d``; a Bayer demosaicker needs
``align=2``). Then, if ``r <= margin`` (default ``overlap // 2``), ``tiled_apply(fn, x, ...)`` equals
``fn(x)`` up to floating-point rounding: every weight is non-zero only where its tile's result is exact.
The bound is tight (``r = margin + 1`` gives wrong pixels next to the cuts). Networks whose receptive
field exceeds the margin (U-Nets, attention, global normalisation) are approximated: the error is what
the network does differently with ``margin`` pixels of context instead of the whole image, it decays with
the overlap for U-Nets, and a margin smaller than ``overlap // 2`` spreads what is left of a seam over a
cross-fade. A U-Net with ``depth`` poolings is equivariant only to shifts by multiples of ``2**depth``:
pass ``align=2**depth`` and a ``tile`` that is a multiple of it (the whole-image result itself depends on
how the image is padded to a multiple of ``2**depth``, so tiles only match it when H and W are multiples).

Memory. The output is allocated once on ``x.device`` (the CPU for a CPU image); at most ``batch_tiles``
tiles at a time are copied to ``device``, go through ``fn``, are weighted there and added back, so the
peak memory is the input plus the output plus ``fn`` on ``batch_tiles`` tiles, whatever the image size.
``fn`` runs under ``torch.no_grad()`` (the output carries no graph); putting a model in evaluation mode
(``model.eval()``: batch normalisation, dropout) is left to the caller.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from selfinv.inference import receptive_field, tiled_apply
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1)).double()
    >>> receptive_field(net, 1)
    2
    >>> x = torch.randn(1, 1, 100, 75, dtype=torch.float64)
    >>> y = tiled_apply(net, x, tile=32, overlap=4)
    >>> y.shape, bool(torch.allclose(y, net(x), rtol=0, atol=1e-12))
    (torch.Size([1, 2, 100, 75]), True)
"""

from __future__ import annotations

import itertools
import math
import sys
import warnings
from collections.abc import Callable

import torch

__all__ = ["receptive_field", "tiled_apply"]


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _axis_tiles(size: int, tile: int, step: int, align: int) -> list[tuple[int, int]]:
    """(start, stop) of the tiles along one axis: every ``step``, the last one flush with the border."""
    if size <= tile:
        return [(0, size)]
    last = (size - tile) // align * align  # the last start, aligned; the last tile is then < tile + align long
    return [(s, s + tile) for s in range(0, last, step)] + [(last, size)]


def _ramp_factor(d: torch.Tensor, zero: int, ramp: int) -> torch.Tensor:
    """0 for d < zero, then a cosine rise over ``ramp`` pixels, then exactly 1 (d: distance to an edge)."""
    u = (d - zero + 1) / (ramp + 1)
    t = 0.5 - 0.5 * torch.cos(math.pi * u.clamp(0.0, 1.0))
    return torch.where(d < zero, torch.zeros_like(t), torch.where(u >= 1, torch.ones_like(t), t))


def _axis_windows(size: int, tiles: list[tuple[int, int]], ramp: int) -> list[tuple[int, int, torch.Tensor]]:
    """Normalised 1-D weights of each tile: (first, stop, weights on [first, stop)), zero outside.

    In the overlap band [s_next, e_prev) of two neighbouring tiles (length L >= 2 * margin + ramp) the cut,
    or the ramp, is centred: the left tile keeps weight 1 up to floor((L - ramp) / 2) pixels from its edge,
    the right tile gets weight 0 on its first ceil((L - ramp) / 2) pixels, and the two cosine ramps in
    between are complementary. A tile's weight is the product of its two sides' factors; dividing by the
    sum over tiles makes a partition of unity even where three tiles overlap.
    """
    raw = []
    total = torch.zeros(size, dtype=torch.float64)
    for i, (a, b) in enumerate(tiles):
        idx = torch.arange(a, b, dtype=torch.float64)
        t = torch.ones_like(idx)
        if i > 0:  # an interior (artificial) edge on the left/top: this tile is the right one of the band
            band = tiles[i - 1][1] - a
            t = t * _ramp_factor(idx - a, (band - ramp + 1) // 2, ramp)
        if i + 1 < len(tiles):
            band = b - tiles[i + 1][0]
            t = t * _ramp_factor(b - 1 - idx, (band - ramp) // 2, ramp)
        raw.append(t)
        total[a:b] += t
    if bool((total <= 0).any()):  # cannot happen (the ramps of a band are complementary); a safety net
        raise RuntimeError("tiled_apply: internal error, the tile windows do not cover the image")
    out = []
    for (a, _b), t in zip(tiles, raw, strict=True):
        nz = torch.nonzero(t > 0).flatten()
        lo, hi = int(nz[0]), int(nz[-1]) + 1  # the support is an interval
        out.append((a + lo, a + hi, t[lo:hi] / total[a + lo : a + hi]))
    return out


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    device: torch.device | str | None = None,
    progress: bool = False,
    batch_tiles: int = 1,
    *,
    margin: int | None = None,
    align: int = 1,
) -> torch.Tensor:
    """Apply ``fn`` to ``x`` (B, C, H, W), or volumes (B, C, D, H, W), tile by tile and blend the tiles (see the
    module docstring; volumes are tiled along D, H and W alike, with cubes of ``tile`` voxels a side).

    Args:
        fn: image-to-image function (b, C, h, w) -> (b, C', h, w) (same h, w; C' may differ from C; real or
            complex), applied to the samples independently. Called on tiles of at most ``tile`` (+ ``align``
            - 1 for the last ones) pixels a side, ``batch_tiles * B`` at a time.
        x: image batch (B, C, H, W) or volume batch (B, C, D, H, W), any size, real or complex; stays where it is.
        tile: tile side in pixels.
        overlap: overlap of neighbouring tiles in pixels, ``0 <= overlap < tile``. The result equals
            ``fn(x)`` when fn's receptive-field radius is at most ``margin`` (default ``overlap // 2``).
        device: where ``fn`` runs (default: ``x.device``); tiles are moved there one batch at a time.
        progress: show a tqdm bar over the tiles on stderr.
        batch_tiles: tiles of equal shape sent through ``fn`` together (stacked along the batch axis).
        margin: pixels next to an artificial tile edge that get weight 0, ``0 <= margin <= overlap // 2``;
            the rest of the overlap is a cosine cross-fade. Default ``overlap // 2``: a hard cut, exact for
            the largest receptive field.
        align: tile starts are multiples of ``align`` (2 for Bayer mosaics, ``2**depth`` for a U-Net with
            ``depth`` poolings); ``tile - overlap`` is rounded down to a multiple of it (must stay >= align).

    Returns:
        ``(B, C', H, W)`` (``(B, C', D, H, W)``) on ``x.device``, with fn's output dtype.
    """
    if not callable(fn):
        raise ValueError(f"tiled_apply: fn must be callable, got {type(fn).__name__}")
    if not isinstance(x, torch.Tensor) or x.ndim not in (4, 5):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"tiled_apply: x must be an image batch (B, C, H, W) or volumes (B, C, D, H, W), got {got}")
    if min(x.shape) < 1:
        raise ValueError(f"tiled_apply: x must not be empty, got shape {tuple(x.shape)}")
    for name, v in (("tile", tile), ("overlap", overlap), ("batch_tiles", batch_tiles), ("align", align)):
        if not _is_int(v):
            raise ValueError(f"tiled_apply: {name} must be an integer, got {v!r}")
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"tiled_apply: need tile > overlap >= 0, got tile={tile}, overlap={overlap}")
    if batch_tiles < 1 or align < 1:
        raise ValueError(f"tiled_apply: batch_tiles and align must be >= 1, got {batch_tiles} and {align}")
    step = (tile - overlap) // align * align
    if step < 1:
        raise ValueError(
            f"tiled_apply: tile - overlap = {tile - overlap} must be at least align = {align} "
            "(tile starts are multiples of align)"
        )
    if margin is None:
        margin = overlap // 2
    if not _is_int(margin) or not 0 <= margin <= overlap // 2:
        raise ValueError(
            f"tiled_apply: margin must be an integer in [0, overlap // 2 = {overlap // 2}], got {margin!r}"
        )
    ramp = (tile - step) - 2 * margin
    device = x.device if device is None else torch.device(device)

    B, C, spatial = x.shape[0], x.shape[1], tuple(x.shape[2:])
    axis_tiles = [_axis_tiles(n, tile, step, align) for n in spatial]
    axis_windows = [_axis_windows(n, t, ramp) for n, t in zip(spatial, axis_tiles, strict=True)]
    # tiles in row-major order: per job, each axis's (read range, (first, stop, window))
    jobs = list(itertools.product(*[list(zip(t, w, strict=True)) for t, w in zip(axis_tiles, axis_windows, strict=True)]))

    def shape(job) -> tuple[int, ...]:
        return tuple(b - a for (a, b), _ in job)

    from tqdm.auto import tqdm

    out: torch.Tensor | None = None
    bar = tqdm(total=len(jobs), desc="tiles", unit="tile", disable=not progress, file=sys.stderr)
    try:
        with torch.no_grad():
            i = 0
            while i < len(jobs):
                tshape = shape(jobs[i])
                group = [jobs[i]]
                while len(group) < batch_tiles and i + len(group) < len(jobs) and shape(jobs[i + len(group)]) == tshape:
                    group.append(jobs[i + len(group)])
                buf = torch.empty((len(group) * B, C, *tshape), dtype=x.dtype, device=device)
                for k, job in enumerate(group):
                    buf[k * B : (k + 1) * B].copy_(x[(slice(None), slice(None), *[slice(a, b) for (a, b), _ in job])])
                y = fn(buf)
                if (
                    not isinstance(y, torch.Tensor)
                    or y.ndim != buf.ndim
                    or y.shape[0] != buf.shape[0]
                    or y.shape[2:] != buf.shape[2:]
                ):
                    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    dims = "h, w" if len(spatial) == 2 else "d, h, w"
                    raise ValueError(
                        f"tiled_apply: fn must map (b, C, {dims}) to (b, C', {dims}) with the same b, {dims}; "
                        f"got {tuple(buf.shape)} -> {got}"
                    )
                if out is None:
                    out = torch.zeros((B, y.shape[1], *spatial), dtype=y.dtype, device=x.device)
                wdtype = y.real.dtype if y.is_complex() else y.dtype
                for k, job in enumerate(group):
                    part = y[(slice(k * B, (k + 1) * B), slice(None), *[slice(p0 - a, p1 - a) for (a, _), (p0, p1, _) in job])]
                    w = torch.ones((), dtype=torch.float64)
                    for _, (_, _, wa) in job:  # the outer product of the axis windows
                        w = w[..., None] * wa
                    w = w.to(device=y.device, dtype=wdtype)
                    out[(slice(None), slice(None), *[slice(p0, p1) for _, (p0, p1, _) in job])] += (part * w).to(out.device)
                del buf, y
                i += len(group)
                bar.update(len(group))
    finally:
        bar.close()
    assert out is not None
    return out


def receptive_field(
    fn_or_model: Callable[[torch.Tensor], torch.Tensor],
    channels: int,
    size: int = 33,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    max_size: int = 1025,
    probes: int = 2,
    seed: int = 0,
) -> int:
    """Receptive-field radius of a network, measured: the support of the gradient of its centre output pixel.

    The network gets ``probes`` random images (1, channels, size, size) (seeded; random rather than zero so
    that ReLUs are active somewhere and do not hide paths); the radius is the largest Chebyshev distance from
    the centre of an input pixel with a non-zero gradient of the centre output pixel (summed over output
    channels, real and imaginary parts). When the support reaches the probe's border the probe size is
    doubled, up to ``max_size``, after which a warning is issued and the lower bound returned. Use
    ``overlap >= 2 * receptive_field(...)`` in :func:`tiled_apply`. Put a model in evaluation mode first
    (batch normalisation in training mode couples the whole image).

    Args:
        fn_or_model: differentiable image-to-image callable (1, channels, h, w) -> (1, C', h, w).
        channels: input channels.
        size: initial probe side (made odd).
        dtype: probe dtype (default: the dtype of the model's first parameter, else float64); pass a complex
            dtype for networks that take complex images.
        device: where to run (default: the device of the model's first parameter, else the CPU).
        max_size: largest probe side.
        probes: random images; the radius is the largest over them.
        seed: seed of the probes.
    """
    if not callable(fn_or_model):
        raise ValueError(f"receptive_field: expected a callable, got {type(fn_or_model).__name__}")
    if not _is_int(channels) or channels < 1:
        raise ValueError(f"receptive_field: channels must be an integer >= 1, got {channels!r}")
    if not _is_int(size) or size < 3 or not _is_int(max_size) or max_size < size:
        raise ValueError(f"receptive_field: need 3 <= size <= max_size, got size={size}, max_size={max_size}")
    params = getattr(fn_or_model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    if device is None:
        device = first.device if first is not None else torch.device("cpu")
    if dtype is None:
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float64
    size |= 1
    gen = torch.Generator().manual_seed(seed)
    while True:
        c = size // 2
        radius = -1
        for _ in range(max(1, probes)):
            x = torch.randn((1, channels, size, size), generator=gen, dtype=dtype).to(device).requires_grad_(True)
            with torch.enable_grad():
                y = fn_or_model(x)
                if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[-2:] != x.shape[-2:]:
                    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    raise ValueError(f"receptive_field: expected an image-to-image network, got {got}")
                centre = y[:, :, c, c]
                s = centre.real.sum() + centre.imag.sum() if centre.is_complex() else centre.sum()
                if not s.requires_grad:
                    raise ValueError("receptive_field: the output does not depend on the input through autograd")
                (g,) = torch.autograd.grad(s, x, allow_unused=True)
            if g is None:
                continue
            support = torch.nonzero((g.abs() > 0).any(dim=1)[0])
            if support.numel():
                radius = max(radius, int((support - c).abs().max()))
        radius = max(radius, 0)
        if radius < c:
            return radius
        if size >= max_size:
            warnings.warn(
                f"receptive_field: the support reaches the border of the largest probe ({size} px); "
                f"the radius is at least {radius}",
                stacklevel=2,
            )
            return radius
        size = min(2 * size - 1, max_size) | 1
