"""Group actions T_g: exact inverses, per-sample parameters, enumeration, exact adjoints, errors."""

from __future__ import annotations

import pytest
import torch

from selfinv.transforms import Product, Reflect, Rotate, Scale, Shift, Transform
from tests.helpers import gen

EXACT = {
    "shift": lambda: Shift(),
    "shift_box": lambda: Shift(max_shift=2),
    "shift_step": lambda: Shift(step=2),
    "rotate4": lambda: Rotate(n=4),
    "rotate2": lambda: Rotate(n=2),
    "reflect": lambda: Reflect(),
    "reflect_w": lambda: Reflect(dims=("w",)),
    "product": lambda: Shift() * Rotate(n=4) * Reflect(),
}
INTERPOLATED = {
    "rotate_deg": lambda: Rotate(degrees=(-40.0, 40.0)),
    "rotate8": lambda: Rotate(n=8),
    "scale_periodic": lambda: Scale(),
    "scale_reflect": lambda: Scale(factors=(0.5, 0.8), padding="reflect"),
    "scale_no_aa": lambda: Scale(antialias=False),
    "product_mixed": lambda: Shift() * Rotate(degrees=(0.0, 360.0)) * Scale(),
}
ALL = {**EXACT, **INTERPOLATED}
NEEDS_SQUARE = {"rotate4", "product"}  # 90-degree rotations swap H and W


def _x(shape=(5, 2, 8, 8), dtype=torch.float64, seed=1):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_exact_inverse_is_bit_exact(name, dtype):
    T = EXACT[name]()
    assert T.exact
    x = _x(dtype=dtype)
    y, p = T(x, generator=gen())
    assert not torch.equal(y, x)  # something moved
    assert torch.equal(T.inverse(y, p), x)
    assert torch.equal(T.apply(T.inverse(x, p), p), x)
    assert torch.equal(T.adjoint(y, p), T.inverse(y, p))


def test_rotate2_and_reflect_work_on_non_square_images():
    x = _x((4, 1, 6, 9))
    for T in (Rotate(n=2), Reflect(), Shift() * Rotate(n=2)):
        y, p = T(x, generator=gen(3))
        assert y.shape == x.shape and torch.equal(T.inverse(y, p), x)
    assert torch.equal(Rotate(n=2).apply(x[:1], torch.tensor([[180.0]])), torch.rot90(x[:1], 2, dims=(-2, -1)))


