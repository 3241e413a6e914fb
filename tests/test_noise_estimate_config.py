"""``noise: {name: estimate}``: the engine estimates the noise from the training measurements, replaces the
placeholder by the concrete model (what the run records), and ``selfinv check`` prints the estimate and the losses
it makes usable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from selfinv.advisor import advise
from selfinv.config import ConfigError, parse_config
from selfinv.engine.build import build_experiment
from selfinv.noise import Estimate, Gaussian, PoissonGaussian
from selfinv.physics import Denoising
from tests.cli.common import run, tiny_denoising, write_yaml


def simulated(model: str = "auto", patch: int = 32, **true_noise) -> dict:
    cfg = tiny_denoising()
    cfg["data"].update(patch_size=patch, patches_per_image=4, true_noise=true_noise or {"name": "gaussian", "sigma": 0.1})
    cfg["noise"] = {"name": "estimate", "model": model}
    return cfg


def test_estimate_is_replaced_by_the_concrete_model_of_the_simulated_measurements():
    exp = build_experiment(parse_config(simulated()))
    assert exp.cfg.noise.name == "gaussian" and abs(exp.cfg.noise.sigma / 0.1 - 1) < 0.1
    assert isinstance(exp.physics.noise, Gaussian) and exp.noise_estimate is not None
    assert exp.noise_estimate.n == len(exp.dataset) and "estimated noise: Gaussian" in exp.noise_estimate.summary()
    pg = build_experiment(parse_config(simulated("poisson_gaussian", 128, name="poisson_gaussian", gain=0.05, sigma=0.02)))
    assert pg.cfg.noise.name == "poisson_gaussian" and isinstance(pg.physics.noise, PoissonGaussian)
    assert abs(pg.cfg.noise.gain / 0.05 - 1) < 0.25


def test_simulated_data_need_the_true_noise():
    cfg = tiny_denoising()
    cfg["noise"] = {"name": "estimate"}
    with pytest.raises(ConfigError, match="data.true_noise"):
        build_experiment(parse_config(cfg))
    with pytest.raises(ValueError, match="model must be one of"):
        Estimate(model="poisson")


def test_the_advisor_treats_an_estimate_as_known_after_estimation():
    verdicts = {v.loss: v for v in advise(Denoising(noise=Estimate("gaussian"))).verdicts}
    assert verdicts["sure"].applicable and verdicts["r2r"].applicable
    assert "to be estimated" in str(advise(Denoising(noise=Estimate())))


@pytest.fixture
def measurement_folder(tmp_path):
    """Six noisy 64x64 ramps (σ = 0.05) as .npy measurement files: no ground truth, no noise level."""
    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "raw"
    folder.mkdir()
    x = torch.linspace(0.1, 0.9, 64).repeat(64, 1)
    for i in range(6):
        y = x + 0.05 * torch.randn(64, 64, generator=g)
        np.save(folder / f"frame{i}.npy", y[None].numpy().astype(np.float32))
    return folder


def measurement_config(folder, run_dir=None) -> dict:
    cfg = tiny_denoising(run_dir)
    cfg["data"] = {"source": "measurements", "path": str(folder), "patch_size": 32, "normalization": "none"}
    cfg["noise"] = {"name": "estimate"}
    return cfg


def test_check_prints_the_estimate_and_the_losses_it_makes_valid(measurement_folder, tmp_path):
    r = run("check", write_yaml(tmp_path / "c.yaml", measurement_config(measurement_folder)))
    assert r.exit_code == 0, r.stderr
    line = next(t for t in r.stdout.splitlines() if t.startswith("estimated noise"))
    assert line.startswith("estimated noise: Gaussian, σ 0.0") and "median over 6 measurements" in line and "range" in line
    assert abs(float(line.split("σ ")[1].split(" ")[0]) / 0.05 - 1) < 0.05
    enabled = next(t for t in r.stdout.splitlines() if t.startswith("With this estimate"))
    assert "sure" in enabled and "r2r" in enabled and "noise2void" not in enabled
    assert "✓ sure" in r.stdout


@pytest.mark.slow
def test_training_sure_with_the_estimated_noise_records_the_concrete_model(measurement_folder, tmp_path):
    run_dir = tmp_path / "run"
    r = run("train", write_yaml(tmp_path / "c.yaml", measurement_config(measurement_folder, run_dir)))
    assert r.exit_code == 0, r.stderr
    assert "estimated noise: Gaussian" in r.stderr
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["noise"]["name"] == "gaussian" and abs(resolved["noise"]["sigma"] / 0.05 - 1) < 0.1
    assert "estimated noise" in (run_dir / "report.md").read_text()


def test_measured_frames_keep_their_own_noise_level_in_training(tmp_path):
    """Frames of different noise levels: the patches and batches the losses see carry each frame's own estimate
    (a single median would give SURE the wrong σ on every frame), while the config records the median."""
    g = torch.Generator().manual_seed(1)
    folder = tmp_path / "raw"
    folder.mkdir()
    x = torch.linspace(0.1, 0.9, 64).repeat(64, 1)
    sigmas = [0.02, 0.05, 0.1, 0.2]
    for i, s in enumerate(sigmas):
        np.save(folder / f"frame{i}.npy", (x + s * torch.randn(64, 64, generator=g))[None].numpy().astype(np.float32))
    cfg = measurement_config(folder)
    cfg["noise"] = {"name": "estimate", "model": "gaussian"}
    cfg["data"]["val_fraction"] = 0.0
    exp = build_experiment(parse_config(cfg))
    per_frame = exp.dataset.params["noise.sigma"]
    assert per_frame.shape == (4,) and torch.allclose(per_frame, torch.tensor(sigmas), rtol=0.1)
    assert abs(exp.cfg.noise.sigma / float(per_frame.median()) - 1) < 1e-6  # the config: one median model
    seen = {float(exp.train[i].params["noise.sigma"]) for i in range(len(exp.train))}
    assert seen == {float(v) for v in per_frame}  # every patch carries a frame's level ...
    for i in range(0, len(exp.train), 7):  # ... its own frame's: the patch's own noise (row differences) agrees
        s = exp.train[i]
        own = float((s.y[..., :, 1:] - s.y[..., :, :-1]).std() / 2**0.5)
        assert abs(own / float(s.params["noise.sigma"]) - 1) < 0.3
    patch = exp.train[0]
    physics = exp.train.make_physics({k: v[None] for k, v in patch.params.items()})
    assert float(physics.noise.sigma.reshape(-1)[0]) == float(patch.params["noise.sigma"])


def test_a_black_level_is_estimated_as_the_poisson_gaussian_offset_and_reported():
    """Var(y) = γ(x − c) (a camera pedestal c, Foi et al. 2008): the fitted level is negative, so the estimated model
    carries the black level as its offset (c ≈ the truth, σ = 0) and the summary says so; pure Poisson noise (c = 0)
    gets no offset and no note."""
    from selfinv.data import MeasurementDataset
    from selfinv.engine.noise_estimate import estimate_dataset_noise

    g = torch.Generator().manual_seed(0)
    x = torch.linspace(0.25, 1.0, 256).repeat(4, 1, 256, 1)
    gain = 0.05
    for c, expect in ((0.2, True), (0.0, False)):
        y = c + gain * torch.poisson((x - c) / gain, generator=g)
        ds = MeasurementDataset(y, Denoising())
        est = estimate_dataset_noise(ds, ds.physics_template, Estimate("poisson_gaussian"), (1, 256, 256))
        note = est.black_level_note()
        assert (note is not None) == expect, note
        assert isinstance(est.noise, PoissonGaussian) and torch.equal(est.black_level, est.per_sample.offset)
        if expect:
            assert torch.allclose(est.black_level, torch.full((4,), c, dtype=est.black_level.dtype), rtol=0.3)
            assert abs(float(est.noise.offset) / c - 1) < 0.3 and est.section["offset"] == float(est.noise.offset)
            assert bool((est.per_sample.sigma == 0).all())
            assert note in est.summary() and "4 of 4 measurements" in note and "y − c" in note
        else:
            assert float(est.noise.offset) == 0 and "offset" not in est.section
