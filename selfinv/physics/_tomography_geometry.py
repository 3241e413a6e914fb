r"""The scan geometry of :class:`~selfinv.physics.Tomography` (and of :class:`~selfinv.physics.FanBeamTomography`):
image size, angle sets, their mask, ray directions.

The constructor's arguments are checked and normalised here: ``img_size`` to N, ``angles`` to a float64
tensor (``n`` equispaced, a shared 1-D set or one set per sample) and ``angle_mask`` to a bool (1|B, n_angles)
mask; :func:`directions` gives the unit vectors of the rays of each angle.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch


def as_size(img_size, op: str = "Tomography") -> int:
    if isinstance(img_size, (tuple, list, torch.Size)):
        if len(img_size) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in img_size):
            raise ValueError(f"{op}: img_size must be an int N or a pair (N, N), got {img_size!r}")
        if img_size[0] != img_size[1]:
            raise ValueError(f"{op}: images must be square, got img_size {tuple(img_size)}")
        img_size = img_size[0]
    if isinstance(img_size, bool) or not isinstance(img_size, numbers.Integral) or img_size < 1:
        raise ValueError(f"{op}: img_size must be a positive int N or a pair (N, N), got {img_size!r}")
    return int(img_size)


def directions(angles: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The unit vectors :math:`e_\theta, e_\theta^\perp` (..., 2) of angles in degrees, in like's dtype and device."""
    th = torch.deg2rad(angles.to(torch.float64))
    cos, sin = th.cos(), th.sin()
    e = torch.stack([cos, -sin], -1).to(device=like.device, dtype=like.dtype)
    e_perp = torch.stack([sin, cos], -1).to(device=like.device, dtype=like.dtype)
    return e, e_perp


_ANGLES = "an int, a 1-D sequence (shared) or a (B, n_angles) tensor (one set per sample) of angles in degrees"


def as_angles(angles, op: str = "Tomography", turn: float = 180.0) -> torch.Tensor:
    """Angles in degrees as float64 (n_angles,) or (B, n_angles); an int n gives n equispaced over ``turn`` degrees."""
    if isinstance(angles, bool):
        raise ValueError(f"{op}: angles must be {_ANGLES}, got a bool")
    if isinstance(angles, numbers.Integral):
        if angles < 1:
            raise ValueError(f"{op}: the number of angles must be positive, got {angles}")
        return torch.arange(int(angles), dtype=torch.float64) * (turn / int(angles))
    if isinstance(angles, torch.Tensor):
        t = angles.detach()
    else:
        try:
            arr = np.asarray(angles)
        except (TypeError, ValueError):
            arr = np.asarray(None)
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{op}: angles must be {_ANGLES}, got {angles!r}")
        t = torch.from_numpy(arr.astype(np.float64))  # float64 from the start: no float32 rounding of e.g. 133.7
    if t.is_complex() or t.dtype == torch.bool or t.ndim not in (1, 2) or t.numel() == 0:
        raise ValueError(
            f"{op}: angles must be {_ANGLES} (real, non-empty), got {t.dtype} of shape {tuple(t.shape)}"
        )
    t = t.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{op}: angles must be finite (pad sets of different lengths with any finite value and mark "
            "the padding False in angle_mask)"
        )
    return t


def as_angle_mask(mask, angles: torch.Tensor, op: str = "Tomography") -> torch.Tensor | None:
    """A validity mask as bool (1|B, n_angles) fitting ``angles`` (1-D shared or (1|B, n_angles)), or None."""
    if mask is None:
        return None
    n = angles.shape[-1]
    expected = f"(n_angles,), (1, n_angles) or (B, n_angles) with n_angles = {n}"
    if angles.ndim == 2 and angles.shape[0] != 1:
        expected = f"(n_angles,), (1, n_angles) or (B, n_angles) = ({angles.shape[0]}, {n}) like angles"
    if isinstance(mask, bool):
        raise ValueError(f"{op}: angle_mask must be a bool or 0/1 tensor of shape {expected}, got a bool")
    if isinstance(mask, torch.Tensor):
        m = mask.detach().cpu()
    else:
        try:
            arr = np.asarray(mask)
        except (TypeError, ValueError):
            arr = np.asarray(None)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{op}: angle_mask must be a bool or 0/1 tensor of shape {expected}, got {mask!r}")
        m = torch.from_numpy(arr)
    if m.is_complex():
        raise ValueError(f"{op}: angle_mask must be bool or 0/1, got {m.dtype}")
    shape = tuple(m.shape)
    if m.ndim == 1:
        m = m[None]
    if m.ndim != 2 or m.shape[-1] != n or (angles.ndim == 2 and m.shape[0] not in (1, angles.shape[0])):
        raise ValueError(f"{op}: angle_mask has shape {shape}, expected {expected}")
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(
                f"{op}: angle_mask must be bool or hold only 0 and 1 (NaN and other values are refused)"
            )
        m = m != 0
    if not bool(m.any(-1).all()):
        bad = (~m.any(-1)).nonzero().flatten().tolist()
        raise ValueError(f"{op}: angle_mask leaves no valid angle for sample(s) {bad}; every sample needs one")
    return m


def rays_inside(lines, n: int, half: float, shape, device) -> torch.Tensor:
    """Bool ``shape``: the rays with a sample :math:`a + j d` (:math:`|j| \\le` ``half``, per pixel coordinate)
    inside the bilinear support of an n x n image, i.e. both coordinates in (-1 + 1e-3, n - 1e-3) for some
    integer j; ``lines`` holds one (a, d) pair of tensors (broadcastable to ``shape``) per coordinate.

    Each coordinate clips the ray parameter to an interval (slab method); a ray parallel to a slab
    (:math:`|d| < 10^{-12}`) is inside it or not as a whole. The margin makes an unmeasured bin zero for every
    image, whatever the rounding of the sampling grid.
    """
    eps = 1e-3
    lo = torch.full(tuple(shape), -half - 0.5, dtype=torch.float64, device=device)
    hi = -lo
    ok = torch.ones_like(lo, dtype=torch.bool)
    for a, d in lines:
        a, d = torch.broadcast_tensors(a, d)
        flat = d.abs() < 1e-12
        safe = torch.where(flat, torch.ones_like(d), d)
        t1, t2 = (-1 + eps - a) / safe, (n - eps - a) / safe
        lo = torch.where(flat, lo, torch.maximum(lo, torch.minimum(t1, t2)))
        hi = torch.where(flat, hi, torch.minimum(hi, torch.maximum(t1, t2)))
        ok &= ~flat | ((a > -1 + eps) & (a < n - eps))
    return ok & (torch.floor(lo) + 1 < hi)

