r"""A blind-spot network (Laine, Karras, Lehtinen & Aila, NeurIPS 2019): output pixel i never sees input pixel i.

Construction. A *branch* is a small U-Net whose every layer only looks **up**: a :math:`k\times k` convolution
is applied to the feature map shifted down by :math:`\lfloor k/2\rfloor` rows, so output row :math:`r` depends
on input rows :math:`r - 2\lfloor k/2\rfloor, \dots, r`; before each 2×2 max-pooling the map is shifted down
by one row, so a pooled row depends on rows :math:`\leq 2R` and its nearest-neighbour upsampling keeps the
"rows :math:`\leq r`" property. At the end of the branch the map is shifted down by one more pixel: output
row :math:`r` now depends on rows **strictly above** :math:`r` only (a half-plane). The branch runs on the
input rotated by 0°, 90°, 180° and 270° (shared weights), each output is rotated back (the four half-planes:
above, left, below, right, whose union is every pixel but the centre), and 1×1 convolutions combine the four
at each pixel. So :math:`\partial f_{c,i} / \partial y_{c',i} = 0` exactly, for all channels :math:`c, c'`.

Any image size: the input is zero-padded at the bottom and right to a multiple of :math:`2^{\text{depth}}` and
the output cropped back (zero padding adds constants, never a copy of a pixel; reflection padding would leak
pixel values into the downward-looking branch). No normalisation layer is used: batch statistics computed
in training mode would make every output depend (weakly) on every input pixel, including its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfinv._checks import check_int, check_ints
from selfinv.models.unet import check_images

__all__ = ["BlindSpotNet"]


def _shift_down(x: torch.Tensor, rows: int = 1) -> torch.Tensor:
    """Shift a feature map down by ``rows`` (zeros enter at the top, the last rows leave)."""
    return F.pad(x, (0, 0, rows, 0))[..., : x.shape[-2], :]


class _UpConv(nn.Module):
    """A k×k convolution whose output row r depends on input rows r - 2⌊k/2⌋ ... r only (same size out)."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__()
        self.p = k // 2
        self.conv = nn.Conv2d(cin, cout, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.p, self.p, 2 * self.p, 0)))


class BlindSpotNet(nn.Module):
    r"""Blind-spot U-Net with four rotated half-plane branches (Laine et al. 2019), for :class:`~selfinv.losses.blindspot.BlindSpot`.

    Args:
        in_channels: channels of y.
        out_channels: channels of the output (default: ``in_channels``).
        width: feature channels of every layer of a branch (Laine et al. use 48); the head uses
            :math:`4\,\text{width}` then :math:`\text{width}`.
        depth: number of 2×2 down-samplings of the branch U-Net (0 gives a plain stack of convolutions).
        kernel_size: odd convolution size :math:`k \geq 3`.
        predict_variance: also predict a positive per-pixel, per-channel prior variance :math:`\sigma_p^2`
            (a diagonal version of the paper's covariance), for the Gaussian posterior-mean step; ``forward``
            still returns the prior mean :math:`\mu` and :meth:`mean_and_variance` returns both.

    ``blind_spot = True`` declares the property that the blind-spot loss checks.

    Example:
        >>> import torch
        >>> from selfinv.models.blindspot import BlindSpotNet
        >>> net = BlindSpotNet(1, width=4, depth=1)
        >>> y = torch.rand(1, 1, 5, 6, requires_grad=True)
        >>> net(y).shape
        torch.Size([1, 1, 5, 6])
        >>> g, = torch.autograd.grad(net(y)[0, 0, 2, 3], y)
        >>> float(g[0, 0, 2, 3]), bool(g[0, 0, 1, 3] != 0)      # blind to itself, sees its neighbour
        (0.0, True)
    """

    blind_spot = True

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        width: int = 32,
        depth: int = 2,
        kernel_size: int = 3,
        predict_variance: bool = False,
        min_variance: float = 1e-6,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        check_ints("BlindSpotNet", in_channels=in_channels, out_channels=out_channels, width=width)
        check_int(depth, "depth", "BlindSpotNet", low=0)
        if not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"BlindSpotNet: kernel_size must be an odd integer >= 3, got {kernel_size!r}")
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.predict_variance, self.min_variance = bool(predict_variance), float(min_variance)
        k, w = kernel_size, width

        def act() -> nn.Module:
            return nn.LeakyReLU(0.1)

        self.enc0 = nn.Sequential(_UpConv(in_channels, w, k), act(), _UpConv(w, w, k), act())
        self.down = nn.ModuleList([nn.Sequential(_UpConv(w, w, k), act()) for _ in range(depth)])
        self.up = nn.ModuleList(
            [nn.Sequential(_UpConv(2 * w, w, k), act(), _UpConv(w, w, k), act()) for _ in range(depth)]
        )
        n_out = out_channels * (2 if predict_variance else 1)
        self.head = nn.Sequential(
            nn.Conv2d(4 * w, 4 * w, 1), act(), nn.Conv2d(4 * w, w, 1), act(), nn.Conv2d(w, n_out, 1)
        )

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        """The up-looking U-Net; its output row r depends on input rows < r only."""
        h = self.enc0(x)
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(F.max_pool2d(_shift_down(h), 2))
        for up in self.up:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = up(torch.cat([h, skips.pop()], dim=1))
        return _shift_down(h)

    def _raw(self, y: torch.Tensor) -> torch.Tensor:
        check_images(y, self.in_channels, "BlindSpotNet")
        H, W = y.shape[-2:]
        s = 2**self.depth
        x = F.pad(y, (0, -W % s, 0, -H % s))  # zeros: constants, never a copy of a pixel
        rotated = [torch.rot90(x, r, dims=(2, 3)) for r in range(4)]
        if x.shape[-2] == x.shape[-1]:  # square: the four rotations share one batched pass
            feats = list(self._branch(torch.cat(rotated, dim=0)).chunk(4, dim=0))
        else:
            feats = [self._branch(t) for t in rotated]
        feats = [torch.rot90(f, -r, dims=(2, 3)) for r, f in enumerate(feats)]
        return self.head(torch.cat(feats, dim=1))[..., :H, :W]

    def mean_and_variance(self, y: torch.Tensor, physics=None) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The prior mean :math:`\mu` and variance :math:`\sigma_p^2 > 0` (needs ``predict_variance=True``)."""
        if not self.predict_variance:
            raise ValueError("BlindSpotNet: mean_and_variance needs predict_variance=True")
        mu, v = self._raw(y).split(self.out_channels, dim=1)
        return mu, F.softplus(v) + self.min_variance

    def forward(
        self, y: torch.Tensor, physics=None, with_variance: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The blind-spot estimate (the prior mean μ); ``physics`` is accepted for the model signature and ignored.

        ``with_variance=True`` returns :meth:`mean_and_variance` instead: the call the blind-spot loss makes
        through a ``DistributedDataParallel`` wrapper, which only forwards ``forward``.
        """
        if with_variance:
            return self.mean_and_variance(y, physics)
        out = self._raw(y)
        return out[:, : self.out_channels] if self.predict_variance else out

    def extra_repr(self) -> str:
        return f"blind_spot=True, depth={self.depth}, predict_variance={self.predict_variance}"
