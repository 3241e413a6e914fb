r"""Read and write images, stacks and raw measurements with one axis convention and clear errors.

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
``.npy .npz``        numpy (``allow_pickle=False``). By dimension: HW, CHW, DCHW (override
                     with ``axes=``); ``.npz``: the only array, or ``key=``.
``.h5 .hdf5``        h5py. ``key=`` names the dataset; without it, the only dataset, or the
                     reconstruction of a fastMRI file (see :func:`read_fastmri`). Axes from a
                     dataset attribute ``axes`` if present, else as for ``.npy`` (fastMRI
                     arrays are stacks of slices: DHW / DCHW).
``.dcm .dicom .ima`` pydicom; RescaleSlope/RescaleIntercept applied (also the enhanced
                     multi-frame functional groups), so CT comes out in Hounsfield units.
                     Frames → D, samples per pixel → C.
``.cfl`` / ``.hdr``  BART: raw complex64 in Fortran order, dims in the ``.hdr``. BART dims 0-2
                     (read, phase 1, phase 2) give H, W (the first two that are > 1) and D (a
                     third spatial dim), dims 3-4 (coils, ESPIRiT maps) give C, dims ≥ 5 join D.
==================== ============================================================================

``axes=`` (a string over D, C, H, W such as ``"HWC"`` or ``"DHW"``) overrides the layout of the
array formats (TIFF, NPY/NPZ, HDF5).

Values are the file's values, converted to float: an 8-bit PNG gives 0..255, a CT DICOM Hounsfield
units. :class:`ImageInfo` (``read_image(path, return_info=True)``) records the stored dtype, the bit
depth and the data range, from which :class:`~selfinv.data.normalization.Normalization` maps the data
to [0, 1] and :func:`write_image` (``like=info``) writes results back in the same dtype.

Every failure is one ``ValueError`` whose message starts with the file name: a missing file, an
unknown extension, a corrupt or truncated file (the library's exception is chained), an empty array
or NaN/Inf values. Finiteness is checked here, at load time, and not again in training loops.

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
    >>> shutil.rmtree(folder)
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "list_images",
    "read_fastmri",
    "read_image",
    "write_image",
]

PathLike = str | os.PathLike


# ---------------------------------------------------------------------- ImageInfo
@dataclass(frozen=True)
class ImageInfo:
    """What a file stored, so that results can be written back in kind.

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
    """

    dtype: str
    bit_depth: int | None
    data_range: tuple[float, float]

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
        """A JSON-ready dict (to store beside a model)."""
        return {"dtype": self.dtype, "bit_depth": self.bit_depth, "data_range": list(self.data_range)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageInfo:
        """Inverse of :meth:`to_dict`."""
        lo, hi = d["data_range"]
        return cls(str(d["dtype"]), None if d.get("bit_depth") is None else int(d["bit_depth"]), (float(lo), float(hi)))


def _int_range(dtype: np.dtype, bits: int) -> tuple[float, float]:
    if dtype.kind == "u":
        return 0.0, float(2**bits - 1)
    return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def _info_from_array(raw: np.ndarray, bits: int | None = None) -> ImageInfo:
    """ImageInfo of a raw array; floats get their observed range."""
    if raw.dtype.kind in "iub":
        return ImageInfo.for_dtype(raw.dtype, bits if raw.dtype.kind != "b" else None)
    if raw.dtype.kind == "c":
        return ImageInfo(raw.dtype.name, None, (0.0, float(np.abs(raw).max())))
    return ImageInfo(raw.dtype.name, None, (float(raw.min()), float(raw.max())))


# ---------------------------------------------------------------------- errors and helpers
def _fail(path: Path, message: str) -> ValueError:
    return ValueError(f"{path.name}: {message}")


def _short(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _check_values(path: Path, a: np.ndarray) -> None:
    if a.size == 0:
        raise _fail(path, f"the array is empty (shape {a.shape})")
    if a.dtype.kind in "fc":
        finite = np.isfinite(a)
        if not finite.all():
            n_nan = int(np.isnan(a).sum())
            n_inf = int((~finite).sum()) - n_nan
            raise _fail(path, f"contains {n_nan} NaN and {n_inf} Inf values (of {a.size}); fix or mask them before training")


def _as_float(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "c":
        return np.ascontiguousarray(a, dtype=np.complex64)
    return np.ascontiguousarray(a, dtype=np.float32)


def _guard(path: Path, what: str, fn: Callable[[], Any], action: str = "read") -> Any:
    """Run a library call; any exception becomes one ValueError naming the file (our own pass through)."""
    hint = "; the file may be corrupt or truncated" if action == "read" else ""
    try:
        return fn()
    except ValueError as e:
        if str(e).startswith(f"{path.name}:"):
            raise
        raise _fail(path, f"cannot {action} {what} ({_short(e)}){hint}") from e
    except Exception as e:  # the libraries raise OSError, SyntaxError, KeyError, struct.error, ...
        raise _fail(path, f"cannot {action} {what} ({_short(e)}){hint}") from e


_AXES = "DCHW"


def _default_axes(ndim: int) -> str:
    return {2: "HW", 3: "CHW", 4: "DCHW"}.get(ndim, "")


def _to_dchw(path: Path, a: np.ndarray, axes: str) -> np.ndarray:
    """Rearrange ``a`` (labelled by ``axes`` over D, C, H, W) to (C, H, W) or (D, C, H, W)."""
    axes = axes.upper()
    if len(axes) != a.ndim:
        raise _fail(path, f"axes {axes!r} do not match the array's {a.ndim} dimensions (shape {a.shape})")
    if len(set(axes)) != len(axes) or not set(axes) <= set(_AXES) or not {"H", "W"} <= set(axes):
        raise _fail(path, f"axes must be distinct letters among D, C, H, W including H and W, got {axes!r}")
    order = [axes.index(c) for c in _AXES if c in axes]
    a = np.transpose(a, order)
    present = [c for c in _AXES if c in axes]
    if "C" not in present:
        a = a[:, None] if "D" in present else a[None]
    return a


# ---------------------------------------------------------------------- formats
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _read_png(path: Path) -> tuple[np.ndarray, ImageInfo]:
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
    return raw, _info_from_array(raw)


def _tiff_axes(axes: str) -> str:
    out = []
    for c in axes.upper():
        out.append({"Y": "H", "X": "W", "S": "C", "C": "C"}.get(c, "D"))
    return "".join(out)


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


def _read_tiff(path: Path, axes: str | None) -> tuple[np.ndarray, ImageInfo]:
    import tifffile

    def load():
        with tifffile.TiffFile(path) as tif:
            series = tif.series
            first = series[0]
            same = all(s.shape == first.shape and s.dtype == first.dtype and s.axes == first.axes for s in series)
            if len(series) > 1 and same:  # pages written one by one: one series each, stacked here
                return np.stack([s.asarray() for s in series]), "Q" + first.axes, tif.pages[0].bitspersample
            return first.asarray(), first.axes, tif.pages[0].bitspersample

    raw, file_axes, bits = _guard(path, "the TIFF file", load)
    raw = np.asarray(raw)
    info = _info_from_array(raw, bits if raw.dtype.kind in "iu" else None)
    if axes is None:
        raw, axes = _merge_repeated(raw, _tiff_axes(file_axes))
    return _to_dchw(path, raw, axes), info


def _read_npy(path: Path, key: str | None, axes: str | None) -> tuple[np.ndarray, ImageInfo]:
    if path.suffix.lower() == ".npz":

        def load():
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if key is None and len(names) != 1:
                    raise _fail(path, f"holds {len(names)} arrays {names}; pass key= to choose one")
                k = key if key is not None else names[0]
                if k not in names:
                    raise _fail(path, f"has no array {k!r}; it holds {names}")
                return z[k]

        raw = _guard(path, "the NPZ file", load)
    else:
        raw = _guard(path, "the NPY file", lambda: np.load(path, allow_pickle=False))
    raw = np.asarray(raw)
    if raw.dtype.kind not in "iubfc":
        raise _fail(path, f"unsupported dtype {raw.dtype}")
    _check_values(path, raw)
    return _to_dchw(path, raw, axes or _default_axes(raw.ndim)), _info_from_array(raw)


_FASTMRI_RECON = ("reconstruction_esc", "reconstruction_rss")


def _h5_open(path: Path):
    import h5py

    return _guard(path, "the HDF5 file", lambda: h5py.File(path, "r"))


def _h5_datasets(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _read_h5(path: Path, key: str | None, axes: str | None) -> tuple[np.ndarray, ImageInfo]:
    with _h5_open(path) as f:
        names = _h5_datasets(f)
        fastmri = "kspace" in names
        if key is None:
            recon = [n for n in _FASTMRI_RECON if n in names]
            if fastmri:
                if not recon:
                    raise _fail(path, "is a fastMRI file without a reconstruction; use read_fastmri() or key='kspace'")
                key = recon[0]
            elif len(names) == 1:
                key = names[0]
            else:
                raise _fail(path, f"holds {len(names)} datasets {names}; pass key= to choose one")
        if key not in names:
            raise _fail(path, f"has no dataset {key!r}; it holds {names}")
        raw = np.asarray(_guard(path, f"dataset {key!r}", lambda: f[key][()]))
        file_axes = f[key].attrs.get("axes")
    if raw.dtype.kind not in "iubfc":
        raise _fail(path, f"dataset {key!r} has unsupported dtype {raw.dtype}")
    _check_values(path, raw)
    if axes is None:
        if isinstance(file_axes, bytes):
            file_axes = file_axes.decode()
        axes = file_axes if isinstance(file_axes, str) else None
    if axes is None:
        axes = {3: "DHW", 4: "DCHW"}.get(raw.ndim) if fastmri else None
    return _to_dchw(path, raw, axes or _default_axes(raw.ndim)), _info_from_array(raw)


def _dicom_rescale(ds, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (slope, intercept): top-level tags, else enhanced multi-frame functional groups."""
    slope = np.ones(n_frames)
    intercept = np.zeros(n_frames)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        slope[:] = float(ds.get("RescaleSlope", 1.0))
        intercept[:] = float(ds.get("RescaleIntercept", 0.0))
        return slope, intercept
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "PixelValueTransformationSequence" in shared[0]:
        t = shared[0].PixelValueTransformationSequence[0]
        slope[:] = float(t.get("RescaleSlope", 1.0))
        intercept[:] = float(t.get("RescaleIntercept", 0.0))
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and len(per_frame) == n_frames:
        for i, group in enumerate(per_frame):
            if "PixelValueTransformationSequence" in group:
                t = group.PixelValueTransformationSequence[0]
                slope[i] = float(t.get("RescaleSlope", 1.0))
                intercept[i] = float(t.get("RescaleIntercept", 0.0))
    return slope, intercept


