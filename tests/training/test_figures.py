"""Figures: robust display ranges shared by the comparable panels, readable panel sizes, bars from the baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfinv.training.figures import (
    _figure,
    comparison_figure,
    display_limits,
    panel_pixels,
    panel_scales,
    psnr_bars,
    reconstruction_figure,
)


def _dark_crop(seed=0):
    """A dark microscopy-like crop: values around 0.05 and a few saturated pixels."""
    rng = np.random.default_rng(seed)
    img = 0.05 + 0.02 * rng.random((64, 64))
    img[rng.integers(0, 64, 5), rng.integers(0, 64, 5)] = 1.0
    return img


def test_display_limits_are_percentiles_not_min_max():
    img = _dark_crop()
    lo, hi = display_limits([img])
    assert (lo, hi) == pytest.approx(tuple(np.percentile(img, [0.5, 99.5])))
    assert hi < 0.1 < float(img.max())  # the five bright pixels do not set the scale
    assert display_limits([np.full((4, 4), 0.3)]) == (0.3, 1.3)  # a constant image still gets a range


def test_comparable_panels_share_the_truths_scale_and_a_backprojection_has_its_own():
    truth = _dark_crop()
    images = {"measurement": 40.0 * truth + 7.0, "baseline": truth + 0.01, "reconstruction": truth * 0.9, "truth": truth}
    scales = panel_scales(images, own_scale=("measurement",))
    assert scales["truth"] == scales["reconstruction"] == scales["baseline"] == display_limits([truth])
    assert scales["measurement"] == display_limits([images["measurement"]]) != scales["truth"]
    no_truth = panel_scales({"measurement": truth + 0.1, "reconstruction": truth})  # pooled when there is no truth
    assert no_truth["measurement"] == no_truth["reconstruction"] == display_limits([truth + 0.1, truth])


def test_panels_show_small_images_magnified_and_large_ones_capped():
    for side in (16, 32, 40, 64, 128, 256):
        px = panel_pixels(side)
        assert px % side == 0 and px // side >= (4 if side <= 128 else 2) and px <= 512, (side, px)
    assert panel_pixels(40) >= 200 and panel_pixels(1024) == 512


def test_the_written_figures_are_large_enough_for_their_panels(tmp_path):
    import matplotlib.image

    x = torch.rand(1, 40, 40)
    path = reconstruction_figure(tmp_path / "r.png", [{"measurement": x + 0.1, "reconstruction": x, "truth": x}], 1.0)
    h, w = matplotlib.image.imread(path).shape[:2]
    assert w >= 3 * 4 * 40 and h >= 4 * 40  # three panels of at least 4 screen pixels per image pixel
    path = comparison_figure(tmp_path / "c.png", [{"loss": "sure", "psnr": 25.0}], {"psnr": 20.0},
                             {"truth": x, "measurement (Aᴴy)": 50 * x, "sure": x}, 1.0, own_scale=("measurement (Aᴴy)",))
    assert path.stat().st_size > 0


def test_psnr_bars_start_at_the_no_learning_value():
    fig = _figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    psnr_bars(ax, [{"loss": "sure", "psnr": 27.5}, {"loss": "supervised", "psnr": 28.0}, {"loss": "bad", "psnr": 19.0},
                   {"loss": "failed", "psnr": None}], {"psnr": 20.0})
    lo, hi = ax.get_ylim()
    assert lo < 19.0 and hi > 28.0 and lo < 20.0 < hi
    bars = ax.patches
    assert len(bars) == 3
    assert [b.get_y() for b in bars] == [20.0, 20.0, 20.0]  # drawn from the baseline ...
    assert [round(b.get_y() + b.get_height(), 6) for b in bars] == [27.5, 28.0, 19.0]  # ... up or down to the value
    assert "no learning 20.00 dB" in ax.get_legend().get_texts()[0].get_text()
