r"""Blur: circular convolution :math:`y = k \circledast x`, its kernels and a random kernel family.

:class:`Blur` applies a (possibly per-sample) kernel by FFT with periodic boundaries, so the operator
is circulant and diagonal in Fourier: :math:`A = F^{-1} \operatorname{diag}(\hat k) F`. Kernels come
from :func:`gaussian_kernel`, :func:`box_kernel` and :func:`motion_kernel` (vectorised over per-sample
parameters) or from :class:`BlurKernelSampler`, which draws one kernel per sample from a generator.

Conventions shared by everything here: the centre of a ``kh × kw`` kernel is the pixel
``(kh // 2, kw // 2)`` (a kernel with a single 1 there is the identity); angles are in degrees,
counter-clockwise as the image is displayed (rows pointing down), 0 being horizontal.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from selfinv import _random
from selfinv._batched import as_param
from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator

__all__ = ["KERNELS", "Blur", "BlurKernelSampler", "box_kernel", "gaussian_kernel", "motion_kernel"]


# ---------------------------------------------------------------------- the operator
def _as_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Check a kernel and return it as a detached 4-D real tensor; (kh, kw) becomes (1, 1, kh, kw)."""
    if not isinstance(kernel, torch.Tensor):
        raise ValueError(f"Blur: kernel must be a torch.Tensor, got {type(kernel).__name__}")
    if kernel.ndim == 2:
        kernel = kernel[None, None]
    if kernel.ndim != 4:
        raise ValueError(f"Blur: kernel must have shape (kh, kw) or (B|1, C|1, kh, kw), got {tuple(kernel.shape)}")
    if kernel.is_complex():
        raise ValueError(f"Blur: kernel must be real, got {kernel.dtype}")
    if kernel.numel() == 0:
        raise ValueError(f"Blur: kernel is empty, shape {tuple(kernel.shape)}")
    kernel = kernel.detach()
    if not kernel.is_floating_point():
        kernel = kernel.to(torch.float32)
    if not bool(torch.isfinite(kernel).all()):
        raise ValueError("Blur: kernel contains NaN or Inf")
    return kernel


