"""Microscopy files as users have them (selfinv.data.stacks): the axes string checked against every file, frames as
Noise2Noise pairs (from a second folder or from a T stack), saturated pixels reported, outputs written back in the
input's dtype and axes (ImageJ hyperstacks too), and the real W2S/FMD/PN2V files (SELFINV_DATA)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from selfinv.data import ImageInfo, read_image, write_image
from selfinv.data.sources import load_measurements
from selfinv.data.stacks import dchw_axes, parse_axes, read_with_axes, saturated_pixels

DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")


def _frames(shape, seed=0, dtype=np.uint16, high=1000):
    return np.random.default_rng(seed).integers(100, high, size=shape).astype(dtype)


# ---------------------------------------------------------------------- axes
def test_axes_strings_are_checked_and_mapped():
    assert parse_axes("tyx") == "TYX" and dchw_axes("YXT") == "HWD" and dchw_axes("CYX") == "CHW"
    for bad in ("XX", "TZYX", "YXQ", "CSYX", "TY", ""):
        with pytest.raises(ValueError, match="expected distinct letters"):
            parse_axes(bad)


def test_a_stack_whose_axes_do_not_match_is_one_line_naming_file_shape_and_axes(tmp_path):
    tifffile.imwrite(tmp_path / "img.tif", _frames((31, 61, 57)))  # no axes metadata: tifffile says QYX
    with pytest.raises(ValueError) as e:
        read_with_axes(tmp_path / "img.tif", "YX")
    assert str(e.value) == "img.tif has shape (31, 61, 57) but data.axes is 'YX'"
    write_image(tmp_path / "rgb.png", _frames((3, 8, 9), dtype=np.uint8, high=255))
    with pytest.raises(ValueError, match=r"^rgb.png has shape \(8, 9, 3\) but data.axes is 'TYX'$"):
        read_with_axes(tmp_path / "rgb.png", "TYX")
    np.save(tmp_path / "a.npy", np.zeros((4, 5, 6), np.float32))
    with pytest.raises(ValueError, match="no_such.npy"):
        load_measurements(tmp_path / "no_such.npy", axes="TYX")
    with pytest.raises(ValueError, match=r"a.npy has shape \(4, 5, 6\) but data.axes is 'TCYX'"):
        load_measurements(tmp_path / "a.npy", axes="TCYX")


def test_axes_in_any_order_read_into_dchw_and_are_kept_for_writing(tmp_path):
    frames = _frames((4, 6, 5))  # T, Y, X
    tifffile.imwrite(tmp_path / "yxt.tif", np.moveaxis(frames, 0, -1))  # stored frames last, no metadata
    x, info = read_with_axes(tmp_path / "yxt.tif", "YXT")
    assert x.shape == (4, 1, 6, 5) and info.tags["axes"] == "YXT"
    np.testing.assert_array_equal(x[:, 0], frames)
    write_image(tmp_path / "out.tif", x + 1, like=info)
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        assert t.series[0].axes == "YXT" and t.series[0].dtype == np.uint16
        np.testing.assert_array_equal(t.series[0].asarray(), np.moveaxis(frames, 0, -1) + 1)
    ds = load_measurements(tmp_path / "yxt.tif", axes="YXT", normalization="none")
    assert len(ds) == 4 and ds.names[1] == "yxt.tif[1]"  # T frames: separate measurements
    ds = load_measurements(tmp_path / "yxt.tif", axes="YXT", normalization="none", frame_pairs=True)
    np.testing.assert_array_equal(ds.y2[1, 0].numpy(), frames[3])  # frame 2k with 2k + 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("axes", ["YX", "TYX", "ZYX", "CYX"])
def test_imagej_files_round_trip_in_their_dtype_and_axes(tmp_path, dtype, axes):
    shape = {"YX": (6, 7), "TYX": (3, 6, 7), "ZYX": (3, 6, 7), "CYX": (2, 6, 7)}[axes]
    a = _frames(shape, dtype=dtype, high=200)
    tifffile.imwrite(tmp_path / "in.tif", a, imagej=True, metadata={"axes": axes, "unit": "um", "spacing": 0.5})
    x, info = read_with_axes(tmp_path / "in.tif", axes)
    assert x.shape == {"YX": (1, 6, 7), "CYX": (2, 6, 7)}.get(axes, (3, 1, 6, 7))
    write_image(tmp_path / "out.tif", x, like=info)
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        assert t.is_imagej and t.series[0].axes == axes and t.series[0].dtype == dtype
        assert t.imagej_metadata["unit"] == "um" and t.imagej_metadata.get("spacing", 0.5) == 0.5
        np.testing.assert_array_equal(t.series[0].asarray(), a)


def test_writing_an_integer_file_counts_the_values_clipped_to_its_range(tmp_path):
    info = ImageInfo.for_dtype("uint16")
    with pytest.warns(UserWarning, match=r"o.tif: 2 of 4 values .* outside the uint16 range \[0, 65535\] \(1 below, 1 above\)"):
        write_image(tmp_path / "o.tif", np.array([[-3.0, 7.4], [70000.0, 65535.2]]), like=info)
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif")[0], [[0, 7], [65535, 65535]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "in_range.tif", np.array([[0.4, 65534.6]]), like=info)


# ---------------------------------------------------------------------- pairs
def test_pairs_from_a_second_folder_by_name_or_in_sorted_order(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    for i in range(3):
        write_image(tmp_path / "a" / f"f{i}.tif", _frames((8, 9), seed=i))
        write_image(tmp_path / "b" / f"f{i}.tif", _frames((8, 9), seed=10 + i))
        write_image(tmp_path / "c" / f"g{i}.tif", _frames((8, 9), seed=10 + i))
    ds = load_measurements(tmp_path / "a", pairs=tmp_path / "b", normalization="none")
    np.testing.assert_array_equal(ds.y2[2, 0].numpy(), _frames((8, 9), seed=12))
    with pytest.warns(UserWarning, match="paired in sorted order .f0.tif with g0.tif"):
        ds2 = load_measurements(tmp_path / "a", pairs=tmp_path / "c", normalization="none")
    assert ds2.y2.equal(ds.y2)


def test_pairs_of_different_sizes_or_counts_are_one_line(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    write_image(tmp_path / "a" / "f0.tif", _frames((8, 9)))
    write_image(tmp_path / "a" / "f1.tif", _frames((8, 9)))
    write_image(tmp_path / "b" / "f0.tif", _frames((8, 9)))
    with pytest.raises(ValueError, match=r"^data.pairs_path: 1 files for 2 measurement files"):
        load_measurements(tmp_path / "a", pairs=tmp_path / "b")
    write_image(tmp_path / "b" / "f1.tif", _frames((8, 7)))
    with pytest.raises(ValueError, match=r"^f1.tif \(8, 9\) and its pair f1.tif \(8, 7\) differ in size"):
        load_measurements(tmp_path / "a", pairs=tmp_path / "b")


def test_t_stack_pairs_need_a_t_axis_and_two_frames_and_say_when_one_is_left_out(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", _frames((5, 8, 8)), metadata={"axes": "TYX"})
    with pytest.warns(UserWarning, match="t.tif: an odd number of frames; the last frame is left out"):
        ds = load_measurements(tmp_path / "t.tif", axes="TYX", frame_pairs=True, normalization="none")
    assert ds.names == ["t.tif[0,1]", "t.tif[2,3]"] and ds.y2.shape == ds.y.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="pairs of frames need a T axis in data.axes"):
        load_measurements(tmp_path / "t.tif", axes="ZYX", frame_pairs=True)
    tifffile.imwrite(tmp_path / "one.tif", _frames((8, 8)))
    with pytest.raises(ValueError, match="one.tif has shape"):
        load_measurements(tmp_path / "one.tif", axes="TYX", frame_pairs=True)


# ---------------------------------------------------------------------- saturation
def test_saturated_pixels_at_the_dtype_maximum_or_a_plateau_are_reported_and_kept(tmp_path):
    info8, info16 = ImageInfo.for_dtype("uint8"), ImageInfo.for_dtype("uint16")
    a = _frames((1, 64, 64), dtype=np.float32, high=200)
    assert saturated_pixels(a, info8) is None and saturated_pixels(a, None) is None
    a[0, :2] = 255
    assert saturated_pixels(a, info8) == (128, 255.0, "the 8-bit maximum")
    b = _frames((1, 64, 64), dtype=np.float32, high=3000)
    b[0, :3] = 4095  # a 12-bit camera in a 16-bit file
    n, value, why = saturated_pixels(b, info16)
    assert (n, value) == (192, 4095.0) and "sensor" in why
    counts = np.random.default_rng(0).poisson(2.0, size=(1, 64, 64)).astype(np.float32)  # low counts: no plateau
    assert saturated_pixels(counts, info16) is None
    img = np.full((40, 40), 1000, np.uint16)
    img[:5] = 65535
    write_image(tmp_path / "sat.tif", img)
    write_image(tmp_path / "ok.tif", np.full((40, 40), 1000, np.uint16))
    with pytest.warns(UserWarning, match=r"1 of 2 files have saturated pixels \(sat.tif: 200 at 65535 \(the 16-bit "
                      r"maximum\); 200 pixels, 12 % of those files\); kept as they are \(not clipped, not masked\)"):
        ds = load_measurements(tmp_path, normalization="none")
    assert float(ds.y.max()) == 65535.0  # not clipped


def test_a_measurement_folder_with_y_and_y2_gives_pairs_and_reports_saturation(tmp_path):
    (tmp_path / "y").mkdir(), (tmp_path / "y2").mkdir()
    first = _frames((8, 9), dtype=np.uint8, high=200)
    first[0] = 255
    write_image(tmp_path / "y" / "a.png", first)
    write_image(tmp_path / "y2" / "a.png", _frames((8, 9), seed=1, dtype=np.uint8, high=200))
    with pytest.warns(UserWarning, match=r"y: 1 of 1 files have saturated pixels \(a.png: 9 at 255"):
        ds = load_measurements(tmp_path, normalization="none")
    assert ds.y2.shape == ds.y.shape == (1, 1, 8, 9)
    with pytest.raises(ValueError, match="pairs apply to image files; a measurement set .a folder with y/. takes its pairs from y2/"):
        load_measurements(tmp_path, pairs=tmp_path / "y2")


# ---------------------------------------------------------------------- the real files (SELFINV_DATA)
@real
def test_real_microscopy_files():
    root = Path(DATA)
    w2s = root / "microscopy_fmd_w2s_real_noise" / "W2S_avg1_noisy" / "input_avg1_001_0.tif"
    x, info = read_with_axes(w2s, "YX")
    assert x.shape == (1, 512, 512) and info.dtype == "uint8" and "imagej" in info.tags
    assert saturated_pixels(x, info)[:2] == (482, 255.0)
    with pytest.raises(ValueError, match=r"^img3d.tif has shape \(31, 61, 57\) but data.axes is 'YX'$"):
        read_with_axes(root / "microscopy_bundled" / "img3d.tif", "YX")
    x3, _ = read_with_axes(root / "microscopy_bundled" / "img3d.tif", "ZYX")
    assert x3.shape == (31, 1, 61, 57)
    fmd, info3 = read_with_axes(root / "microscopy_fmd_w2s_real_noise" / "FMD_3D_raw" / "3D_volume_raw_stack1_32bit.tif", "ZYX")
    assert fmd.shape == (3, 1, 512, 512) and info3.dtype == "float32" and saturated_pixels(fmd, info3) is None
    pn2v = next((root / "microscopy_fmd_w2s_real_noise" / "PN2V_raw_noisy").glob("*Conv*.tif"))
    y, info16 = read_image(pn2v, return_info=True)
    assert info16.dtype == "uint16" and saturated_pixels(y, info16) is None  # max 6184 once: not saturated
