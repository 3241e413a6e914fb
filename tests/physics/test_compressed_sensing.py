"""CompressedSensing (Gaussian and structured sign-DCT-subsampling) and the orthonormal DCT."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

from selfinv.noise import Gaussian
from selfinv.physics.compressed_sensing import MAX_DENSE_ENTRIES, CompressedSensing, dct, idct
from tests.helpers import gen

F64 = torch.float64


def make(kind: str, m: int, shape: tuple[int, ...], seed: int = 0, dtype=F64) -> CompressedSensing:
    return CompressedSensing(m, shape, kind=kind, generator=gen(seed), dtype=dtype)


def dense(op: CompressedSensing) -> torch.Tensor:
    """The (m, n) matrix of an operator, column j = A e_j."""
    eye = torch.eye(op.n, dtype=F64).reshape(op.n, *op.img_shape)
    return op.A(eye).T


def op_norm(a: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a, ord=2))


# ---------------------------------------------------------------------- the DCT
@pytest.mark.parametrize("n", [1, 2, 3, 8, 15, 64, 255, 1000])
def test_dct_matches_scipy(n):
    x = torch.randn(4, n, dtype=F64, generator=gen(n))
    ref2 = scipy.fft.dct(x.numpy(), type=2, norm="ortho", axis=-1)
    ref3 = scipy.fft.dct(x.numpy(), type=3, norm="ortho", axis=-1)
    assert np.abs(dct(x).numpy() - ref2).max() <= 1e-12
    assert np.abs(idct(x).numpy() - ref3).max() <= 1e-12
    assert torch.allclose(idct(dct(x)), x, rtol=0, atol=1e-12)


def test_dct_float32_and_batched_shape():
    x = torch.randn(2, 3, 17, dtype=F64, generator=gen(0))
    out = dct(x.float())
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert torch.allclose(out.double(), dct(x), atol=1e-5)


def test_dct_rejects_complex():
    with pytest.raises(ValueError, match="real"):
        dct(torch.zeros(1, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="real"):
        idct(torch.zeros(1, 4, dtype=torch.complex64))


# ---------------------------------------------------------------------- structured
@pytest.mark.parametrize("shape,m", [((1, 4, 4), 5), ((3, 5, 7), 40), ((2, 3), 6), ((1, 1, 1), 1)])
def test_structured_equals_explicit_matrix_with_orthonormal_rows(shape, m):
    op = make("structured", m, shape, seed=3)
    n = math.prod(shape)
    c = scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0)  # C[k, j] = k-th coefficient of e_j
    expected = torch.from_numpy(c[op.indices.numpy()] * op.signs.numpy()[None, :])
    a = dense(op)
    assert (a - expected).abs().max() <= 1e-12
    assert (a @ a.T - torch.eye(m, dtype=F64)).abs().max() <= 1e-12
    # the adjoint, pseudo-inverse and normal operator are the matrix ones
    y = torch.randn(3, m, dtype=F64, generator=gen(1))
    x = torch.randn(3, *shape, dtype=F64, generator=gen(2))
    assert torch.allclose(op.A_adjoint(y).reshape(3, n), y @ a, atol=1e-12)
    assert torch.allclose(op.A_dagger(y).reshape(3, n), y @ torch.linalg.pinv(a).T, atol=1e-12)
    assert torch.allclose(op.normal(x).reshape(3, n), x.reshape(3, n) @ (a.T @ a), atol=1e-12)


def test_structured_indices_and_signs():
    op = make("structured", 50, (1, 10, 10))
    idx = op.indices
    assert idx.shape == (50,) and bool((idx[1:] > idx[:-1]).all()) and 0 <= int(idx[0]) and int(idx[-1]) < 100
    assert set(op.signs.unique().tolist()) == {-1.0, 1.0}


# ---------------------------------------------------------------------- both kinds
CASES = [
    ("structured", 30, (1, 8, 8)),
    ("structured", 63, (3, 3, 7)),
    ("structured", 64, (1, 8, 8)),  # m = n: orthogonal
    ("gaussian", 20, (1, 8, 8)),
    ("gaussian", 40, (2, 3, 5)),
    ("gaussian", 50, (1, 4, 5)),  # m > n: overdetermined
]


@pytest.mark.parametrize("kind,m,shape", CASES)
def test_adjointness_float64(kind, m, shape):
    op = make(kind, m, shape)
    x = torch.randn(4, *shape, dtype=F64, generator=gen(1))
    y = torch.randn(4, m, dtype=F64, generator=gen(2))
    lhs = (op.A(x) * y).sum()
    rhs = (x * op.A_adjoint(y)).sum()
    bound = 1e-10 * x.norm() * y.norm() * op_norm(dense(op))
    assert abs(float(lhs - rhs)) <= float(bound)


@pytest.mark.parametrize("kind,m,shape", CASES)
def test_pseudo_inverse_identities(kind, m, shape):
    op = make(kind, m, shape)
    assert op.exact_dagger
    x = torch.randn(4, *shape, dtype=F64, generator=gen(1))
    ax = op.A(x)
    assert torch.allclose(op.A(op.A_dagger(ax)), ax, rtol=0, atol=1e-10 * float(ax.abs().max()))  # A A† A = A
    xd = op.A_dagger(ax)
    assert torch.allclose(op.A_dagger(op.A(xd)), xd, rtol=0, atol=1e-10 * float(xd.abs().max()))  # A† A A† = A†
    assert torch.allclose(op.normal(x), op.A_adjoint(op.A(x)), atol=1e-12)


@pytest.mark.parametrize("kind", ["gaussian", "structured"])
def test_batch_equals_samples_and_float32(kind):
    op64 = make(kind, 24, (1, 6, 6), dtype=F64)
    op32 = make(kind, 24, (1, 6, 6), dtype=torch.float32)
    x = torch.randn(5, 1, 6, 6, dtype=F64, generator=gen(4))
    y = op64.A(x)
    assert y.shape == (5, 24) and y.dtype == F64
    assert torch.allclose(torch.cat([op64.A(x[i : i + 1]) for i in range(5)]), y, atol=1e-13)
    y32 = op32.A(x.float())
    assert y32.dtype == torch.float32
    assert torch.allclose(y32.double(), y, atol=1e-5)
    for f in (op32.A_adjoint, op32.A_dagger):
        out = f(y32)
        assert out.shape == (5, 1, 6, 6) and out.dtype == torch.float32
    assert torch.allclose(op32.A_dagger(y32).double(), op64.A_dagger(y), atol=1e-4)


@pytest.mark.parametrize("kind", ["gaussian", "structured"])
def test_autograd(kind):
    op = make(kind, 10, (1, 3, 4))
    x = torch.randn(2, 1, 3, 4, dtype=F64, generator=gen(5), requires_grad=True)
    y = torch.randn(2, 10, dtype=F64, generator=gen(6), requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradcheck(op.A_dagger, (y,))
    assert torch.autograd.gradcheck(op.normal, (x,))


def test_forward_with_noise():
    op = CompressedSensing(16, (1, 8, 8), kind="structured", generator=gen(0), noise=Gaussian(0.1))
    x = torch.rand(2, 1, 8, 8, generator=gen(1))
    y1 = op(x, generator=gen(2))
    y2 = op(x, generator=gen(2))
    assert y1.shape == (2, 16) and torch.equal(y1, y2) and not torch.equal(y1, op.A(x))


# ---------------------------------------------------------------------- Gaussian
def test_gaussian_pinv_matches_torch():
    for m, shape in [(20, (1, 8, 8)), (50, (1, 4, 5)), (64, (1, 8, 8))]:
        op = make("gaussian", m, shape)
        assert op.matrix.shape == (m, math.prod(shape)) and op.matrix.dtype == F64
        ref = torch.linalg.pinv(op.matrix)
        assert (op.pinv - ref).abs().max() <= 1e-10 * ref.abs().max()
        assert torch.equal(dense(op), op.matrix)


def test_gaussian_entry_variance():
    m, n = 100, 2500
    a = make("gaussian", m, (1, 50, 50), seed=7).matrix
    count = m * n
    var = float(a.var())
    se = (1 / m) * math.sqrt(2 / (count - 1))  # standard error of the sample variance of N(0, 1/m)
    assert abs(var - 1 / m) <= 4 * se
    assert abs(float(a.mean())) <= 4 * math.sqrt(1 / m / count)


def test_gaussian_same_draws_in_both_dtypes():
    a64 = make("gaussian", 10, (1, 4, 4), dtype=F64).matrix
    a32 = make("gaussian", 10, (1, 4, 4), dtype=torch.float32).matrix
    assert a32.dtype == torch.float32 and torch.equal(a32, a64.float())


# ---------------------------------------------------------------------- seeds
@pytest.mark.parametrize("kind,names", [("gaussian", ("matrix", "pinv")), ("structured", ("signs", "indices"))])
def test_seeds(kind, names):
    a, b, c = make(kind, 20, (1, 8, 8), seed=1), make(kind, 20, (1, 8, 8), seed=1), make(kind, 20, (1, 8, 8), seed=2)
    for name in names:
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not all(torch.equal(getattr(a, name), getattr(c, name)) for name in names)
    x = torch.randn(2, 1, 8, 8, dtype=F64, generator=gen(0))
    assert torch.equal(a.A(x), b.A(x)) and not torch.allclose(a.A(x), c.A(x))


def test_generator_is_the_only_randomness():
    torch.manual_seed(0)
    a = make("structured", 20, (1, 8, 8), seed=5)
    torch.manual_seed(1)
    b = make("structured", 20, (1, 8, 8), seed=5)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.signs, b.signs)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("kind", ["gaussian", "structured"])
def test_bad_inputs(kind):
    op = make(kind, 10, (1, 4, 4))
    with pytest.raises(ValueError, match=r"CompressedSensing: x has shape \(2, 1, 4, 5\)"):
        op.A(torch.zeros(2, 1, 4, 5, dtype=F64))
    with pytest.raises(ValueError, match="CompressedSensing: x has shape"):
        op.A(torch.zeros(2, 16, dtype=F64))
    with pytest.raises(ValueError, match=r"CompressedSensing: y has shape \(2, 11\), expected \(B, 10\)"):
        op.A_adjoint(torch.zeros(2, 11, dtype=F64))
    with pytest.raises(ValueError, match="CompressedSensing: y has shape"):
        op.A_dagger(torch.zeros(2, 10, 1, dtype=F64))
    with pytest.raises(ValueError, match="must be real"):
        op.A(torch.zeros(2, 1, 4, 4, dtype=torch.complex128))
    with pytest.raises(ValueError, match="must be real"):
        op.A_adjoint(torch.zeros(2, 10, dtype=torch.complex64))
    with pytest.raises(ValueError, match="must be batched"):
        op.A_adjoint(torch.zeros(10, dtype=F64))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"m": 0, "img_shape": (1, 4, 4)}, "m must be >= 1"),
        ({"m": -3, "img_shape": (1, 4, 4), "kind": "structured"}, "m must be >= 1"),
        ({"m": 17, "img_shape": (1, 4, 4), "kind": "structured"}, "m must be <= n = 16"),
        ({"m": 2.5, "img_shape": (1, 4, 4)}, "m must be an int"),
        ({"m": True, "img_shape": (1, 4, 4)}, "m must be an int"),
        ({"m": 4, "img_shape": (1, 0, 4)}, "img_shape must be a tuple of positive ints"),
        ({"m": 4, "img_shape": ()}, "img_shape must be a tuple of positive ints"),
        ({"m": 4, "img_shape": "abc"}, "img_shape must be a tuple of positive ints"),
        ({"m": 4, "img_shape": (4,), "kind": "fourier"}, "kind must be one of 'gaussian', 'structured'"),
        ({"m": 4, "img_shape": (4,), "dtype": torch.complex64}, "dtype must be"),
        ({"m": 4, "img_shape": (4,), "generator": 0}, "generator must be"),
        ({"m": MAX_DENSE_ENTRIES // 4096 + 1, "img_shape": (1, 64, 64)}, "use kind='structured'"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompressedSensing(**kwargs)


def test_gaussian_allows_m_greater_than_n_and_int_shape():
    op = CompressedSensing(20, 16, kind="gaussian", generator=gen(0))
    assert op.img_shape == (16,) and op.A(torch.zeros(1, 16)).shape == (1, 20)
