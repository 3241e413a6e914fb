r"""Measurement sets from the files users have, normalised so that networks and metrics see values near [0, 1].

:func:`load_measurements` accepts every way real measurements arrive:

* a measurement set written by :meth:`~selfinv.data.datasets.PhysicsDataset.save` (``.npz``/``.h5`` holding
  ``y`` and per-sample parameters), or a folder with ``y/`` (and ``x/``, ``y2/``, one folder per parameter,
  ``meta.json``) — see :mod:`selfinv.data.datasets`;
* image files holding y: a folder of them, a glob pattern (``raw/*.tif``), or one file; stacks give one
  measurement per slice; ``key`` (or ``FILE:KEY``) chooses the array of an ``.h5``/``.npz``/``.mat`` file;
  ``axes`` (``"TYX"``, ``"ZYX"``, ...) is checked against every file, second frames of the same fields of view
  (``pairs``, or consecutive frames of T stacks with ``frame_pairs``) become y2 for Noise2Noise, and saturated
  pixels of 8/16-bit files are reported (:mod:`~selfinv.data.stacks`).

When the operator needs a mask and none is given (k-space or an image with missing pixels stored as zeros), the
mask is taken from the zeros of y: an entry is acquired where any channel (coil) of y is non-zero
(:func:`mask_from_zeros`), and a warning says so. A fastMRI ``.h5`` file measured by a k-space operator (``mri``,
``multicoil_mri``) is read as its ``kspace`` dataset (:func:`kspace_key`; its default for images is the
reconstruction); multi-coil k-space with its coil maps: :mod:`selfinv.data.kspace`.

Normalisation ``"auto"`` (:func:`auto_normalization`): 8-bit files keep the usual ``/ 255``; anything else
(16-bit counts, floats, complex k-space) is divided by a robust scale, the 99.5th percentile of the magnitude of
the back-projection (:math:`A^H y`, filtered for tomography) over the first measurements, so that the images the
network produces lie in about [0, 1] whatever the scanner's units (raw k-space is often ~1e5 or more). The
scale is recorded in ``dataset.normalization`` (and in checkpoints) and undone on output.

Example:
    >>> import numpy as np, pathlib, tempfile, torch
    >>> from selfinv.physics import MRI
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> k = np.zeros((1, 8, 8), np.complex64); k[..., ::2] = 3e5 * (1 + 1j)     # raw units, every other line
    >>> np.save(folder / "scan.npy", k)
    >>> ds = load_measurements(folder / "scan.npy", "mri")                    # doctest: +ELLIPSIS
    ...
    >>> float(ds.params.get("mask", ds.physics_template.mask).mean()), ds.normalization.scale > 1e4
    (0.5, True)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from selfinv.data.array_formats import h5_datasets, h5_open
from selfinv.data.datasets.format import holds_y, stored_normalization
from selfinv.data.datasets.items import check_same_shape, file_normalization
from selfinv.data.datasets.measured import MeasurementDataset
from selfinv.data.normalization import Normalization
from selfinv.data.physics_params import MASK_FROM_ZEROS, mask_from_zeros, physics_from
from selfinv.data.readers import ImageInfo, list_images, split_key
from selfinv.data.stacks import match_pair_files, read_measurement_files

__all__ = ["MASK_FROM_ZEROS", "auto_normalization", "kspace_key", "load_measurements", "mask_from_zeros", "split_key"]

def _back_projection(physics, y: torch.Tensor) -> torch.Tensor:
    fbp = getattr(physics, "fbp", None)
    with torch.no_grad():
        return fbp(y) if callable(fbp) else physics.A_adjoint(y)


def auto_normalization(y: torch.Tensor, physics, infos: list[ImageInfo | None] | None = None, n_max: int = 16,
                       where: str = "measurements") -> Normalization:
    """The ``"auto"`` normalisation of measurements y through ``physics`` (module docstring): ``/ 255`` when
    every file is 8-bit, else the robust scale of the back-projection of the first ``n_max`` measurements
    (scale only: an offset breaks y = A x)."""
    if infos and all(i is not None and i.bit_depth == 8 for i in infos):
        return Normalization(scale=255.0)
    op = physics.select(slice(0, min(n_max, y.shape[0]))) if physics.batch_size else physics
    try:
        return Normalization.robust(_back_projection(op, y[:n_max]))
    except ValueError as e:
        raise ValueError(f"{where}: the measurements do not fit the {type(op).__name__} operator: {e}") from None


def image_files(p: Path, text: str, where: str) -> list[Path]:
    """The image files of a folder, a glob pattern (``text``) or one file; ``where`` names it in errors."""
    if p.is_dir():
        files = list_images(p)
    elif any(c in text for c in "*?["):
        files = list_images(text)
    elif p.is_file():
        files = [p]
    else:
        rel = "" if p.is_absolute() else f", relative to the working directory {Path.cwd()}"
        raise ValueError(f"{where}: no such file or folder ({p}{rel})")
    if not files:
        raise ValueError(f"{where}: holds no readable measurement files")
    return files


def kspace_key(path, complex_operator: bool | None) -> str | None:
    """``"kspace"`` for a fastMRI file (an ``.h5`` holding ``kspace``, no key in the path) measured by a k-space
    (complex) operator, whose reader would otherwise take the file's real reconstruction; else None."""
    p, key = split_key(path)
    if not complex_operator or key is not None or p.suffix.lower() not in (".h5", ".hdf5") or not p.is_file():
        return None
    with h5_open(p) as f:
        return "kspace" if "kspace" in h5_datasets(f) else None