def _read_dicom(path: Path) -> tuple[np.ndarray, ImageInfo]:
    import pydicom

    ds = _guard(path, "the DICOM file", lambda: pydicom.dcmread(path))
    if "PixelData" not in ds:
        raise _fail(path, "is a DICOM file without pixel data")
    raw = np.asarray(_guard(path, "the DICOM pixel data", lambda: ds.pixel_array))
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    # pixel_array: (H, W), (F, H, W), (H, W, S) or (F, H, W, S)
    if samples > 1:
        raw = np.moveaxis(raw, -1, -3)
    else:
        raw = raw[..., None, :, :]
    if n_frames == 1:
        raw = raw[None]
    bits = int(ds.get("BitsStored", 8 * raw.dtype.itemsize))
    lo, hi = _int_range(raw.dtype, bits) if raw.dtype.kind in "iu" else (float(raw.min()), float(raw.max()))
    slope, intercept = _dicom_rescale(ds, raw.shape[0])
    values = raw.astype(np.float64) * slope[:, None, None, None] + intercept[:, None, None, None]
    ends = np.concatenate([lo * slope + intercept, hi * slope + intercept])
    data_range = (float(ends.min()), float(ends.max()))
    dtype = "float32"
    integral = np.all(slope == np.round(slope)) and np.all(intercept == np.round(intercept))
    if raw.dtype.kind in "iu" and integral:  # the smallest of these integer types that holds the values
        vmin, vmax = float(values.min()), float(values.max())
        for cand in (raw.dtype, np.dtype(np.int16), np.dtype(np.int32)):
            info = np.iinfo(cand)
            if info.min <= vmin and vmax <= info.max:
                dtype = cand.name
                break
    out = values[0] if n_frames == 1 else values
    return out, ImageInfo(dtype, bits if raw.dtype.kind in "iu" else None, data_range)


