"""Readers and writers: every format on tiny files written here, corrupt files, and the real data (SELFINV_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from selfinv.data import ImageInfo, Normalization, list_images, read_fastmri, read_image, write_image

RNG = np.random.default_rng(0)


def ramp(h=12, w=10, dtype=np.uint8, top=255):
    """A deterministic test image using most of the range of its dtype."""
    v = np.linspace(0, top, h * w).reshape(h, w)
    return v.astype(dtype)


# ---------------------------------------------------------------------- PNG / JPEG
def test_png_8bit_gray_and_rgb(tmp_path):
    gray = ramp()
    rgb = RNG.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "g.png", gray)
    iio.imwrite(tmp_path / "c.png", rgb)
    x, info = read_image(tmp_path / "g.png", return_info=True)
    assert x.shape == (1, 12, 10) and x.dtype == np.float32
    assert np.array_equal(x[0], gray.astype(np.float32))
    assert info == ImageInfo("uint8", 8, (0.0, 255.0))
    c = read_image(tmp_path / "c.png")
    assert c.shape == (3, 12, 10) and np.array_equal(np.moveaxis(c, 0, -1), rgb.astype(np.float32))


def test_png_16bit(tmp_path):
    img = ramp(dtype=np.uint16, top=65535)
    iio.imwrite(tmp_path / "a.png", img)
    x, info = read_image(tmp_path / "a.png", return_info=True)
    assert np.array_equal(x[0], img.astype(np.float32))
    assert info.dtype == "uint16" and info.bit_depth == 16 and info.data_range == (0.0, 65535.0)


def test_jpeg_within_compression_tolerance(tmp_path):
    img = ramp(32, 32)  # smooth, so JPEG errors are small
    iio.imwrite(tmp_path / "a.jpg", img, quality=95)
    x, info = read_image(tmp_path / "a.jpg", return_info=True)
    assert x.shape == (1, 32, 32) and info.dtype == "uint8"
    assert np.abs(x[0] - img).mean() < 2.0 and np.abs(x[0] - img).max() < 12


# ---------------------------------------------------------------------- TIFF
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_dtypes(tmp_path, dtype):
    img = ramp(dtype=np.float64, top=1.0) if dtype == np.float32 else ramp(dtype=dtype, top=np.iinfo(dtype).max)
    img = img.astype(dtype)
    tifffile.imwrite(tmp_path / "a.tif", img)
    x, info = read_image(tmp_path / "a.tif", return_info=True)
    assert x.shape == (1, 12, 10) and x.dtype == np.float32
    assert np.array_equal(x[0], img.astype(np.float32))
    assert info.dtype == np.dtype(dtype).name
    if dtype == np.float32:
        assert info.bit_depth is None and info.data_range == (float(img.min()), float(img.max()))
    else:
        assert info.bit_depth == 8 * np.dtype(dtype).itemsize


def test_tiff_three_page_stack_and_rgb(tmp_path):
    pages = RNG.random((3, 6, 7)).astype(np.float32)
    with tifffile.TiffWriter(tmp_path / "stack.tif") as w:
        for p in pages:
            w.write(p)
    x = read_image(tmp_path / "stack.tif")
    assert x.shape == (3, 1, 6, 7) and np.array_equal(x[:, 0], pages)
    # the same pages read as channels when the caller says so
    assert read_image(tmp_path / "stack.tif", axes="CHW").shape == (3, 6, 7)
    rgb = RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "rgb.tif"), np.moveaxis(rgb, -1, 0).astype(np.float32))


# ---------------------------------------------------------------------- NPY / NPZ
def test_npy_real_complex_and_axes(tmp_path):
    real = RNG.random((2, 5, 6))
    np.save(tmp_path / "r.npy", real)
    x, info = read_image(tmp_path / "r.npy", return_info=True)
    assert x.dtype == np.float32 and x.shape == (2, 5, 6) and np.allclose(x, real, atol=1e-7)
    assert info.dtype == "float64"
    z = (RNG.standard_normal((4, 1, 5, 6)) + 1j * RNG.standard_normal((4, 1, 5, 6))).astype(np.complex128)
    np.save(tmp_path / "z.npy", z)
    zx, zinfo = read_image(tmp_path / "z.npy", return_info=True)
    assert zx.dtype == np.complex64 and zx.shape == (4, 1, 5, 6) and np.allclose(zx, z, atol=1e-6)
    assert zinfo.dtype == "complex128" and zinfo.data_range[1] == pytest.approx(np.abs(z).max())
    hwc = RNG.random((5, 6, 3)).astype(np.float32)
    np.save(tmp_path / "hwc.npy", hwc)
    assert np.array_equal(read_image(tmp_path / "hwc.npy", axes="HWC"), np.moveaxis(hwc, -1, 0))
    np.savez(tmp_path / "two.npz", a=real, b=hwc)
    assert read_image(tmp_path / "two.npz", key="a").shape == (2, 5, 6)
    with pytest.raises(ValueError, match="two.npz.*key="):
        read_image(tmp_path / "two.npz")


# ---------------------------------------------------------------------- HDF5 / fastMRI
def _fastmri(path: Path, recon: bool) -> tuple[np.ndarray, np.ndarray]:
    kspace = (RNG.standard_normal((3, 16, 12)) + 1j * RNG.standard_normal((3, 16, 12))).astype(np.complex64)
    rec = RNG.random((3, 8, 8)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["kspace"] = kspace
        if recon:
            f["reconstruction_esc"] = rec
        f.attrs["acquisition"] = "CORPD_FBK"
        f.attrs["max"] = 0.5
    return kspace, rec


def test_fastmri_with_and_without_reconstruction(tmp_path):
    kspace, rec = _fastmri(tmp_path / "with.h5", recon=True)
    d = read_fastmri(tmp_path / "with.h5")
    assert d["kspace"].shape == (3, 1, 16, 12) and d["kspace"].dtype == np.complex64
    assert np.array_equal(d["kspace"][:, 0], kspace)
    assert d["reconstruction_key"] == "reconstruction_esc" and np.array_equal(d["reconstruction"][:, 0], rec)
    assert d["attrs"]["acquisition"] == "CORPD_FBK" and d["attrs"]["max"] == 0.5 and d["mask"] is None
    assert read_image(tmp_path / "with.h5").shape == (3, 1, 8, 8)  # the reconstruction, one slice per entry
    assert read_image(tmp_path / "with.h5", key="kspace").dtype == np.complex64

    _fastmri(tmp_path / "without.h5", recon=False)
    d = read_fastmri(tmp_path / "without.h5")
    assert d["reconstruction"] is None and d["reconstruction_key"] is None and d["kspace"].shape == (3, 1, 16, 12)
    with pytest.raises(ValueError, match="without.h5.*read_fastmri"):
        read_image(tmp_path / "without.h5")


def test_hdf5_generic_dataset_and_axes_attribute(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["img"] = RNG.random((4, 5, 6)).astype(np.float32)
        f["img"].attrs["axes"] = "DHW"
    assert read_image(tmp_path / "a.h5").shape == (4, 1, 5, 6)
    with pytest.raises(ValueError, match="a.h5.*no dataset 'nope'"):
        read_image(tmp_path / "a.h5", key="nope")
    with pytest.raises(ValueError, match="not a fastMRI"):
        read_fastmri(tmp_path / "a.h5")


# ---------------------------------------------------------------------- DICOM
def _dicom(path: Path, pixels: np.ndarray, slope=2.0, intercept=-100.0, bits=12, frames=None, **tags) -> None:
    """A small uncompressed 16-bit DICOM (unsigned stored values); ``tags``: more elements by keyword."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    if frames:
        ds.NumberOfFrames = frames
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_rescale_slope_intercept(tmp_path):
    stored = ramp(8, 9, dtype=np.uint16, top=4095)
    _dicom(tmp_path / "a.dcm", stored)
    x, info = read_image(tmp_path / "a.dcm", return_info=True)
    assert x.shape == (1, 8, 9)
    assert np.array_equal(x[0], stored * 2.0 - 100.0)
    assert info.bit_depth == 12 and info.data_range == (-100.0, 4095 * 2.0 - 100.0)
    assert info.dtype == "int16"  # the stored uint16 cannot hold -100
    frames = np.stack([stored, stored[::-1]])
    _dicom(tmp_path / "m.dcm", frames, slope=1.0, intercept=0.0, frames=2)
    m = read_image(tmp_path / "m.dcm")
    assert m.shape == (2, 1, 8, 9) and np.array_equal(m[:, 0], frames.astype(np.float32))


