r"""Real measurements with the config's operator (``data.source = measurements``, ``evaluate`` and
``reconstruct`` of measurement sets).

A measurement set is anything :func:`selfinv.data.sources.load_measurements` reads (a ``.npz``/``.h5`` set, a
folder with ``y/``, image files); its per-sample arrays (masks, angles) complete the config's ``physics``
section, a mask comes from the zeros of y when the operator needs one and nobody gave it, estimated arguments are
computed from y (``coil_maps: espirit``), a fastMRI file is read as k-space by a k-space operator, and the operator
is checked against the first measurement (real/complex, shapes, channels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinv.config import Config, ConfigError, registry_fields
from selfinv.engine.physics_builders import (
    build_noise,
    estimated_arguments,
    operator_arguments,
    size_arguments,
    takes_image_size,
)
from selfinv.models.registry import spatial_dims
from selfinv.physics import OPERATORS

__all__ = ["Measurements", "config_measurements", "measurement_set"]


@dataclass
class Measurements:
    """A measurement set with the config's operator (:func:`measurement_set`)."""

    dataset: Any  # selfinv.data.MeasurementDataset
    physics: Any  # the operator of the first measurement
    x_shape: tuple[int, ...]  # (C, H, W) of A^H y; (C, D, H, W) for volumes (3-D networks)
    is_complex: bool


def _physics_factory(cfg: Config, img_shape_hint, fallback_noise):
    """A callable ``(noise=None, y=None, **file_arrays) -> operator`` for a measurement set: the config's operator
    with the file's per-sample arrays, a mask from the zeros of y when the operator needs one and nobody gave it;
    the file's noise model, else ``fallback_noise``."""
    import warnings

    from selfinv.data.sources import MASK_FROM_ZEROS, mask_from_zeros

    cls = OPERATORS[cfg.physics.name]
    base = operator_arguments(cfg)
    sized = size_arguments(cls, img_shape_hint, cfg.seed) if img_shape_hint is not None else {}
    if takes_image_size(cls) and img_shape_hint is None:
        raise ConfigError(f"config: data.img_size is needed for {cfg.physics.name} measurement sets (the size of x)")
    required = [k for k, d in registry_fields("physics", cls).items() if d is ...]

    def factory(noise=None, y=None, **arrays):
        args = {**base, **sized, **arrays}
        if "mask" in required and args.get("mask") is None and y is not None and y.ndim == 4:
            args["mask"] = mask_from_zeros(y)
            warnings.warn(f"physics.mask: {MASK_FROM_ZEROS}", stacklevel=2)
        args = estimated_arguments(args, y)  # coil_maps: espirit (from each measurement's k-space centre)
        missing = [k for k in required if args.get(k) is None]
        if missing:
            raise ValueError(f"the {cfg.physics.name} operator needs {', '.join(missing)}: give physics.{missing[0]} in the "
                             f"config or a {missing[0]} array in the measurement set")
        try:
            return cls(**args, noise=noise if noise is not None else fallback_noise)
        except TypeError as e:
            raise ValueError(f"cannot build {cfg.physics.name} from the file's arrays {sorted(arrays)} and the config ({e})") from None

    return factory


def _normalization_arg(cfg: Config):
    from selfinv.data import Normalization

    norm = cfg.data.normalization
    return norm if isinstance(norm, str) else Normalization(**norm.model_dump())


def _is_measurement_set(path, key: str | None) -> bool:
    """A set written by ``save`` (a folder with y/, an .npz/.h5 holding y) rather than image files."""
    from selfinv.data.datasets.format import holds_y
    from selfinv.data.sources import split_key

    p, key = split_key(path, key)
    if p.is_dir():
        return (p / "y").is_dir()
    return p.is_file() and key is None and p.suffix.lower() in (".npz", ".h5", ".hdf5") and holds_y(p)


