r"""Radio interferometry: visibilities :math:`y = W F x` of a real sky image at the array's (u, v) points.

Each pair of telescopes measures one Fourier coefficient of the sky brightness per integration (van Cittert–Zernike;
Thompson, Moran & Swenson, *Interferometry and Synthesis in Radio Astronomy*, ch. 3), at the spatial frequency its
baseline projects to (:func:`~selfinv.physics.uv_coverage`). On an image of (H, W) pixels, with the (u, v) points in
radians per pixel,

.. math::
    y_k = w_k\, (F x)_k, \qquad (F x)_k = \frac{1}{\sqrt{HW}} \sum_{r, c} x_{rc}\, e^{-i(u_k c' + v_k r')},
    \quad c' = c - \lfloor W/2 \rfloor,\; r' = r - \lfloor H/2 \rfloor,

a non-uniform DFT computed by FINUFFT (:mod:`selfinv.physics._nufft`) and normalised like the orthonormal DFT
(at the grid frequencies :math:`2\pi j/W` it is :func:`~selfinv.physics.fft2c`). The sky is real, the visibilities
complex: :math:`A` is real-linear from :math:`\mathbb{R}^{HW}` to :math:`\mathbb{C}^K` and its adjoint for the real
inner product :math:`\operatorname{Re}\langle a, b\rangle` is :math:`A^H y = \operatorname{Re} F^H (w \odot y)`, the
*dirty image*. A point source at the centre gives the *dirty beam* (the PSF of :math:`A^H A`); the conjugate point
:math:`-(u, v)` of a baseline is the same measurement (:math:`V(-u) = \overline{V(u)}` for a real sky), so it is not
listed twice. ``A_dagger`` is the minimum-norm least-squares image by conjugate gradient.

``weights`` :math:`w \ge 0` are data weights (e.g. :math:`1/\sigma_k`); a zero weight flags a visibility that is not
measured (a station not observing, the source below the horizon): it reads 0, gets no noise and is not
``acquired``, which is how per-sample observations of different sizes share one tensor
(:class:`~selfinv.physics.radio_sampler.RadioObservationSampler`).

Example:
    >>> import math, torch
    >>> from selfinv.physics import RadioInterferometry, uv_coverage, uv_radians
    >>> from selfinv.physics.uv_coverage import EHT2017
    >>> uvw, visible = uv_coverage(EHT2017, 12.39, torch.linspace(-6, 6, 25), 1.3e-3)
    >>> uv = uv_radians(uvw[visible], pixel_size=math.radians(200e-6 / 3600) / 64)    # 200 µas over 64 pixels
    >>> physics = RadioInterferometry(uv, 64)
    >>> y = physics.A(torch.rand(2, 1, 64, 64))
    >>> y.dtype, y.shape[-1] == int(visible.sum())
    (torch.complex64, True)
"""

from __future__ import annotations

import math

import torch

from selfinv.noise import NoiseModel
from selfinv.physics._nufft import nudft, nudft_adjoint
from selfinv.physics.base import LinearOperator

__all__ = ["RadioInterferometry", "uv_radians"]


def uv_radians(uvw: torch.Tensor, pixel_size: float) -> torch.Tensor:
    r"""(u, v) in wavelengths (the first two of ``uvw[..., :3]``) → radians per pixel for pixels of ``pixel_size``
    radians: :math:`\omega = -2\pi\,(u, v)\,\Delta`. The sign makes the image read as the sky is shown, north up and
    east left (the direction cosines grow to the left and up, opposite to column and row indices)."""
    if not (isinstance(pixel_size, (int, float)) and math.isfinite(pixel_size) and pixel_size > 0):
        raise ValueError(f"uv_radians: pixel_size must be a positive number of radians, got {pixel_size!r}")
    uvw = torch.as_tensor(uvw, dtype=torch.float64)
    if uvw.ndim < 1 or uvw.shape[-1] not in (2, 3):
        raise ValueError(f"uv_radians: uvw must end in 2 or 3 coordinates, got shape {tuple(uvw.shape)}")
    return -2 * math.pi * pixel_size * uvw[..., :2]


def _size(img_size) -> tuple[int, int]:
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 2 for s in size):
        raise ValueError(f"RadioInterferometry: img_size must be an int or (H, W) of at least 2 pixels, got {img_size!r}")
    return int(size[0]), int(size[1])


