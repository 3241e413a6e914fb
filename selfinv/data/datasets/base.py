r"""What both datasets share: stored measurements y (x, y2) with per-sample operator parameters.

:class:`PhysicsDataset` holds ``y``, ``x``, ``y2`` and ``params`` as (N, ...) tensors, gives
:class:`~selfinv.data.samples.Sample`\ s, builds a batch's physics from its collated parameters
(:meth:`~PhysicsDataset.make_physics`) and saves itself as a measurement set
(:mod:`~selfinv.data.datasets.format`). :class:`~selfinv.data.datasets.SimulatedDataset` and
:class:`~selfinv.data.datasets.MeasurementDataset` fill these fields in their own ways.

Example:
    >>> import torch
    >>> from selfinv.data import MeasurementDataset
    >>> ds = MeasurementDataset(torch.zeros(3, 1, 4, 4))
    >>> isinstance(ds, PhysicsDataset), len(ds), ds[1].index
    (True, 3, 1)
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from selfinv.data.datasets.format import write_arrays
from selfinv.data.normalization import Normalization
from selfinv.data.physics_params import physics_record, with_params
from selfinv.data.samples import Sample
from selfinv.physics.base import LinearOperator

__all__ = ["PhysicsDataset"]


class PhysicsDataset(Dataset):
    """Stored measurements with per-sample operator parameters; the base of both datasets.

    Attributes:
        y, x, y2: (N, ...) tensors (x, y2 may be None).
        params: per-sample operator parameters, each (N, ...).
        physics_template: the operator whose per-sample parameters :meth:`make_physics` fills in.
        normalization: the :class:`~selfinv.data.normalization.Normalization` applied to the data.
        names: one name per sample (file names, ``image@top,left`` for patches).
        groups: (N,) source-image index of every sample (patches of one image share it).
    """

    y: torch.Tensor
    x: torch.Tensor | None
    y2: torch.Tensor | None
    params: dict[str, torch.Tensor]
    physics_template: LinearOperator
    normalization: Normalization
    names: list[str]
    groups: torch.Tensor
    epoch: int = 0

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__}: index {i} out of range for {n} samples")
        return int(i) % n

    def __getitem__(self, i: int) -> Sample:
        i = self._index(i)
        x = None if self.x is None else self.x[i]
        y2 = None if self.y2 is None else self.y2[i]
        return Sample(self.y[i], x, y2, {k: v[i] for k, v in self.params.items()}, i)

    def make_physics(self, params: dict[str, torch.Tensor]) -> LinearOperator:
        """The physics of a batch from its collated parameters (``batch.params``)."""
        if set(params) != set(self.params):
            raise ValueError(f"{type(self).__name__}: expected parameters {sorted(self.params)}, got {sorted(params)}")
        return with_params(self.physics_template, params)

    def set_epoch(self, epoch: int) -> None:
        """Tell the dataset which epoch is next (only datasets that resample use it)."""
        self.epoch = int(epoch)

    def save(self, path: str | os.PathLike, *, include_x: bool = True, overwrite: bool = False) -> None:
        """Write the dataset as a measurement set (``.npz`` or ``.h5``, layout in :mod:`~selfinv.data.datasets.format`)."""
        arrays: dict[str, torch.Tensor] = {"y": self.y}
        if include_x and self.x is not None:
            arrays["x"] = self.x
        if self.y2 is not None:
            arrays["y2"] = self.y2
        physics, params = physics_record(self.physics_template, self.params)  # shared parameters (1, ...) too
        arrays.update(params)
        meta = {**physics, "normalization": self.normalization.to_dict(), "names": list(self.names)}
        write_arrays(Path(path), {k: v.detach().cpu().numpy() for k, v in arrays.items()}, meta, overwrite)

    def __repr__(self) -> str:
        fields = ", ".join(f for f in ("x", "y2") if getattr(self, f) is not None)
        return (
            f"{type(self).__name__}(n={len(self)}, y={tuple(self.y.shape[1:])}, {fields or 'no x'}, "
            f"physics={type(self.physics_template).__name__}, params={sorted(self.params)}, "
            f"normalization={self.normalization.to_dict()})"
        )

