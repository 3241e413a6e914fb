r"""The noise level of white Gaussian noise from the eigenvalues of the patch covariance (Chen, Zhu & Heng 2015).

Every :math:`p \times p` patch of an image is a vector :math:`u_i \in \mathbb R^{m}`, :math:`m = p^2`. Natural
images are redundant: the clean patches live close to a low-dimensional subspace, so the eigenvalues
:math:`\lambda_1 \le \dots \le \lambda_m` of the patch covariance
:math:`\hat\Sigma = \frac1n \sum_i (u_i - \bar u)(u_i - \bar u)^\top` split into a few large ones (signal +
noise) and many that are noise only, each :math:`\approx \sigma^2`. Chen et al. take the largest set of the
smallest eigenvalues whose mean is also their median (the noise eigenvalues are symmetric about
:math:`\sigma^2`; a signal eigenvalue in the set pulls the mean above the median):

.. math::

    k^\star = \max\Big\{k : \#\{j \le k : \lambda_j > \tau_k\} = \#\{j \le k : \lambda_j < \tau_k\}\Big\},
    \qquad \tau_k = \frac1k \sum_{j \le k} \lambda_j, \qquad \hat\sigma = \sqrt{\tau_{k^\star}}.

Unlike the wavelet MAD (:func:`~selfinv.noise.wavelet.estimate_sigma`), whose finest details carry the image's
texture, the eigenvalues discard the directions the texture occupies, so weak noise on textured images is
measured much more accurately (BENCHMARKS.md, "Noise estimation").

Reference: G. Chen, F. Zhu and P. A. Heng, "An efficient statistical method for image noise level estimation",
ICCV 2015, 477–485 (patches of 8×8 pixels taken every 3 pixels, as in the authors' code).

Example:
    >>> import torch
    >>> from selfinv.noise import estimate_sigma_pca
    >>> g = torch.Generator().manual_seed(0)
    >>> y = 0.5 + 0.1 * torch.randn(2, 1, 96, 96, generator=g)
    >>> [round(s, 2) for s in estimate_sigma_pca(y).tolist()]
    [0.1, 0.1]
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["calibration", "estimate_sigma_pca", "patch_geometry"]

#: the largest number of patch entries held at once (the batch is processed in chunks of samples)
_CHUNK = 20_000_000


def patch_geometry(n_images: int, h: int, w: int, patch: int | None = None) -> tuple[int, int]:
    """(patch side, stride): 8×8 patches every 3 pixels (Chen et al.) when an image has enough of them
    (30 per dimension of a patch), else every 2 pixels, else smaller patches and a stride of 1 (the covariance
    needs many more patches than dimensions); ``patch`` forces the side.
    """

    def count(p: int, s: int) -> int:
        return n_images * ((h - p) // s + 1) * ((w - p) // s + 1) if min(h, w) >= p else 0

    sides = [patch] if patch is not None else [8, 7, 6, 5, 4]
    for p in sides:
        for stride in (3, 2):
            if count(p, stride) >= 30 * p * p:
                return p, stride
        if count(p, 1) >= 10 * p * p:
            return p, 1
    p = sides[-1]
    raise ValueError(f"estimate_sigma_pca: images of {h}x{w} ({n_images} per sample) are too small for {p}x{p} patches "
                     f"(need at least {10 * p * p} patches per sample)")


def _patches(y: torch.Tensor, ok: torch.Tensor | None, p: int, s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Patches (B, m, n), whether each is fully measured (B, n) and its gradient energy (B, n)
    :math:`\|D_h u\|^2 + \|D_v u\|^2` (horizontal and vertical differences inside the patch), from images (B, N, H, W)."""
    b, n, h, w = y.shape
    flat = y.reshape(b * n, 1, h, w)
    u = F.unfold(flat, p, stride=s)  # (B·N, m, L)
    m, ell = u.shape[1], u.shape[2]
    u = u.reshape(b, n, m, ell).transpose(1, 2).reshape(b, m, n * ell)
    dh = (flat[..., :, 1:] - flat[..., :, :-1]) ** 2
    dv = (flat[..., 1:, :] - flat[..., :-1, :]) ** 2
    energy = (F.avg_pool2d(dh, (p, p - 1), stride=s) + F.avg_pool2d(dv, (p - 1, p), stride=s)) * p * (p - 1)
    energy = energy.reshape(b, n * ell)
    if ok is None:
        full = torch.ones(b, n * ell, dtype=torch.bool, device=y.device)
    else:
        full = F.unfold(ok.reshape(b * n, 1, h, w).to(y.dtype), p, stride=s).amin(1).reshape(b, n * ell) > 0
    return u, full, energy


def _covariance(u: torch.Tensor, wgt: torch.Tensor) -> torch.Tensor:
    """(B, m, m) covariance of the patches ``u`` (B, m, n) with 0/1 weights (B, n)."""
    wgt = wgt.to(u.dtype)[:, None, :]
    count = wgt.sum(-1, keepdim=True).clamp_min(1)
    c = u - (u * wgt).sum(-1, keepdim=True) / count
    return (c * wgt) @ c.transpose(1, 2) / count


def _chi2_quantile(dof: int, z: float = 2.3263478740408408) -> float:
    r"""The quantile of :math:`\chi^2_{dof}` at the standard normal quantile ``z`` (default 0.99; Wilson–Hilferty)."""
    a = 2 / (9 * dof)
    return dof * (1 - a + z * a**0.5) ** 3


