r"""Real measurements without ground truth: :class:`MeasurementDataset`.

Measurements y (arrays, tensors or files of one shape) with their operator, whose per-sample parameters
(a mask per scan) are stored beside them; an optional reference x is carried for evaluation only, never
for training. A measurement set is read from an ``.npz``/``.h5`` file (:meth:`MeasurementDataset.load`) or
a folder (:meth:`MeasurementDataset.from_folder`), both in the format of
:mod:`~selfinv.data.datasets.format`, with the operator rebuilt from the set's record
(:func:`~selfinv.data.physics_params.physics_from_record`). Any file of measurements:
:func:`selfinv.data.sources.load_measurements`.

Example:
    >>> import torch
    >>> from selfinv.physics import Inpainting
    >>> masks = (torch.arange(2 * 16).reshape(2, 1, 4, 4) % 3 > 0).float()
    >>> ds = MeasurementDataset(torch.rand(2, 1, 4, 4) * masks, Inpainting(masks))
    >>> sorted(ds.params), ds.params["mask"].shape, ds.make_physics(ds.params).batch_size
    (['mask'], torch.Size([2, 1, 4, 4]), 2)
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from selfinv.data.datasets.base import PhysicsDataset
from selfinv.data.datasets.format import RESERVED, read_arrays
from selfinv.data.datasets.items import as_items, check_same_shape, file_normalization
from selfinv.data.image_info import ImageInfo
from selfinv.data.normalization import Normalization
from selfinv.data.physics_params import params_and_template, physics_from_record
from selfinv.data.readers import list_images, read_image
from selfinv.data.stacks import saturated_pixels, saturation_warning
from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator

__all__ = ["MeasurementDataset"]


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
        y_names, ys, infos = as_items(y, names, owner)
        check_same_shape(y_names, ys, owner, "crop or pad the measurements to one size, or use one dataset per size")
        n = len(ys)
        if normalization is None:
            normalization = file_normalization(infos, y_names, owner, measurements=True)
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
        self.params, self.physics_template = params_and_template(physics, n)
        self.groups = torch.arange(n)

    def _optional(self, data, field: str, n: int, owner: str) -> torch.Tensor | None:
        if data is None:
            return None
        names, ts, _ = as_items(data, None, owner)
        check_same_shape(names, ts, owner, f"all {field} must have one size")
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
        """Read a measurement set from an ``.npz`` or ``.h5`` file (layout in :mod:`~selfinv.data.datasets.format`).

        ``physics`` is one of: an operator instance whose per-sample parameters are replaced by the
        file's arrays (any operator, composed ones too); a class, callable or registry name
        (``"inpainting"``, ``"mri"``) called with the file's parameter arrays as keyword arguments
        (``MRI(mask=...)``); or ``None`` for the ``operator`` recorded in the file's meta data
        (``Denoising`` when there are no parameters). ``noise`` defaults to the one recorded.
        Arrays written by :meth:`save` are already normalised (the meta data say how) and are not
        normalised again; ``normalization`` applies to files without that record.
        """
        path = Path(path)
        arrays, meta = read_arrays(path)
        if "y" not in arrays:
            raise ValueError(f"{path.name}: no array 'y' (it holds {sorted(arrays)})")
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        params = {k: v for k, v in tensors.items() if k not in RESERVED}
        phys = physics_from_record(physics, params, noise, meta, path, y=tensors["y"])
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
        the one the y files imply (8-bit → /255, no offset). Saturated pixels of 8/16-bit y files are reported in
        one warning and kept (:func:`~selfinv.data.stacks.saturated_pixels`).
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
        saturated = []
        for stem in sorted(stems):
            y_arr, info = read_image(stems[stem], return_info=True)
            hit = saturated_pixels(y_arr, info)
            if hit is not None:
                saturated.append((stems[stem].name, hit[0], y_arr.size, hit[1], hit[2]))
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
        line = saturation_warning(saturated, len(stems), f"{folder.name}/y")
        if line:
            warnings.warn(line, stacklevel=2)
        if normalization is None:
            normalization = file_normalization(infos, names, "MeasurementDataset", measurements=True)
        tensors = {}  # x and y2 stay in the units of y (normalised with it)
        for k, v in collected.items():
            ts = [torch.from_numpy(a) for a in v]
            check_same_shape([f"{k}/{n}" for n in names], ts, "MeasurementDataset", f"every file in {k}/ must have one shape")
            tensors[k] = torch.stack(ts)
        params = {k: v for k, v in tensors.items() if k not in RESERVED}
        shapes = {a.shape for a in y_list}
        y_all = torch.from_numpy(np.stack(y_list)) if len(shapes) == 1 else None
        phys = physics_from_record(physics, params, noise, meta, folder, y=y_all)
        return cls(
            [torch.from_numpy(a) for a in y_list],
            phys,
            x=tensors.get("x"),
            y2=tensors.get("y2"),
            normalization=normalization,
            names=names,
        )
