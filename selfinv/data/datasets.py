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

On-disk layout of a measurement set (``.npz`` or ``.h5``, written by :meth:`PhysicsDataset.save`,
read by :meth:`MeasurementDataset.load`)::

    y            (N, ...) float32 or complex64   measurements (required)
    x            (N, ...)                         reference images (optional, never used for training)
    y2           (N, ...)                         second measurements (optional)
    <param>      (N, ...)                         per-sample operator parameters by name, e.g. mask
                                                  (N, 1, H, W); nested ones dotted: noise.sigma (N,)
    meta         JSON string (npz: a 0-d str array; h5: the file attribute "meta"), optional:
                 {"operator": "inpainting", "noise": {"name": "gaussian", "sigma": 0.1},
                  "normalization": {"scale": 255.0, "offset": 0.0}, "names": [...]}

A folder (:meth:`MeasurementDataset.from_folder`) holds one subfolder per array, ``y/`` required,
``x/``, ``y2/`` and one per parameter (``mask/``) optional, each with one file per sample (any format
:func:`~selfinv.data.readers.read_image` reads) matched by file stem, and an optional ``meta.json``.

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

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from selfinv.data._seeds import generator as seeded
from selfinv.data.normalization import Normalization
from selfinv.data.patches import random_positions
from selfinv.data.physics_params import per_sample_buffers, per_sample_params, with_params
from selfinv.data.readers import ImageInfo, list_images, read_image
from selfinv.data.samples import Sample
from selfinv.noise import NoiseModel
from selfinv.noise import describe as describe_noise
from selfinv.physics.base import LinearOperator

__all__ = ["MeasurementDataset", "PhysicsDataset", "SimulatedDataset", "Subset", "split"]

PhysicsFactory = Callable[[int, torch.Generator], LinearOperator]
_RESERVED = ("y", "x", "y2", "meta")


# ---------------------------------------------------------------------- loading images
def _as_items(
    data, names: Sequence[str] | None, owner: str, images: bool = False
) -> tuple[list[str], list[torch.Tensor], list[ImageInfo | None]]:
    """Files, folders, arrays or tensors → (names, tensors, infos of files).

    With ``images`` a stacked array must be (N, C, H, W) and a 2-D item becomes (1, H, W); otherwise
    items keep their shape (measurements of any shape, e.g. (m,) for compressed sensing).
    """
    if isinstance(data, (str, os.PathLike)):
        folder = Path(data)
        data = list_images(folder)
        if not data:
            raise ValueError(f"{owner}: no readable image files in {folder.name}")
    if isinstance(data, (torch.Tensor, np.ndarray)):
        if data.ndim < 2 or (images and data.ndim != 4):
            expected = "(N, C, H, W)" if images else "(N, ...)"
            raise ValueError(
                f"{owner}: expected a stack {expected}, got shape {tuple(data.shape)}"
                f"{'; pass a list for single images' if images else ''}"
            )
        data = list(data)
    out_names: list[str] = []
    tensors: list[torch.Tensor] = []
    infos: list[ImageInfo | None] = []
    for i, item in enumerate(data):
        if isinstance(item, (str, os.PathLike)):
            arr, info = read_image(item, return_info=True)
            stem = Path(item).name
            if arr.ndim == 4:  # a stack: one item per slice
                for d in range(arr.shape[0]):
                    out_names.append(f"{stem}[{d}]")
                    tensors.append(torch.from_numpy(arr[d]))
                    infos.append(info)
                continue
            out_names.append(stem)
            tensors.append(torch.from_numpy(arr))
            infos.append(info)
            continue
        t = torch.as_tensor(np.asarray(item)) if isinstance(item, np.ndarray) else item
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{owner}: item {i} must be a path, a numpy array or a tensor, got {type(item).__name__}")
        if t.ndim == 0 or t.numel() == 0:
            raise ValueError(f"{owner}: item {i} is empty or a scalar (shape {tuple(t.shape)})")
        if not (t.is_floating_point() or t.is_complex()):
            t = t.to(torch.float32)
        if images and t.ndim == 2:
            t = t[None]
        if images and t.ndim != 3:
            raise ValueError(f"{owner}: image {i} must be (H, W) or (C, H, W), got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{owner}: item {i} contains NaN or Inf values")
        out_names.append(f"item {i}")
        tensors.append(t.detach())
        infos.append(None)
    if not tensors:
        raise ValueError(f"{owner}: no data")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(tensors):
            raise ValueError(f"{owner}: {len(names)} names for {len(tensors)} items")
        out_names = names
    return out_names, tensors, infos


