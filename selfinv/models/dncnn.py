r"""DnCNN (Zhang, Zuo, Chen, Meng & Zhang, "Beyond a Gaussian denoiser", IEEE TIP 2017).

A plain stack of ``depth`` 3×3 convolutions: conv + ReLU, then ``depth - 2`` × (conv + batch norm + ReLU),
then a conv to the output channels. With residual learning the stack estimates the noise and the output is
:math:`f(y) = y - \text{net}(y)`. Every convolution is zero-padded, so any image size works. With
``bias=False`` there is no additive constant (bias-free batch normalisation, Mohan et al., ICLR 2020) and the
network is positively homogeneous in evaluation mode.
"""

from __future__ import annotations

import torch
from torch import nn

from selfinv._checks import check_int, check_ints
from selfinv.models.unet import from_real_output, norm_layer, to_real_input

__all__ = ["DnCNN"]


class DnCNN(nn.Module):
    r"""DnCNN denoiser (Zhang et al., IEEE TIP 2017): ``depth`` 3×3 convolutions of ``width`` channels.

    About 0.56 M parameters for the defaults (1 → 1 channel, depth 17, width 64).

    Args:
        in_channels, out_channels: image channels in and out (2C for C complex channels).
        depth: number of convolutions (>= 2; 17 in the paper for σ-specific denoising).
        width: feature channels.
        bias: ``False`` removes every additive constant (bias-free, scale-equivariant network).
        residual: residual learning, output = input − noise estimate (only when ``in_channels == out_channels``).
        batch_norm: batch normalisation in the middle layers (bias-free when ``bias=False``).

    ``forward(x, physics=None)`` maps (B, in_channels, H, W) to (B, out_channels, H, W) for any H, W; complex
    input goes through :func:`~selfinv.physics.complex_to_channels`; ``physics`` is ignored.

    Example:
        >>> import torch
        >>> from selfinv.models.dncnn import DnCNN
        >>> net = DnCNN(1, 1, depth=4, width=8, bias=False).eval()
        >>> y = torch.rand(2, 1, 7, 9)
        >>> net(y).shape
        torch.Size([2, 1, 7, 9])
        >>> torch.allclose(net(0.5 * y), 0.5 * net(y), atol=1e-6)
        True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 17,
        width: int = 64,
        bias: bool = True,
        residual: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        check_ints("DnCNN", in_channels=in_channels, out_channels=out_channels, width=width)
        check_int(depth, "depth", "DnCNN", low=2)
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.residual = bool(residual) and in_channels == out_channels
        self.bias, bn = bool(bias), bool(batch_norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=self.bias), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(width, width, 3, padding=1, bias=self.bias and not bn))
            if bn:
                layers.append(norm_layer(width, self.bias))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(width, out_channels, 3, padding=1, bias=self.bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, physics=None) -> torch.Tensor:
        """Denoise (B, in_channels, H, W) images (any H, W); ``physics`` is ignored."""
        x, was_complex = to_real_input(x, self.in_channels, "DnCNN")
        out = self.net(x)
        if self.residual:
            out = x - out
        return from_real_output(out, was_complex)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, bias={self.bias}, residual={self.residual}"
