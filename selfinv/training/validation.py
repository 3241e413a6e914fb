"""Self-supervised validation: the training loss on held-out measurements with fixed draws.

A validation set that defines ``validation_loss(estimator, batch, physics, generator)`` replaces the training
loss by its own criterion: :class:`selfinv.training.holdout.HeldOutEntries` (held-out entries of the same
measurements, for a single measurement) measures the prediction error on entries the network never saw.

Every validation batch uses generators seeded from ``(seed, batch index)``, one for the loss and one for the
test-time estimator (:func:`~selfinv.losses.base.estimate`), so masks, recorruptions and perturbations are the
same at every epoch, validation numbers are comparable, and PyTorch's global generator is never touched. The
model is in eval mode and the loss too (learned state such as the UNSURE multiplier is frozen). With ground
truth, PSNR and SSIM (explicit data range) are reported for the loss's test-time estimator and for the
no-learning baseline (y for denoising, filtered back-projection for tomography, A†y otherwise).

:func:`evaluation_batches` is the one batch loop of such passes (validation here, and the evaluation of a
trained model, :func:`selfinv.engine.evaluate.evaluate_dataset`); :func:`image_metrics` scores a batch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from selfinv.data._seeds import generator as seeded
from selfinv.data.samples import Batch, collate
from selfinv.losses.base import Loss, estimate
from selfinv.physics.base import LinearOperator
from selfinv.training.distributed import DistContext
from selfinv.training.metrics import psnr, ssim

VALIDATION_STREAM = 1_000_003  # offsets validation seeds from the training steps' seeds


def baseline(y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
    """The no-learning reconstruction, the operator's own :meth:`~selfinv.physics.LinearOperator.no_learning`:
    y (denoising; deblurring, where A†y amplifies the noise without bound on the frequencies the blur nearly
    kills), FBP (tomography) or A†y."""
    return physics.no_learning(y)


def batches(n: int, batch_size: int) -> list[list[int]]:
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


@dataclass
class EvaluationBatch:
    """One batch of a pass over a data set (:func:`evaluation_batches`)."""

    index: int  # the batch's place in the pass (every rank counts every batch)
    indices: list[int]  # the samples of the data set in it (this rank's share)
    batch: Batch  # on the device
    physics: LinearOperator  # the batch's operators, on the device
    loss_generator: torch.Generator  # the loss's draws
    estimator_generator: torch.Generator  # the test-time estimator's draws


def evaluation_batches(
    dataset,
    batch_size: int,
    device: torch.device,
    seed: int,
    dist: DistContext | None = None,
    progress: bool = False,
    desc: str = "validate",
    estimator_generator: torch.Generator | None = None,
) -> Iterator[EvaluationBatch]:
    """The batches of one pass over ``dataset``, in order (under DDP, this rank's share of each), with their
    physics on ``device`` and seeded generators: the loss's seeded with ``seed · VALIDATION_STREAM + b`` for batch
    b, the estimator's from ``(seed, "validation estimator", b)``, or ``estimator_generator`` for the whole pass
    when given. ``progress``: a tqdm bar (``desc``) on stderr."""
    plan = batches(len(dataset), batch_size)
    for b, indices in enumerate(tqdm(plan, desc=desc, unit="batch", leave=False, disable=not progress, file=sys.stderr)):
        mine = dist.shard(indices) if dist is not None else indices
        if not mine:
            continue
        batch = collate([dataset[i] for i in mine]).to(device)
        physics = dataset.make_physics(batch.params).to(device)
        g = torch.Generator().manual_seed(seed * VALIDATION_STREAM + b)
        g_estimate = estimator_generator if estimator_generator is not None else seeded(seed, "validation estimator", b)
        yield EvaluationBatch(b, mine, batch, physics, g, g_estimate)


def image_metrics(x_hat: torch.Tensor, x0: torch.Tensor, x: torch.Tensor, data_range: float) -> dict[str, torch.Tensor]:
    """Per-image PSNR and SSIM of a reconstruction ``x_hat`` and of the no-learning baseline ``x0`` against ``x``."""
    return {
        "psnr": psnr(x_hat, x, data_range),
        "ssim": ssim(x_hat, x, data_range),
        "baseline_psnr": psnr(x0, x, data_range),
        "baseline_ssim": ssim(x0, x, data_range),
    }


def validate(
    model: torch.nn.Module,
    loss: Loss,
    dataset,
    batch_size: int,
    device: torch.device,
    seed: int,
    data_range: float | None = None,
    dist: DistContext | None = None,
    progress: bool | None = None,
) -> dict[str, float]:
    """Mean validation loss (and metrics with ground truth) over ``dataset``, under ``no_grad``.

    ``progress``: a tqdm bar with ETA on stderr (default: when stderr is a terminal, main process only).
    """
    dist = dist or DistContext()
    was_training = (model.training, loss.training)
    model.eval()
    loss.eval()
    estimator = loss.test_model(model)
    held_out = getattr(dataset, "validation_loss", None)  # selfinv.training.holdout.HeldOutEntries
    sums = torch.zeros(6, dtype=torch.float64)  # loss·n, n, psnr, ssim, psnr_base, ssim_base
    show = (sys.stderr.isatty() if progress is None else progress) and dist.is_main
    with torch.no_grad():
        for step in evaluation_batches(dataset, batch_size, device, seed, dist=dist, progress=show):
            batch, physics = step.batch, step.physics
            if held_out is not None:  # validation within the measurements: the error on held-out entries
                value = held_out(estimator, batch, physics, step.estimator_generator)
            else:
                value = loss(batch.y, physics, model, x=batch.x, y2=batch.y2, generator=step.loss_generator)
            n = len(step.indices)
            sums[0] += float(value) * n
            sums[1] += n
            if batch.x is not None and data_range is not None:
                x_hat = estimate(estimator, batch.y, physics, step.estimator_generator)
                metrics = image_metrics(x_hat, baseline(batch.y, physics), batch.x, data_range)
                for i, k in enumerate(("psnr", "ssim", "baseline_psnr", "baseline_ssim"), start=2):
                    sums[i] += float(metrics[k].sum())
    sums = dist.all_sum(sums)
    model.train(was_training[0])
    loss.train(was_training[1])
    n = max(float(sums[1]), 1.0)
    out = {"val_loss": float(sums[0]) / n}
    if data_range is not None and float(sums[2]) != 0.0:
        out.update(
            val_psnr=float(sums[2]) / n,
            val_ssim=float(sums[3]) / n,
            baseline_psnr=float(sums[4]) / n,
            baseline_ssim=float(sums[5]) / n,
        )
    return out