def _check_same_shape(names: list[str], tensors: list[torch.Tensor], owner: str, hint: str) -> None:
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for n, t in zip(names, tensors, strict=True):
        by_shape.setdefault(tuple(t.shape), []).append(n)
    if len(by_shape) > 1:
        parts = [f"{'x'.join(map(str, s))}: {', '.join(ns[:3])}{' ...' if len(ns) > 3 else ''}" for s, ns in by_shape.items()]
        raise ValueError(f"{owner}: items have different sizes ({'; '.join(parts)}); {hint}")


def _file_normalization(infos: list[ImageInfo | None], names: list[str], owner: str, measurements: bool) -> Normalization:
    """The normalisation the files imply (integers: their data range; floats: none); one for all."""
    files = [(n, i) for n, i in zip(names, infos, strict=True) if i is not None]
    if not files:
        return Normalization.identity()
    norms = {}
    for n, info in files:
        norms.setdefault(Normalization.from_info(info, measurements=measurements), []).append(n)
    if len(norms) > 1 or len(files) != len(names):
        desc = "; ".join(f"{n.to_dict()}: {', '.join(ns[:3])}" for n, ns in norms.items())
        raise ValueError(
            f"{owner}: the inputs imply different normalisations ({desc}"
            f"{'; plus in-memory arrays' if len(files) != len(names) else ''}); pass normalization= explicitly"
        )
    return next(iter(norms))


