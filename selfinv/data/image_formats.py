"""Raster image files: PNG/JPEG (imageio) and TIFF (tifffile), read into and written from (C, H, W) / (D, C, H, W).

The readers are the entries of :func:`~selfinv.data.readers.read_image`'s table for ``.png .jpg .jpeg`` and
``.tif .tiff``, the ``*_bytes`` functions those of :func:`~selfinv.data.writers.write_image`'s for ``.png`` and
``.tif .tiff``; the formats' details (axes letters, tags kept and written back) are in those modules'
docstrings. Every failure is one ``ValueError`` naming the file (:mod:`~selfinv.data._io`).

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
    >>> _ = path.write_bytes(tiff_bytes(path, np.zeros((2, 1, 3, 4), np.uint16)))
    >>> x, info = read_tiff(path)
    >>> x.shape, info.tags["axes"]
    ((2, 1, 3, 4), 'ZYX')
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from selfinv.data._io import _fail, _guard, _tiff_axes, _to_dchw
from selfinv.data.image_info import ImageInfo, _info_from_array

__all__ = ["png_bytes", "read_png", "read_tiff", "tiff_bytes"]


# ---------------------------------------------------------------------- PNG / JPEG
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def read_png(path: Path) -> tuple[np.ndarray, ImageInfo]:
    """A PNG or JPEG file: (H, W) → (1, H, W), (H, W, C) → (C, H, W); 8- and 16-bit PNG."""
    import imageio.v3 as iio

    if path.suffix.lower() == ".png":  # Pillow decodes a PNG that lost its IEND chunk without complaint
        with open(path, "rb") as fh:
            if fh.read(8) != _PNG_START:
                raise _fail(path, "is not a PNG file (wrong signature); the file is corrupt or misnamed")
            fh.seek(max(0, path.stat().st_size - 12))
            if fh.read() != _PNG_END:
                raise _fail(path, "cannot read the image (no IEND chunk at the end); the file is truncated or corrupt")
    raw = _guard(path, "the image", lambda: np.asarray(iio.imread(path, plugin="pillow")))
    if raw.ndim == 2:
        raw = raw[None]
    elif raw.ndim == 3 and raw.shape[-1] <= 4:
        raw = np.moveaxis(raw, -1, 0)
    else:
        raise _fail(path, f"unexpected image shape {raw.shape} (animated or multi-frame images are not supported)")
    return raw, _info_from_array(raw, channel_axis="color" if raw.shape[0] in (3, 4) else None)


def png_bytes(path: Path, a: np.ndarray) -> bytes:
    """One 8- or 16-bit image (C, H, W) with 1, 3 or 4 channels (16-bit: grayscale only) as PNG."""
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


# ---------------------------------------------------------------------- TIFF
def _merge_repeated(a: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Fold repeated D (or C) letters into one axis each (several stack axes become one D)."""
    for letter in "DC":
        idx = [i for i, c in enumerate(axes) if c == letter]
        if len(idx) > 1:
            rest = [i for i in range(a.ndim) if i not in idx]
            a = np.transpose(a, idx + rest)
            a = a.reshape(-1, *a.shape[len(idx) :])
            axes = letter + "".join(axes[i] for i in rest)
    return a, axes


def _own_description(text: str | None) -> str | None:
    """The ImageDescription an author wrote; None for tifffile's JSON, ImageJ's and OME's own metadata."""
    text = (text or "").strip()
    if not text or text.startswith(("ImageJ=", "<?xml", "<OME")) or (text.startswith("{") and '"shape"' in text):
        return None
    return text


def _tiff_tags(tif, page, file_axes: str) -> dict[str, Any]:
    tags: dict[str, Any] = {"axes": file_axes}
    unit = page.resolutionunit
    res = page.resolution
    unit_name = getattr(unit, "name", str(unit)).lower()
    present = "XResolution" in page.tags  # absent: tifffile reports (1, 1) per inch, TIFF's default, not the file's
    if present and res and (unit_name != "none" or tuple(res) != (1.0, 1.0)):
        tags["resolution"], tags["resolution_unit"] = (float(res[0]), float(res[1])), unit_name
    descriptions = [page.description, getattr(page, "description1", "")]
    own = next((d for d in map(_own_description, descriptions) if d), None)
    if own is not None and not tif.is_imagej:
        tags["description"] = own
    if tif.is_imagej:  # written back as an ImageJ hyperstack (Fiji then sees T frames and Z slices as such)
        meta = tif.imagej_metadata or {}
        tags["imagej"] = {k: meta[k] for k in _IMAGEJ_KEPT if isinstance(meta.get(k), (int, float, str))}
    return tags


