r"""A robust estimate of the noise level from the measurements alone.

:func:`estimate_sigma` is the wavelet estimator of Donoho & Johnstone (1994): the finest-scale detail
coefficients of a natural signal are mostly noise, and their median absolute value is robust to the
few that carry edges, so

.. math::

    \hat\sigma = \frac{\operatorname{median}_k |d_k|}{\Phi^{-1}(3/4)},\qquad \Phi^{-1}(3/4) \approx 0.6745,

with :math:`d_k` the finest **diagonal** Haar coefficients of an image, one per non-overlapping 2×2
block, :math:`d = (y_{00} - y_{01} - y_{10} + y_{11})/2` (orthonormal, so white noise of level σ gives
coefficients :math:`\mathcal N(0, \sigma^2)`; for a 1-D signal the finest Haar detail
:math:`(y_{2i} - y_{2i+1})/\sqrt2`). For white Gaussian noise on a piecewise-smooth image it is within a
few percent of σ; texture adds to it (an upper bias when the noise is weak against the texture), and for
signal-dependent noise it gives a typical (median) level.

:func:`estimate_covariance` does the same for stationary correlated noise with a short range: the robust
(median-based) variogram of Cressie & Hawkins (1980), :math:`\gamma(o) = \tfrac12\operatorname{Var}(y_i - y_{i+o})
= \Sigma[0] - \Sigma[o]` for the noise, with each variance read as :math:`(\operatorname{median}|y_i -
y_{i+o}|/0.6745)^2`, and the level :math:`\Sigma[0]` read beyond the noise's range.

:func:`estimate_poisson_gaussian` reads a variance that is affine in the signal, :math:`\gamma x + \sigma^2`,
from the same coefficients grouped by the local mean (a binned, robust version of Foi et al. 2008).

References: D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage",
Biometrika 81(3), 425–455, 1994. N. Cressie and D. M. Hawkins, "Robust estimation of the variogram",
Mathematical Geology 12(2), 115–125, 1980. A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical
Poissonian-Gaussian noise modeling and fitting for single-image raw-data", IEEE TIP 17(10), 1737–1754, 2008.

Example:
    >>> import torch
    >>> from selfinv.noise import estimate_sigma
    >>> g = torch.Generator().manual_seed(0)
    >>> y = 0.5 + 0.1 * torch.randn(2, 1, 128, 128, generator=g)   # a flat image + noise of level 0.1
    >>> [round(s, 2) for s in estimate_sigma(y).tolist()]
    [0.1, 0.1]
"""

from __future__ import annotations

import math

import torch

__all__ = ["MAD_TO_SIGMA", "estimate_covariance", "estimate_poisson_gaussian", "estimate_sigma"]

#: :math:`\Phi^{-1}(3/4)`: the median of :math:`|Z|`, :math:`Z \sim \mathcal N(0, 1)`
MAD_TO_SIGMA = 0.6744897501960817


def _details(y: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K) finest Haar details and (B, K) booleans: the block has every entry measured."""
    b = y.shape[0]
    ones = torch.ones_like(y) if mask is None else mask.expand(y.shape).to(y.dtype)
    if y.ndim == 2:  # (B, n) signals: pairs
        n = y.shape[1] // 2 * 2
        y, ones = y[:, :n], ones[:, :n]
        d = (y[:, 0::2] - y[:, 1::2]) / math.sqrt(2)
        ok = (ones[:, 0::2] > 0) & (ones[:, 1::2] > 0)
        return d.reshape(b, -1), ok.reshape(b, -1)
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    y, ones = y[..., :h, :w], ones[..., :h, :w]
    d = (y[..., 0::2, 0::2] - y[..., 0::2, 1::2] - y[..., 1::2, 0::2] + y[..., 1::2, 1::2]) / 2
    ok = (ones[..., 0::2, 0::2] * ones[..., 0::2, 1::2] * ones[..., 1::2, 0::2] * ones[..., 1::2, 1::2]) > 0
    return d.reshape(b, -1), ok.reshape(b, -1)


@torch.no_grad()
def estimate_sigma(y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The noise standard deviation of each sample, :math:`\operatorname{median}|d|/0.6745` (module docstring), (B,).

    Args:
        y: (B, n) signals or (B, ..., H, W) images (every channel and leading axis pooled); complex
            entries count their real and imaginary parts as two coefficients (σ per real degree of freedom).
        mask: optional 0/1 tensor broadcastable to ``y``: only blocks whose entries are all measured count
            (zero-filled entries of inpainting or undersampled MRI are not noise).

    Returns:
        (B,) float64 estimates; NaN for a sample with no complete block (too small, or masked out).
    """
    if not isinstance(y, torch.Tensor) or y.ndim < 2:
        raise ValueError(f"estimate_sigma: y must be a (B, n) or (B, ..., H, W) tensor, got {getattr(y, 'shape', y)}")
    if y.ndim >= 3 and (y.shape[-1] < 2 or y.shape[-2] < 2) or y.ndim == 2 and y.shape[1] < 2:
        raise ValueError(f"estimate_sigma: needs at least 2 entries along each of the last axes, got {tuple(y.shape)}")
    y = y.detach()
    if y.is_complex():
        y = torch.stack([y.real, y.imag], 1)
        mask = None if mask is None else mask.unsqueeze(1)
    d, ok = _details(y.to(torch.float64), mask)
    if bool(ok.all()):
        return d.abs().median(1).values / MAD_TO_SIGMA
    out = torch.full((y.shape[0],), float("nan"), dtype=torch.float64, device=y.device)
    for i in range(y.shape[0]):  # samples may keep different numbers of blocks
        vals = d[i][ok[i]]
        if vals.numel():
            out[i] = vals.abs().median() / MAD_TO_SIGMA
    return out


