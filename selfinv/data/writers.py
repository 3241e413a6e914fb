"""Write results back in kind: PNG, TIFF (with the source's tags), NPY, and DICOM like its source.

``write_image(path, array, like=info)`` takes the :class:`~selfinv.data.image_info.ImageInfo` of the
file the data came from:

==================== ============================================================================
format               what is written
==================== ============================================================================
``.png``             8- or 16-bit integers (16-bit for grayscale only), one image.
``.tif .tiff``       any real dtype, RGB as interleaved samples, stacks as pages; with ``like``,
                     its TIFF tags: resolution and resolution unit, ImageDescription, and the
                     axes letters (a ``TYX`` time series stays ``TYX``) when they fit the array.
``.npy``             the array as it is, in the (C, H, W) / (D, C, H, W) convention.
``.dcm .dicom``      like the source DICOM of ``like`` (``like.source``): its header copied, a new
                     series, stored values from the inverted rescale (see
                     :mod:`~selfinv.data.dicom_io`).
==================== ============================================================================

Each row is an entry of one table from extension to writer (``_WRITERS``; the encoders live in
:mod:`~selfinv.data.image_formats`, :mod:`~selfinv.data.array_formats` and :mod:`~selfinv.data.dicom_io`).

Everything written reads back with :func:`~selfinv.data.readers.read_image` to the same values and
shape (DICOM: up to the rounding to stored integers).

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> from selfinv.data.readers import read_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> info = ImageInfo("uint16", 16, (0.0, 65535.0), tags={"resolution": (4.0, 4.0), "resolution_unit": "centimeter"})
    >>> write_image(folder / "a.tif", np.full((3, 4), 1000.4), like=info)
    >>> x, back = read_image(folder / "a.tif", return_info=True)
    >>> float(x[0, 0, 0]), back.dtype, back.tags["resolution"], back.tags["resolution_unit"]
    (1000.0, 'uint16', (4.0, 4.0), 'centimeter')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from selfinv.data._io import PathLike, _fail
from selfinv.data.array_formats import npy_bytes
from selfinv.data.dicom_io import write_dicom
from selfinv.data.image_formats import png_bytes, tiff_bytes
from selfinv.data.image_info import ImageInfo

__all__ = ["WRITE_EXTENSIONS", "write_image"]


def _to_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _convert(path: Path, a: np.ndarray, like: ImageInfo | None) -> np.ndarray:
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        raise _fail(path, "the array to write contains NaN or Inf")
    if like is None:
        return a
    target = np.dtype(like.dtype)
    if target.kind in "iu":
        if a.dtype.kind == "c":
            raise _fail(path, f"cannot write complex data as {target}; take .real or abs() first")
        lo, hi = like.data_range
        info = np.iinfo(target)
        lo, hi = max(lo, info.min), min(hi, info.max)
        r = np.rint(a.astype(np.float64))
        below, above = int(np.count_nonzero(r < lo)), int(np.count_nonzero(r > hi))
        if below or above:
            import warnings

            warnings.warn(f"{path.name}: {below + above} of {a.size} values ({100 * (below + above) / a.size:.2g} %) fell "
                          f"outside the {target} range [{lo:g}, {hi:g}] ({below} below, {above} above) and were clipped to it",
                          stacklevel=4)
        return np.clip(r, lo, hi).astype(target)
    if target.kind == "f" and a.dtype.kind == "c":
        raise _fail(path, f"cannot write complex data as {target}; take .real or abs() first")
    return a.astype(target)


# ---------------------------------------------------------------------- the table: extension → writer
# each writer: (path, array (C, H, W) or (D, C, H, W), like) -> the file's bytes
def _png(path: Path, a: np.ndarray, like: ImageInfo | None) -> bytes:
    return png_bytes(path, _convert(path, a, like))


def _tiff(path: Path, a: np.ndarray, like: ImageInfo | None) -> bytes:
    return tiff_bytes(path, _convert(path, a, like), like.tags if like is not None else None)


def _npy(path: Path, a: np.ndarray, like: ImageInfo | None) -> bytes:
    return npy_bytes(_convert(path, a, like))


def _dicom(path: Path, a: np.ndarray, like: ImageInfo | None) -> bytes:
    return write_dicom(path, _convert(path, a, None), like)  # stored integers come from the inverted rescale


_WRITERS: dict[str, Callable[[Path, np.ndarray, ImageInfo | None], bytes]] = {
    ".png": _png,
    ".tif": _tiff,
    ".tiff": _tiff,
    ".npy": _npy,
    ".dcm": _dicom,
    ".dicom": _dicom,
}

#: the file extensions :func:`write_image` writes
WRITE_EXTENSIONS: tuple[str, ...] = tuple(_WRITERS)


def write_image(path: PathLike, array, like: ImageInfo | None = None, *, overwrite: bool = False) -> None:
    """Write ``array`` ((H, W), (C, H, W) or (D, C, H, W), numpy or torch) as PNG, TIFF, NPY or DICOM.

    With ``like`` the values are converted to ``like.dtype``: integers are rounded and clipped to
    ``like.data_range``, with a warning that counts the values clipped (denormalise first, see
    :class:`~selfinv.data.normalization.Normalization`);
    without it the array's dtype is kept. TIFF also gets ``like``'s tags; DICOM needs ``like`` from a
    DICOM file and is written with its header (module docstring).

    An existing file is never replaced unless ``overwrite=True`` (the file is opened in exclusive
    mode, so two writers cannot race). NaN/Inf values are refused.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _WRITERS:
        raise _fail(path, f"cannot write {ext!r} files; write_image writes {', '.join(WRITE_EXTENSIONS)}")
    if not path.parent.is_dir():
        raise _fail(path, f"the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise _fail(path, "already exists; pass overwrite=True to replace it")
    a = _to_numpy(array)
    if a.size == 0:
        raise _fail(path, f"the array to write is empty (shape {a.shape})")
    if a.ndim == 2:
        a = a[None]
    if a.ndim not in (3, 4):
        raise _fail(path, f"expected (H, W), (C, H, W) or (D, C, H, W), got shape {a.shape}")

    data = _WRITERS[ext](path, a, like)
    try:
        with open(path, "wb" if overwrite else "xb") as fh:
            fh.write(data)
    except FileExistsError:
        raise _fail(path, "already exists; pass overwrite=True to replace it") from None

