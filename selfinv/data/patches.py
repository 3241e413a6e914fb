r"""Random training patches and deterministic tiles for validation.

Random patches: :func:`random_positions` draws the corners of many crops at once from a
``torch.Generator`` (one vectorised draw), :func:`crop` cuts a batch of crops at per-sample corners
with one gather, and :class:`RandomPatches` wraps a dataset to give new crops every epoch
(``set_epoch``) from ``(seed, epoch)``: the same epoch always gives the same crops.

Cropping a measurement is only the measurement of the crop for operators that act pixel by pixel:
:class:`~selfinv.physics.Denoising`, :class:`~selfinv.physics.Inpainting`,
:class:`~selfinv.physics.MeasurementMask` and :class:`~selfinv.physics.Demosaicing` (whose crops
start on even rows and columns so that the Bayer tile keeps its phase), and compositions of these.
For MRI, CT, compressed sensing and blur (whose circular boundary a crop would break), crop the
ground truth before simulating (``SimulatedDataset(patch_size=...)``) instead; :class:`RandomPatches`
refuses them with an error that says so.

Tiles: :func:`tile_positions`, :func:`extract_tiles` and :func:`merge_tiles` cover an image with
overlapping tiles in a fixed order and average them back, for validating on images too large for
one pass; :func:`center_crop` gives the usual fixed test crops.

Example:
    >>> import torch
    >>> x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    >>> pos = random_positions((6, 6), 3, 2, generator=torch.Generator().manual_seed(0))
    >>> patches = crop(x, pos[:, 0], pos[:, 1], 3)
    >>> patches.shape, bool(torch.equal(patches[1], x[1, :, pos[1, 0]:pos[1, 0] + 3, pos[1, 1]:pos[1, 1] + 3]))
    (torch.Size([2, 1, 3, 3]), True)
    >>> tiles, where = extract_tiles(x[0], 4, overlap=2)
    >>> tiles.shape, bool(torch.equal(merge_tiles(tiles, where, (6, 6)), x[0]))
    (torch.Size([4, 1, 4, 4]), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from selfinv import _random
from selfinv.data._seeds import generator as seeded
from selfinv.data.physics_params import shared_on_grid, with_params
from selfinv.data.samples import Sample
from selfinv.data.views import DatasetView, groups_of

__all__ = [
    "RandomPatches",
    "center_crop",
    "crop",
    "crop_alignment",
    "extract_tiles",
    "merge_tiles",
    "random_positions",
    "tile_positions",
]


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name} must be an int or (h, w) with positive entries, got {size}")
    return size  # type: ignore[return-value]


def _sizes(size: int | Sequence[int], name: str) -> tuple[int, ...]:
    """(h, w) from an int or (h, w); (d, h, w) volumes pass through."""
    if isinstance(size, Sequence) and len(size) == 3:
        out = tuple(int(s) for s in size)
        if min(out) < 1:
            raise ValueError(f"{name} must have positive entries, got {out}")
        return out
    return _pair(size, name)


def random_positions(
    image_size: tuple[int, ...] | torch.Tensor,
    patch_size: int | tuple[int, ...],
    n: int | None = None,
    generator: torch.Generator | None = None,
    align: int = 1,
) -> torch.Tensor:
    """Uniformly random corners of crops, as an (n, 2) long tensor of (top, left), or (n, 3) of (front, top,
    left) for (d, h, w) crops of volumes.

    Args:
        image_size: (H, W) (or (D, H, W)) shared by all crops, or an (n, 2) (or (n, 3)) tensor with one size per crop.
        patch_size: (h, w), (d, h, w) or an int (a square).
        n: number of crops (only with a shared image size).
        generator: the source of randomness (one float64 draw of shape (n, 2) or (n, 3)).
        align: corners are multiples of ``align`` (2 keeps the phase of a Bayer pattern).
    """
    patch = _sizes(patch_size, "patch_size")
    k = len(patch)
    if isinstance(image_size, torch.Tensor):
        sizes = image_size.to(torch.long).reshape(-1, k)
        if n is not None and n != sizes.shape[0]:
            raise ValueError(f"random_positions: n={n} but {sizes.shape[0]} image sizes were given")
        n = sizes.shape[0]
    else:
        if n is None:
            raise ValueError("random_positions: n is required with a single image size")
        shared = _sizes(image_size, "image_size")
        if len(shared) != k:
            raise ValueError(f"random_positions: a {len(shared)}-D image size {shared} for {k}-D patches {patch}")
        sizes = torch.tensor([shared], dtype=torch.long).expand(n, k)
    p = torch.tensor(patch, dtype=torch.long)
    small = (sizes < p).any(1)
    if bool(small.any()):
        bad = tuple(sizes[small][0].tolist())
        raise ValueError(f"random_positions: patch {'x'.join(map(str, patch))} is larger than an image of size {bad}")
    slots = (sizes - p) // align + 1
    u = _random.rand((n, k), generator=generator, dtype=torch.float64, device=torch.device("cpu"))
    return (u * slots).floor().long().clamp_max(slots - 1) * align


def crop(t: torch.Tensor, top: torch.Tensor, left: torch.Tensor, patch_size: int | tuple[int, int]) -> torch.Tensor:
    """Crop every sample of ``t`` (B, ..., H, W) at its own corner: one gather, output (B, ..., h, w)."""
    ph, pw = _pair(patch_size, "patch_size")
    if t.ndim < 3:
        raise ValueError(f"crop: expected (B, ..., H, W), got shape {tuple(t.shape)}")
    b = t.shape[0]
    top, left = top.to(t.device).long().reshape(b), left.to(t.device).long().reshape(b)
    rows = top[:, None] + torch.arange(ph, device=t.device)  # (B, h)
    cols = left[:, None] + torch.arange(pw, device=t.device)  # (B, w)
    if bool((rows[:, -1] >= t.shape[-2]).any() | (cols[:, -1] >= t.shape[-1]).any() | (top < 0).any() | (left < 0).any()):
        raise ValueError(f"crop: a {ph}x{pw} crop leaves the {t.shape[-2]}x{t.shape[-1]} image")
    lead = t.shape[1:-2]
    flat = t.reshape(b, -1, t.shape[-2], t.shape[-1])  # (B, K, H, W)
    idx = torch.arange(b, device=t.device)[:, None, None]
    out = flat.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # (B, h, w, K)
    return out.permute(0, 3, 1, 2).reshape(b, *lead, ph, pw)


def center_crop(t: torch.Tensor, patch_size: int | tuple[int, int]) -> torch.Tensor:
    """The central (h, w) crop of ``t`` (..., H, W) (the top-left of the two middles for odd margins)."""
    ph, pw = _pair(patch_size, "patch_size")
    h, w = t.shape[-2:]
    if ph > h or pw > w:
        raise ValueError(f"center_crop: {ph}x{pw} is larger than the {h}x{w} image")
    top, left = (h - ph) // 2, (w - pw) // 2
    return t[..., top : top + ph, left : left + pw]


# ---------------------------------------------------------------------- tiles
def tile_positions(image_size: tuple[int, int], patch_size: int | tuple[int, int], overlap: int = 0) -> list[tuple[int, int]]:
    """Top-left corners of tiles covering the image row by row; the last row/column is flush with the border."""
    h, w = _pair(image_size, "image_size")
    ph, pw = _pair(patch_size, "patch_size")
    if ph > h or pw > w:
        raise ValueError(f"tile_positions: tile {ph}x{pw} is larger than the {h}x{w} image")
    if not 0 <= overlap < min(ph, pw):
        raise ValueError(f"tile_positions: overlap must be in [0, {min(ph, pw)}), got {overlap}")

    def starts(size: int, p: int) -> list[int]:
        step = p - overlap
        n = max(1, math.ceil((size - p) / step) + 1)
        return sorted({min(i * step, size - p) for i in range(n)})

    return [(r, c) for r in starts(h, ph) for c in starts(w, pw)]


def extract_tiles(
    image: torch.Tensor, patch_size: int | tuple[int, int], overlap: int = 0
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Cut ``image`` (..., H, W) into tiles (T, ..., h, w) at :func:`tile_positions`."""
    ph, pw = _pair(patch_size, "patch_size")
    pos = tile_positions(tuple(image.shape[-2:]), (ph, pw), overlap)
    tiles = torch.stack([image[..., r : r + ph, c : c + pw] for r, c in pos])
    return tiles, pos


