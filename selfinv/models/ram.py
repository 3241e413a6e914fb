r"""An operator-conditioned reconstruction network after RAM, the "Reconstruct Anything Model" (Terris, Hurault,
Song & Tachella, 2025): one bias-free U-Net for any linear operator, gray, colour or complex images.

Written from the paper's description. With :math:`L = \|A\|^2` (power iteration, per sample) the network
works with the normalised operator :math:`\tilde A = A/\sqrt L`, measurements :math:`\tilde y = y/\sqrt L` and
noise level :math:`\tilde\sigma = \max(\sigma/\sqrt L, \sigma_{\min})`:

1. **Proximal realignment** of the back-projection :math:`b = \tilde A^H \tilde y = A^H y / L`:
   :math:`x_0 = \operatorname{prox}_{\gamma \|\tilde A\cdot - \tilde y\|^2/2}(b)`, i.e.
   :math:`(I + \gamma \tilde A^H \tilde A)\,x_0 = (1 + \gamma)\, b` by ``prox_iterations`` conjugate-gradient
   steps, with :math:`\gamma = \tau^2 / \tilde\sigma^2` and a learned prior scale :math:`\tau`. This undoes the
   blur of :math:`A^H` (tomography, deblurring) and leaves masks' back-projections as they are.
2. **Noise maps**: :math:`\tilde\sigma` and the Poisson gain :math:`g/\sqrt L` as two constant extra channels.
3. **One head and one tail per image kind** (1: gray, 2: one complex channel, 3: colour), the body shared.
4. **Krylov conditioning** at every scale s of the encoder, the bottleneck and the decoder: the features
   :math:`h` are projected to an image :math:`z = P_s h` (C channels), brought to full resolution
   (:math:`U_s`, nearest neighbour), through :math:`\tilde A^H \tilde A`, back to scale s (:math:`D_s`,
   average pooling), and mixed with the back-projection at that scale:
   :math:`h \leftarrow h + Q_s\,[D_s \tilde A^H \tilde A U_s P_s h,\ D_s b]` — the terms :math:`z` and
   :math:`\tilde A^H \tilde A z` of the Krylov subspace, plus the data.
5. Output :math:`x_0 + f(x_0, \tilde\sigma, g)`.

What we changed, and why: 4 scales of widths (32, 64, 128, 256) and 1 residual block per scale instead of
(64, 128, 256, 512) × several (≈ 35 M parameters) so that 2 CPU cores can pretrain it (≈ 2.8 M parameters);
a global residual on :math:`x_0` (faster pretraining); :math:`\tau` is one learned scalar, not a function of
the SNR; :math:`U_s, D_s` are fixed nearest/average resampling. Convolutions without bias, as RAM. Since
everything is relative to :math:`L`, rescaling the operator (:math:`A \to cA`, with :math:`y \to cy` and
:math:`\sigma \to c\sigma`) leaves the output unchanged: the network does not depend on the measurements' units.

Used as the backbone of :class:`~selfinv.models.wrappers.BackProjection` with ``init="adjoint"``: its input
is :math:`A^H y` and it needs ``physics``. Complex images arrive as 2 real channels.

Example:
    >>> import torch
    >>> from selfinv.physics import Inpainting
    >>> from selfinv.models.ram import RAM
    >>> from selfinv.models.wrappers import BackProjection
    >>> physics = Inpainting((torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float())
    >>> model = BackProjection(RAM(3, 3, widths=(4, 8), prox_iterations=2), init="adjoint")
    >>> model(physics.A(torch.rand(2, 3, 16, 16)), physics).shape
    torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfinv._checks import check_int
from selfinv.models.drunet import _ResBlock, noise_sigma, per_sample_level
from selfinv.models.unet import crop, pad_to_multiple
from selfinv.physics.mri import channels_to_complex, complex_to_channels
from selfinv.physics.solvers import estimate_lipschitz

__all__ = ["RAM", "noise_gain"]


def noise_gain(physics) -> torch.Tensor | float:
    """The Poisson gain of a physics object's noise (``Poisson``, ``PoissonGaussian``), else 0."""
    gain = getattr(getattr(physics, "noise", None), "gain", None)
    return 0.0 if gain is None else gain


class _Normal:
    r""":math:`\tilde A^H \tilde A = A^H A / L` on real channel images of the unpadded size (complex as 2 channels)."""

    def __init__(self, physics, L: torch.Tensor, is_complex: bool) -> None:
        self.physics, self.L, self.is_complex = physics, L, is_complex

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.physics is None:
            return z
        x = channels_to_complex(z) if self.is_complex else z
        out = self.physics.normal(x)
        out = complex_to_channels(out) if self.is_complex else out
        return out / self.L.to(out.dtype)[:, None, None, None]


