"""What a file stored, so that results can be written back in kind (:class:`ImageInfo`).

:func:`~selfinv.data.readers.read_image` returns values as float32/complex64 in the (C, H, W) /
(D, C, H, W) layout; :class:`ImageInfo` keeps what that conversion forgets:

* the stored type and its range (``dtype``, ``bit_depth``, ``data_range``), from which
  :class:`~selfinv.data.normalization.Normalization` maps the data to [0, 1] and
  :func:`~selfinv.data.writers.write_image` writes results back in the same dtype;
* what the channel axis C means (``channel_axis``): ``"color"`` (RGB(A) samples), ``"coil"`` (the
  receive coils of BART k-space or of a fastMRI multi-coil ``kspace``), ``"channel"`` (a TIFF C axis),
  ``None`` (one channel, or a generic array whose C nobody named);
* format tags worth writing back (``tags``), for TIFF: ``resolution`` (x, y) pixels per unit,
  ``resolution_unit`` (``"inch"``, ``"centimeter"``, ...), ``description`` (the ImageDescription
  the file's author wrote, not tifffile's or ImageJ's own metadata), ``axes`` (the file's axes
  letters, e.g. ``"ZYX"``, ``"TYX"``, ``"YXS"``, or the ``data.axes`` it was read with; written back in
  that order) and, for ImageJ files, ``imagej`` (unit, spacing, frame interval, display range: written
  back as an ImageJ hyperstack);
* the file it came from (``source``), for DICOM: a writer copies that file's header.

``to_dict``/``from_dict`` give a JSON-ready dict; fields at their defaults are left out of it and
out of the repr, so dicts written before these fields existed still load.

Example:
    >>> info = ImageInfo.for_dtype("uint8")
    >>> info
    ImageInfo(dtype='uint8', bit_depth=8, data_range=(0.0, 255.0))
    >>> tiff = ImageInfo("uint16", 16, (0.0, 65535.0), tags={"resolution": [2.5, 2.5], "resolution_unit": "centimeter"})
    >>> tiff.tags["resolution"], ImageInfo.from_dict(tiff.to_dict()) == tiff
    ((2.5, 2.5), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CHANNEL_AXES", "ImageInfo"]

#: the meanings of the channel axis C that readers record
CHANNEL_AXES = ("color", "coil", "channel")


@dataclass(frozen=True, repr=False)
class ImageInfo:
    """What a file stored, so that results can be written back in kind (module docstring).

    Attributes:
        dtype: numpy dtype name of the stored values (``"uint8"``, ``"uint16"``, ``"int16"``,
            ``"float32"``, ``"complex64"``...). For DICOM, the dtype that holds the rescaled values:
            the smallest of (stored type, int16, int32) that holds them when slope and intercept are
            integers, else ``"float32"``.
        bit_depth: bits per integer sample (8, 16; DICOM BitsStored, e.g. 12), ``None`` for floats.
        data_range: ``(low, high)``: for integer samples, the range the bit depth can represent
            (after the DICOM rescale: a 12-bit MR gives (0, 4095); CT gives a wide Hounsfield range,
            so choose a window such as ``Normalization.from_range(-1024, 3071)`` yourself); for
            floats, the observed (min, max); for complex data, (0, max |z|).
        channel_axis: what C is: ``"color"``, ``"coil"``, ``"channel"`` or ``None`` (unnamed).
        tags: format tags to write back (TIFF: ``resolution``, ``resolution_unit``,
            ``description``, ``axes``), or ``None``. Read-only by convention; not part of the hash.
        source: the file read, when a writer copies its header (DICOM), else ``None``.
    """

    dtype: str
    bit_depth: int | None
    data_range: tuple[float, float]
    channel_axis: str | None = None
    tags: dict[str, Any] | None = field(default=None, hash=False)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.channel_axis is not None and self.channel_axis not in CHANNEL_AXES:
            raise ValueError(f"ImageInfo: channel_axis must be one of {CHANNEL_AXES} or None, got {self.channel_axis!r}")
        if self.tags is not None:
            tags = dict(self.tags)
            if tags.get("resolution") is not None:
                x, y = tags["resolution"]
                tags["resolution"] = (float(x), float(y))
            object.__setattr__(self, "tags", tags or None)

    def __repr__(self) -> str:
        parts = [f"dtype={self.dtype!r}", f"bit_depth={self.bit_depth!r}", f"data_range={self.data_range!r}"]
        for name in ("channel_axis", "tags", "source"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"ImageInfo({', '.join(parts)})"

    @classmethod
    def for_dtype(cls, dtype: str | np.dtype, bit_depth: int | None = None) -> ImageInfo:
        """The info of an empty ``dtype`` container, e.g. ``ImageInfo.for_dtype("uint8")`` to write 8-bit files.

        Example:
            >>> ImageInfo.for_dtype("uint16", bit_depth=12)
            ImageInfo(dtype='uint16', bit_depth=12, data_range=(0.0, 4095.0))
        """
        dt = np.dtype(dtype)
        if dt.kind in "iu":
            bits = int(bit_depth) if bit_depth is not None else 8 * dt.itemsize
            return cls(dt.name, bits, _int_range(dt, bits))
        if dt.kind == "b":
            return cls("uint8", 1, (0.0, 1.0))
        if dt.kind in "fc":
            return cls(dt.name, None, (0.0, 1.0))
        raise ValueError(f"ImageInfo: unsupported dtype {dt}")

    @property
    def is_integer(self) -> bool:
        """Whether the values are written back as integers."""
        return np.dtype(self.dtype).kind in "iu"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (to store beside a model); optional fields only when set."""
        d: dict[str, Any] = {"dtype": self.dtype, "bit_depth": self.bit_depth, "data_range": list(self.data_range)}
        if self.channel_axis is not None:
            d["channel_axis"] = self.channel_axis
        if self.tags is not None:
            d["tags"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.tags.items()}
        if self.source is not None:
            d["source"] = self.source
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageInfo:
        """Inverse of :meth:`to_dict` (dicts without the optional fields load too)."""
        lo, hi = d["data_range"]
        return cls(
            str(d["dtype"]),
            None if d.get("bit_depth") is None else int(d["bit_depth"]),
            (float(lo), float(hi)),
            channel_axis=d.get("channel_axis"),
            tags=dict(d["tags"]) if d.get("tags") else None,
            source=None if d.get("source") is None else str(d["source"]),
        )


def _int_range(dtype: np.dtype, bits: int) -> tuple[float, float]:
    if dtype.kind == "u":
        return 0.0, float(2**bits - 1)
    return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def _info_from_array(raw: np.ndarray, bits: int | None = None, **extra: Any) -> ImageInfo:
    """ImageInfo of a raw array; floats get their observed range. ``extra``: channel_axis, tags, source."""
    if raw.dtype.kind in "iub":
        base = ImageInfo.for_dtype(raw.dtype, bits if raw.dtype.kind != "b" else None)
        return ImageInfo(base.dtype, base.bit_depth, base.data_range, **extra)
    if raw.dtype.kind == "c":
        return ImageInfo(raw.dtype.name, None, (0.0, float(np.abs(raw).max())), **extra)
    return ImageInfo(raw.dtype.name, None, (float(raw.min()), float(raw.max())), **extra)
