r"""Down-scaling about a centre, for scale-equivariant imaging (:class:`Scale`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from selfinv.transforms.base import PARAM_DTYPE, Transform, _as_real, _uniform


class Scale(Transform):
    r"""Down-scaling (zoom out) about a centre, as in scale-equivariant imaging for deblurring and super-resolution.

    Scanvic, Davies, Abry & Tachella, "Self-supervised learning for image super-resolution and
    deblurring" (2023, arXiv:2312.11232) use the approximate scale invariance of natural images: for
    a factor :math:`s \le 1` and a centre :math:`c`,

    .. math:: (T_g x)(p) = (G_{\sigma(s)} x)\big(c + (p - c)/s\big),

    the image shrinks by :math:`s` about :math:`c` and the surrounding area is filled by the boundary
    extension of :math:`x` (``"periodic"`` or whole-sample symmetric ``"reflect"``). Values between
    pixels are bilinear (separable, per sample). With ``antialias`` the image is first low-pass filtered
    by a Gaussian of standard deviation :math:`\sigma(s) = (1/s - 1)/2` pixels (the rule of
    ``skimage.transform.rescale``), applied in Fourier on the periodic (or symmetric) extension.

    Not invertible: detail is lost. ``inverse`` zooms back in by :math:`1/s` (bilinear, no deblurring),
    so ``inverse(apply(x)) ≈ x`` only for smooth images, away from the borders. ``adjoint`` is the
    exact transpose of the discretised map (autograd). A factor of 1 is the identity.

    Args:
        factors: the scale factors, drawn uniformly per sample; each in (0, 1]. Default (0.5, 0.75),
            the factors of Scanvic et al. (and deepinv's default).
        padding: ``"periodic"`` or ``"reflect"``.
        antialias: low-pass filter before down-sampling.
        random_center: draw the centre uniformly in the image per sample (as Scanvic et al.); if False
            the centre is the image centre and ``elements`` lists the factors.

    Parameters: (B, 3) = (factor, cy, cx) with the centre :math:`c = (c_y (H-1), c_x (W-1))`, i.e. the
    centre as fractions in [0, 1] (0.5 = image centre).

    Example:
        >>> import torch
        >>> from selfinv.transforms import Scale
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y, params = Scale()(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape == x.shape, params.shape
        (True, torch.Size([2, 3]))
        >>> torch.equal(Scale().apply(x, torch.tensor([[1.0, 0.5, 0.5]] * 2)), x)   # factor 1: identity
        True
    """

    n_params = 3

    def __init__(
        self,
        factors: Sequence[float] = (0.5, 0.75),
        padding: str = "periodic",
        antialias: bool = True,
        random_center: bool = True,
    ) -> None:
        try:
            fs = tuple(float(f) for f in factors)
        except (TypeError, ValueError):
            raise ValueError(f"Scale: factors must be a sequence of numbers in (0, 1], got {factors!r}") from None
        if not fs or not all(0 < f <= 1 for f in fs):
            raise ValueError(f"Scale: factors must be a non-empty sequence of numbers in (0, 1], got {factors!r}")
        if padding not in ("periodic", "reflect"):
            raise ValueError(f"Scale: padding must be 'periodic' or 'reflect', got {padding!r}")
        self.factors, self.padding = fs, padding
        self.antialias, self.random_center = bool(antialias), bool(random_center)

    def _sample(self, batch_size, generator, img_size):
        u = _uniform((batch_size, 3), generator)
        fs = torch.tensor(self.factors, dtype=PARAM_DTYPE, device=u.device)
        s = fs[(u[:, 0] * len(fs)).floor().long().clamp_max(len(fs) - 1)]
        centre = u[:, 1:] if self.random_center else torch.full_like(u[:, 1:], 0.5)
        return torch.cat([s[:, None], centre], dim=1)

    def _check_params(self, p, x):
        if not bool((p[:, 0] > 0).all()):
            raise ValueError("Scale: factors must be > 0")

    def _boundary(self, i: torch.Tensor, n: int) -> torch.Tensor:
        if self.padding == "periodic" or n == 1:
            return i % n
        period = 2 * n - 2
        r = i % period
        return torch.where(r >= n, period - r, r)

    def _interp(self, x: torch.Tensor, q: torch.Tensor, dim: int) -> torch.Tensor:
        """Linear interpolation of x along dim (-2 or -1) at per-sample positions q (B, L)."""
        n = x.shape[dim]
        i0 = q.floor()
        t = (q - i0).to(x.dtype)
        i0 = i0.long()
        a, b = self._boundary(i0, n), self._boundary(i0 + 1, n)
        shape = (x.shape[0], 1, -1, 1) if dim == -2 else (x.shape[0], 1, 1, -1)
        full = list(x.shape)
        full[dim] = q.shape[1]
        xa = x.gather(dim, a.reshape(shape).expand(full))
        xb = x.gather(dim, b.reshape(shape).expand(full))
        t = t.reshape(shape)
        return xa * (1 - t) + xb * t

    def _blur(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Gaussian low-pass with per-sample sigma, in Fourier on the periodic or symmetric extension."""
        h, w = x.shape[-2:]
        if self.padding == "reflect":
            if h > 2:
                x = torch.cat([x, x.flip(-2)[..., 1 : h - 1, :]], dim=-2)
            if w > 2:
                x = torch.cat([x, x.flip(-1)[..., :, 1 : w - 1]], dim=-1)
        fy = torch.fft.fftfreq(x.shape[-2], dtype=x.dtype, device=x.device)[:, None]
        fx = torch.fft.rfftfreq(x.shape[-1], dtype=x.dtype, device=x.device)[None, :]
        s2 = sigma.to(x.dtype).reshape(-1, 1, 1, 1) ** 2
        gain = torch.exp(-2 * math.pi**2 * s2 * (fy**2 + fx**2))
        out = torch.fft.irfft2(torch.fft.rfft2(x) * gain, s=tuple(x.shape[-2:]))
        return out[..., :h, :w]

    def _zoom(self, x, p, inverse: bool):
        h, w = x.shape[-2:]
        s = p[:, 0:1]
        cy, cx = p[:, 1:2] * (h - 1), p[:, 2:3] * (w - 1)
        rows = torch.arange(h, dtype=PARAM_DTYPE, device=x.device)[None]
        cols = torch.arange(w, dtype=PARAM_DTYPE, device=x.device)[None]
        factor = s if inverse else 1 / s
        qy, qx = cy + (rows - cy) * factor, cx + (cols - cx) * factor

        def real_map(r):
            if self.antialias and not inverse and bool((s < 1).any()):
                r = self._blur(r, ((1 / s[:, 0] - 1) / 2).clamp_min(0))
            return self._interp(self._interp(r, qy, -2), qx, -1)

        return _as_real(real_map, x)

    def _apply(self, x, p):
        return self._zoom(x, p, inverse=False)

    def _inverse(self, x, p):
        return self._zoom(x, p, inverse=True)

    def _elements(self, size):
        if self.random_center:
            return super()._elements(size)
        return torch.tensor([[f, 0.5, 0.5] for f in self.factors], dtype=PARAM_DTYPE)

    def __repr__(self) -> str:
        return f"Scale(factors={self.factors}, padding={self.padding!r})"
