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

from selfinv.models.unet import UNet

__all__ = ["UNet3d", "check_volumes"]


def check_volumes(x: object, channels: int, owner: str) -> None:
    """Raise a one-line ValueError unless x is a real volume batch (B, ``channels``, D, H, W)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner}: expects volumes of shape (B, C, D, H, W), got {got}")
    if x.is_complex():
        raise ValueError(f"{owner}: takes real volumes, got a complex tensor")
    if x.shape[1] != channels:
        raise ValueError(f"{owner}: expects {channels} input channels, got {x.shape[1]}")


class UNet3d(UNet):
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
        super().__init__(in_channels, out_channels, depth, width, bias, residual, batch_norm, down, up, padding)

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
        return self._network(x)
