"""MRI operator and k-space mask samplers: numpy FFT oracle, complex handling, sampling patterns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfinv.noise import Gaussian
from selfinv.physics import MRI, channels_to_complex, complex_to_channels, fft2c, ifft2c
from selfinv.physics.samplers import MRIMaskSampler


def test_fft2c_matches_numpy_centred_orthonormal_fft():
    g = torch.Generator().manual_seed(0)
    for shape in [(6, 8), (7, 5)]:
        x = torch.randn(2, 1, *shape, generator=g, dtype=torch.complex128)
        ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
        assert np.allclose(fft2c(x).numpy(), ref, atol=1e-12)
        assert torch.allclose(ifft2c(fft2c(x)), x, atol=1e-12)
        # the DC coefficient sits at the array centre (H // 2, W // 2)
        ones = torch.ones(1, 1, *shape, dtype=torch.complex128)
        k = fft2c(ones)[0, 0].abs()
        assert k.argmax() == (shape[0] // 2) * shape[1] + shape[1] // 2


def test_complex_channel_round_trip():
    x = torch.randn(2, 3, 4, 5, dtype=torch.complex64)
    c = complex_to_channels(x)
    assert c.shape == (2, 6, 4, 5) and c.dtype == torch.float32
    assert torch.equal(c[:, 0], x[:, 0].real) and torch.equal(c[:, 1], x[:, 0].imag)
    assert torch.equal(channels_to_complex(c), x)
    with pytest.raises(ValueError, match="complex"):
        complex_to_channels(c)
    with pytest.raises(ValueError, match="even"):
        channels_to_complex(c[:, :5])


def test_real_data_to_complex_operator_is_a_clear_error():
    op = MRI(torch.ones(4, 4))
    with pytest.raises(ValueError, match="must be complex.*channels_to_complex"):
        op.A(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="must be complex"):
        op.A_adjoint(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="pixels but the mask"):
        op.A(torch.zeros(1, 1, 4, 5, dtype=torch.complex64))


def test_fully_sampled_mri_is_unitary_and_noise_only_on_sampled_lines():
    x = torch.randn(2, 1, 8, 8, dtype=torch.complex128)
    full = MRI(torch.ones(8, 8))
    assert torch.allclose(full.A_dagger(full.A(x)), x, atol=1e-12)
    assert torch.allclose(full.A(x).norm(), x.norm())
    mask = MRIMaskSampler(8, acceleration=4, center_fraction=0.25).sample(2, torch.Generator().manual_seed(0))
    y = MRI(mask, noise=Gaussian(0.1))(x, generator=torch.Generator().manual_seed(1))
    assert bool((y[mask.expand_as(y) == 0] == 0).all())
    assert bool((y[mask.expand_as(y) == 1] != 0).all())


@pytest.mark.parametrize("pattern", MRIMaskSampler.patterns)
def test_mask_sampler_acceleration_centre_and_randomness(pattern):
    sampler = MRIMaskSampler((16, 64), acceleration=4, center_fraction=0.125, pattern=pattern)
    masks = sampler.sample(6, torch.Generator().manual_seed(0))
    assert masks.shape == (6, 1, 16, 64)
    lines = masks[:, 0, 0]  # (B, W)
    assert torch.equal(masks, lines[:, None, None].expand_as(masks))  # whole columns
    counts = lines.sum(1)
    if pattern == "equispaced":
        assert bool(((counts - 16).abs() <= 1).all())
    else:
        assert bool((counts == 16).all())
    assert bool((lines[:, 28:36] == 1).all())  # the 8 centre lines around column 32
    assert len({tuple(r.tolist()) for r in lines}) > 1  # a different mask per sample
    again = sampler.sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(masks, again)
    op = sampler(6, generator=torch.Generator().manual_seed(0))
    assert op.batch_size == 6 and torch.allclose(op.acceleration, 64 / counts)


def test_gaussian_pattern_prefers_low_frequencies():
    sampler = MRIMaskSampler((4, 128), acceleration=4, center_fraction=0.04, pattern="gaussian", gaussian_std=0.15)
    lines = sampler.sample(200, torch.Generator().manual_seed(0))[:, 0, 0]
    near = lines[:, 32:96].mean()
    far = torch.cat([lines[:, :32], lines[:, 96:]], 1).mean()
    assert near > 2 * far


def test_mask_sampler_rejects_bad_settings():
    with pytest.raises(ValueError, match="pattern"):
        MRIMaskSampler(32, pattern="spiral")
    with pytest.raises(ValueError, match="centre lines"):
        MRIMaskSampler(32, acceleration=8, center_fraction=0.5)
    with pytest.raises(ValueError, match="acceleration"):
        MRIMaskSampler(32, acceleration=0.5)
