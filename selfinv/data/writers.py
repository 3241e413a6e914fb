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

import io
from pathlib import Path
from typing import Any

import numpy as np

from selfinv.data._io import PathLike, _fail, _guard, _tiff_axes
from selfinv.data.image_info import ImageInfo

__all__ = ["WRITE_EXTENSIONS", "write_image"]

#: the file extensions :func:`write_image` writes
WRITE_EXTENSIONS: tuple[str, ...] = (".png", ".tif", ".tiff", ".npy", ".dcm", ".dicom")


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
        return np.clip(np.rint(a.astype(np.float64)), lo, hi).astype(target)
    if target.kind == "f" and a.dtype.kind == "c":
        raise _fail(path, f"cannot write complex data as {target}; take .real or abs() first")
    return a.astype(target)


def write_image(path: PathLike, array, like: ImageInfo | None = None, *, overwrite: bool = False) -> None:
    """Write ``array`` ((H, W), (C, H, W) or (D, C, H, W), numpy or torch) as PNG, TIFF, NPY or DICOM.

    With ``like`` the values are converted to ``like.dtype``: integers are rounded and clipped to
    ``like.data_range`` (denormalise first, see :class:`~selfinv.data.normalization.Normalization`);
    without it the array's dtype is kept. TIFF also gets ``like``'s tags; DICOM needs ``like`` from a
    DICOM file and is written with its header (module docstring).

    An existing file is never replaced unless ``overwrite=True`` (the file is opened in exclusive
    mode, so two writers cannot race). NaN/Inf values are refused.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
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

    if ext in (".dcm", ".dicom"):
        from selfinv.data.dicom_io import write_dicom

        data = write_dicom(path, _convert(path, a, None), like)  # stored integers come from the inverted rescale
    else:
        a = _convert(path, a, like)
        if ext == ".npy":
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            data = buf.getvalue()
        elif ext == ".png":
            data = _png_bytes(path, a)
        else:
            data = _tiff_bytes(path, a, like.tags if like is not None else None)
    try:
        with open(path, "wb" if overwrite else "xb") as fh:
            fh.write(data)
    except FileExistsError:
        raise _fail(path, "already exists; pass overwrite=True to replace it") from None


def _png_bytes(path: Path, a: np.ndarray) -> bytes:
    import imageio.v3 as iio

    if a.ndim == 4:
        raise _fail(path, f"PNG holds one image, got a stack of shape {a.shape}; write TIFF or NPY")
    if a.dtype not in (np.uint8, np.uint16):
        raise _fail(
            path,
            f"PNG holds 8- or 16-bit integers, got {a.dtype}; pass like=ImageInfo.for_dtype('uint8') "
            "(values are rounded and clipped to [0, 255], so denormalise first) or write TIFF/NPY",
        )
    c = a.shape[0]
    if c not in (1, 3, 4):
        raise _fail(path, f"PNG holds 1, 3 or 4 channels, got {c}; write TIFF or NPY")
    if a.dtype == np.uint16 and c != 1:
        raise _fail(path, "16-bit PNG is written for grayscale images only; write TIFF for 16-bit colour")
    img = a[0] if c == 1 else np.moveaxis(a, 0, -1)
    buf = io.BytesIO()
    _guard(path, "the PNG file", lambda: iio.imwrite(buf, np.ascontiguousarray(img), extension=".png"), action="write")
    return buf.getvalue()


def _same_layout(ours: str, theirs: str | None) -> bool:
    """Whether the file's axes letters name the layout we write (``TYX`` for our ``ZYX``)."""
    if not theirs or len(theirs) != len(ours):
        return False
    mapped = _tiff_axes(theirs)
    return mapped == _tiff_axes(ours) and len(set(mapped)) == len(mapped) and ("S" in theirs) == ("S" in ours)


def _tiff_bytes(path: Path, a: np.ndarray, tags: dict[str, Any] | None = None) -> bytes:
    import tifffile

    if a.dtype.kind == "c":
        raise _fail(path, "TIFF is written for real data only; write NPY for complex arrays")
    c = a.shape[-3]
    stack = a.ndim == 4
    kwargs: dict[str, Any] = {}
    if c == 1:
        data, axes = a[:, 0] if stack else a[0], "ZYX" if stack else "YX"
        kwargs["photometric"] = "minisblack"
    elif c == 3:
        data, axes = np.moveaxis(a, -3, -1), "ZYXS" if stack else "YXS"
        kwargs["photometric"] = "rgb"
    else:
        data, axes = a, "ZCYX" if stack else "CYX"
        kwargs["photometric"] = "minisblack"
    tags = tags or {}
    if _same_layout(axes, tags.get("axes")):
        axes = tags["axes"]
    if tags.get("resolution") is not None:
        kwargs["resolution"] = tuple(float(v) for v in tags["resolution"])
        unit = str(tags.get("resolution_unit") or "none").upper()
        kwargs["resolutionunit"] = tifffile.RESUNIT[unit] if unit in tifffile.RESUNIT.__members__ else tifffile.RESUNIT.NONE
    if tags.get("description"):
        kwargs["description"] = str(tags["description"]).encode("utf-8")  # as bytes: tifffile refuses non-ASCII str
    buf = io.BytesIO()
    _guard(
        path,
        "the TIFF file",
        lambda: tifffile.imwrite(buf, np.ascontiguousarray(data), metadata={"axes": axes}, **kwargs),
        action="write",
    )
    return buf.getvalue()
