"""Datasets: simulated once, seeds, resampling, per-sample operators collated into one physics, files, splits."""

from __future__ import annotations

import json

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from selfinv.data import (
    MeasurementDataset,
    Normalization,
    Sample,
    SimulatedDataset,
    collate,
    embedded_images,
    per_sample_params,
    split,
    with_params,
)
from selfinv.noise import Gaussian, Poisson
from selfinv.physics import MRI, Blur, Denoising, Inpainting, Tomography
from selfinv.physics.blur import BlurKernelSampler
from selfinv.physics.samplers import BernoulliMaskSampler, MRIMaskSampler


@pytest.fixture(scope="module")
def images():
    return [torch.from_numpy(a) for a in embedded_images(names=["brick", "grass", "text"])]


def inpainting_set(images, seed=0, **kw):
    kw.setdefault("patch_size", 16)
    kw.setdefault("patches_per_image", 3)
    return SimulatedDataset(images, BernoulliMaskSampler(16, p=0.5), noise=Gaussian(0.1), seed=seed, **kw)


def all_y(dataset) -> torch.Tensor:
    return torch.stack([dataset[i].y for i in range(len(dataset))])


# ---------------------------------------------------------------------- simulated once
def test_simulated_once_two_passes_identical(images):
    ds = inpainting_set(images)
    loader = DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(0))
    passes = []
    for _ in range(2):
        ys = {}
        for batch in loader:
            for i, y in zip(batch.index.tolist(), batch.y, strict=True):
                ys[i] = y
        passes.append(torch.stack([ys[i] for i in range(len(ds))]))
    assert torch.equal(passes[0], passes[1])
    assert torch.equal(passes[0], ds.y)
    ds.set_epoch(5)  # without the resampling option epochs change nothing
    assert torch.equal(all_y(ds), ds.y)


def test_seeds_reproduce_and_differ(images):
    a, b, c = inpainting_set(images, seed=0), inpainting_set(images, seed=0), inpainting_set(images, seed=1)
    assert torch.equal(a.y, b.y) and torch.equal(a.params["mask"], b.params["mask"]) and torch.equal(a.x, b.x)
    assert not torch.equal(a.y, c.y)
    assert not torch.equal(a.params["mask"], c.params["mask"])
    # noise and operators are per sample: another image list leaves the shared samples unchanged
    d = inpainting_set(images[:2], seed=0)
    assert torch.equal(d.y, a.y[: len(d)]) and torch.equal(d.params["mask"], a.params["mask"][: len(d)])


def test_noise_matches_the_model(images):
    ds = SimulatedDataset(images, Denoising(), noise=Gaussian(0.1), seed=3, patch_size=32, patches_per_image=8)
    r = ds.y - ds.x
    assert abs(float(r.std()) - 0.1) < 4 * 0.1 / (2 * r.numel()) ** 0.5 + 1e-3
    assert abs(float(r.mean())) < 4 * 0.1 / r.numel() ** 0.5



@pytest.mark.parametrize("physics", ["fixed", "sampler"])
def test_assumed_noise_differs_from_the_simulating_noise(images, physics):
    op = Denoising() if physics == "fixed" else BernoulliMaskSampler(32, p=0.5)
    kw = dict(seed=3, patch_size=32, patches_per_image=8, resample_noise_each_epoch=True)
    ds = SimulatedDataset(images, op, noise=Gaussian(0.1), assumed_noise=Gaussian(0.05), **kw)
    plain = SimulatedDataset(images, op, noise=Gaussian(0.1), **kw)
    assert torch.equal(ds.y, plain.y)  # simulated with the true model ...
    batch = collate([ds[i] for i in range(4)])
    assert float(ds.make_physics(batch.params).noise.sigma) == 0.05  # ... the losses see the assumed one
    ds.set_epoch(1)
    plain.set_epoch(1)
    assert torch.equal(all_y(ds), all_y(plain))  # resampling keeps the true model
    with pytest.raises(ValueError, match="shared"):
        SimulatedDataset(images, Denoising(), noise=Gaussian(0.1), assumed_noise=Gaussian(torch.tensor([0.1, 0.2])))

def test_resample_noise_each_epoch(images):
    ds = inpainting_set(images, resample_noise_each_epoch=True, pairs=True)
    fixed = inpainting_set(images, pairs=True)
    e0 = all_y(ds)
    assert torch.equal(e0, fixed.y)  # epoch 0 is the stored draw
    ds.set_epoch(1)
    e1 = all_y(ds)
    assert not torch.equal(e0, e1)
    assert torch.equal(e1, all_y(ds))  # an epoch is reproducible
    assert not torch.equal(torch.stack([ds[i].y2 for i in range(len(ds))]), e1)
    mask = ds.params["mask"]
    assert bool((e1[mask.expand_as(e1) == 0] == 0).all())  # the operators did not change
    ds.set_epoch(0)
    assert torch.equal(all_y(ds), e0)