def _robust_var(values: torch.Tensor) -> torch.Tensor:
    return (values.abs().median() / MAD_TO_SIGMA) ** 2


@torch.no_grad()
def estimate_covariance(y: torch.Tensor, radius: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The covariance kernel :math:`\Sigma[o]`, :math:`|o|_\infty \le r`, of stationary noise whose correlations vanish beyond ``radius``.

    From the robust variogram of the whole batch (module docstring): :math:`\hat\gamma(o) =
    \tfrac12(\operatorname{median}|y_i - y_{i+o}|/0.6745)^2` over every pair of measured pixels at offset
    :math:`o` (channels pooled), the level :math:`\hat\Sigma[0]` from the diagonal Haar detail at spacing
    :math:`s = r + 1`, :math:`(y_{00} - y_{0s} - y_{s0} + y_{ss})/2` (its noise variance is exactly
    :math:`\Sigma[0]`: every pair is beyond the range; it cancels bilinear signal), robustly as above, and
    :math:`\hat\Sigma[o] = \hat\Sigma[0] - \hat\gamma(o)`. Texture adds to both (the level a little more
    than the near offsets' variogram): expect the level within some 10–30 % above the truth on natural
    images. The result is symmetric but not necessarily positive semi-definite.

    Args:
        y: (B, ..., H, W) images (real) with H, W > r + 1.
        radius: r >= 0.
        mask: optional 0/1 tensor broadcastable to ``y``: pairs with an unmeasured pixel are left out.

    Returns:
        (2r+1, 2r+1) float64, offset 0 at the centre; NaN where no pair was measured.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> e = torch.randn(4, 1, 130, 130, generator=g, dtype=torch.float64)
        >>> n = 0.1 * (e[..., 1:-1, 1:-1] + e[..., 1:-1, 2:]) / 2 ** 0.5   # Σ[0] = 0.01, Σ[(0, ±1)] = 0.005
        >>> c = estimate_covariance(n, 1)
        >>> [round(v, 3) for v in (c[1, 1].item(), c[1, 2].item(), c[1, 0].item())], abs(c[0, 1].item()) < 1e-3
        ([0.01, 0.005, 0.005], True)
    """
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"estimate_covariance: radius must be a non-negative integer, got {radius}")
    if not isinstance(y, torch.Tensor) or y.ndim < 3 or y.is_complex():
        raise ValueError(f"estimate_covariance: y must be real (B, ..., H, W) images, got {getattr(y, 'shape', y)}")
    if min(y.shape[-2:]) <= radius + 1:
        raise ValueError(f"estimate_covariance: images of {tuple(y.shape[-2:])} are too small for radius {radius}")
    y = y.detach().to(torch.float64)
    ones = torch.ones_like(y) if mask is None else mask.expand(y.shape).to(torch.float64)
    h, w = y.shape[-2:]

    def gamma(dy: int, dx: int) -> torch.Tensor:  # dy >= 0
        a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        b = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        diff = y[..., a[0], a[1]] - y[..., b[0], b[1]]
        ok = (ones[..., a[0], a[1]] * ones[..., b[0], b[1]]) > 0
        vals = diff[ok]
        return _robust_var(vals) / 2 if vals.numel() else torch.tensor(float("nan"), dtype=torch.float64)

    # the level: the diagonal Haar detail at spacing s = r + 1, (y_00 - y_0s - y_s0 + y_ss)/2, whose noise
    # variance is exactly Σ[0] (its pairs are all beyond the range) and which cancels bilinear signal
    s = radius + 1
    corners = [(slice(0, h - s), slice(0, w - s)), (slice(0, h - s), slice(s, w)), (slice(s, h), slice(0, w - s)),
               (slice(s, h), slice(s, w))]
    d = (y[..., corners[0][0], corners[0][1]] - y[..., corners[1][0], corners[1][1]]
         - y[..., corners[2][0], corners[2][1]] + y[..., corners[3][0], corners[3][1]]) / 2
    ok = torch.stack([ones[..., a, b] for a, b in corners]).prod(0) > 0
    level = _robust_var(d[ok]) if bool(ok.any()) else torch.tensor(float("nan"), dtype=torch.float64)
    k = 2 * radius + 1
    out = torch.empty(k, k, dtype=torch.float64)
    for dy in range(0, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx < 0:
                continue
            value = level if dy == dx == 0 else level - gamma(dy, dx)
            out[radius + dy, radius + dx] = out[radius - dy, radius - dx] = value
    return out.to(y.device)


@torch.no_grad()
def estimate_poisson_gaussian(y: torch.Tensor, mask: torch.Tensor | None = None, bins: int = 16) -> tuple[float, float]:
    r"""The gain and level :math:`(\hat\gamma, \hat\sigma^2)` of noise of variance :math:`\gamma x + \sigma^2`, from the whole batch.

    Every 2×2 block gives its diagonal Haar coefficient :math:`d` (noise variance :math:`\approx \gamma\bar x +
    \sigma^2` on a smooth block) and its mean :math:`a \approx \bar x`. The blocks are split into ``bins``
    groups of equal size by :math:`a`; each group gives a robust variance :math:`(\operatorname{median}|d| /
    0.6745)^2` at its mean :math:`\bar a`, and a least-squares line through these points, weighted alike,
    gives :math:`(\hat\gamma, \hat\sigma^2)`, each clamped at 0 (the other then refitted alone). The block
    means carry noise too, which flattens the line a little (errors in the variables: the gain is low by
    about the ratio of the noise variance of :math:`a` to the signal's variance, a few percent on natural
    images; the level is high by as much). Meant as a starting point, not a final estimate.

    Args:
        y: (B, ..., H, W) real images (or (B, n) signals, in pairs).
        mask: optional 0/1 tensor broadcastable to ``y`` (blocks with an unmeasured entry are left out).
        bins: the number of groups (fewer if there are few blocks).

    Returns:
        ``(gain, sigma2)`` as floats; ``(nan, nan)`` with no complete block.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.linspace(0.05, 1, 256).repeat(8, 1, 256, 1)          # a ramp: every level of signal
        >>> y = x + (0.05 * x + 0.02**2).sqrt() * torch.randn(x.shape, generator=g)
        >>> gain, sigma2 = estimate_poisson_gaussian(y)
        >>> round(gain, 2), round(sigma2, 3)
        (0.05, 0.002)
    """
    if not isinstance(y, torch.Tensor) or y.ndim < 2 or y.is_complex():
        raise ValueError(f"estimate_poisson_gaussian: y must be real (B, n) or (B, ..., H, W), got {getattr(y, 'shape', y)}")
    y = y.detach().to(torch.float64)
    d, ok = _details(y, mask)
    if y.ndim == 2:
        n = y.shape[1] // 2 * 2
        a = ((y[:, 0:n:2] + y[:, 1:n:2]) / 2).reshape(y.shape[0], -1)
    else:
        h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
        z = y[..., :h, :w]
        a = ((z[..., 0::2, 0::2] + z[..., 0::2, 1::2] + z[..., 1::2, 0::2] + z[..., 1::2, 1::2]) / 4).reshape(y.shape[0], -1)
    d, a = d[ok], a[ok]
    if d.numel() == 0:
        return float("nan"), float("nan")
    order = torch.argsort(a)
    groups = [g for g in torch.tensor_split(order, max(1, min(bins, d.numel() // 8))) if g.numel()]
    means = torch.stack([a[g].mean() for g in groups])
    variances = torch.stack([_robust_var(d[g]) for g in groups])
    A = torch.stack([means, torch.ones_like(means)], 1)
    if len(groups) > 1 and float(means.max() - means.min()) > 0:
        gain, level = torch.linalg.lstsq(A, variances[:, None]).solution[:, 0].tolist()
    else:
        gain, level = 0.0, float(variances.mean())
    if level < 0:  # refit with σ² = 0: the best gain through the origin
        gain, level = float((means * variances).sum() / (means * means).sum().clamp_min(1e-300)), 0.0
    if gain < 0:
        gain, level = 0.0, float(variances.mean())
    return max(gain, 0.0), max(level, 0.0)
