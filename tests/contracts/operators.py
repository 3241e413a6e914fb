"""The registry of every operator for the contract tests: one entry per operator.

Each case builds an operator and a valid input for a batch size, real dtype and generator.
``per_sample=True`` asks for per-sample operator parameters where the operator has them (and always
per-sample noise parameters), so the batch tests see parameters that really differ per sample.
A new operator adds one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from selfinv.noise import Gaussian, NoiseModel


def _cplx(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _noise(batch: int, per_sample: bool, g: torch.Generator) -> NoiseModel:
    if per_sample:
        return Gaussian(0.05 + 0.1 * torch.rand(batch, generator=g, dtype=torch.float64))
    return Gaussian(0.1)


@dataclass(frozen=True)
class Case:
    build: Callable[[int, bool, torch.dtype, torch.Generator], tuple]
    #: whether the operator has per-sample parameters of its own (not just noise)
    per_sample_params: bool = True
    #: whether A(x)'s per-sample shape is tied to the operator (so a wrong x shape must raise)
    shape_checked: bool = True
    #: relative accuracy expected of A A† y = y for y in the range of A (exact ops are tested to rounding)
    dagger_rtol: float = 1e-8


def _denoising(b, per_sample, dtype, g):
    from selfinv.physics import Denoising

    return Denoising(noise=_noise(b, per_sample, g)), torch.rand(b, 2, 6, 5, generator=g, dtype=dtype)


def _inpainting(b, per_sample, dtype, g):
    from selfinv.physics import Inpainting

    mask = (torch.rand(b if per_sample else 1, 1, 6, 5, generator=g) > 0.4).float()
    return Inpainting(mask, noise=_noise(b, per_sample, g)), torch.rand(b, 3, 6, 5, generator=g, dtype=dtype)


def _mri(b, per_sample, dtype, g):
    from selfinv.physics.samplers import MRIMaskSampler

    op = MRIMaskSampler((8, 10), acceleration=2, center_fraction=0.2)(b if per_sample else 1, generator=g)
    op = op.with_noise(_noise(b, per_sample, g))
    return op, torch.randn(b, 1, 8, 10, generator=g, dtype=_cplx(dtype))


def _coil_maps(n, coils, h, w, dtype, g):
    """Random complex coil maps (n, coils, H, W) (not normalised: the operator takes any maps)."""
    return torch.complex(torch.randn(n, coils, h, w, generator=g), torch.randn(n, coils, h, w, generator=g)).to(_cplx(dtype))


def _multicoil_mri(b, per_sample, dtype, g):
    """Cartesian lines and coil maps, both per sample."""
    from selfinv.physics import MultiCoilMRI
    from selfinv.physics.samplers import MRIMaskSampler

    n = b if per_sample else 1
    mask = MRIMaskSampler((8, 10), acceleration=2, center_fraction=0.2).sample(n, generator=g)
    op = MultiCoilMRI(mask, _coil_maps(n, 3, 8, 10, dtype, g), noise=_noise(b, per_sample, g))
    return op, torch.randn(b, 1, 8, 10, generator=g, dtype=_cplx(dtype))


def _multicoil_mri_points(b, per_sample, dtype, g):
    """2-D random points (a variable-density-like point mask) per sample, coil maps shared (1, C, H, W)."""
    from selfinv.physics import MultiCoilMRI

    mask = (torch.rand(b if per_sample else 1, 1, 7, 6, generator=g) > 0.5).float()
    mask[..., 2:5, 2:4] = 1  # a fully sampled centre
    op = MultiCoilMRI(mask, _coil_maps(1, 4, 7, 6, dtype, g), noise=_noise(b, per_sample, g))
    return op, torch.randn(b, 1, 7, 6, generator=g, dtype=_cplx(dtype))


def _tomography(b, per_sample, dtype, g):
    from selfinv.physics.tomography import Tomography

    return Tomography(7, 9, noise=_noise(b, per_sample, g)), torch.rand(b, 1, 9, 9, generator=g, dtype=dtype)


def _tomography_per_sample_angles(b, per_sample, dtype, g):
    from selfinv.physics.tomography import Tomography

    angles = torch.rand(b if per_sample else 1, 6, generator=g, dtype=torch.float64) * 180  # one set per sample
    op = Tomography(angles, 9, noise=_noise(b, per_sample, g), n_detectors=11)
    return op, torch.rand(b, 2, 9, 9, generator=g, dtype=dtype)


def _tomography_padded_angles(b, per_sample, dtype, g):
    from selfinv.physics.tomography import Tomography

    n = b if per_sample else 1
    angles = torch.rand(n, 8, generator=g, dtype=torch.float64) * 360 - 90
    lengths = torch.randint(3, 9, (n,), generator=g)  # sets of different lengths padded to 8
    mask = torch.arange(8)[None, :] < lengths[:, None]
    op = Tomography(angles, 8, noise=_noise(b, per_sample, g), angle_mask=mask)
    return op, torch.rand(b, 1, 8, 8, generator=g, dtype=dtype)


def _fanbeam_tomography(b, per_sample, dtype, g):
    """A full 360-degree fan-beam scan, wide enough that some rays miss the image (unmeasured bins)."""
    from selfinv.physics.fanbeam import FanBeamTomography

    op = FanBeamTomography(8, 9, n_detectors=15, source_distance=14.0, detector_distance=30.0, detector_spacing=1.5,
                           noise=_noise(b, per_sample, g))
    return op, torch.rand(b, 1, 9, 9, generator=g, dtype=dtype)


def _fanbeam_tomography_per_sample_angles(b, per_sample, dtype, g):
    """Limited-angle sets of different lengths per sample (padded with angle_mask), distances in mm."""
    from selfinv.physics.fanbeam import FanBeamTomography

    n = b if per_sample else 1
    angles = torch.rand(n, 6, generator=g, dtype=torch.float64) * 90 + torch.rand(n, 1, generator=g, dtype=torch.float64) * 360
    mask = torch.arange(6)[None, :] < torch.randint(3, 7, (n,), generator=g)[:, None]
    op = FanBeamTomography(angles, 8, n_detectors=11, source_distance=7.0, detector_distance=12.0, detector_spacing=0.8,
                           pixel_size=0.5, angle_mask=mask, noise=_noise(b, per_sample, g))
    return op, torch.rand(b, 2, 8, 8, generator=g, dtype=dtype)


def _blur(b, per_sample, dtype, g):
    from selfinv.physics.blur import Blur, BlurKernelSampler

    kernel = BlurKernelSampler("gaussian", size=3).sample(b if per_sample else 1, generator=g)
    return Blur(kernel, noise=_noise(b, per_sample, g)), torch.rand(b, 2, 7, 6, generator=g, dtype=dtype)


def _cs_gaussian(b, per_sample, dtype, g):
    from selfinv.physics.compressed_sensing import CompressedSensing

    op = CompressedSensing(20, (1, 6, 6), kind="gaussian", generator=g, noise=_noise(b, per_sample, g))
    return op, torch.rand(b, 1, 6, 6, generator=g, dtype=dtype)


def _cs_structured(b, per_sample, dtype, g):
    from selfinv.physics.compressed_sensing import CompressedSensing

    op = CompressedSensing(15, (2, 5, 4), kind="structured", generator=g, noise=_noise(b, per_sample, g))
    return op, torch.rand(b, 2, 5, 4, generator=g, dtype=dtype)


def _demosaicing(b, per_sample, dtype, g):
    from selfinv.physics.demosaicing import Demosaicing

    return Demosaicing("RGGB", noise=_noise(b, per_sample, g)), torch.rand(b, 3, 5, 6, generator=g, dtype=dtype)


def _matrix(b, per_sample, dtype, g):
    from selfinv.physics import Matrix

    a = torch.randn(b if per_sample else 1, 4, 7, generator=g, dtype=torch.float64)
    a[..., 3, :] = a[..., 0, :] + a[..., 1, :]  # rank-deficient on purpose
    return Matrix(a, in_shape=(7,), noise=_noise(b, per_sample, g)), torch.rand(b, 7, generator=g, dtype=dtype)


def _measurement_mask(b, per_sample, dtype, g):
    from selfinv.physics import MeasurementMask

    mask = (torch.rand(b if per_sample else 1, 11, generator=g) > 0.3).float()
    return MeasurementMask(mask, noise=_noise(b, per_sample, g)), torch.rand(b, 11, generator=g, dtype=dtype)


def _subsampled_cs(b, per_sample, dtype, g):
    from selfinv.physics.compressed_sensing import CompressedSensing

    op = CompressedSensing(12, (1, 4, 4), kind="gaussian", generator=g, noise=_noise(b, per_sample, g))
    split = (torch.rand(b if per_sample else 1, 12, generator=g) > 0.4).float()
    return op.subsample(split), torch.rand(b, 1, 4, 4, generator=g, dtype=dtype)


def _radio(b, per_sample, dtype, g):
    """Random (u, v) points in the band, one set per sample, with some visibilities flagged (weight 0)."""
    from selfinv.physics import RadioInterferometry

    n = b if per_sample else 1
    uv = (torch.rand(n, 40, 2, generator=g, dtype=torch.float64) * 2 - 1) * 3.0
    weights = (torch.rand(n, 40, generator=g, dtype=torch.float64) > 0.2) * (0.5 + torch.rand(n, 40, generator=g, dtype=torch.float64))
    return RadioInterferometry(uv, (8, 9), weights, noise=_noise(b, per_sample, g)), torch.rand(b, 2, 8, 9, generator=g, dtype=dtype)


def _radio_eht(b, per_sample, dtype, g):
    """EHT 2017 tracks of random start and stations (RadioObservationSampler), or one fixed 12-hour track."""
    from selfinv.physics import RadioObservationSampler

    if per_sample:
        op = RadioObservationSampler(12, "eht2017", fov=100e-6, duration=4.0, n_times=3, station_dropout=0.3)(b, generator=g)
    else:
        op = RadioObservationSampler(12, "eht2017", fov=100e-6, n_times=3)(1, generator=g)
    return op.with_noise(_noise(b, per_sample, g)), torch.rand(b, 1, 12, 12, generator=g, dtype=dtype)


def _composed(b, per_sample, dtype, g):
    from selfinv.physics import Inpainting
    from selfinv.physics.blur import Blur, gaussian_kernel

    mask = (torch.rand(b if per_sample else 1, 1, 6, 6, generator=g) > 0.3).float()
    op = Inpainting(mask, noise=_noise(b, per_sample, g)) @ Blur(gaussian_kernel(0.8, size=3))
    return op, torch.rand(b, 1, 6, 6, generator=g, dtype=dtype)


OPERATOR_CASES: dict[str, Case] = {
    "denoising": Case(_denoising, per_sample_params=False, shape_checked=False),
    "inpainting": Case(_inpainting),
    "mri": Case(_mri),
    "multicoil_mri": Case(_multicoil_mri),
    "multicoil_mri_points": Case(_multicoil_mri_points),
    "tomography": Case(_tomography, per_sample_params=False, dagger_rtol=1e-3),
    "tomography_per_sample_angles": Case(_tomography_per_sample_angles, dagger_rtol=1e-3),
    "tomography_padded_angles": Case(_tomography_padded_angles, dagger_rtol=1e-3),
    "fanbeam_tomography": Case(_fanbeam_tomography, per_sample_params=False, dagger_rtol=1e-3),
    "fanbeam_tomography_per_sample_angles": Case(_fanbeam_tomography_per_sample_angles, dagger_rtol=1e-3),
    "blur": Case(_blur, shape_checked=False, dagger_rtol=1e-4),  # any image at least as large as the kernel is valid
    "cs_gaussian": Case(_cs_gaussian, per_sample_params=False),
    "cs_structured": Case(_cs_structured, per_sample_params=False),
    "demosaicing": Case(_demosaicing, per_sample_params=False, shape_checked=False),  # any H, W
    "radio_interferometry": Case(_radio, dagger_rtol=1e-6),
    "radio_eht": Case(_radio_eht, dagger_rtol=1e-4),
    "matrix": Case(_matrix),
    "measurement_mask": Case(_measurement_mask),
    "subsampled_cs": Case(_subsampled_cs, dagger_rtol=1e-8),
    "inpainting@blur": Case(_composed, dagger_rtol=1e-4),
}
