r"""Computed tomography: the 2-D parallel-beam Radon transform, in pure torch.

The operator and its projector are here; the scan geometry it is built from (image size, angle sets and their
mask, ray directions) is checked in :mod:`selfinv.physics._tomography_geometry`, and the filters of the
filtered back-projection are in :mod:`selfinv.physics._fbp_filters`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selfinv.noise import NoiseModel
from selfinv.physics._fbp_filters import FILTERS, fourier_filter
from selfinv.physics._tomography_geometry import as_angle_mask, as_angles, as_size, directions, rays_inside
from selfinv.physics.base import LinearOperator


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

    The detector bins of one angle form a view, acquired together: :meth:`measurement_groups` labels
    one group per angle and channel, so measurement splitting holds out whole views.

    **Per-sample angle sets.** Real CT scans come with their own angles: ``angles`` may be a
    (B, n_angles) tensor, one set per sample (e.g. limited-angle scans over different ranges). Sets of
    different lengths are padded to one length and marked by ``angle_mask`` (B, n_angles), True (1)
    where an angle is real; the operator is then :math:`A = M R_\theta` with :math:`M` the diagonal of
    the mask over the sinogram columns, so ``y`` is exactly 0 at padded columns and the adjoint
    :math:`R_\theta^H M` ignores them. A padded sample equals ``Tomography(its valid angles)`` on its
    valid columns. ``angles`` (when 2-D) and ``angle_mask`` are per-sample buffers (``select``,
    ``batch_size``, :func:`selfinv.data.physics_params.with_params`); a leading dimension of 1 is
    shared by the batch. Both directions stay one ``grid_sample`` (or transpose) per chunk of angles,
    the per-sample rays folded into the grid of each sample: no loop over samples.

    Args:
        angles: an int ``n`` (``n`` equispaced angles :math:`180^\circ\, a / n`, :math:`a < n`), a
            1-D tensor/sequence of angles in degrees shared by the batch, or a (B, n_angles) tensor
            (or nested sequence) with one set of angles per sample ((1, n_angles): shared).
        img_size: N, or a square (N, N); images x are real (B, C, N, N).
        noise: noise model on the sinogram, or ``None``.
        n_detectors: the number of detector bins :math:`n_d` (default N: the rays cover the inscribed
            circle, as ``radon(circle=True)``); ``math.ceil(math.sqrt(2) * N)`` covers the corners too.
            Sinograms y are real (B, C, n_detectors, n_angles).
        angle_mask: optional validity of the angles, bool or 0/1, of shape (n_angles,) or (1,
            n_angles) (shared) or (B, n_angles) (per sample): False marks a padded angle, whose column
            of ``y`` is 0 (padded angles may hold any finite value). Every sample needs at least one
            valid angle. ``n_angles`` stays the (padded) column count.

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
        >>> sets = torch.tensor([[0.0, 60.0, 120.0], [10.0, 100.0, 0.0]])   # 3 angles, and 2 padded to 3
        >>> per = Tomography(sets, 8, angle_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]))
        >>> y = per.A(torch.rand(2, 1, 8, 8))
        >>> per.batch_size, tuple(y.shape), bool((y[1, :, :, 2] == 0).all())
        (2, (2, 1, 8, 3), True)
    """

    #: roughly the most elements (grid points times batch*channels) one chunk of angles allocates
    _chunk_elements: int = 2**21

    def __init__(
        self,
        angles: int | Sequence[float] | torch.Tensor,
        img_size: int | tuple[int, int],
        noise: NoiseModel | None = None,
        n_detectors: int | None = None,
        angle_mask: torch.Tensor | Sequence | None = None,
    ) -> None:
        super().__init__(noise=noise)
        self.img_size = as_size(img_size)
        n = self.img_size
        if n_detectors is None:
            n_detectors = n
        if isinstance(n_detectors, bool) or not isinstance(n_detectors, numbers.Integral) or n_detectors < 1:
            raise ValueError(f"Tomography: n_detectors must be a positive int, got {n_detectors!r}")
        self.n_detectors = int(n_detectors)
        angles = as_angles(angles)
        self.register_buffer("angles", angles)
        self.register_buffer("angle_mask", as_angle_mask(angle_mask, angles))
        # half-length of the rays: far enough for the bilinear support of every pixel (radius (N/2+1)*sqrt 2)
        self._half_ray = math.ceil(math.sqrt(2.0) * (n / 2 + 1))
        # the sampling lattice before rotation, in the normalised units of grid_sample: offsets * 2/N
        s = torch.arange(self.n_detectors, dtype=torch.float64) - self.n_detectors // 2
        t = torch.arange(-self._half_ray, self._half_ray + 1, dtype=torch.float64)
        self.register_buffer("_s", s * (2.0 / n), persistent=False)
        self.register_buffer("_t", t * (2.0 / n), persistent=False)
        # the image centre c = N // 2 in grid_sample's normalised coordinates (align_corners=False)
        self._centre = (2 * (n // 2) + 1) / n - 1

    # ------------------------------------------------------------------ geometry
    @property
    def x_shape(self) -> tuple[int, int, int]:
        """(1, N, N): images of any number of channels are projected channel by channel."""
        return (1, self.img_size, self.img_size)

    @property
    def _per_sample(self) -> tuple[str, ...]:  # type: ignore[override]
        # 1-D angles are one shared set (their length is not a batch size); 2-D ones are (1|B, n_angles)
        return ("angles", "angle_mask") if self.angles.ndim == 2 else ("angle_mask",)

    @property
    def n_angles(self) -> int:
        """The number of projection angles (the column count of y, padded angles included)."""
        return int(self.angles.shape[-1])

    @property
    def n_valid_angles(self) -> torch.Tensor | int:
        """The number of valid angles: ``n_angles``, or per ``angle_mask`` row an int64 tensor (1|B,)."""
        if self.angle_mask is None:
            return self.n_angles
        return (self.angle_mask != 0).sum(-1)

    def _valid(self, like: torch.Tensor) -> torch.Tensor | None:
        """The angle mask as bool (1|B, 1, 1, n_angles) on like's device, or None when every angle is valid."""
        if self.angle_mask is None:
            return None
        return (self.angle_mask != 0).to(like.device)[:, None, None, :]

    def _shared_angles(self) -> torch.Tensor | None:
        """The 1-D angle set when the batch shares one (1-D or (1, n) angles), else None."""
        if self.angles.ndim == 1:
            return self.angles
        return self.angles[0] if self.angles.shape[0] == 1 else None

    @property
    def n_samples(self) -> int:
        """The number of samples (one pixel apart) along every ray."""
        return 2 * self._half_ray + 1

    def _angle_slices(self, like: torch.Tensor, per_angle: int, per_thread: bool):
        """Slices of consecutive angles holding at most ``_chunk_elements`` of the caller's ``per_angle`` elements
        each (at least one angle), and with ``per_thread`` on CPU at least one angle per thread."""
        k = max(1, self._chunk_elements // per_angle)
        if per_thread and like.device.type == "cpu":
            k = max(k, torch.get_num_threads())
        k = min(k, self.n_angles)
        return [slice(i, min(i + k, self.n_angles)) for i in range(0, self.n_angles, k)]

    def _chunks(self, like: torch.Tensor, per_angle: int, angles: torch.Tensor):
        r"""Yield (angle slice, grid (k, n_samples, n_detectors, 2)) for chunks of k of the shared ``angles``.

        The grid holds the rotated ray samples :math:`c + s_k e_\theta + t_j e_\theta^\perp` in
        ``grid_sample``'s normalised (column, row) coordinates, in like's dtype and device. ``per_angle``
        is the number of elements the caller allocates per angle; chunks hold at most
        ``_chunk_elements`` of them, and on CPU at least one angle per thread (the transpose of
        ``grid_sample`` runs in parallel over its batch dimension, which holds the angles).
        """
        e, e_perp = directions(angles, like)  # (n_angles, 2)
        s = self._s.to(device=like.device, dtype=like.dtype)[None, None, :, None]
        t = self._t.to(device=like.device, dtype=like.dtype)[None, :, None, None]
        for sl in self._angle_slices(like, per_angle, per_thread=True):
            base = (t * e_perp[sl, None, None, :]).add_(self._centre)  # (k, n_samples, 1, 2)
            yield sl, torch.addcmul(base, s, e[sl, None, None, :])

    def _chunks_per_sample(self, like: torch.Tensor, per_angle: int):
        r"""Yield (angle slice, grid (B, n_samples, k * n_detectors, 2)) for chunks of k per-sample angles.

        Sample b's grid holds its own rays :math:`c + s_d e_{\theta_{b,a}} + t_j e_{\theta_{b,a}}^\perp`
        at [b, j, a * n_detectors + d] (the points of :meth:`_chunks` for sample b's angles, to rounding):
        one ``grid_sample`` of the (B, C, N, N) images then projects every sample along its own angles,
        with no copy of the images, and the transpose accumulates every sample's rays into its own
        image. ``per_angle`` is the number of elements the caller allocates per angle (whole batch).
        """
        e, e_perp = directions(self.angles, like)  # (B, n_angles, 2)
        b = e.shape[0]
        s = self._s.to(device=like.device, dtype=like.dtype)[None, None, None, :, None]
        t = self._t.to(device=like.device, dtype=like.dtype)[None, :, None, None, None]
        cplx = {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(like.dtype)
        for sl in self._angle_slices(like, per_angle, per_thread=False):
            base = (t * e_perp[:, None, sl, None, :]).add_(self._centre)  # (B, n_samples, k, 1, 2)
            step = s * e[:, None, sl, None, :]  # (B, 1, k, n_detectors, 2)
            if cplx is not None:
                # the sum as complex numbers (column + i row): one vectorised pass writes the interleaved
                # grid, much faster than broadcasting onto a trailing axis of 2; the same real additions
                grid = torch.view_as_real(torch.view_as_complex(base) + torch.view_as_complex(step))
            else:
                grid = base + step
            yield sl, grid.reshape(b, self.n_samples, -1, 2)  # (B, n_samples, k * n_detectors, 2)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        r"""The forward projection :math:`M R_\theta x`, without autograd (see :class:`_Project`)."""
        shared = self._shared_angles()
        y = self._project_shared(x, shared) if shared is not None else self._project_per_sample(x)
        valid = self._valid(y)
        return y if valid is None else torch.where(valid, y, torch.zeros_like(y))

    def _project_shared(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        b, c, n, _ = x.shape
        bc = b * c
        xs = x.reshape(1, bc, n, n)
        out = x.new_empty(self.n_angles, bc, self.n_detectors)
        for sl, grid in self._chunks(x, (bc + 2) * self.n_samples * self.n_detectors, angles):
            k = grid.shape[0]
            v = F.grid_sample(xs.expand(k, bc, n, n), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            torch.sum(v, dim=2, out=out[sl])  # (k, bc, n_samples, n_detectors) -> (k, bc, n_detectors)
        return out.permute(1, 2, 0).reshape(b, c, self.n_detectors, self.n_angles)

    def _project_per_sample(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        nd = self.n_detectors
        out = x.new_empty(b, c, self.n_angles, nd)
        for sl, grid in self._chunks_per_sample(x, (b * c + 2 * b) * self.n_samples * nd):
            v = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out[:, :, sl, :] = v.sum(2).view(b, c, -1, nd)  # (B, C, n_samples, k * nd) -> (B, C, k, nd)
        return out.transpose(-1, -2)

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        r"""The exact transpose of :meth:`_project`, :math:`R_\theta^H M y`, without autograd (see :class:`_BackProject`)."""
        valid = self._valid(y)
        if valid is not None:
            y = torch.where(valid, y, torch.zeros_like(y))
        shared = self._shared_angles()
        return self._backproject_shared(y, shared) if shared is not None else self._backproject_per_sample(y)

    def _backproject_per_sample(self, y: torch.Tensor) -> torch.Tensor:
        b, c = y.shape[:2]
        n, nd, ns = self.img_size, self.n_detectors, self.n_samples
        yt = y.transpose(-1, -2).contiguous()  # (B, C, n_angles, n_detectors): a chunk of angles is one run
        shape_only = y.new_zeros(()).expand(b, c, n, n)  # only its shape is read
        acc = None
        for sl, grid in self._chunks_per_sample(y, (b * c + 2 * b) * ns * nd):
            g = yt[:, :, sl, :].reshape(b, c, 1, -1).expand(b, c, ns, grid.shape[2])
            gi, _ = torch.ops.aten.grid_sampler_2d_backward(g, shape_only, grid, 0, 0, False, [True, False])
            acc = gi if acc is None else acc + gi
        return acc

    def _backproject_shared(self, y: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        b, c = y.shape[:2]
        bc, n = b * c, self.img_size
        ys = y.reshape(bc, self.n_detectors, self.n_angles).permute(2, 0, 1)  # (n_angles, bc, n_detectors)
        acc = y.new_zeros(bc, n, n)
        for sl, grid in self._chunks(y, bc * n * n + (bc + 2) * self.n_samples * self.n_detectors, angles):
            k = grid.shape[0]
            g = ys[sl, :, None, :].expand(k, bc, self.n_samples, self.n_detectors)
            shape_only = y.new_zeros(()).expand(k, bc, n, n)  # only its shape is read
            gi, _ = torch.ops.aten.grid_sampler_2d_backward(g, shape_only, grid, 0, 0, False, [True, False])
            acc += gi.sum(0)
        return acc.reshape(b, c, n, n)

    @property
    def _measured(self) -> torch.Tensor:
        """Bool, broadcastable to y: the bins that are measured (see :meth:`_measured_bins`).

        (n_detectors, n_angles) for one shared set without mask, else (1|B, 1, n_detectors, n_angles)
        with the padded columns False. Computed from the current buffers (they may be replaced by
        ``select`` or ``with_params``) and cached while they stay the same tensors.
        """
        cache = self.__dict__.get("_measured_cache")
        angles, mask = self.angles, self.angle_mask
        if cache is not None and cache[0] is angles and cache[1] is mask:
            return cache[2]
        measured = self._measured_bins()
        if angles.ndim == 2 or mask is not None:
            measured = measured.expand(angles.shape[0] if angles.ndim == 2 else 1, -1, -1)
            if mask is not None:
                measured = measured & (mask != 0).to(measured.device)[:, None, :]
            measured = measured[:, None]
        self.__dict__["_measured_cache"] = (angles, mask, measured)
        return measured

    def _measured_bins(self) -> torch.Tensor:
        """(n_detectors, n_angles) bool, or (B, n_detectors, n_angles) for 2-D angles: bins whose ray has a
        sample inside the bilinear support of the image.

        A sample counts when both coordinates lie in (-1 + 1e-3, N - 1e-3) pixels, so an unmeasured bin
        is zero for every image, whatever the rounding of the sampling grid.
        """
        n = self.img_size
        th = torch.deg2rad(self.angles.detach().to(torch.float64))[..., None, :]  # (1|B,) 1, n_angles
        s = (torch.arange(self.n_detectors, dtype=torch.float64, device=th.device) - self.n_detectors // 2)[:, None]
        # column = c + s cos + t sin, row = c - s sin + t cos must lie in (-1 + eps, N - eps)
        lines = [(n // 2 + s * th.cos(), th.sin()), (n // 2 - s * th.sin(), th.cos())]
        return rays_inside(lines, n, self._half_ray, torch.broadcast_shapes(th.shape, s.shape), th.device)

    # ------------------------------------------------------------------ hooks
    def _A(self, x):
        return _Project.apply(x, self)

    def _A_adjoint(self, y):
        return _BackProject.apply(y, self)

    def _restrict(self, y):
        return torch.where(self._measured.to(y.device), y, torch.zeros_like(y))

    def _groups(self, y):
        """One group per view: all detector bins of one angle (and channel) are acquired together."""
        c, n = y.shape[1], y.shape[-1]
        return (torch.arange(c, device=y.device)[:, None, None] * n + torch.arange(n, device=y.device)).unsqueeze(0)

    def _check_params(self):
        # buffers replaced by with_params are not re-validated by the constructor: the shapes must still agree
        a, m = self.angles, self.angle_mask
        if a.ndim not in (1, 2) or (m is not None and (m.ndim != 2 or m.shape[-1] != a.shape[-1])):
            raise ValueError(
                f"{type(self).__name__}: angles {tuple(a.shape)} and angle_mask {None if m is None else tuple(m.shape)} "
                "do not fit: expected (n_angles,) or (1|B, n_angles) angles and a (1|B, n_angles) mask"
            )

    def _check_x(self, x):
        self._check_params()
        n = self.img_size
        if x.ndim != 4 or tuple(x.shape[-2:]) != (n, n):
            raise self._shape_error("x", x, f"(B, C, {n}, {n})")

    def _check_y(self, y):
        self._check_params()
        if y.ndim != 4 or tuple(y.shape[-2:]) != (self.n_detectors, self.n_angles):
            raise self._shape_error(
                "y", y, f"(B, C, {self.n_detectors}, {self.n_angles}) = (B, C, n_detectors, n_angles)"
            )

    # ------------------------------------------------------------------ reconstruction
    def no_learning(self, y: torch.Tensor) -> torch.Tensor:
        """The filtered back-projection (ramp filter)."""
        return self.fbp(y)

    def fbp(self, y: torch.Tensor, filter: str | None = "ramp") -> torch.Tensor:
        r"""Filtered back-projection: a fast approximate inverse, :math:`\frac{\pi}{2 n_\theta} A^H (h * y)`.

        Each projection is zero-padded to a power of two :math:`\geq 2 n_d` and filtered along the
        detector axis by the ramp filter designed in the spatial domain (Kak & Slaney; as
        :func:`skimage.transform.iradon`), optionally apodised by ``"shepp-logan"``, ``"cosine"``,
        ``"hamming"`` or ``"hann"`` (``None``: no filter, a plain scaled back-projection). Pixels
        farther than :math:`\lfloor n_d / 2 \rfloor` from the centre, which not every angle sees, are
        set to 0. Accurate for many angles spread over 180 degrees; differentiable in ``y``.

        With per-sample angle sets each sample is weighted by its own number of valid angles,
        :math:`\frac{\pi}{2 n_{\theta,b}}` (padded columns are ignored by :math:`A^H`).
        """
        self._validate(y, "y", self._check_y)
        if filter is not None and filter not in FILTERS:
            raise ValueError(f"Tomography: unknown filter {filter!r}; expected one of {', '.join(FILTERS)} or None")
        if filter is not None:
            size = max(64, 2 ** math.ceil(math.log2(2 * self.n_detectors)))
            h = fourier_filter(size, filter).to(device=y.device, dtype=y.dtype)
            spectrum = torch.fft.rfft(y, n=size, dim=-2) * h[:, None]
            y = torch.fft.irfft(spectrum, n=size, dim=-2)[..., : self.n_detectors, :]
        count = self.n_valid_angles
        if isinstance(count, int):
            x = self._A_adjoint(y) * (math.pi / (2 * count))
        else:
            x = self._A_adjoint(y) * (math.pi / (2 * count.to(device=y.device, dtype=y.dtype)))[:, None, None, None]
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
