r"""Computed tomography: the 2-D parallel-beam Radon transform, in pure torch."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator

_FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


class Tomography(LinearOperator):
    r"""Parallel-beam Radon transform :math:`y = R x` of square images (a sinogram per channel).

    For an :math:`N\times N` image with centre :math:`c = \lfloor N/2 \rfloor` (pixel indices, (row,
    column) as :func:`skimage.transform.radon`) and angle :math:`\theta_a`, detector bin :math:`k`
    integrates the image along the ray at offset :math:`s_k = k - \lfloor n_d/2 \rfloor`:

    .. math::

        y[k, a] = \sum_{j=-T}^{T} \tilde x\big(c + s_k\, e_{\theta_a} + j\, e_{\theta_a}^\perp\big),
        \qquad e_\theta = (\cos\theta, -\sin\theta), \quad e_\theta^\perp = (\sin\theta, \cos\theta)

        \text{in (column, row) coordinates,}

    where :math:`\tilde x` is the bilinear interpolant of the image (zero outside it), so the line
    integral is in pixel units (samples one pixel apart) and :math:`T` is large enough for every ray to
    cross the whole image. This is :func:`skimage.transform.radon` with ``circle=True`` for images that
    vanish outside the inscribed circle (and with ``circle=False`` for ``n_detectors`` =
    :math:`\lceil \sqrt 2 N \rceil`), up to rounding. The adjoint :math:`A^H` (the back-projection) is the exact
    transpose of the discretisation: both directions are one batched ``grid_sample`` (or its exact
    transpose) per chunk of angles, differentiable to any order. ``A_dagger`` is the minimum-norm
    least-squares solution by conjugate gradient; :meth:`fbp` is the fast approximate inverse
    (filtered back-projection).

    Detector bins whose ray misses the image are never measured: ``A x`` is zero there for every
    ``x``, and ``forward`` keeps them at zero after noise.

    Args:
        angles: an int ``n`` (``n`` equispaced angles :math:`180^\circ\, a / n`, :math:`a < n`) or a
            1-D tensor/sequence of angles in degrees, shared by the batch.
        img_size: N, or a square (N, N); images x are real (B, C, N, N).
        noise: noise model on the sinogram, or ``None``.
        n_detectors: the number of detector bins :math:`n_d` (default N: the rays cover the inscribed
            circle, as ``radon(circle=True)``); ``math.ceil(math.sqrt(2) * N)`` covers the corners too.
            Sinograms y are real (B, C, n_detectors, n_angles).

    Example:
        >>> import torch
        >>> from selfinv.physics.tomography import Tomography
        >>> op = Tomography(angles=4, img_size=8)
        >>> x = torch.zeros(1, 1, 8, 8); x[0, 0, 2, 5] = 1.0
        >>> y = op.A(x)
        >>> y.shape                                   # (B, C, n_detectors, n_angles)
        torch.Size([1, 1, 8, 4])
        >>> y[0, 0, :, 0]                             # at 0 degrees, bin k sums column k
        tensor([0., 0., 0., 0., 0., 1., 0., 0.])
        >>> z = torch.rand(1, 1, 8, 4)                 # the back-projection is the exact adjoint
        >>> torch.allclose((op.A(x) * z).sum(), (x * op.A_adjoint(z)).sum())
        True
    """

    #: roughly the most elements (grid points times batch*channels) one chunk of angles allocates
    _chunk_elements: int = 2**21

    def __init__(
        self,
        angles: int | Sequence[float] | torch.Tensor,
        img_size: int | tuple[int, int],
        noise: NoiseModel | None = None,
        n_detectors: int | None = None,
    ) -> None:
        super().__init__(noise=noise)
        self.img_size = _as_size(img_size)
        n = self.img_size
        if n_detectors is None:
            n_detectors = n
        if isinstance(n_detectors, bool) or not isinstance(n_detectors, numbers.Integral) or n_detectors < 1:
            raise ValueError(f"Tomography: n_detectors must be a positive int, got {n_detectors!r}")
        self.n_detectors = int(n_detectors)
        self.register_buffer("angles", _as_angles(angles))
        # half-length of the rays: far enough for the bilinear support of every pixel (radius (N/2+1)*sqrt 2)
        self._half_ray = math.ceil(math.sqrt(2.0) * (n / 2 + 1))
        # the sampling lattice before rotation, in the normalised units of grid_sample: offsets * 2/N
        s = torch.arange(self.n_detectors, dtype=torch.float64) - self.n_detectors // 2
        t = torch.arange(-self._half_ray, self._half_ray + 1, dtype=torch.float64)
        self.register_buffer("_s", s * (2.0 / n), persistent=False)
        self.register_buffer("_t", t * (2.0 / n), persistent=False)
        # the image centre c = N // 2 in grid_sample's normalised coordinates (align_corners=False)
        self._centre = (2 * (n // 2) + 1) / n - 1
        self.register_buffer("_measured", self._measured_bins(), persistent=False)

    # ------------------------------------------------------------------ geometry
    @property
    def n_angles(self) -> int:
        """The number of projection angles."""
        return int(self.angles.shape[0])

    @property
    def n_samples(self) -> int:
        """The number of samples (one pixel apart) along every ray."""
        return 2 * self._half_ray + 1

    def _chunks(self, like: torch.Tensor, per_angle: int):
        r"""Yield (angle slice, grid (k, n_samples, n_detectors, 2)) for chunks of k angles.

        The grid holds the rotated ray samples :math:`c + s_k e_\theta + t_j e_\theta^\perp` in
        ``grid_sample``'s normalised (column, row) coordinates, in like's dtype and device. ``per_angle``
        is the number of elements the caller allocates per angle; chunks hold at most
        ``_chunk_elements`` of them, and on CPU at least one angle per thread (the transpose of
        ``grid_sample`` runs in parallel over its batch dimension, which holds the angles).
        """
        th = torch.deg2rad(self.angles.to(torch.float64))
        cos, sin = th.cos(), th.sin()
        e = torch.stack([cos, -sin], -1).to(device=like.device, dtype=like.dtype)  # (n_angles, 2)
        e_perp = torch.stack([sin, cos], -1).to(device=like.device, dtype=like.dtype)
        s = self._s.to(device=like.device, dtype=like.dtype)[None, None, :, None]
        t = self._t.to(device=like.device, dtype=like.dtype)[None, :, None, None]
        k = max(1, self._chunk_elements // per_angle)
        if like.device.type == "cpu":
            k = max(k, torch.get_num_threads())
        k = min(k, self.n_angles)
        for i in range(0, self.n_angles, k):
            sl = slice(i, min(i + k, self.n_angles))
            base = (t * e_perp[sl, None, None, :]).add_(self._centre)  # (k, n_samples, 1, 2)
            yield sl, torch.addcmul(base, s, e[sl, None, None, :])

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """The forward projection, without autograd (see :class:`_Project`)."""
        b, c, n, _ = x.shape
        bc = b * c
        xs = x.reshape(1, bc, n, n)
        out = x.new_empty(self.n_angles, bc, self.n_detectors)
        for sl, grid in self._chunks(x, (bc + 2) * self.n_samples * self.n_detectors):
            k = grid.shape[0]
            v = F.grid_sample(xs.expand(k, bc, n, n), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            torch.sum(v, dim=2, out=out[sl])  # (k, bc, n_samples, n_detectors) -> (k, bc, n_detectors)
        return out.permute(1, 2, 0).reshape(b, c, self.n_detectors, self.n_angles)

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        """The exact transpose of :meth:`_project`, without autograd (see :class:`_BackProject`)."""
        b, c = y.shape[:2]
        bc, n = b * c, self.img_size
        ys = y.reshape(bc, self.n_detectors, self.n_angles).permute(2, 0, 1)  # (n_angles, bc, n_detectors)
        acc = y.new_zeros(bc, n, n)
        for sl, grid in self._chunks(y, bc * n * n + (bc + 2) * self.n_samples * self.n_detectors):
            k = grid.shape[0]
            g = ys[sl, :, None, :].expand(k, bc, self.n_samples, self.n_detectors)
            shape_only = y.new_zeros(()).expand(k, bc, n, n)  # only its shape is read
            gi, _ = torch.ops.aten.grid_sampler_2d_backward(g, shape_only, grid, 0, 0, False, [True, False])
            acc += gi.sum(0)
        return acc.reshape(b, c, n, n)

    def _measured_bins(self) -> torch.Tensor:
        """(n_detectors, n_angles) bool: bins whose ray has a sample inside the bilinear support of the image.

        A sample counts when both coordinates lie in (-1 + 1e-3, N - 1e-3) pixels, so an unmeasured bin
        is zero for every image, whatever the rounding of the sampling grid.
        """
        n, eps = self.img_size, 1e-3
        th = torch.deg2rad(self.angles.to(torch.float64))[None, :]
        s = (torch.arange(self.n_detectors, dtype=torch.float64) - self.n_detectors // 2)[:, None]
        lo = torch.full(torch.broadcast_shapes(th.shape, s.shape), -self._half_ray - 0.5, dtype=torch.float64)
        hi = -lo
        ok = torch.ones_like(lo, dtype=torch.bool)
        # column = c + s cos + t sin, row = c - s sin + t cos must lie in (-1 + eps, N - eps)
        for a, d in ((n // 2 + s * th.cos(), th.sin()), (n // 2 - s * th.sin(), th.cos())):
            a, d = torch.broadcast_tensors(a, d)
            flat = d.abs() < 1e-12
            safe = torch.where(flat, torch.ones_like(d), d)
            t1, t2 = (-1 + eps - a) / safe, (n - eps - a) / safe
            lo = torch.where(flat, lo, torch.maximum(lo, torch.minimum(t1, t2)))
            hi = torch.where(flat, hi, torch.minimum(hi, torch.maximum(t1, t2)))
            ok &= ~flat | ((a > -1 + eps) & (a < n - eps))
        return ok & (torch.floor(lo) + 1 < hi)

    # ------------------------------------------------------------------ hooks
    def _A(self, x):
        return _Project.apply(x, self)

    def _A_adjoint(self, y):
        return _BackProject.apply(y, self)

    def _restrict(self, y):
        return torch.where(self._measured.to(y.device), y, torch.zeros_like(y))

    def _check_x(self, x):
        n = self.img_size
        if x.ndim != 4 or tuple(x.shape[-2:]) != (n, n):
            raise self._shape_error("x", x, f"(B, C, {n}, {n})")

    def _check_y(self, y):
        if y.ndim != 4 or tuple(y.shape[-2:]) != (self.n_detectors, self.n_angles):
            raise self._shape_error(
                "y", y, f"(B, C, {self.n_detectors}, {self.n_angles}) = (B, C, n_detectors, n_angles)"
            )

    # ------------------------------------------------------------------ reconstruction
    def fbp(self, y: torch.Tensor, filter: str | None = "ramp") -> torch.Tensor:
        r"""Filtered back-projection: a fast approximate inverse, :math:`\frac{\pi}{2 n_\theta} A^H (h * y)`.

        Each projection is zero-padded to a power of two :math:`\geq 2 n_d` and filtered along the
        detector axis by the ramp filter designed in the spatial domain (Kak & Slaney; as
        :func:`skimage.transform.iradon`), optionally apodised by ``"shepp-logan"``, ``"cosine"``,
        ``"hamming"`` or ``"hann"`` (``None``: no filter, a plain scaled back-projection). Pixels
        farther than :math:`\lfloor n_d / 2 \rfloor` from the centre, which not every angle sees, are
        set to 0. Accurate for many angles spread over 180 degrees; differentiable in ``y``.
        """
        self._validate(y, "y", self._check_y)
        if filter is not None and filter not in _FILTERS:
            raise ValueError(f"Tomography: unknown filter {filter!r}; expected one of {', '.join(_FILTERS)} or None")
        if filter is not None:
            size = max(64, 2 ** math.ceil(math.log2(2 * self.n_detectors)))
            h = _fourier_filter(size, filter).to(device=y.device, dtype=y.dtype)
            spectrum = torch.fft.rfft(y, n=size, dim=-2) * h[:, None]
            y = torch.fft.irfft(spectrum, n=size, dim=-2)[..., : self.n_detectors, :]
        x = self._A_adjoint(y) * (math.pi / (2 * self.n_angles))
        n, r = self.img_size, self.n_detectors // 2
        i = torch.arange(n, device=y.device) - n // 2
        inside = (i[:, None] ** 2 + i[None, :] ** 2) <= r**2
        return torch.where(inside, x, torch.zeros_like(x))


class _Project(torch.autograd.Function):
    """x -> A x, whose derivative is :class:`_BackProject` (so autograd works to any order)."""

    @staticmethod
    def forward(ctx, x, op):
        ctx.op = op
        return op._project(x)

    @staticmethod
    def backward(ctx, grad):
        return _BackProject.apply(grad, ctx.op), None


class _BackProject(torch.autograd.Function):
    """y -> A^H y, whose derivative is :class:`_Project`."""

    @staticmethod
    def forward(ctx, y, op):
        ctx.op = op
        return op._backproject(y)

    @staticmethod
    def backward(ctx, grad):
        return _Project.apply(grad, ctx.op), None


def _as_size(img_size) -> int:
    if isinstance(img_size, (tuple, list, torch.Size)):
        if len(img_size) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in img_size):
            raise ValueError(f"Tomography: img_size must be an int N or a pair (N, N), got {img_size!r}")
        if img_size[0] != img_size[1]:
            raise ValueError(f"Tomography: images must be square, got img_size {tuple(img_size)}")
        img_size = img_size[0]
    if isinstance(img_size, bool) or not isinstance(img_size, numbers.Integral) or img_size < 1:
        raise ValueError(f"Tomography: img_size must be a positive int N or a pair (N, N), got {img_size!r}")
    return int(img_size)


def _as_angles(angles) -> torch.Tensor:
    if isinstance(angles, bool):
        raise ValueError("Tomography: angles must be an int or a 1-D sequence of angles in degrees, got a bool")
    if isinstance(angles, numbers.Integral):
        if angles < 1:
            raise ValueError(f"Tomography: the number of angles must be positive, got {angles}")
        return torch.arange(int(angles), dtype=torch.float64) * (180.0 / int(angles))
    if isinstance(angles, torch.Tensor):
        t = angles.detach()
    else:
        try:
            arr = np.asarray(angles)
        except (TypeError, ValueError):
            arr = np.asarray(None)
        if arr.dtype.kind not in "iuf":
            raise ValueError(
                f"Tomography: angles must be an int or a 1-D sequence of angles in degrees, got {angles!r}"
            )
        t = torch.from_numpy(arr.astype(np.float64))  # float64 from the start: no float32 rounding of e.g. 133.7
    if t.is_complex() or t.dtype == torch.bool or t.ndim != 1 or t.numel() == 0:
        raise ValueError(
            f"Tomography: angles must be a non-empty 1-D real sequence (degrees), got {t.dtype} of shape {tuple(t.shape)}"
        )
    t = t.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("Tomography: angles must be finite")
    return t


def _fourier_filter(size: int, name: str) -> torch.Tensor:
    """The (size // 2 + 1,) real frequency response of ``name`` for an rfft of length ``size`` (float64).

    The ramp is the DFT of the band-limited spatial-domain ramp kernel (Kak & Slaney, eq. 61, ch. 3),
    which avoids the DC offset of sampling :math:`|\\omega|` directly; as :func:`skimage.transform.iradon`.
    """
    k = torch.arange(size, dtype=torch.float64)
    f = torch.zeros(size, dtype=torch.float64)
    f[0] = 0.25
    odd = torch.minimum(k, size - k)[1::2]  # |n| for the odd taps n = 1, 3, ..., -3, -1
    f[1::2] = -1.0 / (math.pi * odd) ** 2
    ramp = 2 * torch.fft.fft(f).real
    if name == "shepp-logan":
        omega = math.pi * torch.fft.fftfreq(size, dtype=torch.float64)[1:]
        ramp[1:] = ramp[1:] * torch.sin(omega) / omega
    elif name == "cosine":
        ramp = ramp * torch.fft.fftshift(torch.sin(torch.linspace(0, math.pi, size + 1, dtype=torch.float64)[:-1]))
    elif name == "hamming":
        ramp = ramp * torch.fft.fftshift(torch.hamming_window(size, periodic=False, dtype=torch.float64))
    elif name == "hann":
        ramp = ramp * torch.fft.fftshift(torch.hann_window(size, periodic=False, dtype=torch.float64))
    return ramp[: size // 2 + 1]
