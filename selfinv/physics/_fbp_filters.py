r"""The filters of filtered back-projection (:meth:`~selfinv.physics.Tomography.fbp`): the ramp and its apodisations."""

from __future__ import annotations

import math

import torch

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def fourier_filter(size: int, name: str) -> torch.Tensor:
    """The (size // 2 + 1,) real frequency response of ``name`` for an rfft of length ``size`` (float64).

    The ramp is the DFT of the band-limited spatial-domain ramp kernel (Kak & Slaney, eq. 61, ch. 3),
    which avoids the DC offset of sampling :math:`|\\omega|` directly; as :func:`skimage.transform.iradon`.
    """
    k = torch.arange(size, dtype=torch.float64)
    f = torch.zeros(size, dtype=torch.float64)
    f[0] = 0.25
    odd = torch.minimum(k, size - k)[1::2]  # |n| for the odd taps n = 1, 3, ..., -3, -1
    f[1::2] = -1.0 / (math.pi * odd) ** 2
    ramp = 2 * torch.fft.fft(f).real
    if name == "shepp-logan":
        omega = math.pi * torch.fft.fftfreq(size, dtype=torch.float64)[1:]
        ramp[1:] = ramp[1:] * torch.sin(omega) / omega
    elif name == "cosine":
        ramp = ramp * torch.fft.fftshift(torch.sin(torch.linspace(0, math.pi, size + 1, dtype=torch.float64)[:-1]))
    elif name == "hamming":
        ramp = ramp * torch.fft.fftshift(torch.hamming_window(size, periodic=False, dtype=torch.float64))
    elif name == "hann":
        ramp = ramp * torch.fft.fftshift(torch.hann_window(size, periodic=False, dtype=torch.float64))
    return ramp[: size // 2 + 1]
