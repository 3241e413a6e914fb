r"""Poisson-Gaussian noise, variance :math:`\gamma x + \sigma^2`, fitted per sample from its local means and variances.

A per-sample, vectorised version of the binned fit of Foi, Trimeche, Katkovnik & Egiazarian (2008). Every
non-overlapping 2×2 block :math:`k` gives

* its diagonal Haar detail :math:`d_k = (y_{00} - y_{01} - y_{10} + y_{11})/2`, whose noise variance is the mean
  of its four pixels' variances, :math:`\operatorname{Var} d_k = \gamma \bar x_k + \sigma^2` (exactly: the
  transform is orthonormal), and which cancels every signal of the form :math:`f(i) + g(j)` (horizontal and
  vertical edges, ramps);
* its mean :math:`a_k = \bar y_k`, an unbiased reading of :math:`\bar x_k`;
* the mean :math:`b_k` of its 8 neighbouring blocks' means and their smoothness
  :math:`c_k = g_x^2 + g_y^2 + (g_{\nearrow}^2 + g_{\searrow}^2)/2`, the squared differences of opposite
  neighbours (four independent :math:`\mathcal N(0, v_k/2)` for noise alone).

**Smooth blocks only.** A block is kept when :math:`c_k \le 2\,\hat v(b_k)` and its own horizontal and vertical
Haar details satisfy :math:`h_k^2 + v_k^2 \le 3\,\hat v(b_k)` (:math:`\hat v` the current fit; about 2/3 and
78 % of the noise-only blocks pass): blocks on an edge or texture at the finest and the next scale are left out,
as Foi et al. do with their edge detector. Both tests read noise that is independent of :math:`d_k` (the
neighbours; the block's other, orthogonal details), so they select blocks without biasing their variance.

**Clipping.** A sample whose largest (smallest) value is taken by at least 0.1 % of its pixels is saturated
(at its floor): blocks within one block of such a pixel and blocks whose level lies within
:math:`2\sqrt{\hat v}` of the clip are left out (their variance is truncated; when the noise is so strong that
this leaves fewer than 25 blocks a bin, only the former).

**Bins and robust variances.** The kept blocks are split into bins of equal count by :math:`b_k`; bin
:math:`j` gives :math:`n_j` blocks, a level :math:`m_j = \operatorname{mean} a_k` and a robust variance
:math:`v_j = \operatorname{mean}\{d_k^2 : |d_k| < 3.5 s_j\} / 0.9939`, with :math:`s_j = \operatorname{median}
|d_k| / 0.6745` (the trimmed second moment of a Gaussian, rescaled).

**No errors in the variables.** Binning on a noisy level and reading the level from the same noisy values
biases the line (regression to the mean: Foi et al. correct it in their likelihood). Here the bins are chosen by
:math:`b_k`, whose noise is independent of block :math:`k`, and the level is read from :math:`a_k`:
:math:`\mathbb E[a_k \mid \text{bin}] = \mathbb E[\bar x_k \mid \text{bin}]` and
:math:`\mathbb E[v_j] = \gamma\,\mathbb E[\bar x_k \mid \text{bin}] + \sigma^2`, so the line is unbiased.

**The fit.** Weighted least squares of :math:`v_j = \gamma m_j + \sigma^2` with weights
:math:`n_j / \hat v_j^2` (:math:`\operatorname{Var} v_j \approx 2 v_j^2 / n_j`), iterated; the standard errors
are those of the weighted fit, scaled up by the reduced :math:`\chi^2` when the bins scatter more than their
noise (texture, a model that does not fit). The selection and the fit alternate three times.

Reference: A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical Poissonian-Gaussian noise modeling
and fitting for single-image raw-data", IEEE Trans. Image Process. 17(10), 1737–1754, 2008.

Example:
    >>> import torch
    >>> from selfinv.noise import PoissonGaussian, fit_poisson_gaussian
    >>> x = torch.linspace(0.05, 1, 256).repeat(2, 1, 256, 1)        # a ramp: every level of signal
    >>> y = PoissonGaussian(0.01, 0.02)(x, generator=torch.Generator().manual_seed(0))
    >>> fit = fit_poisson_gaussian(y)
    >>> [round(g, 3) for g in fit.gain.tolist()], [round(s, 2) for s in fit.sigma2.sqrt().tolist()]
    ([0.01, 0.01], [0.02, 0.02])
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from selfinv.noise.wavelet import MAD_TO_SIGMA

__all__ = ["PoissonGaussianFit", "fit_poisson_gaussian"]

#: smooth blocks: c / (v/2) <= 4 (about 2/3 of the noise-only blocks pass: c / (v/2) is χ²₂ + χ²₂/2, mean 3), ...
_SMOOTH = 4.0
#: ... and a flat block itself: its horizontal and vertical details, squared, <= 3 v (χ²₂: 78 % pass)
_FLAT = 3.0
#: trimming of the bin variances (in robust standard deviations) and the variance kept by it for a Gaussian
_TRIM, _TRIM_KEEP = 4.0, 0.9989292
#: the share of pixels at the extreme value above which a sample counts as clipped there
_CLIPPED_SHARE = 1e-3


class PoissonGaussianFit(NamedTuple):
    """The per-sample fit: (B,) float64 tensors; the ``*_se`` are standard errors, ``low``/``high`` the lowest and
    highest signal level of the bins (the range the line was fitted on); ``bins`` the number of bins."""

    gain: torch.Tensor
    sigma2: torch.Tensor
    gain_se: torch.Tensor
    sigma2_se: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    bins: int


def _blocks(y: torch.Tensor, ok: torch.Tensor | None):
    """Block means, details, neighbour means, smoothness, validity (all (B, N, h', w') on the interior blocks)."""
    b, n, h, w = y.shape
    z = y[..., : h // 2 * 2, : w // 2 * 2]
    y00, y01, y10, y11 = z[..., 0::2, 0::2], z[..., 0::2, 1::2], z[..., 1::2, 0::2], z[..., 1::2, 1::2]
    a = (y00 + y01 + y10 + y11) / 4
    d = (y00 - y01 - y10 + y11) / 2
    e = ((y00 + y01 - y10 - y11) ** 2 + (y00 - y01 + y10 - y11) ** 2) / 4  # the block's other two details, squared
    s3 = F.avg_pool2d(a.reshape(b * n, 1, *a.shape[-2:]), 3, stride=1).reshape(b, n, a.shape[-2] - 2, a.shape[-1] - 2)
    nb = (9 * s3 - a[..., 1:-1, 1:-1]) / 8
    gx = a[..., 1:-1, 2:] - a[..., 1:-1, :-2]
    gy = a[..., 2:, 1:-1] - a[..., :-2, 1:-1]
    g1 = a[..., 2:, 2:] - a[..., :-2, :-2]
    g2 = a[..., 2:, :-2] - a[..., :-2, 2:]
    c = gx**2 + gy**2 + (g1**2 + g2**2) / 2
    if ok is None:
        good = torch.ones_like(nb, dtype=torch.bool)
    else:
        o = ok[..., : h // 2 * 2, : w // 2 * 2].to(y.dtype)
        full = F.avg_pool2d(o.reshape(b * n, 1, *o.shape[-2:]), 2) > 0.999  # the block is measured
        good = (-F.max_pool2d(-full.to(y.dtype), 3, stride=1) > 0.5).reshape(nb.shape)  # and its neighbours
    return a[..., 1:-1, 1:-1], d[..., 1:-1, 1:-1], e[..., 1:-1, 1:-1], nb, c, good


def _clipped(y: torch.Tensor, ok: torch.Tensor | None):
    """Per sample: (hi, lo) clip levels (±inf when not clipped) and (B, N, h', w') blocks near a clipped pixel."""
    b, n, h, w = y.shape
    flat = y.reshape(b, -1)
    if ok is not None:
        m = ok.reshape(b, -1)
        hi = torch.where(m, flat, torch.full_like(flat, -float("inf"))).amax(1)
        lo = torch.where(m, flat, torch.full_like(flat, float("inf"))).amin(1)
    else:
        hi, lo = flat.amax(1), flat.amin(1)
    tol = 1e-9 * (hi - lo).abs().clamp_min(1e-30)
    at_hi = (flat >= (hi - tol)[:, None]).reshape(y.shape)
    at_lo = (flat <= (lo + tol)[:, None]).reshape(y.shape)
    share = flat.shape[1]
    sat_hi = at_hi.reshape(b, -1).sum(1) >= max(2, _CLIPPED_SHARE * share)
    sat_lo = at_lo.reshape(b, -1).sum(1) >= max(2, _CLIPPED_SHARE * share)
    bad = (at_hi & sat_hi[:, None, None, None]) | (at_lo & sat_lo[:, None, None, None])
    bad = bad[..., : h // 2 * 2, : w // 2 * 2].to(y.dtype).reshape(b * n, 1, h // 2 * 2, w // 2 * 2)
    near = F.max_pool2d(F.max_pool2d(bad, 2), 3, stride=1) > 0  # a clipped pixel in the block or its neighbours
    inf = torch.full_like(hi, float("inf"))
    return torch.where(sat_hi, hi, inf), torch.where(sat_lo, lo, -inf), near.reshape(b, n, *near.shape[-2:])


def _wls(m: torch.Tensor, v: torch.Tensor, wgt: torch.Tensor):
    """Weighted least squares of v = γ m + s² per sample (rows (B, J), weights 0 for empty bins): (γ, s², cov)."""
    sw = wgt.sum(1)
    swm, swmm = (wgt * m).sum(1), (wgt * m * m).sum(1)
    swv, swmv = (wgt * v).sum(1), (wgt * m * v).sum(1)
    det = (sw * swmm - swm**2).clamp_min(1e-300)
    gain = (sw * swmv - swm * swv) / det
    level = (swmm * swv - swm * swmv) / det
    return gain, level, torch.stack([sw / det, swmm / det], 1)  # the variances of (γ, s²) for unit weights


@torch.no_grad()
def fit_poisson_gaussian(y: torch.Tensor, mask: torch.Tensor | None = None, bins: int = 16,
                         iterations: int = 3) -> PoissonGaussianFit:
    r"""The gain :math:`\hat\gamma` and level :math:`\hat\sigma^2` of each sample (module docstring), with their standard errors.

    Args:
        y: real (B, ..., H, W) images; the channels and leading axes of a sample (a volume's slices) are pooled.
        mask: optional 0/1 tensor broadcastable to ``y`` (blocks with an unmeasured entry or neighbour are left out).
        bins: the number of bins of the local level (fewer when a sample has few blocks: at least 50 per bin).
        iterations: rounds of block selection and fitting.

    Returns:
        :class:`PoissonGaussianFit` of (B,) float64 tensors; NaN for a sample with too few smooth blocks. The
        gain may come out <= 0 (no signal-dependent noise) and the level < 0 (pure Poisson): clamp as needed.
    """
    if not isinstance(y, torch.Tensor) or y.ndim < 3 or y.is_complex():
        raise ValueError(f"fit_poisson_gaussian: y must be real (B, ..., H, W) images, got {getattr(y, 'shape', y)}")
    if min(y.shape[-2:]) < 8:
        raise ValueError(f"fit_poisson_gaussian: images of {tuple(y.shape[-2:])} are too small (need at least 8x8)")
    y = y.detach().to(torch.float64)
    b, h, w = y.shape[0], y.shape[-2], y.shape[-1]
    ok = None if mask is None else (mask.expand(y.shape) > 0).reshape(b, -1, h, w)
    y = y.reshape(b, -1, h, w)
    a, d, e, nb, c, good = _blocks(y, ok)
    hi, lo, near = _clipped(y, ok)
    good = good & ~near
    a, d, e, nb, c, good = (t.reshape(b, -1) for t in (a, d, e, nb, c, good))
    nbins = int(max(2, min(bins, int(good.sum(1).min()) // 50)))
    q = torch.linspace(0, 1, nbins + 1, dtype=torch.float64, device=y.device)
    gain = torch.zeros(b, dtype=torch.float64, device=y.device)
    level = torch.full_like(gain, float("nan"))
    cov = torch.full((b, 2), float("nan"), dtype=torch.float64, device=y.device)
    nan = torch.full_like(d, float("nan"))
    v_bins = torch.zeros(b, nbins, dtype=torch.float64, device=y.device)
    last: tuple = ()
    for it in range(iterations + 1):
        if it == 0:  # first round: every block; afterwards the smooth ones, away from the clip levels
            keep = good
        else:
            floor = 1e-6 * v_bins.nan_to_num(0).amax(1, keepdim=True).clamp_min(1e-300)
            v_hat = torch.maximum(gain[:, None] * nb + level[:, None], floor)
            margin = 2 * v_hat.sqrt()
            smooth = good & (c <= _SMOOTH / 2 * v_hat) & (e <= _FLAT * v_hat)
            keep = smooth & (nb < hi[:, None] - margin) & (nb > lo[:, None] + margin)
            # noise so strong that the margins leave almost nothing: keep the blocks without a clipped neighbour
            keep = torch.where((keep.sum(1) < 25 * nbins)[:, None], smooth, keep)
        edges = torch.nanquantile(torch.where(keep, nb, nan), q, dim=1).T  # (B, J+1)
        rows_m, rows_v, rows_n = [], [], []
        for j in range(nbins):  # a loop over the bins, vectorised over the batch
            upper = nb <= edges[:, j + 1 : j + 2] if j == nbins - 1 else nb < edges[:, j + 1 : j + 2]
            sel = keep & (nb >= edges[:, j : j + 1]) & upper
            n_j = sel.sum(1).to(torch.float64)
            s = torch.nanmedian(torch.where(sel, d.abs(), nan), dim=1).values / MAD_TO_SIGMA
            if it > 0:  # counts too low for a median (mostly-zero details): the fitted level bounds the scale
                s = torch.maximum(s, (gain * torch.where(sel, a, 0 * a).sum(1) / n_j.clamp_min(1) + level).clamp_min(0).sqrt())
            inner = sel & (d.abs() < _TRIM * s[:, None])
            v = (torch.where(inner, d * d, 0 * d).sum(1) / inner.sum(1).clamp_min(1)) / _TRIM_KEEP
            rows_m.append(torch.where(sel, a, 0 * a).sum(1) / n_j.clamp_min(1))
            rows_v.append(v)
            rows_n.append(n_j)
        m_bins, v_bins, n_bins = torch.stack(rows_m, 1), torch.stack(rows_v, 1), torch.stack(rows_n, 1)
        usable = (n_bins >= 8) & torch.isfinite(v_bins)
        v_fit = v_bins if it == 0 else (gain[:, None] * m_bins + level[:, None])
        for _ in range(3):  # iteratively reweighted: Var v_j ≈ 2 v_j² / n_j
            scale = v_fit.clamp_min(1e-3 * v_bins.nan_to_num(0).amax(1, keepdim=True).clamp_min(1e-300))
            wgt = torch.where(usable, n_bins / (2 * scale**2), torch.zeros_like(scale))
            gain, level, cov = _wls(m_bins.nan_to_num(0), v_bins.nan_to_num(0), wgt)
            v_fit = gain[:, None] * m_bins + level[:, None]
        state = (gain, level, cov, wgt, m_bins, v_bins, v_fit, usable)
        if last:  # a selection that leaves a sample fewer than 2 bins: it keeps its previous round
            lost = usable.sum(1) < 2
            state = tuple(torch.where(lost.reshape(-1, *[1] * (new.ndim - 1)), old, new)
                          for new, old in zip(state, last, strict=True))
        gain, level, cov, wgt, m_bins, v_bins, v_fit, usable = state
        last = state
    resid = torch.where(usable, wgt * (v_bins.nan_to_num(0) - v_fit.nan_to_num(0)) ** 2, torch.zeros_like(wgt))
    dof = (usable.sum(1) - 2).clamp_min(1)
    inflate = (resid.sum(1) / dof).clamp_min(1)
    se = (cov * inflate[:, None]).sqrt()
    few = usable.sum(1) < 2
    nanb = torch.full_like(gain, float("nan"))
    low = torch.where(usable, m_bins, torch.full_like(m_bins, float("inf"))).amin(1)
    high = torch.where(usable, m_bins, torch.full_like(m_bins, -float("inf"))).amax(1)
    return PoissonGaussianFit(*(torch.where(few, nanb, t) for t in (gain, level, se[:, 0], se[:, 1], low, high)), nbins)
