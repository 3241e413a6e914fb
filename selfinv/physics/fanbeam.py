r"""Fan-beam computed tomography with a flat detector (as the HTC2022 scans), in pure torch.

The rays and the weights of the filtered back-projection are in :mod:`selfinv.physics._fanbeam_geometry`;
the projector itself (chunks of angles through one batched ``grid_sample`` and its exact transpose, angle
masks for per-sample sets, measured bins, view groups) is the one of the parallel-beam
:class:`~selfinv.physics.tomography.Tomography`, of which this operator changes only the rays.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selfinv.noise import NoiseModel
from selfinv.physics._fanbeam_geometry import fan_rays, measured_bins, scan_weights
from selfinv.physics._fbp_filters import FILTERS, fourier_filter
from selfinv.physics._tomography_geometry import as_angle_mask, as_angles, as_size
from selfinv.physics.base import LinearOperator
from selfinv.physics.tomography import Tomography

_NAME = "FanBeamTomography"


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{_NAME}: {name} must be a positive finite number, got {value!r}")
    return float(value)


class FanBeamTomography(Tomography):
    r"""Fan-beam CT with a flat detector: :math:`y = A x`, the line integrals of real (B, C, N, N) images.

    **Geometry** (the convention of ASTRA's ``fanflat``, and so of the HTC2022 data; details in
    :mod:`selfinv.physics._fanbeam_geometry`). Image coordinates :math:`(x, y)` from the image centre, x
    along the columns and y up (against the rows). At angle :math:`\beta` the source is at
    :math:`S = D\,(\sin\beta, -\cos\beta)`, :math:`D` = ``source_distance`` from the rotation centre (the
    image centre), and the flat detector is perpendicular to the central ray at ``detector_distance``
    :math:`D_{sd}` from the source, its pixel k at offset :math:`u_k = (k - (n_d-1)/2)\,\Delta u` along
    :math:`(\cos\beta, \sin\beta)` (:math:`\Delta u` = ``detector_spacing``). Distances, spacing and
    ``pixel_size`` share one unit (mm for HTC2022); at 0 degrees the source is below the image and detector
    pixel k lies towards column k, as :class:`~selfinv.physics.tomography.Tomography` at 0 degrees.

    **Discretisation.** Bin (k, a) integrates the bilinear interpolant :math:`\tilde x` of the image along
    the ray from the source through detector pixel k, sampled one pixel apart:

    .. math::

        y[k, a] = h \sum_{j=-T}^{T} \tilde x\big(F_{a,k} + j\, r_{a,k}\big),

    :math:`F` the point of the ray nearest to the centre, :math:`r` its unit direction (both in pixels),
    :math:`T = \lceil (N+1)/\sqrt 2 \rceil` so that the samples cover the image and :math:`h` =
    ``pixel_size``: the line integral in the unit of the distances, so that x is an attenuation per unit
    length (per mm for HTC2022, whose sinograms are :math:`-\log(I/I_0)`). The source must lie outside the
    image; the whole line through the image is integrated (the object lies between source and detector).
    :math:`A^H` is the exact transpose of this sum (tested in float64), ``A_dagger`` the minimum-norm
    least-squares solution by conjugate gradient, :meth:`fbp` the fast approximate inverse. Bins whose ray
    misses the image are never measured (0 for every x, kept 0 after noise); one view (angle) is one
    acquisition group. Per-sample angle sets and ``angle_mask`` work as for
    :class:`~selfinv.physics.tomography.Tomography` (limited-angle scans over different ranges).

    Args:
        angles: an int ``n`` (``n`` equispaced angles :math:`360^\circ a / n`: a full scan), a 1-D tensor /
            sequence of angles in degrees shared by the batch, or a (B, n_angles) tensor with one set per
            sample ((1, n_angles): shared).
        img_size: N, or a square (N, N).
        n_detectors: the number of detector pixels :math:`n_d`. Sinograms y are (B, C, n_detectors, n_angles).
        source_distance: source to rotation centre, :math:`D` (HTC2022 ``distanceSourceOrigin``).
        detector_distance: source to detector, :math:`D_{sd} > D` (HTC2022 ``distanceSourceDetector``).
        detector_spacing: the detector pixel pitch :math:`\Delta u` on the detector (HTC2022 ``pixelSizePost``).
        noise: noise model on the sinogram, or ``None``.
        pixel_size: the side of an image pixel in the unit of the distances (default 1: distances in pixels).
            The detector seen from the centre has pitch :math:`\Delta u\, D / D_{sd}` (HTC2022
            ``effectivePixelSizePost``), the natural ``pixel_size``.
        angle_mask: optional validity of the angles, bool or 0/1, (n_angles,), (1, n_angles) or (B, n_angles):
            False marks a padded angle, whose column of y is 0.

    Example:
        >>> import torch
        >>> from selfinv.physics.fanbeam import FanBeamTomography
        >>> op = FanBeamTomography(angles=90, img_size=32, n_detectors=48, source_distance=60.0,
        ...                        detector_distance=120.0, detector_spacing=1.5)
        >>> i = torch.arange(32) - 15.5
        >>> disc = ((i[:, None] ** 2 + i[None, :] ** 2) < 10**2).double()[None, None]   # radius 10 pixels
        >>> y = op.A(disc)
        >>> tuple(y.shape)                                        # (B, C, n_detectors, n_angles)
        (1, 1, 48, 90)
        >>> round(float(y[0, 0, 23:25, 0].mean()), 0)              # the central rays cross 2 r = 20 pixels
        20.0
        >>> z = torch.rand(1, 1, 48, 90, dtype=torch.float64)       # the back-projection is the exact adjoint
        >>> torch.allclose((y * z).sum(), (disc * op.A_adjoint(z)).sum())
        True
        >>> x = op.fbp(y)                                          # full scan: close to the disc
        >>> round(float(x[0, 0, 14:18, 14:18].mean()), 1)
        1.0
    """

    def __init__(
        self,
        angles: int | Sequence[float] | torch.Tensor,
        img_size: int | tuple[int, int],
        n_detectors: int,
        source_distance: float,
        detector_distance: float,
        detector_spacing: float,
        noise: NoiseModel | None = None,
        pixel_size: float = 1.0,
        angle_mask: torch.Tensor | Sequence | None = None,
    ) -> None:
        LinearOperator.__init__(self, noise=noise)  # the geometry below replaces Tomography's
        self.img_size = n = as_size(img_size, _NAME)
        if isinstance(n_detectors, bool) or not isinstance(n_detectors, numbers.Integral) or n_detectors < 1:
            raise ValueError(f"{_NAME}: n_detectors must be a positive int, got {n_detectors!r}")
        self.n_detectors = int(n_detectors)
        self.source_distance = _positive(source_distance, "source_distance")
        self.detector_distance = _positive(detector_distance, "detector_distance")
        self.detector_spacing = _positive(detector_spacing, "detector_spacing")
        self.pixel_size = _positive(pixel_size, "pixel_size")
        if self.detector_distance <= self.source_distance:
            raise ValueError(
                f"{_NAME}: detector_distance (source to detector, {self.detector_distance:g}) must exceed "
                f"source_distance (source to rotation centre, {self.source_distance:g})"
            )
        radius = (n + 1) / math.sqrt(2)  # the bilinear support of the image, in pixels
        if self.source_distance / self.pixel_size <= radius:
            raise ValueError(
                f"{_NAME}: the source ({self.source_distance / self.pixel_size:.4g} pixels from the centre) must lie "
                f"outside the image (radius {radius:.4g} pixels): increase source_distance or decrease pixel_size"
            )
        angles = as_angles(angles, _NAME, turn=360.0)
        self.register_buffer("angles", angles)
        self.register_buffer("angle_mask", as_angle_mask(angle_mask, angles, _NAME))
        self._half_ray = math.ceil(radius)  # samples j = -T..T, one pixel apart (n_samples = 2 T + 1)
        self.register_buffer("_t", torch.arange(-self._half_ray, self._half_ray + 1, dtype=torch.float64), persistent=False)

    # ------------------------------------------------------------------ geometry in pixels
    @property
    def _sod(self) -> float:
        return self.source_distance / self.pixel_size

    @property
    def _sdd(self) -> float:
        return self.detector_distance / self.pixel_size

    @property
    def _du(self) -> float:
        return self.detector_spacing / self.pixel_size

    def _rays(self, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Foot points and directions (..., n_angles, n_detectors, 2) in pixels, float64."""
        return fan_rays(angles, self.n_detectors, self._sod, self._sdd, self._du)

    def _grid_rays(self, angles: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rays in ``grid_sample``'s normalised (column, row) coordinates, as complex numbers column + i row
        (..., n_angles, n_detectors), in like's precision and device: a point x, y (pixels from the centre) is
        (2x/N, -2y/N) (align_corners=False puts the image centre at 0)."""
        foot, r = self._rays(angles)
        flip = torch.tensor([2.0 / self.img_size, -2.0 / self.img_size], dtype=torch.float64, device=foot.device)
        cplx = torch.complex128 if like.dtype == torch.float64 else torch.complex64

        def as_complex(p: torch.Tensor) -> torch.Tensor:
            return torch.view_as_complex((p * flip).contiguous()).to(device=like.device, dtype=cplx)

        return as_complex(foot), as_complex(r)

    def _chunks(self, like: torch.Tensor, per_angle: int, angles: torch.Tensor):
        """Yield (angle slice, grid (k, n_samples, n_detectors, 2)) for chunks of k of the shared ``angles``:
        sample j of ray (a, d) at :math:`F_{a,d} + t_j r_{a,d}` (as Tomography's, on CPU at least one angle per
        thread)."""
        foot, r = self._grid_rays(angles, like)  # (n_angles, n_detectors)
        t = self._t.to(device=like.device, dtype=like.dtype)[None, :, None]
        for sl in self._angle_slices(like, per_angle, per_thread=True):
            yield sl, torch.view_as_real(foot[sl, None, :] + t * r[sl, None, :])

    def _chunks_per_sample(self, like: torch.Tensor, per_angle: int):
        """Yield (angle slice, grid (B, n_samples, k * n_detectors, 2)) for chunks of k per-sample angles: sample
        b's own rays at [b, j, a * n_detectors + d] (see Tomography._chunks_per_sample)."""
        foot, r = self._grid_rays(self.angles, like)  # (B, n_angles, n_detectors)
        b = foot.shape[0]
        t = self._t.to(device=like.device, dtype=like.dtype)[None, :, None, None]
        for sl in self._angle_slices(like, per_angle, per_thread=False):
            grid = torch.view_as_real(foot[:, None, sl] + t * r[:, None, sl])  # (B, n_samples, k, n_detectors, 2)
            yield sl, grid.reshape(b, self.n_samples, -1, 2)

    def _measured_bins(self) -> torch.Tensor:
        """(n_detectors, n_angles) bool, or (B, n_detectors, n_angles) for 2-D angles: rays crossing the image."""
        foot, r = self._rays(self.angles)
        return measured_bins(foot, r, self.img_size, self._half_ray).transpose(-1, -2)

    # ------------------------------------------------------------------ the line integral's unit
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        y = super()._project(x)
        return y if self.pixel_size == 1.0 else y * self.pixel_size

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        x = super()._backproject(y)
        return x if self.pixel_size == 1.0 else x * self.pixel_size

    # ------------------------------------------------------------------ reconstruction
    def fbp(self, y: torch.Tensor, filter: str | None = "ramp") -> torch.Tensor:
        r"""Filtered back-projection for the flat fan-beam geometry (Kak & Slaney, *Principles of Computerized
        Tomographic Imaging*, ch. 3.4.2), on the virtual detector through the centre, :math:`s_k = u_k D / D_{sd}`:

        .. math::

            \hat x(p) = \sum_i \frac{1}{U_i(p)^2}\, Q_i\big(s_i(p)\big), \qquad
            Q_i = \Big(\Delta\beta_i\, \omega_{ik}\, \frac{D}{\sqrt{D^2 + s_k^2}}\, \frac{y_{ik}}{h}\Big) * g,

        :math:`g` the ramp filter along the virtual detector (frequency response :math:`|\nu|`, designed in the
        spatial domain as in :meth:`Tomography.fbp`, optionally apodised by ``filter``; ``None``: no filter),
        :math:`U_i(p) = (D - \langle p, w_{\beta_i}\rangle)/D` the distance weight,
        :math:`s_i(p) = D \langle p, v_{\beta_i}\rangle / (D - \langle p, w_{\beta_i}\rangle)` where the ray
        through pixel p meets the virtual detector (linear interpolation, pixel-driven), :math:`h` =
        ``pixel_size`` and :math:`\Delta\beta_i\,\omega_{ik}` the angular and redundancy weights of
        :func:`~selfinv.physics._fanbeam_geometry.scan_weights`: :math:`\omega = 1/2` for a full 360 degree
        scan (Kak & Slaney's eq. with their :math:`g = h_{ramp}/2`; exact in the limit), Parker's weights for a
        short scan of at least 180 degrees plus the fan angle, 1 for limited-angle scans (only approximate:
        the lines never measured are missing). Per-sample sets are weighted per sample. Pixels outside the disc
        that every view sees are set to 0. Differentiable in y.
        """
        self._validate(y, "y", self._check_y)
        if filter is not None and filter not in FILTERS:
            raise ValueError(f"{_NAME}: unknown filter {filter!r}; expected one of {', '.join(FILTERS)} or None")
        nd, n = self.n_detectors, self.img_size
        sod, sdd = self._sod, self._sdd
        ds = self._du * sod / sdd  # the virtual detector's pitch, pixels
        angles = self.angles if self.angles.ndim == 2 else self.angles[None]
        s = (torch.arange(nd, dtype=torch.float64, device=angles.device) - (nd - 1) / 2) * ds
        valid = torch.ones_like(angles, dtype=torch.bool) if self.angle_mask is None else self.angle_mask.to(angles.device) != 0
        valid = valid.expand(angles.shape[0], -1) if valid.shape[0] == 1 else valid
        angles = angles.expand(valid.shape[0], -1)
        weights = scan_weights(angles, valid, torch.atan(s / sod))  # (P, n_angles, nd)
        weights = weights * (sod / torch.sqrt(sod**2 + s**2) / self.pixel_size)
        q = y * weights.transpose(-1, -2)[:, None].to(device=y.device, dtype=y.dtype)
        if filter is not None:
            size = max(64, 2 ** math.ceil(math.log2(2 * nd)))
            h = fourier_filter(size, filter).to(device=y.device, dtype=y.dtype) / (2 * ds)
            q = torch.fft.irfft(torch.fft.rfft(q, n=size, dim=-2) * h[:, None], n=size, dim=-2)[..., :nd, :]
        x = self._weighted_backprojection(q, angles)
        i = torch.arange(n, device=y.device, dtype=y.dtype) - (n - 1) / 2
        s_max = (nd - 1) / 2 * ds
        inside = (i[:, None] ** 2 + i[None, :] ** 2) <= (sod * s_max) ** 2 / (sod**2 + s_max**2)
        return torch.where(inside, x, torch.zeros_like(x))

    def _weighted_backprojection(self, q: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_i U_i(p)^{-2}\, q_i(s_i(p))` for q (B, C, n_detectors, n_angles) and angles (1|B, n_angles):
        pixel-driven, one ``grid_sample`` per chunk of angles interpolating each view (a one-row image) linearly
        along the virtual detector (0 off it). :math:`U` and :math:`s` are outer sums of a row and a column term."""
        b, c, nd, na = q.shape
        n, sod, ds = self.img_size, self._sod, self._du * self._sod / self._sdd
        p = angles.shape[0]
        th = torch.deg2rad(angles.to(device=q.device, dtype=torch.float64))[..., None, None]  # (P, n_angles, 1, 1)
        i = torch.arange(n, device=q.device, dtype=torch.float64) - (n - 1) / 2
        px, py = i[None, :], -i[:, None]  # x right (columns), y up (rows)
        scale = 2 / (ds * nd)  # detector offset s -> grid_sample's normalised coordinate
        # U = (D - <p, w>) / D and the normalised detector coordinate  2 <p, v> / (U ds nd), per angle
        u_col, u_row = (-px * th.sin() / sod).to(q.dtype), (1 + py * th.cos() / sod).to(q.dtype)
        s_col, s_row = (scale * px * th.cos()).to(q.dtype), (scale * py * th.sin()).to(q.dtype)
        views = (q.permute(0, 3, 1, 2) if p > 1 else q.reshape(1, b * c, nd, na).permute(0, 3, 1, 2))[:, :, :, None]
        cc = views.shape[2]  # (P, n_angles, C', 1, nd): P = B with C' = C, or P = 1 with C' = B C
        k = max(1, min(na, 2**22 // max(1, p * (cc + 3) * n * n)))
        acc = q.new_zeros(p, cc, n, n)
        for lo in range(0, na, k):
            sl = slice(lo, min(lo + k, na))
            m = sl.stop - sl.start
            u = u_row[:, sl] + u_col[:, sl]  # (P, m, N, N)
            grid = q.new_zeros(p * m, n, n, 2)
            torch.div(s_row[:, sl] + s_col[:, sl], u, out=grid[..., 0].view(p, m, n, n))
            v = F.grid_sample(views[:, sl].reshape(p * m, cc, 1, nd), grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)
            acc = acc + (v.view(p, m, cc, n, n) * u.pow_(-2)[:, :, None]).sum(1)
        return acc.reshape(b, c, n, n)
