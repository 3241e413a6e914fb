"""Tests of selfinv.physics.blur: the circular-convolution operator, its kernels and the kernel sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from selfinv.noise import Gaussian
from selfinv.physics.blur import Blur, BlurKernelSampler, box_kernel, gaussian_kernel, motion_kernel
from tests.helpers import gen

F64 = torch.float64


def dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


def scipy_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Reference: scipy.ndimage.convolve(mode="wrap") image by image; kernel (B|1, C|1, kh, kw)."""
    xs, ks = x.numpy(), kernel.numpy()
    out = np.empty_like(xs)
    for b in range(xs.shape[0]):
        for c in range(xs.shape[1]):
            k = ks[b if ks.shape[0] > 1 else 0, c if ks.shape[1] > 1 else 0]
            out[b, c] = ndi.convolve(xs[b, c], k, mode="wrap")
    return torch.from_numpy(out)


def dense(op: Blur, shape: tuple[int, ...], fn: str = "A") -> torch.Tensor:
    """The matrix of op.<fn> on single images of the given (C, H, W) shape."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=F64).reshape(n, *shape)  # a batch of basis images (op must be shared)
    return getattr(op, fn)(basis).reshape(n, n).T


# ---------------------------------------------------------------------- the operator
@pytest.mark.parametrize(
    ("kshape", "ishape"),
    [((3, 3), (7, 10)), ((4, 4), (8, 6)), ((2, 5), (9, 7)), ((5, 2), (6, 11)), ((1, 1), (4, 5)), ((6, 7), (6, 7))],
)
def test_matches_scipy_convolve_wrap(kshape, ishape):
    g = gen(0)
    kernel = torch.randn(*kshape, generator=g, dtype=F64)
    x = torch.randn(2, 3, *ishape, generator=g, dtype=F64)
    err = (Blur(kernel).A(x) - scipy_blur(x, kernel[None, None])).abs().max()
    assert err < 1e-12


def test_per_sample_per_channel_kernel_matches_scipy():
    g = gen(1)
    kernel = torch.rand(3, 2, 4, 3, generator=g, dtype=F64)
    x = torch.randn(3, 2, 9, 8, generator=g, dtype=F64)
    assert (Blur(kernel).A(x) - scipy_blur(x, kernel)).abs().max() < 1e-12


@pytest.mark.parametrize(("kshape", "ishape"), [((3, 3), (7, 10)), ((4, 6), (8, 9)), ((5, 5), (5, 5))])
def test_adjointness(kshape, ishape):
    g = gen(2)
    op = Blur(torch.randn(2, 1, *kshape, generator=g, dtype=F64))
    x = torch.randn(2, 3, *ishape, generator=g, dtype=F64)
    y = torch.randn(2, 3, *ishape, generator=g, dtype=F64)
    norm = float(torch.fft.fft2(op.kernel, s=ishape).abs().max())  # ||A|| = max |K| (a shift leaves |K|)
    gap = abs(dot(op.A(x), y) - dot(x, op.A_adjoint(y)))
    assert gap <= 1e-10 * float(x.norm() * y.norm()) * norm
    assert torch.allclose(op.normal(x), op.A_adjoint(op.A(x)), atol=1e-12, rtol=0)
    assert torch.allclose(op.H.A(y), op.A_adjoint(y), atol=0, rtol=0)


@pytest.mark.parametrize("ksize", [(1, 1), (3, 3), (4, 4), (2, 5)])
def test_centred_delta_is_identity(ksize):
    kernel = torch.zeros(ksize, dtype=F64)
    kernel[ksize[0] // 2, ksize[1] // 2] = 1.0
    x = torch.randn(2, 2, 6, 7, generator=gen(3), dtype=F64)
    op = Blur(kernel)
    for fn in (op.A, op.A_adjoint, op.A_dagger, op.normal):
        assert (fn(x) - x).abs().max() < 1e-14


def test_symmetric_kernel_is_zero_phase():
    """A symmetric odd kernel centred at (kh//2, kw//2) gives a real spectrum: A is self-adjoint."""
    k = gaussian_kernel((1.0, 2.0), size=7)
    x = torch.randn(1, 1, 9, 12, generator=gen(4), dtype=F64)
    op = Blur(k)
    assert (op.A(x) - op.A_adjoint(x)).abs().max() < 1e-14


def test_dagger_inverts_a_kernel_without_spectral_zeros():
    g = gen(5)
    kernel = 0.2 * torch.rand(2, 1, 5, 4, generator=g, dtype=F64)
    kernel[:, :, 2, 2] = kernel.abs().sum(dim=(-2, -1)) + 0.5  # |K| >= 0.5 everywhere
    op = Blur(kernel)
    x = torch.randn(2, 3, 8, 9, generator=g, dtype=F64)
    assert (op.A_dagger(op.A(x)) - x).abs().max() < 1e-12
    assert (op.A(op.A_dagger(x)) - x).abs().max() < 1e-12
    x32 = x.float()
    assert (op.A_dagger(op.A(x32)) - x32).abs().max() < 1e-4


def test_dagger_with_spectral_zeros_is_the_pseudo_inverse():
    """A 4x4 box on 8x8 images has exact spectral zeros; A† must equal numpy's pinv of the dense A."""
    op = Blur(box_kernel(4))
    shape = (1, 8, 8)
    a = dense(op, shape).numpy()
    a_dag = dense(op, shape, "A_dagger").numpy()
    sv = np.linalg.svd(a, compute_uv=False)
    dropped = sv[sv <= 1e-6 * sv[0]]
    assert dropped.size > 0 and dropped.max() < 1e-14 * sv[0]  # only numerically-zero singular values dropped
    assert sv[sv > 1e-6 * sv[0]].min() > 1e-2 * sv[0]
    assert np.abs(a_dag - np.linalg.pinv(a, rcond=1e-6)).max() < 1e-12
    x = torch.randn(3, *shape, generator=gen(6), dtype=F64)
    assert (op.A(op.A_dagger(op.A(x))) - op.A(x)).abs().max() < 1e-13
    dx = op.A_dagger(op.A(op.A_dagger(x))) - op.A_dagger(x)
    assert dx.abs().max() < 1e-12


def test_float32_and_kernel_cast():
    g = gen(7)
    kernel = torch.rand(5, 5, generator=g, dtype=F64)
    x = torch.randn(2, 1, 12, 10, generator=g, dtype=F64)
    op = Blur(kernel)
    y32 = op.A(x.float())
    assert y32.dtype == torch.float32
    assert (y32.double() - op.A(x)).abs().max() < 1e-5
    assert Blur(kernel.float()).A(x).dtype == F64


def test_forward_adds_noise_reproducibly():
    op = Blur(gaussian_kernel(1.0), noise=Gaussian(0.1))
    x = torch.rand(2, 1, 16, 16, generator=gen(8), dtype=F64)
    y1, y2 = op(x, generator=gen(9)), op(x, generator=gen(9))
    assert torch.equal(y1, y2)
    assert 0.05 < float((y1 - op.A(x)).std()) < 0.15


def test_per_sample_kernels_act_per_sample():
    g = gen(10)
    op = BlurKernelSampler("motion", size=5)(3, generator=g)
    x = torch.randn(3, 2, 9, 8, generator=g, dtype=F64)
    assert op.batch_size == 3
    for fn in ("A", "A_adjoint", "A_dagger", "normal"):
        full = getattr(op, fn)(x)
        for i in range(3):
            one = getattr(op.select(i), fn)(x[i : i + 1])
            assert (full[i : i + 1] - one).abs().max() < 1e-12
    same = op.A(x[:1].expand(3, -1, -1, -1))  # one image, three kernels: three different blurs
    assert (same[0] - same[1]).abs().max() > 1e-3 and (same[1] - same[2]).abs().max() > 1e-3


def test_invalid_inputs_raise():
    g = gen(11)
    per_sample = Blur(torch.rand(3, 1, 3, 3, generator=g))
    with pytest.raises(ValueError, match="Blur: per-sample parameters are for a batch of 3"):
        per_sample.A(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="batch of 3"):
        per_sample.A_adjoint(torch.rand(4, 1, 8, 8))
    op = Blur(torch.rand(5, 4, generator=g))
    with pytest.raises(ValueError, match=r"Blur: x must have shape \(B, C, H, W\)"):
        op.A(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="larger than x's image"):
        op.A(torch.rand(1, 1, 4, 8))
    with pytest.raises(ValueError, match="larger than y's image"):
        op.A_adjoint(torch.rand(1, 1, 8, 3))
    with pytest.raises(ValueError, match="larger than y's image"):
        op.A_dagger(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="Blur: x must be real"):
        op.A(torch.rand(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="floating-point"):
        op.A(torch.ones(1, 1, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="kernel has 3 channels but x has 2"):
        Blur(torch.rand(1, 3, 3, 3)).A(torch.rand(1, 2, 8, 8))


@pytest.mark.parametrize(
    ("kernel", "match"),
    [
        (torch.rand(3, 3, dtype=torch.complex64), "kernel must be real"),
        (torch.tensor([[0.0, float("nan")], [1.0, 0.0]]), "NaN or Inf"),
        (torch.tensor([[0.0, float("inf")], [1.0, 0.0]]), "NaN or Inf"),
        (torch.rand(1, 3, 3), r"kernel must have shape \(kh, kw\)"),
        (torch.rand(1, 1, 0, 3), "kernel is empty"),
        ([[1.0]], "kernel must be a torch.Tensor"),
    ],
)
def test_invalid_kernels_raise(kernel, match):
    with pytest.raises(ValueError, match=f"Blur: .*{match}"):
        Blur(kernel)


def test_invalid_rtol_raises():
    with pytest.raises(ValueError, match="Blur: rtol"):
        Blur(torch.ones(1, 1), rtol=-1.0)


def test_autograd_gradcheck():
    g = gen(12)
    op = Blur(torch.rand(1, 1, 3, 2, generator=g, dtype=F64))
    x = torch.randn(1, 1, 5, 6, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A_adjoint, (x,))
    assert torch.autograd.gradcheck(op.A_dagger, (x,), fast_mode=True)


# ---------------------------------------------------------------------- kernels
def test_gaussian_kernel_matches_reference():
    sigma, size = 1.3, 9
    r = np.arange(size) - size // 2
    ref = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    ref /= ref.sum()
    k = gaussian_kernel(sigma, size=size)
    assert k.shape == (1, 1, size, size) and k.dtype == F64
    assert np.abs(k[0, 0].numpy() - ref).max() < 1e-15
    # scipy's gaussian filter (radius int(3 sigma + 0.5) = 4) applied to a delta is the same kernel
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    assert np.abs(ndi.gaussian_filter(delta, sigma, truncate=3.0, mode="wrap") - k[0, 0].numpy()).max() < 1e-15
    assert gaussian_kernel(1.3).shape[-1] == 2 * math.ceil(3.9) + 1
    assert gaussian_kernel(1.0, size=6).shape == (1, 1, 6, 6)
    assert gaussian_kernel(1.0, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0])
def test_anisotropic_gaussian_matches_covariance_reference(angle):
    sy, sx, size = 0.8, 2.5, 11
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    cov = rot @ np.diag([sx**2, sy**2]) @ rot.T  # in (x right, y up) coordinates
    r = np.arange(size) - size // 2
    v = np.stack(np.meshgrid(r, -r, indexing="xy"), -1)  # v[row, col] = (x, y_up)
    ref = np.exp(-0.5 * np.einsum("...i,ij,...j->...", v, np.linalg.inv(cov), v))
    ref /= ref.sum()
    k = gaussian_kernel((sy, sx), size=size, angle=angle)[0, 0].numpy()
    assert np.abs(k - ref).max() < 1e-14
    if angle == 0.0:  # wide along x: the centre row holds more than the centre column
        assert k[size // 2].sum() > 2 * k[:, size // 2].sum()


def test_gaussian_kernel_per_sample():
    sigma = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    k = gaussian_kernel(sigma)
    assert k.shape == (3, 1, 13, 13)
    assert torch.allclose(k.sum(dim=(-2, -1)), torch.ones(3, 1, dtype=F64), atol=1e-15)
    for i in range(3):
        assert torch.equal(k[i : i + 1], gaussian_kernel(float(sigma[i]), size=13))
    assert (k[0] - k[1]).abs().max() > 0.1
    ka = gaussian_kernel((1.0, 2.0), size=9, angle=torch.tensor([0.0, 90.0]))
    assert ka.shape == (2, 1, 9, 9)
    assert torch.allclose(ka[1, 0], ka[0, 0].T, atol=1e-15)  # turned a quarter: the axes swap


def test_box_kernel():
    assert torch.equal(box_kernel(3), torch.full((1, 1, 3, 3), 1 / 9, dtype=F64))
    assert torch.equal(box_kernel(4), torch.full((1, 1, 4, 4), 1 / 16, dtype=F64))
    k = box_kernel(torch.tensor([1, 3, 4]))
    assert k.shape == (3, 1, 4, 4)
    delta = torch.zeros(4, 4, dtype=F64)
    delta[2, 2] = 1.0
    assert torch.equal(k[0, 0], delta)
    three = torch.zeros(4, 4, dtype=F64)
    three[1:4, 1:4] = 1 / 9
    assert torch.allclose(k[1, 0], three, atol=1e-16)
    assert torch.allclose(k[2, 0], torch.full((4, 4), 1 / 16, dtype=F64), atol=1e-16)


def test_motion_kernel_orientation_and_length():
    k0 = motion_kernel(5, 0.0)[0, 0]
    assert k0.shape == (5, 5)
    assert torch.allclose(k0[2], torch.full((5,), 0.2, dtype=F64), atol=1e-15)  # horizontal, 5 pixels
    assert float(k0.sum() - k0[2].sum()) == 0.0
    k90 = motion_kernel(7, 90.0, size=9)[0, 0]
    assert float(k90[:, 4].sum()) == pytest.approx(1.0, abs=1e-14)
    assert int((k90[:, 4] > 0).sum()) == 7
    # 45 degrees counter-clockwise as displayed: up and to the right
    k45 = motion_kernel(5, 45.0, size=7)[0, 0]
    assert k45[2, 4] > 0 and k45[4, 2] > 0 and k45[2, 2] == 0 and k45[4, 4] == 0
    # non-integer length: the centre row of a horizontal blur spreads a point over `length` pixels
    k = motion_kernel(6.5, 0.0)[0, 0]
    assert k.shape == (7, 7)
    row = k[3] / k[3].max()
    assert torch.allclose(row, torch.tensor([0.75, 1, 1, 1, 1, 1, 0.75], dtype=F64), atol=1e-15)
    assert float(row.sum()) == pytest.approx(6.5, abs=1e-14)
    # the second moment along the segment is that of a uniform segment of L pixels: (L^2 - 1) / 12
    kl = motion_kernel(9, 0.0)[0, 0]
    pos = torch.arange(9, dtype=F64) - 4
    assert float((kl.sum(0) * pos**2).sum()) == pytest.approx((81 - 1) / 12, abs=1e-12)
    # any angle: the kernel is point-symmetric and its support lies within the segment's unit neighbourhood
    ang, length = 30.0, 8.0
    k30 = motion_kernel(length, ang, size=11)[0, 0]
    assert torch.allclose(k30, k30.flip(0, 1), atol=1e-15)
    r = torch.arange(11, dtype=F64) - 5
    gx, gy = r[None, :].expand(11, 11), -r[:, None].expand(11, 11)
    along = gx * math.cos(math.radians(ang)) + gy * math.sin(math.radians(ang))
    across = -gx * math.sin(math.radians(ang)) + gy * math.cos(math.radians(ang))
    support = k30 > 0
    assert float(across[support].abs().max()) < 1
    assert (length - 1) / 2 <= float(along[support].abs().max()) < (length - 1) / 2 + 1


@pytest.mark.parametrize("length", [0.0, 0.5, 1.0])
def test_short_motion_is_identity(length):
    k = motion_kernel(length, 37.0)
    assert k.shape == (1, 1, 1, 1) and float(k) == 1.0
    k3 = motion_kernel(length, 37.0, size=3)[0, 0]
    assert float(k3[1, 1]) == 1.0 and float(k3.sum()) == 1.0


def test_motion_kernel_per_sample():
    length = torch.tensor([3.0, 6.0, 9.0], dtype=F64)
    angle = torch.tensor([0.0, 45.0, 100.0], dtype=F64)
    k = motion_kernel(length, angle)
    assert k.shape == (3, 1, 9, 9)
    for i in range(3):
        assert torch.allclose(k[i : i + 1], motion_kernel(float(length[i]), float(angle[i]), size=9), atol=1e-15)
    assert motion_kernel(length, 10.0).shape == (3, 1, 9, 9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gaussian_kernel(0.0), "gaussian_kernel: sigma must be > 0"),
        (lambda: gaussian_kernel(-1.0), "gaussian_kernel: sigma must be > 0"),
        (lambda: gaussian_kernel(torch.tensor([1.0, 0.0])), "gaussian_kernel: sigma must be > 0"),
        (lambda: gaussian_kernel(float("nan")), "gaussian_kernel: sigma_y must be finite"),
        (lambda: gaussian_kernel((1.0, float("nan"))), "gaussian_kernel: sigma_x must be finite"),
        (lambda: gaussian_kernel((1.0, 2.0, 3.0)), "gaussian_kernel: sigma must be a number"),
        (lambda: gaussian_kernel(1.0, size=0), "gaussian_kernel: size must be >= 1"),
        (lambda: gaussian_kernel(1.0, size=2.5), "gaussian_kernel: size must be an integer"),
        (lambda: gaussian_kernel(1.0, angle=float("nan")), "gaussian_kernel: angle must be finite"),
        (
            lambda: gaussian_kernel(torch.ones(2), angle=torch.zeros(3)),
            "gaussian_kernel: per-sample parameters disagree",
        ),
        (lambda: box_kernel(0), "box_kernel: size must be >= 1"),
        (lambda: box_kernel(torch.tensor([2.0, 1.5])), "box_kernel: size must hold integers"),
        (lambda: box_kernel(torch.tensor([2, 0])), "box_kernel: size must be >= 1"),
        (lambda: motion_kernel(-1.0, 0.0), "motion_kernel: length must be >= 0"),
        (lambda: motion_kernel(float("nan"), 0.0), "motion_kernel: length must be finite"),
        (lambda: motion_kernel(3.0, float("inf")), "motion_kernel: angle must be finite"),
        (lambda: motion_kernel(3.0, 0.0, size=0), "motion_kernel: size must be >= 1"),
    ],
)
def test_invalid_kernel_parameters_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------- sampler
def test_sampler_gaussian_is_reproducible_and_in_range():
    sampler = BlurKernelSampler("gaussian", size=15, sigma_range=(0.8, 2.0))
    k1 = sampler.sample(6, generator=gen(13))
    assert k1.shape == (6, 1, 15, 15)
    assert torch.equal(k1, sampler.sample(6, generator=gen(13)))
    assert not torch.equal(k1, sampler.sample(6, generator=gen(14)))
    assert all((k1[0] - k1[i]).abs().max() > 1e-3 for i in range(1, 6))
    assert torch.allclose(k1.sum(dim=(-2, -1)), torch.ones(6, 1, dtype=F64), atol=1e-14)
    # the documented draw: sigma = low + (high - low) * U, one (B,) float64 draw
    sigma = 0.8 + 1.2 * torch.rand(6, generator=gen(13), dtype=F64)
    assert torch.allclose(k1, gaussian_kernel(sigma, size=15), atol=1e-15)
    # the kernels' own spread says the same: the per-axis standard deviation lies in the range
    pos = torch.arange(15, dtype=F64) - 7
    std = (k1[:, 0].sum(-2) * pos**2).sum(-1).sqrt()
    assert bool(((std > 0.8 - 0.02) & (std < 2.0 + 0.02)).all())


def test_sampler_motion_is_reproducible_and_in_range():
    sampler = BlurKernelSampler("motion", length_range=(3.0, 10.0))
    assert sampler.size == 11
    op = sampler(8, generator=gen(15), noise=Gaussian(0.01))
    assert isinstance(op, Blur) and op.batch_size == 8 and isinstance(op.noise, Gaussian)
    assert torch.equal(op.kernel, sampler.sample(8, generator=gen(15)))
    u = torch.rand(2, 8, generator=gen(15), dtype=F64)
    length, angle = 3.0 + 7.0 * u[0], 180.0 * u[1]
    assert torch.allclose(op.kernel, motion_kernel(length, angle, size=11), atol=1e-15)
    assert all((op.kernel[0] - op.kernel[i]).abs().max() > 1e-3 for i in range(1, 8))
    # every kernel reaches at least (3 - 1) / 2 and at most (10 - 1) / 2 + 1 pixels from the centre
    r = torch.arange(11, dtype=F64) - 5
    radius = torch.hypot(r[None, :], r[:, None])
    reach = torch.where(op.kernel[:, 0] > 0, radius, torch.zeros_like(radius)).amax(dim=(-2, -1))
    assert bool(((reach >= 1.0) & (reach < 5.5)).all())


def test_sampler_defaults_and_dtype():
    sampler = BlurKernelSampler("gaussian", dtype=torch.float32)
    assert sampler.size == 19  # 2 * ceil(3 * 3.0) + 1
    k = sampler.sample(2, generator=gen(16))
    assert k.dtype == torch.float32 and k.shape == (2, 1, 19, 19)
    assert BlurKernelSampler("gaussian", size=3).sample(1, generator=gen(0)).shape == (1, 1, 3, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "disk"}, "kind must be"),
        ({"sigma_range": (0.0, 1.0)}, "sigma_range must satisfy 0 < low <= high"),
        ({"sigma_range": (2.0, 1.0)}, "sigma_range must satisfy"),
        ({"length_range": (-1.0, 2.0)}, "length_range must satisfy 0 <= low <= high"),
        ({"length_range": 3.0}, "length_range must be a pair"),
        ({"size": 0}, "size must be >= 1"),
    ],
)
def test_sampler_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=f"BlurKernelSampler: {match}"):
        BlurKernelSampler(**kwargs)


def test_sampler_invalid_batch_size_raises():
    with pytest.raises(ValueError, match="BlurKernelSampler: batch_size must be >= 1"):
        BlurKernelSampler().sample(0)
