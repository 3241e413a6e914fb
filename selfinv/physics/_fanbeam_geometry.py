r"""The flat-detector fan-beam geometry of :class:`~selfinv.physics.FanBeamTomography`: rays and FBP weights.

Coordinates are image pixels, :math:`(x, y)` from the image centre (the geometric centre, pixel index
:math:`(N-1)/2`), :math:`x` along the columns and :math:`y` up (against the rows), as ASTRA's ``fanflat``
geometry (which the HTC2022 data were made for). For the source angle :math:`\beta` let

.. math::

    w_\beta = (\sin\beta, -\cos\beta), \qquad v_\beta = (\cos\beta, \sin\beta):

the source is at :math:`S = D\, w_\beta` (:math:`D` the source-to-centre distance), the detector line is
perpendicular to :math:`w_\beta` at distance :math:`D_{sd}` from the source, and detector pixel :math:`k`
sits at :math:`S - D_{sd} w_\beta + u_k v_\beta` with :math:`u_k = (k - (n_d-1)/2)\,\Delta u`. Its ray has
the unit direction :math:`r = (-D_{sd} w_\beta + u_k v_\beta)/L_k`, :math:`L_k = \sqrt{D_{sd}^2 + u_k^2}`,
and passes nearest to the centre at :math:`F = D w_\beta + (D D_{sd} / L_k)\, r` (the foot point, at distance
:math:`D |u_k| / L_k` from the centre). :func:`fan_rays` gives :math:`F` and :math:`r`,
:func:`measured_bins` the rays that cross the image, and :func:`scan_weights` the angular and redundancy
weights of the filtered back-projection.
"""

from __future__ import annotations

import math

import torch

from selfinv.physics._tomography_geometry import rays_inside