def test_pairs_are_independent_measurements_through_the_same_operator(images):
    ds = SimulatedDataset(images, BernoulliMaskSampler(32, p=0.5), noise=Gaussian(0.2), patch_size=32, patches_per_image=4, pairs=True)
    m = ds.params["mask"].expand_as(ds.y) > 0
    assert bool((ds.y2[~m] == 0).all())
    d = (ds.y - ds.y2)[m]
    assert abs(float(d.var()) - 2 * 0.2**2) < 0.01  # var(y - y2) = 2 sigma^2
    assert ds[0].y2 is not None and inpainting_set(images)[0].y2 is None


# ---------------------------------------------------------------------- per-sample operators
def test_sampler_masks_are_stored_and_collated_into_one_batched_physics(images):
    ds = SimulatedDataset(images, BernoulliMaskSampler(16, p=0.5), noise=None, seed=0, patch_size=16, patches_per_image=4)
    assert ds.params["mask"].shape == (12, 1, 16, 16)
    assert len({m.sum().item() for m in ds.params["mask"]}) > 1  # one mask per sample
    loader = DataLoader(ds, batch_size=5, collate_fn=collate)
    batch = next(iter(loader))
    physics = ds.make_physics(batch.params)
    assert physics.batch_size == 5 == batch.y.shape[0]
    assert torch.equal(physics.A(batch.x), batch.y)  # noiseless: y = A_i x_i for every sample
    assert torch.equal(physics.mask, ds.params["mask"][:5])
    # the template is left alone, and parameters are checked by name
    assert ds.physics_template.batch_size is None
    with pytest.raises(ValueError, match="expected parameters"):
        ds.make_physics({})


def test_mri_masks_and_complex_images(images):
    ds = SimulatedDataset(images, MRIMaskSampler(16, acceleration=4, center_fraction=0.125), noise=Gaussian(0.01), patch_size=16)
    assert ds.x.dtype == torch.complex64 and ds.y.dtype == torch.complex64
    batch = collate([ds[i] for i in range(3)])
    physics = ds.make_physics(batch.params)
    assert physics.batch_size == 3 and isinstance(physics, MRI)
    r = (batch.y - physics.A(batch.x))[physics.mask.expand_as(batch.y) > 0]
    assert 0.005 < float(r.real.std()) < 0.02


def test_blur_kernels_and_per_sample_noise_levels(images):
    ds = SimulatedDataset(images, BlurKernelSampler("gaussian", size=7), noise=Gaussian(0.01), patch_size=16)
    assert ds.params["kernel"].shape == (3, 1, 7, 7)
    assert isinstance(ds.make_physics(collate([ds[0], ds[1]]).params), Blur)

    def factory(batch_size, generator):  # an operator family whose noise level varies per sample
        sigma = 0.05 + 0.2 * torch.rand(batch_size, generator=generator, dtype=torch.float64)
        return Denoising(noise=Gaussian(sigma))

    ds = SimulatedDataset(images, factory, patch_size=16, patches_per_image=2)
    assert list(ds.params) == ["noise.sigma"] and ds.params["noise.sigma"].shape == (6,)
    batch = collate([ds[i] for i in (4, 1)])
    assert torch.equal(ds.make_physics(batch.params).noise.sigma, ds.params["noise.sigma"][[4, 1]])