# ---------------------------------------------------------------------- BART
def _cfl(base: Path, arr: np.ndarray) -> None:
    base.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(map(str, arr.shape)) + " \n")
    np.asarray(arr, dtype=np.complex64).ravel(order="F").tofile(base.with_suffix(".cfl"))


def test_bart_cfl_axes_and_values(tmp_path):
    img = (RNG.standard_normal((6, 5)) + 1j * RNG.standard_normal((6, 5))).astype(np.complex64)
    _cfl(tmp_path / "img", img)
    x = read_image(tmp_path / "img.cfl")
    assert x.dtype == np.complex64 and x.shape == (1, 6, 5) and np.array_equal(x[0], img)
    assert np.array_equal(read_image(tmp_path / "img.hdr"), x)  # either file of the pair
    # BART dims (read, phase1, phase2, coil): [1, 6, 5, 3] -> (C, H, W) = (3, 6, 5)
    coils = (RNG.standard_normal((1, 6, 5, 3)) + 1j * RNG.standard_normal((1, 6, 5, 3))).astype(np.complex64)
    _cfl(tmp_path / "ksp", coils)
    k = read_image(tmp_path / "ksp.cfl")
    assert k.shape == (3, 6, 5) and np.array_equal(k, np.moveaxis(coils[0], -1, 0))
    # a third spatial dimension is a stack
    vol = (RNG.standard_normal((6, 5, 4)) + 0j).astype(np.complex64)
    _cfl(tmp_path / "vol", vol)
    v = read_image(tmp_path / "vol.cfl")
    assert v.shape == (4, 1, 6, 5) and np.array_equal(v[2, 0], vol[:, :, 2])


