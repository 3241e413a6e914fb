r"""Read images, stacks and raw measurements with one axis convention and clear errors.

Axis convention
    :func:`read_image` returns a ``float32`` (real data) or ``complex64`` (complex data) array of shape
    ``(C, H, W)`` for a single image and ``(D, C, H, W)`` for a stack (pages, slices, frames): C is
    the channel axis (1 for grayscale, 3 for RGB, coils for multi-coil k-space), H the rows (top to
    bottom) and W the columns. A 2-D image is ``(1, H, W)``.

==================== ============================================================================
format               reader and axes
==================== ============================================================================
``.png .jpg .jpeg``  imageio. (H, W) → (1, H, W); (H, W, C) → (C, H, W). 8- and 16-bit PNG.
``.tif .tiff``       tifffile, axes from the file's metadata (``series[0].axes``): Y→H, X→W,
                     S/C (samples, channels)→C, any other axis (pages Q/I, Z, T, ...)→D.
                     Several series of one shape (pages written one by one) are stacked
                     along D; otherwise (pyramids, thumbnails) the first series is read.
                     Resolution, resolution unit, ImageDescription and the axes letters are
                     kept in ``info.tags`` and written back by ``write_image(like=info)``.
``.npy .npz``        numpy (``allow_pickle=False``). By dimension: HW, CHW, DCHW (override
                     with ``axes=``); ``.npz``: the only array, or ``key=``.
``.h5 .hdf5``        h5py. ``key=`` names the dataset; without it, the only dataset, or the
                     reconstruction of a fastMRI file (see :func:`read_fastmri`). Axes from a
                     dataset attribute ``axes`` if present, else as for ``.npy`` (fastMRI
                     arrays are stacks of slices: DHW / DCHW; multi-coil ``kspace``: C = coils).
``.mat``             MATLAB v4-v7 (scipy) and v7.3 (HDF5, h5py), both in MATLAB's layout
                     (v7.3 arrays, stored transposed, are transposed back; see
                     :mod:`~selfinv.data.matlab`). ``key=`` names the variable, struct fields
                     dotted (``CtDataLimited.sinogram``); without it, the only numeric array
                     with two dimensions > 1. Axes: HW; 3-D HWC (MATLAB's images, H×W×3, and
                     coil stacks); 4-D HWCD; override with ``axes=`` (``"WH"`` transposes a
                     MATLAB angles × detectors sinogram to selfinv's detectors × angles).
                     Struct fields as a dict: :func:`~selfinv.data.matlab.read_mat_struct`.
``.dcm .dicom .ima`` pydicom; RescaleSlope/RescaleIntercept applied (also the enhanced
                     multi-frame functional groups), so CT comes out in Hounsfield units.
                     Frames → D, samples per pixel → C. ``info.source`` is the file, whose
                     header ``write_image(out.dcm, x, like=info)`` copies.
``.cfl`` / ``.hdr``  BART: raw complex64 in Fortran order, dims in the ``.hdr``. BART dims 0-2
                     (read, phase 1, phase 2) give H, W (the first two that are > 1) and D (a
                     third spatial dim), dims 3-4 (coils, ESPIRiT maps) give C
                     (``info.channel_axis == "coil"``), dims ≥ 5 join D.
==================== ============================================================================

Each row is an entry of one table from extension to reader (``_READERS``; the readers live in
:mod:`~selfinv.data.image_formats`, :mod:`~selfinv.data.array_formats`, :mod:`~selfinv.data.matlab` and
:mod:`~selfinv.data.dicom_io`): a new format is its reader and its lines in that table.

A key can also be written into the path: ``read_image("scan.h5:kspace")``, ``"set.npz:y"``,
``"ct.mat:CtDataLimited.sinogram"``. The path is split at its last ``:`` only when the part before it
is an existing file with one of these extensions (a file whose name holds a colon reads as it is).

``axes=`` (a string over D, C, H, W such as ``"HWC"`` or ``"DHW"``) overrides the layout of the
array formats (TIFF, NPY/NPZ, HDF5, MAT).

Values are the file's values, converted to float: an 8-bit PNG gives 0..255, a CT DICOM Hounsfield
units. :class:`~selfinv.data.image_info.ImageInfo` (``read_image(path, return_info=True)``) records
the stored dtype, the bit depth, the data range, what C means (``channel_axis``), TIFF tags and the
DICOM source, from which :class:`~selfinv.data.normalization.Normalization` maps the data to [0, 1]
and :func:`~selfinv.data.writers.write_image` (``like=info``) writes results back in kind.

Every failure is one ``ValueError`` whose message starts with the file name: a missing file, a folder
where a file is expected, an unknown extension, a corrupt or truncated file (the library's exception
is chained; library log messages are silenced), an empty array or NaN/Inf values. Finiteness is
checked here, at load time, and not again in training loops.

Example:
    >>> import numpy as np, pathlib, shutil, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    >>> write_image(folder / "a.png", img)
    >>> x, info = read_image(folder / "a.png", return_info=True)
    >>> x.shape, x.dtype, info
    ((1, 3, 4), dtype('float32'), ImageInfo(dtype='uint8', bit_depth=8, data_range=(0.0, 255.0)))
    >>> write_image(folder / "a.png", x + 1, like=info)
    Traceback (most recent call last):
    ...
    ValueError: a.png: already exists; pass overwrite=True to replace it
    >>> np.savez(folder / "set.npz", y=np.zeros((2, 5, 6)), mask=np.ones((5, 6)))
    >>> read_image(f"{folder}/set.npz:y").shape
    (2, 5, 6)
    >>> shutil.rmtree(folder)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfinv.data._io import PathLike, _as_float, _check_values, _fail, _guard
from selfinv.data.array_formats import FASTMRI_RECON, h5_datasets, h5_open, read_cfl, read_h5, read_npy
from selfinv.data.dicom_io import read_dicom
from selfinv.data.image_formats import read_png, read_tiff
from selfinv.data.image_info import ImageInfo
from selfinv.data.matlab import read_mat_image
from selfinv.data.writers import write_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "check_path",
    "list_images",
    "read_fastmri",
    "read_image",
    "split_key",
    "write_image",
]


# ---------------------------------------------------------------------- the table: extension → reader
@dataclass(frozen=True)
class _Format:
    """How :func:`read_image` reads one kind of file: ``read(path[, key=][, axes=]) -> (raw array in the
    (C, H, W) / (D, C, H, W) layout, ImageInfo)``, and which of ``key=`` / ``axes=`` it takes."""

    read: Callable[..., tuple[np.ndarray, ImageInfo]]
    keyed: bool = False  # key= names an array, dataset or variable of the file
    axes: bool = False  # axes= gives the layout of the stored array
    pair: bool = False  # one file of a pair (BART .cfl/.hdr): the reader checks that both exist


_PNG = _Format(read_png)
_TIFF = _Format(read_tiff, axes=True)
_NPY = _Format(read_npy, keyed=True, axes=True)
_H5 = _Format(read_h5, keyed=True, axes=True)
_MAT = _Format(read_mat_image, keyed=True, axes=True)
_DICOM = _Format(read_dicom)
_BART = _Format(read_cfl, pair=True)

_READERS: dict[str, _Format] = {
    ".png": _PNG,
    ".jpg": _PNG,
    ".jpeg": _PNG,
    ".tif": _TIFF,
    ".tiff": _TIFF,
    ".npy": _NPY,
    ".npz": _NPY,
    ".h5": _H5,
    ".hdf5": _H5,
    ".mat": _MAT,
    ".dcm": _DICOM,
    ".dicom": _DICOM,
    ".ima": _DICOM,
    ".cfl": _BART,
    ".hdr": _BART,
}

#: the file extensions :func:`read_image` reads
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(_READERS)


def split_key(path: PathLike, key: str | None = None) -> tuple[Path, str | None]:
    """``"scan.h5:kspace"`` → (``scan.h5``, ``"kspace"``); any other path is kept whole, with ``key``.

    The split is at the last ``:``, and only when the part before it is an existing file with an
    extension :func:`read_image` reads and the whole text is not itself an existing path.

    Raises:
        ValueError: when the path holds a key and ``key`` names another one.
    """
    text = os.fspath(path)
    head, sep, tail = text.rpartition(":")
    if sep and head and tail and not Path(text).exists():
        file = Path(head).expanduser()
        if file.suffix.lower() in _READERS and file.is_file():
            if key is not None and key != tail:
                raise _fail(file, f"two keys given ({tail!r} in the path and key={key!r})")
            return file, tail
    return Path(path), key


def check_path(path: PathLike) -> tuple[Path, _Format]:
    """The path and its format; a folder, an unknown extension or a missing file is one ValueError line."""
    path = Path(path)
    if path.is_dir():
        raise _fail(path, "is a folder, not a file (give the files inside it, or a folder where a folder is expected)")
    fmt = _READERS.get(path.suffix.lower())
    if fmt is None:
        raise _fail(path, f"unknown extension {path.suffix!r}; supported: {', '.join(IMAGE_EXTENSIONS)}")
    if not fmt.pair and not path.is_file():
        raise _fail(path, f"no such file ({path})")
    return path, fmt


def read_image(
    path: PathLike,
    *,
    key: str | None = None,
    axes: str | None = None,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, ImageInfo]:
    """Read an image or a stack as float32/complex64 ``(C, H, W)`` or ``(D, C, H, W)`` (module docstring).

    Args:
        path: the file (``.cfl`` or ``.hdr`` for a BART pair); ``FILE:KEY`` names the array of an
            ``.npz``, the dataset of an HDF5 file or the variable of a ``.mat`` file.
        key: the same as the ``:KEY`` of the path (struct fields of ``.mat`` files dotted).
        axes: the layout of the stored array for TIFF/NPY/NPZ/HDF5/MAT, e.g. ``"HWC"``, ``"DHW"``.
        return_info: also return the file's :class:`ImageInfo`.

    Raises:
        ValueError: naming the file, for a missing file, a folder, an unknown extension, a corrupt
            or truncated file, an empty array or NaN/Inf values.
    """
    path, key = split_key(path, key)
    path, fmt = check_path(path)
    if axes is not None and not fmt.axes:
        raise _fail(path, "axes= applies to TIFF, NPY/NPZ, HDF5 and MAT arrays only")
    if key is not None and not fmt.keyed:
        raise _fail(path, "key= applies to NPZ, HDF5 and MAT files only")
    options = {**({"key": key} if fmt.keyed else {}), **({"axes": axes} if fmt.axes else {})}
    raw, info = fmt.read(path, **options)
    _check_values(path, raw)
    out = _as_float(raw)
    return (out, info) if return_info else out


def read_fastmri(path: PathLike, slices: int | slice | Sequence[int] | None = None) -> dict[str, Any]:
    """Read a fastMRI HDF5 file: k-space, the reconstruction if present, the mask and the attributes.

    fastMRI layout: dataset ``kspace`` of shape (slices, H, W) complex (single-coil) or
    (slices, coils, H, W) (multi-coil); optional ``reconstruction_esc`` (single-coil) or
    ``reconstruction_rss`` (slices, h, w) real, usually cropped to 320 × 320 and therefore smaller
    than k-space; optional ``mask`` (W,) on test/challenge files; file attributes such as
    ``acquisition``, ``max`` and ``norm``. ``slices`` (an index, a slice or a list of indices) reads only
    those slices of k-space and reconstruction from the file.

    Returns:
        ``{"kspace": (S, C, H, W) complex64, "reconstruction": (S, 1, h, w) float32 or None,
        "reconstruction_key": str or None, "mask": (W,) float32 or None, "attrs": dict}``.
    """
    path, fmt = check_path(path)
    if fmt is not _H5:
        raise _fail(path, "read_fastmri reads HDF5 files (.h5)")
    with h5_open(path) as f:
        names = h5_datasets(f)
        if "kspace" not in names:
            raise _fail(path, f"is not a fastMRI file: no 'kspace' dataset (it holds {names})")
        sel = _slice_selection(path, slices, f["kspace"].shape[0] if f["kspace"].ndim in (3, 4) else 0)
        kspace = np.asarray(_guard(path, "dataset 'kspace'", lambda: f["kspace"][sel]))
        recon_key = next((n for n in FASTMRI_RECON if n in names), None)
        recon = np.asarray(_guard(path, recon_key, lambda: f[recon_key][sel])) if recon_key else None
        mask = np.asarray(_guard(path, "dataset 'mask'", lambda: f["mask"][()])) if "mask" in names else None
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    if kspace.ndim not in (3, 4):
        raise _fail(path, f"kspace must be (slices, H, W) or (slices, coils, H, W), got shape {kspace.shape}")
    _check_values(path, kspace)
    out: dict[str, Any] = {
        "kspace": _as_float(kspace if kspace.ndim == 4 else kspace[:, None]).astype(np.complex64),
        "reconstruction": None,
        "reconstruction_key": recon_key,
        "mask": None,
        "attrs": attrs,
    }
    if recon is not None:
        _check_values(path, recon)
        out["reconstruction"] = _as_float(recon if recon.ndim == 4 else recon[:, None])
    if mask is not None:
        _check_values(path, mask)
        out["mask"] = mask.astype(np.float32)
    return out


def _slice_selection(path: Path, slices, n: int):
    """The h5py selection of ``slices`` (None: all) among ``n`` slices; out of range is one error line."""
    if slices is None or n == 0:
        return ()
    if isinstance(slices, slice):
        return slices
    index = [slices] if isinstance(slices, (int, np.integer)) else list(slices)
    if not index or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in index):
        raise _fail(path, f"slices must be an index, a slice or a list of indices, got {slices!r}")
    index = [int(i) + n if int(i) < 0 else int(i) for i in index]
    if any(not 0 <= i < n for i in index) or len(set(index)) != len(index) or index != sorted(index):
        raise _fail(path, f"slices {slices!r}: need distinct increasing indices among the file's {n} slices")
    return index


def list_images(folder: PathLike) -> list[Path]:
    """The files of ``folder`` that :func:`read_image` reads, sorted by path (``.hdr`` of BART pairs skipped).

    ``folder`` may be a glob pattern (``data/*/*.cfl``, ``**`` recursing), for data kept one file per subject
    folder."""
    text = str(folder)
    if any(c in text for c in "*?["):
        import glob

        found = [Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)]
    else:
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder.name}: no such folder ({folder})")
        found = list(folder.iterdir())
    files = [p for p in found if p.is_file() and p.suffix.lower() in _READERS and p.suffix.lower() != ".hdr"]
    return sorted(files, key=lambda p: (str(p.parent), p.name))


def pattern_root(folder: PathLike) -> Path:
    """The folder a :func:`list_images` argument lists under (a pattern's part before its first wildcard)."""
    parts = Path(folder).parts
    stop = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts))
    return Path(*parts[:stop]) if stop else Path(".")
