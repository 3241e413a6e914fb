r"""Training data: measurements simulated once from images, or real measurements without ground truth.

Two datasets share one interface. Items are :class:`~selfinv.data.samples.Sample`\ s
``(y, x, y2, params, index)``; ``DataLoader(dataset, collate_fn=collate)`` gives
:class:`~selfinv.data.samples.Batch`\ es, and ``dataset.make_physics(batch.params)`` is the batch's
physics (per-sample masks/kernels stacked, so ``physics.batch_size == B`` when they differ).

:class:`SimulatedDataset`
    Ground-truth images → measurements simulated **once**, at construction, with per-sample seeds
    derived from ``(seed, index)``: y, y2, x and the operator parameters are fixed, and every pass
    over the data sees the same noise. This is the honest default: drawing fresh noise every epoch
    gives a method many noisy copies of each image, which silently turns it into Noise2Noise and
    overstates what it learns from single measurements. ``resample_noise_each_epoch=True`` does that
    on purpose (the operators stay fixed). ``pairs=True`` adds an independent second measurement y2
    through the same operator (for Noise2Noise).
:class:`MeasurementDataset`
    Real measurements y with their operator parameters stored beside them and no ground truth
    (an optional reference x is carried for evaluation only).

:func:`split` gives a reproducible, disjoint train/validation split (patches of one image stay on one
side). Normalisation is an explicit :class:`~selfinv.data.normalization.Normalization`, applied once
at construction and recorded in ``dataset.normalization``.

The datasets by source: :mod:`~selfinv.data.datasets.base` (:class:`PhysicsDataset`, what both share),
:mod:`~selfinv.data.datasets.simulated`, :mod:`~selfinv.data.datasets.measured`; the on-disk format of a
measurement set (``.npz``/``.h5``, or a folder) in :mod:`~selfinv.data.datasets.format`; files, folders and
arrays to tensors in :mod:`~selfinv.data.datasets.items`; :class:`Subset` and :func:`split` in
:mod:`selfinv.data.views`.

Example:
    >>> import torch
    >>> from selfinv.data import SimulatedDataset, collate, embedded_images
    >>> from selfinv.noise import Gaussian
    >>> from selfinv.physics.samplers import BernoulliMaskSampler
    >>> ds = SimulatedDataset(embedded_images(names=["camera", "brick"]), BernoulliMaskSampler(32, p=0.5),
    ...                       noise=Gaussian(0.05), seed=0, patch_size=32, patches_per_image=4)
    >>> batch = collate([ds[i] for i in range(3)])
    >>> physics = ds.make_physics(batch.params)
    >>> len(ds), batch.y.shape, physics.batch_size
    (8, torch.Size([3, 1, 32, 32]), 3)
    >>> torch.equal(ds[5].y, ds[5].y)       # simulated once: every pass sees the same noise
    True
"""

from selfinv.data.datasets.base import PhysicsDataset
from selfinv.data.datasets.measured import MeasurementDataset
from selfinv.data.datasets.simulated import SimulatedDataset
from selfinv.data.views import Subset, split

__all__ = ["MeasurementDataset", "PhysicsDataset", "SimulatedDataset", "Subset", "split"]
