"""Pretrained networks shipped with selfinv, and their self-supervised finetuning on your measurements.

* :func:`names` — the shipped networks (``selfinv info`` lists them under "pretrained");
* :func:`load` — a shipped network as ``model(y, physics)``, zero-shot on any operator it was trained for;
* :func:`model_card` — what it was trained on, how well it does, the data's licences;
* :func:`finetune` — self-supervised finetuning on 1–100 measurements (``selfinv finetune MODEL CONFIG``).

Example:
    >>> import torch
    >>> from selfinv import pretrained
    >>> from selfinv.noise import Gaussian
    >>> from selfinv.physics import Inpainting
    >>> model = pretrained.load("ram-small")
    >>> physics = Inpainting(torch.ones(1, 1, 32, 32), noise=Gaussian(0.05))
    >>> model(physics(torch.rand(1, 1, 32, 32), generator=torch.Generator().manual_seed(0)), physics).shape
    torch.Size([1, 1, 32, 32])
"""

from __future__ import annotations

from selfinv.models.pretrained import PRETRAINED, pretrained_file, pretrained_names, pretrained_state
from selfinv.models.pretrained import load_pretrained as load
from selfinv.pretrained.finetuning import Finetuned, default_finetune_loss, finetune, finetune_config

__all__ = ["PRETRAINED", "Finetuned", "default_finetune_loss", "facts", "finetune", "finetune_config", "load",
           "model_card", "names"]


def names() -> list[str]:
    """The names of the shipped pretrained networks."""
    return pretrained_names()


def model_card(name: str) -> str:
    """The model card (Markdown) of a shipped network."""
    return pretrained_file(name, "card").read_text(encoding="utf-8")


def facts(name: str) -> dict:
    """The recorded facts of a shipped network's pretraining run (steps, seconds, validation PSNR per task, ...)."""
    return pretrained_state(name)[2]
