r"""The data of a run, assembled from a config: the data set, its operator, the train/validation split and
the test set.

:func:`build_data` reads or simulates the data set (:mod:`selfinv.engine.images`,
:mod:`selfinv.engine.measurements`) and resolves the config to what was used; :func:`split_data` holds out
validation data; :func:`build_test_set` gives the evaluation data in the model's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfinv.config import Config, ConfigError, parse_config
from selfinv.engine.images import ground_truth, simulate
from selfinv.engine.measurements import config_measurements
from selfinv.engine.noise_estimate import data_with_estimated_noise, placeholder
from selfinv.engine.physics_builders import build_noise, build_sampler, fbp_init
from selfinv.models.registry import spatial_dims
from selfinv.noise import describe as describe_noise

__all__ = ["Data", "absolute_paths", "build_data", "build_test_set", "split_data"]


@dataclass
class Data:
    """The training data of a config (:func:`build_data`)."""

    cfg: Config  # resolved: the normalisation used, the measurement set's noise and patching filled in
    dataset: Any  # the full data set (SimulatedDataset or MeasurementDataset)
    physics: Any  # a template operator with its noise (one sample)
    img_shape: tuple[int, ...]  # (C, H, W) of one image x; (C, D, H, W) of one volume (3-D networks)
    is_complex: bool
    normalization: Any  # selfinv.data.Normalization
    sampler: Any | None  # per-sample operators (or, for measurements, the family the losses draw from)
    noise_estimate: Any = None  # noise: {name: estimate}: what was estimated (selfinv.engine.noise_estimate)


def absolute_paths(cfg: Config) -> Config:
    """The config with its data paths and physics files made absolute (runs and checkpoints do not depend on
    the working folder)."""
    data = cfg.model_dump(mode="json", exclude_unset=True)  # keeps which keys the user set
    data.setdefault("data", {})
    data.setdefault("physics", cfg.physics.model_dump(mode="json"))
    for key in ("path", "test_path"):
        if data["data"].get(key):
            data["data"][key] = str(Path(data["data"][key]).expanduser().resolve())
    for k, v in list(data["physics"].items()):
        if isinstance(v, str) and k not in ("name",) and Path(v).suffix and Path(v).expanduser().exists():
            data["physics"][k] = str(Path(v).expanduser().resolve())
    return parse_config(data)


def _resolved(cfg: Config, **data: Any) -> Config:
    """The config with ``data`` keys replaced (what the run really used, for config.yaml and checkpoints)."""
    dumped = cfg.model_dump(mode="json")
    dumped["data"].update(data)
    return parse_config(dumped)


def _bands(imgs, names, fraction: float, patch: int | None):
    """Ground-truth images cut into a training band and a validation band (the last ``fraction`` of the longer
    side): validation within each image, when there is one image or ``data.val_fraction`` is 0."""
    if patch is None:
        raise ConfigError("config: validation within one image needs data.patch_size (patches of a training band and "
                          "of a validation band), or more images with data.val_fraction > 0")
    train, val = [], []
    for name, img in zip(names, imgs, strict=True):
        h, w = img.shape[-2:]
        axis = -2 if h >= w else -1
        size = img.shape[axis]
        cut = int(round((1 - fraction) * size))
        if min(cut, size - cut, img.shape[-1 if axis == -2 else -2]) < patch:
            raise ConfigError(f"config: {name} ({h}x{w}) is too small to hold out a {fraction:.0%} band for validation "
                              f"with {patch}-pixel patches; lower data.patch_size or change data.val_holdout")
        first, second = (img[..., :cut, :], img[..., cut:, :]) if axis == -2 else (img[..., :cut], img[..., cut:])
        train.append((f"{name}[train band]", np.ascontiguousarray(first)))
        val.append((f"{name}[validation band]", np.ascontiguousarray(second)))
    both = train + val
    return [a for _, a in both], [n for n, _ in both], len(train)


def _range_warning(ds, op, where: str) -> None:
    """Warn when the normalised images are far from the [0, 1] the models, noise levels and PSNR assume."""
    import warnings

    n = min(len(ds), 8)
    if n == 0:
        return
    if ds.x is not None:
        ref = ds.x[:n]
    else:
        batch_op = ds.make_physics({k: v[:n] for k, v in ds.params.items()}) if ds.params else op
        with torch.no_grad():
            ref = fbp_init(ds.y[:n], batch_op)
    ref = ref.abs() if ref.is_complex() else ref
    high = float(torch.quantile(ref.reshape(-1)[:: max(1, ref.numel() // 1_000_000)].double().abs(), 0.995))
    if high > 10 or 0 < high < 0.1:
        warnings.warn(f"{where}: after normalisation the images reach about {high:.3g}, far from the [0, 1] the model, "
                      "the noise levels and PSNR (data.data_range) assume; set data.normalization (auto picks a robust "
                      "scale)", stacklevel=3)


def _patch_depth(cfg: Config, y: torch.Tensor, patch: int | None) -> int | None:
    """The D side of the patches of volumes y (N, C, D, H, W): ``data.patch_depth``, default ``patch_size``
    capped at the volumes' depth; None for images or whole measurements."""
    if y.ndim != 5 or patch is None:
        return None
    depth = cfg.data.patch_depth if cfg.data.patch_depth is not None else min(patch, int(y.shape[2]))
    if depth > y.shape[2]:
        raise ConfigError(f"config: data.patch_depth = {depth} is larger than the volumes' depth ({y.shape[2]} "
                          "slices); lower it")
    return depth


