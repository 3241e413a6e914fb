r"""DICOM in (values in the modality's units) and DICOM out (the source's header, a new series).

Reading (pydicom). The stored values :math:`s` become :math:`v = m\,s + b` with the RescaleSlope
:math:`m` and RescaleIntercept :math:`b` of the file (top-level tags, or per frame in the enhanced
multi-frame functional groups), so CT comes out in Hounsfield units. Frames → D, samples per pixel
→ C. :class:`~selfinv.data.image_info.ImageInfo` records ``source`` (the file), so results can be
written back like it.

Writing (:func:`write_dicom`, reached through ``write_image(path.dcm, array, like=info)``). The source
file's dataset is copied and changed only where the new pixels require it:

* stored values :math:`s = \mathrm{round}((v - b) / m)`, clipped to what BitsStored and
  PixelRepresentation can hold, in the source's BitsAllocated; BitsStored, HighBit and the rescale
  tags unchanged, so the file reads back to the given values (up to the rounding);
* new SOPInstanceUID (also the file meta's MediaStorageSOPInstanceUID) and SeriesInstanceUID
  (:func:`pydicom.uid.generate_uid`); SeriesDescription gets `` (reconstructed by selfinv)``
  appended; ImageType becomes ``DERIVED\SECONDARY\...``; DerivationDescription and
  SourceImageSequence name the source image;
* uncompressed little endian pixel data (a compressed or big-endian source is written as Explicit VR
  Little Endian); Smallest/LargestImagePixelValue, which the new pixels would contradict, removed.

Patient, study, geometry (PixelSpacing, ImagePositionPatient), windowing and private tags stay. The
array must have the source's frames, rows, columns and samples.

Example (a CT slice bundled with pydicom):
    >>> import pathlib, tempfile, pydicom
    >>> from pydicom.data import get_testdata_file
    >>> from selfinv.data import read_image, write_image
    >>> source = get_testdata_file("CT_small.dcm")
    >>> x, info = read_image(source, return_info=True)      # Hounsfield units
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "out.dcm"
    >>> write_image(out, x + 10, like=info)
    >>> float((read_image(out) - x).mean()), pydicom.dcmread(out).SeriesDescription
    (10.0, 'reconstructed by selfinv')
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from selfinv.data._io import _fail, _guard
from selfinv.data.image_info import ImageInfo, _int_range

__all__ = ["DICOM_NOTE", "read_dicom", "write_dicom"]

#: appended to the SeriesDescription of the files written
DICOM_NOTE = "reconstructed by selfinv"


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


def read_dicom(path: Path) -> tuple[np.ndarray, ImageInfo]:
    """Values (rescaled, float64) as (C, H, W) or (D, C, H, W) and the file's ImageInfo (with ``source``)."""
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
    info = ImageInfo(dtype, bits if raw.dtype.kind in "iu" else None, data_range,
                     channel_axis="color" if samples > 1 else None, source=str(path.resolve()))
    return out, info


# ---------------------------------------------------------------------- writing
def _stored(path: Path, ds, a: np.ndarray) -> np.ndarray:
    """Values (F, S, H, W) → stored integers (F, H, W[, S]) in the source's BitsAllocated/Stored."""
    allocated = int(ds.get("BitsAllocated", 16))
    bits = int(ds.get("BitsStored", allocated))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    if allocated not in (8, 16, 32):
        raise _fail(path, f"cannot write DICOM pixel data of {allocated} bits allocated (8, 16 or 32)")
    dtype = np.dtype(f"{'i' if signed else 'u'}{allocated // 8}").newbyteorder("<")
    slope, intercept = _dicom_rescale(ds, a.shape[0])
    s = (a.astype(np.float64) - intercept[:, None, None, None]) / slope[:, None, None, None]
    lo, hi = _int_range(dtype, bits)
    s = np.clip(np.rint(s), lo, hi).astype(dtype)
    return np.moveaxis(s, 1, -1) if s.shape[1] > 1 else s[:, 0]


def _shape_of(ds) -> tuple[int, int, int, int]:
    return (int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("SamplesPerPixel", 1) or 1), int(ds.Rows), int(ds.Columns))


def write_dicom(path: Path, a: np.ndarray, like: ImageInfo | None) -> bytes:
    """The bytes of a DICOM file holding ``a`` ((C, H, W) or (D, C, H, W) values) with ``like.source``'s header."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if like is None or like.source is None:
        raise _fail(path, "DICOM is written like a source DICOM file: pass like= the ImageInfo of a DICOM read "
                    "with read_image (its header is copied); or write TIFF/NPY")
    source = Path(like.source)
    if not source.is_file():
        raise _fail(path, f"the source DICOM {source} (whose header is copied) no longer exists")
    if a.dtype.kind == "c":
        raise _fail(path, "cannot write complex data as DICOM; take .real or abs() first")
    ds = _guard(source, "the source DICOM file", lambda: pydicom.dcmread(source, stop_before_pixels=True))
    a4 = a if a.ndim == 4 else a[None]
    want = _shape_of(ds)
    if tuple(a4.shape) != want:
        expected = f"({want[0]}, {want[1]}, {want[2]}, {want[3]})" if want[0] > 1 else f"({want[1]}, {want[2]}, {want[3]})"
        raise _fail(path, f"the array's shape {a.shape} does not match its source DICOM {source.name}, {expected}; "
                    "DICOM is written with the source's frames, samples, rows and columns only")
    stored = _stored(path, ds, a4)
    if want[0] == 1:
        stored = stored[0]
    old_uid = ds.get("SOPInstanceUID")
    old_class = ds.get("SOPClassUID")
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    desc = str(ds.get("SeriesDescription", "") or "").strip()
    room = 64 - len(DICOM_NOTE) - 3  # LO: at most 64 characters; the original is shortened, the note kept
    ds.SeriesDescription = f"{desc[:room].rstrip()} ({DICOM_NOTE})" if desc else DICOM_NOTE
    kind = list(ds.get("ImageType", [])) or ["DERIVED", "SECONDARY"]
    kind[0] = "DERIVED"
    if len(kind) > 1:
        kind[1] = "SECONDARY"
    ds.ImageType = kind
    ds.DerivationDescription = f"{DICOM_NOTE} from {source.name}"[:1024]
    if old_uid and old_class:
        ref = pydicom.Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = old_class, old_uid
        ds.SourceImageSequence = Sequence([ref])
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
                    "LargestPixelValueInSeries", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            del ds[keyword]
    if want[1] > 1:
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
    data = stored.tobytes()
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB" if stored.dtype.itemsize == 1 else "OW"
    ds["PixelData"].is_undefined_length = False

    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    syntax = meta.get("TransferSyntaxUID")
    if syntax is None or syntax.is_compressed or not syntax.is_little_endian:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", meta.get("MediaStorageSOPClassUID"))
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    old = int(pydicom.__version__.split(".")[0]) < 3
    if old:  # pydicom 2 encodes by these flags; pydicom 3 by the transfer syntax
        ds.is_little_endian = True
        ds.is_implicit_VR = meta.TransferSyntaxUID.is_implicit_VR
    buf = io.BytesIO()
    ds.preamble = ds.preamble or b"\0" * 128
    kwargs = {"write_like_original": False} if old else {"enforce_file_format": True}
    _guard(path, "the DICOM file", lambda: pydicom.dcmwrite(buf, ds, **kwargs), action="write")
    return buf.getvalue()
