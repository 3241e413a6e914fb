"""RadioInterferometry against the maths: the DFT it generalises, the exact non-uniform DFT, the dirty beam, the
pseudo-inverse of its dense matrix, and one-line errors; RadioObservationSampler against uv_coverage."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.noise import Gaussian
from selfinv.physics import (
    EHT2017,
    VLA_D,
    RadioInterferometry,
    RadioObservationSampler,
    fft2c,
    uv_coverage,
    uv_radians,
)
from selfinv.physics.uv_coverage import baselines

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def exact_nudft(x: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) real, (K, 2) → (B, C, K) by the definition, in float64."""
    h, w = x.shape[-2:]
    r = torch.arange(h, dtype=torch.float64) - h // 2
    c = torch.arange(w, dtype=torch.float64) - w // 2
    er = torch.exp(-1j * uv[:, 1:2] * r)  # (K, H)
    ec = torch.exp(-1j * uv[:, 0:1] * c)  # (K, W)
    return torch.einsum("kh,bchw,kw->bck", er, x.to(torch.complex128), ec) / math.sqrt(h * w)


def dense(op: RadioInterferometry) -> torch.Tensor:
    """The real (2K, HW) matrix of A (real and imaginary parts stacked)."""
    h, w = op.img_size
    eye = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    cols = op.A(eye)[:, 0]  # (HW, K)
    return torch.cat([cols.real, cols.imag], 1).T


