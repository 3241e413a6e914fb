"""Reconstruction networks, all called as ``model(y, physics)`` (backbones also as ``net(x)``)."""

from selfinv.models.autoencoder import Autoencoder
from selfinv.models.blindspot import BlindSpotNet
from selfinv.models.dncnn import DnCNN
from selfinv.models.drunet import DRUNet
from selfinv.models.ram import RAM
from selfinv.models.registry import BACKBONES, WRAPPERS, build_backbone, spatial_dims
from selfinv.models.unet import UNet
from selfinv.models.unet3d import UNet3d
from selfinv.models.wrappers import BackProjection, Unrolled

__all__ = [
    "BACKBONES",
    "WRAPPERS",
    "Autoencoder",
    "BackProjection",
    "BlindSpotNet",
    "DRUNet",
    "DnCNN",
    "RAM",
    "UNet",
    "UNet3d",
    "Unrolled",
    "build_backbone",
    "spatial_dims",
]
