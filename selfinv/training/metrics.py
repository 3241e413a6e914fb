r"""Image quality metrics with an explicit data range: PSNR and SSIM, per image.

Complex images (MRI) are compared in magnitude. Both are checked against scikit-image in the tests.

Example:
    >>> import torch
    >>> from selfinv.training.metrics import psnr
    >>> x = torch.zeros(2, 1, 8, 8)
    >>> psnr(x + 0.1, x, data_range=1.0)
    tensor([20., 20.])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _magnitude(t: torch.Tensor) -> torch.Tensor:
    return t.abs() if t.is_complex() else t


def psnr(x_hat: torch.Tensor, x: torch.Tensor, data_range: float) -> torch.Tensor:
    r"""Per-image PSNR :math:`10\log_{10}(R^2 / \mathrm{MSE})` in dB, shape (B,)."""
    if x_hat.shape != x.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(x_hat.shape)} vs {tuple(x.shape)}")
    if data_range <= 0:
        raise ValueError(f"psnr: data_range must be > 0, got {data_range}")
    mse = (_magnitude(x_hat).double() - _magnitude(x).double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse.clamp_min(1e-30))).to(torch.float32)


def _gaussian_window(size: int, sigma: float, dtype, device) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x_hat: torch.Tensor, x: torch.Tensor, data_range: float, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r"""Per-image SSIM (Wang et al., IEEE TIP 2004), averaged over channels, shape (B,).

    Gaussian window (11, σ = 1.5), :math:`K_1 = 0.01, K_2 = 0.03`, population covariances, statistics on
    the valid part of the image only: ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False, data_range=R)``.
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(x_hat.shape)} vs {tuple(x.shape)}")
    a, b = _magnitude(x_hat).double(), _magnitude(x).double()
    if a.shape[-1] < window or a.shape[-2] < window:
        window = min(a.shape[-2:]) if min(a.shape[-2:]) % 2 else min(a.shape[-2:]) - 1
    c = a.shape[1]
    g = _gaussian_window(window, sigma, a.dtype, a.device)
    kx = g.view(1, 1, 1, -1).expand(c, 1, 1, window)
    ky = g.view(1, 1, -1, 1).expand(c, 1, window, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.flatten(1).mean(1).to(torch.float32)
