"""A trained model on a data set: per-image PSNR/SSIM against the no-learning baseline, the loss on the data,
the estimator's time (:func:`evaluate_dataset`), and the network evaluations of one training step, counted
(:func:`count_network_evals`). ``selfinv evaluate`` scores a checkpoint on a config's test data or on a
measurement set (:func:`config_evaluation_set`, :func:`measurement_evaluation_set`, :func:`evaluation_record`).

The batches come from :func:`selfinv.training.validation.evaluation_batches`, the loop validation runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from selfinv.config import Config
from selfinv.data import collate
from selfinv.engine.data import build_data, build_test_set, split_data
from selfinv.engine.files import clean_floats
from selfinv.engine.measurements import measurement_set
from selfinv.losses.base import estimate
from selfinv.training.validation import baseline, evaluation_batches, image_metrics

__all__ = [
    "CallCounter",
    "Evaluation",
    "EvaluationSet",
    "config_evaluation_set",
    "count_network_evals",
    "evaluate_dataset",
    "evaluation_record",
    "measurement_evaluation_set",
]


@dataclass
class Evaluation:
    """What :func:`evaluate_dataset` measured."""

    n: int
    has_truth: bool
    loss: float | None
    psnr: list[float]
    ssim: list[float]
    baseline_psnr: list[float]
    baseline_ssim: list[float]
    seconds_per_image: float
    names: list[str]
    examples: dict[str, torch.Tensor] = field(default_factory=dict)
    measurement_title: str = "measurement"  # of examples["measurement"]: "measurement y" or "measurement (Aᴴy)"

    @staticmethod
    def _mean(v: list[float]) -> float | None:
        return float(sum(v) / len(v)) if v else None

    def summary(self) -> dict[str, Any]:
        return {
            "n_images": self.n,
            "psnr": self._mean(self.psnr),
            "ssim": self._mean(self.ssim),
            "baseline": {"psnr": self._mean(self.baseline_psnr), "ssim": self._mean(self.baseline_ssim)},
            "loss": self.loss,
            "seconds_per_image": self.seconds_per_image,
        }


def evaluate_dataset(model, loss, dataset, data_range: float | None, device, batch_size: int = 4, seed: int = 0,
                     with_loss: bool = True, examples: int = 0, progress: bool = False) -> Evaluation:
    """Per-image PSNR/SSIM of the loss's test-time estimator and of the no-learning baseline (with ground
    truth), the loss on the data (self-supervised, with fixed draws), and the estimator's time per image.

    Draws come from generators seeded with ``seed``: one per batch for the loss (as in validation), one for
    the estimator's draws over the whole pass (PyTorch's global generator is not touched)."""
    from selfinv.training.figures import display_measurement

    model.eval()
    loss.eval()
    estimator = loss.test_model(model)
    out = Evaluation(len(dataset), False, None, [], [], [], [], 0.0, list(getattr(dataset, "names", [])))
    total_loss, n_loss, seconds = 0.0, 0, 0.0
    g_estimate = torch.Generator().manual_seed(seed)
    for step in evaluation_batches(dataset, batch_size, device, seed, progress=progress, desc="evaluate",
                                   estimator_generator=g_estimate):
        batch, physics, n = step.batch, step.physics, len(step.indices)
        if with_loss:
            try:
                with torch.no_grad():
                    value = loss(batch.y, physics, model, x=batch.x, y2=batch.y2, generator=step.loss_generator)
                total_loss += float(value) * n
                n_loss += n
            except ValueError:  # e.g. the supervised loss on data without ground truth
                with_loss = False
        with torch.no_grad():
            t0 = time.perf_counter()
            x_hat = estimate(estimator, batch.y, physics, step.estimator_generator)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - t0
            x0 = baseline(batch.y, physics)
        if batch.x is not None and data_range is not None:
            out.has_truth = True
            metrics = image_metrics(x_hat, x0, batch.x, data_range)
            out.psnr += metrics["psnr"].tolist()
            out.ssim += metrics["ssim"].tolist()
            out.baseline_psnr += metrics["baseline_psnr"].tolist()
            out.baseline_ssim += metrics["baseline_ssim"].tolist()
        if step.index == 0 and examples:
            shown, title = display_measurement(batch.y, physics, x_hat)
            out.examples = {"measurement": shown[0].cpu(), "no learning": x0[0].cpu(), "reconstruction": x_hat[0].cpu()}
            out.measurement_title = title
            if batch.x is not None:
                out.examples["truth"] = batch.x[0].cpu()
    out.loss = total_loss / n_loss if n_loss else None
    out.seconds_per_image = seconds / max(len(dataset), 1)
    return out


class CallCounter:
    """Counts forward calls of a module (network evaluations)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.count = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *args) -> None:
        self.count += 1

    def close(self) -> None:
        self._handle.remove()


def count_network_evals(model, loss, dataset, device, batch_size: int, seed: int) -> int | None:
    """Network evaluations of one training step, counted (one forward and backward pass on a training batch)."""
    if len(dataset) == 0:
        return None
    idx = list(range(min(batch_size, len(dataset))))
    batch = collate([dataset[i] for i in idx]).to(device)
    physics = dataset.make_physics(batch.params).to(device)
    model.train()
    loss.train()
    counter = CallCounter(model)
    try:
        value = loss(batch.y, physics, model, x=batch.x, y2=batch.y2, generator=torch.Generator().manual_seed(seed))
        value.backward()
    finally:
        counter.close()
        model.zero_grad(set_to_none=True)
    return counter.count


@dataclass
class EvaluationSet:
    """The data a checkpoint is evaluated on, in the model's units."""

    dataset: Any
    source: str  # what it is, for the report line
    data_range: float | None
    fallback: bool = False  # the validation split stands in for a test set the config does not have


def config_evaluation_set(restored, cfg: Config, name: str) -> EvaluationSet:
    """A config's test split (simulated as in training), else its validation split; ``name`` names the config."""
    ds = build_test_set(cfg, normalization=restored.normalization)  # in the model's units
    if ds is not None:
        return EvaluationSet(ds, f"{name} (test split)", cfg.data.data_range)
    data = build_data(cfg)
    ds = split_data(data.cfg, data.dataset)[1]
    return EvaluationSet(ds, f"{name} (validation split: the config has no data.test_path)", data.cfg.data.data_range,
                         fallback=True)


def measurement_evaluation_set(restored, path: Path) -> EvaluationSet:
    """A measurement set (metrics need its x) with the checkpoint's operator, normalisation and data range."""
    ds = measurement_set(restored.cfg, path, img_shape=restored.img_shape, normalization=restored.normalization).dataset
    return EvaluationSet(ds, path.name, restored.cfg.data.data_range)


def evaluation_record(checkpoint: Path, data: Path, restored, ev: Evaluation, data_range: float | None) -> dict[str, Any]:
    """The JSON of ``selfinv evaluate``: the checkpoint, the data, the summary and the per-image metrics."""
    return clean_floats({
        "checkpoint": str(checkpoint),
        "data": str(data),
        "loss_name": restored.cfg.loss.name,
        "step": restored.step,
        "data_range": data_range,
        **ev.summary(),
        "per_image": [
            {"name": n, **({"psnr": ev.psnr[i], "ssim": ev.ssim[i], "baseline_psnr": ev.baseline_psnr[i],
                            "baseline_ssim": ev.baseline_ssim[i]} if ev.has_truth else {})}
            for i, n in enumerate(ev.names[: ev.n])
        ],
    })
