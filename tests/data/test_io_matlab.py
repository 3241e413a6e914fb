"""MATLAB .mat files: v5 (scipy) and v7.3 (HDF5, MATLAB's transposed layout) read alike; keys, structs, errors."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from selfinv.data import list_images, read_image
from selfinv.data.matlab import mat_is_v73, read_mat_struct

RNG = np.random.default_rng(0)
HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


def write_mat73(path: Path, variables: dict) -> None:
    """A v7.3 file as MATLAB writes it: a 512-byte user block with the text header, arrays stored transposed."""

    def put(group, name, value):
        if isinstance(value, dict):
            g = group.create_group(name)
            g.attrs["MATLAB_class"] = np.bytes_(b"struct")
            for k, v in value.items():
                put(g, k, v)
            return
        if isinstance(value, str):
            d = group.create_dataset(name, data=np.array([[ord(c)] for c in value], dtype=np.uint16))
            d.attrs["MATLAB_class"] = np.bytes_(b"char")
            d.attrs["MATLAB_int_decode"] = np.int32(2)
            return
        a = np.asarray(value)
        a = a[None] if a.ndim == 1 else a.reshape(1, 1) if a.ndim == 0 else a  # MATLAB has no 1-D arrays
        if np.iscomplexobj(a):
            data = np.empty(a.T.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
            data["real"], data["imag"] = a.real.T, a.imag.T
            cls = b"double"
        else:
            data, cls = a.T, {"f": b"double", "u": b"uint16", "i": b"int32", "b": b"logical"}[a.dtype.kind]
            if a.dtype.kind == "b":
                data = data.astype(np.uint8)
        d = group.create_dataset(name, data=data)
        d.attrs["MATLAB_class"] = np.bytes_(cls)

    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in variables.items():
            put(f, k, v)
    with open(path, "r+b") as fh:
        fh.write(HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def scan_vars() -> dict:
    """A small HTC2022-like file: a struct with a sinogram (angles x detectors) and geometry parameters."""
    return {
        "CtData": {
            "sinogram": RNG.random((7, 12)),
            "parameters": {"angles": np.arange(7) * 0.5, "distanceSourceOrigin": 410.66, "distanceUnit": "mm",
                           "freeRay": np.array([[1.0, 128.0, 1.0, 128.0]])},
            "type": "2d",
        }
    }


@pytest.fixture
def scans(tmp_path):
    v = scan_vars()
    scipy.io.savemat(tmp_path / "v5.mat", v)
    write_mat73(tmp_path / "v73.mat", v)
    return tmp_path / "v5.mat", tmp_path / "v73.mat", v


def test_v5_and_v73_read_alike_in_matlab_layout(scans):
    v5, v73, v = scans
    assert not mat_is_v73(v5) and mat_is_v73(v73)
    assert v73.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(v73) as f:  # the raw HDF5 dataset is transposed: detectors x angles
        assert f["CtData/sinogram"].shape == (12, 7)
    sino = v["CtData"]["sinogram"]
    for path in (v5, v73):
        x, info = read_image(path, return_info=True)  # the only 2-D numeric array
        assert x.shape == (1, 7, 12) and np.allclose(x[0], sino)
        assert info.dtype == "float64" and info.bit_depth is None
        assert np.array_equal(read_image(path, key="CtData.sinogram"), x)
        assert np.array_equal(read_image(f"{path}:CtData.sinogram"), x)  # the key inside the path
        assert np.array_equal(read_image(path, key="CtData.sinogram", axes="WH")[0], x[0].T)  # detectors x angles


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_arrays_3d_complex_and_axes(tmp_path, version):
    vol = RNG.random((5, 6, 3))  # MATLAB H x W x C
    z = RNG.standard_normal((4, 5)) + 1j * RNG.standard_normal((4, 5))
    path = tmp_path / "a.mat"
    if version == "v5":
        scipy.io.savemat(path, {"vol": vol, "z": z})
    else:
        write_mat73(path, {"vol": vol, "z": z})
    x = read_image(path, key="vol")
    assert x.shape == (3, 5, 6) and np.allclose(x, np.moveaxis(vol, -1, 0))
    assert read_image(path, key="vol", axes="HWD").shape == (3, 1, 5, 6)
    c = read_image(path, key="z")
    assert c.dtype == np.complex64 and c.shape == (1, 4, 5) and np.allclose(c[0], z, atol=1e-6)


def test_read_mat_struct_gives_the_same_dict_for_both_versions(scans):
    v5, v73, v = scans
    for path in (v5, v73):
        p = read_mat_struct(path, "CtData.parameters")
        assert set(p) == {"angles", "distanceSourceOrigin", "distanceUnit", "freeRay"}
        assert p["angles"].shape == (7,) and np.allclose(p["angles"], np.arange(7) * 0.5)  # 1 x 7 row, squeezed
        assert p["distanceSourceOrigin"] == pytest.approx(410.66) and isinstance(p["distanceSourceOrigin"], float)
        assert p["distanceUnit"] == "mm"
        assert p["freeRay"].tolist() == [1.0, 128.0, 1.0, 128.0]
        whole = read_mat_struct(path)
        assert whole["CtData"]["type"] == "2d" and whole["CtData"]["sinogram"].shape == (7, 12)


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_errors_name_the_file_and_list_the_candidates(tmp_path, version):
    path = tmp_path / "two.mat"
    variables = {"a": RNG.random((4, 5)), "s": {"b": RNG.random((3, 3)), "n": 2.0}}
    if version == "v5":
        scipy.io.savemat(path, variables)
    else:
        write_mat73(path, variables)
    with pytest.raises(ValueError, match=r"two.mat: holds 2 arrays that could be images \(a \(4x5\), s.b \(3x3\)\)") as e:
        read_image(path)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"two.mat: has no variable 's.c'.*\['b', 'n'\]"):
        read_image(path, key="s.c")
    with pytest.raises(ValueError, match=r"two.mat: s is a struct with fields \['b', 'n'\]; name one"):
        read_image(path, key="s")
    with pytest.raises(ValueError, match=r"two.mat: a is not a struct \(a numeric array\)"):
        read_image(path, key="a.x")
    with pytest.raises(ValueError, match=r"two.mat: a is a numeric array, not a struct; read arrays with read_image\('two.mat:a'\)"):
        read_mat_struct(path, "a")
    assert read_image(path, key="s.b").shape == (1, 3, 3)


def test_no_image_and_corrupt_files(tmp_path):
    scipy.io.savemat(tmp_path / "scalars.mat", {"n": 3.0, "name": "x"})
    with pytest.raises(ValueError, match=r"scalars.mat: holds no 2-D numeric array \(n \(1x1\)\)"):
        read_image(tmp_path / "scalars.mat")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="bad.mat: cannot read the MAT file"):
        read_image(tmp_path / "bad.mat")
    scans = scan_vars()
    write_mat73(tmp_path / "cut.mat", scans)
    data = (tmp_path / "cut.mat").read_bytes()
    (tmp_path / "cut.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.mat: cannot read"):
        read_image(tmp_path / "cut.mat")
    assert [p.name for p in list_images(tmp_path)] == ["bad.mat", "cut.mat", "scalars.mat"]


# ---------------------------------------------------------------------- the real data (SELFINV_DATA)
DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")


@real
def test_real_htc2022_v5_and_v73_agree_in_layout():
    folder = Path(DATA) / "ct_htc2022_sinograms" / "alexdenker_examples_30"
    for name in ("tb_subsample.mat", "ta_subsample73.mat", "solid_disc_subsample73.mat"):
        path = folder / name
        sino = read_image(path)  # the only image-like array: CtDataLimited.sinogram
        params = read_mat_struct(path, "CtDataLimited.parameters")
        n_angles = len(params["angles"])
        assert sino.shape == (1, n_angles, 560), name  # angles x detectors in v5 and v7.3 alike
        assert int(params["numDetectorsPost"]) == 560 and params["distanceUnit"] == "mm"
        assert params["distanceSourceOrigin"] == pytest.approx(410.66)
        assert np.all(np.diff(params["angles"]) == pytest.approx(0.5))  # 0.5 degree steps
        assert np.array_equal(read_image(f"{path}:CtDataLimited.sinogram"), sino)
        assert 1.0 < sino.max() < 3.0 and sino.mean() > 0.1  # attenuation line integrals
    v73 = folder / "ta_subsample73.mat"
    assert mat_is_v73(v73) and not mat_is_v73(folder / "tb_subsample.mat")
    assert read_image(v73, axes="WH").shape == (1, 560, 61)  # selfinv's Tomography layout: detectors x angles
