"""DICOM written back as DICOM: the source's header, a new series, values in the input's units, stored range kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from selfinv.data import ImageInfo, read_image, write_image
from tests.data.test_readers import _dicom, ramp

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "P-0042", "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1",
           "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.2", "SeriesDescription": "low dose", "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
           "PixelSpacing": [0.7, 0.7], "WindowCenter": 40, "WindowWidth": 400}


@pytest.fixture
def ct(tmp_path):
    stored = ramp(8, 9, dtype=np.uint16, top=4095)
    _dicom(tmp_path / "ct.dcm", stored, slope=2.0, intercept=-1024.0, bits=12, **PATIENT)
    return tmp_path / "ct.dcm", stored


def test_round_trip_keeps_values_header_and_makes_a_new_series(ct, tmp_path):
    src, stored = ct
    x, info = read_image(src, return_info=True)
    assert info.source == str(src.resolve()) and info.channel_axis is None
    write_image(tmp_path / "out.dcm", x, like=info)
    y, out_info = read_image(tmp_path / "out.dcm", return_info=True)
    assert np.array_equal(y, x) and out_info.dtype == info.dtype and out_info.data_range == info.data_range
    a, b = pydicom.dcmread(src), pydicom.dcmread(tmp_path / "out.dcm")
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "PixelSpacing", "WindowCenter", "Modality",
                    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept"):
        assert b.get(keyword) == a.get(keyword), keyword
    assert b.SOPInstanceUID != a.SOPInstanceUID and b.file_meta.MediaStorageSOPInstanceUID == b.SOPInstanceUID
    assert b.SeriesInstanceUID != a.SeriesInstanceUID
    assert b.SeriesDescription == "low dose (reconstructed by selfinv)"
    assert list(b.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert np.array_equal(b.pixel_array, stored)  # the same stored values: the rescale was inverted


def test_new_values_are_stored_in_the_input_units_rounded_and_clipped(ct, tmp_path):
    src, _ = ct
    x, info = read_image(src, return_info=True)
    new = x + 7.3  # Hounsfield units; the stored step is the slope, 2 HU
    new[0, 0, 0] = -5000.0  # below what 12 unsigned bits can hold after the rescale: clipped to -1024
    new[0, 0, 1] = 1e6  # above: clipped to 4095 * 2 - 1024
    write_image(tmp_path / "new.dcm", new, like=info)
    y = read_image(tmp_path / "new.dcm")
    expected = np.clip(new, -1024.0, 4095 * 2 - 1024.0)
    assert np.abs(y - expected).max() <= 1.0  # half the slope
    assert y[0, 0, 0] == -1024.0 and y[0, 0, 1] == 4095 * 2 - 1024
    stored = pydicom.dcmread(tmp_path / "new.dcm").pixel_array
    assert stored.min() >= 0 and stored.max() <= 4095  # within BitsStored


def test_multiframe_and_refusals(tmp_path):
    frames = np.stack([ramp(8, 9, dtype=np.uint16, top=4095), ramp(8, 9, dtype=np.uint16, top=1000)])
    _dicom(tmp_path / "m.dcm", frames, slope=1.0, intercept=0.0, frames=2)
    x, info = read_image(tmp_path / "m.dcm", return_info=True)
    write_image(tmp_path / "m_out.dcm", x[:, :, ::-1] * 0.5, like=info)
    y = read_image(tmp_path / "m_out.dcm")
    assert y.shape == (2, 1, 8, 9) and np.abs(y - x[:, :, ::-1] * 0.5).max() <= 0.5
    assert pydicom.dcmread(tmp_path / "m_out.dcm").NumberOfFrames == 2
    with pytest.raises(ValueError, match=r"w.dcm: the array's shape \(1, 1, 8, 9\) does not match its source DICOM m.dcm"):
        write_image(tmp_path / "w.dcm", x[:1], like=info)
    with pytest.raises(ValueError, match="p.dcm: DICOM is written like a source DICOM file"):
        write_image(tmp_path / "p.dcm", x, like=ImageInfo.for_dtype("uint16"))
    with pytest.raises(ValueError, match="n.dcm: DICOM is written like a source"):
        write_image(tmp_path / "n.dcm", x)
    with pytest.raises(ValueError, match="m_out.dcm: already exists"):  # never replaced
        write_image(tmp_path / "m_out.dcm", x, like=info)
    gone = ImageInfo(info.dtype, info.bit_depth, info.data_range, source=str(tmp_path / "gone.dcm"))
    with pytest.raises(ValueError, match="g.dcm: the source DICOM .*gone.dcm .* no longer exists"):
        write_image(tmp_path / "g.dcm", x, like=gone)
    assert ImageInfo.from_dict(info.to_dict()) == info  # the source survives JSON


# ---------------------------------------------------------------------- the real data (SELFINV_DATA)
DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")


@real
@pytest.mark.parametrize("name", ["693_UNCI.dcm", "CT_small.dcm", "eCT_Supplemental.dcm", "explicit_VR-UN.dcm"])
def test_real_ct_written_back_like_its_source(tmp_path, name):
    src = Path(DATA) / "ct_dicom_slices" / name
    x, info = read_image(src, return_info=True)
    smoothed = x.copy()
    smoothed[..., 1:-1, :] = (x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]) / 3  # "a reconstruction", in HU
    write_image(tmp_path / "out.dcm", smoothed, like=info)
    y, out_info = read_image(tmp_path / "out.dcm", return_info=True)
    a, b = pydicom.dcmread(src), pydicom.dcmread(tmp_path / "out.dcm")
    slope = float(a.get("RescaleSlope", 1.0))
    assert y.shape == x.shape and np.abs(y - smoothed).max() <= slope / 2 + 1e-3  # up to the integer rounding
    assert out_info.dtype == info.dtype and out_info.bit_depth == info.bit_depth
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "Rows", "Columns", "PixelSpacing", "BitsStored",
                    "PixelRepresentation", "RescaleIntercept"):
        assert b.get(keyword) == a.get(keyword), keyword
    assert b.SeriesInstanceUID != a.SeriesInstanceUID and b.SOPInstanceUID != a.SOPInstanceUID
    assert "reconstructed by selfinv" in b.SeriesDescription and b.ImageType[0] == "DERIVED"
    assert not b.file_meta.TransferSyntaxUID.is_compressed  # a JPEG 2000 source is written uncompressed
