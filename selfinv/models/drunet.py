r"""A DRUNet-style residual U-Net (Zhang, Li, Zuo, Zhang, Van Gool & Timofte, "Plug-and-play image restoration
with deep denoiser prior", IEEE TPAMI 2021).

As in the paper: no bias anywhere, residual blocks (conv–ReLU–conv plus identity) at every level, 2×2
strided convolutions down, 2×2 transposed convolutions up, and additive (not concatenated) skip connections;
no global residual. Optionally a noise-level map, a constant channel equal to the noise standard deviation
:math:`\sigma`, is appended to the input, so one network covers a range of noise levels (a non-blind
denoiser). The map is per sample: a batch may mix noise levels.

Bias-free with a noise map, the network satisfies :math:`f(a y, a\sigma) = a f(y, \sigma)` for :math:`a > 0`.
The paper uses widths (64, 128, 256, 512) and 4 blocks per level; the defaults here are 4× smaller in width
and 2 blocks (about 4.3 M parameters instead of 32.6 M).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn

from selfinv._checks import check_int
from selfinv.models.unet import crop, from_real_output, pad_to_multiple, to_real_input

__all__ = ["DRUNet", "noise_sigma", "per_sample_level"]


def noise_sigma(physics) -> torch.Tensor | float:
    """The Gaussian noise level of a physics object: ``physics.noise.sigma`` (a float or (B,) tensor), else 0.

    Models with a Gaussian component (``Gaussian``, ``PoissonGaussian``) expose ``sigma``; other noise models
    and noiseless physics give 0.
    """
    noise = getattr(physics, "noise", None)
    sigma = getattr(noise, "sigma", None)
    return 0.0 if sigma is None else sigma


def per_sample_level(value, like: torch.Tensor, what: str) -> torch.Tensor:
    """A noise level given as a number or a (B,)/(1,) real tensor, as a (B,) tensor of ``like``'s dtype and device;
    anything else is a one-line ValueError starting with ``what``."""
    b = like.shape[0]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return torch.full((b,), float(value), dtype=like.dtype, device=like.device)
    if isinstance(value, torch.Tensor) and not value.is_complex() and value.ndim <= 1:
        t = value.to(device=like.device, dtype=like.dtype).reshape(-1)
        t = t.expand(b) if t.shape[0] == 1 else t
        if t.shape[0] != b:
            raise ValueError(f"{what} has {t.shape[0]} values for a batch of {b}")
        return t
    raise ValueError(f"{what} must be a number or a (B,) real tensor, got {value!r}")


class _ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DRUNet(nn.Module):
    r"""DRUNet-style bias-free residual U-Net (Zhang et al., TPAMI 2021), optionally noise-level conditioned.

    Args:
        in_channels, out_channels: image channels in and out (2C for C complex channels); the noise-level
            map is an extra input channel, not counted in ``in_channels``.
        widths: channels of each level; ``len(widths) - 1`` down-samplings, so inputs are padded (reflection)
            to a multiple of :math:`2^{\text{len(widths)} - 1}`.
        n_blocks: residual blocks per level (in the encoder, the bottleneck and the decoder).
        noise_level_map: append the constant map :math:`\sigma` to the input.

    ``forward(x, physics=None, sigma=None)``: σ is ``sigma`` when given (a float or a (B,) tensor), otherwise
    :func:`noise_sigma` of ``physics`` (``physics.noise.sigma``; 0 without Gaussian noise or without
    physics). σ is in the units of the measurements; behind a wrapper with :math:`A \neq I` it is a proxy of
    the noise level of the backbone input. Complex input goes through
    :func:`~selfinv.physics.complex_to_channels`.

    Example:
        >>> import torch
        >>> from selfinv.models.drunet import DRUNet
        >>> net = DRUNet(1, 1, widths=(4, 8), n_blocks=1)
        >>> y = torch.rand(2, 1, 9, 10)
        >>> net(y, sigma=torch.tensor([0.1, 0.2])).shape
        torch.Size([2, 1, 9, 10])
        >>> torch.allclose(net(2 * y, sigma=0.2), 2 * net(y, sigma=0.1), atol=1e-5)   # f(ay, aσ) = a f(y, σ)
        True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: Sequence[int] = (32, 64, 128, 256),
        n_blocks: int = 2,
        noise_level_map: bool = True,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), *(("widths", w) for w in widths)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"DRUNet: {name} must be integers >= 1, got {v!r}")
        if not widths:
            raise ValueError("DRUNet: widths must not be empty")
        check_int(n_blocks, "n_blocks", "DRUNet", low=0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.widths, self.n_blocks, self.noise_level_map = widths, n_blocks, bool(noise_level_map)

        def blocks(c: int) -> list[nn.Module]:
            return [_ResBlock(c) for _ in range(n_blocks)]

        cin = in_channels + (1 if self.noise_level_map else 0)
        self.head = nn.Conv2d(cin, widths[0], 3, padding=1, bias=False)
        self.downs = nn.ModuleList(
            nn.Sequential(*blocks(a), nn.Conv2d(a, b, 2, stride=2, bias=False))
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.body = nn.Sequential(*blocks(widths[-1]))
        self.ups = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(b, a, 2, stride=2, bias=False), *blocks(a))
            for a, b in reversed(list(zip(widths[:-1], widths[1:], strict=True)))
        )
        self.tail = nn.Conv2d(widths[0], out_channels, 3, padding=1, bias=False)

    def _sigma_map(self, x: torch.Tensor, physics, sigma) -> torch.Tensor:
        s = per_sample_level(noise_sigma(physics) if sigma is None else sigma, x, "DRUNet: sigma")
        return s[:, None, None, None].expand(x.shape[0], 1, *x.shape[-2:])

    def forward(self, x: torch.Tensor, physics=None, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        """Denoise (B, in_channels, H, W) images (any H, W) at noise level σ (see the class docstring)."""
        x, was_complex = to_real_input(x, self.in_channels, "DRUNet")
        xp, pad = pad_to_multiple(x, 2 ** (len(self.widths) - 1), "reflect")
        if self.noise_level_map:
            xp = torch.cat([xp, self._sigma_map(xp, physics, sigma)], dim=1)
        h = self.head(xp)
        skips = [h]
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.body(h)
        for up in self.ups:
            h = up(h + skips.pop())
        out = crop(self.tail(h + skips.pop()), pad)
        return from_real_output(out, was_complex)

    def extra_repr(self) -> str:
        return f"widths={self.widths}, n_blocks={self.n_blocks}, noise_level_map={self.noise_level_map}"
