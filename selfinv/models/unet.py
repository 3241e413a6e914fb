r"""A U-Net backbone (Ronneberger, Fischer & Brox, MICCAI 2015), as used in back-projected reconstruction.

The back-projected U-Net :math:`\hat x = f(A^\top y)` of Jin, McCann, Froustey & Unser (IEEE TIP 2017,
"FBPConvNet") is this network behind :class:`~selfinv.models.wrappers.BackProjection`. Each level has two
3×3 convolutions + ReLU; the encoder goes down by 2×2 max-pooling (or a strided 2×2 convolution), the decoder
goes up by a 2×2 transposed convolution (or bilinear upsampling + a 1×1 convolution) and concatenates the
encoder features of the same level (skip connections).

Any image size works: the input is padded (reflection by default) to a multiple of :math:`2^\text{depth}` and
the output cropped back. With ``bias=False`` the network has no additive constant anywhere (convolutions
without bias, bias-free batch normalisation), so it is positively homogeneous, :math:`f(a y) = a f(y)` for
:math:`a > 0` (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), in evaluation mode when batch
normalisation is used (in training mode the batch statistics rescale the features).

This module also holds the small pieces the other backbones share: :func:`pad_to_multiple`, :func:`crop`,
:class:`BiasFreeBatchNorm2d` and the input check that lets a backbone take complex images directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfinv._checks import check_either, check_int, check_ints, check_one_of
from selfinv.physics.mri import channels_to_complex, complex_to_channels

__all__ = ["BiasFreeBatchNorm2d", "UNet", "crop", "pad_to_multiple"]

_PAD_MODES = ("reflect", "replicate", "zeros")


# ---------------------------------------------------------------------- shared helpers
def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect", dims: int = 2) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Pad the last ``dims`` axes of x (symmetrically) up to a multiple of ``multiple``; returns (padded, pad).

    ``mode`` is ``"reflect"``, ``"replicate"`` or ``"zeros"``; reflection needs the pad to be smaller than
    the image, so tiny images (e.g. 1 pixel high) fall back to ``"replicate"``. ``pad`` is F.pad's
    (left, right, top, bottom[, front, back]), to give to :func:`crop`. All three modes are positively homogeneous.

    Example:
        >>> import torch
        >>> from selfinv.models.unet import crop, pad_to_multiple
        >>> x = torch.rand(1, 1, 5, 7)
        >>> xp, pad = pad_to_multiple(x, 4)
        >>> tuple(xp.shape), torch.equal(crop(xp, pad), x)
        ((1, 1, 8, 8), True)
    """
    if mode not in _PAD_MODES:
        raise ValueError(f"pad_to_multiple: mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
    sizes = tuple(x.shape[-dims:])[::-1]  # F.pad lists the last axis first
    pad: tuple[int, ...] = ()
    for size in sizes:
        extra = (-size) % multiple
        pad += (extra // 2, extra - extra // 2)
    if not any(pad):
        return x, pad
    if mode == "reflect" and any(max(pad[2 * i : 2 * i + 2]) >= size for i, size in enumerate(sizes)):
        mode = "replicate"
    if mode == "zeros":
        return F.pad(x, pad), pad
    return F.pad(x, pad, mode=mode), pad


def crop(x: torch.Tensor, pad: tuple[int, ...]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple` (remove F.pad's ``pad``, last axis first, from the last len(pad)/2 axes)."""
    index = [slice(None)] * x.ndim
    for i in range(len(pad) // 2):
        axis = x.ndim - 1 - i
        index[axis] = slice(pad[2 * i], x.shape[axis] - pad[2 * i + 1])
    return x[tuple(index)]


class BiasFreeBatchNorm2d(nn.Module):
    r"""Batch normalisation without additive terms (Mohan et al., ICLR 2020): :math:`\gamma_c\, x / s_c`.

    For (B, C, H, W) images and, alike, (B, C, D, H, W) volumes (the statistics are over every axis but C). No mean is subtracted and no :math:`\beta` is added. In training mode :math:`s_c` is the batch standard
    deviation of channel c (and updates the running estimate); in evaluation mode it is the running
    estimate, so the layer is linear and the network stays positively homogeneous.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_sd", torch.ones(channels))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            sd = torch.sqrt(x.var(dim=(0, *range(2, x.ndim)), unbiased=False) + self.eps)
            with torch.no_grad():
                self.running_sd.mul_(1 - self.momentum).add_(self.momentum * sd.to(self.running_sd.dtype))
        else:
            sd = self.running_sd.to(x.dtype)
        return x * (self.weight / sd).reshape(1, -1, *([1] * (x.ndim - 2)))


#: the layers of a network with 2 or 3 spatial axes: convolution, transposed convolution, max-pooling, batch
#: normalisation, and the name of the linear interpolation mode
_LAYERS = {
    2: (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.BatchNorm2d, "bilinear"),
    3: (nn.Conv3d, nn.ConvTranspose3d, nn.MaxPool3d, nn.BatchNorm3d, "trilinear"),
}


def norm_layer(channels: int, bias: bool, dims: int = 2) -> nn.Module:
    """``nn.BatchNorm2d`` (``3d`` for volumes) with bias, :class:`BiasFreeBatchNorm2d` (any dimension) without."""
    return _LAYERS[dims][3](channels) if bias else BiasFreeBatchNorm2d(channels)


def check_images(y: torch.Tensor, channels: int, owner: str) -> None:
    """Raise ValueError unless y is a real or complex batch of images (B, ``channels``, H, W)."""
    if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] != channels:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{owner}: expects y of shape (B, {channels}, H, W), got {got}")


def to_real_input(x: torch.Tensor, in_channels: int, owner: str) -> tuple[torch.Tensor, bool]:
    """Check a backbone input (B, C, H, W); complex images become 2C real channels. Returns (x, was_complex)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner}: expects an image tensor (B, C, H, W), got {got}")
    was_complex = x.is_complex()
    if was_complex:
        x = complex_to_channels(x)
    if x.shape[1] != in_channels:
        extra = (
            f" (a complex image with {x.shape[1] // 2} channels is {x.shape[1]} real channels)" if was_complex else ""
        )
        raise ValueError(f"{owner}: expects {in_channels} input channels, got {x.shape[1]}{extra}")
    return x, was_complex


def from_real_output(x: torch.Tensor, was_complex: bool) -> torch.Tensor:
    """Inverse of :func:`to_real_input` on the output."""
    return channels_to_complex(x) if was_complex else x


# ---------------------------------------------------------------------- the U-Net
def _double_conv(cin: int, cout: int, bias: bool, bn: bool, dims: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in ((cin, cout), (cout, cout)):
        layers.append(_LAYERS[dims][0](a, b, 3, padding=1, bias=bias and not bn))
        if bn:
            layers.append(norm_layer(b, bias, dims))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    r"""U-Net (Ronneberger et al. 2015) image-to-image backbone; the back-projected U-Net of Jin et al. (2017).

    Level i (0..depth) has :math:`\text{width}\cdot 2^i` channels; parameters: about 1.9 M for the defaults
    (1 → 1 channel).

    Args:
        in_channels, out_channels: image channels in and out (2C for C complex channels).
        depth: number of down-samplings; inputs are padded to a multiple of :math:`2^\text{depth}`.
        width: channels of the first level.
        bias: ``False`` removes every additive constant (bias-free, scale-equivariant network).
        residual: add the input to the output (only when ``in_channels == out_channels``).
        batch_norm: batch normalisation after every 3×3 convolution (bias-free when ``bias=False``).
        down: ``"maxpool"`` (2×2 max-pooling) or ``"conv"`` (2×2 convolution, stride 2).
        up: ``"transpose"`` (2×2 transposed convolution) or ``"bilinear"`` (bilinear ×2 + 1×1 convolution).
        padding: ``"reflect"``, ``"replicate"`` or ``"zeros"``: how inputs are padded to the multiple.

    ``forward(x, physics=None)`` maps (B, in_channels, H, W) to (B, out_channels, H, W) for any H, W; complex
    input is converted with :func:`~selfinv.physics.complex_to_channels` (and the output back), and
    ``physics`` is ignored, so the backbone is itself a denoiser ``model(y, physics)``. Wrap it in
    :class:`~selfinv.models.wrappers.BackProjection` or :class:`~selfinv.models.wrappers.Unrolled` for
    other operators.

    Example:
        >>> import torch
        >>> from selfinv.models.unet import UNet
        >>> net = UNet(1, 1, depth=2, width=4, bias=False).eval()
        >>> y = torch.rand(2, 1, 13, 21)
        >>> net(y).shape
        torch.Size([2, 1, 13, 21])
        >>> torch.allclose(net(3 * y), 3 * net(y), atol=1e-5)     # bias-free: positively homogeneous
        True
    """

    spatial_dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 3,
        width: int = 32,
        bias: bool = True,
        residual: bool = True,
        batch_norm: bool = False,
        down: str = "maxpool",
        up: str = "transpose",
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        owner, dims = type(self).__name__, self.spatial_dims
        conv, transpose, pool, _, interpolation = _LAYERS[dims]
        check_ints(owner, in_channels=in_channels, out_channels=out_channels, width=width)
        check_int(depth, "depth", owner, low=0)
        check_either(down, ("maxpool", "conv"), "down", owner)
        check_either(up, ("transpose", interpolation), "up", owner)
        check_one_of(padding, _PAD_MODES, "padding", owner)
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.residual = bool(residual) and in_channels == out_channels
        self.padding = padding
        bias, bn = bool(bias), bool(batch_norm)
        self.bias = bias
        w = [width * 2**i for i in range(depth + 1)]

        self.inc = _double_conv(in_channels, w[0], bias, bn, dims)
        self.downs = nn.ModuleList()
        self.encoders = nn.ModuleList()
        for i in range(1, depth + 1):
            self.downs.append(pool(2) if down == "maxpool" else conv(w[i - 1], w[i - 1], 2, stride=2, bias=bias))
            self.encoders.append(_double_conv(w[i - 1], w[i], bias, bn, dims))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(depth, 0, -1):
            if up == "transpose":
                self.ups.append(transpose(w[i], w[i - 1], 2, stride=2, bias=bias))
            else:
                self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode=interpolation, align_corners=False),
                                              conv(w[i], w[i - 1], 1, bias=bias)))
            self.decoders.append(_double_conv(2 * w[i - 1], w[i - 1], bias, bn, dims))
        self.outc = conv(w[0], out_channels, 1, bias=bias)

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """The network on real input (B, in_channels, *spatial) of any size: padded to a multiple of
        :math:`2^\\text{depth}`, encoded, decoded, cropped back, plus the input when residual."""
        xp, pad = pad_to_multiple(x, 2**self.depth, self.padding, self.spatial_dims)
        h = self.inc(xp)
        skips = []
        for down, enc in zip(self.downs, self.encoders, strict=True):
            skips.append(h)
            h = enc(down(h))
        for up, dec in zip(self.ups, self.decoders, strict=True):
            h = dec(torch.cat([skips.pop(), up(h)], dim=1))
        out = crop(self.outc(h), pad)
        return out + x if self.residual else out

    def forward(self, x: torch.Tensor, physics=None) -> torch.Tensor:
        """Apply the U-Net to (B, in_channels, H, W) images (any H, W); ``physics`` is ignored."""
        x, was_complex = to_real_input(x, self.in_channels, "UNet")
        return from_real_output(self._network(x), was_complex)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, bias={self.bias}, residual={self.residual}, padding={self.padding!r}"
