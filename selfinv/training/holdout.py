r"""Validation within the measurements: for one measurement (N = 1, zero-shot) or when none can be spared.

Self-supervised training still needs a validation signal (early stopping, ``best.pt``) that the network never
trained on. With a single measurement there is nothing to split by sample, so a part *of each measurement* is
held out instead, two ways:

* **a band of the image** (:func:`holdout_band`) for operators that act pixel by pixel (denoising,
  inpainting, demosaicing): the last ``fraction`` of the rows (or columns, along the longer side) of every
  measurement is the validation set, the rest the training set; a crop of such measurements is exactly the
  measurement of the crop, so the training loss on the band is an honest validation loss;
* **acquired entries** (:func:`holdout_entries`) for every other operator (k-space samples, sinogram bins):
  a seeded random ``fraction`` :math:`\Gamma` of the acquired entries of every measurement is removed from
  the training data (the network's input and every loss only see :math:`\Omega \setminus \Gamma`, through
  the subsampled operator :math:`S_{\Omega\setminus\Gamma} A`), and the validation loss is the prediction
  error on them,

  .. math:: \mathcal{L}_{\text{val}} = \frac{\lVert S_\Gamma (A\hat x - y) \rVert^2}{|\Gamma|},\qquad
     \hat x = f(S_{\Omega\setminus\Gamma}\, y),

  the zero-shot self-supervised validation of Yaman, Hosseini & Akçakaya (ICLR 2022, "ZS-SSL"). Its
  expectation is the held-out measurement risk plus the noise variance, so it ranks models as their
  measurement-domain error does (the noise term is a constant).

Example:
    >>> import torch
    >>> from selfinv.data import MeasurementDataset
    >>> from selfinv.physics import MRI
    >>> mask = torch.zeros(1, 1, 16, 16); mask[..., ::2] = 1
    >>> ds = MeasurementDataset(torch.randn(1, 1, 16, 16, dtype=torch.complex64) * mask, MRI(mask))
    >>> train, val = holdout_entries(ds, 0.2, seed=0)
    >>> kept, held = train.physics_template.mask.sum(), val.held_out.sum()
    >>> int(kept + held) == int(mask.sum()), int(held) == round(0.2 * int(mask.sum()))
    (True, True)
"""

from __future__ import annotations

import torch

from selfinv.data._seeds import generator as seeded
from selfinv.data.datasets import MeasurementDataset
from selfinv.data.patches import crop_alignment
from selfinv.data.physics_params import params_and_template, per_sample_buffers, shared_on_grid, with_params
from selfinv.data.samples import Sample
from selfinv.data.views import DatasetView
from selfinv.losses.base import estimate, per_sample_sq
from selfinv.losses.splitting import split_masks

__all__ = ["HeldOutEntries", "holdout_band", "holdout_entries", "within_measurements"]


# ---------------------------------------------------------------------- entries
class HeldOutEntries(DatasetView):
    """The validation view of :func:`holdout_entries`: the kept measurements (the network's input, as in
    training) and, per sample, the held-out entries :math:`S_\\Gamma y` with the full operator, for
    :meth:`validation_loss`."""

    def __init__(self, kept: MeasurementDataset, y_full: torch.Tensor, held_out: torch.Tensor, full_template, full_params,
                 fraction: float) -> None:
        self.kept, self.y_full, self.held_out = kept, y_full, held_out
        self.dataset = kept  # the view's physics, normalisation and batch physics are the kept set's
        self.full_template, self.full_params = full_template, full_params
        #: one phrase for logs
        self.description = f"{fraction:.0%} of the acquired entries of each measurement, never seen in training"

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, i: int) -> Sample:
        return self.kept[i]

    @property
    def names(self):
        return self.kept.names

    def validation_loss(self, estimator, batch, physics, generator: torch.Generator | None = None) -> torch.Tensor:
        """:math:`\\lVert S_\\Gamma(A\\hat x - y)\\rVert^2 / |\\Gamma|` averaged over the batch (module docstring);
        ``estimator`` is a loss's test-time estimator, run with ``generator`` (:func:`~selfinv.losses.base.estimate`)."""
        idx = batch.index.to(torch.long)
        dev = batch.y.device
        full = with_params(self.full_template, {k: v[idx] for k, v in self.full_params.items()}).to(dev)
        x_hat = estimate(estimator, batch.y, physics, generator)
        hold = self.held_out[idx].to(dev)
        r = (full.A(x_hat) - self.y_full[idx].to(dev)) * hold
        count = hold.flatten(1).sum(1) * (2 if r.is_complex() else 1)
        return (per_sample_sq(r) / count.clamp_min(1)).mean()


