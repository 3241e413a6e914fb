r"""Demosaicing: the Bayer colour-filter array of a single-sensor camera."""

from __future__ import annotations

import torch

from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator

#: the 2x2 Bayer tiles, read row-major from the top-left pixel
PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


class Demosaicing(LinearOperator):
    r"""Bayer mosaicing :math:`y_{ij} = x_{c(i,j),\,i,\,j}`: one colour per pixel, from an RGB image.

    :math:`c(i, j)` is the colour of the 2x2 ``pattern`` tile at :math:`(i \bmod 2, j \bmod 2)`
    (``"RGGB"``: R at the top-left, G to its right and below it, B on the diagonal), repeated over the
    image and cropped, so any :math:`H, W \ge 1` works. With the colour-filter mask
    :math:`M \in \{0, 1\}^{3 \times H \times W}` (:meth:`cfa_mask`, exactly one 1 per pixel),
    :math:`A x = \sum_c M_c \odot x_c` and :math:`A^H y = M \odot y` (each raw value back in its own
    channel, zeros elsewhere). :math:`A A^H = I`, so :math:`A^\dagger = A^H` exactly and
    :math:`A^H A = \operatorname{diag}(M)`.

    Args:
        pattern: the Bayer tile, one of ``"RGGB"``, ``"BGGR"``, ``"GRBG"``, ``"GBRG"`` (case-insensitive).
        noise: noise model on the raw mosaic, or ``None``.

    x is a real RGB image (B, 3, H, W), channels in the order R, G, B; y is the raw mosaic (B, 1, H, W).

    Example:
        >>> import torch
        >>> from selfinv.physics.demosaicing import Demosaicing
        >>> x = torch.arange(3.0).reshape(1, 3, 1, 1).expand(1, 3, 2, 2)    # R = 0, G = 1, B = 2 everywhere
        >>> Demosaicing("RGGB").A(x)[0, 0]
        tensor([[0., 1.],
                [1., 2.]])
    """

    exact_dagger = True
    crop_alignment = 2  # the 2 × 2 colour-filter pattern

    def __init__(self, pattern: str = "RGGB", noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)
        if not isinstance(pattern, str) or pattern.upper() not in PATTERNS:
            raise ValueError(f"Demosaicing: pattern must be one of {', '.join(PATTERNS)}, got {pattern!r}")
        self.pattern = pattern.upper()

    def cfa_mask(
        self,
        h: int,
        w: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """The (1, 3, h, w) colour-filter mask: 1 in the channel each pixel measures, 0 in the other two."""
        if h < 1 or w < 1:
            raise ValueError(f"Demosaicing: the image must be at least 1 x 1 pixels, got {h} x {w}")
        tile = torch.tensor([_CHANNEL[c] for c in self.pattern], device=device).reshape(2, 2)
        rows = torch.arange(h, device=device) % 2
        cols = torch.arange(w, device=device) % 2
        colour = tile[rows[:, None], cols[None, :]]  # (h, w) channel index of every pixel
        return (colour[None] == torch.arange(3, device=device)[:, None, None]).to(dtype)[None]

    def _mask(self, like: torch.Tensor) -> torch.Tensor:
        return self.cfa_mask(like.shape[-2], like.shape[-1], device=like.device, dtype=like.dtype)

    def _A(self, x):
        return (self._mask(x) * x).sum(1, keepdim=True)

    def _A_adjoint(self, y):
        return self._mask(y) * y

    def _A_dagger(self, y, tol, max_iter):
        return self._A_adjoint(y)

    def _normal(self, x):
        return self._mask(x) * x

    def _check(self, t: torch.Tensor, name: str, channels: int) -> None:
        if t.ndim != 4 or t.shape[1] != channels or t.shape[2] < 1 or t.shape[3] < 1:
            raise self._shape_error(name, t, f"(B, {channels}, H, W) with H, W >= 1")

    def _check_x(self, x):
        self._check(x, "x", 3)

    def _check_y(self, y):
        self._check(y, "y", 1)

    def extra_repr(self) -> str:
        return f"pattern={self.pattern!r}"