def test_fixed_operators_shared_or_per_sample(images):
    shared = SimulatedDataset(images, Tomography(angles=8, img_size=16), noise=Gaussian(0.01), patch_size=16)
    assert shared.params == {} and shared.y.shape == (3, 1, 16, 8)
    assert shared.make_physics(collate([shared[0], shared[1]]).params).batch_size is None
    masks = (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    per = SimulatedDataset(images, Inpainting(masks), patch_size=16)
    assert torch.equal(per.params["mask"], masks) and torch.equal(per.y, masks * per.x)
    with pytest.raises(ValueError, match="for 3 samples but there are 6"):
        SimulatedDataset(images, Inpainting(masks), patch_size=16, patches_per_image=2)
    # per-sample noise levels of a fixed operator are stored, and dropped when noise= replaces them
    sigmas = Denoising(noise=Gaussian(torch.tensor([0.1, 0.2, 0.3])))
    assert torch.equal(SimulatedDataset(images, sigmas, patch_size=16).params["noise.sigma"], torch.tensor([0.1, 0.2, 0.3]))
    quiet = SimulatedDataset(images, sigmas, noise=Gaussian(0.0), patch_size=16)
    assert quiet.params == {} and torch.equal(quiet.y, quiet.x)


def test_with_params_and_per_sample_params_on_a_composition():
    a = Inpainting(torch.ones(4, 1, 3, 3)) @ Blur(torch.ones(4, 1, 2, 2) / 4)
    params = per_sample_params(a)
    assert sorted(params) == ["ops.0.mask", "ops.1.kernel"]
    b = with_params(a, {k: v[:2] for k, v in params.items()})
    assert b.batch_size == 2 and a.batch_size == 4
    with pytest.raises(ValueError, match="no per-sample parameter named 'kernel'"):
        with_params(a, {"kernel": torch.ones(1, 1, 2, 2)})


# ---------------------------------------------------------------------- real measurements
def _measurements(n=5, size=8):
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(n, 1, size, size, generator=g) > 0.4).float()
    y = mask * torch.rand(n, 1, size, size, generator=g)
    return y.numpy(), mask.numpy()


@pytest.mark.parametrize("ext", ["npz", "h5"])
def test_measurement_dataset_from_a_file_written_by_hand(tmp_path, ext):
    y, mask = _measurements()
    path = tmp_path / f"m.{ext}"
    if ext == "npz":
        np.savez(path, y=y, mask=mask)
    else:
        with h5py.File(path, "w") as f:
            f["y"], f["mask"] = y, mask
    ds = MeasurementDataset.load(path, physics="inpainting", noise=Gaussian(0.05))
    assert len(ds) == 5 and ds[0].x is None and torch.equal(ds.y, torch.from_numpy(y))
    batch = collate([ds[i] for i in range(4)])
    physics = ds.make_physics(batch.params)
    assert isinstance(physics, Inpainting) and physics.batch_size == 4 and float(physics.noise.sigma) == 0.05
    assert torch.equal(physics.mask, torch.from_numpy(mask[:4]))
    # the same file into an operator instance (any operator, composed ones too)
    ds2 = MeasurementDataset.load(path, physics=Inpainting(torch.ones(1, 1, 8, 8), noise=Gaussian(0.05)))
    assert torch.equal(ds2.params["mask"], ds.params["mask"])
    with pytest.raises(ValueError, match="no operator name; pass physics="):
        MeasurementDataset.load(path)


@pytest.mark.parametrize("ext", ["npz", "h5"])
def test_measurement_set_save_load_round_trip(tmp_path, images, ext):
    sim = inpainting_set(images, pairs=True)
    sim.save(tmp_path / f"s.{ext}")
    with pytest.raises(ValueError, match="already exists"):
        sim.save(tmp_path / f"s.{ext}")
    back = MeasurementDataset.load(tmp_path / f"s.{ext}")  # operator and noise from the meta data
    assert torch.equal(back.y, sim.y) and torch.equal(back.x, sim.x) and torch.equal(back.y2, sim.y2)
    assert torch.equal(back.params["mask"], sim.params["mask"]) and back.names == sim.names
    assert isinstance(back.physics_template, Inpainting) and float(back.physics_template.noise.sigma) == 0.1
    sim.save(tmp_path / f"nox.{ext}", include_x=False)
    assert MeasurementDataset.load(tmp_path / f"nox.{ext}").x is None


