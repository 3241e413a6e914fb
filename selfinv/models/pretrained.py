"""The pretrained networks shipped inside the package: their catalogue, checksums, model cards and loading.

Weights live in ``selfinv/models/weights/`` (read through :mod:`importlib.resources`), one ``NAME.pt`` (a plain
dict: ``format``, ``arch``, ``state_dict``, ``facts``; loaded with ``weights_only=True``) and one ``NAME.md``
model card each; the SHA-256 of every file is in :data:`PRETRAINED` and checked before the file is read.
``benchmarks/pretrain.py`` makes them. The user-facing API is :mod:`selfinv.pretrained`.

Example:
    >>> from selfinv.models.pretrained import pretrained_names, model_section
    >>> "ram-small" in pretrained_names()
    True
    >>> model_section("ram-small")["wrapper"]
    {'name': 'backprojection', 'init': 'adjoint'}
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfinv.models.ram import RAM
from selfinv.models.wrappers import BackProjection

__all__ = [
    "PRETRAINED",
    "Pretrained",
    "check_pretrained_name",
    "is_pretrained_name",
    "load_pretrained",
    "model_section",
    "pretrained_file",
    "pretrained_names",
    "pretrained_state",
]

FORMAT = "selfinv-pretrained-1"


@dataclass(frozen=True)
class Pretrained:
    """One shipped network: its file, checksum, model card, architecture (the backbone section) and summary."""

    file: str
    sha256: str
    card: str
    backbone: dict[str, Any]
    summary: str
    wrapper: dict[str, Any] = field(default_factory=lambda: {"name": "backprojection", "init": "adjoint"})


#: the shipped networks by name (``selfinv info`` lists them; ``selfinv finetune NAME CONFIG`` starts from them)
PRETRAINED: dict[str, Pretrained] = {
    "ram-small": Pretrained(
        file="ram-small.pt",
        sha256="4f1ce69a8b4197e7b92406d7e63ed9e10f100e544762923f0e1e2d0f5251b749",
        card="ram-small.md",
        backbone={"name": "ram", "widths": [32, 64, 128, 256], "n_blocks": 1},
        summary="operator-conditioned U-Net (RAM-style, 2.3 M parameters): gray, colour and complex images; "
                "denoising, inpainting, deblurring, compressed sensing, demosaicing, MRI, CT; Gaussian and Poisson noise",
    ),
}


def pretrained_names() -> list[str]:
    """The names of the shipped networks."""
    return list(PRETRAINED)


def is_pretrained_name(ref: str | Path) -> bool:
    """Whether ``ref`` names a shipped network (and is not an existing file of that name, which wins)."""
    return str(ref) in PRETRAINED and not Path(ref).exists()


def check_pretrained_name(name: str) -> Pretrained:
    """The catalogue entry of ``name``; an unknown name is a one-line ValueError listing the names."""
    if name not in PRETRAINED:
        hint = difflib.get_close_matches(str(name), list(PRETRAINED), n=1)
        raise ValueError(f"no pretrained network named {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                         + f"; the shipped ones: {', '.join(PRETRAINED)} (or give a checkpoint file)")
    return PRETRAINED[name]


def pretrained_file(name: str, what: str = "file") -> Path:
    """The path of a shipped network's weights (``what="file"``) or model card (``"card"``), checksum verified."""
    entry = check_pretrained_name(name)
    path = Path(str(resources.files("selfinv.models") / "weights" / (entry.file if what == "file" else entry.card)))
    if not path.is_file():
        raise ValueError(f"{name}: its file {path.name} is missing from the installed package ({path.parent})")
    if what == "file":
        _verify(path, entry.sha256, name)
    return path


@cache
def _verify(path: Path, sha256: str, name: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{name}: {path} fails its checksum (sha256 {digest[:12]}…, expected {sha256[:12]}…): "
                         "a damaged or replaced file; reinstall selfinv")


def pretrained_state(name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """(architecture, backbone state dict, facts of the pretraining run) of a shipped network."""
    path = pretrained_file(name)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line
        raise ValueError(f"{name}: {path.name} is not readable ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{name}: {path.name} is not a selfinv pretrained file")
    return payload["arch"], payload["state_dict"], payload.get("facts", {})


def model_section(name: str) -> dict[str, Any]:
    """The config's ``model`` section (backbone and wrapper) of a shipped network."""
    entry = check_pretrained_name(name)
    return {"backbone": dict(entry.backbone), "wrapper": dict(entry.wrapper)}


def load_backbone_weights(backbone: nn.Module, name: str) -> None:
    """Load a shipped network's weights into a backbone built from its :func:`model_section` (strict)."""
    _, state, _ = pretrained_state(name)
    try:
        backbone.load_state_dict(state)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:160]
        raise ValueError(f"{name}: its weights do not fit {type(backbone).__name__} ({first}); "
                         f"use model.backbone {PRETRAINED[name].backbone}") from None


def load_pretrained(name: str, channels: int = 1) -> BackProjection:
    r"""A shipped network, ready to use as ``model(y, physics)`` (eval mode).

    ``channels`` only sets the network's nominal ``in_channels``: every shipped RAM has heads for gray (1),
    complex (2 real channels) and colour (3) images and picks one from its input.
    """
    section = model_section(name)
    opts = {k: (tuple(v) if isinstance(v, list) else v) for k, v in section["backbone"].items() if k != "name"}
    net = RAM(channels, channels, **opts)
    load_backbone_weights(net, name)
    return BackProjection(net, init=section["wrapper"]["init"]).eval()