def holdout_entries(dataset, fraction: float, seed: int = 0) -> tuple[MeasurementDataset, HeldOutEntries]:
    """(training set, validation view) holding out ``fraction`` of the acquired entries of every measurement
    (module docstring). The training set is a :class:`~selfinv.data.MeasurementDataset` of :math:`S y` through
    :math:`S A` (``physics.subsample``), with the dataset's references x carried along."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout_entries: fraction must be in (0, 1), got {fraction}")
    n = len(dataset)
    y = dataset.y
    full = dataset.make_physics(dataset.params) if dataset.params else dataset.physics_template
    acquired = full.acquired(y).expand(y.shape)
    counts = acquired.flatten(1).sum(1)
    if bool((torch.round(fraction * counts) < 1).any()):
        raise ValueError(f"holdout_entries: a measurement has too few acquired entries ({int(counts.min())}) to hold "
                         f"out {fraction:.0%} of them")
    shared = _shared_by_channels(full, y)  # one k-space location read by every coil: held out in all of them
    draw = acquired.any(1, keepdim=True) if shared else acquired
    keep = split_masks(draw, 1.0 - fraction, "bernoulli", generator=seeded(seed, "holdout")).expand(y.shape)
    held = acquired & ~keep
    keep_f = keep.to(y.real.dtype if y.is_complex() else y.dtype)
    op = full.subsample(keep_f[:, :1] if shared else keep_f)
    y2 = None if dataset.y2 is None else dataset.y2 * keep_f
    train = MeasurementDataset(y * keep_f, op, x=dataset.x, y2=y2, names=list(dataset.names))
    train.normalization = dataset.normalization
    full_params, template = params_and_template(full, n)
    return train, HeldOutEntries(train, y, held.to(keep_f.dtype), template, full_params, fraction)


def _shared_by_channels(op, y: torch.Tensor) -> bool:
    """Whether the operator's own mask is one for all channels of y (MRI and multi-coil MRI masks are (B, 1, H, W)):
    the held-out entries are then drawn per location and hold out every channel, so that the training operator's
    mask and the training data agree."""
    own = per_sample_buffers(op).get("mask")
    return own is not None and own.ndim == y.ndim and own.shape[1] == 1 and y.shape[1] > 1


# ---------------------------------------------------------------------- a band of the image
class _Band(DatasetView):
    """Every sample of a dataset cut to rows (or columns) ``[start, stop)``: y, x, y2 and the operator
    parameters on the image grid (per sample or shared)."""

    def __init__(self, dataset, axis: int, start: int, stop: int, description: str | None = None) -> None:
        self.dataset, self.axis, self.start, self.stop = dataset, axis, int(start), int(stop)
        self.description = description
        first = dataset[0]
        self.size = tuple(first.y.shape[-2:])
        self._shared = shared_on_grid(dataset.physics_template, self.size, exclude=first.params)

    def _cut(self, t):
        if t is None or t.ndim < 2 or tuple(t.shape[-2:]) != self.size:
            return t
        return t.narrow(t.ndim - 2 + self.axis, self.start, self.stop - self.start)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Sample:
        s = self.dataset[i]
        params = {k: self._cut(v) for k, v in {**s.params, **self._shared}.items()}
        return Sample(self._cut(s.y), self._cut(s.x), self._cut(s.y2), params, s.index)

    @property
    def names(self):
        where = ("rows", "columns")[self.axis]
        return [f"{n}[{where} {self.start}:{self.stop}]" for n in getattr(self.dataset, "names", [])]

    @property
    def groups(self) -> torch.Tensor:
        return torch.arange(len(self))

    def make_physics(self, params):
        return with_params(self.dataset.physics_template, params)


def holdout_band(dataset, fraction: float, min_size: int = 8) -> tuple[_Band, _Band]:
    """(training band, validation band) of every measurement: the last ``fraction`` of the longer side is
    held out (module docstring); operators acting pixel by pixel only."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout_band: fraction must be in (0, 1), got {fraction}")
    align = crop_alignment(dataset.physics_template)
    if align is None:
        raise ValueError(f"holdout_band: {type(dataset.physics_template).__name__} measurements cannot be cut into bands; "
                         "use holdout_entries")
    h, w = (int(v) for v in dataset[0].y.shape[-2:])
    axis = 0 if h >= w else 1
    size = (h, w)[axis]
    cut = int(round((1 - fraction) * size)) // align * align
    if cut < min_size or size - cut < min_size:
        raise ValueError(f"holdout_band: the measurements are {h}x{w}: too small to hold out {fraction:.0%} of them "
                         f"(each part needs {min_size} pixels); add measurements or change data.val_holdout")
    where = ("rows", "columns")[axis]
    return _Band(dataset, axis, 0, cut), _Band(dataset, axis, cut, size, f"a band of each measurement ({where} {cut}:{size})")


def within_measurements(dataset, fraction: float, seed: int = 0):
    """(training, validation) held out within each measurement: a band for pixel-wise operators, acquired
    entries otherwise (module docstring)."""
    if crop_alignment(dataset.physics_template) is not None:
        return holdout_band(dataset, fraction)
    return holdout_entries(dataset, fraction, seed)