def test_measurement_dataset_from_a_folder(tmp_path):
    y, mask = _measurements(n=3)
    for sub in ("y", "mask"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        iio.imwrite(tmp_path / "y" / f"s{i}.png", np.rint(y[i, 0] * 255).astype(np.uint8))
        iio.imwrite(tmp_path / "mask" / f"s{i}.png", (mask[i, 0] * 255).astype(np.uint8))  # a 0/255 mask
    (tmp_path / "meta.json").write_text(json.dumps({"operator": "inpainting", "noise": {"name": "gaussian", "sigma": 0.02}}))
    ds = MeasurementDataset.from_folder(tmp_path)
    assert ds.normalization == Normalization(scale=255.0) and ds.names == ["s0", "s1", "s2"]
    assert torch.allclose(ds.y, torch.from_numpy(y), atol=0.5 / 255 + 1e-6)
    assert torch.equal(ds.params["mask"], torch.from_numpy(mask))  # 0/255 read as 0/1
    assert float(ds.physics_template.noise.sigma) == 0.02
    (tmp_path / "mask" / "s2.png").unlink()
    with pytest.raises(ValueError, match="mask/ has no file for s2"):
        MeasurementDataset.from_folder(tmp_path)


def test_measurement_dataset_errors():
    y, mask = _measurements()
    with pytest.raises(ValueError, match="offset"):
        MeasurementDataset(y, Inpainting(torch.from_numpy(mask)), normalization=Normalization(1.0, 0.5))
    with pytest.raises(ValueError, match="for 5 samples but there are 4"):
        MeasurementDataset(y[:4], Inpainting(torch.from_numpy(mask)))
    bad = y.copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="item 1 contains NaN"):
        MeasurementDataset(bad)
    with pytest.raises(ValueError, match="different sizes"):
        MeasurementDataset([np.zeros((1, 4, 4)), np.zeros((1, 4, 5))], names=["a.png", "b.png"])
    ds = MeasurementDataset(y, Denoising(noise=Poisson(0.1)), normalization=Normalization(2.0))
    assert torch.allclose(ds.y, torch.from_numpy(y) / 2) and ds.make_physics({}).noise.gain == 0.1


# ---------------------------------------------------------------------- shapes, normalisation, splits
def test_mixed_sizes_without_patches_raise_naming_files(tmp_path):
    iio.imwrite(tmp_path / "small.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(tmp_path / "wide.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(ValueError, match=r"1x8x8: small.png; 1x8x12: wide.png.*patch_size"):
        SimulatedDataset(tmp_path, Denoising(), noise=Gaussian(0.1))
    ds = SimulatedDataset(tmp_path, Denoising(), noise=Gaussian(0.1), patch_size=8, patches_per_image=2)
    assert len(ds) == 4 and ds.names[0].startswith("small.png@")
    with pytest.raises(ValueError, match="small.png is \\(8, 8\\) pixels, smaller than the 10x10"):
        SimulatedDataset(tmp_path, Denoising(), patch_size=10)


def test_normalisation_from_files_and_round_trip(tmp_path):
    img = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    iio.imwrite(tmp_path / "a.png", img)
    ds = SimulatedDataset(tmp_path, Denoising(), noise=None)
    assert ds.normalization == Normalization.from_range(0, 255)
    assert float(ds.x.max()) == pytest.approx(252 / 255)
    assert torch.allclose(ds.normalization.denormalize(ds.x[0, 0]), torch.from_numpy(img).float(), atol=1e-4)
    again = Normalization.from_dict(json.loads(json.dumps(ds.normalization.to_dict())))
    assert again == ds.normalization
    explicit = SimulatedDataset(tmp_path, Denoising(), normalization=Normalization.from_range(-255, 255))
    assert float(explicit.x.min()) == 0.5
    with pytest.raises(ValueError, match="scale must be > 0"):
        Normalization(0.0)


def test_split_is_deterministic_disjoint_and_keeps_patches_together(images):
    ds = MeasurementDataset(torch.zeros(20, 1, 4, 4))
    tr, va = split(ds, 0.25, seed=3)
    tr2, va2 = split(ds, 0.25, seed=3)
    assert tr.indices.tolist() == tr2.indices.tolist() and va.indices.tolist() == va2.indices.tolist()
    assert len(va) == 5 and not set(tr.indices.tolist()) & set(va.indices.tolist())
    assert sorted(tr.indices.tolist() + va.indices.tolist()) == list(range(20))
    assert split(ds, 0.25, seed=4)[1].indices.tolist() != va.indices.tolist()
    assert va[0].index == int(va.indices[0])  # items keep their index in the parent
    patches = inpainting_set(images, patches_per_image=4)
    tr, va = split(patches, 0.34, seed=0)
    assert not set(patches.groups[tr.indices].tolist()) & set(patches.groups[va.indices].tolist())
    assert len(va) == 4 and isinstance(va.make_physics(collate([va[0], va[1]]).params), Inpainting)
    with pytest.raises(ValueError, match="val_fraction"):
        split(ds, 1.0)


def test_collate_errors():
    a = Sample(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), None, {}, 0)
    b = Sample(torch.zeros(1, 2, 2), None, None, {}, 1)
    with pytest.raises(ValueError, match="x is missing for samples \\[1\\]"):
        collate([a, b])
    c = Sample(torch.zeros(1, 2, 3), None, None, {}, 2)
    with pytest.raises(ValueError, match="different shapes"):
        collate([b, c])
    batch = collate([b, b]).to("cpu")
    assert batch.y.shape == (2, 1, 2, 2) and batch.x is None and batch.params == {}
