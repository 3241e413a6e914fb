"""The shipped pretrained network: its file (checksum, size, model card), its zero-shot quality on images it never
saw, its use through configs (model.pretrained), finetuning defaults (RAM's rule) and the one-line errors."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from selfinv import pretrained
from selfinv.config import ConfigError, parse_config
from selfinv.data.embedded import embedded_images
from selfinv.engine.build import build_experiment
from selfinv.models import pretrained as catalog
from selfinv.noise import Gaussian
from selfinv.physics import MRI, Demosaicing, Inpainting, MRIMaskSampler
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "ram-small"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    if b.is_complex():
        a, b = a.abs(), b.abs()
    return float(-10 * torch.log10((a - b).pow(2).mean()))


@pytest.mark.parametrize("name", catalog.pretrained_names())
def test_every_shipped_file_matches_its_checksum_size_and_architecture(name):
    entry = catalog.PRETRAINED[name]
    path = catalog.pretrained_file(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert path.stat().st_size <= 20 * 2**20
    arch, state, facts = catalog.pretrained_state(name)
    assert arch == {k: v for k, v in entry.backbone.items()}
    assert facts["steps"] > 0 and facts["seconds"] > 0
    card = pretrained.model_card(name)
    for heading in ("## Data", "## Operators and noise", "## PSNR", "## Licence", "## Checksum"):
        assert heading in card, heading
    assert entry.sha256 in card


def test_zero_shot_on_images_it_never_saw_beats_the_back_projection():
    """Held-out embedded test images (camera, astronaut): inpainting and demosaicing with noise σ = 0.05. Random
    weights, or weights loaded into the wrong heads, would not get near these margins."""
    model = pretrained.load(NAME)
    gray = torch.from_numpy(embedded_images(gray=True, names=["camera"])[0])[None, :, 100:164, 100:164].contiguous()
    colour = torch.from_numpy(embedded_images(gray=False, names=["astronaut"])[0])[None, :, 60:124, 200:264].contiguous()
    inp = Inpainting((torch.rand(1, 1, 64, 64, generator=gen(0)) < 0.5).float(), noise=Gaussian(0.05))
    dem = Demosaicing(noise=Gaussian(0.05))
    for x, op, margin in ((gray, inp, 8.0), (colour, dem, 8.0)):
        y = op(x, generator=gen(1))
        with torch.no_grad():
            out = model(y, op)
        assert _psnr(out, x) > _psnr(op.A_adjoint(y), x) + margin, type(op).__name__


def test_zero_shot_mri_uses_the_complex_head():
    model = pretrained.load(NAME)
    img = torch.from_numpy(embedded_images(gray=True, names=["camera"])[0])[None, :, 64:128, 64:128]
    x = img.to(torch.complex64)
    op = MRI(MRIMaskSampler(64, acceleration=4).sample(1, generator=gen(2)), noise=Gaussian(0.01))
    y = op(x, generator=gen(3))
    with torch.no_grad():
        out = model(y, op)
    assert out.dtype == torch.complex64 and torch.isfinite(out.abs()).all()
    assert _psnr(out, x) > _psnr(op.A_adjoint(y), x)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="ram-small") as e:
        pretrained.load("ram-smal")
    assert "did you mean 'ram-small'" in str(e.value) and "\n" not in str(e.value)


def test_a_damaged_file_fails_its_checksum(monkeypatch):
    bad = dataclasses.replace(catalog.PRETRAINED[NAME], sha256="0" * 64)
    monkeypatch.setitem(catalog.PRETRAINED, NAME, bad)
    with pytest.raises(ValueError, match="fails its checksum"):
        pretrained.load(NAME)


# ---------------------------------------------------------------------- configs and finetuning defaults
def _cfg(noise, physics="inpainting", **extra):
    data = {"physics": {"name": physics}, "noise": noise, **extra}
    if physics == "inpainting":
        data["physics"]["sampler"] = {"name": "bernoulli_mask", "p": 0.5}
    if physics == "mri":
        data["physics"]["sampler"] = {"name": "mri_mask", "acceleration": 4}
    return data


@pytest.mark.parametrize(
    "noise, physics, want",
    [
        ({"name": "gaussian", "sigma": 0.05}, "inpainting", {"name": "ei", "transform": "shift", "consistency": "sure"}),
        ({"name": "poisson", "gain": 0.05}, "demosaicing", {"name": "ei", "transform": "shift", "consistency": "sure"}),
        (None, "inpainting", {"name": "ei", "transform": "shift", "consistency": "mc"}),
        ({"name": "gaussian", "sigma": 0.01}, "mri", {"name": "ei", "transform": "rotate", "consistency": "sure"}),
        ({"name": "unknown"}, "inpainting", {"name": "splitting"}),
    ],
)
def test_the_default_loss_follows_rams_rule(noise, physics, want):
    got = pretrained.default_finetune_loss(parse_config(_cfg(noise, physics)))
    assert {k: got[k] for k in want} == want
    if got["name"] == "ei":
        assert got["weight"] == 0.1


def test_finetune_config_keeps_what_the_user_wrote():
    cfg = pretrained.finetune_config({**_cfg({"name": "gaussian", "sigma": 0.05}), "loss": {"name": "r2r"}}, NAME, n=7,
                                     steps=12, overrides=["training.lr=3e-5"])
    assert (cfg.loss.name, cfg.training.lr, cfg.training.max_steps, cfg.data.max_images) == ("r2r", 3e-5, 12, 7)
    assert cfg.model.pretrained == NAME
    # a file's training section is for training from scratch: finetuning keeps its own rate and budget
    cfg = pretrained.finetune_config({**_cfg({"name": "gaussian", "sigma": 0.05}),
                                      "training": {"lr": 1e-3, "epochs": 20, "batch_size": 4}}, NAME)
    assert (cfg.training.lr, cfg.training.max_steps, cfg.training.batch_size, cfg.data.max_images) == (1e-4, 40, 4, None)
    with pytest.raises(ConfigError, match="neither a shipped pretrained network"):
        pretrained.finetune_config(_cfg(None), "nope.pt")
    with pytest.raises(ConfigError, match="noiseless denoising"):
        pretrained.finetune_config({"physics": {"name": "denoising"}, "noise": None}, NAME)


def test_model_pretrained_in_a_config_brings_the_architecture_and_the_weights():
    data = {**_cfg({"name": "gaussian", "sigma": 0.05}), "data": {"images": ["brick"], "patch_size": 16,
                                                                   "patches_per_image": 2},
            "model": {"backbone": {"name": "unet"}, "pretrained": NAME}}
    exp = build_experiment(parse_config(data))
    assert exp.cfg.model.backbone.name == "ram" and exp.cfg.model.wrapper.name == "backprojection"
    _, state, _ = catalog.pretrained_state(NAME)
    torch.testing.assert_close(exp.model.backbone.heads["1"].weight, state["heads.1.weight"])
    data["model"]["pretrained"] = "ram-tiny"
    with pytest.raises(ConfigError, match="neither a shipped pretrained network"):
        build_experiment(parse_config(data))


def test_weights_into_another_architecture_are_a_one_line_error():
    from selfinv.models import RAM

    with pytest.raises(ValueError, match="do not fit RAM") as e:
        catalog.load_backbone_weights(RAM(1, 1, widths=(8, 16)), NAME)
    assert "\n" not in str(e.value) and "widths" in str(e.value)
