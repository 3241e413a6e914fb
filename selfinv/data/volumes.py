r"""Volumes (microscopy z-stacks, cryo-electron tomograms) as measurements of 3-D networks.

Files store a volume as a stack of slices, which :func:`~selfinv.data.read_image` gives as (D, C, H, W) (a ``ZYX``
TIFF: D = Z). 2-D networks see each slice as one image (:func:`~selfinv.data.load_measurements`); a 3-D network
(a backbone with ``spatial_dims = 3``, e.g. ``unet3d``) sees the whole volume: :func:`load_volumes` keeps every
file as one measurement (C, D, H, W), so that the set's y is (N, C, D, H, W), the layout of
:class:`~selfinv.models.UNet3d`, the 3-D losses and the 3-D tiles of :func:`~selfinv.inference.tiled_apply`.
Second volumes of the same specimen (two frames, or the two half-tilt-series reconstructions of cryo-ET, for
Noise2Noise) come from ``pairs`` files, matched by name. Normalisation is as for images (``"auto"``: a robust
scale of the first volumes).

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> from selfinv.data import write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(folder / "stack.tif", np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32))
    >>> ds = load_volumes(folder / "stack.tif", normalization="none")
    >>> tuple(ds.y.shape), ds.names
    ((1, 1, 6, 8, 8), ['stack.tif'])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from selfinv.data.datasets.items import file_normalization
from selfinv.data.datasets.measured import MeasurementDataset
from selfinv.data.normalization import Normalization
from selfinv.data.physics_params import physics_from
from selfinv.data.readers import read_image, split_key
from selfinv.data.sources import auto_normalization, image_files
from selfinv.data.stacks import match_pair_files, read_with_axes

__all__ = ["load_volumes"]


def _files(spec: str | os.PathLike) -> tuple[list[Path], str | None]:
    p, key = split_key(spec)
    return image_files(p, str(p), p.name or str(p)), key


def _read_volume(path: Path, key: str | None, axes: str | None):
    if axes is not None:
        if "T" in axes.upper():
            raise ValueError(f"data.axes = {axes!r}: T frames are separate measurements, not a volume axis; a 3-D "
                             "network needs Z (e.g. ZYX)")
        arr, info = read_with_axes(path, axes, key)
    else:
        arr, info = read_image(path, key=key, return_info=True)
    if arr.ndim != 4:
        raise ValueError(f"{path.name}: a 3-D network needs volumes (a Z, Y, X stack), got one image of shape "
                         f"{tuple(arr.shape)}; use a 2-D backbone (e.g. unet) for images")
    return np.ascontiguousarray(np.moveaxis(arr, 0, 1)), info  # (D, C, H, W) -> (C, D, H, W)


def load_volumes(
    path: str | os.PathLike,
    physics="denoising",
    *,
    key: str | None = None,
    noise=None,
    normalization: Normalization | str | None = "auto",
    axes: str | None = None,
    pairs: str | os.PathLike | None = None,
) -> MeasurementDataset:
    """A :class:`~selfinv.data.MeasurementDataset` of volumes (N, C, D, H, W), one per file (module docstring).

    Args:
        path: a volume file, a folder or a glob of them (``FILE:KEY`` picks an array of an .h5/.npz/.mat file).
        physics: the operator: a registry name, a class or a factory ``(noise=None, [y=None,] **arrays)``
            (pixel-wise operators: denoising).
        key: the array of ``.h5``/``.npz``/``.mat`` files.
        noise: the noise model (default: the operator's).
        normalization: ``"auto"`` (8-bit files / 255, else a robust scale), ``"range"``, ``"none"`` or a
            :class:`Normalization`.
        axes: the files' layout (``ZYX``, ``ZCYX``, ...), checked against every file.
        pairs: second volumes of the same specimens (a file, folder or glob; matched by name, else in order)
            as y2 (Noise2Noise).
    """
    files, key = _files(path)
    where = Path(split_key(path)[0]).name or str(path)
    read = [_read_volume(f, key, axes) for f in files]
    ys = [torch.from_numpy(a) for a, _ in read]
    infos = [info for _, info in read]
    names = [f.name for f in files]
    y2 = None
    if pairs is not None:
        second, _ = _files(pairs)
        y2 = [torch.from_numpy(_read_volume(f, key, axes)[0]) for f in match_pair_files(files, second)]
        for n, a, b in zip(names, ys, y2, strict=True):
            if a.shape != b.shape:
                raise ValueError(f"data.pairs_path: {n} is {tuple(a.shape)} but its second volume is {tuple(b.shape)}")
    for n, a in zip(names, ys, strict=True):
        if a.shape != ys[0].shape:
            raise ValueError(f"{where}: {n} is {tuple(a.shape)} but {names[0]} is {tuple(ys[0].shape)}; volumes of "
                             "one set must have one size (crop or pad them, or use one set per size)")
    y = torch.stack(ys)
    op = physics_from(physics, {}, noise, y, where)
    if isinstance(normalization, Normalization):
        norm = normalization
    elif normalization == "none" or normalization is None:
        norm = Normalization.identity()
    elif normalization == "range":
        norm = file_normalization(infos, names, "measurements", measurements=True)
    elif normalization == "auto":
        norm = auto_normalization(y, op, infos, where=where)
    else:
        raise ValueError(f"load_volumes: normalization must be 'auto', 'range', 'none' or a Normalization, got {normalization!r}")
    return MeasurementDataset(ys, op, y2=y2, normalization=norm, names=names)