class _Krylov(nn.Module):
    r""":math:`h + Q [D_s N U_s P h, D_s b]` at scale ``s`` (factor :math:`2^s`), one P and Q per image kind."""

    def __init__(self, width: int, scale: int, kinds: Sequence[int]) -> None:
        super().__init__()
        self.factor = 2**scale
        self.project = nn.ModuleDict({str(c): nn.Conv2d(width, c, 1, bias=False) for c in kinds})
        self.mix = nn.ModuleDict({str(c): nn.Conv2d(2 * c, width, 1, bias=False) for c in kinds})
        for m in self.mix.values():
            nn.init.zeros_(m.weight)  # starts as the identity: the conditioning is learned, not imposed

    def forward(self, h: torch.Tensor, normal: _Normal, b_s: torch.Tensor, pad: tuple[int, ...]) -> torch.Tensor:
        key = str(b_s.shape[1])
        z = self.project[key](h)
        if self.factor > 1:
            z = F.interpolate(z, scale_factor=self.factor, mode="nearest")
        nz = F.pad(normal(crop(z, pad)), pad)  # the operator sees the unpadded image; the pad is zero
        if self.factor > 1:
            nz = F.avg_pool2d(nz, self.factor)
        return h + self.mix[key](torch.cat([nz, b_s], dim=1))


