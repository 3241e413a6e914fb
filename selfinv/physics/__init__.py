"""Forward operators (each one a physics object: linear operator + noise model) and their samplers."""

from selfinv.physics.base import Adjoint, Compose, LinearOperator, MeasurementMask, Scaled, Sum
from selfinv.physics.blur import KERNELS, Blur, BlurKernelSampler, box_kernel, gaussian_kernel, motion_kernel
from selfinv.physics.coil_maps import calibration_size, espirit_maps
from selfinv.physics.compressed_sensing import CompressedSensing, dct, idct
from selfinv.physics.demosaicing import Demosaicing
from selfinv.physics.denoising import Denoising
from selfinv.physics.fanbeam import FanBeamTomography
from selfinv.physics.inpainting import Inpainting
from selfinv.physics.matrix import Matrix
from selfinv.physics.mri import MRI, channels_to_complex, complex_to_channels, fft2c, ifft2c
from selfinv.physics.multicoil_mri import MultiCoilMRI
from selfinv.physics.radio import RadioInterferometry, uv_radians
from selfinv.physics.radio_sampler import RadioObservationSampler
from selfinv.physics.samplers import BernoulliMaskSampler, BlockMaskSampler, MRIMaskSampler
from selfinv.physics.solvers import cg_dagger, total_variation, tv_reconstruct
from selfinv.physics.tomography import Tomography
from selfinv.physics.uv_coverage import ARRAYS, EHT2017, VLA_D, enu_to_ecef, uv_coverage

#: every operator by config name (the CLI and the contract tests read this)
OPERATORS: dict[str, type[LinearOperator]] = {
    "denoising": Denoising,
    "inpainting": Inpainting,
    "mri": MRI,
    "multicoil_mri": MultiCoilMRI,
    "tomography": Tomography,
    "fanbeam_tomography": FanBeamTomography,
    "blur": Blur,
    "compressed_sensing": CompressedSensing,
    "demosaicing": Demosaicing,
    "radio_interferometry": RadioInterferometry,
    "matrix": Matrix,
    "measurement_mask": MeasurementMask,
}

#: random operator families by config name
SAMPLERS = {
    "bernoulli_mask": BernoulliMaskSampler,
    "block_mask": BlockMaskSampler,
    "mri_mask": MRIMaskSampler,
    "blur_kernel": BlurKernelSampler,
    "radio_observation": RadioObservationSampler,
}

__all__ = [
    "ARRAYS",
    "EHT2017",
    "KERNELS",
    "MRI",
    "OPERATORS",
    "VLA_D",
    "SAMPLERS",
    "Adjoint",
    "BernoulliMaskSampler",
    "BlockMaskSampler",
    "Blur",
    "BlurKernelSampler",
    "Compose",
    "CompressedSensing",
    "Demosaicing",
    "Denoising",
    "FanBeamTomography",
    "Inpainting",
    "LinearOperator",
    "Matrix",
    "MeasurementMask",
    "MRIMaskSampler",
    "MultiCoilMRI",
    "RadioInterferometry",
    "RadioObservationSampler",
    "Scaled",
    "Sum",
    "Tomography",
    "box_kernel",
    "calibration_size",
    "cg_dagger",
    "channels_to_complex",
    "complex_to_channels",
    "dct",
    "enu_to_ecef",
    "espirit_maps",
    "fft2c",
    "gaussian_kernel",
    "idct",
    "ifft2c",
    "motion_kernel",
    "total_variation",
    "tv_reconstruct",
    "uv_coverage",
    "uv_radians",
]