def test_bart_truncated_or_half_missing(tmp_path):
    _cfl(tmp_path / "a", np.ones((4, 4), np.complex64))
    data = (tmp_path / "a.cfl").read_bytes()
    (tmp_path / "a.cfl").write_bytes(data[:-8])
    with pytest.raises(ValueError, match="a.cfl.*truncated"):
        read_image(tmp_path / "a.cfl")
    (tmp_path / "b.cfl").write_bytes(data)
    with pytest.raises(ValueError, match="b.hdr.*missing"):
        read_image(tmp_path / "b.cfl")


# ---------------------------------------------------------------------- failures
def _valid_files(folder: Path) -> list[Path]:
    img = ramp(16, 16)
    iio.imwrite(folder / "v.png", img)
    iio.imwrite(folder / "v.jpg", img)
    tifffile.imwrite(folder / "v.tif", img)
    np.save(folder / "v.npy", img.astype(np.float32))
    with h5py.File(folder / "v.h5", "w") as f:
        f["x"] = img
    _dicom(folder / "v.dcm", img.astype(np.uint16))
    return [folder / n for n in ("v.png", "v.jpg", "v.tif", "v.npy", "v.h5", "v.dcm")]


@pytest.mark.parametrize("damage", ["truncated", "wrong_magic"])
def test_corrupt_files_are_one_value_error_naming_the_file(tmp_path, damage):
    for good in _valid_files(tmp_path):
        read_image(good)  # the intact file reads
        data = good.read_bytes()
        bad = tmp_path / f"{damage}_{good.name}"
        bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not an image at all " * 8)
        with pytest.raises(ValueError, match=bad.name) as err:
            read_image(bad)
        assert "\n" not in str(err.value)


def test_missing_unknown_nan_and_empty(tmp_path):
    with pytest.raises(ValueError, match="nothere.png.*no such file"):
        read_image(tmp_path / "nothere.png")
    (tmp_path / "a.xyz").write_bytes(b"123")
    with pytest.raises(ValueError, match="a.xyz.*unknown extension"):
        read_image(tmp_path / "a.xyz")
    bad = np.ones((4, 4), np.float32)
    bad[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="nan.npy.*1 NaN"):
        read_image(tmp_path / "nan.npy")
    inf = np.ones((4, 4), np.float32)
    inf[0, 0] = np.inf
    tifffile.imwrite(tmp_path / "inf.tif", inf)
    with pytest.raises(ValueError, match="inf.tif.*1 Inf"):
        read_image(tmp_path / "inf.tif")
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="empty.npy.*empty"):
        read_image(tmp_path / "empty.npy")
    with pytest.raises(ValueError, match="axes"):
        read_image(tmp_path / "inf.tif", axes="HWX")


