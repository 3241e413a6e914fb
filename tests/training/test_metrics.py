"""PSNR and SSIM against scikit-image (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from selfinv.training.metrics import psnr, ssim


@pytest.mark.parametrize("shape", [(2, 1, 32, 40), (1, 3, 24, 24), (1, 1, 9, 13)])
def test_psnr_and_ssim_match_skimage(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    x_hat = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    for data_range in (1.0, 2.0):
        p, s = psnr(x_hat, x, data_range), ssim(x_hat, x, data_range)
        for i in range(shape[0]):
            a, b = x_hat[i].numpy(), x[i].numpy()
            ref_p = peak_signal_noise_ratio(b, a, data_range=data_range)
            kw = dict(data_range=data_range, gaussian_weights=True, use_sample_covariance=False, sigma=1.5)
            win = min(11, min(shape[-2:]) if min(shape[-2:]) % 2 else min(shape[-2:]) - 1)
            ref_s = structural_similarity(np.moveaxis(b, 0, -1), np.moveaxis(a, 0, -1), channel_axis=-1, win_size=win, **kw)
            assert abs(float(p[i]) - ref_p) < 1e-4
            assert abs(float(s[i]) - ref_s) < 1e-4, (float(s[i]), ref_s)


def test_complex_images_are_compared_in_magnitude_and_shapes_must_match():
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    phase = torch.exp(1j * torch.rand(1, 1, 16, 16, dtype=torch.float64))
    assert float(psnr(x * phase, x.to(torch.complex128), 1.0)) > 200  # same magnitude
    with pytest.raises(ValueError, match="shapes"):
        psnr(x, x[..., :8], 1.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, 0.0)
