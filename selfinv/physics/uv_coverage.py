r"""Earth-rotation synthesis: the (u, v, w) coordinates an interferometer samples as the Earth turns.

Every pair of stations (a baseline :math:`L = r_j - r_i`, in metres, Earth-centred Earth-fixed: X towards
longitude 0 on the equator, Z towards the north pole) measures the sky's Fourier transform at

.. math::
    \begin{pmatrix} u \\ v \\ w \end{pmatrix} = \frac{1}{\lambda}
    \begin{pmatrix} \sin H & \cos H & 0 \\ -\sin\delta\cos H & \sin\delta\sin H & \cos\delta \\
                    \cos\delta\cos H & -\cos\delta\sin H & \sin\delta \end{pmatrix}
    \begin{pmatrix} L_X \\ L_Y \\ L_Z \end{pmatrix}

for a source at declination :math:`\delta` and Greenwich hour angle H (Thompson, Moran & Swenson,
*Interferometry and Synthesis in Radio Astronomy*, 3rd ed., eq. 4.1), in wavelengths. The matrix is a rotation:
:math:`u^2 + v^2 + w^2 = |L|^2/\lambda^2`, and an equatorial baseline (:math:`L_Z = 0`) traces the ellipse
:math:`u^2 + (v/\sin\delta)^2 = (L_X^2 + L_Y^2)/\lambda^2` ("uv tracks"). A baseline counts at a time only when
the source is above ``min_elevation`` at both stations (elevation from the station's geocentric latitude and
longitude: :math:`\sin e = \sin\phi\sin\delta + \cos\phi\cos\delta\cos(H + \ell)`).

:data:`EHT2017`: the 8 stations (7 sites; ALMA and APEX share the Chajnantor plateau) of the Event Horizon
Telescope's April 2017 campaign (EHT Collaboration 2019, Paper II), ECEF metres as the EHT's own site files give
them (Smithsonian/eht-met-forecast, from Smithsonian/site-selection; the SPT's is its nominal pole position).
:data:`VLA_D`: the 27 antennas of the Very Large Array in its D configuration, ECEF metres as CASA's array file
``vla.d.cfg`` gives them (the same values appear in the SKA SDP's and the SIRIUS/xradio test data).
:data:`ARRAYS` names both for configs (``eht2017``, ``vla_d``).

Example:
    >>> import math, torch
    >>> from selfinv.physics.uv_coverage import EHT2017, uv_coverage
    >>> uvw, visible = uv_coverage(EHT2017, declination=12.39, hour_angles=torch.linspace(-6, 6, 5), wavelength=1.3e-3)
    >>> uvw.shape, visible.shape          # 5 times, 28 baselines
    (torch.Size([5, 28, 3]), torch.Size([5, 28]))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import torch

__all__ = ["ARRAYS", "EHT2017", "VLA_D", "baselines", "enu_to_ecef", "uv_coverage"]

#: Event Horizon Telescope 2017 stations: name -> ECEF (X, Y, Z) in metres
EHT2017: dict[str, tuple[float, float, float]] = {
    "ALMA": (2225061.1636, -5440057.36994, -2481681.15054),
    "APEX": (2225039.5297, -5441197.6292, -2479303.3597),
    "JCMT": (-5464584.676, -2493001.17, 2150653.982),
    "SMA": (-5464555.493, -2492927.989, 2150797.176),
    "SMT": (-1828796.2, -5054406.8, 3427865.2),
    "LMT": (-768715.632, -5988507.072, 2063354.852),
    "PV": (5088967.74544, -301681.18586, 3825012.20561),
    "SPT": (0.01, 0.01, -6359609.7),
}

#: Karl G. Jansky Very Large Array, D configuration (the most compact, longest baseline ≈ 1.03 km): the 27 antenna
#: pads W01–W09, E01–E09, N01–N09 -> ECEF (X, Y, Z) in metres, as CASA's ``vla.d.cfg`` gives them
VLA_D: dict[str, tuple[float, float, float]] = {
    "W01": (-1601188.989351, -5042000.518599, 3554843.384480),
    "W02": (-1601225.230987, -5041980.390730, 3554855.657987),
    "W03": (-1601265.110332, -5041982.563379, 3554834.816409),
    "W04": (-1601315.874282, -5041985.324465, 3554808.263784),
    "W05": (-1601376.950042, -5041988.682890, 3554776.344871),
    "W06": (-1601447.176774, -5041992.529191, 3554739.647266),
    "W07": (-1601526.335275, -5041996.876364, 3554698.284889),
    "W08": (-1601614.061201, -5042001.676547, 3554652.455603),
    "W09": (-1601709.987416, -5042006.942534, 3554602.306306),
    "E01": (-1601192.424192, -5042022.883542, 3554810.383317),
    "E02": (-1601150.027460, -5042000.630731, 3554860.703495),
    "E03": (-1601114.318178, -5042023.187696, 3554844.922416),
    "E04": (-1601068.771188, -5042051.929370, 3554824.767363),
    "E05": (-1601014.405657, -5042086.261585, 3554800.768970),
    "E06": (-1600951.545716, -5042125.927280, 3554772.987195),
    "E07": (-1600880.545264, -5042170.376845, 3554741.425036),
    "E08": (-1600801.880602, -5042219.386677, 3554706.382285),
    "E09": (-1600715.918854, -5042273.142150, 3554668.128757),
    "N01": (-1601185.553970, -5041978.191573, 3554876.382645),
    "N02": (-1601180.820941, -5041947.459898, 3554921.573373),
    "N03": (-1601177.368455, -5041925.069104, 3554954.532566),
    "N04": (-1601173.903632, -5041902.679083, 3554987.485762),
    "N05": (-1601168.735762, -5041869.062707, 3555036.885577),
    "N06": (-1601162.553007, -5041829.021602, 3555095.854771),
    "N07": (-1601155.593706, -5041783.860938, 3555162.327771),
    "N08": (-1601147.885235, -5041733.855114, 3555235.914849),
    "N09": (-1601139.483292, -5041679.021042, 3555316.478099),
}

#: the arrays that ship with selfinv, by the name configs use
ARRAYS: dict[str, dict[str, tuple[float, float, float]]] = {"eht2017": EHT2017, "vla_d": VLA_D}


def _positions(stations) -> torch.Tensor:
    if isinstance(stations, Mapping):
        stations = list(stations.values())
    pos = torch.as_tensor(stations, dtype=torch.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 2:
        raise ValueError(f"uv_coverage: stations must be (S, 3) ECEF positions in metres with S >= 2, got shape {tuple(pos.shape)}")
    if not bool(torch.isfinite(pos).all()):
        raise ValueError("uv_coverage: station positions must be finite")
    return pos


def enu_to_ecef(enu: Sequence[Sequence[float]] | torch.Tensor, latitude: float, longitude: float,
                height: float = 0.0) -> torch.Tensor:
    r"""Station positions in local east-north-up metres about a site (geodetic ``latitude``, ``longitude`` in degrees,
    ``height`` in metres on the WGS84 ellipsoid) → ECEF metres (S, 3), as :func:`uv_coverage` takes them.

    The site is :math:`((N + h)\cos\phi\cos\lambda, (N + h)\cos\phi\sin\lambda, (N(1 - e^2) + h)\sin\phi)` with
    :math:`N = a / \sqrt{1 - e^2\sin^2\phi}`, and the offsets rotate by the local east, north and up unit vectors."""
    for name, v in (("latitude", latitude), ("longitude", longitude), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"enu_to_ecef: {name} must be a finite number, got {v!r}")
    if not -90 <= latitude <= 90:
        raise ValueError(f"enu_to_ecef: latitude must be in [-90, 90] degrees, got {latitude}")
    enu = torch.as_tensor(enu, dtype=torch.float64)
    if enu.ndim != 2 or enu.shape[1] != 3 or not bool(torch.isfinite(enu).all()):
        raise ValueError(f"enu_to_ecef: enu must be finite (S, 3) east, north, up metres, got shape {tuple(enu.shape)}")
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    phi, lam = math.radians(latitude), math.radians(longitude)
    n = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    site = torch.tensor([(n + height) * math.cos(phi) * math.cos(lam), (n + height) * math.cos(phi) * math.sin(lam),
                         (n * (1 - e2) + height) * math.sin(phi)], dtype=torch.float64)
    east = torch.tensor([-math.sin(lam), math.cos(lam), 0.0], dtype=torch.float64)
    north = torch.tensor([-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)], dtype=torch.float64)
    up = torch.tensor([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)], dtype=torch.float64)
    return site + enu @ torch.stack([east, north, up])


def baselines(n_stations: int) -> torch.Tensor:
    """The station pairs (i, j), i < j, in the order :func:`uv_coverage` returns them: (S(S−1)/2, 2)."""
    return torch.combinations(torch.arange(n_stations), 2)


def uv_coverage(stations: Mapping[str, Sequence[float]] | Sequence[Sequence[float]] | torch.Tensor,
                declination: float | torch.Tensor, hour_angles: torch.Tensor | Sequence[float], wavelength: float,
                min_elevation: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(u, v, w) of every baseline at every hour angle, in wavelengths, and where the source is visible.

    Args:
        stations: (S, 3) ECEF positions in metres, or a ``{name: (X, Y, Z)}`` mapping (e.g. :data:`EHT2017`); local
            east-north-up positions convert with :func:`enu_to_ecef`.
        declination: of the source, in degrees (M87*: 12.39; Sgr A*: −29.01); or a (T,) tensor, one per hour angle
            (several sources at once).
        hour_angles: Greenwich hour angles of the source, in hours, shape (T,).
        wavelength: in metres (1.3e-3 for the EHT's 230 GHz).
        min_elevation: degrees; a baseline is visible when the source is above it at both stations (≤ −90: always).

    Returns:
        ``uvw`` (T, B, 3) float64 and ``visible`` (T, B) bool, B = S(S−1)/2 baselines in :func:`baselines` order
        (the conjugate points −(u, v, w) are the same measurements).
    """
    pos = _positions(stations)
    for name, v in (("wavelength", wavelength), ("min_elevation", min_elevation)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"uv_coverage: {name} must be a finite number, got {v!r}")
    if wavelength <= 0:
        raise ValueError(f"uv_coverage: wavelength must be > 0 metres, got {wavelength}")
    h = torch.as_tensor(hour_angles, dtype=torch.float64).reshape(-1) * (math.pi / 12)
    if h.numel() == 0 or not bool(torch.isfinite(h).all()):
        raise ValueError("uv_coverage: hour_angles must be a non-empty sequence of finite hours")
    if isinstance(declination, bool) or not isinstance(declination, (numbers.Real, torch.Tensor)):
        raise ValueError(f"uv_coverage: declination must be a finite number, got {declination!r}")
    dec = torch.as_tensor(declination, dtype=torch.float64)
    if dec.ndim > 1 or (dec.ndim == 1 and dec.numel() != h.numel()):
        raise ValueError(f"uv_coverage: declination must be a number or one per hour angle ({h.numel()}), "
                         f"got shape {tuple(dec.shape)}")
    if not bool(torch.isfinite(dec).all()):
        raise ValueError(f"uv_coverage: declination must be a finite number, got {declination!r}")
    if bool(((dec < -90) | (dec > 90)).any()):
        raise ValueError(f"uv_coverage: declination must be in [-90, 90] degrees, got {declination}")
    d = torch.deg2rad(dec).reshape(-1, 1)  # (1 | T, 1)
    sd, cd = d.sin(), d.cos()
    pairs = baselines(pos.shape[0])
    L = pos[pairs[:, 1]] - pos[pairs[:, 0]]  # (B, 3)
    s, c = h.sin()[:, None], h.cos()[:, None]
    lx, ly, lz = L[:, 0], L[:, 1], L[:, 2]
    u = s * lx + c * ly
    v = -sd * c * lx + sd * s * ly + cd * lz
    w = cd * c * lx - cd * s * ly + sd * lz
    uvw = torch.stack([u, v, w], -1) / wavelength
    lat = torch.atan2(pos[:, 2], pos[:, :2].norm(dim=1))
    lon = torch.atan2(pos[:, 1], pos[:, 0])
    sin_el = lat.sin() * sd + lat.cos() * cd * torch.cos(h[:, None] + lon)  # (T, S)
    up = sin_el >= math.sin(math.radians(min_elevation)) if min_elevation > -90 else torch.ones_like(sin_el, dtype=torch.bool)
    visible = up[:, pairs[:, 0]] & up[:, pairs[:, 1]]
    return uvw, visible
