"""Facts on the operators: the input shape they fix (``x_shape``), whether their measurements can be cropped
(``crop_alignment``: patches, held-out bands, tiles) and their reconstruction without a network
(``no_learning``: the validation and evaluation baseline). Code asks the operator, never a list of names, so
an operator defined here is picked up by theory, the advisor, patches and validation without an edit."""

from __future__ import annotations

import pytest
import torch

from selfinv.advisor import advise
from selfinv.data.patches import crop_alignment
from selfinv.noise import Gaussian
from selfinv.physics import (
    MRI,
    OPERATORS,
    Blur,
    CompressedSensing,
    Demosaicing,
    Denoising,
    Inpainting,
    LinearOperator,
    Matrix,
    MeasurementMask,
    Tomography,
    gaussian_kernel,
)
from selfinv.theory import rank_condition
from selfinv.training.validation import baseline
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


def test_x_shape_is_what_the_operator_fixes():
    mask = (torch.rand(2, 1, 6, 5, generator=gen(0)) > 0.5).float()
    assert Inpainting(mask).x_shape == (1, 6, 5)
    assert MRI(torch.ones(8, 10)).x_shape == (1, 8, 10)
    assert Tomography(4, 9).x_shape == (1, 9, 9)
    assert CompressedSensing(6, (2, 3, 4), generator=gen(1)).x_shape == (2, 3, 4)
    assert Matrix(torch.eye(6), in_shape=(2, 3)).x_shape == (2, 3)
    assert MeasurementMask(torch.ones(1, 11)).x_shape == (11,)
    for any_size in (Denoising(), Blur(gaussian_kernel(1.0)), Demosaicing()):
        assert any_size.x_shape is None
    tomo = Tomography(4, 9)
    assert (MeasurementMask(torch.ones(1, 1, tomo.n_detectors, 4)) @ tomo).x_shape == (1, 9, 9)  # the right factor's
    assert (2.0 * Inpainting(mask)).x_shape == (1, 6, 5) and (Inpainting(mask) + Inpainting(mask)).x_shape == (1, 6, 5)
    assert tomo.H.x_shape is None  # its input is a sinogram, whose shape the operator does not state
    with pytest.raises(ValueError, match="pass x_shape"):
        rank_condition(Blur(gaussian_kernel(1.0)))


def test_crop_alignment_through_the_algebra():
    inpaint, demosaic, mri = Inpainting(torch.ones(4, 4)), Demosaicing(), MRI(torch.ones(4, 4))
    assert [op.crop_alignment for op in (Denoising(), inpaint, MeasurementMask(torch.ones(1, 3)), demosaic)] == [1, 1, 1, 2]
    assert mri.crop_alignment is None and Blur(gaussian_kernel(1.0)).crop_alignment is None
    assert (inpaint @ demosaic).crop_alignment == 2 and (inpaint + Denoising()).crop_alignment == 1
    assert (inpaint @ mri).crop_alignment is None and (3.0 * demosaic).crop_alignment == 2 and demosaic.H.crop_alignment == 2
    assert crop_alignment(inpaint @ demosaic) == 2  # the data layer asks the operator
    from selfinv.config import LOCAL_OPERATORS

    assert set(LOCAL_OPERATORS) == {n for n, cls in OPERATORS.items() if isinstance(cls.crop_alignment, int)}
    assert {"denoising", "inpainting", "demosaicing"} <= set(LOCAL_OPERATORS) and "mri" not in LOCAL_OPERATORS


def test_no_learning_reconstruction():
    x = torch.rand(2, 1, 9, 9, generator=gen(2), dtype=torch.float64)
    y = x + 0.1
    assert torch.equal(Denoising().no_learning(y), y)
    assert torch.equal(Blur(gaussian_kernel(1.0)).no_learning(y), y)  # A†y would blow the noise up
    tomo = Tomography(6, 9)
    s = tomo.A(x)
    assert torch.equal(tomo.no_learning(s), tomo.fbp(s))
    keep = (torch.rand(1, 1, tomo.n_detectors, 6, generator=gen(3)) > 0.5).to(s.dtype)
    sub = tomo.subsample(keep)
    assert torch.equal(sub.no_learning(sub.A(x)), tomo.fbp(keep * sub.A(x)))  # FBP of the zero-filled sinogram
    mask = (torch.rand(1, 1, 9, 9, generator=gen(4)) > 0.5).double()
    assert torch.equal(Inpainting(mask).no_learning(y), Inpainting(mask).A_dagger(y))
    assert torch.allclose((2.0 * tomo).no_learning(2 * s), tomo.A_dagger(s))  # no FBP through a scaling: A†
    assert torch.equal(baseline(s, tomo), tomo.no_learning(s))  # validation's baseline is the operator's


# ---------------------------------------------------------------------- an operator defined here
class PixelGain(LinearOperator):
    """y = g ⊙ x with a per-pixel gain map g ≥ 0 (a new operator with its facts and nothing else)."""

    crop_alignment = 1
    _per_sample = ("gain",)

    def __init__(self, gain: torch.Tensor, noise=None) -> None:
        super().__init__(noise=noise)
        self.register_buffer("gain", gain)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return tuple(self.gain.shape[1:])

    def no_learning(self, y):
        g = self.gain.to(y.dtype)
        return torch.where(g > 0, y / torch.where(g > 0, g, torch.ones_like(g)), torch.zeros_like(y))

    def _A(self, x):
        return self.gain.to(x.dtype) * x

    def _A_adjoint(self, y):
        return self.gain.to(y.dtype) * y


def test_a_new_operator_is_picked_up_from_its_facts():
    gain = torch.ones(1, 1, 6, 6)
    gain[..., :2, :] = 0  # 12 of 36 pixels unseen
    op = PixelGain(gain, noise=Gaussian(0.1))
    r = rank_condition(op)  # the shape comes from the operator
    assert (r.n, r.rank) == (36, 24)
    advice = advise(op)
    assert not advice.verdict("sure").applicable and "nullspace" in advice.verdict("sure").reason
    assert crop_alignment(op) == 1 and crop_alignment(op @ Demosaicing()) == 2
    y = op(torch.rand(2, 1, 6, 6, generator=gen(5)), generator=gen(6))
    assert torch.equal(baseline(y, op), op.no_learning(y))