# ---------------------------------------------------------------------- writing
def test_write_refuses_to_overwrite(tmp_path):
    img = ramp()
    for name in ("a.png", "b.tif", "b.npy"):
        write_image(tmp_path / name, img)
    before = (tmp_path / "a.png").read_bytes()
    for name in ("a.png", "b.tif", "b.npy"):
        with pytest.raises(ValueError, match=f"{name}.*overwrite=True"):
            write_image(tmp_path / name, img)
    assert (tmp_path / "a.png").read_bytes() == before
    write_image(tmp_path / "a.png", img[::-1].copy(), overwrite=True)
    assert np.array_equal(read_image(tmp_path / "a.png")[0], img[::-1])


def test_write_back_in_the_input_dtype(tmp_path):
    img = ramp(dtype=np.uint16, top=65535)
    iio.imwrite(tmp_path / "in.png", img)
    x, info = read_image(tmp_path / "in.png", return_info=True)
    norm = Normalization.from_info(info)
    u = norm.normalize(x)
    assert u.min() == 0.0 and u.max() == 1.0
    write_image(tmp_path / "out.png", norm.denormalize(u), like=info)  # float -> uint16, rounded
    y, out_info = read_image(tmp_path / "out.png", return_info=True)
    assert out_info == info and np.array_equal(y, x)
    # values outside the range are clipped, not wrapped
    write_image(tmp_path / "clip.tif", np.array([[-5.0, 300.0, 127.6]]), like=ImageInfo.for_dtype("uint8"))
    assert read_image(tmp_path / "clip.tif")[0].tolist() == [[0.0, 255.0, 128.0]]
    with pytest.raises(ValueError, match="f.png.*PNG holds 8- or 16-bit"):
        write_image(tmp_path / "f.png", x)
    with pytest.raises(ValueError, match="n.tif.*NaN"):
        write_image(tmp_path / "n.tif", np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="c.tif.*complex"):
        write_image(tmp_path / "c.tif", np.ones((2, 2), np.complex64))
    with pytest.raises(ValueError, match=r"x.jpg.*cannot write"):
        write_image(tmp_path / "x.jpg", img)


@pytest.mark.parametrize("shape", [(1, 5, 6), (3, 5, 6), (2, 5, 6), (4, 1, 5, 6), (4, 3, 5, 6)])
def test_tiff_and_npy_round_trip_shapes(tmp_path, shape):
    a = RNG.random(shape).astype(np.float32)
    for ext in ("tif", "npy"):
        write_image(tmp_path / f"a.{ext}", a)
        assert np.array_equal(read_image(tmp_path / f"a.{ext}"), a)


def test_image_info_dict_and_list_images(tmp_path):
    info = ImageInfo.for_dtype("uint16", bit_depth=12)
    assert ImageInfo.from_dict(info.to_dict()) == info and info.data_range == (0.0, 4095.0)
    for n in ("b.png", "a.npy", "notes.txt"):
        (tmp_path / n).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.npy", "b.png"]


def test_list_images_takes_glob_patterns_over_subject_folders(tmp_path):
    for subject in ("P2", "P1", "P10"):
        (tmp_path / subject).mkdir()
        np.save(tmp_path / subject / "slice.npy", np.zeros((4, 4), np.float32))
        (tmp_path / subject / "notes.txt").write_text("")
    files = list_images(f"{tmp_path}/*/*")
    assert [p.parent.name for p in files] == ["P1", "P10", "P2"] and all(p.name == "slice.npy" for p in files)
    assert [p.parent.name for p in list_images(f"{tmp_path}/**/*.npy")] == ["P1", "P10", "P2"]
    assert list_images(f"{tmp_path}/*/*.png") == []


# ---------------------------------------------------------------------- metadata, keys in paths, quiet failures
def test_info_records_what_the_channel_axis_means(tmp_path):
    iio.imwrite(tmp_path / "c.png", RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8))
    assert read_image(tmp_path / "c.png", return_info=True)[1].channel_axis == "color"
    iio.imwrite(tmp_path / "g.png", ramp())
    assert read_image(tmp_path / "g.png", return_info=True)[1].channel_axis is None
    coils = (RNG.standard_normal((1, 6, 5, 3)) + 0j).astype(np.complex64)
    _cfl(tmp_path / "ksp", coils)
    k, kinfo = read_image(tmp_path / "ksp.cfl", return_info=True)
    assert k.shape == (3, 6, 5) and kinfo.channel_axis == "coil"  # BART's C: receive coils, not colours
    with h5py.File(tmp_path / "multi.h5", "w") as f:
        f["kspace"] = (RNG.standard_normal((2, 4, 6, 5)) + 0j).astype(np.complex64)
    assert read_image(tmp_path / "multi.h5", key="kspace", return_info=True)[1].channel_axis == "coil"
    tifffile.imwrite(tmp_path / "rgb.tif", RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8), photometric="rgb")
    assert read_image(tmp_path / "rgb.tif", return_info=True)[1].channel_axis == "color"


