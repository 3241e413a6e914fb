r"""Rotations about the image centre: exact multiples of 90° and bilinear arbitrary angles (:class:`Rotate`)."""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from selfinv.transforms.base import PARAM_DTYPE, Transform, _as_real, _permute, _uniform


class Rotate(Transform):
    r"""Rotations about the image centre, counter-clockwise as displayed (``torch.rot90`` for 90°).

    Two families:

    * ``Rotate(n)``: the cyclic group of the n rotations by multiples of :math:`360°/n`, drawn
      uniformly. For n ∈ {1, 2, 4} these are exact pixel permutations (``exact=True``): 180° works on
      any image, but **90° and 270° need square images** (they swap H and W) and raise ``ValueError``
      otherwise — use ``Rotate(n=2)`` on non-square images. Other n interpolate as below.
    * ``Rotate(degrees=(lo, hi))``: angles uniform in [lo, hi), by bilinear interpolation
      (``grid_sample``) with zero padding outside the image. Not exact: corners are lost and the image
      is smoothed, so ``inverse`` (rotation by the opposite angle) is approximate; ``adjoint`` is the
      exact transpose of the interpolation.

    The output pixel at offset :math:`(u, v)` from the centre :math:`((W-1)/2, (H-1)/2)` (u to the right,
    v down) takes the input value at :math:`(u\cos\theta - v\sin\theta,\ u\sin\theta + v\cos\theta)`.
    Rotation invariance is the group used for CT and MRI in EI (Chen, Tachella & Davies, ICCV 2021;
    CVPR 2022).

    Args:
        n: number of rotations of the cyclic group (default 4 when ``degrees`` is not given).
        degrees: (lo, hi) range of a continuous family, exclusive with ``n``.

    Parameters: (B, 1) angles in degrees.

    Example:
        >>> import torch
        >>> from selfinv.transforms import Rotate
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> torch.equal(Rotate(n=4).apply(x, torch.tensor([[90.0]])), torch.rot90(x, 1, dims=(-2, -1)))
        True
        >>> Rotate(n=4).elements(8).flatten().tolist()
        [0.0, 90.0, 180.0, 270.0]
    """

    def __init__(self, n: int | None = None, degrees: tuple[float, float] | None = None) -> None:
        if degrees is not None:
            if n is not None:
                raise ValueError("Rotate: give either n (a cyclic group) or degrees (a continuous range), not both")
            try:
                lo, hi = (float(d) for d in degrees)
            except (TypeError, ValueError):
                raise ValueError(f"Rotate: degrees must be a pair (lo, hi), got {degrees!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"Rotate: degrees must satisfy lo <= hi (finite), got {degrees!r}")
            self.n, self.degrees = None, (lo, hi)
        else:
            n = 4 if n is None else n
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
                raise ValueError(f"Rotate: n must be an int >= 1, got {n!r}")
            self.n, self.degrees = int(n), None
        self.exact = self.n in (1, 2, 4)

    def _sample(self, batch_size, generator, img_size):
        u = _uniform((batch_size, 1), generator)
        if self.degrees is not None:
            lo, hi = self.degrees
            return lo + (hi - lo) * u
        return (u * self.n).floor() * (360.0 / self.n)

    def _check_params(self, p, x):
        if not self.exact:
            return
        k = p[:, 0] / 90.0
        if not bool((k == k.round()).all()):
            raise ValueError(f"Rotate(n={self.n}): exact rotations need multiples of 90 degrees, got {p[:, 0].tolist()}")
        h, w = x.shape[-2:]
        if h != w and bool((k.round().long() % 2 == 1).any()):
            raise ValueError(
                f"Rotate: a 90 or 270 degree rotation swaps H and W, so it needs square images, got {h} x {w}; "
                "use Rotate(n=2) (180 degrees) on non-square images"
            )

    # exact path: index maps of torch.rot90
    def _index(self, p, h, w):
        base = torch.arange(h * w, device=p.device).reshape(h, w)
        ks = (0, 1, 2, 3) if h == w else (0, 2)
        maps = torch.zeros(4, h * w, dtype=torch.long, device=p.device)
        for k in ks:
            maps[k] = torch.rot90(base, k, dims=(0, 1)).reshape(-1)
        return maps[(p[:, 0] / 90.0).round().long() % 4]

    def _rotate(self, x, angle):
        """Bilinear rotation by per-sample angles (degrees), zero padding."""
        b, _, h, w = x.shape
        theta = torch.deg2rad(angle).to(x.real.dtype if x.is_complex() else x.dtype)[:, None, None]
        u = (torch.arange(w, device=x.device, dtype=theta.dtype) - (w - 1) / 2)[None, None, :]
        v = (torch.arange(h, device=x.device, dtype=theta.dtype) - (h - 1) / 2)[None, :, None]
        cos, sin = torch.cos(theta), torch.sin(theta)
        u_in = u * cos - v * sin
        v_in = u * sin + v * cos
        grid = torch.stack([2 * u_in / w, 2 * v_in / h], dim=-1)  # align_corners=False normalisation
        return _as_real(lambda r: F.grid_sample(r, grid, mode="bilinear", padding_mode="zeros", align_corners=False), x)

    def _apply(self, x, p):
        if self.exact:
            return _permute(x, self._index(p, *x.shape[-2:]))
        return self._rotate(x, p[:, 0])

    def _inverse(self, x, p):
        if self.exact:
            return _permute(x, self._index(-p, *x.shape[-2:]))
        return self._rotate(x, -p[:, 0])

    def _elements(self, size):
        if self.degrees is not None:
            return super()._elements(size)
        return (torch.arange(self.n, dtype=PARAM_DTYPE) * (360.0 / self.n))[:, None]

    def __repr__(self) -> str:
        return f"Rotate(degrees={self.degrees})" if self.degrees is not None else f"Rotate(n={self.n})"
