"""Measurement sets from the files users have: folders, globs, single files, keys, masks from zeros, auto scale."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from selfinv.data import MeasurementDataset, Normalization, write_image
from selfinv.data.sources import load_measurements, mask_from_zeros, split_key
from selfinv.physics import MRI, Inpainting, Tomography

DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")


def kspace(n=3, h=16, w=12, scale=3e5, seed=0):
    """Zero-filled single-coil k-space in raw scanner units: every other line, a fully sampled centre."""
    g = np.random.default_rng(seed)
    k = (g.standard_normal((n, 1, h, w)) + 1j * g.standard_normal((n, 1, h, w))).astype(np.complex64) * scale
    mask = np.zeros((n, 1, h, w), np.float32)
    mask[..., ::2] = 1
    mask[..., w // 2 - 1 : w // 2 + 1] = 1
    mask[1, ..., 1] = 1  # masks differ between measurements
    return k * mask, mask


def test_split_key_only_after_an_existing_file(tmp_path):
    f = tmp_path / "a.h5"
    f.write_bytes(b"")
    assert split_key(f"{f}:kspace") == (f, "kspace")
    assert split_key(str(tmp_path / "b.h5:x")) == (tmp_path / "b.h5:x", None)  # no such file: not a key
    with pytest.raises(ValueError, match="two keys"):
        split_key(f"{f}:kspace", "other")


def test_mask_from_zeros_is_any_channel_nonzero():
    y = torch.zeros(2, 3, 4, 5, dtype=torch.complex64)
    y[0, 1, 2, 3] = 1j
    y[1, :, 0, 0] = 2
    m = mask_from_zeros(y)
    assert m.shape == (2, 1, 4, 5) and m.sum() == 2 and m[0, 0, 2, 3] == 1 and m[1, 0, 0, 0] == 1


@pytest.mark.parametrize("layout", ["file", "folder", "glob", "key"])
def test_kspace_files_give_a_measurement_set_with_the_mask_of_their_zeros(tmp_path, layout):
    k, mask = kspace()
    if layout == "key":
        np.savez(tmp_path / "scan.npz", kspace=k, other=np.zeros(3))
        path = f"{tmp_path / 'scan.npz'}:kspace"
    elif layout == "file":
        np.save(tmp_path / "scan.npy", k)
        path = tmp_path / "scan.npy"
    else:
        for i in range(3):
            np.save(tmp_path / f"s{i}.npy", k[i])
        path = tmp_path if layout == "folder" else tmp_path / "s*.npy"
    with pytest.warns(UserWarning, match="zeros of the measurements"):
        ds = load_measurements(path, "mri")
    assert isinstance(ds, MeasurementDataset) and len(ds) == 3 and ds.y.is_complex()
    assert torch.equal(ds.params["mask"], torch.from_numpy(mask))  # per sample, exactly the acquired lines
    op = ds.make_physics(ds.params)
    assert isinstance(op, MRI)
    torch.testing.assert_close(op.A(op.A_adjoint(ds.y)), ds.y)  # y lies in the range of its own mask


def test_auto_normalization_brings_raw_kspace_to_unit_images(tmp_path):
    """Raw k-space of ~1e5 gives images of ~1e5 (the 5.5e23 loss of the issue): auto divides by the 99.5th
    percentile of the zero-filled image magnitude, recorded and exact (y / scale)."""
    k, mask = kspace(scale=3e5)
    np.save(tmp_path / "scan.npy", k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_measurements(tmp_path / "scan.npy", MRI(torch.from_numpy(mask)))
        raw = load_measurements(tmp_path / "scan.npy", MRI(torch.from_numpy(mask)), normalization="none")
    images = MRI(torch.from_numpy(mask)).A_adjoint(ds.y).abs()
    assert 0.9 < float(torch.quantile(images.flatten(), 0.995)) < 1.1
    assert raw.normalization.is_identity and ds.normalization.offset == 0
    torch.testing.assert_close(ds.y * ds.normalization.scale, raw.y, rtol=1e-5, atol=1e-2)
    # explicit normalisations are kept as given
    fixed = load_measurements(tmp_path / "scan.npy", MRI(torch.from_numpy(mask)), normalization=Normalization(10.0))
    assert fixed.normalization.scale == 10.0


def test_auto_normalization_keeps_eight_bit_division_and_tomography_uses_fbp(tmp_path):
    y8 = (np.random.default_rng(0).random((2, 1, 8, 8)) * 255).astype(np.uint8)
    for i in range(2):
        write_image(tmp_path / f"y{i}.png", y8[i])
    ds = load_measurements(tmp_path, "denoising")
    assert ds.normalization == Normalization(255.0)
    torch.testing.assert_close(ds.y, torch.from_numpy(y8.astype(np.float32) / 255))
    # a sinogram in raw units: the scale comes from the filtered back-projection, not from y
    op = Tomography(30, img_size=32)
    x = torch.zeros(1, 1, 32, 32)
    x[..., 8:24, 8:24] = 500.0
    np.save(tmp_path / "sino.npy", op.A(x)[0].numpy())
    sino = load_measurements(tmp_path / "sino.npy", op)
    assert 400 < sino.normalization.scale < 600  # the image's level, while y itself reaches ~1e4


def test_coils_are_not_taken_for_channels_of_a_single_coil_operator(tmp_path):
    """A BART file's coil axis (ImageInfo.channel_axis == "coil") is refused by the single-coil mri operator."""
    dims = [1, 8, 6, 4]  # read, phase, (1), coils
    data = (np.random.default_rng(0).standard_normal(int(np.prod(dims))) + 0j).astype(np.complex64)
    (tmp_path / "ksp.hdr").write_text("# Dimensions\n" + " ".join(map(str, dims)) + "\n")
    data.tofile(tmp_path / "ksp.cfl")
    with pytest.raises(ValueError, match="4 receive coils"):
        load_measurements(tmp_path / "ksp.cfl", "mri")


