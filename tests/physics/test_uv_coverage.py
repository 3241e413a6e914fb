"""Earth-rotation synthesis (selfinv.physics.uv_coverage): the rotation's invariants, the elliptical tracks,
the elevation limit and the errors."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.physics.uv_coverage import EHT2017, baselines, uv_coverage

H = torch.linspace(-12, 12, 49)


def test_lengths_are_kept_and_polar_baselines_do_not_move():
    stations = [[0.0, 0.0, 0.0], [1000.0, -2000.0, 500.0], [0.0, 0.0, 3000.0]]
    uvw, _ = uv_coverage(stations, 30.0, H, 0.5, min_elevation=-90)
    L = torch.tensor([[1000.0, -2000.0, 500.0], [0.0, 0.0, 3000.0], [-1000.0, 2000.0, 2500.0]], dtype=torch.float64)
    torch.testing.assert_close(uvw.norm(dim=-1), (L.norm(dim=1) / 0.5).expand(len(H), 3))
    polar = uvw[:, 1]  # stations 0 -> 2: along Z
    torch.testing.assert_close(polar[:, 0], torch.zeros(len(H), dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(polar[:, 1], torch.full((len(H),), 3000 * math.cos(math.radians(30)) / 0.5, dtype=torch.float64))


@pytest.mark.parametrize("dec", [-29.0, 12.39, 60.0])
def test_equatorial_baselines_trace_ellipses(dec):
    uvw, _ = uv_coverage([[0.0, 0.0, 0.0], [3000.0, 4000.0, 0.0]], dec, H, 2.0, min_elevation=-90)
    u, v = uvw[:, 0, 0], uvw[:, 0, 1]
    lhs = u**2 + (v / math.sin(math.radians(dec))) ** 2
    torch.testing.assert_close(lhs, torch.full_like(lhs, (5000.0 / 2.0) ** 2))


def test_eht_2017_visibility_follows_the_sky():
    uvw, visible = uv_coverage(EHT2017, -29.01, H, 1.3e-3)  # Sgr A*
    pairs = baselines(len(EHT2017))
    names = list(EHT2017)
    spt = names.index("SPT")
    alma, apex, pv = names.index("ALMA"), names.index("APEX"), names.index("PV")
    with_spt = (pairs == spt).any(1)
    assert uvw.shape == (len(H), 28, 3) and visible.shape == (len(H), 28)
    # from the south pole Sgr A* stands 29° high all day: its baselines are limited by the other station only
    alma_spt = int(((pairs[:, 0] == alma) & (pairs[:, 1] == spt)).nonzero())
    alma_apex = int(((pairs[:, 0] == alma) & (pairs[:, 1] == apex)).nonzero())
    torch.testing.assert_close(visible[:, alma_spt], visible[:, alma_apex])
    assert 0 < int(visible[:, alma_apex].sum()) < len(H)  # the source rises and sets at Chajnantor
    # a source at +60° never rises at the south pole
    _, north = uv_coverage(EHT2017, 60.0, H, 1.3e-3)
    assert not bool(north[:, with_spt].any()) and bool(north[:, (pairs == pv).any(1)].any())
    # ALMA-APEX (about 2.6 km) is the shortest baseline, thousands of km the longest: (u, v) in wavelengths
    lengths = uvw[0].norm(dim=-1) * 1.3e-3
    assert 2000 < float(lengths[alma_apex]) < 3000 and float(lengths.max()) > 1e7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stations": [[0.0, 0.0, 0.0]]}, "S >= 2"),
        ({"stations": [[0.0, 0.0], [1.0, 1.0]]}, r"\(S, 3\)"),
        ({"declination": 95.0}, "declination"),
        ({"wavelength": 0.0}, "wavelength"),
        ({"hour_angles": [0.0, float("nan")]}, "hour_angles"),
        ({"stations": [[0.0, 0.0, float("inf")], [1.0, 1.0, 1.0]]}, "finite"),
    ],
)
def test_bad_input_is_a_one_line_error(kwargs, match):
    args = {"stations": EHT2017, "declination": 12.0, "hour_angles": [0.0, 1.0], "wavelength": 1.3e-3, **kwargs}
    with pytest.raises(ValueError, match=match) as e:
        uv_coverage(**args)
    assert "\n" not in str(e.value)


def test_enu_positions_convert_to_the_same_coverage():
    """VLA D in local east-north-up metres about its centre (the exact inverse rotation) converts back to the ECEF
    positions to a micrometre, and gives the same (u, v, w); a point 1 km north of (0°, 0°) is 1 km up the Z axis."""
    from selfinv.physics.uv_coverage import VLA_D, enu_to_ecef

    pos = torch.tensor(list(VLA_D.values()), dtype=torch.float64)
    lat, lon, h = 34.0784, -107.6184, 2124.0
    site = enu_to_ecef(torch.zeros(1, 3), lat, lon, h)[0]
    axes = enu_to_ecef(torch.eye(3), lat, lon, h) - site  # rows: east, north, up in ECEF
    enu = (pos - site) @ axes.T
    assert torch.allclose(enu_to_ecef(enu, lat, lon, h), pos, rtol=0, atol=1e-6)
    assert float(enu[:, 2].abs().max()) < 50  # a flat array: its antennas lie within metres of the local horizon
    hours = torch.linspace(0, 6, 4)
    a, va = uv_coverage(pos, 40.0, hours, 0.06)
    b, vb = uv_coverage(enu_to_ecef(enu, lat, lon, h), 40.0, hours, 0.06)
    assert torch.allclose(a, b, atol=1e-6) and torch.equal(va, vb)
    north = enu_to_ecef(torch.tensor([[0.0, 1000.0, 0.0]]), 0.0, 0.0) - enu_to_ecef(torch.zeros(1, 3), 0.0, 0.0)
    assert torch.allclose(north, torch.tensor([[0.0, 0.0, 1000.0]], dtype=torch.float64), atol=1e-9)
    with pytest.raises(ValueError, match="latitude"):
        enu_to_ecef(enu, 95.0, 0.0)
