"""The HTC2022 reader (selfinv.data.htc2022): v5 and v7.3 round trips, errors, and the real sinograms (SELFINV_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from selfinv.data.htc2022 import (
    HTC2022_IMG_SIZE,
    htc2022_config,
    htc2022_measurement,
    htc2022_operator,
    is_htc2022,
    read_htc2022,
)
from selfinv.physics import FanBeamTomography
from tests.data.test_io_matlab import write_mat73

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")


def scan(n_angles: int = 5, n_det: int = 12, struct: str = "CtDataLimited") -> dict:
    """An HTC2022-like variable: the real file's distances and a small detector, angles in 0.5 degree steps."""
    rng = np.random.default_rng(0)
    params = {
        "angles": 30.0 + 0.5 * np.arange(n_angles), "distanceSourceOrigin": 410.66, "distanceSourceDetector": 553.74,
        "distanceUnit": "mm", "geometricMagnification": 553.74 / 410.66, "numDetectorsPost": float(n_det),
        "pixelSizePost": 0.2, "effectivePixelSizePost": 0.2 * 410.66 / 553.74, "geometryType": "Cone",
    }
    sino = rng.random((n_angles, n_det))
    sino[:, :2] = sino[:, -2:] = 0.0  # air at the detector's edges: the object inside the fan
    return {struct: {"type": "2d", "sinogram": sino, "parameters": params}}


def check(sino, geometry, v):
    ref = next(iter(v.values()))
    np.testing.assert_array_equal(sino, ref["sinogram"])
    assert sino.dtype == np.float64 and sino.flags.c_contiguous
    np.testing.assert_array_equal(geometry["angles"], ref["parameters"]["angles"])
    assert geometry["n_detectors"] == 12 and isinstance(geometry["n_detectors"], int)
    assert geometry["source_distance"] == 410.66 and geometry["detector_distance"] == 553.74
    assert geometry["detector_spacing"] == 0.2 and geometry["img_size"] == HTC2022_IMG_SIZE == 512
    assert geometry["pixel_size"] == pytest.approx(0.1483223173, rel=1e-9)  # the file's effectivePixelSizePost


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_round_trip(tmp_path, version):
    v = scan()
    path = tmp_path / f"scan_{version}.mat"
    if version == "v5":
        scipy.io.savemat(path, v)
    else:
        write_mat73(path, v)  # HDF5 holds the sinogram transposed, detectors x angles, as MATLAB writes it
    sino, geometry = read_htc2022(path)
    check(sino, geometry, v)
    op = FanBeamTomography(**geometry)
    assert op.img_size == 512 and op.n_detectors == 12 and op.n_angles == 5
    y, op64 = htc2022_measurement(path, img_size=64)
    assert tuple(y.shape) == (1, 1, 12, 5) and torch.equal(y[0, 0], torch.from_numpy(sino.T))
    assert op64.pixel_size == pytest.approx(geometry["pixel_size"] * 8) and op64.A_adjoint(y).shape == (1, 1, 64, 64)
    assert is_htc2022(path) and not is_htc2022(tmp_path / "missing.mat")


def test_full_struct_transposed_sinogram_and_the_operator_factory(tmp_path):
    v = scan(struct="CtDataFull")
    v["CtDataFull"]["sinogram"] = v["CtDataFull"]["sinogram"].T  # stored detectors x angles
    scipy.io.savemat(tmp_path / "full.mat", v)
    sino, geometry = read_htc2022(tmp_path / "full.mat")
    assert sino.shape == (5, 12)
    np.testing.assert_array_equal(sino, v["CtDataFull"]["sinogram"].T)
    op = htc2022_operator(geometry, noise=None)
    assert op.pixel_size == geometry["pixel_size"] and op.img_size == 512


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s["parameters"].pop("distanceSourceOrigin"), "no field 'distanceSourceOrigin'"),
        (lambda s: s["parameters"].update(pixelSizePost=-0.2), "pixelSizePost must be a positive"),
        (lambda s: s["parameters"].update(distanceSourceDetector=400.0), "must exceed"),
        (lambda s: s["parameters"].update(numDetectorsPost=12.5), "integer"),
        (lambda s: s["parameters"].update(angles=np.array([0.0, np.nan, 1.0, 2.0, 3.0])), "angles"),
        (lambda s: s.update(sinogram=np.zeros((5, 11))), r"shape \(5, 11\), expected \(5, 12\)"),
        (lambda s: s["sinogram"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda s: s["sinogram"].__setitem__((slice(None), slice(-2, None)), 0.5), "outside the fan of parameters"),
        (lambda s: s.update(sinogram="abc"), "not a real numeric array"),
        (lambda s: s.pop("parameters"), "not an HTC2022 scan"),
    ],
)
def test_errors_are_one_line_naming_the_file(tmp_path, edit, match):
    v = scan()
    edit(v["CtDataLimited"])
    scipy.io.savemat(tmp_path / "bad.mat", v)
    with pytest.raises(ValueError, match=match) as err:
        read_htc2022(tmp_path / "bad.mat")
    assert str(err.value).startswith("bad.mat:") and "\n" not in str(err.value)
    assert not is_htc2022(tmp_path / "bad.mat")