def _read_cfl(path: Path) -> tuple[np.ndarray, ImageInfo]:
    base = path.with_suffix("")
    hdr, cfl = base.with_suffix(".hdr"), base.with_suffix(".cfl")
    for p in (hdr, cfl):
        if not p.is_file():
            raise _fail(p, "is missing (a BART array needs both the .hdr and the .cfl file)")

    def parse():
        lines = hdr.read_text().splitlines()
        i = [n for n, line in enumerate(lines) if line.strip().startswith("# Dimensions")][0]
        return [int(v) for v in lines[i + 1].split()]

    dims = _guard(hdr, "the BART header", parse)
    if not dims or any(d < 0 for d in dims):
        raise _fail(hdr, f"invalid BART dimensions {dims}")
    n = int(np.prod(dims))
    size = cfl.stat().st_size
    if size != 8 * n:
        raise _fail(cfl, f"has {size} bytes but the header's dimensions {dims} need {8 * n}; the file is truncated or does not match")
    flat = np.fromfile(cfl, dtype=np.complex64)
    dims = dims + [1] * max(0, 5 - len(dims))
    arr = flat.reshape(dims, order="F")
    spatial = [d for d in (0, 1, 2) if dims[d] > 1]
    pair = sorted((spatial + [d for d in (0, 1, 2) if d not in spatial])[:2])
    z = [d for d in (0, 1, 2) if d not in pair][0]
    stack_axes = list(range(len(dims) - 1, 4, -1)) + [z]  # dims >= 5, then the third spatial axis
    arr = np.transpose(arr, stack_axes + [4, 3] + pair)
    d_size = int(np.prod([dims[a] for a in stack_axes]))
    arr = arr.reshape(d_size, dims[3] * dims[4], dims[pair[0]], dims[pair[1]])
    if d_size == 1:
        arr = arr[0]
    _check_values(cfl, arr)
    return arr, _info_from_array(arr)


