"""Multi-process data-parallel training with ``torchrun`` (DDP; gloo on CPU, NCCL on GPUs).

Launch the same script with ``torchrun --nproc_per_node N script.py``: :func:`context` reads the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), initialises the process group
once and tells the training loop which slice of every global batch is this process's. Rank 0 logs
and writes checkpoints. Without those variables everything runs in one process.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: list[int]) -> list[int]:
        """This process's part of a global batch (contiguous, equal sizes when divisible)."""
        if not self.active:
            return indices
        n = len(indices)
        per = -(-n // self.world_size)
        return indices[self.rank * per : (self.rank + 1) * per]

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over processes (identity when not distributed)."""
        if not self.active:
            return values
        out = values.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def _shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def context(device: torch.device) -> DistContext:
    """The data-parallel context from torchrun's environment, initialising the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(_shutdown)  # a process group left to interpreter teardown can abort in its threads
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
