"""Embedded photographs, random patches and tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfinv.data import (
    NAMES,
    TEST_NAMES,
    TRAIN_NAMES,
    RandomPatches,
    SimulatedDataset,
    center_crop,
    collate,
    crop,
    embedded_images,
    extract_tiles,
    merge_tiles,
    phantom,
    random_positions,
    tile_positions,
)
from selfinv.noise import Gaussian
from selfinv.physics import Demosaicing, Inpainting
from selfinv.physics.samplers import BernoulliMaskSampler, MRIMaskSampler


# ---------------------------------------------------------------------- embedded
def test_every_embedded_image_loads_offline_in_unit_range():
    gray = embedded_images()
    color = embedded_images(gray=False)
    assert len(gray) == len(color) == len(NAMES) == 18
    for name, g, c in zip(NAMES, gray, color, strict=True):
        assert g.dtype == np.float32 and g.ndim == 3 and g.shape[0] == 1, name
        assert c.shape == (3, *g.shape[1:]), name
        assert 0.0 <= g.min() and g.max() <= 1.0 and g.std() > 0.02, name


def test_embedded_split_is_fixed_and_disjoint():
    assert TEST_NAMES == ("camera", "coins", "moon", "astronaut")
    assert not set(TRAIN_NAMES) & set(TEST_NAMES) and set(TRAIN_NAMES) | set(TEST_NAMES) == set(NAMES)
    assert [a.shape for a in embedded_images(split="test")] == [(1, 512, 512), (1, 303, 384), (1, 512, 512), (1, 512, 512)]
    with pytest.raises(ValueError, match="unknown image"):
        embedded_images(names=["lena"])
    assert phantom(32).shape == (1, 32, 32)


# ---------------------------------------------------------------------- random patches
def test_random_positions_reproducible_in_bounds_and_aligned():
    pos = random_positions((10, 13), (4, 5), 500, torch.Generator().manual_seed(0))
    assert torch.equal(pos, random_positions((10, 13), (4, 5), 500, torch.Generator().manual_seed(0)))
    assert pos[:, 0].min() == 0 and pos[:, 0].max() == 6 and pos[:, 1].min() == 0 and pos[:, 1].max() == 8
    even = random_positions((10, 13), 4, 200, torch.Generator().manual_seed(1), align=2)
    assert bool((even % 2 == 0).all()) and even.max() <= 8
    sizes = torch.tensor([[4, 4], [9, 9]])
    per = random_positions(sizes, 4, generator=torch.Generator().manual_seed(0))
    assert per[0].tolist() == [0, 0]
    with pytest.raises(ValueError, match="larger than an image"):
        random_positions((3, 10), 4, 1)


def test_crop_matches_slicing():
    t = torch.randn(6, 2, 9, 11)
    pos = random_positions((9, 11), (3, 4), 6, torch.Generator().manual_seed(0))
    out = crop(t, pos[:, 0], pos[:, 1], (3, 4))
    for i, (r, c) in enumerate(pos.tolist()):
        assert torch.equal(out[i], t[i, :, r : r + 3, c : c + 4])
    z = torch.randn(2, 1, 5, 5, dtype=torch.complex64)
    assert torch.equal(crop(z, torch.tensor([1, 0]), torch.tensor([0, 2]), 3)[1], z[1, :, 0:3, 2:5])
    with pytest.raises(ValueError, match="leaves"):
        crop(t, torch.full((6,), 8), torch.zeros(6), 3)


def test_random_patches_new_crops_each_epoch_and_consistent_physics():
    x = torch.from_numpy(embedded_images(names=["brick"])[0])
    ds = SimulatedDataset([x, x.flip(-1)], BernoulliMaskSampler(64, p=0.5), noise=None, patch_size=64)
    rp = RandomPatches(ds, 16, patches_per_item=3, seed=0)
    assert len(rp) == 6
    first = rp.positions.clone()
    rp.set_epoch(1)
    assert not torch.equal(first, rp.positions)
    rp.set_epoch(0)
    assert torch.equal(first, rp.positions)
    batch = collate([rp[i] for i in range(len(rp))])
    physics = rp.make_physics(batch.params)
    assert batch.y.shape == (6, 1, 16, 16) and physics.batch_size == 6
    assert torch.equal(physics.A(batch.x), batch.y)  # the crop of y is the measurement of the crop of x
    assert rp.groups.tolist() == [0, 0, 0, 1, 1, 1]


def test_random_patches_shared_mask_becomes_per_crop_and_refusals():
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    mask = (torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    ds = SimulatedDataset(x, Inpainting(mask), noise=Gaussian(0.1))
    rp = RandomPatches(ds, 5, patches_per_item=2)
    batch = collate([rp[i] for i in range(4)])
    physics = rp.make_physics(batch.params)
    assert list(batch.params) == ["mask"] and physics.batch_size == 4
    assert bool((batch.y[physics.mask.expand_as(batch.y) == 0] == 0).all())
    mri = SimulatedDataset(x.to(torch.complex64), MRIMaskSampler(12, acceleration=2, center_fraction=0.25))
    with pytest.raises(ValueError, match="MRI.*patch_size"):
        RandomPatches(mri, 4)
    rgb = SimulatedDataset(torch.rand(1, 3, 12, 12), Demosaicing(), noise=None)
    bayer = RandomPatches(rgb, 4, patches_per_item=20)
    assert bool((bayer.positions % 2 == 0).all())
    s = bayer[3]
    assert torch.equal(Demosaicing().A(s.x[None])[0], s.y)


# ---------------------------------------------------------------------- tiles
@pytest.mark.parametrize("size,patch,overlap", [((13, 10), 4, 1), ((8, 8), 8, 0), ((9, 17), (5, 6), 3)])
def test_tiles_cover_and_merge_back(size, patch, overlap):
    img = torch.randn(2, *size)
    tiles, pos = extract_tiles(img, patch, overlap)
    assert pos == tile_positions(size, patch, overlap) and tiles.shape[0] == len(pos)
    assert torch.allclose(merge_tiles(tiles, pos, size), img, atol=1e-6)
    assert torch.equal(center_crop(img, (size[0] - 1, 3)), img[:, 0 : size[0] - 1, (size[1] - 3) // 2 : (size[1] - 3) // 2 + 3])
