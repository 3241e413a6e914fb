r"""Random operator families :math:`\{A_g\}`: parameters drawn per sample from a ``torch.Generator``.

The tutorial's multi-operator setting (part 3) observes each signal through a different operator
:math:`A_{g_i}`. A sampler draws the parameters of a batch of such operators at once:
``sampler.sample(batch_size, generator)`` returns the parameter tensor (one slice per sample) and
``sampler(batch_size, generator, noise)`` returns the physics object built from it. Every draw is
vectorised over the batch and reproducible from the generator.

Example:
    >>> import torch
    >>> from selfinv.physics.samplers import MRIMaskSampler
    >>> sampler = MRIMaskSampler((32, 32), acceleration=4, center_fraction=0.125)
    >>> physics = sampler(3, generator=torch.Generator().manual_seed(0))
    >>> physics.mask.shape, physics.mask[:, 0, 0].sum(-1).tolist()     # 8 lines per sample
    (torch.Size([3, 1, 32, 32]), [8.0, 8.0, 8.0])
"""

from __future__ import annotations

import math

import torch

from selfinv import _random
from selfinv.noise import NoiseModel
from selfinv.physics.inpainting import Inpainting
from selfinv.physics.mri import MRI


def _size(img_size: int | tuple[int, int], owner: str) -> tuple[int, int]:
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    if len(img_size) != 2 or any(int(s) < 1 for s in img_size):
        raise ValueError(f"{owner}: img_size must be an int or (H, W) with positive entries, got {img_size}")
    return int(img_size[0]), int(img_size[1])


def _check_batch(batch_size: int, owner: str) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{owner}: batch_size must be a positive int, got {batch_size}")


class BernoulliMaskSampler:
    r"""Pixel masks with i.i.d. :math:`m_i \sim \text{Bernoulli}(p)`: each pixel is observed with probability p.

    Args:
        img_size: (H, W) or an int for square images.
        p: probability that a pixel is observed, in (0, 1].
        channels: 1 for one mask shared by all colour channels, C for an independent mask per channel.
    """

    def __init__(self, img_size: int | tuple[int, int], p: float, channels: int = 1) -> None:
        self.img_size = _size(img_size, "BernoulliMaskSampler")
        if not 0 < p <= 1:
            raise ValueError(f"BernoulliMaskSampler: p must be in (0, 1], got {p}")
        if channels < 1:
            raise ValueError(f"BernoulliMaskSampler: channels must be >= 1, got {channels}")
        self.p, self.channels = float(p), int(channels)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, channels, H, W) binary float masks."""
        _check_batch(batch_size, "BernoulliMaskSampler")
        u = _random.rand((batch_size, self.channels, *self.img_size), generator=generator, dtype=torch.float32, device=_dev(generator))
        return (u < self.p).to(torch.float32)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None, noise: NoiseModel | None = None) -> Inpainting:
        return Inpainting(self.sample(batch_size, generator), noise=noise)


class BlockMaskSampler:
    """Masks with ``n_blocks`` rectangular holes of ``block_size`` at uniformly random positions per sample.

    Args:
        img_size: (H, W) or an int.
        block_size: (bh, bw) or an int, at most the image size.
        n_blocks: number of (possibly overlapping) holes per image.
    """

    def __init__(self, img_size: int | tuple[int, int], block_size: int | tuple[int, int], n_blocks: int = 1) -> None:
        self.img_size = _size(img_size, "BlockMaskSampler")
        self.block_size = _size(block_size, "BlockMaskSampler")
        if any(b > s for b, s in zip(self.block_size, self.img_size, strict=True)):
            raise ValueError(f"BlockMaskSampler: block_size {self.block_size} exceeds img_size {self.img_size}")
        if n_blocks < 1:
            raise ValueError(f"BlockMaskSampler: n_blocks must be >= 1, got {n_blocks}")
        self.n_blocks = int(n_blocks)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 1, H, W) binary float masks, 0 inside the holes."""
        _check_batch(batch_size, "BlockMaskSampler")
        (h, w), (bh, bw) = self.img_size, self.block_size
        u = _random.rand((batch_size, self.n_blocks, 2), generator=generator, dtype=torch.float64, device=_dev(generator))
        top = (u[..., 0] * (h - bh + 1)).floor().long()[..., None, None]  # (B, n, 1, 1)
        left = (u[..., 1] * (w - bw + 1)).floor().long()[..., None, None]
        rows = torch.arange(h).view(1, 1, h, 1)
        cols = torch.arange(w).view(1, 1, 1, w)
        hole = (rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)
        return (~hole.any(1, keepdim=True)).to(torch.float32)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None, noise: NoiseModel | None = None) -> Inpainting:
        return Inpainting(self.sample(batch_size, generator), noise=noise)


