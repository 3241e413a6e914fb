r"""Structure detection: a pixel-diagonal or Fourier-diagonal averaged normal operator, certified by probes.

:func:`_structure` finds :math:`N = \operatorname{diag}(d)` (masks) or a translation-invariant :math:`N`
(blur, MRI) and confirms it on random probes to ``STRUCTURE_RTOL``; the rank then follows exactly from
:math:`d` or from the per-frequency blocks (:func:`_fourier_rank`). For permutation transforms
:func:`_permuted_average` averages the structure of :math:`\mathbb{E}_i A_i^\top A_i` over the group by index
gathers, without operator calls.
"""

from __future__ import annotations

import torch

from selfinv import _random
from selfinv.theory.normal import _CHUNK, _AveragedNormal, _count
from selfinv.transforms import Product, Shift, Transform

#: relative accuracy to which a probe must confirm a detected structure (diagonal / translation invariant)
STRUCTURE_RTOL = 1e-10
_SHIFT = Shift()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Every probe agrees with the structured prediction to STRUCTURE_RTOL (relative to its norm)."""
    err = (a - b).flatten(1).norm(dim=1)
    ref = a.flatten(1).norm(dim=1)
    return bool((err <= STRUCTURE_RTOL * ref).all()) and bool(torch.isfinite(err).all())


def _structure(N: _AveragedNormal, dtype, generator, n_probes: int = 2):
    """Detect and certify with random probes: ("pixel", d) for N = diag(d), ("fourier", K) for a
    translation-invariant N with kernels K[c] = N delta_c (C_in, C_out, H, W), else (None, None)."""
    shape, dev = N.x_shape, N.device
    z = _random.randn((n_probes, *shape), generator=generator, dtype=dtype, device=dev)
    out = N(torch.cat([torch.ones(1, *shape, dtype=dtype, device=dev), z]))
    d, Nz = out[0], out[1:]
    if _close(Nz, d * z):
        return "pixel", d
    if len(shape) == 3:
        c = shape[0]
        imp = torch.zeros(c, *shape, dtype=dtype, device=dev)
        imp[torch.arange(c), torch.arange(c), 0, 0] = 1
        kernel = N(imp)
        lam = torch.fft.fft2(kernel).permute(2, 3, 1, 0)  # (H, W, C_out, C_in)
        pred = torch.fft.ifft2(torch.einsum("hwoi,pihw->pohw", lam, torch.fft.fft2(z)))
        if _close(Nz, pred if dtype.is_complex else pred.real):
            return "fourier", kernel
    return None, None


def _fourier_rank(kernel: torch.Tensor, n: int, tol):
    lam = torch.fft.fft2(kernel).permute(2, 3, 1, 0)  # per-frequency (C_out, C_in) blocks
    eig = torch.linalg.eigvalsh((lam + lam.mH) / 2)
    return (*_count(eig.flatten(), n, tol), "fourier-diagonal")


def _affine(perm: torch.Tensor, h: int, w: int) -> bool:
    """Whether every index map perm (b, H, W) (output pixel -> source flat index) is affine modulo (H, W)."""
    sy, sx = perm // w, perm % w
    i = torch.arange(h, device=perm.device)[:, None]
    j = torch.arange(w, device=perm.device)[None, :]
    for s, m in ((sy, h), (sx, w)):
        s0 = s[:, :1, :1]
        di = (s[:, 1:2, :1] - s0) if h > 1 else torch.zeros_like(s0)
        dj = (s[:, :1, 1:2] - s0) if w > 1 else torch.zeros_like(s0)
        if not bool((((s0 + di * i + dj * j) - s) % m == 0).all()):
            return False
    return True


def _permuted_average(N: _AveragedNormal, kind: str, data: torch.Tensor) -> torch.Tensor | None:
    r"""The structure of :math:`\mathbb{E}_g P_g^\top N_0 P_g` for permutations :math:`P_g`, without operator calls.

    pixel: :math:`P_g^\top \operatorname{diag}(d) P_g = \operatorname{diag}(P_g^\top d)` for any permutation.
    fourier: for affine lattice maps (shifts, flips, 90° rotations) the average stays translation
    invariant; its kernel :math:`\mathbb{E}_g P_g^\top N_0 \delta_{p_g}` uses :math:`N_0\delta_{p_g}` = the
    kernel of :math:`N_0` rolled to :math:`p_g`, the pixel where :math:`P_g` sends the impulse. Returns None
    when a map is not affine. Over a whole product group the average is nested, factor by factor (the
    last factor innermost), so the cost is the sum of the factors' sizes, not their product; a shift
    factor costs one FFT (pixel) or nothing (a translation-invariant operator commutes with shifts).
    """
    images = data[None] if kind == "pixel" else data  # (k, *shape)
    T = N.transform
    if N.full_group and isinstance(T, Product):
        stages = [(t, t.elements(N.x_shape[-2:])) for t in reversed(T.transforms)]
    else:
        stages = [(T, N.tparams)]
    for t, params in stages:
        images = _average_stage(t, params.to(N.device), kind, images)
        if images is None:
            return None
    return images[0] if kind == "pixel" else images


def _average_stage(T: Transform, P: torch.Tensor, kind: str, images: torch.Tensor) -> torch.Tensor | None:
    k, shape = images.shape[0], images.shape[1:]
    h, w = shape[-2:]
    if isinstance(T, Shift):
        if kind == "fourier":
            return images
        # mean_g d(p + s_g): a circular cross-correlation with the histogram of the shifts
        hist = torch.zeros(h, w, dtype=torch.float64, device=images.device)
        hist.index_put_((P[:, 0].long() % h, P[:, 1].long() % w), torch.ones(len(P), dtype=torch.float64, device=images.device), accumulate=True)
        out = torch.fft.ifft2(torch.fft.fft2(images) * torch.fft.fft2(hist / len(P)).conj())
        return out if images.is_complex() else out.real
    out = torch.zeros_like(images)
    index = torch.arange(h * w, dtype=torch.float64, device=images.device).reshape(1, 1, h, w)
    step = max(1, _CHUNK // (images[0].numel() * k))
    for start in range(0, len(P), step):
        p = P[start : start + step]
        b = len(p)
        x = images[None].expand(b, *images.shape).reshape(b * k, *shape)
        if kind == "fourier":
            perm = T.apply(index.expand(b, 1, h, w), p)[:, 0].long()
            if not _affine(perm, h, w):
                return None
            pos = perm.flatten(1).argmin(1)  # where the impulse at pixel 0 goes
            roll = torch.stack([pos // w, pos % w], dim=1).to(torch.float64).repeat_interleave(k, 0)
            x = _SHIFT.apply(x, roll)
        out += T.adjoint(x, p.repeat_interleave(k, 0)).reshape(b, k, *shape).sum(0)
    return out / len(P)
