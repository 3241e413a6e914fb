r"""Datasets seen through another: the base of every view, subsets and the train/validation split.

A view (:class:`DatasetView`) wraps a dataset (``view.dataset``) and shows its samples another way — a
:class:`Subset` of them, random patches (:class:`~selfinv.data.patches.RandomPatches`), a band of each
image or the kept entries of each measurement (:mod:`selfinv.training.holdout`) — while the physics
template, the normalisation, the batch physics and the epoch stay the wrapped dataset's.
:func:`groups_of` gives the source image of every sample (patches of one image share it), by which
:func:`split` keeps all patches of an image on one side.

Example:
    >>> import torch
    >>> from selfinv.data import MeasurementDataset
    >>> ds = MeasurementDataset(torch.zeros(4, 1, 2, 2))
    >>> sub = Subset(ds, [3, 1])
    >>> len(sub), sub[0].index, sub.groups.tolist(), sub.physics_template is ds.physics_template
    (2, 3, [3, 1], True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from selfinv.data._seeds import generator as seeded
from selfinv.data.samples import Sample

__all__ = ["DatasetView", "Subset", "groups_of", "split"]


def groups_of(dataset) -> torch.Tensor:
    """The (N,) source-image index of every sample: ``dataset.groups``, else one group per sample."""
    g = getattr(dataset, "groups", None)
    return g if g is not None else torch.arange(len(dataset))


class DatasetView(Dataset):
    """A dataset seen through another, ``self.dataset``: its physics template, normalisation, batch physics and
    epoch are the wrapped dataset's (a view overrides what it changes)."""

    dataset: Dataset

    @property
    def physics_template(self):
        return self.dataset.physics_template

    @property
    def normalization(self):
        return self.dataset.normalization

    def make_physics(self, params: dict[str, torch.Tensor]):
        """The physics of a batch from its collated parameters (``batch.params``)."""
        return self.dataset.make_physics(params)

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the wrapped dataset (if it resamples)."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class Subset(DatasetView):
    """The samples ``indices`` of a dataset; items keep their index in the parent (``sample.index``)."""

    def __init__(self, dataset, indices: Sequence[int] | torch.Tensor) -> None:
        self.dataset = dataset
        self.indices = torch.as_tensor(indices, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getitem__(self, i: int) -> Sample:
        return self.dataset[int(self.indices[i])]

    @property
    def groups(self) -> torch.Tensor:
        return groups_of(self.dataset)[self.indices]


def split(dataset, val_fraction: float, seed: int = 0) -> tuple[Subset, Subset]:
    """A reproducible, disjoint (train, validation) split of ``dataset`` by index.

    Samples are grouped by ``dataset.groups`` when the dataset has them (all patches of one source
    image fall on the same side); ``round(val_fraction · groups)`` groups, at least one and at most all
    but one, are drawn for validation by a permutation seeded from ``seed``. Indices are sorted.

    Example:
        >>> import torch
        >>> from selfinv.data import MeasurementDataset
        >>> train, val = split(MeasurementDataset(torch.zeros(10, 1, 4, 4)), 0.2, seed=0)
        >>> len(train), len(val), sorted(set(train.indices.tolist()) | set(val.indices.tolist())) == list(range(10))
        (8, 2, True)
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"split: val_fraction must be in (0, 1), got {val_fraction}")
    groups = groups_of(dataset)
    unique = torch.unique(groups)
    n = unique.numel()
    if n < 2:
        raise ValueError(f"split: need at least 2 samples (or source images) to split, got {n}")
    n_val = min(max(1, round(val_fraction * n)), n - 1)
    perm = torch.randperm(n, generator=seeded(seed, "split"))
    val_groups = unique[perm[:n_val]]
    is_val = torch.isin(groups, val_groups)
    idx = torch.arange(len(dataset))
    return Subset(dataset, idx[~is_val]), Subset(dataset, idx[is_val])
