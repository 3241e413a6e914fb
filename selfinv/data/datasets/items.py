r"""What the datasets are made of: files, folders, arrays or tensors → named tensors of one shape, and the
normalisation the files imply.

:func:`as_items` reads the inputs of :class:`~selfinv.data.datasets.SimulatedDataset` (images) and
:class:`~selfinv.data.datasets.MeasurementDataset` (measurements), with the
:class:`~selfinv.data.image_info.ImageInfo` of each file; :func:`read_slices` reads one file (a stack gives
one item per slice); :func:`check_same_shape` refuses items of different sizes in one line that lists them;
:func:`file_normalization` is the one normalisation all files imply. :func:`~selfinv.data.sources.load_measurements`
uses them too.

Example:
    >>> import torch
    >>> names, tensors, infos = as_items([torch.zeros(4, 5), torch.ones(1, 4, 5)], None, "demo", images=True)
    >>> names, [tuple(t.shape) for t in tensors], infos
    (['item 0', 'item 1'], [(1, 4, 5), (1, 4, 5)], [None, None])
    >>> check_same_shape(["a", "b"], [torch.zeros(2), torch.zeros(3)], "demo", "crop them")
    Traceback (most recent call last):
    ...
    ValueError: demo: items have different sizes (2: a; 3: b); crop them
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from selfinv.data.image_info import ImageInfo
from selfinv.data.normalization import Normalization
from selfinv.data.readers import list_images, read_image

__all__ = ["as_items", "check_same_shape", "file_normalization", "read_slices"]


def read_slices(path, key: str | None = None) -> tuple[list[np.ndarray], list[str], ImageInfo]:
    """A file's items: its image, or one per slice of a stack (named ``file[d]``), and its ImageInfo."""
    arr, info = read_image(path, key=key, return_info=True)
    name = Path(path).name
    if arr.ndim == 4:  # a stack: one item per slice
        return list(arr), [f"{name}[{d}]" for d in range(arr.shape[0])], info
    return [arr], [name], info


def as_items(
    data, names: Sequence[str] | None, owner: str, images: bool = False
) -> tuple[list[str], list[torch.Tensor], list[ImageInfo | None]]:
    """Files, folders, arrays or tensors → (names, tensors, infos of files).

    With ``images`` a stacked array must be (N, C, H, W) and a 2-D item becomes (1, H, W); otherwise
    items keep their shape (measurements of any shape, e.g. (m,) for compressed sensing).
    """
    if isinstance(data, (str, os.PathLike)):
        folder = Path(data)
        data = list_images(folder)
        if not data:
            raise ValueError(f"{owner}: no readable image files in {folder.name}")
    if isinstance(data, (torch.Tensor, np.ndarray)):
        if data.ndim < 2 or (images and data.ndim != 4):
            expected = "(N, C, H, W)" if images else "(N, ...)"
            raise ValueError(
                f"{owner}: expected a stack {expected}, got shape {tuple(data.shape)}"
                f"{'; pass a list for single images' if images else ''}"
            )
        data = list(data)
    out_names: list[str] = []
    tensors: list[torch.Tensor] = []
    infos: list[ImageInfo | None] = []
    for i, item in enumerate(data):
        if isinstance(item, (str, os.PathLike)):
            arrays, slice_names, info = read_slices(item)
            out_names += slice_names
            tensors += [torch.from_numpy(a) for a in arrays]
            infos += [info] * len(arrays)
            continue
        t = torch.as_tensor(np.asarray(item)) if isinstance(item, np.ndarray) else item
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{owner}: item {i} must be a path, a numpy array or a tensor, got {type(item).__name__}")
        if t.ndim == 0 or t.numel() == 0:
            raise ValueError(f"{owner}: item {i} is empty or a scalar (shape {tuple(t.shape)})")
        if not (t.is_floating_point() or t.is_complex()):
            t = t.to(torch.float32)
        if images and t.ndim == 2:
            t = t[None]
        if images and t.ndim != 3:
            raise ValueError(f"{owner}: image {i} must be (H, W) or (C, H, W), got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{owner}: item {i} contains NaN or Inf values")
        out_names.append(f"item {i}")
        tensors.append(t.detach())
        infos.append(None)
    if not tensors:
        raise ValueError(f"{owner}: no data")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(tensors):
            raise ValueError(f"{owner}: {len(names)} names for {len(tensors)} items")
        out_names = names
    return out_names, tensors, infos


def check_same_shape(names: list[str], tensors: list[torch.Tensor], owner: str, hint: str) -> None:
    """Refuse items of different shapes, listing a few names of each shape, with ``hint`` (what to do)."""
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for n, t in zip(names, tensors, strict=True):
        by_shape.setdefault(tuple(t.shape), []).append(n)
    if len(by_shape) > 1:
        parts = [f"{'x'.join(map(str, s))}: {', '.join(ns[:3])}{' ...' if len(ns) > 3 else ''}" for s, ns in by_shape.items()]
        raise ValueError(f"{owner}: items have different sizes ({'; '.join(parts)}); {hint}")


def file_normalization(infos: list[ImageInfo | None], names: list[str], owner: str, measurements: bool) -> Normalization:
    """The normalisation the files imply (integers: their data range; floats: none); one for all."""
    files = [(n, i) for n, i in zip(names, infos, strict=True) if i is not None]
    if not files:
        return Normalization.identity()
    norms = {}
    for n, info in files:
        norms.setdefault(Normalization.from_info(info, measurements=measurements), []).append(n)
    if len(norms) > 1 or len(files) != len(names):
        desc = "; ".join(f"{n.to_dict()}: {', '.join(ns[:3])}" for n, ns in norms.items())
        raise ValueError(
            f"{owner}: the inputs imply different normalisations ({desc}"
            f"{'; plus in-memory arrays' if len(files) != len(names) else ''}); pass normalization= explicitly"
        )
    return next(iter(norms))

