"""Backbones and physics-aware wrappers by config name.

Example:
    >>> from selfinv.models.registry import build_backbone
    >>> build_backbone("dncnn", in_channels=1, out_channels=1, options={"depth": 3, "width": 4}).depth
    3
"""

from __future__ import annotations

from torch import nn

from selfinv.models.autoencoder import Autoencoder
from selfinv.models.blindspot import BlindSpotNet
from selfinv.models.dncnn import DnCNN
from selfinv.models.drunet import DRUNet
from selfinv.models.ram import RAM
from selfinv.models.unet import UNet
from selfinv.models.unet3d import UNet3d
from selfinv.models.wrappers import BackProjection, Unrolled

#: image-to-image backbones, built as ``cls(in_channels, out_channels, **options)``
BACKBONES: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "dncnn": DnCNN,
    "drunet": DRUNet,
    "ram": RAM,
    "blindspot": BlindSpotNet,
    "autoencoder": Autoencoder,
    "unet3d": UNet3d,
}

#: physics-aware entry points ``model(y, physics)`` around a backbone
WRAPPERS: dict[str, type[nn.Module]] = {"backprojection": BackProjection, "unrolled": Unrolled}


def spatial_dims(model_or_name: nn.Module | type | str) -> int:
    """The number of spatial axes a backbone works on: 3 for volumes (B, C, D, H, W), else 2 (images).

    Read from the class attribute ``spatial_dims`` (absent: 2); a name is looked up in :data:`BACKBONES`, a
    wrapper, a DDP module or a test-time estimator is asked for the network inside.

    Example:
        >>> spatial_dims("unet3d"), spatial_dims("unet")
        (3, 2)
    """
    if isinstance(model_or_name, str):
        model_or_name = BACKBONES.get(model_or_name, nn.Module)
    if isinstance(model_or_name, nn.Module):
        for attr in ("backbone", "module", "model"):  # a wrapper, DistributedDataParallel, an estimator
            inner = getattr(model_or_name, attr, None)
            if isinstance(inner, nn.Module):
                return spatial_dims(inner)
    return int(getattr(model_or_name, "spatial_dims", 2))


def build_backbone(name: str, in_channels: int, out_channels: int, options: dict | None = None) -> nn.Module:
    """Build ``BACKBONES[name](in_channels, out_channels, **options)``; an unknown name is a ValueError."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](in_channels, out_channels, **(options or {}))
