"""tv_reconstruct: closed forms (a step edge under TV denoising, least squares at λ = 0), optimality on a complex
multi-coil operator, the exact adjoint of the discrete gradient, per-sample λ, nonnegativity and bad input."""

import pytest
import torch

from selfinv.physics import Denoising, Inpainting, Matrix, MultiCoilMRI
from selfinv.physics.solvers import _gradient, _gradient_adjoint, total_variation, tv_objective, tv_reconstruct


def _step(h=8, w=12, n1=5, dtype=torch.float64):
    y = torch.zeros(1, 1, h, w, dtype=dtype)
    y[..., n1:] = 1.0
    return y


def test_step_edge_closed_form_per_sample_lam():
    """TV denoising of a vertical step (heights 0 | 1, n1 and n2 columns): each side moves towards the other by
    λ / (its number of columns) (the jump costs λH, the fidelity H·n·δ²/2): a = λ/n1, b = 1 − λ/n2, exactly."""
    h, w, n1 = 8, 12, 5
    y = torch.cat([_step(h, w, n1), _step(h, w, n1)])  # the same edge twice, two weights
    lam = torch.tensor([0.5, 0.25], dtype=torch.float64)
    x = tv_reconstruct(Denoising(), y, lam, n_iter=3000)
    for i, l in enumerate(lam.tolist()):
        assert torch.allclose(x[i, ..., :n1], torch.full_like(x[i, ..., :n1], l / n1), atol=1e-8)
        assert torch.allclose(x[i, ..., n1:], torch.full_like(x[i, ..., n1:], 1 - l / (w - n1)), atol=1e-8)


def test_horizontal_edge_and_transpose_symmetry():
    y = _step(12, 8, 5).transpose(-1, -2).contiguous()  # (8, 12): rows 0..4 zero, rows 5..7 one
    x = tv_reconstruct(Denoising(), y, 0.5, n_iter=3000)
    assert torch.allclose(x[..., :5, :], torch.full_like(x[..., :5, :], 0.5 / 5), atol=1e-8)
    assert torch.allclose(x[..., 5:, :], torch.full_like(x[..., 5:, :], 1 - 0.5 / 3), atol=1e-8)


def test_lam_zero_is_least_squares():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(40, 16, generator=g, dtype=torch.float64)
    op = Matrix(m, in_shape=(1, 4, 4))
    y = torch.randn(2, 40, generator=g, dtype=torch.float64)
    ls = torch.linalg.lstsq(m, y.T).solution.T.reshape(2, 1, 4, 4)
    x = tv_reconstruct(op, y, 0.0, n_iter=1000)
    assert torch.allclose(x, ls, atol=1e-7)


def _mri(seed=0, b=2):
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(1, 3, 12, 12, generator=g, dtype=torch.complex128)
    maps = maps / maps.abs().square().sum(1, keepdim=True).sqrt()
    mask = (torch.rand(b, 1, 12, 12, generator=g) < 0.4).double()
    x = torch.zeros(b, 1, 12, 12, dtype=torch.complex128)
    x[..., 3:9, 2:7] = 1 + 0.5j
    op = MultiCoilMRI(mask, maps)
    y = op.A(x) + 0.05 * op._restrict(torch.randn(op.A(x).shape, generator=g, dtype=torch.complex128))
    return op, y, g


def test_complex_multicoil_is_a_minimiser():
    """The objective is convex: at the minimiser no direction decreases it. Random complex directions at two step
    lengths; a result 100 iterations short of convergence fails this (checked below)."""
    op, y, g = _mri()
    lam = 0.02
    x = tv_reconstruct(op, y, lam, n_iter=1500)
    f0 = tv_objective(op, y, x, lam)
    for eps in (1e-3, 1e-2):
        for _ in range(8):
            d = torch.randn(x.shape, generator=g, dtype=x.dtype)
            assert bool((tv_objective(op, y, x + eps * d, lam) >= f0 - 1e-6).all())
    early = tv_reconstruct(op, y, lam, n_iter=20)
    assert bool((tv_objective(op, y, early, lam) > f0 + 1e-4).all())
    assert bool((tv_objective(op, y, x, lam) < tv_objective(op, y, op.A_dagger(y), lam)).all())


def test_batch_equals_samples_one_by_one():
    op, y, _ = _mri(1)
    x = tv_reconstruct(op, y, 0.02, n_iter=200)
    for i in range(2):
        single = MultiCoilMRI(op.mask[i : i + 1], op.coil_maps)
        assert torch.allclose(tv_reconstruct(single, y[i : i + 1], 0.02, n_iter=200), x[i : i + 1], atol=1e-10)


def test_gradient_adjoint_exact_float64():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.complex128)
    q = torch.randn(2, 3, 2, 7, 9, generator=g, dtype=torch.complex128)
    lhs = torch.vdot(_gradient(x).flatten(), q.flatten())
    rhs = torch.vdot(x.flatten(), _gradient_adjoint(q).flatten())
    assert abs(lhs - rhs) < 1e-12 * abs(lhs)
    assert torch.allclose(total_variation(_step()), torch.tensor([8.0], dtype=torch.float64))


def test_nonneg_projects():
    y = -torch.ones(1, 1, 6, 6, dtype=torch.float64)
    y[..., 2:4, 2:4] = 1.0
    x = tv_reconstruct(Denoising(), y, 0.01, n_iter=500, nonneg=True)
    assert bool((x >= 0).all()) and float(x[..., 0, 0]) == 0.0
    assert float(x[..., 2, 2]) > 0.5


def test_x0_start_and_shape():
    op = Inpainting(torch.ones(1, 1, 6, 6))
    y = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    x = tv_reconstruct(op, y, 0.0, n_iter=5, x0=y.clone())
    assert torch.allclose(x, y)  # a least-squares start with lam = 0 stays put


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lam": -0.1}, "lam must be finite and >= 0"),
        ({"lam": float("nan")}, "lam must be finite"),
        ({"lam": torch.ones(3)}, "one value per sample"),
        ({"lam": 0.1, "n_iter": 0}, "n_iter must be >= 1"),
        ({"lam": 0.1, "x0": torch.zeros(1, 1, 5, 5)}, "x0 has shape"),
    ],
)
def test_bad_arguments(kwargs, match):
    op = Inpainting(torch.ones(1, 1, 6, 6))
    with pytest.raises(ValueError, match=match):
        tv_reconstruct(op, torch.zeros(1, 1, 6, 6), **kwargs)


def test_bad_measurements():
    op, y, _ = _mri()
    with pytest.raises(ValueError, match="nonneg=True needs a real image"):
        tv_reconstruct(op, y, 0.1, nonneg=True)
    bad = y.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        tv_reconstruct(op, bad, 0.1)
    with pytest.raises(ValueError, match="must be complex"):
        tv_reconstruct(op, y.real, 0.1)
