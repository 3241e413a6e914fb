"""Contract tests run on every registered transform (``selfinv.transforms.TRANSFORMS``).

A transform is a family of linear maps T_g on (B, C, H, W) images, one element g per sample: ``sample``
draws (B, k) float64 parameters reproducibly from a generator, ``apply`` keeps shape and dtype (real or
complex), contains the identity, treats each sample with its own element, and ``adjoint`` is the exact
transpose. Exact transforms are pixel permutations: ``inverse`` undoes them bit for bit, and the finite
groups are closed under composition. Every registered class is usable with its defaults (a config's
``transform: rotate``). A new transform adds one entry to ``CASES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from selfinv.transforms import TRANSFORMS, Reflect, Rotate, Scale, Shift, Transform
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


@dataclass(frozen=True)
class Case:
    build: Callable[[], Transform]
    #: the parameters of the identity element
    identity: tuple[float, ...]
    #: whether ``elements`` of a 4 x 4 image is a group (closed under composition); None: not enumerable
    group: bool | None = None


CASES: dict[str, Case] = {
    "shift": Case(Shift, (0.0, 0.0), group=True),
    "shift_box": Case(lambda: Shift(max_shift=1), (0.0, 0.0), group=False),  # a box of shifts, not a group
    "rotate": Case(Rotate, (0.0,), group=True),
    "rotate_n8": Case(lambda: Rotate(n=8), (0.0,)),  # interpolated: not exact
    "rotate_degrees": Case(lambda: Rotate(degrees=(-30.0, 30.0)), (0.0,)),
    "reflect": Case(Reflect, (0.0, 0.0), group=True),
    "reflect_w": Case(lambda: Reflect(dims=("w",)), (0.0,), group=True),
    "scale": Case(Scale, (1.0, 0.5, 0.5)),
    "scale_reflect_centred": Case(lambda: Scale(padding="reflect", random_center=False), (1.0, 0.5, 0.5)),
    "shift*rotate*reflect": Case(lambda: Shift() * Rotate() * Reflect(), (0.0,) * 5, group=True),
}
NAMES = list(CASES)
GROUPS = [n for n in NAMES if CASES[n].group]
B = 5


def image(shape=(B, 2, 8, 8), dtype=F64, seed: int = 1) -> torch.Tensor:
    if dtype.is_complex:
        return torch.complex(image(shape, F64, seed), image(shape, F64, seed + 100)).to(dtype)
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def test_every_registered_transform_has_a_case_and_default_construction():
    covered = {type(case.build()) for case in CASES.values()}
    missing = [name for name, cls in TRANSFORMS.items() if cls not in covered]
    assert not missing, f"transforms without a contract case: {missing}"
    for cls in TRANSFORMS.values():  # ``transform: <name>`` in a config builds the class with its defaults
        y, params = cls()(image((2, 1, 8, 8)), generator=gen(0))
        assert y.shape == (2, 1, 8, 8) and params.shape == (2, cls().n_params)


@pytest.mark.parametrize("name", NAMES)
def test_identity_element_leaves_images_unchanged(name):
    T, x = CASES[name].build(), image()
    out = T.apply(x, torch.tensor([CASES[name].identity], dtype=F64).expand(B, -1))
    if T.exact:
        assert torch.equal(out, x)
    else:
        torch.testing.assert_close(out, x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_per_sample_and_reproducible_from_the_generator(name):
    T, x = CASES[name].build(), image()
    (y1, p1), (y2, p2), (_, p3) = (T(x, generator=gen(s)) for s in (7, 7, 8))
    assert p1.shape == (B, T.n_params) and p1.dtype == F64
    assert torch.equal(p1, p2) and torch.equal(y1, y2) and not torch.equal(p1, p3)
    assert len({tuple(r) for r in p1.tolist()}) > 1, "every sample got the same element"
    assert torch.equal(T.sample(B, gen(7), img_size=(8, 8)), p1)


@pytest.mark.parametrize("dtype", [torch.float32, F64, torch.complex64])
@pytest.mark.parametrize("name", NAMES)
def test_linear_per_sample_and_keeps_shape_and_dtype(name, dtype):
    """T_g(a x + b z) = a T_g x + b T_g z, and a batch equals its samples one by one."""
    T, x, z = CASES[name].build(), image(dtype=dtype), image(dtype=dtype, seed=2)
    p = T.sample(B, gen(3), img_size=(8, 8))
    tx = T.apply(x, p)
    assert tx.shape == x.shape and tx.dtype == dtype
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype != F64 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(T.apply(2 * x - 3 * z, p), 2 * tx - 3 * T.apply(z, p), **tol)
    alone = torch.cat([T.apply(x[i : i + 1], p[i : i + 1]) for i in range(B)])
    torch.testing.assert_close(alone, tx, rtol=0, atol=1e-12 if dtype == F64 else 1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_adjoint_is_the_transpose(name):
    T, x, z = CASES[name].build(), image(), image(seed=2)
    p = T.sample(B, gen(4), img_size=(8, 8))
    lhs, rhs = (T.apply(x, p) * z).sum(), (x * T.adjoint(z, p)).sum()
    assert abs(float(lhs - rhs)) <= 1e-10 * float(x.norm() * z.norm()), f"{name}: <Tx, z> - <x, T'z> = {float(lhs - rhs)}"


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].build().exact])
def test_exact_transforms_are_permutations_with_an_exact_inverse(name):
    T, x = CASES[name].build(), image(dtype=torch.complex64)
    y, p = T(x, generator=gen(5))
    assert not torch.equal(y, x)
    assert torch.equal(T.inverse(y, p), x) and torch.equal(T.apply(T.inverse(x, p), p), x)
    assert torch.equal(T.adjoint(y, p), T.inverse(y, p))
    assert torch.equal(y.flatten(2).abs().sort(-1).values, x.flatten(2).abs().sort(-1).values)  # same pixels


@pytest.mark.parametrize("name", GROUPS)
def test_groups_are_closed_under_composition(name):
    """For every pair of elements g, h of a 4 x 4 image, T_h T_g is some T_k: the maps form a group."""
    T = CASES[name].build()
    e = T.elements((4, 4))
    n = e.shape[0]
    x = image((1, 1, 4, 4)).expand(n, 1, 4, 4)
    maps = T.apply(x, e)  # one image per element
    known = {tuple(m.flatten().tolist()) for m in maps}  # distinct maps (a product may list one twice)
    assert len(known) > 1
    twice = T.apply(maps.repeat_interleave(n, 0), e.repeat(n, 1))  # every (g, h) pair
    outside = [tuple(m.flatten().tolist()) not in known for m in twice]
    assert not any(outside), f"{name}: {sum(outside)} of {n * n} compositions are not elements"


@pytest.mark.parametrize("name", NAMES)
def test_refuses_bad_inputs_with_one_line(name):
    T, x = CASES[name].build(), image()
    for call in (
        lambda: T.apply(x, torch.zeros(B + 1, T.n_params, dtype=F64)),  # one element per sample
        lambda: T.apply(x[0], torch.zeros(B, T.n_params, dtype=F64)),  # not (B, C, H, W)
        lambda: T.sample(0, gen(0), img_size=(8, 8)),
    ):
        with pytest.raises(ValueError) as e:
            call()
        assert "\n" not in str(e.value)