def fan_rays(angles: torch.Tensor, n_detectors: int, sod: float, sdd: float, du: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Foot points :math:`F` and unit directions :math:`r` (..., n_angles, n_detectors, 2) of the rays, as (x, y).

    ``angles`` (..., n_angles) in degrees; ``sod``, ``sdd`` and ``du`` in pixels; float64 on the angles' device.
    """
    th = torch.deg2rad(angles.detach().to(torch.float64))[..., None]  # (..., n_angles, 1)
    u = (torch.arange(n_detectors, dtype=torch.float64, device=th.device) - (n_detectors - 1) / 2) * du
    w = torch.stack(torch.broadcast_tensors(th.sin(), -th.cos()), -1)  # (..., n_angles, 1, 2)
    v = torch.stack(torch.broadcast_tensors(th.cos(), th.sin()), -1)
    length = torch.sqrt(sdd**2 + u**2)[:, None]  # (n_detectors, 1)
    r = (-sdd * w + u[:, None] * v) / length
    foot = sod * w + (sod * sdd / length) * r
    return foot, r


def measured_bins(foot: torch.Tensor, r: torch.Tensor, n: int, half: int) -> torch.Tensor:
    """Bool (..., n_angles, n_detectors): the rays with a sample :math:`F + j r` (:math:`|j| \\le` ``half``) inside
    the bilinear support of an n x n image.

    A sample counts when its pixel coordinates lie in (-1 + 1e-3, n - 1e-3), so an unmeasured bin is zero for
    every image, whatever the rounding of the sampling grid.
    """
    c = (n - 1) / 2
    # pixel coordinates: column = c + x, row = c - y
    pos = torch.stack([c + foot[..., 0], c - foot[..., 1]], -1)
    step = torch.stack([r[..., 0], -r[..., 1]], -1)
    return rays_inside([(pos[..., i], step[..., i]) for i in range(2)], n, half, pos.shape[:-1], pos.device)


def scan_weights(angles: torch.Tensor, valid: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    r"""The weights :math:`\Delta\beta_i\, \omega(\beta_i, \gamma_k)` (P, n_angles, n_detectors) of the fan-beam FBP.

    ``angles`` (P, n_angles) in degrees, ``valid`` (P, n_angles) bool, ``gamma`` (n_detectors,) the fan angle
    :math:`\gamma_k = \arctan(u_k / D_{sd})` of each detector pixel (radians). Per sample (row):

    * :math:`\Delta\beta_i` (radians) is the angular interval of view i: half the gaps to its neighbours in
      the sorted set (the end views of an open scan: the gap to their one neighbour; padded views: 0).
    * A full scan (the views span 360 degrees: range :math:`\times\, n/(n-1) \ge 360`, the gap closing the
      circle counted) measures every line twice: :math:`\omega = 1/2`.
    * A short scan over :math:`\pi + 2\delta` with :math:`\delta \ge \gamma_{max}` (the half fan angle):
      Parker's weights (Parker 1982, Med. Phys. 9, 254), with :math:`\beta` from the first view and
      Parker's :math:`\gamma = -\gamma_k` (in this geometry ray :math:`(\beta, \gamma_k)` meets
      :math:`(\beta + \pi - 2\gamma_k, -\gamma_k)`), so that the two measurements of a line sum to 1.
    * Shorter (limited-angle) scans: :math:`\omega = 1`; each line is measured at most once when the range is
      below :math:`\pi - 2\gamma_{max}`, and the reconstruction misses the lines never measured.
    """
    p, n = angles.shape
    a = torch.where(valid, angles.to(torch.float64), torch.full_like(angles, math.inf, dtype=torch.float64))
    srt, order = a.sort(-1)
    cnt = valid.sum(-1, keepdim=True)  # (P, 1)
    idx = torch.arange(n, device=a.device)
    lo = srt[:, :1]
    hi = srt.gather(-1, cnt - 1)
    rng = hi - lo  # degrees
    gap = torch.where(idx[1:] < cnt, srt.diff(dim=-1), 0.0) if n > 1 else srt[:, :0]
    full = (cnt > 1) & (rng * cnt >= (360.0 - 1e-6) * (cnt - 1).clamp_min(1))
    wrap = (360.0 - rng).clamp_min(0)
    first = torch.where(full, wrap, gap[:, :1] if n > 1 else wrap)
    prev = torch.cat([first, gap], -1)  # the gap before each sorted view
    nxt = torch.cat([gap, torch.zeros_like(first)], -1)
    last_gap = gap.gather(-1, (cnt - 2).clamp_min(0)) if n > 1 else wrap
    nxt = torch.where(idx == cnt - 1, torch.where(full, wrap, last_gap), nxt)
    dbeta = torch.where(idx < cnt, (prev + nxt) / 2, 0.0)
    dbeta = torch.where(cnt == 1, torch.full_like(dbeta, 180.0), dbeta)  # one view: any weight, FBP means nothing
    dbeta = torch.zeros_like(dbeta).scatter(-1, order, dbeta)  # back to the given order
    dbeta = torch.deg2rad(torch.where(valid, dbeta, 0.0))

    # redundancy: 1/2 (full scan), Parker (short scan), 1 (limited angle)
    g = -gamma.to(torch.float64)  # Parker's sign convention
    gmax = float(gamma.abs().max()) if gamma.numel() else 0.0
    beta = torch.deg2rad(torch.where(valid, angles.to(torch.float64) - lo, 0.0))[..., None]
    delta = torch.deg2rad(rng - 180.0)[..., None] / 2  # (P, 1, 1)
    parker = ~full[..., None] & (delta >= gmax - 1e-12)
    d_minus = (delta - g).clamp_min(1e-12)
    d_plus = (delta + g).clamp_min(1e-12)
    w = torch.ones(p, n, gamma.numel(), dtype=torch.float64, device=a.device)
    rise = torch.sin(math.pi / 4 * beta / d_minus) ** 2
    fall = torch.sin(math.pi / 4 * (math.pi + 2 * delta - beta) / d_plus) ** 2
    w = torch.where(beta < 2 * (delta - g), rise, w)
    w = torch.where(beta > math.pi - 2 * g, fall, w)
    omega = torch.where(parker, w, torch.where(full[..., None], torch.full_like(w, 0.5), torch.ones_like(w)))
    return dbeta[..., None] * omega
