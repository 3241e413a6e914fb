"""Demosaicing: Bayer colour-filter arrays."""

from __future__ import annotations

import pytest
import torch

from selfinv.noise import Gaussian
from selfinv.physics.demosaicing import PATTERNS, Demosaicing
from tests.helpers import gen

F64 = torch.float64
R, G, B = 0, 1, 2


def rgb(h: int, w: int) -> torch.Tensor:
    """An image whose value tells the channel and pixel: 100 * c + 10 * i + j."""
    c = torch.arange(3, dtype=F64)[:, None, None]
    i = torch.arange(h, dtype=F64)[None, :, None]
    j = torch.arange(w, dtype=F64)[None, None, :]
    return (100 * c + 10 * i + j)[None]


@pytest.mark.parametrize(
    "pattern,tile",
    [("RGGB", [[R, G], [G, B]]), ("BGGR", [[B, G], [G, R]]), ("GRBG", [[G, R], [B, G]]), ("GBRG", [[G, B], [R, G]])],
)
def test_pattern_colours(pattern, tile):
    op = Demosaicing(pattern)
    y = op.A(rgb(2, 2))[0, 0]
    expected = torch.tensor([[100 * tile[i][j] + 10 * i + j for j in range(2)] for i in range(2)], dtype=F64)
    assert torch.equal(y, expected)
    # the mask: one colour per pixel, the tile's
    mask = op.cfa_mask(2, 2, dtype=F64)
    assert mask.shape == (1, 3, 2, 2) and torch.equal(mask.sum(1), torch.ones(1, 2, 2, dtype=F64))
    for i in range(2):
        for j in range(2):
            assert mask[0, tile[i][j], i, j] == 1


def test_rggb_explicit_3x5():
    y = Demosaicing("RGGB").A(rgb(3, 5))[0, 0]
    expected = torch.tensor(
        [
            [0, 101, 2, 103, 4],  # R G R G R
            [110, 211, 112, 213, 114],  # G B G B G
            [20, 121, 22, 123, 24],
        ],
        dtype=F64,
    )
    assert torch.equal(y, expected)


def test_adjoint_puts_values_back():
    op = Demosaicing("GRBG")
    y = torch.arange(1.0, 5.0, dtype=F64).reshape(1, 1, 2, 2)
    x = op.A_adjoint(y)[0]
    expected = torch.zeros(3, 2, 2, dtype=F64)
    expected[G, 0, 0], expected[R, 0, 1], expected[B, 1, 0], expected[G, 1, 1] = 1, 2, 3, 4
    assert torch.equal(x, expected)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("hw", [(1, 1), (1, 6), (5, 1), (7, 9), (8, 8)])
def test_adjointness_and_pseudo_inverse(pattern, hw):
    op = Demosaicing(pattern)
    assert op.exact_dagger
    x = torch.randn(3, 3, *hw, dtype=F64, generator=gen(0))
    y = torch.randn(3, 1, *hw, dtype=F64, generator=gen(1))
    lhs, rhs = (op.A(x) * y).sum(), (x * op.A_adjoint(y)).sum()
    assert abs(float(lhs - rhs)) <= 1e-12 * float(x.norm() * y.norm())  # ||A|| = 1
    ax = op.A(x)
    assert ax.shape == (3, 1, *hw)
    assert torch.equal(op.A(op.A_dagger(ax)), ax)  # A A† A = A
    assert torch.equal(op.A(op.A_adjoint(y)), y)  # A A^H = I
    assert torch.equal(op.A_dagger(y), op.A_adjoint(y))
    assert torch.equal(op.normal(x), op.A_adjoint(op.A(x)))


def test_mask_is_tiled_and_cropped():
    op = Demosaicing("BGGR")
    big = op.cfa_mask(6, 8)
    assert big.dtype == torch.float32
    assert torch.equal(big, big[..., :2, :2].repeat(1, 1, 3, 4))
    assert torch.equal(op.cfa_mask(5, 7), big[..., :5, :7])


def test_dtypes_batch_and_noise():
    op = Demosaicing("RGGB", noise=Gaussian(0.05))
    x = torch.rand(4, 3, 6, 5, generator=gen(0))
    y = op.A(x)
    assert y.dtype == torch.float32 and y.shape == (4, 1, 6, 5)
    assert torch.allclose(op.A(x.double()), y.double())
    n1, n2 = op(x, generator=gen(1)), op(x, generator=gen(1))
    assert torch.equal(n1, n2) and not torch.equal(n1, y)


def test_autograd():
    op = Demosaicing("GBRG")
    x = torch.randn(2, 3, 3, 5, dtype=F64, generator=gen(2), requires_grad=True)
    y = torch.randn(2, 1, 3, 5, dtype=F64, generator=gen(3), requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradcheck(op.A_dagger, (y,))


def test_bad_inputs():
    op = Demosaicing()
    for c in (1, 4):
        with pytest.raises(ValueError, match=rf"Demosaicing: x has shape \(2, {c}, 4, 4\), expected \(B, 3, H, W\)"):
            op.A(torch.zeros(2, c, 4, 4))
    with pytest.raises(ValueError, match="Demosaicing: x has shape"):
        op.A(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"Demosaicing: y has shape \(2, 3, 4, 4\), expected \(B, 1, H, W\)"):
        op.A_adjoint(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="Demosaicing: y has shape"):
        op.A_dagger(torch.zeros(2, 1, 0, 4))
    with pytest.raises(ValueError, match="must be real"):
        op.A(torch.zeros(2, 3, 4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="must be real"):
        op.A_adjoint(torch.zeros(2, 1, 4, 4, dtype=torch.complex128))


@pytest.mark.parametrize("pattern", ["RGBG", "XYZW", "", 3, None])
def test_unknown_pattern(pattern):
    with pytest.raises(ValueError, match="pattern must be one of RGGB, BGGR, GRBG, GBRG"):
        Demosaicing(pattern)


def test_lowercase_pattern():
    assert Demosaicing("bggr").pattern == "BGGR"
