"""The sky images of selfinv.data.sky: crescents with the parameters they promise, a Hubble Deep Field split that
never shares a pixel between training and test, and the names configs use."""

from __future__ import annotations

import numpy as np
import pytest

from selfinv.data.sky import CRESCENT_RANGES, SKY_SETS, black_hole_images, hubble_images, sky_set


def test_crescents_are_reproducible_rings_of_the_promised_size():
    a, b, c = black_hole_images(8, 64, seed=3), black_hole_images(8, 64, seed=3), black_hole_images(8, 64, seed=4)
    assert a.shape == (8, 1, 64, 64) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.allclose(a.max(axis=(1, 2, 3)), 1.0) and a.min() >= 0
    yy, xx = np.mgrid[:64, :64]
    lo, hi = CRESCENT_RANGES["radius"]
    off = max(abs(v) for v in CRESCENT_RANGES["offset"])
    for img in a[:, 0]:
        bright = img > 0.5 * img.max()  # the ring's crest: distance from the image centre ≈ its radius
        r = np.hypot(yy[bright] - 31.5, xx[bright] - 31.5) / 64
        assert lo - off - 0.06 <= np.median(r) <= hi + off + 0.06


def test_hubble_split_is_disjoint_west_for_training_east_for_testing():
    from selfinv.data.embedded import embedded_images

    hdf = embedded_images(gray=True, names=["hubble_deep_field"])[0]
    (train,) = hubble_images("train")
    test = hubble_images("test")
    assert np.array_equal(train, hdf[:, :, :700])
    assert len(test) == 27 and all(t.shape == (1, 96, 96) for t in test)
    assert np.array_equal(test[4], hdf[:, 96:192, 700 + 96 : 700 + 192])  # row 1, column 1 of the eastern tiles
    with pytest.raises(ValueError, match="split"):
        hubble_images("val")


def test_named_sets_load_and_unknown_names_fail_in_one_line():
    assert set(SKY_SETS) == {"black_holes", "black_holes_test", "hubble_train", "hubble_test"}
    assert len(sky_set("black_holes_test")) == 16
    with pytest.raises(ValueError, match="available") as e:
        sky_set("andromeda")
    assert "\n" not in str(e.value)