class MRIMaskSampler:
    r"""Cartesian k-space line masks (phase-encoding columns) with a fully sampled centre.

    ``round(W / acceleration)`` lines are sampled in total, ``round(W · center_fraction)`` of them a
    contiguous block around the k-space centre (column W // 2, as in :func:`selfinv.physics.fft2c`).
    The others are chosen per sample:

    * ``"random"``: uniformly without replacement among the non-centre lines;
    * ``"gaussian"``: variable density, without replacement with probability proportional to
      :math:`\exp(-(j - W/2)^2 / 2 s^2)`, :math:`s = ` ``gaussian_std`` · W (Gumbel top-k);
    * ``"equispaced"``: lines every W·(acc·n_c − W)/(n_c − W)/W columns from a random offset (the
      fastMRI "equispaced fraction" rule), so that the total is round(W/acc) up to ±1 line.

    Args:
        img_size: (H, W) or an int.
        acceleration: undersampling factor (> 1 gives an incomplete operator; 1 samples every line).
        center_fraction: fraction of lines in the fully sampled centre.
        pattern: "random", "gaussian" or "equispaced".
        gaussian_std: width of the variable-density profile as a fraction of W.
    """

    patterns = ("random", "gaussian", "equispaced")

    def __init__(
        self,
        img_size: int | tuple[int, int],
        acceleration: float = 4.0,
        center_fraction: float = 0.08,
        pattern: str = "random",
        gaussian_std: float = 0.25,
    ) -> None:
        self.img_size = _size(img_size, "MRIMaskSampler")
        if pattern not in self.patterns:
            raise ValueError(f"MRIMaskSampler: pattern must be one of {', '.join(self.patterns)}, got {pattern!r}")
        if not acceleration >= 1:
            raise ValueError(f"MRIMaskSampler: acceleration must be >= 1, got {acceleration}")
        if not 0 <= center_fraction <= 1:
            raise ValueError(f"MRIMaskSampler: center_fraction must be in [0, 1], got {center_fraction}")
        if gaussian_std <= 0:
            raise ValueError(f"MRIMaskSampler: gaussian_std must be > 0, got {gaussian_std}")
        w = self.img_size[1]
        self.n_lines = max(1, round(w / acceleration))
        self.n_center = round(w * center_fraction)
        if self.n_center > self.n_lines:
            raise ValueError(
                f"MRIMaskSampler: center_fraction {center_fraction} asks for {self.n_center} centre lines, "
                f"more than the {self.n_lines} lines of acceleration {acceleration}"
            )
        self.acceleration, self.center_fraction = float(acceleration), float(center_fraction)
        self.pattern, self.gaussian_std = pattern, float(gaussian_std)

    def _center(self) -> torch.Tensor:
        w = self.img_size[1]
        c = torch.zeros(w, dtype=torch.bool)
        start = w // 2 - self.n_center // 2
        c[start : start + self.n_center] = True
        return c

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 1, H, W) binary float masks, constant along each column."""
        _check_batch(batch_size, "MRIMaskSampler")
        h, w = self.img_size
        center = self._center()
        k = self.n_lines - self.n_center
        dev = _dev(generator)
        lines = center.expand(batch_size, w).clone()
        if self.pattern == "equispaced":
            if k > 0:
                spacing = (self.acceleration * (self.n_center - w)) / (self.n_center * self.acceleration - w) if self.n_center else self.acceleration
                n_pos = math.ceil(w / spacing) + 1
                off = (_random.rand((batch_size, 1), generator=generator, dtype=torch.float64, device=dev) * round(spacing)).floor()
                pos = (off + spacing * torch.arange(n_pos, dtype=torch.float64)).round().long()
                hit = torch.zeros(batch_size, w, dtype=torch.long).scatter_reduce(
                    1, pos.clamp(max=w - 1), (pos < w).long(), reduce="amax"
                )
                lines |= hit.bool()
        elif k > 0:
            u = _random.rand((batch_size, w), generator=generator, dtype=torch.float64, device=dev)
            if self.pattern == "random":
                keys = u
            else:  # Gumbel top-k = sampling without replacement proportional to the density
                j = torch.arange(w, dtype=torch.float64)
                logp = -((j - w // 2) ** 2) / (2 * (self.gaussian_std * w) ** 2)
                keys = logp - torch.log(-torch.log(u.clamp(1e-300, 1 - 1e-16)))
                keys = -keys  # smallest key first, as for "random"
            keys = keys.masked_fill(center, math.inf)
            idx = keys.topk(k, dim=1, largest=False).indices
            lines.scatter_(1, idx, True)
        return lines[:, None, None, :].expand(batch_size, 1, h, w).to(torch.float32).contiguous()

    def __call__(self, batch_size: int, generator: torch.Generator | None = None, noise: NoiseModel | None = None) -> MRI:
        return MRI(self.sample(batch_size, generator), noise=noise)


def _dev(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")
