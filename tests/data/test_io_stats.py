"""Statistics of the training inputs and the domain warning: quiet on data like the training data, loud far off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfinv.data import embedded_images
from selfinv.data.stats import STAT_KEYS, domain_warning, input_statistics


def photos(sigma: float = 0.1, seed: int = 0, names=("camera", "coins", "moon")) -> torch.Tensor:
    """Noisy embedded photographs in [0, 1], as a denoising model is trained on."""
    g = torch.Generator().manual_seed(seed)
    xs = [torch.from_numpy(x[:, :128, :128]) for x in embedded_images(names=list(names))]
    x = torch.stack(xs)
    return x + sigma * torch.randn(x.shape, generator=g)


def test_statistics_match_numpy_and_use_the_magnitude_of_complex_data():
    y = torch.rand(4, 1, 50, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = input_statistics(y)
    assert tuple(s) == STAT_KEYS and all(isinstance(v, float) for v in s.values())
    v = y.numpy().ravel()
    assert s["p1"] == pytest.approx(np.percentile(v, 1)) and s["p99"] == pytest.approx(np.percentile(v, 99))
    assert s["p50"] == pytest.approx(np.median(v)) and s["mean"] == pytest.approx(v.mean())
    assert s["std"] == pytest.approx(v.std(ddof=1))
    z = torch.polar(y, 2 * torch.pi * torch.rand(y.shape, dtype=torch.float64))
    assert input_statistics(z)["p50"] == pytest.approx(s["p50"])  # |z| = y
    with pytest.raises(ValueError, match="input_statistics: y is empty"):
        input_statistics(torch.zeros(0))


def test_large_inputs_are_subsampled_deterministically():
    y = torch.randn(3_000_000, generator=torch.Generator().manual_seed(2))
    a, b = input_statistics(y, max_values=100_000), input_statistics(y, max_values=100_000)
    assert a == b  # a fixed-seed generator
    assert a["p50"] == pytest.approx(0.0, abs=0.02) and a["std"] == pytest.approx(1.0, abs=0.02)
    assert a["p99"] == pytest.approx(2.326, abs=0.05)


def test_no_warning_for_inputs_like_the_training_data():
    train = input_statistics(photos())
    for names, sigma, seed in ((("astronaut",), 0.1, 1), (("brick",), 0.1, 2), (("text",), 0.05, 3),
                               (("camera",), 0.2, 4)):
        x = photos(sigma, seed, names=names)
        assert domain_warning(train, input_statistics(x), "x.png") is None, names
    assert domain_warning(None, input_statistics(photos()), "x.png") is None  # an older checkpoint: nothing to compare


def test_warning_far_outside_the_training_range():
    train = input_statistics(photos())
    # the case: a float file with values in the hundreds (CT in Hounsfield units, max 172) while the
    # training data were in [0, 1]
    ct = 172 * photos(0.0, 5, names=("camera",)).clamp(0, 1)
    line = domain_warning(train, input_statistics(ct), "ct.tif")
    assert line.startswith("warning: ct.tif: its values lie far outside those the model was trained on")
    assert "\n" not in line
    shifted = photos(0.1, 6, names=("camera",)) + 2.0  # an offset of two training ranges
    assert domain_warning(train, input_statistics(shifted), "s.tif").startswith("warning: s.tif")
    narrow = photos(0.0, 7, names=("camera",)) / 100  # e.g. 8-bit values divided by 255 twice
    assert domain_warning(train, input_statistics(narrow), "n.tif").startswith("note: n.tif: its values span a much narrower")
