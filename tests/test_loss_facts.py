"""Facts on the losses: the advisor is rules over each loss's LossInfo (no loss name in it), and a loss that is
only defined and registered gets a verdict, a config schema entry and a ``selfinv config init`` template.

The verdict table below was captured by running the advisor as it was before it read these facts (it kept
tables of loss names); the rules over the facts must give the same verdict, word for word, for every loss.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from selfinv.advisor import advise
from selfinv.losses import LOSSES, Loss, LossInfo
from selfinv.losses.base import sq_mean
from selfinv.noise import CorrelatedGaussian, Gamma, Gaussian, Poisson, Unknown
from selfinv.physics import MRI, Blur, Denoising, Inpainting, gaussian_kernel
from selfinv.physics.samplers import BernoulliMaskSampler, BlockMaskSampler
from selfinv.transforms import Rotate, Shift
from tests.helpers import gen

# selfinv.config (and the CLI templates, which import it) are imported inside the tests: the subprocess test
# imports this module for HalfMC before it registers the loss, and the config schema is built at import

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]


def settings() -> dict[str, dict]:
    """Physics, noise, operator family and transforms that reach every rule of the advisor."""
    mask8 = (torch.rand(8, 8, generator=gen(0)) > 0.4).float()
    mri = torch.zeros(16, 16)
    mri[:, ::4] = 1
    mri[:, 6:10] = 1
    hole = torch.ones(8, 8)
    hole[0, 0] = 0
    return {
        "denoising-gaussian": dict(physics=Denoising(noise=Gaussian(0.1))),
        "denoising-noiseless": dict(physics=Denoising()),
        "denoising-gamma": dict(physics=Denoising(noise=Gamma(10.0))),
        "denoising-poisson-untrusted": dict(physics=Denoising(noise=Poisson(0.05)), noise_known=False),
        "denoising-unknown-correlated": dict(physics=Denoising(noise=Unknown(separable=False))),
        "denoising-unknown-separable-pairs": dict(physics=Denoising(noise=Unknown(separable=True)), pairs=True),
        "denoising-correlated-gaussian": dict(physics=Denoising(noise=CorrelatedGaussian(0.1, torch.ones(3, 3) / 9))),
        "inpainting-noiseless-shift": dict(physics=Inpainting(mask8), transforms=[Shift()]),
        "inpainting-sampler-gaussian-shift": dict(
            physics=Inpainting(mask8, noise=Gaussian(0.05)), sampler=BernoulliMaskSampler(8, p=0.5), transforms=[Shift()]
        ),
        # every mask of the family hides the whole image: rank 0
        "inpainting-family-short-gaussian": dict(physics=Inpainting(hole, noise=Gaussian(0.05)), sampler=BlockMaskSampler(8, 8)),
        "mri-gaussian-shift-rotate": dict(physics=MRI(mri, noise=Gaussian(0.02)), transforms=[Shift(), Rotate(4)]),
        "blur-gaussian": dict(physics=Blur(gaussian_kernel(1.0), noise=Gaussian(0.05)), x_shape=(1, 8, 8)),
        "blur-noiseless-shift": dict(physics=Blur(gaussian_kernel(1.0)), transforms=[Shift()], x_shape=(1, 8, 8)),
    }


#: per setting: "✓|✗ reason" -> the losses that got it (captured before the advisor read LossInfo facts)
BEFORE: dict[str, dict[str, list[str]]] = {
    "denoising-gaussian": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ collapses to f(y) = y on noisy data (kept as a reference)": ["mc"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✓ applies (MMSE-optimal)": ["r2r", "sure"],
        "✓ applies": ["noisier2noise", "noise2score"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure", "unsure_covariance", "unsure_pg", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✗ A = I: nothing in the nullspace for equivariance to recover": ["ei", "rei"],
    },
    "denoising-noiseless": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ nothing to learn: noiseless denoising": ["mc", "r2r", "noisier2noise", "sure", "unsure", "unsure_covariance", "unsure_pg", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder", "splitting", "moi", "ei", "rei"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
    },
    "denoising-gamma": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ collapses to f(y) = y on noisy data (kept as a reference)": ["mc"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✓ applies (MMSE-optimal)": ["r2r"],
        "✗ supports Gaussian noise, not Gamma": ["noisier2noise"],
        "✗ supports Gaussian, Poisson, PoissonGaussian noise, not Gamma": ["sure", "rei"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure", "unsure_covariance", "unsure_pg", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✓ applies": ["noise2score"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✗ A = I: nothing in the nullspace for equivariance to recover": ["ei"],
    },
    "denoising-poisson-untrusted": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ needs the noise model and its level, which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["mc", "splitting", "moi", "ei"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ needs the noise model and its level (Gaussian, Poisson, Gamma), which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["r2r", "noise2score"],
        "✗ needs the noise model and its level (Gaussian), which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["noisier2noise"],
        "✗ needs the noise model and its level (Gaussian, Poisson, PoissonGaussian), which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["sure", "rei"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure", "unsure_covariance", "unsure_pg", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
    },
    "denoising-unknown-correlated": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ needs the noise model and its level; yours is unknown and possibly correlated": ["mc", "r2r", "noisier2noise", "sure", "noise2score", "splitting", "moi", "ei", "rei"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ tolerates unknown noise only when it is independent between entries; yours is unknown and possibly correlated": ["unsure", "unsure_pg", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure_covariance", "autoencoder"],
    },
    "denoising-unknown-separable-pairs": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ needs the noise model and its level, which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["mc", "splitting", "moi", "ei"],
        "✓ applies (MMSE-optimal)": ["noise2noise"],
        "✗ needs the noise model and its level (Gaussian, Poisson, Gamma), which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["r2r", "noise2score"],
        "✗ needs the noise model and its level (Gaussian), which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["noisier2noise"],
        "✗ needs the noise model and its level (Gaussian, Poisson, PoissonGaussian), which are unknown here (estimate them, or use a loss that tolerates unknown noise)": ["sure", "rei"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure", "unsure_covariance", "unsure_pg", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
    },
    "denoising-correlated-gaussian": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ collapses to f(y) = y on noisy data (kept as a reference)": ["mc"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ supports Gaussian, Poisson, Gamma noise, not CorrelatedGaussian": ["r2r", "noise2score"],
        "✗ supports Gaussian noise, not CorrelatedGaussian": ["noisier2noise"],
        "✗ supports Gaussian, Poisson, PoissonGaussian noise, not CorrelatedGaussian": ["sure", "rei"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure", "unsure_covariance", "unsure_pg", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✗ A = I: nothing in the nullspace for equivariance to recover": ["ei"],
    },
    "inpainting-noiseless-shift": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ only sees the range of A: the nullspace stays unlearned (add EI/REI or MOI)": ["mc", "unsure", "unsure_covariance", "unsure_pg"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ needs a noise model in physics.noise": ["r2r", "sure", "rei"],
        "✗ defined for denoising (A = I) only, not Inpainting": ["noisier2noise", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✓ full rank with Shift()": ["ei"],
    },
    "inpainting-sampler-gaussian-shift": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✓ estimates the measurement risk; the operator family makes it identifiable": ["mc", "r2r", "sure", "unsure", "unsure_covariance", "unsure_pg"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ defined for denoising (A = I) only, not Inpainting": ["noisier2noise", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✓ the operators together have full rank (64/64)": ["splitting", "moi"],
        "✗ noisy data: use rei (SURE/R2R consistency) instead": ["ei"],
        "✓ full rank with Shift()": ["rei"],
    },
    "inpainting-family-short-gaussian": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ only sees the range of A: the nullspace stays unlearned (add EI/REI or MOI)": ["mc", "r2r", "sure", "unsure", "unsure_covariance", "unsure_pg"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ defined for denoising (A = I) only, not Inpainting": ["noisier2noise", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✗ the operator family is not identifiable: rank 0/64": ["splitting", "moi"],
        "✗ no given transform group makes rank E_g T_gᵀAᵀAT_g = n (try rotations, shifts)": ["ei", "rei"],
    },
    "mri-gaussian-shift-rotate": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✗ only sees the range of A: the nullspace stays unlearned (add EI/REI or MOI)": ["mc", "r2r", "sure", "unsure", "unsure_covariance", "unsure_pg"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ defined for denoising (A = I) only, not MRI": ["noisier2noise", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✗ no given transform group makes rank E_g T_gᵀAᵀAT_g = n (try rotations, shifts)": ["ei", "rei"],
    },
    "blur-gaussian": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✓ applies": ["mc"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✓ applies (MMSE-optimal)": ["r2r", "sure"],
        "✗ defined for denoising (A = I) only, not Blur": ["noisier2noise", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✓ valid for noise independent between entries, not MMSE-optimal": ["unsure", "unsure_covariance", "unsure_pg"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✗ no given transform group makes rank E_g T_gᵀAᵀAT_g = n (try rotations, shifts)": ["ei", "rei"],
    },
    "blur-noiseless-shift": {
        "✗ needs ground truth x (the reference to compare with, not a training option)": ["supervised"],
        "✓ applies": ["mc", "unsure", "unsure_covariance", "unsure_pg"],
        "✗ needs two independent measurements of each image (pairs=True)": ["noise2noise"],
        "✗ needs a noise model in physics.noise": ["r2r", "sure", "rei"],
        "✗ defined for denoising (A = I) only, not Blur": ["noisier2noise", "noise2score", "noise2void", "noise2self", "neighbor2neighbor", "blind_spot", "autoencoder"],
        "✗ needs measurements through several operators (give the operator family)": ["splitting", "moi"],
        "✓ full rank with Shift()": ["ei"],
    },
}


@pytest.mark.parametrize("setting", list(BEFORE))
def test_advisor_verdicts_are_those_of_the_name_tables_it_replaced(setting):
    advice = advise(**settings()[setting])
    expected = {loss: f"{reason[0]} {loss}: {reason[2:]}" for reason, losses in BEFORE[setting].items() for loss in losses}
    assert {v.loss: str(v) for v in advice.verdicts if v.loss in expected} == expected


def test_advisor_names_no_loss():
    """The rules read LossInfo fields only: no registered loss name appears as a string in advisor.py."""
    source = (ROOT / "selfinv" / "advisor.py").read_text()
    quoted = set(re.findall(r"[\"']([a-z0-9_]+)[\"']", source))
    assert not quoted & set(LOSSES)


def test_every_loss_states_its_facts():
    from selfinv.config import LOSS_BACKBONES

    for name, cls in LOSSES.items():
        loss = cls.example()
        assert isinstance(loss, cls), name
        info = loss.info
        assert info.risk in ("image", "measurement"), name
        assert not (info.needs_operator_family and info.needs_transforms), name
        if info.risk == "measurement" or info.needs_operator_family or info.needs_transforms:
            assert info.general_operator, name  # these facts are about A ≠ I
        # the default backbone meets the loss's needs, and the config's table is read off the classes
        assert cls.needs_backbone.items() <= cls.default_backbone.items(), name
        assert LOSS_BACKBONES.get(name, {}) == (cls.default_backbone if cls.needs_backbone else {}), name
    with pytest.raises(ValueError, match="risk must be"):
        LossInfo(train_evals=1, reference="", risk="nullspace")


def test_loss_examples_follow_the_registry():
    from selfinv.losses import summary_table

    rows = summary_table().splitlines()[2:]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == list(LOSSES)
    assert LOSSES["moi"].example().sampler.img_size == (8, 8)
    assert isinstance(LOSSES["rei"].example().transform, Shift)
    assert LOSSES["ei"].example().info.noise_caveat is not None  # MC consistency fits the noise
    assert LOSSES["rei"].example().info.noise_caveat is None  # SURE consistency does not


# ---------------------------------------------------------------------- a loss defined here, registered only
class HalfMC(Loss):
    """A measurement-consistency variant, s‖y − A f(y)‖²: a new loss with its facts and nothing else."""

    info = LossInfo(
        train_evals=1,
        test_evals=1,
        single_y=True,
        mmse_optimal=False,
        unknown_separable_noise=True,
        unknown_coloured_noise=False,
        noise_models=(Gaussian,),
        general_operator=True,
        reference="a test",
        risk="measurement",
    )
    needs_backbone = {"residual": False}  # noqa: RUF012
    default_backbone = {"name": "dncnn", "depth": 2, "width": 8, "residual": False}  # noqa: RUF012

    def __init__(self, scale: float = 0.5) -> None:
        super().__init__()
        self.scale = float(scale)

    @classmethod
    def example(cls) -> HalfMC:
        return cls(scale=0.25)

    def _loss(self, ctx):
        return self.scale * sq_mean(ctx.y - ctx.physics.A(ctx.x_hat))


def test_a_registered_loss_reaches_the_advisor_and_the_templates(monkeypatch):
    from selfinv.cli.templates import TASKS, render
    from selfinv.config import registry_fields

    monkeypatch.setitem(LOSSES, "half_mc", HalfMC)
    mask = (torch.rand(8, 8, generator=gen(1)) > 0.4).float()
    fixed = advise(Inpainting(mask, noise=Gaussian(0.1)))
    assert str(fixed.verdict("half_mc")) == "✗ half_mc: only sees the range of A: the nullspace stays unlearned (add EI/REI or MOI)"
    family = advise(Inpainting(mask, noise=Gaussian(0.1)), sampler=BernoulliMaskSampler(8, p=0.5), n_operators=8)
    assert family.verdict("half_mc").applicable
    assert "supports Gaussian noise, not Poisson" in advise(Denoising(noise=Poisson(0.1))).verdict("half_mc").reason

    assert registry_fields("loss", HalfMC) == {"scale": 0.5}
    text = render("ct", "half_mc")
    data = yaml.safe_load(text)
    assert data["loss"]["name"] == "half_mc" and "# scale: 0.5" in text
    assert data["loss"]["extra"][0]["name"] == "ei"  # a measurement risk on a fixed CT operator gets the EI term
    assert data["model"] == {"backbone": HalfMC.default_backbone, "wrapper": {"name": "none"}}
    for task in TASKS:
        assert yaml.safe_load(render(task, "half_mc"))["loss"]["name"] == "half_mc"


_REGISTER_AND_BUILD = """
import sys
import yaml
from selfinv import losses
from tests.test_loss_facts import HalfMC

assert "selfinv.config" not in sys.modules, "tests/test_loss_facts.py must not import selfinv.config at the top"
losses.LOSSES["half_mc"] = HalfMC  # the registry line; nothing else is told about the loss
from selfinv.cli.templates import render
from selfinv.config import parse_config
from selfinv.experiment import build_loss

cfg = parse_config(yaml.safe_load(render("denoising", "half_mc")))
loss = build_loss(cfg)
print(type(loss).__name__, loss.scale, cfg.model.backbone.name)
"""


def test_a_registered_loss_gets_a_config_schema_entry_and_a_template_that_builds():
    """In a fresh interpreter, as if the line were in selfinv/losses/__init__.py: the schema, ``config init``
    and the builders know the loss."""
    r = subprocess.run([sys.executable, "-c", _REGISTER_AND_BUILD], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["HalfMC", "0.5", "dncnn"]