def _chen_level(eig: torch.Tensor) -> torch.Tensor:
    """(B,) :math:`\\tau_{k^\\star}` from ascending eigenvalues (B, m) (module docstring)."""
    m = eig.shape[1]
    k = torch.arange(1, m + 1, device=eig.device)
    tau = eig.cumsum(1) / k.to(eig.dtype)  # (B, m): the mean of the k smallest
    inside = torch.arange(m, device=eig.device)[None, :] < k[:, None]  # [k-1, j]: j among the k smallest
    lam, t = eig[:, None, :], tau[:, :, None]
    balanced = ((lam > t) & inside).sum(-1) == ((lam < t) & inside).sum(-1)  # (B, m), always true for k = 1
    kstar = (balanced * k).argmax(1)
    return tau.gather(1, kstar[:, None])[:, 0]


def _levels(y: torch.Tensor, ok: torch.Tensor | None, p: int, s: int, iterations: int) -> torch.Tensor:
    """(B,) uncalibrated :math:`\\tau_{k^\\star}` of images (B, N, H, W), on the weak-texture patches (module docstring)."""
    b, n, h, w = y.shape
    m = p * p
    # Liu et al.: the gradient energy of a noise-only patch is σ² (tr DᵀD / m) χ²_m, tr DᵀD = 4p(p-1)
    threshold = 4 * p * (p - 1) / m * _chi2_quantile(m)
    per_sample = n * (m + 1) * ((h - p) // s + 1) * ((w - p) // s + 1)
    step = max(1, _CHUNK // per_sample)
    out = []
    for i in range(0, b, step):  # chunks of samples bound the memory of the patch matrix
        u, full, energy = _patches(y[i : i + step], None if ok is None else ok[i : i + step], p, s)
        keep, n_min = full, min(10 * m, u.shape[-1])
        var = None
        for _ in range(iterations + 1):
            new = _chen_level(torch.linalg.eigvalsh(_covariance(u, keep))).clamp_min(0)
            if var is not None and bool(((new - var).abs() <= 1e-4 * var).all()):
                var = new
                break
            var = new
            keep = full & (energy <= threshold * var[:, None])
            few = keep.sum(1) < n_min  # too few weak-texture patches: the n_min smoothest measured ones
            if bool(few.any()):
                e = torch.where(full, energy, torch.full_like(energy, float("inf")))
                kth = e.kthvalue(n_min, dim=1).values
                keep = torch.where(few[:, None], full & (e <= kth[:, None]), keep)
        out.append(var)
    return torch.cat(out)


@functools.lru_cache(maxsize=64)
def calibration(n: int, h: int, w: int, p: int, s: int, iterations: int) -> float:
    """The mean of :math:`\\tau_{k^\\star}` for unit white noise on images (N, H, W) = (n, h, w) with p×p patches
    every s pixels: the finite-sample bias of the eigenvalue rule (the noise eigenvalues spread as Marchenko–Pastur
    and the rule drops their upper tail: 1–5 % low), measured once per geometry on up to a million seeded pixels (to about 0.5 %)."""
    reps = max(4, min(32, 1_000_000 // (n * h * w)))
    noise = torch.randn(reps, n, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return float(_levels(noise, None, p, s, iterations).mean())


@torch.no_grad()
def estimate_sigma_pca(y: torch.Tensor, mask: torch.Tensor | None = None, patch: int | None = None,
                       iterations: int = 10) -> torch.Tensor:
    r"""The white-noise level :math:`\hat\sigma = \sqrt{\tau_{k^\star} / c}` of each sample (module docstring), (B,) float64.

    :math:`c` is the rule's mean on unit white noise of the same geometry (:func:`calibration`), so that
    :math:`\hat\sigma^2` is unbiased on pure noise.

    Args:
        y: (B, ..., H, W) images; every channel and leading axis (a volume's slices) of a sample is pooled into
            one patch population. Complex entries count their real and imaginary parts as two images.
        mask: optional 0/1 tensor broadcastable to ``y``: only patches whose entries are all measured count.
        patch: the patch side (default: 8, smaller for small images, :func:`patch_geometry`).
        iterations: the most rounds of patch selection (they stop when the level no longer moves).

    Returns:
        (B,) float64; NaN for a sample without a fully measured patch.
    """
    if not isinstance(y, torch.Tensor) or y.ndim < 3:
        raise ValueError(f"estimate_sigma_pca: y must be (B, ..., H, W) images, got {getattr(y, 'shape', y)}")
    y = y.detach()
    ok = None if mask is None else (mask.expand(y.shape) > 0)
    if y.is_complex():
        y = torch.stack([y.real, y.imag], 1)
        ok = None if ok is None else torch.stack([ok, ok], 1)
    b, h, w = y.shape[0], y.shape[-2], y.shape[-1]
    y = y.to(torch.float64).reshape(b, -1, h, w)
    ok = None if ok is None else ok.reshape(b, -1, h, w)
    p, s = patch_geometry(y.shape[1], h, w, patch)
    sigma = (_levels(y, ok, p, s, iterations) / calibration(y.shape[1], h, w, p, s, iterations)).sqrt()
    if ok is not None:
        measured = F.unfold(ok.reshape(-1, 1, h, w).to(torch.float64), p, stride=s).amin(1).reshape(b, -1).amax(1) > 0
        sigma = torch.where(measured, sigma, torch.full_like(sigma, float("nan")))
    return sigma
