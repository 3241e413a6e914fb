"""Self-supervised validation: the training loss on held-out measurements with fixed draws.

A validation set that defines ``validation_loss(estimator, batch, physics)`` replaces the training loss by its
own criterion: :class:`selfinv.training.holdout.HeldOutEntries` (held-out entries of the same measurements,
for a single measurement) measures the prediction error on entries the network never saw.

Every validation batch uses a generator seeded from ``(seed, batch index)``, so masks, recorruptions
and perturbations are the same at every epoch and validation numbers are comparable. The model is in
eval mode and the loss too (learned state such as the UNSURE multiplier is frozen). With ground truth,
PSNR and SSIM (explicit data range) are reported for the loss's test-time estimator and for the
no-learning baseline (y for denoising, filtered back-projection for tomography, A†y otherwise).
"""

from __future__ import annotations

import sys

import torch
from tqdm.auto import tqdm

from selfinv.data.samples import collate
from selfinv.losses.base import Loss
from selfinv.physics.base import LinearOperator
from selfinv.physics.blur import Blur
from selfinv.physics.denoising import Denoising
from selfinv.training.distributed import DistContext
from selfinv.training.metrics import psnr, ssim

VALIDATION_STREAM = 1_000_003  # offsets validation seeds from the training steps' seeds


def baseline(y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
    """The no-learning reconstruction: y (denoising; deblurring, where A†y amplifies the noise without
    bound on the frequencies the blur nearly kills), FBP (tomography) or A†y."""
    if isinstance(physics, (Denoising, Blur)):
        return y
    fbp = getattr(physics, "fbp", None)
    if callable(fbp):
        return fbp(y)
    return physics.A_dagger(y)


def batches(n: int, batch_size: int) -> list[list[int]]:
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


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
    plan = batches(len(dataset), batch_size)
    with torch.no_grad():
        for b, indices in enumerate(tqdm(plan, desc="validate", unit="batch", leave=False, disable=not show, file=sys.stderr)):
            mine = dist.shard(indices)
            if not mine:
                continue
            batch = collate([dataset[i] for i in mine]).to(device)
            physics = dataset.make_physics(batch.params).to(device)
            g = torch.Generator().manual_seed(seed * VALIDATION_STREAM + b)
            if held_out is not None:  # validation within the measurements: the error on held-out entries
                value = held_out(estimator, batch, physics)
            else:
                value = loss(batch.y, physics, model, x=batch.x, y2=batch.y2, generator=g)
            n = len(mine)
            sums[0] += float(value) * n
            sums[1] += n
            if batch.x is not None and data_range is not None:
                x_hat = estimator(batch.y, physics)
                x0 = baseline(batch.y, physics)
                sums[2] += float(psnr(x_hat, batch.x, data_range).sum())
                sums[3] += float(ssim(x_hat, batch.x, data_range).sum())
                sums[4] += float(psnr(x0, batch.x, data_range).sum())
                sums[5] += float(ssim(x0, batch.x, data_range).sum())
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
