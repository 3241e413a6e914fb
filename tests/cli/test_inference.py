"""reconstruct (shape, dtype and units kept; never overwrites; tiles) and evaluate (metrics beside the baseline)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from selfinv.data import SimulatedDataset, embedded_images, read_image, write_image
from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from tests.cli.common import assert_one_line_error, run


def noisy(shape=(40, 36), seed=0) -> np.ndarray:
    x = embedded_images(names=["camera"])[0][:, 100 : 100 + shape[0], 200 : 200 + shape[1]]
    return np.clip(x + 0.1 * np.random.default_rng(seed).standard_normal(x.shape), 0, 1).astype(np.float32)


@pytest.fixture
def inputs(tmp_path):
    y = noisy()
    write_image(tmp_path / "a.png", np.rint(y * 255).astype(np.uint8))
    write_image(tmp_path / "b.tif", y)
    return tmp_path / "a.png", tmp_path / "b.tif"


def test_reconstruct_keeps_shape_dtype_and_never_overwrites(trained, inputs, tmp_path):
    _, run_dir = trained
    png, tif = inputs
    out = tmp_path / "out"
    r = run("reconstruct", run_dir / "best.pt", png, tif, "-o", out, "--no-progress")
    assert r.exit_code == 0, r.stderr
    for src, unit in ((png, 255.0), (tif, 1.0)):
        a, ia = read_image(src, return_info=True)
        b, ib = read_image(out / src.name, return_info=True)
        assert b.shape == a.shape and ib.dtype == ia.dtype
        assert not np.array_equal(a, b)
        assert abs(b.mean() - a.mean()) < 0.1 * unit  # the input's units (8-bit values, floats in [0, 1])
    before = (out / png.name).read_bytes()
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", out), "already exists")
    assert (out / png.name).read_bytes() == before
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", png.parent), "is an input")


def test_reconstruct_tiles_large_images_like_the_whole_image(trained, inputs, tmp_path):
    _, run_dir = trained
    _, tif = inputs
    assert run("reconstruct", run_dir / "best.pt", tif, "-o", tmp_path / "whole", "--tile", "0").exit_code == 0
    r = run("reconstruct", run_dir / "best.pt", tif, "-o", tmp_path / "tiled", "--tile", "16", "--overlap", "8")
    assert r.exit_code == 0, r.stderr
    whole, tiled = read_image(tmp_path / "whole" / tif.name), read_image(tmp_path / "tiled" / tif.name)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)  # a 2-layer DnCNN: receptive field 2 <= overlap / 2


def test_evaluate_config_and_measurement_sets(trained, tmp_path):
    cfg, run_dir = trained
    r = run("evaluate", run_dir / "best.pt", cfg)
    assert r.exit_code == 0, r.stderr
    assert "no learning" in r.stdout and "PSNR" in r.stdout and "data range 1" in r.stdout
    r = run("evaluate", run_dir / "best.pt", cfg, "--json", "-o", tmp_path / "ev.json")
    res = json.loads(r.stdout)
    assert res["n_images"] == 2 and res["psnr"] > 0 and res["ssim"] is not None and res["baseline"]["psnr"] > 0
    assert json.loads((tmp_path / "ev.json").read_text()) == res
    ds = SimulatedDataset(embedded_images(names=["moon", "coins"]), Denoising(), noise=Gaussian(0.1), patch_size=24,
                          patches_per_image=2)
    ds.save(tmp_path / "m.npz")
    ds.save(tmp_path / "m.h5", include_x=False)
    res = json.loads(run("evaluate", run_dir / "best.pt", tmp_path / "m.npz", "--json").stdout)
    assert res["n_images"] == 4 and res["psnr"] is not None and len(res["per_image"]) == 4
    r = run("evaluate", run_dir / "best.pt", tmp_path / "m.h5")
    assert r.exit_code == 0 and "no ground truth" in r.stdout and "loss on the data" in r.stdout


def test_reconstruct_measurement_set(trained, tmp_path):
    _, run_dir = trained
    ds = SimulatedDataset(embedded_images(names=["moon"]), Denoising(), noise=Gaussian(0.1), patch_size=24, patches_per_image=3)
    ds.save(tmp_path / "m.npz")
    r = run("reconstruct", run_dir / "best.pt", tmp_path / "m.npz", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    x = np.load(tmp_path / "out" / "m.npy")
    assert x.shape == (3, 1, 24, 24) and x.dtype == np.float32


def test_reconstruct_inpainting_needs_the_mask_of_the_measurement(tmp_path):
    from tests.cli.common import TINY

    cfg = tmp_path / "inp.yaml"
    assert run("config", "init", "--task", "inpainting", "-o", cfg).exit_code == 0
    args = ["train", cfg, "--run-dir", tmp_path / "run", "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    assert run(*args).exit_code == 0
    x = noisy((32, 32))
    mask = (np.random.default_rng(1).random((1, 32, 32)) < 0.5).astype(np.float32)
    np.save(tmp_path / "y.npy", x * mask)
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "mask_small.npy", mask[:, :16, :16])
    ckpt = tmp_path / "run" / "last.pt"
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o1"), "--mask")
    assert_one_line_error(run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o2", "--mask",
                              tmp_path / "mask_small.npy"), "mask")
    r = run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o3", "--mask", tmp_path / "mask.npy")
    assert r.exit_code == 0, r.stderr
    assert np.load(tmp_path / "o3" / "y.npy").shape == (1, 32, 32)
    # tiled: the mask travels with the measurement through the tiles
    r = run("reconstruct", ckpt, tmp_path / "y.npy", "-o", tmp_path / "o4", "--mask", tmp_path / "mask.npy", "--tile", "16")
    assert r.exit_code == 0, r.stderr


# ---------------------------------------------------------------------- real files in, real files out (issue 11)
def test_reconstruct_dicom_in_dicom_out(trained, tmp_path):
    import pydicom

    from tests.data.test_readers import _dicom

    _, run_dir = trained
    stored = np.clip(np.rint(noisy() * 4095), 0, 4095).astype(np.uint16)[0]
    _dicom(tmp_path / "ct.dcm", stored, slope=1.0, intercept=-1024.0, bits=12, PatientName="Doe^Jane", PatientID="P-0042",
           StudyInstanceUID="1.2.3.4", SeriesInstanceUID="1.2.3.4.5", SeriesDescription="low dose", ImageType=["ORIGINAL", "PRIMARY", "AXIAL"])
    (tmp_path / "ct2.ima").write_bytes((tmp_path / "ct.dcm").read_bytes())  # Siemens' extension for DICOM
    out = tmp_path / "out"
    r = run("reconstruct", run_dir / "best.pt", tmp_path / "ct.dcm", tmp_path / "ct2.ima", "-o", out, "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ct.dcm", "ct2.dcm"]
    # the case: CT in Hounsfield units through a model of photographs in [0, 1] is not silent
    assert sum(line.startswith("warning: ct") for line in r.stderr_lines) == 2, r.stderr
    x, info = read_image(tmp_path / "ct.dcm", return_info=True)
    y, out_info = read_image(out / "ct.dcm", return_info=True)
    assert y.shape == x.shape and out_info.dtype == info.dtype and not np.array_equal(x, y)
    assert -1024 <= y.min() and y.max() <= 3071 and abs(y.mean() - x.mean()) < 0.1 * 4095  # Hounsfield units
    a, b = pydicom.dcmread(tmp_path / "ct.dcm"), pydicom.dcmread(out / "ct.dcm")
    assert (b.PatientName, b.PatientID, b.StudyInstanceUID) == (a.PatientName, a.PatientID, a.StudyInstanceUID)
    assert b.SeriesInstanceUID != a.SeriesInstanceUID and b.SOPInstanceUID != a.SOPInstanceUID
    assert b.SeriesDescription == "low dose (reconstructed by selfinv)" and b.ImageType[0] == "DERIVED"


def test_reconstruct_keeps_tiff_tags_and_reads_keys_inside_paths(trained, tmp_path):
    import scipy.io
    import tifffile

    _, run_dir = trained
    y = noisy()
    tifffile.imwrite(tmp_path / "m.tif", y[0], resolution=(50.0, 50.0), resolutionunit="CENTIMETER",
                     description="slide 3", photometric="minisblack")
    scipy.io.savemat(tmp_path / "s.mat", {"scan": {"img": y[0], "angles": np.arange(3.0)}})
    r = run("reconstruct", run_dir / "best.pt", tmp_path / "m.tif", f"{tmp_path}/s.mat:scan.img", "-o", tmp_path / "out",
            "--no-progress")
    assert r.exit_code == 0, r.stderr
    info = read_image(tmp_path / "out" / "m.tif", return_info=True)[1]
    assert info.tags["resolution"] == (50.0, 50.0) and info.tags["resolution_unit"] == "centimeter"
    assert info.tags["description"] == "slide 3"
    x = np.load(tmp_path / "out" / "s.npy")
    assert x.shape == (1, *y.shape[1:]) and abs(x.mean() - y.mean()) < 0.1
    assert "s.mat:scan.img -> " in r.stderr


def test_checkpoints_carry_training_statistics_and_reconstruct_warns_far_outside_them(trained, inputs, tmp_path):
    import torch

    from selfinv.engine.checkpoints import restore

    _, run_dir = trained
    png, tif = inputs
    stats = restore(run_dir / "best.pt").data_stats
    assert set(stats) == {"p1", "p50", "p99", "mean", "std"} and stats["p1"] < stats["p50"] < stats["p99"]
    # inputs like the training data: quiet
    r = run("reconstruct", run_dir / "best.pt", png, tif, "-o", tmp_path / "o1", "--no-progress")
    domain = [line for line in r.stderr_lines if "were clipped to it" not in line]  # (8-bit outputs clipped to [0, 255]: said)
    assert r.exit_code == 0 and not any(line.startswith(("warning:", "note: a.png", "note: b.tif")) for line in domain)
    # the case: a float file in other units (hundreds) given to a model trained on [0, 1]
    write_image(tmp_path / "hu.tif", noisy() * 172)
    r = run("reconstruct", run_dir / "best.pt", tmp_path / "hu.tif", "-o", tmp_path / "o2", "--no-progress")
    assert r.exit_code == 0, r.stderr
    warnings = [line for line in r.stderr_lines if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: hu.tif: its values lie far outside")
    # a checkpoint written before the statistics existed: no statistics, no warning
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    del ckpt["data_stats"]
    torch.save(ckpt, tmp_path / "old.pt")
    assert restore(tmp_path / "old.pt").data_stats is None
    r = run("reconstruct", tmp_path / "old.pt", tmp_path / "hu.tif", "-o", tmp_path / "o3", "--no-progress")
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_failed_reconstruct_leaves_no_output_folder(trained, inputs, tmp_path):
    _, run_dir = trained
    png, _ = inputs
    bad = tmp_path / "bad.png"
    bad.write_bytes(png.read_bytes()[:100])  # truncated: fails once the model is loaded
    out = tmp_path / "new" / "out"
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", bad, "-o", out), "bad.png")
    assert not (tmp_path / "new").exists()
    assert_one_line_error(run("reconstruct", tmp_path / "nothing.pt", png, "-o", out), "nothing.pt")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user made stays
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", bad, "-o", kept), "bad.png")
    assert kept.is_dir()
    # a folder given as an input: our words, before anything else
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", tmp_path / "kept", "-o", out),
                          "kept: is a folder, not a file")
    assert not (tmp_path / "new").exists()


def test_tile_must_be_larger_than_overlap(trained, inputs, tmp_path):
    _, run_dir = trained
    _, tif = inputs
    line = assert_one_line_error(run("reconstruct", run_dir / "best.pt", tif, "-o", tmp_path / "o", "--tile", "16",
                                     "--overlap", "16"), "--tile 16 must be larger than --overlap 16")
    assert "smaller --overlap" in line and not (tmp_path / "o").exists()
    # without --overlap, a small tile gets an overlap of half its side
    r = run("reconstruct", run_dir / "best.pt", tif, "-o", tmp_path / "o", "--tile", "16")
    assert r.exit_code == 0, r.stderr


def test_device_errors_in_our_words(trained, inputs, tmp_path):
    import torch

    from selfinv.engine.device import check_device

    _, run_dir = trained
    png, _ = inputs
    assert check_device("cpu") == torch.device("cpu")
    assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", tmp_path / "o", "--device", "gpu"),
                          "--device gpu: not a device name; use cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        line = assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", tmp_path / "o", "--device", "cuda"),
                                     "--device cuda: CUDA is not available on this machine", "use --device cpu")
        assert f"torch {torch.__version__}" in line
        assert_one_line_error(run("evaluate", run_dir / "best.pt", png, "--device", "cuda"), "CUDA is not available")
    else:
        n = torch.cuda.device_count()
        assert_one_line_error(run("reconstruct", run_dir / "best.pt", png, "-o", tmp_path / "o", "--device", f"cuda:{n}"),
                              f"--device cuda:{n}: this machine has {n} CUDA device")
    assert not (tmp_path / "o").exists()


DATA = os.environ.get("SELFINV_DATA")


@pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")
def test_real_ct_dicom_reconstructed_as_dicom(trained, tmp_path):
    import pydicom

    _, run_dir = trained
    src = Path(DATA) / "ct_dicom_slices" / "CT_small.dcm"
    r = run("reconstruct", run_dir / "best.pt", src, "-o", tmp_path / "out", "--no-progress")
    assert r.exit_code == 0, r.stderr
    x, info = read_image(src, return_info=True)
    y, out_info = read_image(tmp_path / "out" / "CT_small.dcm", return_info=True)
    assert y.shape == x.shape == (1, 128, 128) and out_info.dtype == info.dtype
    a, b = pydicom.dcmread(src), pydicom.dcmread(tmp_path / "out" / "CT_small.dcm")
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "PixelSpacing", "ImagePositionPatient",
                    "RescaleSlope", "RescaleIntercept", "BitsStored"):
        assert b.get(keyword) == a.get(keyword), keyword
    assert b.SeriesInstanceUID != a.SeriesInstanceUID and "reconstructed by selfinv" in b.SeriesDescription
