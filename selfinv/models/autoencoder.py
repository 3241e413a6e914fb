r"""A convolutional autoencoder with a strong bottleneck (tutorial part 2, "Autoencoders")."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from selfinv._checks import check_ints
from selfinv.models.unet import check_images

__all__ = ["Autoencoder"]


class Autoencoder(nn.Module):
    r"""Convolutional autoencoder :math:`f = D \circ E` with no skip connection, so everything passes the code.

    The encoder is a 3×3 convolution followed by ``depth`` stride-2 4×4 convolutions (total stride
    :math:`s = 2^{\text{depth}}`) and a 1×1 convolution down to ``bottleneck`` channels; the decoder mirrors it
    with transposed convolutions. For an image of :math:`C \times H \times W` the code has

    .. math:: d = \text{bottleneck} \cdot \lceil H/s \rceil \cdot \lceil W/s \rceil

    entries (:meth:`bottleneck_dim`), a fraction ``bottleneck / (C s²)`` of the input (:attr:`compression`,
    6.25 % for one channel with the defaults). Noise, spread over all :math:`CHW` dimensions, cannot pass
    through :math:`d \ll CHW` numbers, while (by assumption) the signal can. Any size: the input is padded to a
    multiple of :math:`s` (replicating the border) and the output cropped back.

    Args:
        in_channels: channels of y.
        out_channels: output channels (default ``in_channels``).
        bottleneck: channels of the code at resolution :math:`H/s \times W/s`.
        width: feature channels of the hidden layers.
        depth: number of stride-2 down-samplings.

    Example:
        >>> import torch
        >>> from selfinv.models.autoencoder import Autoencoder
        >>> ae = Autoencoder(1, bottleneck=2, width=8, depth=2)
        >>> ae(torch.rand(3, 1, 13, 10)).shape
        torch.Size([3, 1, 13, 10])
        >>> ae.bottleneck_dim(13, 10), ae.encode(torch.rand(3, 1, 13, 10)).shape   # 2 · 4 · 3
        (24, torch.Size([3, 2, 4, 3]))
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        bottleneck: int = 4,
        width: int = 32,
        depth: int = 3,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        check_ints("Autoencoder", in_channels=in_channels, bottleneck=bottleneck, width=width, depth=depth,
                   out_channels=out_channels)
        self.in_channels, self.out_channels, self.bottleneck, self.depth = in_channels, out_channels, bottleneck, depth
        self.stride = 2**depth

        def act() -> nn.Module:
            return nn.LeakyReLU(0.1)

        enc: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), act()]
        dec: list[nn.Module] = [nn.Conv2d(bottleneck, width, 1), act()]
        for _ in range(depth):
            enc += [nn.Conv2d(width, width, 4, stride=2, padding=1), act()]
            dec += [nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), act()]
        enc.append(nn.Conv2d(width, bottleneck, 1))
        dec.append(nn.Conv2d(width, out_channels, 3, padding=1))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    @property
    def compression(self) -> float:
        """Code size over input size, ``bottleneck / (in_channels · stride²)`` (for sizes multiple of the stride)."""
        return self.bottleneck / (self.in_channels * self.stride**2)

    def bottleneck_dim(self, height: int, width: int) -> int:
        """The number of entries of the code of one ``height × width`` image."""
        return self.bottleneck * math.ceil(height / self.stride) * math.ceil(width / self.stride)

    def _pad(self, y: torch.Tensor) -> torch.Tensor:
        check_images(y, self.in_channels, "Autoencoder")
        H, W = y.shape[-2:]
        return F.pad(y, (0, -W % self.stride, 0, -H % self.stride), mode="replicate")

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """The code, of shape (B, bottleneck, ⌈H/s⌉, ⌈W/s⌉)."""
        return self.encoder(self._pad(y))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoded image at the padded size (multiples of the stride)."""
        return self.decoder(z)

    def forward(self, y: torch.Tensor, physics=None) -> torch.Tensor:
        """:math:`D(E(y))` cropped to the size of y; ``physics`` is accepted for the model signature and ignored."""
        H, W = y.shape[-2:] if isinstance(y, torch.Tensor) else (0, 0)
        return self.decode(self.encode(y))[..., :H, :W]

    def extra_repr(self) -> str:
        return f"bottleneck={self.bottleneck}, stride={self.stride}, compression={self.compression:.4g}"
