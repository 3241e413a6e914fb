r"""The training loop: one function, read top to bottom (in the spirit of EDM's ``training_loop.py``).

``fit(model, loss, train_set, val_set, config)`` trains ``model`` with any loss on any physics:
the batches come from a dataset of :mod:`selfinv.data` (the physics of a batch is
``dataset.make_physics(batch.params)``), every random draw of the loss comes from a generator seeded
by ``(seed, step, rank)``, and the data order of epoch e from ``(seed, e)``. Nothing random depends
on how the run got to a step, so a run resumed from a checkpoint takes exactly the steps the
uninterrupted run would have taken (bit-identical weights on CPU). The losses of the steps already taken in
the epoch in progress travel in the checkpoint too, so a resumed epoch's ``train_loss`` averages exactly the
steps the uninterrupted run averages.

Logging, checkpoints, early stopping and the progress bar are callbacks
(:mod:`selfinv.training.callbacks`); :func:`default_callbacks` gives the usual set for a run folder.

Two hooks connect the loop to losses with learned state (UNSURE's multipliers): before every step
``loss.set_lr_factor(lr / config.lr)`` tells the loss where the learning-rate schedule is, and
``loss.monitored()`` (values such as the learned noise level) is logged after every step in ``steps.csv``
and at the end of every epoch with the metrics (``metrics.csv``, the history, TensorBoard).

Example:
    >>> import torch
    >>> from selfinv.data import SimulatedDataset, embedded_images, split
    >>> from selfinv.losses import SURE
    >>> from selfinv.models import DnCNN
    >>> from selfinv.noise import Gaussian
    >>> from selfinv.physics import Denoising
    >>> from selfinv.training import FitConfig, fit
    >>> data = SimulatedDataset(embedded_images(names=["camera", "coins", "moon", "brick"]), Denoising(),
    ...                         noise=Gaussian(0.1), seed=0, patch_size=16, patches_per_image=2)
    >>> train, val = split(data, 0.25, seed=0)
    >>> torch.manual_seed(0); model = DnCNN(1, 1, depth=3, width=8)  # doctest: +ELLIPSIS
    <...>
    >>> state = fit(model, SURE(), train, val, FitConfig(epochs=1, batch_size=2, device="cpu"))
    >>> state.step, [k for k in ("train_loss", "val_loss", "val_psnr", "baseline_psnr") if k in state.history[-1]]
    (3, ['train_loss', 'val_loss', 'val_psnr', 'baseline_psnr'])
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from selfinv._random import global_seed
from selfinv.data.samples import collate
from selfinv.losses.base import Loss
from selfinv.training.callbacks import Callback, Checkpointer, CSVLogger, EarlyStopping, Progress, TensorBoardLogger
from selfinv.training.checkpoint import load_checkpoint
from selfinv.training.distributed import DistContext, context
from selfinv.training.validation import validate

SCHEDULERS = ("cosine", "step", "none")


@dataclass(frozen=True)
class FitConfig:
    """Everything the loop needs besides the model, the loss and the data."""

    epochs: int = 10  # passes over the training set
    batch_size: int = 8  # per process
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    scheduler: str = "cosine"  # "cosine" (to 0 over the run), "step" (÷10 at 80 %) or "none"
    grad_clip: float | None = None  # max gradient norm, None for no clipping
    amp: bool = False  # mixed precision (CUDA only)
    seed: int = 0  # data order, loss draws and validation draws all derive from it
    val_every: int = 1  # validate every this many epochs
    data_range: float | None = 1.0  # for PSNR/SSIM against ground truth (None: no metrics)
    device: str | None = None  # None: cuda, then mps, then cpu
    max_steps: int | None = None  # stop after this many optimisation steps (a compute budget)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.val_every < 1:
            raise ValueError("FitConfig: epochs, batch_size and val_every must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"FitConfig: lr must be a positive number, got {self.lr}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"FitConfig: scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"FitConfig: max_steps must be >= 1 (or null for no limit), got {self.max_steps}")


@dataclass
class TrainState:
    """The loop's state; :meth:`checkpoint` is everything needed to resume exactly."""

    model: nn.Module
    loss: Loss
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    config: FitConfig
    dist: DistContext
    epoch: int = 0  # the epoch in progress (or next)
    batch_in_epoch: int = 0  # the next batch of that epoch
    step: int = 0  # optimisation steps taken
    best: float = math.inf
    best_epoch: int = -1
    stop: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)  # the losses of the epoch in progress so far
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the resolved config and normalisation

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def epoch_label(self) -> int:
        """The 1-based number of the epoch just ended (``on_epoch_end``) or in progress: a partial epoch
        (cut by ``max_steps``) is labelled as the epoch it is, not as the last complete one."""
        return self.epoch if self.batch_in_epoch == 0 else self.epoch + 1

    def checkpoint(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "counters": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                         "best": self.best, "best_epoch": self.best_epoch},
            "history": self.history,
            "epoch_losses": list(self.epoch_losses),
            "rng": {"torch": torch.get_rng_state()},
            "fit_config": asdict(self.config),
            **self.extra,
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.loss.load_state_dict(ckpt["loss"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        c = ckpt["counters"]
        self.epoch, self.batch_in_epoch, self.step = c["epoch"], c["batch_in_epoch"], c["step"]
        self.best, self.best_epoch = c["best"], c["best_epoch"]
        self.history = list(ckpt["history"])
        self.epoch_losses = [float(v) for v in ckpt.get("epoch_losses", [])]
        torch.set_rng_state(ckpt["rng"]["torch"])


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(name: str | None, label: str = "device") -> torch.device:
    """cuda, then mps, then cpu; or the named device, checked: a device this machine does not have is a
    one-line ValueError in our words (``label`` says where the name came from, e.g. ``--device``).

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
        >>> pick_device("gpu", "--device")
        Traceback (most recent call last):
        ...
        ValueError: --device gpu: not a device name; use cpu, cuda, cuda:N or mps
    """
    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    what = f"{label} {name}" if label.startswith("-") else f"{label} {name!r}"
    fix = "use --device cpu" if label.startswith("-") else "use cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{what}: not a device name; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return dev
    build = f"torch {torch.__version__}, a {f'CUDA {torch.version.cuda}' if torch.version.cuda else 'CPU'} build"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "" if torch.version.cuda is None else ", but no CUDA GPU or driver is visible"
            raise ValueError(f"{what}: CUDA is not available on this machine ({build}{why}); {fix}")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{what}: this machine has {n} CUDA device{'s' if n != 1 else ''} (cuda:0"
                             f"{f' to cuda:{n - 1}' if n > 1 else ''}); {fix} or another index")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"{what}: MPS is not available on this machine (it needs Apple silicon; {build}); {fix}")
        return dev
    available = getattr(getattr(torch, dev.type, None), "is_available", None)
    if not (callable(available) and available()):
        raise ValueError(f"{what}: not available on this machine; use cpu, cuda, cuda:N or mps")
    return dev


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of the loss's draws at a training step (independent of the run's history)."""
    return ((seed * 1_000_003 + step) * 4096 + rank) % (2**63 - 1)


def epoch_batches(n: int, global_batch: int, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of an epoch: a permutation seeded by (seed, epoch), full batches only
    (the last partial one is dropped unless it is the only one)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
    full = [perm[i : i + global_batch] for i in range(0, n - global_batch + 1, global_batch)]
    return full or [perm]


def default_callbacks(run_dir, total_steps: int, every_steps: int | None = None, patience: int | None = None,
                      progress: bool | None = None) -> list[Callback]:
    """CSV (always), TensorBoard (when installed), checkpoints (last/best), early stopping, progress bar."""
    cbs: list[Callback] = [CSVLogger(run_dir), TensorBoardLogger(run_dir), Checkpointer(run_dir, every_steps)]
    if patience is not None:
        cbs.append(EarlyStopping(patience))
    cbs.append(Progress(total_steps, disable=None if progress is None else not progress))
    return cbs


def fit(
    model: nn.Module,
    loss: Loss,
    train_set,
    val_set=None,
    config: FitConfig | None = None,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
    resume: str | None = None,
    extra_state: dict[str, Any] | None = None,
) -> TrainState:
    """Train ``model`` with ``loss`` on ``train_set`` (validating on ``val_set``); returns the final state.

    Args:
        model: any ``nn.Module`` called as ``model(y, physics)``.
        loss: a :class:`selfinv.losses.Loss`.
        train_set, val_set: datasets of :mod:`selfinv.data` (items are ``Sample``\\ s, and
            ``make_physics(params)`` builds a batch's physics).
        config: :class:`FitConfig`.
        callbacks: logging/checkpointing/early stopping (see :func:`default_callbacks`).
        resume: path of a checkpoint to resume from (exactly where it stopped).
        extra_state: stored in every checkpoint (resolved configuration, normalisation, ...).
    """
    config = config or FitConfig()
    device = pick_device(config.device)
    # Layers that draw from PyTorch's global generator (dropout) cannot take a torch.Generator, so the global
    # generator is seeded from config.seed for the run (their draws are reproducible from the seed) and
    # restored after it (the caller's state is untouched). selfinv's own code never draws from it.
    with global_seed(config.seed, device):
        return _fit(model, loss, train_set, val_set, config, device, callbacks, resume, extra_state)


def _fit(model, loss, train_set, val_set, config: FitConfig, device: torch.device, callbacks, resume,
         extra_state) -> TrainState:
    """The body of :func:`fit`, with PyTorch's global generator seeded."""
    dist = context(device)

    # -- model, optimiser, schedule ------------------------------------------------------------
    model.to(device)
    loss.to(device)
    net = nn.parallel.DistributedDataParallel(model) if dist.active else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    global_batch = config.batch_size * dist.world_size
    steps_per_epoch = len(epoch_batches(len(train_set), global_batch, config.seed, 0))
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    if config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    elif config.scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(int(0.8 * total_steps), 1), gamma=0.1)
    else:
        scheduler = None
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    state = TrainState(model, loss, optimizer, scheduler, scaler, config, dist, extra=dict(extra_state or {}))
    if resume is not None:
        state.restore(load_checkpoint(resume, map_location=device))
    for cb in callbacks:
        cb.on_train_start(state)

    # -- the loop ------------------------------------------------------------------------------
    model.train()
    loss.train()
    while state.epoch < config.epochs and not state.stop and (config.max_steps is None or state.step < config.max_steps):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(state.epoch)
        plan = epoch_batches(len(train_set), global_batch, config.seed, state.epoch)
        if state.batch_in_epoch == 0:
            state.epoch_losses = []
        losses = state.epoch_losses  # this epoch's losses, those before a resume included (from the checkpoint)
        t_epoch, step_times = time.perf_counter(), []
        for b in range(state.batch_in_epoch, len(plan)):
            if config.max_steps is not None and state.step >= config.max_steps:
                break
            t0 = time.perf_counter()
            batch = collate([train_set[i] for i in dist.shard(plan[b])]).to(device)
            physics = train_set.make_physics(batch.params).to(device)
            generator = torch.Generator().manual_seed(step_seed(config.seed, state.step, dist.rank))
            loss.set_lr_factor(optimizer.param_groups[0]["lr"] / config.lr)  # learned loss state follows the schedule
            with torch.autocast(device_type=device.type, enabled=use_amp):
                value = loss(batch.y, physics, net, x=batch.x, y2=batch.y2, generator=generator)
            if not torch.isfinite(value):
                raise FloatingPointError(f"fit: the loss is {float(value)} at step {state.step} (lower the learning rate?)")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(value).backward()
                scaler.unscale_(optimizer)
            else:
                value.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            state.step += 1
            state.batch_in_epoch = b + 1
            losses.append(float(value.detach()))
            step_times.append(time.perf_counter() - t0)
            for cb in callbacks:
                cb.on_step_end(state, losses[-1])
        finished = state.batch_in_epoch >= len(plan)
        if not step_times and not finished:
            break
        metrics = {"train_loss": sum(losses) / max(len(losses), 1), "epoch_seconds": time.perf_counter() - t_epoch,
                   "step_seconds_median": sorted(step_times)[len(step_times) // 2] if step_times else float("nan"),
                   **loss.monitored()}  # learned loss state (UNSURE's noise level) at the end of the epoch
        last = not finished or state.epoch + 1 >= config.epochs or (config.max_steps is not None and state.step >= config.max_steps)
        if val_set is not None and ((state.epoch + 1) % config.val_every == 0 or last):
            metrics.update(validate(model, loss, val_set, config.batch_size, device, config.seed, config.data_range, dist))
        if finished:
            state.epoch += 1
            state.batch_in_epoch = 0
            state.epoch_losses = []
        state.history.append({"epoch": state.epoch_label, "step": state.step, **metrics})
        for cb in callbacks:
            cb.on_epoch_end(state, metrics)
        if not finished:
            break
    for cb in callbacks:
        cb.on_train_end(state)
    return state
