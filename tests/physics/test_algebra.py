"""The operator algebra against dense matrices: composition, adjoint, sum, scaling, noise handling."""

from __future__ import annotations

import pytest
import torch

from selfinv.noise import Gaussian, Poisson
from selfinv.physics import Compose, Denoising, Inpainting, Matrix


def dense(op, n):
    eye = torch.eye(n, dtype=torch.float64)
    return op.A(eye).T


def mats(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(4, 6, generator=g, dtype=torch.float64),
        torch.randn(6, 5, generator=g, dtype=torch.float64),
        torch.randn(4, 6, generator=g, dtype=torch.float64),
    )


def test_composition_and_its_adjoint_reverse_order():
    a, b, _ = mats()
    A, B = Matrix(a), Matrix(b)
    AB = A @ B
    assert isinstance(AB, Compose)
    assert torch.allclose(dense(AB, 5), a @ b)
    assert torch.allclose(dense(AB.H, 4), (a @ b).T)
    assert torch.allclose(dense(B.H @ A.H, 4), (a @ b).T)
    # pseudo-inverse of a composition falls back to CG and is still the min-norm solution
    y = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(AB.A_dagger(y, tol=1e-12, max_iter=100), y @ torch.linalg.pinv(a @ b).T, atol=1e-8)


def test_sum_and_scaling():
    a, _, c = mats()
    A, C = Matrix(a), Matrix(c)
    assert torch.allclose(dense(A + C, 6), a + c)
    assert torch.allclose(dense((A + C).H, 4), (a + c).T)
    assert torch.allclose(dense(2.5 * A, 6), 2.5 * a)
    assert torch.allclose(dense((A * -2.0).H, 4), -2.0 * a.T)
    y = torch.randn(2, 4, dtype=torch.float64)
    assert torch.allclose((3.0 * A).A_dagger(y), y @ torch.linalg.pinv(3.0 * a).T, atol=1e-10)
    with pytest.raises(TypeError):
        A @ a  # a tensor is not an operator


def test_noise_of_composition_is_the_outer_operators():
    mask = torch.ones(1, 1, 3, 3)
    outer = Inpainting(mask, noise=Gaussian(0.1))
    comp = outer @ Denoising(noise=Poisson(1.0))
    assert isinstance(comp.noise, Gaussian)
    assert all(op.noise is None for op in comp.ops)
    assert comp.H.noise is None
    assert outer.noise is not None  # composing does not strip the original


def test_with_noise_returns_a_copy():
    op = Inpainting(torch.ones(2, 2), noise=Gaussian(0.1))
    other = op.with_noise(Poisson(0.5))
    assert isinstance(op.noise, Gaussian) and isinstance(other.noise, Poisson)
    assert other.mask is op.mask
    with pytest.raises(ValueError, match="noise must be"):
        Denoising(noise=0.1)


def test_per_sample_composition_selects_through_the_chain():
    masks = (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    comp = Inpainting(masks) @ Denoising()
    assert comp.batch_size == 3
    x = torch.rand(3, 1, 4, 4)
    assert torch.equal(comp.select(1).A(x[1:2]), comp.A(x)[1:2])