_READERS = {
    ".png": "png",
    ".jpg": "png",
    ".jpeg": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".npy": "npy",
    ".npz": "npy",
    ".h5": "h5",
    ".hdf5": "h5",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".ima": "dicom",
    ".cfl": "cfl",
    ".hdr": "cfl",
}

#: the file extensions :func:`read_image` reads
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(_READERS)


def _check_path(path: PathLike) -> tuple[Path, str]:
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise _fail(path, f"unknown extension {path.suffix!r}; supported: {', '.join(IMAGE_EXTENSIONS)}")
    if kind != "cfl" and not path.is_file():
        raise _fail(path, f"no such file ({path})")
    return path, kind


def read_image(
    path: PathLike,
    *,
    key: str | None = None,
    axes: str | None = None,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, ImageInfo]:
    """Read an image or a stack as float32/complex64 ``(C, H, W)`` or ``(D, C, H, W)`` (module docstring).

    Args:
        path: the file (``.cfl`` or ``.hdr`` for a BART pair).
        key: the array of an ``.npz`` or the dataset of an HDF5 file.
        axes: the layout of the stored array for TIFF/NPY/NPZ/HDF5, e.g. ``"HWC"``, ``"DHW"``.
        return_info: also return the file's :class:`ImageInfo`.

    Raises:
        ValueError: naming the file, for a missing file, an unknown extension, a corrupt or truncated
            file, an empty array or NaN/Inf values.
    """
    path, kind = _check_path(path)
    if axes is not None and kind not in ("tiff", "npy", "h5"):
        raise _fail(path, "axes= applies to TIFF, NPY/NPZ and HDF5 arrays only")
    if key is not None and kind not in ("npy", "h5"):
        raise _fail(path, "key= applies to NPZ and HDF5 files only")
    if kind == "png":
        raw, info = _read_png(path)
    elif kind == "tiff":
        raw, info = _read_tiff(path, axes)
    elif kind == "npy":
        raw, info = _read_npy(path, key, axes)
    elif kind == "h5":
        raw, info = _read_h5(path, key, axes)
    elif kind == "dicom":
        raw, info = _read_dicom(path)
    else:
        raw, info = _read_cfl(path)
    _check_values(path, raw)
    out = _as_float(raw)
    return (out, info) if return_info else out