#: ImageJ metadata written back (the physical unit, voxel depth, frame interval and display range)
_IMAGEJ_KEPT = ("unit", "spacing", "finterval", "min", "max")


def read_tiff(path: Path, axes: str | None = None) -> tuple[np.ndarray, ImageInfo]:
    """A TIFF file, axes from its metadata (or ``axes``, over D, C, H, W), with its tags in ``info.tags``."""
    import tifffile

    def load():
        with tifffile.TiffFile(path) as tif:
            series = tif.series
            first = series[0]
            page = tif.pages[0]
            same = all(s.shape == first.shape and s.dtype == first.dtype and s.axes == first.axes for s in series)
            if len(series) > 1 and same:  # pages written one by one: one series each, stacked here
                arr, file_axes = np.stack([s.asarray() for s in series]), "Q" + first.axes
            else:
                arr, file_axes = first.asarray(), first.axes
            return arr, file_axes, page.bitspersample, _tiff_tags(tif, page, file_axes), page.photometric

    raw, file_axes, bits, tags, photometric = _guard(path, "the TIFF file", load)
    raw = np.asarray(raw)
    channel = None
    if "S" in file_axes and getattr(photometric, "name", "") == "RGB":
        channel = "color"
    elif "C" in file_axes or "S" in file_axes:
        channel = "channel"
    info = _info_from_array(raw, bits if raw.dtype.kind in "iu" else None, channel_axis=channel, tags=tags)
    if axes is None:
        raw, axes = _merge_repeated(raw, _tiff_axes(file_axes))
    return _to_dchw(path, raw, axes), info


def _same_layout(ours: str, theirs: str | None) -> bool:
    """Whether the file's axes letters name the layout we write (``TYX`` for our ``ZYX``)."""
    if not theirs or len(theirs) != len(ours):
        return False
    mapped = _tiff_axes(theirs)
    return mapped == _tiff_axes(ours) and len(set(mapped)) == len(mapped) and ("S" in theirs) == ("S" in ours)


def _in_their_order(a: np.ndarray, data: np.ndarray, axes: str, theirs: str | None) -> tuple[np.ndarray, str]:
    """``data`` (laid out as ``axes``) in the order of the source's axes letters ``theirs`` when they name the same
    axes in another order (``YXT``, ``CYX`` of one channel); else unchanged."""
    if not theirs or _same_layout(axes, theirs):
        return data, theirs if _same_layout(axes, theirs) else axes
    mapped = _tiff_axes(theirs)
    if len(set(mapped)) != len(mapped):
        return data, axes
    full = ("ZCYX" if a.ndim == 4 else "CYX", a)  # (D, C, H, W) as it is, a channel axis of size 1 kept
    for cand_axes, cand in ((axes, data), full):
        ours = _tiff_axes(cand_axes)
        if sorted(ours) == sorted(mapped) and cand.ndim == len(mapped):
            return np.transpose(cand, [ours.index(c) for c in mapped]), theirs
    return data, axes


def _imagej_order(axes: str) -> bool:
    """Whether ImageJ can hold these axes (letters of TZCYXS, in that order)."""
    pos = ["TZCYXS".find(c) for c in axes]
    return -1 not in pos and pos == sorted(pos) and axes.endswith(("YX", "YXS"))


def tiff_bytes(path: Path, a: np.ndarray, tags: dict[str, Any] | None = None) -> bytes:
    """A real array (C, H, W) or (D, C, H, W) as TIFF (RGB as interleaved samples, stacks as pages) with ``tags``."""
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
    data, axes = _in_their_order(a, data, axes, tags.get("axes"))
    if "S" not in axes:
        kwargs["photometric"] = "minisblack"
    imagej = (tags.get("imagej") is not None and a.dtype in (np.uint8, np.uint16, np.float32) and _imagej_order(axes)
              and ("S" not in axes or a.dtype == np.uint8))
    if imagej:
        kwargs["imagej"] = True
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
        lambda: tifffile.imwrite(buf, np.ascontiguousarray(data), metadata={"axes": axes, **(tags["imagej"] if imagej else {})},
                                 **kwargs),
        action="write",
    )
    return buf.getvalue()