def measurement_set(cfg: Config, path: str | Path, noise=None, img_shape=None, normalization=None,
                    where: str = "data", pairs: bool = False, with_axes: bool = True) -> Measurements:
    """A :class:`~selfinv.data.MeasurementDataset` with the config's operator, from any source
    :func:`selfinv.data.sources.load_measurements` reads (a measurement set, a folder with ``y/``, image files).

    ``noise`` replaces the file's noise model (None: the file's, else the config's); ``img_shape`` (C, H, W)
    sizes operators that need it (tomography, compressed sensing); ``normalization`` defaults to
    ``data.normalization`` (a trained model passes its own). The operator is checked against the first
    measurement (real/complex, shapes, channels). Image files are read with ``data.axes`` (unless not
    ``with_axes``); with ``pairs`` their second measurements come from ``data.pairs_path`` or, with
    ``data.pairs``, from the frames of T stacks (a measurement set brings its own y2).
    """
    from selfinv.data.sources import kspace_key, load_measurements, split_key

    d = cfg.data
    factory = _physics_factory(cfg, img_shape, build_noise(cfg))
    p, _ = split_key(path)
    key = d.key if d.key is not None else kspace_key(path, OPERATORS[cfg.physics.name].is_complex)
    volumes = spatial_dims(cfg.model.backbone.name) == 3  # a 3-D network: one volume (C, D, H, W) per file
    if volumes and not _is_measurement_set(path, d.key):
        from selfinv.data.volumes import load_volumes

        ds = load_volumes(path, factory, key=d.key, noise=noise, axes=d.axes if with_axes else None,
                          normalization=_normalization_arg(cfg) if normalization is None else normalization,
                          pairs=d.pairs_path if pairs else None)
    else:
        ds = load_measurements(path, factory, key=key, noise=noise,
                               normalization=_normalization_arg(cfg) if normalization is None else normalization,
                               axes=d.axes if with_axes else None, pairs=d.pairs_path if pairs else None,
                               frame_pairs=pairs and d.pairs and d.pairs_path is None and d.axes is not None and "T" in d.axes)
    if pairs and d.pairs and ds.y2 is None:
        raise ValueError(f"{p.name}: data.pairs is true but the measurements have no second frames; give "
                         "data.pairs_path, a folder with y/ and y2/, or T stacks with data.axes (e.g. TYX)")
    op = ds.make_physics({k: v[:1] for k, v in ds.params.items()})
    try:
        x0 = op.A_adjoint(ds.y[:1])  # checks that the operator fits the data (real/complex, shapes, channels)
    except ValueError as e:
        raise ValueError(f"{p.name}: the measurements do not fit the {cfg.physics.name} operator: {e}") from None
    if ds.x is not None and tuple(ds.x.shape[1:]) != tuple(x0.shape[1:]):
        raise ValueError(f"{p.name}: x has shape {tuple(ds.x.shape[1:])} but A^H y has {tuple(x0.shape[1:])}")
    if volumes and x0.ndim != 5:
        raise ValueError(f"{p.name}: model.backbone {cfg.model.backbone.name} is a 3-D network and needs volumes "
                         f"(C, D, H, W), got measurements of shape {tuple(x0.shape[1:])}; use a 2-D backbone")
    if not volumes and x0.ndim != 4:
        raise ValueError(f"{p.name}: the images A^H y must be (C, H, W), got {tuple(x0.shape[1:])}; set {where}.img_size")
    return Measurements(ds, op, tuple(int(s) for s in x0.shape[1:]), bool(x0.is_complex()))


def config_measurements(cfg: Config, path: str | None, noise, where: str) -> Measurements:
    """The measurement set at ``path`` (``data.path`` or ``data.test_path``, named ``where`` in errors) sized by
    ``data.img_size``; every failure is one :class:`~selfinv.config.ConfigError` line."""
    d = cfg.data
    if path is None:
        raise ConfigError(f"config: {where} is required for data.source = measurements (a measurement set, a folder or image files)")
    hint = None
    if d.img_size is not None:
        if len(d.img_size) not in (2, 3):
            raise ConfigError("config: data.img_size must be N, [H, W] or [C, H, W]")
        hint = tuple(d.img_size) if len(d.img_size) == 3 else (1, *d.img_size)
    try:
        return measurement_set(cfg, path, noise=noise, img_shape=hint, pairs=where == "data.path")
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"config: {where}: {str(e).replace('pass key=', 'set data.key (or FILE:KEY)')}") from None
