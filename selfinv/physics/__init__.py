"""Forward operators (each one a physics object: linear operator + noise model) and their samplers."""

from selfinv.physics.base import Adjoint, Compose, LinearOperator, Scaled, Sum, cg_dagger
from selfinv.physics.denoising import Denoising
from selfinv.physics.inpainting import Inpainting
from selfinv.physics.matrix import Matrix
from selfinv.physics.mri import MRI, channels_to_complex, complex_to_channels, fft2c, ifft2c

__all__ = [
    "MRI",
    "Adjoint",
    "Compose",
    "Denoising",
    "Inpainting",
    "LinearOperator",
    "Matrix",
    "Scaled",
    "Sum",
    "cg_dagger",
    "channels_to_complex",
    "complex_to_channels",
    "fft2c",
    "ifft2c",
]