class RAM(nn.Module):
    r"""Operator-conditioned bias-free U-Net (module docstring; Terris et al., 2025), the backbone of
    ``BackProjection(init="adjoint")``.

    Args:
        in_channels, out_channels: the image channels of this use (2 for one complex channel); they must be
            equal and one of ``kinds``. Weights exist for every kind, so one state dict serves them all.
        widths: channels per scale; inputs are padded (reflection) to a multiple of :math:`2^{\text{len}-1}`.
        n_blocks: residual blocks per scale (encoder, bottleneck and decoder each).
        kinds: the image channel counts the network has a head and a tail for.
        prox_iterations: conjugate-gradient steps of the proximal realignment (0: :math:`x_0 = b`).
        power_iterations: power-iteration steps for :math:`L = \|A\|^2` (per sample, no gradient).
        sigma_min: the floor of the normalised noise level (RAM: 5e-3).

    ``forward(x, physics=None)``: x is :math:`A^H y`; without physics the operator is the identity
    (a denoiser at noise level 0 — prefer passing ``physics``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: Sequence[int] = (32, 64, 128, 256),
        n_blocks: int = 1,
        kinds: Sequence[int] = (1, 2, 3),
        prox_iterations: int = 5,
        power_iterations: int = 10,
        sigma_min: float = 5e-3,
    ) -> None:
        super().__init__()
        widths, kinds = tuple(widths), tuple(kinds)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), *(("widths", w) for w in widths),
                        *(("kinds", k) for k in kinds)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"RAM: {name} must be integers >= 1, got {v!r}")
        if not widths or not kinds:
            raise ValueError("RAM: widths and kinds must not be empty")
        if in_channels != out_channels or in_channels not in kinds:
            raise ValueError(f"RAM: in_channels = out_channels must be one of kinds {kinds}, got {in_channels} and {out_channels}")
        check_int(n_blocks, "n_blocks", "RAM", low=0)
        check_int(prox_iterations, "prox_iterations", "RAM", low=0)
        check_int(power_iterations, "power_iterations", "RAM", low=1)
        if isinstance(sigma_min, bool) or not isinstance(sigma_min, numbers.Real) or not (0 < sigma_min < math.inf):
            raise ValueError(f"RAM: sigma_min must be a number > 0, got {sigma_min!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.widths, self.n_blocks, self.kinds = widths, n_blocks, kinds
        self.prox_iterations, self.power_iterations, self.sigma_min = prox_iterations, power_iterations, float(sigma_min)
        self.log_tau = nn.Parameter(torch.tensor(math.log(0.1)))
        self.heads = nn.ModuleDict({str(c): nn.Conv2d(c + 2, widths[0], 3, padding=1, bias=False) for c in kinds})
        self.tails = nn.ModuleDict({str(c): nn.Conv2d(widths[0], c, 3, padding=1, bias=False) for c in kinds})
        n = len(widths)
        self.enc = nn.ModuleList(nn.Sequential(*[_ResBlock(w) for _ in range(n_blocks)]) for w in widths[:-1])
        self.enc_krylov = nn.ModuleList(_Krylov(w, s, kinds) for s, w in enumerate(widths[:-1]))
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2, bias=False) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.body = nn.Sequential(*[_ResBlock(widths[-1]) for _ in range(n_blocks)])
        self.body_krylov = _Krylov(widths[-1], n - 1, kinds)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2, bias=False)
                                 for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.dec = nn.ModuleList(nn.Sequential(*[_ResBlock(w) for _ in range(n_blocks)]) for w in widths[:-1])
        self.dec_krylov = nn.ModuleList(_Krylov(w, s, kinds) for s, w in enumerate(widths[:-1]))

    @property
    def tau(self) -> torch.Tensor:
        """The learned prior scale τ of the proximal realignment."""
        return self.log_tau.exp()

    def _prox(self, b: torch.Tensor, normal: _Normal, sigma: torch.Tensor) -> torch.Tensor:
        r"""CG on :math:`(I + \gamma N) x = (1 + \gamma) b` from :math:`x = b`, :math:`\gamma = \tau^2/\tilde\sigma^2` per sample."""
        if self.prox_iterations == 0 or normal.physics is None:
            return b
        # a fixed number of steps, no early stop (unlike models.wrappers.conjugate_gradient): the pretrained weights
        # were trained with exactly this map, and τ keeps a gradient even where the system is solved at once (A = I)
        g = ((self.tau.to(b.dtype) / sigma) ** 2)[:, None, None, None]
        x = b
        r = (1 + g) * b - (x + g * normal(x))
        p = r
        rs = (r * r).flatten(1).sum(1)
        tiny = torch.finfo(b.dtype).tiny
        for _ in range(self.prox_iterations):
            ap = p + g * normal(p)
            pap = (p * ap).flatten(1).sum(1)
            alpha = torch.where(pap > tiny, rs / pap.clamp_min(tiny), torch.zeros_like(rs))[:, None, None, None]
            x = x + alpha * p
            r = r - alpha * ap
            rs_new = (r * r).flatten(1).sum(1)
            beta = torch.where(rs > tiny, rs_new / rs.clamp_min(tiny), torch.zeros_like(rs))[:, None, None, None]
            p = r + beta * p
            rs = rs_new
        return x

    def forward(self, x: torch.Tensor, physics=None) -> torch.Tensor:
        """Reconstruct from :math:`x = A^H y` (B, C, H, W), C one of ``kinds``, with the operator ``physics``."""
        if x.ndim != 4 or x.is_complex():
            raise ValueError(f"RAM: expected real (B, C, H, W) images (complex as 2 channels), got {tuple(x.shape)} {x.dtype}")
        c = x.shape[1]
        if c not in self.kinds:
            raise ValueError(f"RAM: images of {c} channels; this network has heads for {self.kinds} channels")
        is_complex = bool(getattr(physics, "is_complex", False))
        if physics is not None and is_complex and c % 2:
            raise ValueError(f"RAM: a complex operator needs 2 real channels per complex one, got {c}")
        with torch.no_grad():
            if physics is None:
                L = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
            else:
                L = estimate_lipschitz(physics, channels_to_complex(x) if is_complex else x, self.power_iterations)
                L = L.to(x.dtype).clamp_min(torch.finfo(x.dtype).tiny)
        normal = _Normal(physics, L, is_complex)
        root = L.sqrt()
        sigma = (per_sample_level(noise_sigma(physics), x, "RAM: the noise sigma") / root).clamp_min(self.sigma_min)
        gain = per_sample_level(noise_gain(physics), x, "RAM: the noise gain") / root
        b = x / L[:, None, None, None]
        x0 = self._prox(b, normal, sigma)
        xp, pad = pad_to_multiple(x0, 2 ** (len(self.widths) - 1), "reflect")
        bp = F.pad(b, pad)
        maps = torch.stack([sigma, gain], 1)[:, :, None, None].expand(-1, -1, *xp.shape[-2:])
        h = self.heads[str(c)](torch.cat([xp, maps], 1))
        skips = []
        for s, (blocks, kry, down) in enumerate(zip(self.enc, self.enc_krylov, self.downs, strict=True)):
            h = kry(blocks(h), normal, _pool(bp, s), pad)
            skips.append(h)
            h = down(h)
        h = self.body_krylov(self.body(h), normal, _pool(bp, len(self.widths) - 1), pad)
        for s in reversed(range(len(self.ups))):
            h = self.ups[s](h) + skips[s]
            h = self.dec_krylov[s](self.dec[s](h), normal, _pool(bp, s), pad)
        return x0 + crop(self.tails[str(c)](h), pad)

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, n_blocks={self.n_blocks}, kinds={self.kinds}, "
                f"prox_iterations={self.prox_iterations}")


def _pool(b: torch.Tensor, scale: int) -> torch.Tensor:
    return F.avg_pool2d(b, 2**scale) if scale else b
