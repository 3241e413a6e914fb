r"""A 3-D U-Net for volumes (Çiçek, Abdulkadir, Lienkamp, Brox & Ronneberger, MICCAI 2016).

The 2-D :class:`~selfinv.models.unet.UNet` with every operation one dimension up: level i has two 3×3×3
convolutions + ReLU on :math:`\text{width}\cdot 2^i` channels, the encoder goes down by 2×2×2 max-pooling (or a
strided 2×2×2 convolution), the decoder up by a 2×2×2 transposed convolution (or trilinear ×2 + a 1×1×1
convolution) and concatenates the encoder features of the same level. Volumes are (B, C, D, H, W) tensors
(z-stacks, tomograms); as in 2-D they are padded (reflection by default) to a multiple of :math:`2^\text{depth}`
on each of D, H, W and the output cropped back, so any size works **as long as every axis holds at least**
:math:`2^\text{depth}` voxels (a thinner volume would be mostly padding at the deepest level: a ValueError says
so, and which depth would fit). ``bias=False`` gives a positively homogeneous network, as in 2-D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfinv._checks import check_either, check_int, check_ints, check_one_of
from selfinv.models.unet import BiasFreeBatchNorm2d

__all__ = ["UNet3d", "check_volumes", "crop3d", "pad3d_to_multiple"]

_PAD_MODES = ("reflect", "replicate", "zeros")


def pad3d_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int, int, int, int, int]]:
    """Pad the last three axes of x symmetrically up to a multiple of ``multiple``; returns (padded, pad).

    ``pad`` is F.pad's (left, right, top, bottom, front, back); reflection falls back to replication where a
    pad is not smaller than its axis.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 1, 3, 5, 8)
        >>> xp, pad = pad3d_to_multiple(x, 4)
        >>> tuple(xp.shape), torch.equal(crop3d(xp, pad), x)
        ((1, 1, 4, 8, 8), True)
    """
    check_one_of(mode, _PAD_MODES, "mode", "pad3d_to_multiple")
    sizes = x.shape[-3:]
    extra = [(-s) % multiple for s in sizes]  # (d, h, w)
    pad: tuple[int, ...] = ()
    for e in reversed(extra):  # F.pad lists the last axis first
        pad += (e // 2, e - e // 2)
    if not any(extra):
        return x, pad  # type: ignore[return-value]
    if mode == "reflect" and any(max(pad[2 * i : 2 * i + 2]) >= s for i, s in enumerate(reversed(sizes))):
        mode = "replicate"
    out = F.pad(x, pad) if mode == "zeros" else F.pad(x, pad, mode=mode)
    return out, pad  # type: ignore[return-value]


def crop3d(x: torch.Tensor, pad: tuple[int, int, int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad3d_to_multiple`."""
    left, right, top, bottom, front, back = pad
    d, h, w = x.shape[-3:]
    return x[..., front : d - back, top : h - bottom, left : w - right]