def test_a_saved_set_is_not_normalised_twice(tmp_path):
    k, mask = kspace()
    ds = MeasurementDataset(torch.from_numpy(k), MRI(torch.from_numpy(mask)), normalization=Normalization(7.0))
    ds.save(tmp_path / "set.npz")
    back = load_measurements(tmp_path / "set.npz", "mri")
    assert back.normalization == Normalization(7.0) and torch.equal(back.y, ds.y)


def test_inpainting_images_with_missing_pixels_as_zeros(tmp_path):
    y = np.random.default_rng(1).random((1, 10, 10)).astype(np.float32) + 0.1
    y[0, ::3] = 0
    np.save(tmp_path / "holes.npy", y)
    with pytest.warns(UserWarning, match="zeros"):
        ds = load_measurements(tmp_path / "holes.npy", Inpainting)
    assert float(ds.make_physics(ds.params).mask.mean()) == pytest.approx(1 - 4 / 10)


@real
def test_real_brain_kspace_is_refused_as_single_coil():
    from pathlib import Path

    with pytest.raises(ValueError, match="8 receive coils"):
        load_measurements(Path(DATA) / "mri_bart_brain_kspace" / "ksp.cfl", "mri")


def test_a_saved_set_is_brought_into_a_given_normalisation(tmp_path):
    """A model trained on raw k-space (auto scale s) evaluates a saved set in its own units: y_raw / s."""
    k, mask = kspace()
    raw = MeasurementDataset(torch.from_numpy(k), MRI(torch.from_numpy(mask)))
    raw.save(tmp_path / "set.npz")
    back = load_measurements(tmp_path / "set.npz", "mri", normalization=Normalization(4.0))
    assert back.normalization == Normalization(4.0)
    torch.testing.assert_close(back.y, raw.y / 4.0)