class Blur(LinearOperator):
    r"""Circular convolution :math:`y = k \circledast x` computed by FFT (periodic boundaries).

    With :math:`c = (k_h/\!/2,\ k_w/\!/2)` the kernel's centre,

    .. math:: (Ax)_{i,j} = \sum_{m,n} k_{m,n}\, x_{(i - m + c_h) \bmod H,\ (j - n + c_w) \bmod W},

    which is ``scipy.ndimage.convolve(x, k, mode="wrap")``. In Fourier :math:`A = F^{-1}\operatorname{diag}
    (\hat k)F`, where :math:`\hat k` is the DFT of the kernel zero-padded to the image size and rolled so
    that its centre sits at pixel (0, 0); hence :math:`A^H = F^{-1}\operatorname{diag}(\overline{\hat k})F`
    (correlation), :math:`A^HA = F^{-1}\operatorname{diag}(|\hat k|^2)F` and the exact pseudo-inverse

    .. math:: A^\dagger = F^{-1}\operatorname{diag}(\hat k^+)F, \qquad
        \hat k^+_\omega = 1/\hat k_\omega \text{ if } |\hat k_\omega| > \mathrm{rtol}\cdot\max_\omega|\hat k_\omega|,
        \ 0 \text{ otherwise},

    the maximum being taken per sample. :math:`\hat k` is computed at call time for the size of the
    image, so one operator applies to images of any size at least as large as the kernel. Each channel
    is blurred separately (by its own kernel when the kernel has C channels).

    Args:
        kernel: real, finite; (kh, kw) or (1, 1|C, kh, kw) shared by the batch, or (B, 1|C, kh, kw) one
            per sample. It is cast to the dtype and device of the input at use.
        noise: noise model, or ``None`` for noiseless measurements.
        rtol: relative threshold under which Fourier coefficients count as zero in ``A_dagger``.

    Example:
        >>> import torch
        >>> from selfinv.physics.blur import Blur, box_kernel
        >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 2] = 9.0
        >>> Blur(box_kernel(3)).A(x)[0, 0].round(decimals=5) + 0.0  # FFT rounding aside
        tensor([[0., 0., 0., 0., 0.],
                [0., 1., 1., 1., 0.],
                [0., 1., 1., 1., 0.],
                [0., 1., 1., 1., 0.],
                [0., 0., 0., 0., 0.]])
    """

    # thresholded: A A† A = A only up to the Fourier coefficients below rtol·max|k̂| that are dropped
    exact_dagger = False
    _per_sample = ("kernel",)

    def __init__(self, kernel: torch.Tensor, noise: NoiseModel | None = None, rtol: float = 1e-6) -> None:
        super().__init__(noise=noise)
        if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (math.isfinite(rtol) and rtol >= 0):
            raise ValueError(f"Blur: rtol must be a finite number >= 0, got {rtol!r}")
        self.rtol = float(rtol)
        self.register_buffer("kernel", _as_kernel(kernel))

    def no_learning(self, y: torch.Tensor) -> torch.Tensor:
        """y itself: A†y amplifies the noise without bound on the frequencies the blur nearly kills."""
        return y

    def _spectrum(self, like: torch.Tensor) -> torch.Tensor:
        """rfft2 of the kernel, zero-padded to like's (H, W) and centred at (0, 0): (B|1, C|1, H, W//2+1)."""
        h, w = like.shape[-2:]
        k = self.kernel.to(device=like.device, dtype=like.dtype)
        kh, kw = k.shape[-2:]
        k = F.pad(k, (0, w - kw, 0, h - kh))
        k = torch.roll(k, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
        return torch.fft.rfft2(k)

    @staticmethod
    def _filter(x: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x) * spectrum, s=tuple(x.shape[-2:]))

    def _A(self, x):
        return self._filter(x, self._spectrum(x))

    def _A_adjoint(self, y):
        return self._filter(y, self._spectrum(y).conj())

    def _normal(self, x):
        return self._filter(x, self._spectrum(x).abs().square())

    def _A_dagger(self, y, tol, max_iter):
        k = self._spectrum(y)
        mag = k.abs()
        keep = mag > self.rtol * mag.amax(dim=(-3, -2, -1), keepdim=True)
        inv = torch.where(keep, 1.0 / torch.where(keep, k, torch.ones_like(k)), torch.zeros_like(k))
        return self._filter(y, inv)

    def _check(self, t: torch.Tensor, name: str) -> None:
        if t.ndim != 4:
            raise ValueError(f"Blur: {name} must have shape (B, C, H, W), got {tuple(t.shape)}")
        kh, kw = self.kernel.shape[-2:]
        if kh > t.shape[-2] or kw > t.shape[-1]:
            raise ValueError(f"Blur: the kernel ({kh}, {kw}) is larger than {name}'s image {tuple(t.shape[-2:])}")
        if self.kernel.shape[1] not in (1, t.shape[1]):
            raise ValueError(f"Blur: kernel has {self.kernel.shape[1]} channels but {name} has {t.shape[1]}")

    def _check_x(self, x):
        self._check(x, "x")

    def _check_y(self, y):
        self._check(y, "y")

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, rtol={self.rtol:g}"


