"""Contract tests run on every registered operator (tests/contracts/operators.py), in float64 and float32."""

from __future__ import annotations

import pytest
import torch

from selfinv.physics import LinearOperator, cg_dagger
from tests.contracts.operators import OPERATOR_CASES

NAMES = list(OPERATOR_CASES)
DTYPES = [torch.float64, torch.float32]


def build(name, batch=3, per_sample=True, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    op, x = OPERATOR_CASES[name].build(batch, per_sample, dtype, g)
    return op.to(device), x.to(device)


def rand_like(t: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if t.is_complex():
        return torch.view_as_complex(torch.randn((*t.shape, 2), generator=g, dtype=t.real.dtype)).to(t.device)
    return torch.randn(t.shape, generator=g, dtype=t.dtype).to(t.device)


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.conj() * b).sum() if a.is_complex() else (a * b).sum()


def op_norm(op: LinearOperator, x: torch.Tensor, iters: int = 30) -> float:
    v = rand_like(x, 99)
    for _ in range(iters):
        v = op.normal(v)
        v = v / v.norm()
    return float(inner(v, op.normal(v)).real.sqrt())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_adjointness(name, dtype, device):
    """<Ax, y> = <x, A^H y> on every device of the ``device`` fixture (tests/conftest.py)."""
    op, x = build(name, dtype=dtype, device=device)
    y = rand_like(op.A(x), 1)
    x = rand_like(x, 2)
    lhs, rhs = inner(op.A(x), y), inner(x, op.A_adjoint(y))
    if not x.is_complex():  # real images: the adjoint for the real inner product Re<a, b> of the measurements
        lhs, rhs = lhs.real, rhs.real
    scale = x.norm() * y.norm() * op_norm(op, x)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert float((lhs - rhs).abs()) <= tol * float(scale)
    # the adjoint is an operator with the same action, and its adjoint is the operator again
    assert torch.equal(op.H.A(y), op.A_adjoint(y))
    assert torch.equal(op.H.H.A(x), op.A(x))
    assert torch.allclose(op.normal(x), op.A_adjoint(op.A(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_linearity(name):
    op, x1 = build(name)
    x2 = rand_like(x1, 5)
    a, b = 0.7, -1.3
    assert torch.allclose(op.A(a * x1 + b * x2), a * op.A(x1) + b * op.A(x2), rtol=1e-10, atol=1e-12)
    y1, y2 = op.A(x1), rand_like(op.A(x1), 6)
    assert torch.allclose(op.A_adjoint(a * y1 + b * y2), a * op.A_adjoint(y1) + b * op.A_adjoint(y2), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_pseudo_inverse(name):
    case = OPERATOR_CASES[name]
    op, x = build(name)
    ax = op.A(x)
    x_dag = op.A_dagger(ax, tol=1e-10, max_iter=500)
    assert x_dag.shape == x.shape and x_dag.dtype == x.dtype
    err = float((op.A(x_dag) - ax).norm() / ax.norm())
    if op.exact_dagger:
        assert err < 1e-10  # A A† A = A
        y = rand_like(ax, 3)
        yd = op.A_dagger(y)
        # the other Penrose conditions: A† A A† = A†, and A† y is orthogonal to the nullspace (min-norm)
        assert torch.allclose(op.A_dagger(op.A(yd)), yd, rtol=1e-9, atol=1e-10)
        v = rand_like(x, 4)
        null = v - op.A_dagger(op.A(v))
        assert float(inner(null, yd).abs()) < 1e-10 * float(v.norm() * yd.norm())
    else:
        assert err < case.dagger_rtol


@pytest.mark.parametrize("name", NAMES)
def test_cg_dagger_matches_closed_form(name):
    op, x = build(name, batch=2)
    if not op.exact_dagger:
        pytest.skip("no closed form to compare with")
    y = rand_like(op.A(x), 7)
    assert torch.allclose(cg_dagger(op, y, tol=1e-12, max_iter=500), op.A_dagger(y), rtol=1e-6, atol=1e-8)


def test_matrix_dagger_matches_torch_pinv():
    from selfinv.physics import Matrix

    g = torch.Generator().manual_seed(0)
    for m, n, rank in [(4, 7, 3), (7, 4, 4), (6, 6, 2)]:
        a = torch.randn(m, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, n, generator=g, dtype=torch.float64)
        y = torch.randn(5, m, generator=g, dtype=torch.float64)
        ref = y @ torch.linalg.pinv(a).T
        op = Matrix(a)
        assert torch.allclose(op.A_dagger(y), ref, atol=1e-10)
        assert torch.allclose(cg_dagger(op, y, tol=1e-14, max_iter=100), ref, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_single_samples(name):
    op, x = build(name, batch=3, per_sample=True)
    y = op.A(x)
    z = rand_like(y, 8)
    for i in range(3):
        single = op.select(i)
        assert single.batch_size in (None, 1)
        assert torch.allclose(single.A(x[i : i + 1]), y[i : i + 1], rtol=1e-12, atol=1e-14)
        assert torch.allclose(single.A_adjoint(z[i : i + 1]), op.A_adjoint(z)[i : i + 1], rtol=1e-12, atol=1e-14)
        # noise is per sample too: the same generator state gives the same draw for sample i alone
        assert torch.allclose(single.noise.sigma, op.noise.sigma[i : i + 1])


@pytest.mark.parametrize("name", [n for n in NAMES if OPERATOR_CASES[n].per_sample_params])
def test_per_sample_parameters_act_per_sample(name):
    op, x = build(name, batch=3, per_sample=True)
    assert op.batch_size == 3
    same = x[:1].expand_as(x).clone()
    y = op.A(same)
    assert not torch.allclose(y[0], y[1]) and not torch.allclose(y[1], y[2])
    with pytest.raises(ValueError, match="batch"):
        op.A(torch.cat([x, x]))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_autograd(name):
    for dtype in DTYPES:
        op, x = build(name, dtype=dtype)
        y = op.A(x)
        complex_y = op.measurement_is_complex is True and not x.is_complex()  # real sky, complex visibilities
        assert y.dtype == ((torch.complex128 if dtype == torch.float64 else torch.complex64) if complex_y else x.dtype)
        assert op.A_adjoint(y).shape == x.shape and op.A_adjoint(y).dtype == x.dtype
    op, x = build(name)
    x = x.clone().requires_grad_(True)
    (op.A(x).abs() ** 2).sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and float(x.grad.abs().sum()) > 0
    y = rand_like(op.A(x), 9).requires_grad_(True)
    (op.A_adjoint(y).abs() ** 2).sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    y.grad = None
    (op.A_dagger(y, max_iter=20).abs() ** 2).sum().backward()
    assert y.grad is not None and bool(torch.isfinite(y.grad).all()) and float(y.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_clear_errors(name):
    op, x = build(name)
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        op.A(x.tolist())
    with pytest.raises(ValueError):
        op.A(x[0])  # no batch dimension or wrong rank
    wrong = x.real if x.is_complex() else torch.complex(x, torch.zeros_like(x))
    if op.is_complex is not None:
        with pytest.raises(ValueError, match="complex|real"):
            op.A(wrong)
    if OPERATOR_CASES[name].shape_checked:
        with pytest.raises(ValueError):
            op.A(x[..., :-1])
        with pytest.raises(ValueError):
            op.A_adjoint(op.A(x)[..., :-1])


@pytest.mark.parametrize("name", NAMES)
def test_physics_forward_noise(name):
    op, x = build(name)
    y1 = op(x, generator=torch.Generator().manual_seed(3))
    y2 = op(x, generator=torch.Generator().manual_seed(3))
    y3 = op(x, generator=torch.Generator().manual_seed(4))
    clean = op.A(x)
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    assert y1.shape == clean.shape and y1.dtype == clean.dtype
    # noise lives only where something is measured: y is zero wherever A x is zero for every x
    support = op.A(rand_like(x, 11)) != 0
    assert bool((y1[~support] == 0).all())
    assert op.with_noise(None)(x).equal(clean)
    assert op.noise is not None  # with_noise did not touch the original


@pytest.mark.parametrize("name", NAMES)
def test_operator_never_mutates(name):
    op, x = build(name)
    before = {k: v.clone() for k, v in op.state_dict().items()}
    op(x, generator=torch.Generator().manual_seed(0))
    op.A_dagger(op.A(x))
    after = op.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_every_exported_operator_is_in_the_contract_registry():
    from selfinv.physics import OPERATORS

    covered = set()
    for name in NAMES:
        op, _ = build(name, batch=1)
        covered |= {type(m) for m in op.modules()}
    missing = [name for name, cls in OPERATORS.items() if cls not in covered]
    assert not missing, f"operators without a contract-test case: {missing}"