def read_fastmri(path: PathLike) -> dict[str, Any]:
    """Read a fastMRI HDF5 file: k-space, the reconstruction if present, the mask and the attributes.

    fastMRI layout: dataset ``kspace`` of shape (slices, H, W) complex (single-coil) or
    (slices, coils, H, W) (multi-coil); optional ``reconstruction_esc`` (single-coil) or
    ``reconstruction_rss`` (slices, h, w) real, usually cropped to 320 × 320 and therefore smaller
    than k-space; optional ``mask`` (W,) on test/challenge files; file attributes such as
    ``acquisition``, ``max`` and ``norm``.

    Returns:
        ``{"kspace": (S, C, H, W) complex64, "reconstruction": (S, 1, h, w) float32 or None,
        "reconstruction_key": str or None, "mask": (W,) float32 or None, "attrs": dict}``.
    """
    path, kind = _check_path(path)
    if kind != "h5":
        raise _fail(path, "read_fastmri reads HDF5 files (.h5)")
    with _h5_open(path) as f:
        names = _h5_datasets(f)
        if "kspace" not in names:
            raise _fail(path, f"is not a fastMRI file: no 'kspace' dataset (it holds {names})")
        kspace = np.asarray(_guard(path, "dataset 'kspace'", lambda: f["kspace"][()]))
        recon_key = next((n for n in _FASTMRI_RECON if n in names), None)
        recon = np.asarray(_guard(path, recon_key, lambda: f[recon_key][()])) if recon_key else None
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


# ---------------------------------------------------------------------- writing
_WRITE = (".png", ".tif", ".tiff", ".npy")


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
    """Write ``array`` ((H, W), (C, H, W) or (D, C, H, W), numpy or torch) as PNG, TIFF or NPY.

    With ``like`` the values are converted to ``like.dtype``: integers are rounded and clipped to
    ``like.data_range`` (denormalise first, see :class:`~selfinv.data.normalization.Normalization`);
    without it the array's dtype is kept. PNG holds 8- or 16-bit integers (16-bit for grayscale
    only) and single images; TIFF holds any real dtype, RGB as interleaved samples and stacks as
    pages; NPY holds the array as it is, in the (C, H, W) / (D, C, H, W) convention. Everything
    written reads back with :func:`read_image` to the same values and shape.

    An existing file is never replaced unless ``overwrite=True`` (the file is opened in exclusive
    mode, so two writers cannot race). NaN/Inf values are refused.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _WRITE:
        raise _fail(path, f"cannot write {ext!r} files; write_image writes {', '.join(_WRITE)}")
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
    a = _convert(path, a, like)

    if ext == ".npy":
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        data = buf.getvalue()
    elif ext == ".png":
        data = _png_bytes(path, a)
    else:
        data = _tiff_bytes(path, a)
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


def _tiff_bytes(path: Path, a: np.ndarray) -> bytes:
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
    buf = io.BytesIO()
    _guard(
        path,
        "the TIFF file",
        lambda: tifffile.imwrite(buf, np.ascontiguousarray(data), metadata={"axes": axes}, **kwargs),
        action="write",
    )
    return buf.getvalue()