# ---------------------------------------------------------------------- kernel constructors
def _size(size, owner: str, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise ValueError(f"{owner}: {name} must be an integer, got {size!r}")
    if size < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {size}")
    return int(size)


def _params(owner: str, device, **named) -> tuple[list[torch.Tensor], int | None, torch.device]:
    """Parameters as float64 tensors shaped (B|1, 1, 1) on one device, and the batch size (None: shared)."""
    ts = {n: as_param(v, n, owner) for n, v in named.items()}
    sizes = {int(t.shape[0]) for t in ts.values() if t.ndim == 1}
    if len(sizes) > 1:
        detail = ", ".join(f"{n}: {tuple(t.shape)}" for n, t in ts.items())
        raise ValueError(f"{owner}: per-sample parameters disagree on the batch size ({detail})")
    batch = sizes.pop() if sizes else None
    if device is None:
        device = next((t.device for t in ts.values() if t.ndim == 1), torch.device("cpu"))
    out = [t.to(device=device, dtype=torch.float64).reshape(-1, 1, 1) for t in ts.values()]
    return out, batch, torch.device(device)


def _grid(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets from the kernel centre (size // 2): x to the right and y upwards, each (1, size, size)."""
    r = torch.arange(size, dtype=torch.float64, device=device) - size // 2
    return r[None, None, :].expand(1, size, size), -r[None, :, None].expand(1, size, size)


def _finish(k: torch.Tensor, batch: int | None, dtype: torch.dtype) -> torch.Tensor:
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    if batch is None:
        k = k[:1]
    return k.unsqueeze(1).to(dtype)


def gaussian_kernel(
    sigma: float | torch.Tensor | Sequence[float | torch.Tensor],
    size: int | None = None,
    angle: float | torch.Tensor = 0.0,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Sampled Gaussian kernels :math:`k_{i,j} \propto \exp(-\tfrac{a^2}{2\sigma_x^2} - \tfrac{b^2}{2\sigma_y^2})`.

    :math:`(a, b)` are the pixel's offsets from the centre ``(size // 2, size // 2)`` along the axes of
    the ellipse, the x axis (horizontal) turned by ``angle`` degrees counter-clockwise. The kernel is
    truncated to ``size × size`` and normalised to sum 1.

    Args:
        sigma: standard deviation in pixels, > 0: a float or a (B,) tensor (isotropic), or a pair
            ``(sigma_y, sigma_x)`` of those (anisotropic: ``sigma_x`` along the rotated horizontal axis).
        size: kernel side; default ``2 * ceil(3 * max sigma) + 1``.
        angle: rotation of an anisotropic kernel in degrees, a float or a (B,) tensor.
        dtype: dtype of the result (computed in float64).
        device: device of the result; default that of the per-sample parameters, else CPU.

    Returns:
        (1, 1, size, size), or (B, 1, size, size) when a parameter is a (B,) tensor.

    Example:
        >>> import torch
        >>> from selfinv.physics.blur import gaussian_kernel
        >>> k = gaussian_kernel(torch.tensor([0.5, 2.0]))
        >>> k.shape, [round(float(s), 6) for s in k.sum(dim=(1, 2, 3))]
        (torch.Size([2, 1, 13, 13]), [1.0, 1.0])
    """
    owner = "gaussian_kernel"
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise ValueError(
                f"{owner}: sigma must be a number, a (B,) tensor or a pair (sigma_y, sigma_x), got {sigma!r}"
            )
        sigma_y, sigma_x = sigma
    else:
        sigma_y = sigma_x = sigma
    (sy, sx, ang), batch, device = _params(owner, device, sigma_y=sigma_y, sigma_x=sigma_x, angle=angle)
    if bool((sy <= 0).any()) or bool((sx <= 0).any()):
        raise ValueError(f"{owner}: sigma must be > 0, got {sigma!r}")
    if size is None:
        size = 2 * math.ceil(3 * float(torch.maximum(sy.max(), sx.max()))) + 1
    size = _size(size, owner)
    gx, gy = _grid(size, device)
    theta = torch.deg2rad(ang)
    a = gx * torch.cos(theta) + gy * torch.sin(theta)
    b = -gx * torch.sin(theta) + gy * torch.cos(theta)
    k = torch.exp(-0.5 * ((a / sx) ** 2 + (b / sy) ** 2))
    return _finish(k, batch, dtype)


def box_kernel(
    size: int | torch.Tensor,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Uniform ``size × size`` kernels (value :math:`1/\text{size}^2`).

    With per-sample sizes the kernels are ``max(size)`` wide and each box is placed so that its own
    centre pixel (``size // 2`` along each axis) sits at the kernel's centre.

    Args:
        size: box side in pixels, >= 1 (odd or even): an int or a (B,) integer tensor.
        dtype: dtype of the result.
        device: device of the result; default that of a (B,) ``size``, else CPU.

    Returns:
        (1, 1, size, size), or (B, 1, max(size), max(size)) for a (B,) ``size``.

    Example:
        >>> from selfinv.physics.blur import box_kernel
        >>> box_kernel(2, dtype=torch.float32)
        tensor([[[[0.2500, 0.2500],
                  [0.2500, 0.2500]]]])
    """
    owner = "box_kernel"
    if isinstance(size, torch.Tensor):
        (s,), batch, device = _params(owner, device, size=size)
        if bool((s != torch.round(s)).any()):
            raise ValueError(f"{owner}: size must hold integers, got {size}")
        if bool((s < 1).any()):
            raise ValueError(f"{owner}: size must be >= 1, got {size}")
    else:
        (s,), batch, device = _params(owner, device, size=_size(size, owner))
    n = int(s.max())
    idx = torch.arange(n, dtype=torch.float64, device=device) - n // 2 + torch.floor(s / 2)  # (B|1, 1, n)
    inside = ((idx >= 0) & (idx < s)).to(torch.float64)
    k = inside.transpose(-2, -1) * inside  # (B|1, n, n)
    return _finish(k, batch, dtype)


def motion_kernel(
    length: float | torch.Tensor,
    angle: float | torch.Tensor,
    size: int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Linear motion blur: an anti-aliased line segment through the kernel centre.

    The segment has its ends at :math:`\pm\tfrac{L-1}{2}(\cos\theta, \sin\theta)` from the centre (x to
    the right, y upwards), so that it joins the centres of its end pixels: a horizontal blur of integer
    length :math:`L` covers :math:`L` pixels, as MATLAB's ``fspecial("motion", L, theta)``; :math:`L \le 1`
    is the identity. Pixel weights are :math:`\max(0, 1 - d)` with :math:`d` the distance from the pixel
    centre to the segment, then normalised to sum 1.

    Args:
        length: length :math:`L \ge 0` in pixels, a float or a (B,) tensor.
        angle: direction :math:`\theta` in degrees, counter-clockwise from horizontal; a float or a (B,) tensor.
        size: kernel side; default ``2 * ceil((max(L, 1) - 1) / 2) + 1``, the smallest odd size holding
            every segment.
        dtype: dtype of the result (computed in float64).
        device: device of the result; default that of the per-sample parameters, else CPU.

    Returns:
        (1, 1, size, size), or (B, 1, size, size) when a parameter is a (B,) tensor.

    Example:
        >>> from selfinv.physics.blur import motion_kernel
        >>> motion_kernel(3, 0.0, dtype=torch.float32)
        tensor([[[[0.0000, 0.0000, 0.0000],
                  [0.3333, 0.3333, 0.3333],
                  [0.0000, 0.0000, 0.0000]]]])
    """
    owner = "motion_kernel"
    (ln, ang), batch, device = _params(owner, device, length=length, angle=angle)
    if bool((ln < 0).any()):
        raise ValueError(f"{owner}: length must be >= 0, got {length!r}")
    half = (ln.clamp_min(1.0) - 1.0) / 2
    if size is None:
        size = 2 * math.ceil(float(half.max()) - 1e-9) + 1
    size = _size(size, owner)
    gx, gy = _grid(size, device)
    theta = torch.deg2rad(ang)
    ux, uy = torch.cos(theta), torch.sin(theta)
    t = (gx * ux + gy * uy).clamp(-half, half)  # position of the nearest point along the segment
    dist = torch.hypot(gx - t * ux, gy - t * uy)
    k = (1.0 - dist).clamp_min(0.0)
    return _finish(k, batch, dtype)


#: fixed blur kernels by config name (``kernel: {kind: gaussian, sigma: 1.5}``)
KERNELS: dict[str, Callable[..., torch.Tensor]] = {"gaussian": gaussian_kernel, "box": box_kernel, "motion": motion_kernel}


# ---------------------------------------------------------------------- random family
class BlurKernelSampler:
    r"""A random family of blur operators: one kernel per sample, drawn from an explicit generator.

    ``kind="gaussian"``: isotropic Gaussians with :math:`\sigma \sim U(\text{sigma\_range})`.
    ``kind="motion"``: motion blurs with length :math:`L \sim U(\text{length\_range})` and angle
    :math:`\theta \sim U[0, 180)` degrees. Parameters are drawn as float64 with
    :func:`selfinv._random.rand` (Gaussian: one (B,) draw; motion: one (2, B) draw, lengths then angles),
    so a seed gives the same kernels on every device. Kernels are ``size × size`` and sum to 1.

    Args:
        kind: ``"gaussian"`` or ``"motion"``.
        size: kernel side in pixels (Gaussians and motion segments are truncated to it); default the
            untruncated size for the top of the range: ``2 * ceil(3 * sigma_high) + 1`` for Gaussians,
            ``2 * ceil((max(length_high, 1) - 1) / 2) + 1`` for motion.
        sigma_range: (low, high) with 0 < low <= high, for ``"gaussian"``.
        length_range: (low, high) with 0 <= low <= high, for ``"motion"``.
        dtype: dtype of the kernels.
        device: device of the kernels.

    Example:
        >>> import torch
        >>> from selfinv.physics.blur import BlurKernelSampler
        >>> sampler = BlurKernelSampler("motion", size=9)
        >>> op = sampler(4, generator=torch.Generator().manual_seed(0))
        >>> op.kernel.shape, op.batch_size
        (torch.Size([4, 1, 9, 9]), 4)
    """

    def __init__(
        self,
        kind: str = "gaussian",
        size: int | None = None,
        sigma_range: tuple[float, float] = (0.5, 3.0),
        length_range: tuple[float, float] = (3.0, 10.0),
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        owner = "BlurKernelSampler"
        if kind not in ("gaussian", "motion"):
            raise ValueError(f"{owner}: kind must be 'gaussian' or 'motion', got {kind!r}")
        self.kind = kind
        self.sigma_range = self._range(sigma_range, "sigma_range", positive=True)
        self.length_range = self._range(length_range, "length_range", positive=False)
        if size is None:
            if kind == "gaussian":
                size = 2 * math.ceil(3 * self.sigma_range[1]) + 1
            else:
                size = 2 * math.ceil((max(self.length_range[1], 1.0) - 1) / 2 - 1e-9) + 1
        self.size = _size(size, owner)
        self.dtype = dtype
        self.device = torch.device(device)

    @staticmethod
    def _range(r, name: str, positive: bool) -> tuple[float, float]:
        owner = "BlurKernelSampler"
        try:
            lo, hi = (float(v) for v in r)
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: {name} must be a pair (low, high) of numbers, got {r!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (lo <= 0 if positive else lo < 0):
            rel = "0 < low <= high" if positive else "0 <= low <= high"
            raise ValueError(f"{owner}: {name} must satisfy {rel}, got {r!r}")
        return lo, hi

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``batch_size`` kernels, one per sample: (B, 1, size, size)."""
        b = _size(batch_size, "BlurKernelSampler", "batch_size")
        if self.kind == "gaussian":
            u = _random.rand((b,), generator=generator, dtype=torch.float64, device=self.device)
            lo, hi = self.sigma_range
            k = gaussian_kernel(lo + (hi - lo) * u, size=self.size, device=self.device)
        else:
            u = _random.rand((2, b), generator=generator, dtype=torch.float64, device=self.device)
            lo, hi = self.length_range
            k = motion_kernel(lo + (hi - lo) * u[0], 180.0 * u[1], size=self.size, device=self.device)
        return k.to(self.dtype)

    def __call__(
        self, batch_size: int, generator: torch.Generator | None = None, noise: NoiseModel | None = None
    ) -> Blur:
        """A :class:`Blur` whose kernel differs per sample (see :meth:`sample`)."""
        return Blur(self.sample(batch_size, generator), noise=noise)

    def __repr__(self) -> str:
        rng = f"sigma_range={self.sigma_range}" if self.kind == "gaussian" else f"length_range={self.length_range}"
        return f"BlurKernelSampler(kind={self.kind!r}, size={self.size}, {rng})"