@pytest.mark.parametrize("name", ALL)
def test_per_sample_parameters_and_batch_equals_single_applications(name):
    T = ALL[name]()
    x = _x((6, 2, 8, 8))
    y, p = T(x, generator=gen(2))
    assert p.shape == (6, T.n_params) and p.dtype == torch.float64
    assert len({tuple(r) for r in p.tolist()}) > 1  # the samples get different elements
    for i in range(6):
        single = T.apply(x[i : i + 1], p[i : i + 1])
        torch.testing.assert_close(y[i : i + 1], single, rtol=0, atol=1e-12)
        torch.testing.assert_close(T.adjoint(y, p)[i : i + 1], T.adjoint(y[i : i + 1], p[i : i + 1]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_reproducible_from_generator(name):
    T = ALL[name]()
    x = _x()
    y1, p1 = T(x, generator=gen(7))
    y2, p2 = T(x, generator=gen(7))
    assert torch.equal(p1, p2) and torch.equal(y1, y2)
    _, p3 = T(x, generator=gen(8))
    assert not torch.equal(p1, p3)
    assert torch.equal(T.sample(5, gen(7), img_size=(8, 8)), p1)


@pytest.mark.parametrize(
    "T, size, order",
    [
        (Shift(), (4, 6), 24),
        (Shift(step=2), (4, 6), 6),
        (Shift(max_shift=1), (8, 8), 9),
        (Rotate(n=4), (5, 5), 4),
        (Reflect(), (5, 5), 4),
        (Rotate(n=4) * Reflect(dims=("w",)), (5, 5), 8),  # the dihedral group of the square
        (Shift() * Rotate(n=4), (4, 4), 64),
    ],
)
def test_elements_enumerate_distinct_transforms(T, size, order):
    e = T.elements(size)
    assert e.shape == (order, T.n_params)
    assert len({tuple(r) for r in e.tolist()}) == order
    x = torch.randn(1, 1, *size, generator=gen(), dtype=torch.float64).expand(order, 1, *size)
    y = T.apply(x, e).flatten(1)
    assert len({tuple(r) for r in y.tolist()}) == order  # |G| distinct maps, not only distinct labels


def test_product_sizes_multiply_and_sample_stays_in_elements():
    a, b = Shift(step=2), Rotate(n=4)
    assert len((a * b * Reflect()).elements(8)) == len(a.elements(8)) * len(b.elements(8)) * 4
    T = Shift(max_shift=1) * Rotate(n=4)
    p = T.sample(300, gen(), img_size=(8, 8))
    p[:, :2] %= 8
    allowed = {tuple(r) for r in T.elements(8).tolist()}
    assert {tuple(r) for r in p.tolist()} == allowed  # every element drawn, nothing else


def test_continuous_families_have_no_elements():
    with pytest.raises(ValueError, match="continuous"):
        Rotate(degrees=(0, 90)).elements(8)
    with pytest.raises(ValueError, match="continuous"):
        Scale().elements(8)
    assert Scale(random_center=False).elements(8).tolist() == [[0.5, 0.5, 0.5], [0.75, 0.5, 0.5]]
    with pytest.raises(ValueError, match="continuous"):
        (Shift() * Rotate(degrees=(0, 90))).elements(8)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_adjoint_identity(name, dtype):
    """<T x, y> = <x, T^T y> in float64 for every transform, interpolating ones included."""
    T = ALL[name]()
    x = _x((3, 2, 9, 9) if name in NEEDS_SQUARE else (3, 2, 9, 7), dtype, 1)
    y = torch.randn(x.shape, generator=gen(5), dtype=dtype)
    p = T.sample(3, gen(4), img_size=x.shape[-2:])
    lhs = torch.vdot(T.apply(x, p).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), T.adjoint(y, p).flatten())
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_product_order_and_inverse_order():
    x = _x()
    T = Shift() * Rotate(n=4)
    p = T.sample(5, gen(), img_size=(8, 8))
    expected = Rotate(n=4).apply(Shift().apply(x, p[:, :2]), p[:, 2:])
    assert torch.equal(T.apply(x, p), expected)
    assert torch.equal(T.inverse(expected, p), x)
    assert isinstance(T, Product) and T.transforms[0].__class__ is Shift
    assert repr(Shift(step=2) * Rotate(n=4)) == "Shift(step=2) * Rotate(n=4)"


def test_shift_matches_roll_and_rotate_matches_rot90():
    x = _x((1, 1, 6, 8))
    assert torch.equal(Shift().apply(x, torch.tensor([[2.0, -3.0]])), torch.roll(x, (2, -3), dims=(-2, -1)))
    xs = _x((1, 1, 7, 7))
    for k in range(4):
        assert torch.equal(Rotate(n=4).apply(xs, torch.tensor([[90.0 * k]])), torch.rot90(xs, k, dims=(-2, -1)))
    assert torch.equal(Reflect().apply(x, torch.tensor([[1.0, 0.0]])), x.flip(-2))


def test_interpolated_rotation_by_90_matches_rot90():
    x = _x((2, 1, 10, 10))
    y = Rotate(degrees=(90.0, 90.0)).apply(x, torch.tensor([[90.0], [90.0]], dtype=torch.float64))
    torch.testing.assert_close(y, torch.rot90(x, 1, dims=(-2, -1)), rtol=0, atol=1e-10)
    # a smooth image rotated by +30 then -30 degrees comes back on the interior (interpolation error only)
    i = torch.arange(24, dtype=torch.float64)
    smooth = (torch.cos(2 * torch.pi * i / 24)[:, None] * torch.sin(2 * torch.pi * i / 24)[None, :])[None, None]
    T = Rotate(degrees=(30.0, 30.0))
    p = torch.tensor([[30.0]])
    back = T.inverse(T.apply(smooth, p), p)
    assert (back - smooth)[..., 8:16, 8:16].abs().max() < 0.05
    assert not T.exact


def test_scale_keeps_shape_constants_and_identity():
    x = _x((3, 2, 12, 10))
    for T in (Scale(), Scale(padding="reflect"), Scale(antialias=False)):
        y, p = T(x, generator=gen())
        assert y.shape == x.shape and not T.exact
        c = torch.full_like(x, 0.7)
        torch.testing.assert_close(T.apply(c, p), c, rtol=0, atol=1e-12)  # constants are scale invariant
    ident = torch.tensor([[1.0, 0.5, 0.5]] * 3)
    assert torch.equal(Scale().apply(x, ident), x)
    # zooming out by 1/2 about the centre and back in recovers a smooth periodic image near the centre
    i = torch.arange(32, dtype=torch.float64)
    smooth = torch.cos(2 * torch.pi * i / 32)[None, None, :, None].expand(1, 1, 32, 32)
    p = torch.tensor([[0.5, 0.5, 0.5]])
    T = Scale(antialias=False)
    err = (T.inverse(T.apply(smooth, p), p) - smooth)[..., 12:20, 12:20].abs().max()
    assert err < 0.02


def test_complex_input_acts_on_real_and_imaginary_parts():
    z = _x((3, 2, 8, 8), torch.complex128)
    for T in ALL.values():
        T = T()
        p = T.sample(3, gen(), img_size=(8, 8))
        expected = torch.complex(T.apply(z.real.contiguous(), p), T.apply(z.imag.contiguous(), p))
        torch.testing.assert_close(T.apply(z, p), expected, rtol=0, atol=1e-12)


def test_gradients_flow_through_interpolating_transforms():
    x = _x((2, 1, 8, 8)).requires_grad_()
    for T in (Rotate(degrees=(0, 90)), Scale()):
        y, _ = T(x, generator=gen())
        (g,) = torch.autograd.grad(y.square().sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_bad_input_raises():
    x = _x((2, 1, 6, 8))
    with pytest.raises(ValueError, match="B, C, H, W"):
        Shift().apply(x[0], torch.zeros(2, 2))
    with pytest.raises(ValueError, match="floating"):
        Shift()(torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        Shift().apply(x, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="integer"):
        Shift().apply(x, torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        Shift().apply(x, torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="square"):
        Rotate(n=4).apply(x, torch.tensor([[0.0], [90.0]]))
    with pytest.raises(ValueError, match="multiples"):
        Rotate(n=4).apply(_x((2, 1, 6, 6)), torch.tensor([[45.0], [0.0]]))
    with pytest.raises(ValueError, match="flags"):
        Reflect().apply(x, torch.full((2, 2), 2.0))
    with pytest.raises(ValueError, match="img_size"):
        Shift().sample(2)
    with pytest.raises(ValueError, match="batch_size"):
        Shift(max_shift=1).sample(0)
    with pytest.raises(ValueError, match="> 0"):
        Scale().apply(x, torch.tensor([[0.0, 0.5, 0.5]] * 2))
    for bad in (
        lambda: Shift(max_shift=-1),
        lambda: Shift(step=0),
        lambda: Rotate(n=0),
        lambda: Rotate(n=4, degrees=(0, 1)),
        lambda: Rotate(degrees=(10, 0)),
        lambda: Reflect(dims=("x",)),
        lambda: Reflect(dims=("h", "h")),
        lambda: Scale(factors=(1.5,)),
        lambda: Scale(factors=()),
        lambda: Scale(padding="zeros"),
        lambda: Product([Shift(), "rotate"]),
        lambda: Shift().elements((0, 4)),
    ):
        with pytest.raises(ValueError):
            bad()
    assert isinstance(Shift() * Reflect(), Transform)
    with pytest.raises(TypeError):
        Shift() * 2