def test_grid_frequencies_give_the_orthonormal_dft():
    h, w = 6, 5
    rr, cc = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    uv = torch.stack([2 * math.pi * cc.double() / w, 2 * math.pi * rr.double() / h], -1).reshape(-1, 2)
    x = torch.rand(2, 3, h, w, generator=gen(0), dtype=torch.float64)
    y = RadioInterferometry(uv, (h, w)).A(x)
    torch.testing.assert_close(y, fft2c(x.to(torch.complex128)).reshape(2, 3, -1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_matches_the_exact_nonuniform_dft(dtype, tol):
    uv = (torch.rand(300, 2, generator=gen(1), dtype=torch.float64) * 2 - 1) * math.pi
    x = torch.rand(2, 1, 16, 12, generator=gen(2), dtype=torch.float64)
    weights = torch.rand(300, generator=gen(3), dtype=torch.float64)
    y = RadioInterferometry(uv, (16, 12), weights).A(x.to(dtype))
    ref = weights * exact_nudft(x, uv)
    assert float((y.to(torch.complex128) - ref).norm() / ref.norm()) < tol


def test_a_real_sky_has_hermitian_visibilities():
    uv = (torch.rand(50, 2, generator=gen(4), dtype=torch.float64) * 2 - 1) * 3
    op = RadioInterferometry(torch.cat([uv, -uv]), 10)
    y = op.A(torch.rand(1, 1, 10, 10, generator=gen(5), dtype=torch.float64))
    torch.testing.assert_close(y[..., 50:], y[..., :50].conj(), rtol=0, atol=1e-12)


def test_dirty_beam_is_the_point_spread_function_of_the_normal_operator():
    g = gen(6)
    h, w = 7, 6
    uv = (torch.rand(2, 40, 2, generator=g, dtype=torch.float64) * 2 - 1) * 2.5
    weights = torch.rand(2, 40, generator=g, dtype=torch.float64)
    op = RadioInterferometry(uv, (h, w), weights)
    beam = op.dirty_beam(torch.float64)
    assert beam.shape == (2, 1, 2 * h, 2 * w)
    torch.testing.assert_close(beam[:, 0, h, w], (weights**2).sum(1) / (h * w))
    assert bool((beam[:, 0, h, w, None, None] >= beam[:, 0] - 1e-12).all())  # the peak is at the centre
    inner = beam[:, 0, 1:, 1:]  # offsets -(H-1)..H-1: symmetric b(-d) = b(d) of a real sky
    torch.testing.assert_close(inner, inner.flip(-1, -2))
    x = torch.rand(2, 1, h, w, generator=g, dtype=torch.float64)
    ref = torch.zeros_like(x)
    for q in range(h):  # (A^H A x)_p = sum_q x_q b(p - q + (H, W))
        for s in range(w):
            ref += x[:, :, q : q + 1, s : s + 1] * beam[:, :, h - q : 2 * h - q, w - s : 2 * w - s]
    torch.testing.assert_close(op.normal(x), ref, rtol=1e-10, atol=1e-10)


def test_dirty_image_of_a_point_source_peaks_at_its_flux():
    uvw, visible = uv_coverage(VLA_D, 40.0, torch.linspace(-2, 2, 9), 0.06)
    op = RadioInterferometry(uv_radians(uvw[visible], math.radians(4 / 3600)), 32)
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    x[0, 0, 16, 16] = 2.5
    dirty = op.dirty_image(op.A(x))
    assert float(dirty[0, 0, 16, 16]) == pytest.approx(2.5, rel=1e-10)
    assert float(dirty.max()) == pytest.approx(2.5, rel=1e-10)


def test_pseudo_inverse_is_the_minimum_norm_least_squares_image():
    g = gen(7)
    uv = (torch.rand(20, 2, generator=g, dtype=torch.float64) * 2 - 1) * 3
    op = RadioInterferometry(uv, 8)  # 40 real measurements, 64 unknowns: a nullspace
    y = torch.complex(torch.randn(2, 1, 20, generator=g, dtype=torch.float64), torch.randn(2, 1, 20, generator=g, dtype=torch.float64))
    ref = torch.linalg.pinv(dense(op)) @ torch.cat([y.real, y.imag], -1)[:, 0].T  # (64, 2)
    got = op.A_dagger(y, tol=1e-13, max_iter=2000)
    torch.testing.assert_close(got.reshape(2, 64), ref.T, rtol=1e-6, atol=1e-8)


def test_gradients_flow_through_the_transform_and_its_adjoint():
    uv = (torch.rand(15, 2, generator=gen(8), dtype=torch.float64) * 2 - 1) * 3
    op = RadioInterferometry(uv, (4, 5))
    x = torch.rand(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(op.A(t)), (x,))
    y = torch.randn(1, 1, 15, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradgradcheck(lambda t: torch.view_as_real(op.A(t)), (x,))


def test_noise_lives_only_on_measured_visibilities():
    uv = torch.zeros(6, 2, dtype=torch.float64)
    op = RadioInterferometry(uv, 4, weights=torch.tensor([1.0, 0, 1, 0, 1, 1]), noise=Gaussian(0.3))
    y = op(torch.zeros(1, 1, 4, 4), generator=gen(9))
    assert bool((y[..., [1, 3]] == 0).all()) and bool((y[..., [0, 2, 4, 5]] != 0).all())
    assert op.acquired(y)[0, 0].tolist() == [True, False, True, False, True, True]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RadioInterferometry(torch.tensor([[3.5, 0.0]]), 8), "outside the band"),
        (lambda: RadioInterferometry(torch.tensor([[math.nan, 0.0]]), 8), "NaN"),
        (lambda: RadioInterferometry(torch.zeros(5, 3), 8), r"\(K, 2\)"),
        (lambda: RadioInterferometry(torch.zeros(5, 2, dtype=torch.complex64), 8), "real"),
        (lambda: RadioInterferometry(torch.zeros(5, 2), 8, weights=-torch.ones(5)), "non-negative"),
        (lambda: RadioInterferometry(torch.zeros(5, 2), 8, weights=torch.ones(4)), "K = 5"),
        (lambda: RadioInterferometry(torch.zeros(5, 2), 1), "img_size"),
    ],
)
def test_bad_construction_gives_one_line_errors(make, match):
    with pytest.raises(ValueError, match=match) as e:
        make()
    assert "\n" not in str(e.value)