def test_tiff_tags_are_kept_and_written_back(tmp_path):
    stack = ramp(3 * 8, 10, dtype=np.uint16, top=60000).reshape(3, 8, 10)
    tifffile.imwrite(tmp_path / "t.tif", stack, photometric="minisblack", resolution=(300.0, 150.0),
                     resolutionunit="CENTIMETER", description="mouse 7, 40x, µm".encode(), metadata={"axes": "TYX"})
    x, info = read_image(tmp_path / "t.tif", return_info=True)
    assert x.shape == (3, 1, 8, 10)
    assert info.tags == {"axes": "TYX", "resolution": (300.0, 150.0), "resolution_unit": "centimeter",
                         "description": "mouse 7, 40x, µm"}
    write_image(tmp_path / "out.tif", x[::-1], like=info)
    y, out_info = read_image(tmp_path / "out.tif", return_info=True)
    assert np.array_equal(y, x[::-1]) and out_info == info
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.series[0].axes == "TYX" and tif.pages[0].description == "mouse 7, 40x, µm"
    # tifffile's own JSON description is not an author's description; default resolution is not a tag worth keeping
    tifffile.imwrite(tmp_path / "plain.tif", stack[0])
    assert read_image(tmp_path / "plain.tif", return_info=True)[1].tags == {"axes": "YX"}
    iio.imwrite(tmp_path / "pil.tif", ramp(), plugin="pillow")  # no resolution tags at all
    assert "resolution" not in read_image(tmp_path / "pil.tif", return_info=True)[1].tags
    # axes that do not fit the array written are not forced on it
    write_image(tmp_path / "one.tif", x[0], like=info)
    with tifffile.TiffFile(tmp_path / "one.tif") as tif:
        assert tif.series[0].axes == "YX"


def test_image_info_json_old_dicts_and_repr():
    import json

    info = ImageInfo("uint16", 16, (0.0, 65535.0), channel_axis="channel", tags={"resolution": [2, 2], "axes": "CYX"},
                     source="/data/a.dcm")
    d = json.loads(json.dumps(info.to_dict()))
    assert ImageInfo.from_dict(d) == info and d["tags"]["resolution"] == [2.0, 2.0]
    old = {"dtype": "uint8", "bit_depth": 8, "data_range": [0, 255]}  # written before the metadata fields
    assert ImageInfo.from_dict(old) == ImageInfo.for_dtype("uint8") and ImageInfo.for_dtype("uint8").to_dict() == {
        **old, "data_range": [0.0, 255.0]}
    assert repr(ImageInfo.for_dtype("uint8")) == "ImageInfo(dtype='uint8', bit_depth=8, data_range=(0.0, 255.0))"
    assert "source='/data/a.dcm'" in repr(info)
    hash(info)  # frozen and hashable (tags are left out of the hash)
    with pytest.raises(ValueError, match="channel_axis"):
        ImageInfo("uint8", 8, (0.0, 255.0), channel_axis="colour")


