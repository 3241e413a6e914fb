r"""Coil sensitivity maps from the fully sampled k-space centre: ESPIRiT (:func:`espirit_maps`).

ESPIRiT (Uecker, Lai, Murphy, Virtue, Elad, Pauly, Vasanawala & Lustig, "ESPIRiT — an eigenvalue approach to
autocalibrating parallel MRI: where SENSE meets GRAPPA", MRM 71:990–1001, 2014) finds the maps as the
eigenvectors of eigenvalue 1 of an image-space operator built from the calibration data. The calibration region
(a fully sampled ``calib_size`` square around the k-space centre) gives the block-Hankel calibration matrix
:math:`\mathcal{A}` of all ``kernel_size`` × ``kernel_size`` × C patches; its right singular vectors with
singular value above ``threshold`` × the largest span the null-space complement, i.e. the k-space kernels
:math:`V_\parallel`. In image space their projection becomes, at every pixel r, a C × C matrix
:math:`G(r)`; the maps :math:`s(r)` solve :math:`G(r)\, s(r) = s(r)` and are found by power iteration (unit
norm over the coils at every pixel). Pixels whose top eigenvalue is below ``crop`` (outside the object, where
there is no signal) get zero maps, so the root-sum-of-squares :math:`\sqrt{\sum_c |s_c(r)|^2}` is 1 inside the
object and 0 outside. The phase is relative to the first coil.

The computation is sigpy's ``sigpy.mri.app.EspiritCalib`` (one set of maps; optional dependency, ``pip install
selfinv[mri]``), imported when called, so that ``import selfinv`` never loads numba. It runs on the CPU, one
sample at a time (a one-off preprocessing step, not a training hot path).

Example:
    >>> import torch
    >>> from selfinv.physics import MultiCoilMRI, espirit_maps, fft2c
    >>> h = w = 32
    >>> yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    >>> x = ((xx**2 + yy**2) < 0.6).to(torch.complex64)[None, None]           # a disc
    >>> centres = [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)]
    >>> true = torch.stack([torch.exp(-((xx - a) ** 2 + (yy - b) ** 2) / 2) * torch.exp(1j * a * yy) for a, b in centres])
    >>> true = (true / true.abs().pow(2).sum(0).sqrt())[None].to(torch.complex64)
    >>> k = MultiCoilMRI(torch.ones(h, w), true).A(x)
    >>> maps = espirit_maps(k, calib_size=16)
    >>> maps.shape, round(float((maps.abs().pow(2).sum(1).sqrt()[0][x[0, 0].abs() > 0]).mean()), 3)
    (torch.Size([1, 4, 32, 32]), 1.0)
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["calibration_size", "espirit_maps"]

#: the calibration side BART's ``ecalib`` and sigpy use by default (lowered to the fully sampled region's size)
DEFAULT_CALIB = 24


def calibration_size(mask: torch.Tensor) -> torch.Tensor:
    """The side of the largest square around the k-space centre (index (H // 2, W // 2), as :func:`fft2c` puts
    it) that ``mask`` (B, 1|C, H, W) samples completely, in every channel: (B,) int64, 0 when the centre is not
    sampled.

    Example:
        >>> m = torch.zeros(1, 1, 16, 16); m[..., 5:12, 4:13] = 1
        >>> calibration_size(m).tolist()
        [7]
    """
    if mask.ndim != 4:
        raise ValueError(f"calibration_size: mask must be (B, 1|C, H, W), got shape {tuple(mask.shape)}")
    full = (mask > 0).all(1)  # (B, H, W): sampled in every coil
    h, w = full.shape[-2:]
    sides = torch.arange(1, min(h, w) + 1, device=mask.device)
    # square s spans rows [h//2 - s//2, h//2 - s//2 + s) (sigpy's and BART's centred crop); its emptiness from
    # a 2-D cumulative count of the unsampled locations
    holes = torch.nn.functional.pad((~full).to(torch.int64).cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    r0, c0 = h // 2 - sides // 2, w // 2 - sides // 2
    r1, c1 = r0 + sides, c0 + sides
    count = holes[:, r1, c1] - holes[:, r0, c1] - holes[:, r1, c0] + holes[:, r0, c0]  # (B, S)
    return (count == 0).cumprod(1).sum(1)  # the squares are nested: the largest s whose square (and all smaller) is full


def espirit_maps(
    kspace: torch.Tensor,
    mask: torch.Tensor | None = None,
    calib_size: int | None = None,
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
    max_iter: int = 100,
) -> torch.Tensor:
    r"""ESPIRiT coil sensitivity maps (module docstring) of multi-coil k-space, one set per sample.

    Args:
        kspace: (B, C, H, W) complex k-space, centred like :func:`~selfinv.physics.fft2c`, zero where not sampled.
        mask: the sampled locations (H, W) or (B|1, 1|C, H, W); default: where any coil of ``kspace`` is non-zero.
        calib_size: side of the centred calibration square; default: the fully sampled centre's side, at most 24
            (as BART's ``ecalib``). A side larger than the fully sampled centre is refused (unsampled zeros would
            enter the calibration matrix).
        kernel_size: side of the k-space kernels (6 in BART and sigpy).
        threshold: singular values of the calibration matrix kept, relative to the largest.
        crop: eigenvalue below which a pixel's maps are set to zero (outside the object).
        max_iter: power iterations of the pixel-wise eigenproblem.

    Returns:
        (B, C, H, W) maps of ``kspace``'s complex dtype and device; :math:`\sum_c |s_c|^2` is 1 inside the object
        and 0 outside.
    """
    owner = "espirit_maps"
    if not isinstance(kspace, torch.Tensor) or kspace.ndim != 4:
        raise ValueError(f"{owner}: kspace must be a (B, C, H, W) complex tensor, got "
                         f"{tuple(kspace.shape) if isinstance(kspace, torch.Tensor) else type(kspace).__name__}")
    if not kspace.is_complex():
        raise ValueError(f"{owner}: kspace must be complex, got {kspace.dtype}")
    if not bool(torch.isfinite(kspace).all()):
        raise ValueError(f"{owner}: kspace contains NaN or Inf")
    b, c, h, w = kspace.shape
    if mask is None:
        mask = (kspace != 0).any(1, keepdim=True)
    elif mask.ndim == 2:
        mask = mask[None, None]
    if mask.ndim != 4 or tuple(mask.shape[-2:]) != (h, w) or mask.shape[0] not in (1, b):
        raise ValueError(f"{owner}: mask must be (H, W) or (B|1, 1|C, H, W) with (H, W) = {(h, w)}, got {tuple(mask.shape)}")
    if kernel_size < 1 or not 0 <= threshold < 1 or max_iter < 1:
        raise ValueError(f"{owner}: need kernel_size >= 1, 0 <= threshold < 1 and max_iter >= 1")
    smallest = kernel_size + 2
    if calib_size is not None and (isinstance(calib_size, bool) or not isinstance(calib_size, int) or calib_size < smallest):
        raise ValueError(f"{owner}: calib_size must be an int >= kernel_size + 2 = {smallest}, got {calib_size!r}")
    sides = []
    for i, f in enumerate(calibration_size(mask.expand(b, *mask.shape[1:])).tolist()):
        side = min(f, DEFAULT_CALIB) if calib_size is None else calib_size
        if side > f:
            raise ValueError(f"{owner}: calib_size {side} is larger than the fully sampled k-space centre of sample {i} "
                             f"({f} x {f}); give calib_size <= {f}")
        if side < smallest:
            raise ValueError(f"{owner}: sample {i} has a fully sampled k-space centre of {f} x {f}, too small for "
                             f"ESPIRiT with kernel_size {kernel_size} (at least {smallest} x {smallest} needed)")
        sides.append(side)
    try:
        from sigpy.mri.app import EspiritCalib
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise ValueError(f"{owner}: ESPIRiT needs sigpy: pip install 'selfinv[mri]' (or pip install sigpy)") from None

    ksp = kspace.detach().cpu().numpy()
    maps = np.stack([  # one sample at a time: sigpy calibrates one k-space
        EspiritCalib(ksp[i], calib_width=sides[i], thresh=threshold, kernel_width=kernel_size, crop=crop,
                     max_iter=max_iter, show_pbar=False).run()
        for i in range(b)
    ])
    maps = np.nan_to_num(maps)  # sigpy's phase reference divides by |coil 0|, 0 at an exactly dark pixel
    covered = (np.abs(maps) > 0).any(1).mean(axis=(1, 2))
    if bool((covered < 0.01).any()):
        i = int(np.argmin(covered))
        raise ValueError(f"{owner}: no pixel of sample {i} has an eigenvalue above crop = {crop} (the maps are all "
                         f"zero): the {sides[i]} x {sides[i]} calibration region is too small for kernel_size "
                         f"{kernel_size} and {c} coils (its {(sides[i] - kernel_size + 1) ** 2} patches against "
                         f"{c * kernel_size**2} unknowns); use a larger calib_size or a smaller kernel_size")
    return torch.from_numpy(maps).to(device=kspace.device, dtype=kspace.dtype)