def patch_shape(d) -> int | tuple[int, int, int] | None:
    """The patches of a resolved data section: ``patch_size`` (a square), (patch_depth, patch_size, patch_size)
    for volumes, or None."""
    if d.patch_size is None or d.patch_depth is None:
        return d.patch_size
    return (d.patch_depth, d.patch_size, d.patch_size)


def build_data(cfg: Config, estimate_noise: bool = True) -> Data:
    """The data set of a config for training, its template operator, image shape, normalisation and sampler.

    The resolved config (``Data.cfg``) records what was used: the normalisation as ``{scale, offset}``,
    ``patch_size: null`` for measurements that cannot be cut into patches, the measurement set's noise model when
    the config has none, and the estimated noise model for ``noise: {name: estimate}`` (read off the training
    measurements, :mod:`selfinv.engine.noise_estimate`; ``estimate_noise=False`` keeps the placeholder)."""
    from selfinv.data import crop_alignment

    if estimate_noise and placeholder(build_noise(cfg)) is not None:
        return data_with_estimated_noise(cfg, lambda c: build_data(c, estimate_noise=False))
    noise = build_noise(cfg)
    d = cfg.data
    explicit = set(d.model_fields_set)  # keys the user wrote (defaults adapt to measurement sets)
    if spatial_dims(cfg.model.backbone.name) == 3 and d.source != "measurements":
        raise ConfigError(f"config: model.backbone {cfg.model.backbone.name} is a 3-D network: it trains on volumes "
                          "from data.source: measurements (ZYX stacks); use a 2-D backbone for images")
    if d.source == "measurements":
        if d.true_noise is not None:
            raise ConfigError("config: data.true_noise is for simulated data (data.source embedded or images)")
        measured = config_measurements(cfg, d.path, noise, "data.path")
        ds, op, img_shape = measured.dataset, measured.physics, measured.x_shape
        # physics.sampler, if given, models the operator family for the losses that draw operators (MOI)
        sampler = build_sampler(cfg.physics.sampler, img_shape, cfg.seed) if cfg.physics.sampler is not None else None
        if noise is None and op.noise is not None:  # record the measurement set's noise in the resolved config
            desc = describe_noise(op.noise)
            if desc is not None:
                cfg = parse_config({**cfg.model_dump(mode="json"), "noise": desc})
        patch = d.patch_size
        if patch is not None and crop_alignment(op) is None:
            if "patch_size" in explicit:
                raise ConfigError(
                    f"config: data.patch_size = {patch}: {cfg.physics.name} measurements cannot be cut into patches (a crop "
                    "of k-space, a sinogram or a blurred image is not the measurement of a crop of the image); set "
                    "data.patch_size: null to train on whole measurements"
                )
            patch = None
        elif patch is not None and min(ds.y.shape[-2:]) < patch:
            raise ConfigError(f"config: data.patch_size = {patch} is larger than the measurements "
                              f"({ds.y.shape[-2]}x{ds.y.shape[-1]}); lower it, or null for whole measurements")
        depth = _patch_depth(cfg, ds.y, patch)
        per_image = d.patches_per_image
        if patch is not None and "patches_per_image" not in explicit:  # an epoch covers every pixel once
            per_image = max(per_image, round(math.prod(ds.y.shape[2:]) / (patch**2 * (depth or 1))))
        cfg = _resolved(cfg, patch_size=patch, patch_depth=depth, patches_per_image=per_image,
                        normalization=ds.normalization.to_dict())
        _range_warning(ds, op, "data.path")
        return Data(cfg, ds, op, img_shape, measured.is_complex, ds.normalization, sampler)
    imgs, names, norm = ground_truth(cfg, test=False)
    groups = len(imgs)
    within = d.val_fraction == 0 or groups < 2
    if within:
        imgs, names, n_bands = _bands(imgs, names, d.val_holdout, d.patch_size)
    sim = simulate(cfg, imgs, names, norm, d.patch_size, noise, test=False)
    ds, op = sim.dataset, sim.physics
    if within:
        ds.validation_groups = torch.arange(n_bands, 2 * n_bands)
    cfg = _resolved(cfg, normalization=ds.normalization.to_dict())
    _range_warning(ds, op, "data.path" if d.source == "images" else "data")
    return Data(cfg, ds, op, sim.img_shape, bool(op.is_complex is True), ds.normalization, sim.sampler)


