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
from selfinv.models.unet import UNet
from selfinv.models.wrappers import BackProjection, Unrolled

#: image-to-image backbones, built as ``cls(in_channels, out_channels, **options)``
BACKBONES: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "dncnn": DnCNN,
    "drunet": DRUNet,
    "blindspot": BlindSpotNet,
    "autoencoder": Autoencoder,
}

#: physics-aware entry points ``model(y, physics)`` around a backbone
WRAPPERS: dict[str, type[nn.Module]] = {"backprojection": BackProjection, "unrolled": Unrolled}


def build_backbone(name: str, in_channels: int, out_channels: int, options: dict | None = None) -> nn.Module:
    """Build ``BACKBONES[name](in_channels, out_channels, **options)``; an unknown name is a ValueError."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](in_channels, out_channels, **(options or {}))
