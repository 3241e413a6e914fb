"""Tests of the flat-detector fan-beam CT operator (selfinv.physics.fanbeam.FanBeamTomography)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selfinv.noise import Gaussian
from selfinv.physics import FanBeamTomography, Tomography
from selfinv.physics._fanbeam_geometry import scan_weights
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

skimage_transform = pytest.importorskip("skimage.transform")
skimage_data = pytest.importorskip("skimage.data")

#: a small geometry, in pixels: source 3 image widths away, magnification 2, a detector wider than the image
GEOMETRY = {"source_distance": 30.0, "detector_distance": 60.0, "detector_spacing": 1.7}


def op_norm(op, dtype=torch.float64, iters: int = 30) -> float:
    """||A|| by power iteration on A^H A (for the batch of ``op``)."""
    v = torch.randn(op.batch_size or 1, 1, op.img_size, op.img_size, generator=gen(99), dtype=dtype)
    for _ in range(iters):
        v = op.normal(v)
        v = v / v.norm()
    return float((v * op.normal(v)).sum().sqrt())


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2)))


def phantom(n: int) -> np.ndarray:
    """The Shepp-Logan phantom resized to n x n (it vanishes outside the inscribed circle)."""
    return skimage_transform.resize(skimage_data.shepp_logan_phantom(), (n, n), anti_aliasing=True)


def reference_projection(img: np.ndarray, angles_deg, n_det: int, sod: float, sdd: float, du: float) -> np.ndarray:
    """The documented discretisation in plain numpy (pixels): bilinear samples one pixel apart along each ray."""
    n = img.shape[0]
    c, half = (n - 1) / 2, math.ceil((n + 1) / math.sqrt(2))
    out = np.zeros((n_det, len(angles_deg)))
    for a, beta in enumerate(np.deg2rad(np.asarray(angles_deg, dtype=np.float64))):
        src = sod * np.array([np.sin(beta), -np.cos(beta)])
        for k in range(n_det):
            u = (k - (n_det - 1) / 2) * du
            pix = src - sdd * np.array([np.sin(beta), -np.cos(beta)]) + u * np.array([np.cos(beta), np.sin(beta)])
            r = (pix - src) / np.linalg.norm(pix - src)
            foot = src - np.dot(src, r) * r
            for j in range(-half, half + 1):
                x, y = foot + j * r
                col, row = c + x, c - y
                c0, r0 = math.floor(col), math.floor(row)
                for dr in (0, 1):
                    for dc in (0, 1):
                        rr, cc = r0 + dr, c0 + dc
                        if 0 <= rr < n and 0 <= cc < n:
                            out[k, a] += (1 - abs(row - rr)) * (1 - abs(col - cc)) * img[rr, cc]
    return out


def supersampled_disc(n: int, cx: float, cy: float, radius: float, ss: int = 8) -> torch.Tensor:
    """(1, 1, n, n) the area fraction of each pixel inside the disc centred at (cx, cy) (pixels, x right, y up)."""
    o = (torch.arange(ss, dtype=torch.float64) + 0.5) / ss - 0.5
    i = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    x = i[None, :, None, None] + o[None, None, None, :]
    y = -i[:, None, None, None] - o[None, None, :, None]
    return ((x - cx) ** 2 + (y - cy) ** 2 < radius**2).double().mean((-1, -2))[None, None]


# ---------------------------------------------------------------------- (1) the exact adjoint
@pytest.mark.parametrize(
    "angles, n, n_det, pixel_size",
    [(8, 9, 15, 1.0), (5, 10, 12, 0.7), ([0.0, 33.3, 90.0, 147.5, 200.0, -20.0], 11, 19, 1.0)],
)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjointness(angles, n, n_det, pixel_size, dtype, tol):
    op = FanBeamTomography(angles, n, n_det, pixel_size=pixel_size, **{k: v * pixel_size for k, v in GEOMETRY.items()})
    x = torch.randn(2, 3, n, n, generator=gen(1), dtype=dtype)
    y = torch.randn(2, 3, n_det, op.n_angles, generator=gen(2), dtype=dtype)
    lhs, rhs = (op.A(x) * y).sum(), (x * op.A_adjoint(y)).sum()
    assert float((lhs - rhs).abs()) <= tol * float(x.norm() * y.norm()) * op_norm(op)
    assert torch.equal(op.H.A(y), op.A_adjoint(y))


@pytest.mark.parametrize("padded", [False, True])
def test_per_sample_sets_adjointness_and_three_single_calls(padded):
    """B = 3 limited-angle sets (two padded) in float64: adjoint to rounding, and equal to three B = 1 operators
    on their valid angles, in one chunk of angles or many."""
    angles = torch.rand(3, 7, generator=gen(3), dtype=torch.float64) * 90 + torch.tensor([[0.0], [120.0], [250.0]])
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1, 0, 1, 1, 0, 1, 1]], dtype=torch.bool) if padded else None
    op = FanBeamTomography(angles, 10, 14, angle_mask=mask, **GEOMETRY)
    x = torch.randn(3, 2, 10, 10, generator=gen(4), dtype=torch.float64)
    z = torch.randn(3, 2, 14, 7, generator=gen(5), dtype=torch.float64)
    y, back = op.A(x), op.A_adjoint(z)
    assert float(((y * z).sum() - (x * back).sum()).abs()) <= 1e-12 * float(x.norm() * z.norm()) * op_norm(op)
    small = FanBeamTomography(angles, 10, 14, angle_mask=mask, **GEOMETRY)
    small._chunk_elements = 1
    assert torch.allclose(small.A(x), y, rtol=1e-12, atol=1e-13)
    assert torch.allclose(small.A_adjoint(z), back, rtol=1e-12, atol=1e-13)
    for i in range(3):
        m = torch.ones(7, dtype=torch.bool) if mask is None else mask[i]
        single = FanBeamTomography(angles[i][m], 10, 14, **GEOMETRY)
        assert torch.allclose(y[i : i + 1][..., m], single.A(x[i : i + 1]), rtol=1e-12, atol=1e-13)
        assert bool((y[i][..., ~m] == 0).all())
        assert torch.allclose(back[i : i + 1], single.A_adjoint(z[i : i + 1][..., m]), rtol=1e-12, atol=1e-13)


def test_gradcheck_through_A_adjoint_and_fbp():
    op = FanBeamTomography([0.0, 100.0, 230.0], 6, 9, **GEOMETRY)
    x = torch.rand(2, 1, 6, 6, generator=gen(6), dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 1, 9, 3, generator=gen(7), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradgradcheck(lambda t: op.A(t) ** 2, (x,))
    assert torch.autograd.gradcheck(op.fbp, (y,))


# ---------------------------------------------------------------------- (2) the forward projection
def test_forward_is_the_documented_discretisation():
    """An independent numpy implementation of the rays (source, detector pixel, foot point, unit steps)."""
    img = np.random.default_rng(0).random((11, 11))
    theta = [0.0, 17.0, 90.0, 133.7, 200.0, 301.0]
    op = FanBeamTomography(theta, 11, 17, **GEOMETRY)
    ref = reference_projection(img, theta, 17, GEOMETRY["source_distance"], GEOMETRY["detector_distance"],
                               GEOMETRY["detector_spacing"])
    got = op.A(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_disc_projection_matches_the_analytic_chords():
    """An off-centre disc (radius 20 pixels): every ray's chord 2 sqrt(R^2 - d^2), d its distance from the disc's
    centre, times pixel_size. Measured (N = 64, 60 angles): 1.27 % relative error overall (the tangent rays of
    the pixelated edge), 0.22 % on rays with chords over half the diameter."""
    n, pixel = 64, 0.25
    op = FanBeamTomography(60, n, 100, source_distance=150 * pixel, detector_distance=300 * pixel,
                           detector_spacing=1.2 * pixel, pixel_size=pixel)
    cx, cy, radius = 6.0, -4.0, 20.0
    y = op.A(supersampled_disc(n, cx, cy, radius))[0, 0]
    beta = torch.deg2rad(op.angles)[None, :]
    u = ((torch.arange(100, dtype=torch.float64) - 49.5) * 1.2)[:, None]
    src = 150 * torch.stack([beta.sin(), -beta.cos()], -1)
    pix = -150 * torch.stack([beta.sin(), -beta.cos()], -1) + u[..., None] * torch.stack([beta.cos(), beta.sin()], -1)
    r = (pix - src) / (pix - src).norm(dim=-1, keepdim=True)
    rel = torch.tensor([cx, cy], dtype=torch.float64) - src
    d = (rel[..., 0] * r[..., 1] - rel[..., 1] * r[..., 0]).abs()
    chord = 2 * torch.sqrt((radius**2 - d**2).clamp_min(0)) * pixel
    assert float((y - chord).norm() / chord.norm()) < 0.02
    long = chord > 0.5 * chord.max()
    assert float((y - chord)[long].norm() / chord[long].norm()) < 0.005
    # the mirrored disc does not fit: the test sees the orientation
    rel = torch.tensor([cx, -cy], dtype=torch.float64) - src
    d = (rel[..., 0] * r[..., 1] - rel[..., 1] * r[..., 0]).abs()
    assert float((y - 2 * torch.sqrt((radius**2 - d**2).clamp_min(0)) * pixel).norm() / chord.norm()) > 0.2


def test_far_source_is_the_parallel_beam_operator():
    """A source 10^6 pixels away (isocentre pitch 1) gives Tomography's Radon transform (odd sizes, where both
    centres agree): the same convention for angles, detector direction and image orientation."""
    x = torch.rand(2, 1, 11, 11, generator=gen(8), dtype=torch.float64)
    angles = [0.0, 30.0, 75.0, 140.0]
    fan = FanBeamTomography(angles, 11, 15, source_distance=1e6, detector_distance=2e6, detector_spacing=2.0)
    par = Tomography(angles, 11, n_detectors=15)
    assert torch.allclose(fan.A(x), par.A(x), rtol=1e-4, atol=1e-4)


def test_noise_only_on_measured_bins_and_no_state_change():
    op = FanBeamTomography(12, 8, 24, noise=Gaussian(0.1), **GEOMETRY)  # the outer bins miss the image at some angles
    x = torch.rand(2, 1, 8, 8, generator=gen(9), dtype=torch.float64) + 0.1
    support = op.A(x) != 0
    assert not bool(support.all()) and bool(support.any(-1)[..., 5:-5].all())
    assert torch.equal(support[0, 0], op._measured) and torch.equal(support[1, 0], op._measured)
    before = {k: v.clone() for k, v in op.state_dict().items()}
    y = op(x, generator=gen(10))
    assert bool((y[~support] == 0).all()) and bool((y[support] != op.A(x)[support]).all())
    assert all(torch.equal(before[k], v) for k, v in op.state_dict().items())


# ---------------------------------------------------------------------- (3) reconstruction
def test_scan_weights_full_short_and_limited_scans():
    gamma = torch.linspace(-0.1, 0.1, 5, dtype=torch.float64)
    full = torch.arange(8, dtype=torch.float64)[None] * 45.0
    w = scan_weights(full, torch.ones_like(full, dtype=torch.bool), gamma)
    assert torch.allclose(w, torch.full_like(w, math.pi / 4 / 2))  # 2 pi / 8 per view, every line twice
    htc = torch.arange(721, dtype=torch.float64)[None] * 0.5  # 0 and 360 both measured: they share one interval
    w = scan_weights(htc, torch.ones_like(htc, dtype=torch.bool), gamma)
    assert abs(float(w[0, :, 0].sum()) - math.pi) < 1e-12 and abs(float(w[0, 0, 0]) - math.radians(0.25) / 2) < 1e-12
    limited = torch.tensor([[10.0, 40.0, 20.0, 30.0, 0.0]])  # unsorted, the last padded
    valid = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)
    w = scan_weights(limited, valid, gamma)
    assert torch.allclose(w[0, :, 2], torch.deg2rad(torch.tensor([10.0, 10.0, 10.0, 10.0, 0.0], dtype=torch.float64)))
    # a short scan (Parker): the two measurements of every line sum to one interval
    gm = float(gamma.max())
    span = math.pi + 2 * gm + 0.05
    beta = torch.linspace(0, span, 2001, dtype=torch.float64)
    w = scan_weights(torch.rad2deg(beta)[None], torch.ones(1, 2001, dtype=torch.bool), gamma)[0] / (span / 2000)
    for k, g in enumerate(gamma.tolist()):
        b2 = beta + math.pi - 2 * g  # ray (beta, gamma) meets (beta + pi - 2 gamma, -gamma)
        inside = b2 <= span
        partner = np.interp(b2[inside].numpy(), beta.numpy(), w[:, 4 - k].numpy())
        np.testing.assert_allclose(w[inside, k].numpy() + partner, 1.0, atol=2e-3)


@pytest.mark.parametrize("scan, min_psnr", [("full", 33.0), ("short", 33.0)])
def test_fbp_reconstructs_a_phantom(scan, min_psnr):
    """Shepp-Logan at N = 128, 2N detectors of pitch 1 at magnification 2: measured 35.7 dB (360 views over 360
    degrees) and 35.8 dB (400 views over 180 degrees plus the fan angle, Parker weights); the mean is kept."""
    n, nd = 128, 256
    img = phantom(n)
    sod, sdd = 2.0 * n, 4.0 * n
    if scan == "full":
        angles = torch.arange(360, dtype=torch.float64)
    else:
        fan = math.degrees(math.atan((nd - 1) / 2 / sdd))
        angles = torch.linspace(40, 40 + 180 + 2 * fan, 400, dtype=torch.float64)
    op = FanBeamTomography(angles, n, nd, source_distance=sod, detector_distance=sdd, detector_spacing=1.0)
    x = torch.from_numpy(img)[None, None]
    rec = op.fbp(op.A(x))[0, 0].numpy()
    assert psnr(rec, img) > min_psnr
    assert abs(rec.sum() / img.sum() - 1) < 0.01
    assert psnr(op.fbp(op.A(x), filter="shepp-logan")[0, 0].numpy(), img) > min_psnr - 3


def test_fbp_of_per_sample_sets_is_each_sets_fbp_and_ignores_padding():
    n = 32
    x = torch.from_numpy(phantom(n))[None, None].expand(2, 1, n, n)
    sets = [torch.arange(90, dtype=torch.float64) * 4.0, torch.arange(60, dtype=torch.float64) * 6.0 + 3.0]
    angles = torch.stack([sets[0], torch.cat([sets[1], torch.zeros(30, dtype=torch.float64)])])
    mask = torch.arange(90)[None, :] < torch.tensor([[90], [60]])
    op = FanBeamTomography(angles, n, 48, angle_mask=mask, **GEOMETRY)
    y = op.A(x)
    rec = op.fbp(y)
    for i, theta in enumerate(sets):
        single = FanBeamTomography(theta, n, 48, **GEOMETRY)
        assert torch.allclose(rec[i : i + 1], single.fbp(single.A(x[:1])), rtol=1e-9, atol=1e-10)
    junk = torch.where(mask[:, None, None, :], y, torch.full_like(y, 7.0))
    assert torch.allclose(op.fbp(junk), rec, rtol=1e-12, atol=1e-12)


def test_cg_dagger_reduces_the_normal_equation_residual():
    op = FanBeamTomography(20, 12, 18, **GEOMETRY)
    x = torch.from_numpy(phantom(12))[None, None]
    y = op.A(x) + 0.01 * torch.randn(1, 1, 18, 20, generator=gen(11), dtype=torch.float64)
    start = op.A_adjoint(y).norm()  # the residual of A^H A x = A^H y at x = 0
    residuals = [float((op.normal(op.A_dagger(y, max_iter=it)) - op.A_adjoint(y)).norm() / start) for it in (5, 50)]
    assert residuals[0] < 0.5 and residuals[1] < 1e-3 and residuals[1] < residuals[0]
    rec = op.A_dagger(y, max_iter=50)
    assert float((op.A(rec) - y).norm()) <= float((op.A(op.fbp(y)) - y).norm())


# ---------------------------------------------------------------------- (4) one-line errors
def test_bad_inputs_raise_value_errors():
    op = FanBeamTomography(5, 8, 12, **GEOMETRY)
    x = torch.rand(2, 1, 8, 8, generator=gen(12))
    y = op.A(x)
    for bad in (x[0], x[..., :-1], x[:, 0]):
        with pytest.raises(ValueError, match="FanBeamTomography"):
            op.A(bad)
    for bad in (y[..., :-1], y[:, :, :-1], y.transpose(-1, -2)):  # a sinogram of the wrong shape
        for fn in (op.A_adjoint, op.fbp, op.A_dagger):
            with pytest.raises(ValueError, match="FanBeamTomography: y has shape") as err:
                fn(bad)
            assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="real"):
        op.A(torch.complex(x, x))
    with pytest.raises(ValueError, match="real"):
        op.A_adjoint(torch.complex(y, y))
    with pytest.raises(ValueError, match="filter"):
        op.fbp(y, filter="nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"source_distance": -30.0}, "source_distance must be a positive"),
        ({"detector_distance": 0.0}, "detector_distance must be a positive"),
        ({"detector_spacing": -1.0}, "detector_spacing must be a positive"),
        ({"pixel_size": 0.0}, "pixel_size must be a positive"),
        ({"source_distance": float("nan")}, "source_distance must be a positive finite"),
        ({"detector_spacing": float("inf")}, "finite"),
        ({"source_distance": True}, "source_distance"),
        ({"detector_distance": 30.0}, "must exceed source_distance"),
        ({"detector_distance": 20.0}, "must exceed source_distance"),
        ({"source_distance": 5.0, "detector_distance": 60.0}, "outside the image"),
        ({"pixel_size": 10.0}, "outside the image"),
        ({"angles": [0.0, float("nan")]}, "finite"),
        ({"angles": torch.zeros(2, 3, dtype=torch.complex64)}, "angles"),
        ({"angles": 0}, "angles"),
        ({"img_size": (8, 9)}, "square"),
        ({"n_detectors": 0}, "n_detectors"),
        ({"n_detectors": 9.5}, "n_detectors"),
        ({"angles": torch.zeros(2, 3), "angle_mask": torch.ones(3, 3)}, "angle_mask"),
    ],
)
def test_constructor_validates(kwargs, match):
    args = {"angles": 4, "img_size": 8, "n_detectors": 12, **GEOMETRY, **kwargs}
    with pytest.raises(ValueError, match=match) as err:
        FanBeamTomography(**args)
    assert str(err.value).startswith("FanBeamTomography:") and "\n" not in str(err.value)


def test_int_angles_are_a_full_scan_and_the_registry_knows_it():
    from selfinv.physics import OPERATORS

    op = FanBeamTomography(8, (9, 9), 12, **GEOMETRY)
    assert torch.equal(op.angles, torch.arange(8, dtype=torch.float64) * 45.0)
    assert op.img_size == 9 and op.x_shape == (1, 9, 9) and op.n_samples == 2 * math.ceil(10 / math.sqrt(2)) + 1
    assert OPERATORS["fanbeam_tomography"] is FanBeamTomography and op.no_learning(op.A(torch.ones(1, 1, 9, 9))).shape == (1, 1, 9, 9)
