"""The advisor's verdicts on the tutorial's known cases."""

from __future__ import annotations

import torch

from selfinv.advisor import advise
from selfinv.losses import LOSSES
from selfinv.noise import Gamma, Gaussian, Poisson
from selfinv.physics import MRI, Blur, Denoising, Inpainting, gaussian_kernel
from selfinv.physics.samplers import BernoulliMaskSampler
from selfinv.transforms import Rotate, Shift


def mri_mask():
    mask = torch.zeros(16, 16)
    mask[:, ::4] = 1
    mask[:, 6:10] = 1
    return mask


def test_cartesian_mri_shifts_do_not_help_rotations_do():
    advice = advise(MRI(mri_mask()), transforms=[Shift(), Rotate(4)])
    shift_line, rot_line = advice.transform_lines
    assert "do not help" in shift_line and "equivariant" in shift_line
    assert "full rank" in rot_line or "up from" in rot_line
    assert not advice.verdict("mc").applicable  # a fixed incomplete operator: MC cannot see the nullspace
    assert "nullspace" in advice.verdict("mc").reason
    text = str(advice)
    assert "Losses:" in text and len(advice.verdicts) == len(LOSSES)


def test_inpainting_with_shifts_enables_ei_and_a_mask_family_enables_moi():
    mask = (torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    advice = advise(Inpainting(mask), transforms=[Shift()])
    assert advice.verdict("ei").applicable and not advice.verdict("moi").applicable
    assert not advice.verdict("splitting").applicable  # one fixed operator
    family = advise(Inpainting(mask), sampler=BernoulliMaskSampler(12, p=0.5), n_operators=16)
    assert family.verdict("moi").applicable and family.verdict("splitting").applicable
    assert family.verdict("mc").applicable  # identifiable thanks to the family


def test_blur_is_shift_equivariant():
    box = torch.ones(4, 4) / 16  # spectral zeros: not injective
    advice = advise(Blur(box), transforms=[Shift(), Rotate(4)], x_shape=(1, 12, 12))
    shift_line = advice.transform_lines[0]
    assert "do not help" in shift_line and "equivariant" in shift_line
    assert not advice.single.holds
    smooth = advise(Blur(gaussian_kernel(1.0, size=5)), x_shape=(1, 12, 12))
    assert smooth.verdict("sure").applicable is False  # no noise model given: SURE cannot apply


def test_denoising_verdicts_follow_the_noise_model():
    gauss = advise(Denoising(noise=Gaussian(0.1)))
    for name in ("sure", "r2r", "unsure", "noise2score", "noise2self", "neighbor2neighbor"):
        assert gauss.verdict(name).applicable, gauss.verdict(name)
    assert not gauss.verdict("mc").applicable and "collapses" in gauss.verdict("mc").reason
    assert not gauss.verdict("noise2noise").applicable  # no pairs
    assert advise(Denoising(noise=Gaussian(0.1)), pairs=True).verdict("noise2noise").applicable
    assert not gauss.verdict("supervised").applicable
    gamma = advise(Denoising(noise=Gamma(10.0)))
    assert not gamma.verdict("sure").applicable and gamma.verdict("r2r").applicable
    poisson = advise(Denoising(noise=Poisson(0.1)))
    assert poisson.verdict("sure").applicable and poisson.verdict("r2r").applicable
    assert poisson.verdict("noise2score").applicable and poisson.verdict("unsure_pg").applicable
    unknown = advise(Denoising(noise=Gaussian(0.1)), noise_known=False)
    assert unknown.verdict("unsure").applicable and not unknown.verdict("sure").applicable
