"""Configs on real-data layouts: patches of measurement sets, unknown noise, one measurement, normalisation, keys."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from selfinv.config import ConfigError, parse_config
from selfinv.data import MeasurementDataset, RandomPatches, write_image
from selfinv.engine import build_experiment, build_test_set
from selfinv.noise import Gaussian, Unknown
from selfinv.physics import MRI
from selfinv.training.holdout import HeldOutEntries

TINY_MODEL = {"backbone": {"name": "dncnn", "depth": 2, "width": 4, "batch_norm": False}, "wrapper": {"name": "none"}}


def frames(folder: Path, n=3, size=(48, 40), dtype=np.uint8, seed=0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    for i in range(n):
        v = g.random(size)
        write_image(folder / f"f{i}.tif", (v * (255 if dtype == np.uint8 else 4000) + (0 if dtype == np.uint8 else 300)).astype(dtype))
    return folder


def cfg(**sections):
    base = {"model": TINY_MODEL, "training": {"max_steps": 2, "batch_size": 2}}
    base.update(sections)
    return parse_config(base)


# ---------------------------------------------------------------------- patches of measurement sets
def test_measurement_frames_are_cut_into_new_random_patches_every_epoch(tmp_path):
    folder = frames(tmp_path / "raw", n=4)
    exp = build_experiment(cfg(data={"source": "measurements", "path": str(folder), "patch_size": 16},
                               noise={"name": "unknown"}, loss="noise2self"))
    assert isinstance(exp.train, RandomPatches) and exp.train[0].y.shape[-2:] == (16, 16)
    assert exp.cfg.data.patches_per_image == round(48 * 40 / 16**2)  # an epoch covers every frame once
    before = exp.train.positions.clone()
    exp.train.set_epoch(1)
    assert not torch.equal(before, exp.train.positions)
    assert len(exp.val) == 1 and exp.val[0].y.shape[-2:] == (48, 40)  # validation on whole held-out frames


def test_kspace_cannot_be_cut_into_patches(tmp_path):
    k = np.zeros((2, 1, 16, 16), np.complex64)
    k[..., ::2] = 1 + 1j
    np.save(tmp_path / "k.npy", k)
    base = {"source": "measurements", "path": str(tmp_path / "k.npy")}
    with pytest.raises(ConfigError, match="cannot be cut into patches"):
        build_experiment(cfg(data={**base, "patch_size": 8}, physics={"name": "mri"}, noise={"name": "gaussian", "sigma": 0.1}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = build_experiment(cfg(data=base, physics={"name": "mri"}, noise={"name": "gaussian", "sigma": 0.1}))
    assert exp.cfg.data.patch_size is None and exp.train[0].y.shape[-2:] == (16, 16)  # whole, and recorded so


# ---------------------------------------------------------------------- unknown noise
def test_unknown_noise_is_not_noiseless():
    c = parse_config({"noise": {"name": "unknown", "separable": False}})
    assert c.noise.name == "unknown" and c.noise.separable is False
    assert parse_config({"noise": None}).noise is None
    with pytest.raises(ConfigError, match="cannot simulate"):
        build_experiment(cfg(noise={"name": "unknown"}, loss="noise2self", data={"images": ["camera", "coins"]}))
    exp = build_experiment(cfg(noise={"name": "unknown"}, loss="noise2self",
                               data={"images": ["camera", "coins"], "true_noise": {"name": "gaussian", "sigma": 0.1}}))
    assert isinstance(exp.physics.noise, Unknown)  # simulated with the true noise, the losses see "unknown"
    assert float((exp.dataset.y - exp.dataset.x).std()) == pytest.approx(0.1, rel=0.1)


def test_losses_that_need_the_noise_refuse_unknown_noise_in_one_line():
    from selfinv.losses import SURE
    from selfinv.physics import Denoising

    with pytest.raises(ValueError, match="the noise is unknown") as e:
        SURE()(torch.rand(1, 1, 4, 4), Denoising(noise=Unknown()), lambda y, p: y)
    assert "\n" not in str(e.value)


def test_advisor_and_registry_agree_on_unknown_noise():
    """One source: a loss applies to unknown separable (coloured) noise on denoising exactly when its LossInfo
    says it tolerates it (and it needs nothing else: pairs, ground truth)."""
    from selfinv.advisor import advise
    from selfinv.losses import LOSSES
    from selfinv.physics import Denoising

    for separable, flag in ((True, "unknown_separable_noise"), (False, "unknown_coloured_noise")):
        advice = advise(Denoising(noise=Unknown(separable=separable)), pairs=True)
        for name in LOSSES:
            info = LOSSES[name].example().info
            # apart from the noise, denoising rules out only the operator-family and equivariance losses
            expected = getattr(info, flag) and not (info.needs_ground_truth or info.needs_operator_family or info.needs_transforms)
            assert advice.verdict(name).applicable == expected, (name, separable, advice.verdict(name))
    applicable = advise(Denoising(noise=Unknown())).applicable
    assert {"noise2void", "noise2self", "neighbor2neighbor", "unsure"} <= set(applicable)
    assert "sure" not in applicable and "r2r" not in applicable
    assert "noise2void" not in advise(Denoising(noise=None)).applicable  # noiseless: nothing to learn


# ---------------------------------------------------------------------- one measurement
def test_one_image_validates_on_a_band_of_it():
    exp = build_experiment(cfg(data={"images": ["camera"], "patch_size": 32}))
    train_names = {exp.dataset.names[i] for i in exp.train.indices.tolist()}
    val_names = {exp.dataset.names[i] for i in exp.val.indices.tolist()}
    assert all("[train band]" in n for n in train_names) and all("[validation band]" in n for n in val_names)
    assert len(exp.val) > 0 and len(exp.train) > 0
    zero = build_experiment(cfg(data={"images": ["camera", "coins"], "val_fraction": 0}))
    assert all("[validation band]" in zero.dataset.names[i] for i in zero.val.indices.tolist())


def test_one_kspace_measurement_validates_on_held_out_entries(tmp_path):
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(1, 1, 24, 24)
    mask[..., ::3] = 1
    mask[..., 10:14] = 1
    x = torch.randn(1, 1, 24, 24, generator=g, dtype=torch.complex64)
    op = MRI(mask, noise=Gaussian(0.05))
    MeasurementDataset(op(x, generator=g), op).save(tmp_path / "one.npz")
    exp = build_experiment(cfg(data={"source": "measurements", "path": str(tmp_path / "one.npz")},
                               physics={"name": "mri"}, noise={"name": "gaussian", "sigma": 0.05}, loss="sure",
                               model={"backbone": {"name": "unet", "depth": 1, "width": 4}}))
    assert isinstance(exp.val, HeldOutEntries) and len(exp.train) == 1
    assert exp.cfg.data.val_fraction == 0.25  # the default: one measurement cannot be split, entries are held out
    kept = exp.train.make_physics({k: v[:1] for k, v in exp.train.params.items()})
    held = exp.val.held_out
    assert float((kept.mask * held).sum()) == 0 and float(held.sum()) == round(0.2 * float(mask.sum()))


# ---------------------------------------------------------------------- normalisation
def test_sixteen_bit_images_get_a_robust_scale_recorded_in_the_config(tmp_path):
    folder = frames(tmp_path / "imgs", n=2, size=(40, 40), dtype=np.uint16)
    test = frames(tmp_path / "test", n=1, size=(40, 40), dtype=np.uint16, seed=5)
    exp = build_experiment(cfg(data={"source": "images", "path": str(folder), "test_path": str(test), "patch_size": 16},
                               noise={"name": "gaussian", "sigma": 0.05}))
    norm = exp.normalization
    assert exp.cfg.data.normalization.scale == pytest.approx(norm.scale)  # recorded, not "auto"
    assert 0.9 < float(exp.dataset.x.max()) < 1.2 and norm.scale < 5000  # not / 65535
    ts = build_test_set(exp.cfg)
    assert ts.normalization == norm  # the test images are in the training units
    eight = build_experiment(cfg(data={"source": "images", "path": str(frames(tmp_path / "e", n=2, size=(40, 40))),
                                       "patch_size": 16}))
    assert eight.normalization.scale == 255.0 and eight.normalization.offset == 0.0


def test_far_from_unit_values_warn(tmp_path):
    folder = frames(tmp_path / "imgs", n=2, size=(40, 40), dtype=np.uint16)
    with pytest.warns(UserWarning, match="far from the"):
        build_experiment(cfg(data={"source": "images", "path": str(folder), "patch_size": 16, "normalization": "range"},
                             noise={"name": "gaussian", "sigma": 0.05}))


# ---------------------------------------------------------------------- keys and sizes
def test_img_size_takes_an_int_and_data_key_reads_one_array(tmp_path):
    assert parse_config({"data": {"img_size": 64}}).data.img_size == [64, 64]
    imgs = np.random.default_rng(0).random((2, 1, 24, 24)).astype(np.float32)
    np.savez(tmp_path / "stack.npz", images=imgs, junk=np.zeros(3))
    exp = build_experiment(cfg(data={"source": "images", "path": str(tmp_path / "stack.npz"), "key": "images",
                                     "patch_size": 16, "normalization": "none"}))
    assert len(exp.dataset.x) == 2 * 4 and exp.normalization.is_identity
    with pytest.raises(ConfigError, match="holds 2 arrays"):
        build_experiment(cfg(data={"source": "images", "path": str(tmp_path / "stack.npz"), "patch_size": 16}))


def test_rgb_among_gray_images_names_the_file(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    write_image(tmp_path / "b.png", np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(ConfigError, match=r"b\.png"):
        build_experiment(cfg(data={"source": "images", "path": str(tmp_path), "patch_size": 16}))



def test_sinograms_with_their_own_angle_sets_train_from_a_measurement_set(tmp_path):
    """Limited-angle scans over different ranges, padded to one length (angle_mask), read from an .npz set."""
    from selfinv.physics import Tomography

    angles = torch.stack([torch.linspace(0, 90, 12), torch.linspace(30, 150, 12)]).double()
    valid = torch.ones(2, 12, dtype=torch.bool)
    valid[0, 9:] = False  # the first scan has 9 angles
    op = Tomography(angles, img_size=16, angle_mask=valid)
    y = op.A(torch.rand(2, 1, 16, 16))
    np.savez(tmp_path / "ct.npz", y=y.numpy(), angles=angles.numpy(), angle_mask=valid.numpy())
    exp = build_experiment(cfg(data={"source": "measurements", "path": str(tmp_path / "ct.npz"), "img_size": 16,
                                     "val_fraction": 0.5},
                               physics={"name": "tomography"}, noise={"name": "gaussian", "sigma": 0.01}, loss="sure",
                               model={"backbone": {"name": "unet", "depth": 1, "width": 4}}))
    assert exp.cfg.data.patch_size is None and exp.img_shape == (1, 16, 16)
    s = exp.train[0]
    phys = exp.train.make_physics({k: v[None] for k, v in s.params.items()})
    assert phys.angles.shape == (1, 12) and torch.equal(phys.angles[0], angles[s.index])
    assert bool((s.y[..., ~valid[s.index]] == 0).all())  # padded angles measure nothing