def merge_tiles(tiles: torch.Tensor, positions: Sequence[tuple[int, int]], image_size: tuple[int, int]) -> torch.Tensor:
    """Put tiles (T, ..., h, w) back into an (..., H, W) image, averaging where they overlap."""
    h, w = _pair(image_size, "image_size")
    if tiles.shape[0] != len(positions):
        raise ValueError(f"merge_tiles: {tiles.shape[0]} tiles but {len(positions)} positions")
    ph, pw = tiles.shape[-2:]
    out = tiles.new_zeros((*tiles.shape[1:-2], h, w))
    count = torch.zeros((h, w), dtype=tiles.real.dtype if tiles.is_complex() else tiles.dtype, device=tiles.device)
    for tile, (r, c) in zip(tiles, positions, strict=True):
        out[..., r : r + ph, c : c + pw] += tile
        count[r : r + ph, c : c + pw] += 1
    if bool((count == 0).any()):
        raise ValueError("merge_tiles: the tiles do not cover the image")
    return out / count


# ---------------------------------------------------------------------- per-epoch crops of a dataset
def crop_alignment(physics) -> int | None:
    """The corner alignment under which cropping the measurements of ``physics`` is exact, or None: the
    operator's own :attr:`~selfinv.physics.LinearOperator.crop_alignment` (1 for operators acting pixel by
    pixel, 2 for demosaicing, the least common multiple through compositions and sums; None for MRI, CT,
    blur, compressed sensing, ...)."""
    return physics.crop_alignment