# ---------------------------------------------------------------------- the real sinograms
@real
@pytest.mark.parametrize("name, min_corr, min_ratio", [("alexdenker_examples_90/tb_subsample_90.mat", 0.94, 20.0),
                                                      ("alexdenker_examples_30/solid_disc_subsample73.mat", 0.88, 10.0)])
def test_real_scan_fbp_is_the_disc(name, min_corr, min_ratio):
    """The acrylic disc (70 mm) of real limited-angle scans on the challenge's 512 x 512 grid: 90 degrees (181
    views, v5) and 30 degrees (61 views, v7.3). Measured (tb 90 / solid disc 30): FBP mean inside 30 mm 8.2e-3 /
    5.3e-3 per mm, mean outside 37 mm 1.7e-4 / 2.7e-4 (the limited-angle streaks average out; |FBP| there is 4.0e-3
    / 3.2e-3), and A(FBP) correlates with the sinogram at 0.961 / 0.916."""
    path = Path(DATA) / "ct_htc2022_sinograms" / name
    y, op = htc2022_measurement(path)
    assert op.n_detectors == 560 and op.img_size == 512 and tuple(y.shape) == (1, 1, 560, op.n_angles)
    x = op.fbp(y)
    i = torch.arange(512, dtype=torch.float64) - 255.5
    radius = torch.sqrt(i[:, None] ** 2 + i[None, :] ** 2) * op.pixel_size  # mm
    inside, outside = float(x[0, 0][radius < 30].mean()), float(x[0, 0][radius > 37].mean())
    assert 2e-3 < inside < 2e-2 and inside > min_ratio * abs(outside)
    ax = op.A(x)
    assert float(torch.corrcoef(torch.stack([ax.flatten(), y.flatten()]))[0, 1]) > min_corr


@real
def test_real_disc_edge_fits_the_geometry():
    """The disc's outer edge in the sinogram (where it crosses 10 % of its maximum, to a fraction of a detector
    pixel) traces the tangent rays of one circle: fitted with the operator's rays (centre, radius, detector
    offset), 34.76 mm radius and a 0.03 mm rms misfit; with the rotation reversed (the other handedness) 0.10 mm."""
    least_squares = pytest.importorskip("scipy.optimize").least_squares
    sino, g = read_htc2022(Path(DATA) / "ct_htc2022_sinograms" / "alexdenker_examples_90" / "tb_subsample_90.mat")
    thr = 0.1 * sino.max()
    edges = []
    for row in sino:
        idx = np.nonzero(row > thr)[0]
        a, b = idx[0], idx[-1]
        edges.append((a - 1 + (thr - row[a - 1]) / (row[a] - row[a - 1]), b + (row[b] - thr) / (row[b] - row[b + 1])))
    k = np.concatenate(np.array(edges).T)
    beta = np.deg2rad(np.concatenate([g["angles"], g["angles"]]))
    sod, sdd, du = g["source_distance"], g["detector_distance"], g["detector_spacing"]

    def misfit(q, sign):
        cx, cy, r0, offset = q
        w = np.stack([np.sin(sign * beta), -np.cos(sign * beta)], -1)
        v = np.stack([np.cos(sign * beta), np.sin(sign * beta)], -1)
        src = sod * w
        ray = -sdd * w + ((k - (g["n_detectors"] - 1) / 2) * du + offset)[:, None] * v
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        rel = np.array([cx, cy]) - src
        return np.abs(rel[:, 0] * ray[:, 1] - rel[:, 1] * ray[:, 0]) - r0

    def fit(sign):
        best = min((least_squares(misfit, [cx, cy, 35.0, 0.0], args=(sign,)) for cx in (-5, 5) for cy in (-5, 5)),
                   key=lambda s: s.cost)
        return float(np.sqrt(np.mean(best.fun**2))), best.x

    rms, (cx, cy, r0, offset) = fit(1)
    assert rms < 0.05 and 34.5 < r0 < 35.0 and abs(offset) < 0.2 and np.hypot(cx, cy) < 2.0
    assert fit(-1)[0] > 2 * rms


def test_config_trains_on_the_file(tmp_path):
    """htc2022_config gives data and physics sections that the measurement path of the engine reads: the
    sinogram detectors x angles, the operator of the file's geometry."""
    from selfinv.config import Config
    from selfinv.engine.measurements import config_measurements

    v = scan(n_angles=6, n_det=40)
    write_mat73(tmp_path / "scan.mat", v)
    sections = htc2022_config(tmp_path / "scan.mat", img_size=32)
    assert sections["data"]["key"] == "CtDataLimited.sinogram" and sections["physics"]["name"] == "fanbeam_tomography"
    cfg = Config.model_validate({**sections, "noise": {"name": "gaussian", "sigma": 0.01}})
    m = config_measurements(cfg, cfg.data.path, None, "data.path")
    assert m.x_shape == (1, 32, 32) and tuple(m.dataset.y.shape) == (1, 1, 40, 6)
    y, op = htc2022_measurement(tmp_path / "scan.mat", img_size=32)
    assert torch.allclose(m.dataset.y.double() * m.dataset.normalization.scale, y.to(m.dataset.y.dtype).double(), rtol=1e-6)
    assert torch.equal(m.physics.angles, op.angles) and m.physics.pixel_size == pytest.approx(op.pixel_size)