def test_key_inside_the_path(tmp_path):
    from selfinv.data.readers import split_key

    np.savez(tmp_path / "set.npz", y=np.ones((2, 4, 5)), mask=np.zeros((4, 5)))
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f["a"] = np.zeros((4, 5), np.float32)
        f["g/b"] = np.ones((3, 4, 5), np.float32)
    assert read_image(f"{tmp_path}/set.npz:y").shape == (2, 4, 5)
    assert read_image(tmp_path / "set.npz:mask").shape == (1, 4, 5)
    assert read_image(f"{tmp_path}/scan.h5:g/b").shape == (3, 4, 5)
    assert split_key(f"{tmp_path}/scan.h5:a", "a") == (tmp_path / "scan.h5", "a")
    with pytest.raises(ValueError, match=r"scan.h5: two keys given \('a' in the path and key='g/b'\)"):
        read_image(f"{tmp_path}/scan.h5:a", key="g/b")
    with pytest.raises(ValueError, match="scan.h5: has no dataset 'nope'"):
        read_image(f"{tmp_path}/scan.h5:nope")
    # no split: the part before the colon is not an existing file of a known extension, or the whole path exists
    (tmp_path / "notes.txt").write_text("")
    assert split_key(f"{tmp_path}/notes.txt:a") == (Path(f"{tmp_path}/notes.txt:a"), None)
    assert split_key(f"{tmp_path}/missing.npz:y") == (Path(f"{tmp_path}/missing.npz:y"), None)
    np.save(tmp_path / "odd.npy:x.npy", np.zeros((2, 2)))  # a file whose name holds a colon reads as it is
    (tmp_path / "odd.npy").write_bytes(b"")
    assert read_image(tmp_path / "odd.npy:x.npy").shape == (1, 2, 2)
    with pytest.raises(ValueError, match="a.png: key= applies to NPZ, HDF5 and MAT files only"):
        iio.imwrite(tmp_path / "a.png", ramp())
        read_image(f"{tmp_path}/a.png:k")


def test_a_folder_where_a_file_is_expected(tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "vol.tif").mkdir()
    for folder in (tmp_path / "scans", tmp_path / "vol.tif"):
        with pytest.raises(ValueError, match=f"{folder.name}: is a folder, not a file \\(give the files inside it"):
            read_image(folder)


def test_truncated_tiff_is_one_error_and_nothing_logged(tmp_path, caplog):
    import logging

    with tifffile.TiffWriter(tmp_path / "p.tif") as w:
        for _ in range(3):
            w.write(ramp(64, 64), photometric="minisblack")
    data = (tmp_path / "p.tif").read_bytes()
    caplog.set_level(logging.DEBUG)
    for cut in range(64, len(data), 256):  # several cuts land in an IFD, where tifffile logs before raising
        (tmp_path / "cut.tif").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.tif: cannot read the TIFF file"):
            read_image(tmp_path / "cut.tif")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("tifffile")] == []
    assert logging.getLogger("tifffile").level == logging.NOTSET  # the logger is given back as it was


# ---------------------------------------------------------------------- the real data (SELFINV_DATA)
DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")


@real
def test_real_png_set12():
    x, info = read_image(Path(DATA) / "set12_gray" / "01.png", return_info=True)
    assert x.shape == (1, 256, 256) and info.dtype == "uint8"
    assert 0 <= x.min() < 50 and 200 < x.max() <= 255


@real
def test_real_tiff_mcmaster():
    x, info = read_image(Path(DATA) / "mcmaster18_color" / "1.tif", return_info=True)
    assert x.shape == (3, 500, 500) and (info.dtype, info.bit_depth, info.data_range) == ("uint8", 8, (0.0, 255.0))
    assert info.channel_axis == "color" and info.tags == {"axes": "YXS", "resolution": (72.0, 72.0), "resolution_unit": "inch"}
    assert 0 <= x.min() and x.max() <= 255 and x.std() > 10


@real
def test_real_bart_knee_and_brain():
    knee = read_image(Path(DATA) / "mri_knee_mridata_stanford3dfse" / "P1" / "knee-fully-sampled-reference.cfl")
    assert knee.shape == (1, 320, 256) and knee.dtype == np.complex64
    assert np.all(knee.imag == 0) and knee.real.min() >= 0 and knee.real.max() > 0  # a magnitude image
    ksp = read_image(Path(DATA) / "mri_bart_brain_kspace" / "ksp.cfl")
    assert ksp.shape == (8, 180, 230)  # 8 coils
    sampled = np.abs(ksp).sum(0) > 0
    assert 0.05 < sampled.mean() < 0.3  # ~12.7% Poisson-disc undersampling


@real
def test_real_dicom_ct():
    x, info = read_image(Path(DATA) / "ct_dicom_slices" / "693_UNCI.dcm", return_info=True)
    assert x.shape == (1, 512, 512) and info.bit_depth == 14
    assert -4096 <= x.min() < -500 and 500 < x.max() <= 4096  # Hounsfield units
    frames = read_image(Path(DATA) / "ct_dicom_slices" / "eCT_Supplemental.dcm")
    assert frames.shape == (2, 1, 512, 512) and frames.min() == -1024  # enhanced-CT rescale applied