def check_volumes(x: object, channels: int, owner: str) -> None:
    """Raise a one-line ValueError unless x is a real volume batch (B, ``channels``, D, H, W)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner}: expects volumes of shape (B, C, D, H, W), got {got}")
    if x.is_complex():
        raise ValueError(f"{owner}: takes real volumes, got a complex tensor")
    if x.shape[1] != channels:
        raise ValueError(f"{owner}: expects {channels} input channels, got {x.shape[1]}")


def _double_conv(cin: int, cout: int, bias: bool, bn: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in ((cin, cout), (cout, cout)):
        layers.append(nn.Conv3d(a, b, 3, padding=1, bias=bias and not bn))
        if bn:
            layers.append(nn.BatchNorm3d(b) if bias else BiasFreeBatchNorm2d(b))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet3d(nn.Module):
    r"""3-D U-Net (Çiçek et al. 2016) volume-to-volume backbone: the 2-D :class:`~selfinv.models.UNet`, in 3-D.

    Level i (0..depth) has :math:`\text{width}\cdot 2^i` channels (about 0.7 M parameters for depth 2,
    width 16, 1 → 1 channel).

    Args:
        in_channels, out_channels: volume channels in and out.
        depth: number of 2×2×2 down-samplings; D, H and W must each be at least :math:`2^\text{depth}`.
        width: channels of the first level.
        bias: ``False`` removes every additive constant (positively homogeneous network).
        residual: add the input to the output (only when ``in_channels == out_channels``).
        batch_norm: batch normalisation after every convolution (bias-free when ``bias=False``).
        down: ``"maxpool"`` or ``"conv"`` (2×2×2 convolution, stride 2).
        up: ``"transpose"`` (2×2×2 transposed convolution) or ``"trilinear"`` (trilinear ×2 + 1×1×1 convolution).
        padding: ``"reflect"``, ``"replicate"`` or ``"zeros"``: how volumes are padded to the multiple.

    ``forward(x, physics=None)`` maps (B, in_channels, D, H, W) to (B, out_channels, D, H, W); ``physics`` is
    ignored, so the backbone is itself a denoiser ``model(y, physics)`` (:class:`~selfinv.physics.Denoising`
    accepts volumes). ``spatial_dims = 3`` tells the data pipeline to keep stacks whole (2-D backbones see
    each slice as an image).

    Example:
        >>> import torch
        >>> from selfinv.models.unet3d import UNet3d
        >>> net = UNet3d(1, 1, depth=1, width=2, bias=False).eval()
        >>> y = torch.rand(2, 1, 5, 6, 7)
        >>> net(y).shape
        torch.Size([2, 1, 5, 6, 7])
        >>> torch.allclose(net(3 * y), 3 * net(y), atol=1e-5)     # bias-free: positively homogeneous
        True
    """

    spatial_dims = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 2,
        width: int = 16,
        bias: bool = True,
        residual: bool = True,
        batch_norm: bool = False,
        down: str = "maxpool",
        up: str = "transpose",
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        check_ints("UNet3d", in_channels=in_channels, out_channels=out_channels, width=width)
        check_int(depth, "depth", "UNet3d", low=0)
        check_either(down, ("maxpool", "conv"), "down", "UNet3d")
        check_either(up, ("transpose", "trilinear"), "up", "UNet3d")
        check_one_of(padding, _PAD_MODES, "padding", "UNet3d")
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.residual = bool(residual) and in_channels == out_channels
        self.padding, self.bias = padding, bool(bias)
        bias, bn = bool(bias), bool(batch_norm)
        w = [width * 2**i for i in range(depth + 1)]
        self.inc = _double_conv(in_channels, w[0], bias, bn)
        self.downs, self.encoders = nn.ModuleList(), nn.ModuleList()
        for i in range(1, depth + 1):
            self.downs.append(
                nn.MaxPool3d(2) if down == "maxpool" else nn.Conv3d(w[i - 1], w[i - 1], 2, stride=2, bias=bias)
            )
            self.encoders.append(_double_conv(w[i - 1], w[i], bias, bn))
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for i in range(depth, 0, -1):
            if up == "transpose":
                self.ups.append(nn.ConvTranspose3d(w[i], w[i - 1], 2, stride=2, bias=bias))
            else:
                self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
                                              nn.Conv3d(w[i], w[i - 1], 1, bias=bias)))
            self.decoders.append(_double_conv(2 * w[i - 1], w[i - 1], bias, bn))
        self.outc = nn.Conv3d(w[0], out_channels, 1, bias=bias)

    def check_size(self, size: tuple[int, ...]) -> None:
        """Raise a one-line ValueError when a volume of spatial ``size`` (D, H, W) is too small for the depth."""
        need = 2**self.depth
        if min(size) < need:
            fits = max(0, min(size).bit_length() - 1)
            raise ValueError(
                f"UNet3d: a {'×'.join(str(int(s)) for s in size)} volume is too small for depth {self.depth} "
                f"(D, H and W must each be at least 2^{self.depth} = {need}); use depth <= {fits}, larger "
                "patches, or a 2-D backbone slice by slice"
            )

    def forward(self, x: torch.Tensor, physics=None) -> torch.Tensor:
        """Apply the 3-D U-Net to (B, in_channels, D, H, W) volumes; ``physics`` is ignored."""
        check_volumes(x, self.in_channels, "UNet3d")
        self.check_size(tuple(x.shape[-3:]))
        xp, pad = pad3d_to_multiple(x, 2**self.depth, self.padding)
        h = self.inc(xp)
        skips = []
        for down, enc in zip(self.downs, self.encoders, strict=True):
            skips.append(h)
            h = enc(down(h))
        for up, dec in zip(self.ups, self.decoders, strict=True):
            h = dec(torch.cat([skips.pop(), up(h)], dim=1))
        out = crop3d(self.outc(h), pad)
        return out + x if self.residual else out

    def extra_repr(self) -> str:
        return f"depth={self.depth}, bias={self.bias}, residual={self.residual}, padding={self.padding!r}"