def _uv(uv) -> torch.Tensor:
    uv = torch.as_tensor(uv)
    if uv.is_complex() or not uv.is_floating_point():
        raise ValueError(f"RadioInterferometry: uv must be real (u, v) in radians per pixel, got {uv.dtype}")
    uv = uv[None] if uv.ndim == 2 else uv
    if uv.ndim != 3 or uv.shape[-1] != 2 or uv.shape[1] < 1:
        raise ValueError(f"RadioInterferometry: uv must be (K, 2) or (B|1, K, 2) points (u, v), got shape {tuple(uv.shape)}")
    if not bool(torch.isfinite(uv).all()):
        raise ValueError("RadioInterferometry: uv contains NaN or Inf")
    far = float(uv.abs().max())
    if far > math.pi * (1 + 1e-6):  # float32 rounding of ±π
        raise ValueError(
            f"RadioInterferometry: uv point at {far:.3g} rad/pixel lies outside the band [-π, π]: the pixels are too "
            "large for the longest baseline (use smaller pixels: a smaller field of view or more of them)"
        )
    return uv.to(torch.float64)


class RadioInterferometry(LinearOperator):
    r"""Visibilities :math:`y = w \odot F x` of real sky images at (u, v) points (see the module docstring).

    Args:
        uv: (K, 2) points shared by the batch or (B|1, K, 2) per sample, (u, v) in radians per pixel within
            [−π, π] (:func:`uv_radians` converts wavelengths; u pairs with columns, v with rows).
        img_size: (H, W) or an int.
        weights: (K,), (B|1, K) non-negative data weights; None for 1. Zero marks a visibility that is not measured.
        noise: noise model of the visibilities (thermal noise: ``Gaussian(sigma)``, sigma on the real and on the
            imaginary part).
    """

    is_complex = False
    measurement_is_complex = True
    _per_sample = ("uv", "weights")

    def __init__(self, uv: torch.Tensor, img_size: int | tuple[int, int], weights: torch.Tensor | None = None,
                 noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)
        self.img_size = _size(img_size)
        self.register_buffer("uv", _uv(uv))
        k = self.uv.shape[1]
        if weights is None:
            w = torch.ones(1, k, dtype=torch.float64)
        else:
            w = torch.as_tensor(weights)
            if w.is_complex() or not (w.is_floating_point() or w.dtype == torch.bool):
                raise ValueError(f"RadioInterferometry: weights must be real, got {w.dtype}")
            w = w[None] if w.ndim == 1 else w
            if w.ndim != 2 or w.shape[1] != k:
                raise ValueError(f"RadioInterferometry: weights must be (K,) or (B|1, K) with K = {k} like uv, "
                                 f"got shape {tuple(w.shape)}")
            w = w.to(torch.float64)
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError("RadioInterferometry: weights must be finite and non-negative")
            if self.uv.shape[0] != 1 and w.shape[0] != 1 and w.shape[0] != self.uv.shape[0]:
                raise ValueError(f"RadioInterferometry: uv has {self.uv.shape[0]} samples, weights {w.shape[0]}")
        self.register_buffer("weights", w)

    # ------------------------------------------------------------------ facts
    @property
    def x_shape(self) -> tuple[int, int, int]:
        """(1, H, W): any number of channels (frequencies, polarisations) with the same (u, v) points."""
        return (1, *self.img_size)

    @property
    def n_visibilities(self) -> torch.Tensor:
        """Per-sample number of measured visibilities (non-zero weights), shape (B|1,)."""
        return (self.weights > 0).sum(1)

    @property
    def observation(self) -> torch.Tensor:
        """(B|1, K, 3) float64: per visibility (u, v) in radians per pixel and its weight, as
        :class:`~selfinv.physics.radio_sampler.RadioObservationSampler` draws them."""
        n = max(self.uv.shape[0], self.weights.shape[0])
        return torch.cat([self.uv.expand(n, -1, -1), self.weights.expand(n, -1)[..., None]], -1)

    def identifiability_note(self) -> str:
        """What the (first sample's) coverage measures: visibilities, the band it spans, the scales it misses."""
        uv, w = self.uv[0], self.weights[0]
        radius = uv[w > 0].norm(dim=1)
        k = int((w > 0).sum())
        if k == 0:
            return "RadioInterferometry: no visibility is measured: everything is in the nullspace."
        n = self.img_size[0] * self.img_size[1]
        far, near = float(radius.max()), float(radius[radius > 1e-9].min()) if bool((radius > 1e-9).any()) else 0.0
        fine = f"{2 * math.pi / far:.3g} pixels" if far > 0 else "every scale"
        widest = 2 * math.pi / near if near > 0 else math.inf
        large = (f"; nor is structure wider than {widest:.3g} pixels (the shortest baseline)"
                 if widest < max(self.img_size) else "")
        return (f"RadioInterferometry: {k} visibilities ({2 * k} real numbers for {n} pixels) on (u, v) tracks out to "
                f"{far / math.pi:.0%} of the band: structure finer than {fine} (beyond the longest baseline) and the "
                f"gaps between the tracks are not measured{large}. Rotations turn the coverage and down-scalings shrink "
                "it towards the centre, so together they can fill the disc of the longest baseline (EI/REI); beyond it "
                "only the interpolation of discrete transforms leaks information (a rank test can pass with tiny "
                "eigenvalues there). Random observations (MOI) add tracks only when the declination or the wavelength "
                "changes: other hours of the same source lie on the same ellipses.")

    # ------------------------------------------------------------------ hooks
    def _points(self, like: torch.Tensor) -> torch.Tensor:
        return self.uv.flip(-1).transpose(1, 2).to(like.device)  # (P, 2, K): (row, column) frequencies

    def _w(self, like: torch.Tensor) -> torch.Tensor:
        return self.weights.to(device=like.device, dtype=like.real.dtype)[:, None, :]

    def _A(self, x):
        cplx = torch.complex128 if x.dtype == torch.float64 else torch.complex64
        return self._w(x) * nudft(x.to(cplx), self._points(x))

    def _A_adjoint(self, y):
        return nudft_adjoint(self._w(y) * y, self._points(y), self.img_size).real

    def _restrict(self, y):
        return torch.where(self._w(y) > 0, y, torch.zeros_like(y))

    def _check_x(self, x):
        if x.ndim != 4 or tuple(x.shape[-2:]) != self.img_size:
            raise self._shape_error("x", x, f"(B, C, {self.img_size[0]}, {self.img_size[1]}) sky images")

    def _check_y(self, y):
        if y.ndim != 3 or y.shape[-1] != self.uv.shape[1]:
            raise self._shape_error("y", y, f"(B, C, {self.uv.shape[1]}) visibilities")
        if not bool(torch.isfinite(y).all()):
            raise ValueError("RadioInterferometry: y contains NaN or Inf visibilities (flag bad ones with weight 0)")

    # ------------------------------------------------------------------ imaging
    def dirty_beam(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        r"""The point-spread function of :math:`A^H A`: :math:`b = A^H A \delta` for a unit point source at the centre
        pixel :math:`(\lfloor H/2 \rfloor, \lfloor W/2 \rfloor)`, on a grid of (2H, 2W) pixels centred at (H, W) so
        that every pixel offset within an image is covered: :math:`(A^H A x)_p = \sum_q x_q\, b_{p - q + (H, W)}`.
        Shape (B|1, 1, 2H, 2W); real, peak :math:`\sum_k w_k^2 / (HW)` at the centre."""
        h, w = self.img_size
        cplx = torch.complex128 if dtype == torch.float64 else torch.complex64
        wk = self.weights.to(dtype)[:, None, :]
        # F^H on the (2H, 2W) grid divides by √(4HW); b wants Σ_k w_k² e^{iω·p} / (HW)
        return nudft_adjoint((wk**2).to(cplx), self._points(wk), (2 * h, 2 * w)).real * (2 / math.sqrt(h * w))

    def dirty_image(self, y: torch.Tensor) -> torch.Tensor:
        r"""The dirty image in units of the beam: :math:`A^H y / b_{\max}` (a point source of flux s reads s at its
        peak), the classical first look at the visibilities."""
        self._validate(y, "y", self._check_y)
        peak = (self.weights**2).sum(1).to(y.real.dtype) / (self.img_size[0] * self.img_size[1])
        return self._A_adjoint(y) / peak.clamp_min(torch.finfo(peak.dtype).tiny).to(y.device)[:, None, None, None]
