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

__all__ = ["EHT2017", "baselines", "uv_coverage"]

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


def _positions(stations) -> torch.Tensor:
    if isinstance(stations, Mapping):
        stations = list(stations.values())
    pos = torch.as_tensor(stations, dtype=torch.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 2:
        raise ValueError(f"uv_coverage: stations must be (S, 3) ECEF positions in metres with S >= 2, got shape {tuple(pos.shape)}")
    if not bool(torch.isfinite(pos).all()):
        raise ValueError("uv_coverage: station positions must be finite")
    return pos


def baselines(n_stations: int) -> torch.Tensor:
    """The station pairs (i, j), i < j, in the order :func:`uv_coverage` returns them: (S(S−1)/2, 2)."""
    return torch.combinations(torch.arange(n_stations), 2)


def uv_coverage(stations: Mapping[str, Sequence[float]] | Sequence[Sequence[float]] | torch.Tensor, declination: float,
                hour_angles: torch.Tensor | Sequence[float], wavelength: float,
                min_elevation: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(u, v, w) of every baseline at every hour angle, in wavelengths, and where the source is visible.

    Args:
        stations: (S, 3) ECEF positions in metres, or a ``{name: (X, Y, Z)}`` mapping (e.g. :data:`EHT2017`).
        declination: of the source, in degrees (M87*: 12.39; Sgr A*: −29.01).
        hour_angles: Greenwich hour angles of the source, in hours, shape (T,).
        wavelength: in metres (1.3e-3 for the EHT's 230 GHz).
        min_elevation: degrees; a baseline is visible when the source is above it at both stations (≤ −90: always).

    Returns:
        ``uvw`` (T, B, 3) float64 and ``visible`` (T, B) bool, B = S(S−1)/2 baselines in :func:`baselines` order
        (the conjugate points −(u, v, w) are the same measurements).
    """
    pos = _positions(stations)
    for name, v in (("declination", declination), ("wavelength", wavelength), ("min_elevation", min_elevation)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"uv_coverage: {name} must be a finite number, got {v!r}")
    if not -90 <= declination <= 90:
        raise ValueError(f"uv_coverage: declination must be in [-90, 90] degrees, got {declination}")
    if wavelength <= 0:
        raise ValueError(f"uv_coverage: wavelength must be > 0 metres, got {wavelength}")
    h = torch.as_tensor(hour_angles, dtype=torch.float64).reshape(-1) * (math.pi / 12)
    if h.numel() == 0 or not bool(torch.isfinite(h).all()):
        raise ValueError("uv_coverage: hour_angles must be a non-empty sequence of finite hours")
    d = math.radians(declination)
    pairs = baselines(pos.shape[0])
    L = pos[pairs[:, 1]] - pos[pairs[:, 0]]  # (B, 3)
    s, c = h.sin()[:, None], h.cos()[:, None]
    lx, ly, lz = L[:, 0], L[:, 1], L[:, 2]
    u = s * lx + c * ly
    v = -math.sin(d) * c * lx + math.sin(d) * s * ly + math.cos(d) * lz
    w = math.cos(d) * c * lx - math.cos(d) * s * ly + math.sin(d) * lz
    uvw = torch.stack([u, v, w], -1) / wavelength
    lat = torch.atan2(pos[:, 2], pos[:, :2].norm(dim=1))
    lon = torch.atan2(pos[:, 1], pos[:, 0])
    sin_el = lat.sin() * math.sin(d) + lat.cos() * math.cos(d) * torch.cos(h[:, None] + lon)  # (T, S)
    up = sin_el >= math.sin(math.radians(min_elevation)) if min_elevation > -90 else torch.ones_like(sin_el, dtype=torch.bool)
    visible = up[:, pairs[:, 0]] & up[:, pairs[:, 1]]
    return uvw, visible