def _stack_params(per_sample: list[dict[str, torch.Tensor]], owner: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Stack the parameters that differ between samples: (N, ...) each; the names of the shared ones."""
    keys = list(per_sample[0])
    stacked, shared = {}, []
    for k in keys:
        values = [p[k] for p in per_sample]
        first = values[0]
        if all(v.shape == first.shape and torch.equal(v, first) for v in values[1:]):
            shared.append(k)
            continue
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) > 1:
            raise ValueError(f"{owner}: operator parameter {k!r} has different shapes across samples: {sorted(shapes)}")
        if first.ndim == 0:
            stacked[k] = torch.stack(values)
        elif first.shape[0] == 1:
            stacked[k] = torch.cat(values)
        else:
            raise ValueError(f"{owner}: operator parameter {k!r} differs between samples but has no batch dimension (shape {tuple(first.shape)})")
    return stacked, shared


# ---------------------------------------------------------------------- the common base
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
        """Write the dataset as a measurement set (``.npz`` or ``.h5``, layout in the module docstring)."""
        arrays: dict[str, torch.Tensor] = {"y": self.y}
        if include_x and self.x is not None:
            arrays["x"] = self.x
        if self.y2 is not None:
            arrays["y2"] = self.y2
        arrays.update(self.params)
        for name, t in per_sample_buffers(self.physics_template).items():  # shared parameters (1, ...) too
            if name not in arrays and not name.startswith("noise.") and t.ndim > 0 and t.shape[0] == 1:
                arrays[name] = t
        meta = {
            "operator": _operator_name(self.physics_template),
            "noise": describe_noise(self.physics_template.noise),
            "normalization": self.normalization.to_dict(),
            "names": list(self.names),
        }
        _write_arrays(Path(path), {k: v.detach().cpu().numpy() for k, v in arrays.items()}, meta, overwrite)

    def __repr__(self) -> str:
        fields = ", ".join(f for f in ("x", "y2") if getattr(self, f) is not None)
        return (
            f"{type(self).__name__}(n={len(self)}, y={tuple(self.y.shape[1:])}, {fields or 'no x'}, "
            f"physics={type(self.physics_template).__name__}, params={sorted(self.params)}, "
            f"normalization={self.normalization.to_dict()})"
        )


# ---------------------------------------------------------------------- simulated
class SimulatedDataset(PhysicsDataset):
    """Measurements simulated once, with fixed seeds, from ground-truth images (see the module docstring).

    Args:
        images: a folder, a sequence of files / arrays / tensors ((H, W) or (C, H, W); a stack file
            gives one image per slice), or an (N, C, H, W) array or tensor.
        physics: a fixed operator (shared, or with N per-sample parameters), or a factory
            ``physics(batch_size, generator) -> LinearOperator`` such as a sampler from
            :mod:`selfinv.physics.samplers`, called once per sample with a generator seeded from
            ``(seed, index)``. Complex operators (MRI) get the images as complex tensors.
        noise: the noise model (replaces the operator's); ``None`` keeps the operator's.
        seed: the base seed of the operators, the noise and the crops.
        patch_size: crop the images to (h, w) patches before simulating (``patches_per_image`` of
            them per image, corners drawn from ``(seed, image)``); images may then differ in size.
        patches_per_image: patches per image (with ``patch_size``).
        pairs: also simulate y2, an independent second measurement through the same operator.
        resample_noise_each_epoch: draw new noise each epoch from ``(seed, index, epoch)``
            (epoch 0 gives the stored measurements; the operators never change).
        normalization: applied to the images before simulating. Default: none for arrays; for
            files, the one their :class:`~selfinv.data.readers.ImageInfo` implies (8-bit → /255).
        names: one name per image (default: file names or ``item i``).
        assumed_noise: the noise model the samples' physics carries (what a loss assumes) when it differs
            from the one that simulated them: a mis-specified model, for robustness studies. Shared
            parameters only. ``None``: the simulating model.
    """

    def __init__(
        self,
        images,
        physics: LinearOperator | PhysicsFactory,
        noise: NoiseModel | None = None,
        seed: int = 0,
        *,
        assumed_noise: NoiseModel | None = None,
        patch_size: int | tuple[int, int] | None = None,
        patches_per_image: int = 1,
        pairs: bool = False,
        resample_noise_each_epoch: bool = False,
        normalization: Normalization | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        owner = "SimulatedDataset"
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"{owner}: seed must be an int, got {seed!r}")
        for arg, value in (("noise", noise), ("assumed_noise", assumed_noise)):
            if value is not None and not isinstance(value, NoiseModel):
                raise ValueError(f"{owner}: {arg} must be a selfinv.noise model or None, got {type(value).__name__}")
        if assumed_noise is not None and assumed_noise.batch_size is not None:
            raise ValueError(f"{owner}: assumed_noise must have shared (not per-sample) parameters")
        if isinstance(physics, type) or not (isinstance(physics, LinearOperator) or callable(physics)):
            raise ValueError(
                f"{owner}: physics must be an operator instance or a factory physics(batch_size, generator) "
                f"(e.g. a sampler), got {physics!r}"
            )
        self.seed, self.pairs, self.resample = seed, bool(pairs), bool(resample_noise_each_epoch)
        img_names, imgs, infos = _as_items(images, names, owner, images=True)
        if normalization is None:
            normalization = _file_normalization(infos, img_names, owner, measurements=False)
        self.normalization = normalization
        imgs = [normalization.normalize(t) for t in imgs]

        # ---- patches (fixed, drawn from the seed) or whole images of one size
        if patch_size is not None:
            if patches_per_image < 1:
                raise ValueError(f"{owner}: patches_per_image must be >= 1, got {patches_per_image}")
            crops, crop_names, groups = [], [], []
            ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
            for i, (name, img) in enumerate(zip(img_names, imgs, strict=True)):
                if img.shape[-2] < ph or img.shape[-1] < pw:
                    raise ValueError(f"{owner}: {name} is {tuple(img.shape[-2:])} pixels, smaller than the {ph}x{pw} patches")
                pos = random_positions(tuple(img.shape[-2:]), (ph, pw), patches_per_image, seeded(seed, "crop", i))
                for top, left in pos.tolist():
                    crops.append(img[..., top : top + ph, left : left + pw])
                    crop_names.append(f"{name}@{top},{left}")
                    groups.append(i)
            _check_same_shape(crop_names, crops, owner, "all images need the same number of channels")
            imgs, img_names = crops, crop_names
            self.groups = torch.tensor(groups, dtype=torch.long)
        else:
            if patches_per_image != 1:
                raise ValueError(f"{owner}: patches_per_image needs patch_size")
            _check_same_shape(img_names, imgs, owner, "pass patch_size= to train on patches, or resize/crop the images")
            self.groups = torch.arange(len(imgs))
        self.names = img_names
        x = torch.stack(imgs)
        n = x.shape[0]

        # ---- operators: one per sample, parameters stored
        if isinstance(physics, LinearOperator):
            if noise is not None:
                physics = physics.with_noise(noise)
            bs = physics.batch_size
            if bs is not None and bs != n:
                raise ValueError(f"{owner}: the operator has per-sample parameters for {bs} samples but there are {n}")
            self.params = per_sample_params(physics, n) if bs is not None else {}
            template = physics.select(0) if bs is not None else physics
            ops = [with_params(template, {k: v[i : i + 1] for k, v in self.params.items()}) for i in range(n)]
        else:
            ops = []
            for i in range(n):
                op = physics(1, seeded(seed, "operator", i))
                if not isinstance(op, LinearOperator):
                    raise ValueError(f"{owner}: the physics factory returned {type(op).__name__}, not an operator")
                ops.append(op.with_noise(noise) if noise is not None else op)
            self.params, _ = _stack_params([per_sample_buffers(op) for op in ops], owner)
            template = ops[0]
        self.physics_template = template
        if template.is_complex is True and not x.is_complex():
            x = x.to(torch.complex64)
        self.x = x

        # ---- measurements, simulated once
        self.y = self._simulate(ops, "noise", 0)
        self.y2 = self._simulate(ops, "noise2", 0) if self.pairs else None
        if assumed_noise is not None:  # the losses see the assumed model; resampling keeps the true one
            self._true_template = template
            self.params = {k: v for k, v in self.params.items() if not k.startswith("noise.")}
            self.physics_template = template.with_noise(assumed_noise)

    def _simulate(self, ops: list[LinearOperator], stream: str, epoch: int) -> torch.Tensor:
        ys = []
        with torch.no_grad():
            for i, op in enumerate(ops):
                ys.append(op(self.x[i : i + 1], generator=seeded(self.seed, stream, i, epoch))[0])
        _check_same_shape(self.names, ys, "SimulatedDataset", "the operators give measurements of different sizes")
        return torch.stack(ys)

    def _resimulate(self, i: int, stream: str) -> torch.Tensor:
        template = getattr(self, "_true_template", self.physics_template)  # the simulating noise model
        op = with_params(template, {k: v[i : i + 1] for k, v in self.params.items()})
        with torch.no_grad():
            return op(self.x[i : i + 1], generator=seeded(self.seed, stream, i, self.epoch))[0]

    def __getitem__(self, i: int) -> Sample:
        s = super().__getitem__(i)
        if not self.resample or self.epoch == 0:
            return s
        y = self._resimulate(s.index, "noise")
        y2 = self._resimulate(s.index, "noise2") if self.pairs else None
        return s._replace(y=y, y2=y2)


# ---------------------------------------------------------------------- real measurements
class MeasurementDataset(PhysicsDataset):
    """Real measurements y with their per-sample operator parameters and no ground truth.

    Args:
        y: (N, ...) array or tensor, or a sequence of arrays / tensors / files of one shape.
        physics: the operator of all N measurements, with per-sample parameters of leading dimension
            N (e.g. ``MRI(masks)`` with masks (N, 1, H, W)) or shared ones; default
            :class:`~selfinv.physics.Denoising`.
        x: optional reference images (N, ...), carried for evaluation only.
        y2: optional second measurements (N, ...).
        noise: the noise model (replaces the operator's).
        normalization: a scale applied to y (and x, y2). An offset is refused unless the operator is
            ``Denoising`` (:math:`A(x - o) \\ne y - o`). Default: none for arrays; for files, their data
            range without offset (8-bit → /255).
        names: one name per measurement.
    """

    def __init__(
        self,
        y,
        physics: LinearOperator | None = None,
        *,
        x=None,
        y2=None,
        noise: NoiseModel | None = None,
        normalization: Normalization | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        owner = "MeasurementDataset"
        from selfinv.physics.denoising import Denoising

        if physics is None:
            physics = Denoising()
        if not isinstance(physics, LinearOperator):
            raise ValueError(f"{owner}: physics must be an operator instance, got {type(physics).__name__}")
        if noise is not None:
            physics = physics.with_noise(noise)
        y_names, ys, infos = _as_items(y, names, owner)
        _check_same_shape(y_names, ys, owner, "crop or pad the measurements to one size, or use one dataset per size")
        n = len(ys)
        if normalization is None:
            normalization = _file_normalization(infos, y_names, owner, measurements=True)
        if normalization.offset != 0 and not isinstance(physics, Denoising):
            raise ValueError(
                f"{owner}: a normalisation offset ({normalization.offset}) breaks y = A x for {type(physics).__name__}; "
                "use a scale only"
            )
        self.normalization = normalization
        self.names = y_names
        self.y = normalization.normalize(torch.stack(ys))
        self.x = self._optional(x, "x", n, owner)
        self.y2 = self._optional(y2, "y2", n, owner)
        bs = physics.batch_size
        if bs is not None and bs != n:
            raise ValueError(f"{owner}: the operator has per-sample parameters for {bs} samples but there are {n} measurements")
        self.params = per_sample_params(physics, n) if bs is not None else {}
        self.physics_template = physics.select(0) if bs is not None else physics
        self.groups = torch.arange(n)

    def _optional(self, data, field: str, n: int, owner: str) -> torch.Tensor | None:
        if data is None:
            return None
        names, ts, _ = _as_items(data, None, owner)
        _check_same_shape(names, ts, owner, f"all {field} must have one size")
        if len(ts) != n:
            raise ValueError(f"{owner}: {len(ts)} {field} for {n} measurements")
        return self.normalization.normalize(torch.stack(ts))

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        physics: LinearOperator | str | Callable[..., LinearOperator] | None = None,
        *,
        noise: NoiseModel | None = None,
        normalization: Normalization | None = None,
    ) -> MeasurementDataset:
        """Read a measurement set from an ``.npz`` or ``.h5`` file (layout in the module docstring).

        ``physics`` is one of: an operator instance whose per-sample parameters are replaced by the
        file's arrays (any operator, composed ones too); a class, callable or registry name
        (``"inpainting"``, ``"mri"``) called with the file's parameter arrays as keyword arguments
        (``MRI(mask=...)``); or ``None`` for the ``operator`` recorded in the file's meta data
        (``Denoising`` when there are no parameters). ``noise`` defaults to the one recorded.
        Arrays written by :meth:`save` are already normalised (the meta data say how) and are not
        normalised again; ``normalization`` applies to files without that record.
        """
        path = Path(path)
        arrays, meta = _read_arrays(path)
        if "y" not in arrays:
            raise ValueError(f"{path.name}: no array 'y' (it holds {sorted(arrays)})")
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        params = {k: v for k, v in tensors.items() if k not in _RESERVED}
        if noise is None and meta.get("noise"):
            noise = _build_noise(meta["noise"], path)
        phys = _build_physics(physics, params, noise, meta, path, y=tensors["y"])
        stored = meta.get("normalization")
        if stored is not None and normalization is not None:
            raise ValueError(f"{path.name}: the data are already normalised ({stored}); do not pass normalization=")
        ds = cls(
            tensors["y"],
            phys,
            x=tensors.get("x"),
            y2=tensors.get("y2"),
            normalization=normalization,
            names=meta.get("names"),
        )
        if stored is not None:
            ds.normalization = Normalization.from_dict(stored)
        return ds

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike,
        physics: LinearOperator | str | Callable[..., LinearOperator] | None = None,
        *,
        noise: NoiseModel | None = None,
        normalization: Normalization | None = None,
    ) -> MeasurementDataset:
        """Read a measurement set from a folder: ``y/``, optional ``x/``, ``y2/``, one subfolder per parameter.

        Files are matched by stem. A stack file gives one sample per slice (its parameter files are
        stacks of the same depth, or single images used for every slice). Parameter files stored as
        integers (a mask saved as an 8-bit PNG) are divided by the top of their data range, so
        0/255 becomes 0/1; store anything else as float (``.npy``). ``physics``, ``noise``: as in
        :meth:`load` (``meta.json`` takes the place of the meta data). ``normalization`` defaults to
        the one the y files imply (8-bit → /255, no offset).
        """
        folder = Path(folder)
        if not (folder / "y").is_dir():
            raise ValueError(f"{folder.name}: a measurement folder needs a subfolder y/ (with one file per measurement)")
        meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
        stems = {p.stem: p for p in list_images(folder / "y")}
        if not stems:
            raise ValueError(f"{folder.name}: y/ holds no readable files")
        fields: dict[str, dict[str, Path]] = {}
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "y"):
            files = {p.stem: p for p in list_images(sub)}
            missing = sorted(set(stems) - set(files))
            if missing:
                raise ValueError(f"{folder.name}: {sub.name}/ has no file for {', '.join(missing[:5])}")
            fields[sub.name] = files
        names: list[str] = []
        y_list: list[np.ndarray] = []
        collected: dict[str, list[np.ndarray]] = {k: [] for k in fields}
        infos: list[ImageInfo] = []
        for stem in sorted(stems):
            y_arr, info = read_image(stems[stem], return_info=True)
            depth = y_arr.shape[0] if y_arr.ndim == 4 else None
            y_slices = list(y_arr) if depth else [y_arr]
            names += [f"{stem}[{d}]" for d in range(depth)] if depth else [stem]
            y_list += y_slices
            infos += [info] * len(y_slices)
            for field, files in fields.items():
                arr, finfo = read_image(files[stem], return_info=True)
                if field not in ("x", "y2") and finfo.bit_depth is not None:
                    arr = arr / np.float32(finfo.data_range[1])
                if depth and arr.ndim == 4:
                    if arr.shape[0] != depth:
                        raise ValueError(f"{files[stem].name}: {arr.shape[0]} slices but y has {depth}")
                    collected[field] += list(arr)
                else:
                    collected[field] += [arr] * len(y_slices)
        if normalization is None:
            normalization = _file_normalization(infos, names, "MeasurementDataset", measurements=True)
        tensors = {}  # x and y2 stay in the units of y (normalised with it)
        for k, v in collected.items():
            ts = [torch.from_numpy(a) for a in v]
            _check_same_shape([f"{k}/{n}" for n in names], ts, "MeasurementDataset", f"every file in {k}/ must have one shape")
            tensors[k] = torch.stack(ts)
        if noise is None and meta.get("noise"):
            noise = _build_noise(meta["noise"], folder)
        params = {k: v for k, v in tensors.items() if k not in _RESERVED}
        shapes = {a.shape for a in y_list}
        y_all = torch.from_numpy(np.stack(y_list)) if len(shapes) == 1 else None
        phys = _build_physics(physics, params, noise, meta, folder, y=y_all)
        return cls(
            [torch.from_numpy(a) for a in y_list],
            phys,
            x=tensors.get("x"),
            y2=tensors.get("y2"),
            normalization=normalization,
            names=names,
        )


# ---------------------------------------------------------------------- physics and noise from files
def _operator_name(op: LinearOperator) -> str:
    from selfinv.physics import OPERATORS

    for name, cls in OPERATORS.items():
        if type(op) is cls:
            return name
    return type(op).__name__


def _build_noise(desc: dict[str, Any], path: Path) -> NoiseModel:
    from selfinv.noise import NOISE_MODELS

    cls = NOISE_MODELS.get(desc.get("name"))
    if cls is None:
        raise ValueError(f"{path.name}: unknown noise model {desc.get('name')!r} in the meta data; pass noise=")
    return cls(**{k: v for k, v in desc.items() if k != "name"})


def _build_physics(physics, params: dict[str, torch.Tensor], noise: NoiseModel | None, meta: dict, path: Path,
                   y: torch.Tensor | None = None) -> LinearOperator:
    from selfinv.data.sources import physics_from
    from selfinv.physics.denoising import Denoising

    if physics is None:
        name = meta.get("operator")
        if name is None:
            if params:
                raise ValueError(f"{path.name}: holds operator parameters {sorted(params)} but no operator name; pass physics=")
            return Denoising(noise=noise)
        physics = name
    if isinstance(physics, LinearOperator):
        op = physics.with_noise(noise) if noise is not None else physics
        return with_params(op, params)
    kwargs = {k: v for k, v in params.items() if "." not in k}
    nested = {k: v for k, v in params.items() if "." in k}
    try:
        op = physics_from(physics, kwargs, noise, y, path.name)
    except TypeError as e:
        raise ValueError(f"{path.name}: cannot build the operator from the parameters {sorted(kwargs)} ({e}); pass physics=") from e
    return with_params(op, nested)


def _write_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], overwrite: bool) -> None:
    ext = path.suffix.lower()
    if ext not in (".npz", ".h5", ".hdf5"):
        raise ValueError(f"{path.name}: a measurement set is written as .npz or .h5")
    if path.exists() and not overwrite:
        raise ValueError(f"{path.name}: already exists; pass overwrite=True to replace it")
    text = json.dumps(meta)
    if ext == ".npz":
        with open(path, "wb" if overwrite else "xb") as fh:
            np.savez(fh, meta=np.array(text), **arrays)
    else:
        import h5py

        with h5py.File(path, "w" if overwrite else "w-") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
            f.attrs["meta"] = text


def _read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    ext = path.suffix.lower()
    if not path.is_file():
        raise ValueError(f"{path.name}: no such file ({path})")
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.keys()}
            text = arrays.pop("meta", None)
            meta = json.loads(str(text)) if text is not None else {}
        elif ext in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
                text = f.attrs.get("meta")
            meta = json.loads(text) if text is not None else {}
        else:
            raise ValueError(f"{path.name}: a measurement set is an .npz or .h5 file")
    except ValueError as e:
        if str(e).startswith(f"{path.name}:"):
            raise
        raise ValueError(f"{path.name}: cannot read the measurement set ({type(e).__name__}: {e})") from e
    except Exception as e:
        raise ValueError(f"{path.name}: cannot read the measurement set ({type(e).__name__}: {e})") from e
    for k, v in arrays.items():
        if v.dtype.kind in "fc" and not np.isfinite(v).all():
            raise ValueError(f"{path.name}: array {k!r} contains NaN or Inf values")
        if v.size == 0:
            raise ValueError(f"{path.name}: array {k!r} is empty")
    return arrays, meta


# ---------------------------------------------------------------------- subsets and splits
class Subset(Dataset):
    """The samples ``indices`` of a dataset; items keep their index in the parent (``sample.index``)."""

    def __init__(self, dataset, indices: Sequence[int] | torch.Tensor) -> None:
        self.dataset = dataset
        self.indices = torch.as_tensor(indices, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getitem__(self, i: int) -> Sample:
        return self.dataset[int(self.indices[i])]

    @property
    def physics_template(self) -> LinearOperator:
        return self.dataset.physics_template

    @property
    def normalization(self) -> Normalization:
        return self.dataset.normalization

    @property
    def groups(self) -> torch.Tensor:
        g = getattr(self.dataset, "groups", None)
        return (g if g is not None else torch.arange(len(self.dataset)))[self.indices]

    def make_physics(self, params: dict[str, torch.Tensor]) -> LinearOperator:
        return self.dataset.make_physics(params)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


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
    g = getattr(dataset, "groups", None)
    groups = g if g is not None else torch.arange(len(dataset))
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