class RandomPatches(DatasetView):
    """New random crops of every item of a dataset at each epoch, for pixel-wise operators.

    Item ``j`` is crop ``j % patches_per_item`` of item ``j // patches_per_item`` of ``dataset``. The
    corners of all crops of an epoch are drawn at once from ``(seed, epoch)`` (call
    :meth:`set_epoch` before each epoch; it is forwarded to the wrapped dataset). y, x and y2 are
    cropped at the same place, and so is every operator parameter on the image grid (an inpainting
    mask, per sample or shared: a shared one becomes a per-crop parameter); other parameters pass
    through. Measurements stay those of the wrapped dataset: with a fixed-noise
    :class:`~selfinv.data.datasets.SimulatedDataset` the noise at each pixel never changes, only the
    window does.

    Volumes: with a (d, h, w) ``patch_size`` the items are volumes (C, D, H, W) and the crops (C, d, h, w).

    Args:
        dataset: a :class:`~selfinv.data.datasets.SimulatedDataset` or
            :class:`~selfinv.data.datasets.MeasurementDataset` (or a split of one) whose y, x and y2
            are on the same (H, W) grid (or (D, H, W) grid).
        patch_size: (h, w), an int (a square), or (d, h, w) for volumes.
        patches_per_item: crops per item and epoch.
        seed: base seed of the crop positions.
    """

    def __init__(self, dataset, patch_size: int | tuple[int, int], patches_per_item: int = 1, seed: int = 0) -> None:
        self.dataset = dataset
        self.patch_size = _sizes(patch_size, "RandomPatches: patch_size")
        if patches_per_item < 1:
            raise ValueError(f"RandomPatches: patches_per_item must be >= 1, got {patches_per_item}")
        self.patches_per_item = int(patches_per_item)
        self.seed = int(seed)
        template = dataset.physics_template
        self.align = crop_alignment(template)
        if self.align is None:
            raise ValueError(
                f"RandomPatches: cropping the measurements of {type(template).__name__} is not the measurement "
                "of the crop (only pixel-wise operators: denoising, inpainting, demosaicing); crop the ground "
                "truth before simulating instead: SimulatedDataset(..., patch_size=...)"
            )
        first = dataset[0]
        k = len(self.patch_size)
        if first.y.ndim < k + 1:
            raise ValueError(f"RandomPatches: {k}-D patches of items of shape {tuple(first.y.shape)}; volumes are (C, D, H, W)")
        self.image_size = tuple(first.y.shape[-k:])
        for name, t in (("x", first.x), ("y2", first.y2)):
            if t is not None and tuple(t.shape[-k:]) != self.image_size:
                raise ValueError(f"RandomPatches: y is {self.image_size} but {name} is {tuple(t.shape[-2:])}; they must share the grid")
        # shared parameters on the image grid become per-crop parameters
        self._shared = shared_on_grid(template, self.image_size, exclude=first.params) if k == 2 else {}
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's crop corners (reproducible from ``(seed, epoch)``)."""
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        n = len(self.dataset) * self.patches_per_item
        self.positions = random_positions(self.image_size, self.patch_size, n, seeded(self.seed, "patches", self.epoch), self.align)

    def __len__(self) -> int:
        return len(self.dataset) * self.patches_per_item

    def _crop(self, t: torch.Tensor | None, corner: tuple[int, ...]) -> torch.Tensor | None:
        if t is None:
            return None
        return t[(..., *[slice(c, c + p) for c, p in zip(corner, self.patch_size, strict=True)])]

    def __getitem__(self, j: int) -> Sample:
        if not 0 <= j < len(self):
            raise IndexError(f"RandomPatches: index {j} out of range for {len(self)} patches")
        s = self.dataset[j // self.patches_per_item]
        corner = tuple(int(v) for v in self.positions[j])
        k = len(corner)
        params = {}
        for name, p in {**s.params, **self._shared}.items():
            on_grid = p.ndim >= k and tuple(p.shape[-k:]) == self.image_size
            params[name] = self._crop(p, corner) if on_grid else p
        return Sample(self._crop(s.y, corner), self._crop(s.x, corner), self._crop(s.y2, corner), params, j)

    @property
    def groups(self) -> torch.Tensor:
        """The group (source image) of every patch, for leak-free splits."""
        return groups_of(self.dataset).repeat_interleave(self.patches_per_item)

    def make_physics(self, params: dict[str, torch.Tensor]):
        """The physics of a batch of crops, from their collated parameters."""
        return with_params(self.dataset.physics_template, params)