def split_data(cfg: Config, ds) -> tuple[Any, Any]:
    """The (training, validation) sets of a built data set: by source image / measurement (``data.val_fraction``),
    or within each measurement when there is one or ``val_fraction`` is 0 (:mod:`selfinv.training.holdout`:
    a band of the image, or held-out acquired entries); measurement sets of pixel-wise operators are then cut
    into new random patches every epoch (``data.patch_size``)."""
    from selfinv.data import RandomPatches, Subset, split
    from selfinv.training.holdout import within_measurements

    d = cfg.data
    bands = getattr(ds, "validation_groups", None)
    try:
        if bands is not None:  # simulated: a training and a validation band of every image
            is_val = torch.isin(ds.groups, bands)
            idx = torch.arange(len(ds))
            return Subset(ds, idx[~is_val]), Subset(ds, idx[is_val])
        if d.val_fraction == 0 or torch.unique(ds.groups).numel() < 2:
            train, val = within_measurements(ds, d.val_holdout, cfg.seed)
        else:
            train, val = split(ds, d.val_fraction, seed=cfg.seed)
        if d.source == "measurements" and d.patch_size is not None:
            train = RandomPatches(train, patch_shape(d), d.patches_per_image, seed=cfg.seed)
    except ValueError as e:
        raise ConfigError(f"config: data: {e}") from None
    return train, val


def build_test_set(cfg: Config, normalization=None):
    """The evaluation data of a config: the test split (embedded), ``data.test_path``, or None (use validation).

    ``normalization`` (a trained model's) replaces the config's, so that test data are in the model's units."""
    noise = build_noise(cfg)
    if normalization is not None:
        cfg = _resolved(cfg, normalization=normalization.to_dict())
    if cfg.data.source == "measurements":
        if cfg.data.test_path is None:
            return None
        return config_measurements(cfg, cfg.data.test_path, noise, "data.test_path").dataset
    if cfg.data.source == "images" and cfg.data.test_path is None:
        return None
    imgs, names, norm = ground_truth(cfg, test=True)
    return simulate(cfg, imgs, names, norm, None, noise, test=True).dataset
