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
from pathlib import Path
from typing import Any

import numpy as np

from selfinv.data._io import (
    PathLike,
    _as_float,
    _check_values,
    _default_axes,
    _fail,
    _guard,
    _tiff_axes,
    _to_dchw,
)
from selfinv.data.image_info import ImageInfo, _info_from_array
from selfinv.data.writers import write_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "list_images",
    "read_fastmri",
    "read_image",
    "split_key",
    "write_image",
]


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
    return raw, _info_from_array(raw, channel_axis="color" if raw.shape[0] in (3, 4) else None)


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
    return tags


def _read_tiff(path: Path, axes: str | None) -> tuple[np.ndarray, ImageInfo]:
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
    coil = fastmri and key == "kspace" and raw.ndim == 4 and axes is None
    if axes is None:
        axes = {3: "DHW", 4: "DCHW"}.get(raw.ndim) if fastmri else None
    info = _info_from_array(raw, channel_axis="coil" if coil else None)
    return _to_dchw(path, raw, axes or _default_axes(raw.ndim)), info


def _read_mat(path: Path, key: str | None, axes: str | None) -> tuple[np.ndarray, ImageInfo]:
    from selfinv.data.matlab import read_mat

    raw, key = read_mat(path, key)
    if raw.dtype.kind not in "iubfc":
        raise _fail(path, f"variable {key!r} has unsupported dtype {raw.dtype}")
    _check_values(path, raw)
    if axes is None:
        axes = {2: "HW", 3: "HWC", 4: "HWCD"}.get(raw.ndim, "")
    return _to_dchw(path, raw, axes), _info_from_array(raw)


def _read_dicom(path: Path) -> tuple[np.ndarray, ImageInfo]:
    from selfinv.data.dicom_io import read_dicom

    return read_dicom(path)


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
    return arr, _info_from_array(arr, channel_axis="coil")  # BART's C is receive coils (× ESPIRiT maps)


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
    ".mat": "mat",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".ima": "dicom",
    ".cfl": "cfl",
    ".hdr": "cfl",
}

#: the file extensions :func:`read_image` reads
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(_READERS)

_KEYED = ("npy", "h5", "mat")
_AXES_FORMATS = ("tiff", "npy", "h5", "mat")


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


def _check_path(path: PathLike) -> tuple[Path, str]:
    path = Path(path)
    if path.is_dir():
        raise _fail(path, "is a folder, not a file (give the files inside it, or a folder where a folder is expected)")
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
    path, kind = _check_path(path)
    if axes is not None and kind not in _AXES_FORMATS:
        raise _fail(path, "axes= applies to TIFF, NPY/NPZ, HDF5 and MAT arrays only")
    if key is not None and kind not in _KEYED:
        raise _fail(path, "key= applies to NPZ, HDF5 and MAT files only")
    if kind == "png":
        raw, info = _read_png(path)
    elif kind == "tiff":
        raw, info = _read_tiff(path, axes)
    elif kind == "npy":
        raw, info = _read_npy(path, key, axes)
    elif kind == "h5":
        raw, info = _read_h5(path, key, axes)
    elif kind == "mat":
        raw, info = _read_mat(path, key, axes)
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
