r"""Measurements simulated once, with fixed seeds, from ground-truth images: :class:`SimulatedDataset`.

Images (files, folders, arrays; optionally cut into patches drawn from the seed) → measurements simulated
**once**, at construction, with per-sample seeds derived from ``(seed, index)``: y, y2, x and the operator
parameters are fixed, and every pass over the data sees the same noise. This is the honest default: drawing
fresh noise every epoch gives a method many noisy copies of each image, which silently turns it into
Noise2Noise and overstates what it learns from single measurements. ``resample_noise_each_epoch=True`` does
that on purpose (the operators stay fixed). ``pairs=True`` adds an independent second measurement y2 through
the same operator (for Noise2Noise). The operators are a fixed one or one per sample from a factory (a
sampler); their per-sample parameters are stored beside the measurements.

Example:
    >>> import torch
    >>> from selfinv.noise import Gaussian
    >>> from selfinv.physics import Denoising
    >>> ds = SimulatedDataset(torch.zeros(2, 1, 8, 8), Denoising(), noise=Gaussian(0.1), seed=0)
    >>> torch.equal(ds[1].y, ds[1].y), ds.params       # simulated once; a shared operator has no parameters
    (True, {})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from selfinv.data._seeds import generator as seeded
from selfinv.data.datasets.base import PhysicsDataset
from selfinv.data.datasets.items import as_items, check_same_shape, file_normalization
from selfinv.data.normalization import Normalization
from selfinv.data.patches import random_positions
from selfinv.data.physics_params import params_and_template, per_sample_buffers, with_params
from selfinv.data.samples import Sample
from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator

__all__ = ["PhysicsFactory", "SimulatedDataset"]

#: a factory of one operator per sample: ``physics(batch_size, generator) -> LinearOperator`` (a sampler)
PhysicsFactory = Callable[[int, torch.Generator], LinearOperator]


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



class SimulatedDataset(PhysicsDataset):
    """Measurements simulated once, with fixed seeds, from ground-truth images (module docstring).

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
        img_names, imgs, infos = as_items(images, names, owner, images=True)
        if normalization is None:
            normalization = file_normalization(infos, img_names, owner, measurements=False)
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
            check_same_shape(crop_names, crops, owner, "all images need the same number of channels")
            imgs, img_names = crops, crop_names
            self.groups = torch.tensor(groups, dtype=torch.long)
        else:
            if patches_per_image != 1:
                raise ValueError(f"{owner}: patches_per_image needs patch_size")
            check_same_shape(img_names, imgs, owner, "pass patch_size= to train on patches, or resize/crop the images")
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
            self.params, template = params_and_template(physics, n)
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
        check_same_shape(self.names, ys, "SimulatedDataset", "the operators give measurements of different sizes")
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

