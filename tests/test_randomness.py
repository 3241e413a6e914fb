"""The randomness contract: results are reproducible from the seed, and no library call moves PyTorch's global
generator (validate, evaluate, the report's examples, fit, build_model, and the reconstruct/evaluate commands)
with an averaging test-time estimator (R2R)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from selfinv.config import parse_config
from selfinv.data import SimulatedDataset, embedded_images, write_image
from selfinv.engine.evaluate import evaluate_dataset
from selfinv.engine.model_builders import build_model
from selfinv.engine.run_report import example_rows
from selfinv.losses import R2R, Noisier2Noise, Splitting
from selfinv.models import DnCNN
from selfinv.noise import Gaussian
from selfinv.physics import Denoising
from selfinv.training import FitConfig, fit, validate
from tests.cli.common import run, tiny_denoising, write_yaml

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


def data_and_model():
    data = SimulatedDataset(embedded_images(names=["camera", "coins"]), Denoising(), noise=Gaussian(0.1), seed=0,
                            patch_size=12, patches_per_image=2)
    return data, DnCNN(1, 1, depth=2, width=4, batch_norm=False)


class GlobalStateKept:
    """Asserts that PyTorch's global generator is where it was when the block started."""

    def __enter__(self):
        self.state = torch.get_rng_state()

    def __exit__(self, *exc):
        if exc[0] is None:
            assert torch.equal(torch.get_rng_state(), self.state), "the global generator moved"


#: losses whose default test-time estimator averages over random draws
LOSSES = {"r2r": R2R, "noisier2noise": Noisier2Noise, "splitting_average": lambda: Splitting(mode="average")}


@pytest.mark.parametrize("name", list(LOSSES))
def test_validate_is_reproducible_and_leaves_the_global_generator_alone(name):
    data, model = data_and_model()
    loss = LOSSES[name]()
    with GlobalStateKept():
        a = validate(model, loss, data, 2, CPU, seed=3, data_range=1.0)
    torch.rand(5)  # the global state in between does not matter ...
    b = validate(model, loss, data, 2, CPU, seed=3, data_range=1.0)
    assert a == b  # ... the same seed gives the same numbers
    c = validate(model, loss, data, 2, CPU, seed=4, data_range=1.0)
    assert c["val_psnr"] != a["val_psnr"]


def test_evaluate_and_examples_are_reproducible_and_leave_the_global_generator_alone():
    data, model = data_and_model()
    loss = R2R()
    with GlobalStateKept():
        a = evaluate_dataset(model, loss, data, 1.0, CPU, batch_size=2, seed=1, examples=1)
        rows_a, _ = example_rows(model, loss, data, 2, CPU)
    torch.rand(5)
    b = evaluate_dataset(model, loss, data, 1.0, CPU, batch_size=2, seed=1, examples=1)
    rows_b, _ = example_rows(model, loss, data, 2, CPU)
    assert (a.psnr, a.ssim, a.loss) == (b.psnr, b.ssim, b.loss)
    assert torch.equal(a.examples["reconstruction"], b.examples["reconstruction"])
    assert all(torch.equal(r["reconstruction"], s["reconstruction"]) for r, s in zip(rows_a, rows_b, strict=True))
    c = evaluate_dataset(model, loss, data, 1.0, CPU, batch_size=2, seed=2)
    assert c.psnr != a.psnr


def test_fit_and_build_model_are_reproducible_and_leave_the_global_generator_alone():
    data, _ = data_and_model()
    cfg = parse_config(tiny_denoising())
    with GlobalStateKept():
        weights = [build_model(cfg, 1, False).state_dict() for _ in range(2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    histories = []
    for _ in range(2):
        model = build_model(cfg, 1, False)
        with GlobalStateKept():
            state = fit(model, R2R(), data, data, FitConfig(epochs=1, batch_size=4, max_steps=2, device="cpu"))
        histories.append([{k: v for k, v in h.items() if "seconds" not in k} for h in state.history])
        torch.rand(5)
    assert histories[0] == histories[1] and "val_psnr" in histories[0][-1]


def test_reconstruct_and_evaluate_commands_are_reproducible_and_leave_the_global_generator_alone(tmp_path):
    cfg = tiny_denoising(tmp_path / "run", max_steps=1)
    cfg["loss"] = {"name": "r2r", "n_samples": 2}
    config = write_yaml(tmp_path / "r2r.yaml", cfg)
    assert run("train", config).exit_code == 0
    y = np.clip(embedded_images(names=["camera"])[0][:, :24, :20] + 0.1, 0, 1).astype(np.float32)
    write_image(tmp_path / "y.tif", y)
    results = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        with GlobalStateKept():
            r = run("reconstruct", tmp_path / "run" / "last.pt", tmp_path / "y.tif", "-o", out, "--no-progress")
            assert r.exit_code == 0, r.stderr
            e = run("evaluate", tmp_path / "run" / "last.pt", config, "--json", "--no-progress")
            assert e.exit_code == 0, e.stderr
        metrics = json.loads(e.stdout)
        results.append(((out / "y.tif").read_bytes(), metrics["psnr"], metrics["loss"]))
        torch.rand(5)  # moved on purpose between the two runs ...
    assert results[0] == results[1]  # ... the outputs depend on the config's seed only