def test_bad_data_gives_one_line_errors():
    op = RadioInterferometry(torch.zeros(5, 2), 8)
    y = op.A(torch.rand(2, 1, 8, 8))
    cases = [
        (lambda: op.A(torch.rand(2, 1, 8, 7)), "expected"),
        (lambda: op.A(torch.rand(2, 1, 8, 8, dtype=torch.complex64)), "must be real"),
        (lambda: op.A_adjoint(y.real), "must be complex"),
        (lambda: op.A_adjoint(y[..., :4]), "visibilities"),
        (lambda: op.A_adjoint(torch.where(torch.arange(5) == 2, torch.nan, y)), "NaN"),
        (lambda: op.dirty_image(y * torch.inf), "NaN or Inf"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            call()
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------------- the sampler
def test_a_fixed_track_is_the_visible_coverage():
    sampler = RadioObservationSampler(64, "eht2017", n_times=25)
    op = sampler(3, generator=gen(10))
    hours = torch.linspace(0, 12, 25, dtype=torch.float64)
    uvw, visible = uv_coverage(EHT2017, 12.39, hours, 1.3e-3)
    pixel = math.radians(160e-6 / 3600) / 64
    torch.testing.assert_close(op.weights[0], visible.reshape(-1).double())
    torch.testing.assert_close(op.uv[0][visible.reshape(-1)], uv_radians(uvw[visible], pixel))
    assert torch.equal(op.uv[0], op.uv[2]) and torch.equal(op.weights[1], op.weights[2])


def test_random_tracks_drop_stations_at_the_rate_asked_for():
    """Over 400 draws the fraction of VLA antennas missing (no measured baseline) is within 5 standard errors of
    the dropout (the two antennas forced to observe lower it by at most 2/27 · dropout)."""
    p = 0.3
    sampler = RadioObservationSampler(32, "vla_d", duration=2.0, n_times=3, station_dropout=p)
    op = sampler(400, generator=gen(11))
    pairs = baselines(27)
    on = op.weights.reshape(400, 3, -1).amax(1) > 0  # (400, 351): baseline measured at some time
    present = torch.zeros(400, 27, dtype=torch.bool)
    present[:, pairs[:, 0]] |= on
    present[:, pairs[:, 1]] |= on
    missing = 1 - present.double().mean()
    assert float(present.sum(1).min()) >= 2
    se = math.sqrt(p * (1 - p) / (400 * 27))
    assert p * (1 - 2 / 27) - 5 * se <= float(missing) <= p + 5 * se
    starts = sampler.sample(400, generator=gen(11))
    assert torch.equal(starts[..., 2], op.weights)


def test_wavelength_and_declination_ranges_change_the_tracks():
    """A wavelength range scales each sample's coverage by 1/λ; a declination range changes its shape; neither is a
    fixed operator, a single value is."""
    fixed = RadioObservationSampler(64, "vla_d", hour_angle=(6.0, 7.0), n_times=3)
    assert fixed.is_fixed
    lam = RadioObservationSampler(64, "vla_d", hour_angle=(6.0, 7.0), n_times=3, wavelength=(0.04, 0.08))
    assert not lam.is_fixed
    obs, ref = lam.sample(4, generator=gen(12)), fixed.sample(1, generator=gen(12))
    ratio = obs[..., :2].norm(dim=-1) / ref[..., :2].norm(dim=-1).clamp_min(1e-300)
    on = ref[0, :, 2] > 0
    per_sample = ratio[:, on]
    assert bool((per_sample.std(1) < 1e-9 * per_sample.mean(1)).all())  # one scale per sample
    assert bool(((per_sample[:, 0] >= 0.06 / 0.08 - 1e-9) & (per_sample[:, 0] <= 0.06 / 0.04 + 1e-9)).all())
    assert float(per_sample[:, 0].std()) > 0
    dec = RadioObservationSampler(64, "vla_d", hour_angle=(6.0, 7.0), n_times=3, declination=(10.0, 60.0))
    a = dec.sample(2, generator=gen(13))
    assert not dec.is_fixed and not torch.allclose(a[0, :, :2].norm(dim=-1), a[1, :, :2].norm(dim=-1))


def test_sampler_refuses_bad_setups_in_one_line():
    cases = [
        (lambda: RadioObservationSampler(8, "eht2017"), "too coarse"),
        (lambda: RadioObservationSampler(64, "alma"), "not one of"),
        (lambda: RadioObservationSampler(64, "eht2017", duration=13.0), "duration"),
        (lambda: RadioObservationSampler(64, "eht2017", station_dropout=1.0), "station_dropout"),
        (lambda: RadioObservationSampler(64, "eht2017", hour_angle=(3.0, 1.0)), "start < end"),
        (lambda: RadioObservationSampler(64, "eht2017", min_elevation=89.0), "sees"),
        (lambda: RadioObservationSampler(64, "eht2017", wavelength=(2e-3, 1e-3)), "lo <= hi"),
        (lambda: RadioObservationSampler(64, "eht2017", wavelength=(0.2e-3, 1e-3)), "too coarse"),
        (lambda: RadioObservationSampler(64, "eht2017", declination=(0.0, 95.0)), "declination"),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            make()
        assert "\n" not in str(e.value)


def test_check_reports_the_coverage_and_counts_two_real_numbers_per_visibility():
    from selfinv.advisor import advise

    uv = (torch.rand(30, 2, generator=gen(14), dtype=torch.float64) * 2 - 1) * 1.5
    advice = advise(RadioInterferometry(uv, 8), x_shape=(1, 8, 8))
    assert advice.single.m == 60  # a complex visibility of a real sky: two real measurements
    assert "30 visibilities (60 real numbers for 64 pixels)" in str(advice)
