"""The typed items of the datasets (:class:`Sample`) and their batches (:class:`Batch`, :func:`collate`).

A sample is a measurement ``y``, its ground truth ``x`` when there is one, an independent second
measurement ``y2`` of the same ``x`` when the dataset simulates pairs, the per-sample operator
parameters ``params`` (a dict of tensors, see :mod:`selfinv.data.physics_params`) and the sample's
``index`` in its dataset. Absent fields are ``None``; tensors carry no batch dimension.

:func:`collate` stacks samples into a :class:`Batch` (pass it to ``DataLoader(collate_fn=collate)``);
the batch's physics is ``dataset.make_physics(batch.params)``, whose ``batch_size`` is the batch size
when the operators differ between samples (``None`` when one operator is shared).

Example:
    >>> import torch
    >>> s = [Sample(torch.zeros(1, 4, 4), None, None, {"mask": torch.ones(1, 4, 4)}, i) for i in range(3)]
    >>> batch = collate(s)
    >>> batch.y.shape, batch.x, batch.params["mask"].shape, batch.index.tolist()
    (torch.Size([3, 1, 4, 4]), None, torch.Size([3, 1, 4, 4]), [0, 1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = ["Batch", "Sample", "collate"]


class Sample(NamedTuple):
    """One item of a dataset (tensors without a batch dimension; absent fields are None)."""

    y: torch.Tensor
    x: torch.Tensor | None
    y2: torch.Tensor | None
    params: dict[str, torch.Tensor]
    index: int


class Batch(NamedTuple):
    """A stacked batch of samples: every tensor has a leading batch dimension B."""

    y: torch.Tensor
    x: torch.Tensor | None
    y2: torch.Tensor | None
    params: dict[str, torch.Tensor]
    index: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch on ``device`` (y, x, y2 and the parameters; the indices stay on the CPU)."""

        def move(t):
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return Batch(move(self.y), move(self.x), move(self.y2), {k: move(v) for k, v in self.params.items()}, self.index)


def _stack(samples: Sequence[Sample], field: str) -> torch.Tensor | None:
    values = [getattr(s, field) for s in samples]
    missing = [s.index for s, v in zip(samples, values, strict=True) if v is None]
    if len(missing) == len(values):
        return None
    if missing:
        raise ValueError(f"collate: {field} is missing for samples {missing[:5]} but present for others")
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) > 1:
        raise ValueError(f"collate: {field} has different shapes in one batch: {sorted(shapes)}; crop or pad to one size")
    return torch.stack(values)


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (the ``collate_fn`` of a ``DataLoader``)."""
    if len(samples) == 0:
        raise ValueError("collate: empty batch")
    keys = set(samples[0].params)
    for s in samples[1:]:
        if set(s.params) != keys:
            raise ValueError(f"collate: samples carry different operator parameters: {sorted(keys)} vs {sorted(s.params)}")
    params = {}
    for k in sorted(keys):
        shapes = {tuple(s.params[k].shape) for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"collate: parameter {k!r} has different shapes in one batch: {sorted(shapes)}")
        params[k] = torch.stack([s.params[k] for s in samples])
    y = _stack(samples, "y")
    if y is None:
        raise ValueError("collate: samples have no measurement y")
    index = torch.tensor([int(s.index) for s in samples], dtype=torch.long)
    return Batch(y, _stack(samples, "x"), _stack(samples, "y2"), params, index)