def _coil_check(infos: list[ImageInfo], physics_name: str | None, channels: int, where: str) -> None:
    coils = [i for i in infos if getattr(i, "channel_axis", None) == "coil"]
    if coils and channels > 1 and physics_name in ("mri", "MRI"):
        raise ValueError(
            f"{where}: holds k-space of {channels} receive coils; the mri operator is single-coil and would treat "
            "the coils as independent images (channels). Combine the coils first (e.g. coil-compress to one virtual "
            "coil) or use the multi-coil (SENSE) operator multicoil_mri"
        )


def load_measurements(
    path: str | os.PathLike,
    physics="denoising",
    *,
    key: str | None = None,
    noise=None,
    normalization: Normalization | str | None = "auto",
    axes: str | None = None,
    pairs: str | os.PathLike | None = None,
    frame_pairs: bool = False,
):
    """A :class:`~selfinv.data.datasets.MeasurementDataset` from a measurement set or from image files (module
    docstring).

    Args:
        path: a measurement set (``.npz``/``.h5`` with ``y``, or a folder with ``y/``), a folder or glob of image
            files, or one file (``FILE:KEY`` picks an array).
        physics: the operator: a registry name, a class or a factory ``(noise=None, [y=None,] **arrays)``
            called with the set's per-sample arrays (an instance: its parameters are replaced by the set's).
        key: the array of ``.h5``/``.npz``/``.mat`` files holding y.
        noise: the noise model (default: the set's recorded one, else the operator's).
        normalization: ``"auto"`` (module docstring), ``"range"`` (the file type's range: 8-bit / 255, floats
            unchanged), ``"none"``, or a :class:`Normalization`. A set written by ``save`` is already normalised.
        axes: image files: the layout of the stored arrays (``"TYX"``, ``"ZYX"``, ``"CYX"``, ...), checked
            against every file (:mod:`~selfinv.data.stacks`).
        pairs: image files: a folder, glob or file of second frames of the same fields of view (y2, Noise2Noise),
            matched by name or else in sorted order.
        frame_pairs: image files: frames 2k and 2k + 1 of each T stack are a measurement and its y2 (a measurement
            set brings its own y2).
    """
    p, key = split_key(path, key)
    where = p.name or str(p)
    if key is None:
        key = kspace_key(p, _operator_is_complex(physics))
    explicit = normalization if isinstance(normalization, Normalization) else None
    if normalization == "none":
        explicit = Normalization.identity()
    elif not (isinstance(normalization, Normalization) or normalization in ("auto", "range", None)):
        raise ValueError(f"load_measurements: normalization must be 'auto', 'range', 'none' or a Normalization, got {normalization!r}")
    text = str(p)
    is_set = p.is_file() and key is None and p.suffix.lower() in (".npz", ".h5", ".hdf5") and holds_y(p)
    if (p.is_dir() and (p / "y").is_dir()) or is_set:
        given = [n for n, v in (("axes", axes), ("pairs", pairs)) if v]
        if given:  # frame_pairs: a set brings its own y2
            raise ValueError(f"{where}: {' and '.join(given)} apply to image files; a measurement set "
                             f"{'(a folder with y/) takes its pairs from y2/' if p.is_dir() else 'holds y2 itself'}")
        loader = MeasurementDataset.from_folder if p.is_dir() else MeasurementDataset.load
        stored = is_set and stored_normalization(p)
        ds = loader(p, physics=physics, noise=noise, normalization=None if stored else explicit)
        if explicit is None and normalization == "auto" and not stored and ds.normalization.scale != 255.0:
            _rescale(ds, auto_normalization(ds.y, ds.make_physics(ds.params), where=where))
        elif stored and explicit is not None and explicit.scale != ds.normalization.scale:
            _rescale(ds, Normalization(explicit.scale / ds.normalization.scale))  # into the given units (a model's)
        return ds
    files = image_files(p, text, where)
    pair_files = None
    if pairs is not None:
        q = Path(pairs)
        pair_files = match_pair_files(files, image_files(q, str(pairs), q.name or str(q)))
    arrays, arrays2, names, infos = read_measurement_files(files, key, axes, pair_files, frame_pairs, where)
    if not arrays:
        raise ValueError(f"{where}: no measurements")
    ts = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    check_same_shape(names, ts, "measurements", "crop or pad them to one size, or use one data set per size")
    y2 = None if arrays2 is None else [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays2]
    y = torch.stack(ts)
    name = physics if isinstance(physics, str) else getattr(physics, "__name__", None)
    _coil_check(infos, name, int(y.shape[1]) if y.ndim == 4 else 1, where)
    op = physics_from(physics, {}, noise, y, where) if not _is_operator(physics) else physics
    if explicit is None and normalization == "auto":
        explicit = auto_normalization(y, op, infos, where=where)
    elif explicit is None:
        explicit = file_normalization(infos, names, "measurements", measurements=True)
    return MeasurementDataset(list(ts), op if noise is None or not _is_operator(physics) else op.with_noise(noise),
                              y2=y2, normalization=explicit, names=names)


def _operator_is_complex(physics) -> bool | None:
    """Whether ``physics`` (a registry name, a class, an operator or a factory) acts on complex data (None: unknown)."""
    from selfinv.physics import OPERATORS

    if isinstance(physics, str):
        physics = OPERATORS.get(physics)
    return getattr(physics, "is_complex", None)


def _is_operator(physics) -> bool:
    from selfinv.physics.base import LinearOperator

    return isinstance(physics, LinearOperator)


def _rescale(ds, norm: Normalization) -> None:
    """Divide a measurement set (y, x, y2) by ``norm.scale`` in place and record it."""
    s = norm.scale
    ds.y = ds.y / s
    if ds.x is not None:
        ds.x = ds.x / s
    if ds.y2 is not None:
        ds.y2 = ds.y2 / s
    ds.normalization = Normalization(scale=ds.normalization.scale * s)


def describe_scale(norm: Normalization) -> str:
    """One phrase for logs: how the data were normalised."""
    if norm.is_identity:
        return "not normalised"
    return f"divided by {norm.scale:.4g}" + (f" after subtracting {norm.offset:.4g}" if norm.offset else "")

