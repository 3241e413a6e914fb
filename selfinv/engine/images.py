r"""Ground-truth images and the measurements simulated from them (``data.source`` embedded or images).

The embedded photographs (or the phantom, or the sky images of :data:`selfinv.data.sky.SKY_SETS`), or the images of a folder, a glob pattern or one file, with the
normalisation ``data.normalization`` gives them (:func:`image_normalization`); :func:`simulate` draws the
measurements once, with the config's operator (or sampler of operators) and noise, seeded from the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from selfinv.config import Config, ConfigError
from selfinv.engine.physics_builders import build_noise, build_physics
from selfinv.noise import Unknown

__all__ = ["Simulation", "ground_truth", "image_channels", "image_normalization", "simulate"]


@dataclass
class Simulation:
    """Measurements simulated from ground-truth images (:func:`simulate`)."""

    dataset: Any  # selfinv.data.SimulatedDataset, its normalization the images' (before any phase was added)
    physics: Any  # the template operator (one sample), with the assumed noise
    sampler: Any | None  # the sampler of per-sample operators, if any
    img_shape: tuple[int, int, int]  # (C, H, W) of one image x (a patch when training on patches)


def _embedded(names: Sequence[str], gray: bool) -> tuple[list[np.ndarray], list[str]]:
    from selfinv.data import embedded_images, phantom
    from selfinv.data.sky import SKY_SETS, sky_set

    imgs, out_names = [], []
    for name in names:
        if name in SKY_SETS:  # sets of sky images (radio interferometry), one channel
            if not gray:
                raise ConfigError(f"config: data.images: the sky images {name!r} have one channel; set data.gray: true")
            members = sky_set(name)
            out_names += [f"{name}[{i}]" for i in range(len(members))] if len(members) > 1 else [name]
        elif name == "phantom":
            members = [phantom() if gray else np.repeat(phantom(), 3, axis=0)]
            out_names.append(name)
        else:
            try:
                members = embedded_images(gray=gray, names=[name])
            except ValueError as e:
                raise ConfigError(f"config: data.images: {e}; or a set of sky images: {', '.join(SKY_SETS)}") from None
            out_names.append(name)
        imgs += members
    return imgs, out_names


def _read_folder(folder: str, max_images: int | None, where: str, key: str | None = None):
    """The images of a folder, a glob pattern or one file (names relative to the pattern's fixed part), with
    the :class:`~selfinv.data.readers.ImageInfo` of each."""
    from selfinv.data import list_images, read_image
    from selfinv.data.readers import pattern_root
    from selfinv.data.sources import split_key

    path, key = split_key(folder, key)
    try:
        files = [path] if path.is_file() else list_images(folder)
    except ValueError as e:
        raise ConfigError(f"config: {where}: {e}") from None
    if not files:
        raise ConfigError(f"config: {where}: no readable image files in {folder}")
    files = files[:max_images] if max_images else files
    root = pattern_root(folder) if not path.is_file() else path.parent
    arrays, names, infos = [], [], []
    for f in files:
        try:
            arr, info = read_image(f, key=key, return_info=True)
        except ValueError as e:
            raise ConfigError(f"config: {where}: {str(e).replace('pass key=', 'set data.key (or FILE:KEY)')}") from None
        slices = list(arr) if arr.ndim == 4 else [arr]
        arrays += slices
        name = f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name
        names += [f"{name}[{i}]" for i in range(len(slices))] if arr.ndim == 4 else [name]
        infos += [info] * len(slices)
    channels = {}
    for n, a in zip(names, arrays, strict=True):
        channels.setdefault(int(a.shape[0]), []).append(n)
    if len(channels) > 1:
        desc = "; ".join(f"{c} channel{'s' if c > 1 else ''}: {', '.join(ns[:3])}{' ...' if len(ns) > 3 else ''}"
                         for c, ns in sorted(channels.items()))
        raise ConfigError(f"config: {where}: the images have different numbers of channels ({desc}); "
                          "convert them to one (e.g. gray) or use data.gray for the embedded photographs")
    return arrays, names, infos


def image_normalization(cfg: Config, arrays, names, infos, where: str):
    """The normalisation of ground-truth images under ``data.normalization`` (auto, range, none or explicit)."""
    from selfinv.data import Normalization

    mode = cfg.data.normalization
    if not isinstance(mode, str):
        return Normalization(**mode.model_dump())
    if mode == "none":
        return Normalization.identity()
    if mode == "auto" and not all(i.bit_depth == 8 for i in infos):
        sample = np.concatenate([(np.abs(a) if np.iscomplexobj(a) else a).reshape(-1)[:: max(1, a.size // 250_000)]
                                 for a in arrays])
        return Normalization.robust(torch.from_numpy(sample.astype(np.float64)), offset=not np.iscomplexobj(arrays[0]))
    norms: dict = {}
    for n, info in zip(names, infos, strict=True):
        norms.setdefault(Normalization.from_info(info), []).append(n)
    if len(norms) > 1:
        desc = "; ".join(f"{n.to_dict()}: {', '.join(v[:2])}" for n, v in norms.items())
        raise ConfigError(f"config: {where}: the files imply different normalisations ({desc}); set data.normalization")
    return next(iter(norms))


def _with_phase(imgs: list[np.ndarray], amplitude: float, seed: int) -> list[np.ndarray]:
    """Complex images x·exp(iφ) with a smooth random phase φ (bilinear upsampling of a 4×4 grid)."""
    import torch.nn.functional as F

    out = []
    for i, img in enumerate(imgs):
        g = torch.Generator().manual_seed(seed * 7919 + i)
        coarse = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
        phi = F.interpolate(coarse, size=img.shape[-2:], mode="bicubic", align_corners=True)[0].numpy()
        out.append((np.abs(img) * np.exp(1j * amplitude * np.pi * phi)).astype(np.complex64))
    return out


def ground_truth(cfg: Config, test: bool):
    """Images for simulation: (arrays, names, normalization). The test images take the normalisation of the
    training images (one set of units for the model)."""
    from selfinv.data import TEST_NAMES, TRAIN_NAMES, Normalization

    d = cfg.data
    if d.source == "embedded":
        names = (d.test_images or list(TEST_NAMES)) if test else (d.images or list(TRAIN_NAMES))
        limit = d.max_test_images if test else d.max_images
        if limit:
            names = names[:limit]
        imgs, names = _embedded(names, d.gray)
        norm = d.normalization
        return imgs, names, Normalization(**norm.model_dump()) if not isinstance(norm, str) else Normalization.identity()
    folder = d.test_path if test else d.path
    if folder is None:
        raise ConfigError("config: data.path is required for data.source = images (a folder of ground-truth images)")
    where = "data.test_path" if test else "data.path"
    arrays, names, infos = _read_folder(folder, d.max_test_images if test else d.max_images, where, d.key)
    if test and isinstance(d.normalization, str) and d.normalization != "none":
        train_arrays, train_names, train_infos = _read_folder(d.path, d.max_images, "data.path", d.key)
        return arrays, names, image_normalization(cfg, train_arrays, train_names, train_infos, "data.path")
    return arrays, names, image_normalization(cfg, arrays, names, infos, where)


def simulate(cfg: Config, imgs, names, norm, patch: int | None, noise, test: bool) -> Simulation:
    """The measurements of ``imgs`` (normalised by ``norm``) under the config's physics and noise: training data
    (patches of ``patch`` pixels, or whole images of one size) or, with ``test``, the test set (whole images,
    centre crops of ``data.test_size``)."""
    from selfinv.data import SimulatedDataset, center_crop

    d = cfg.data
    if test:
        size = d.test_size or d.patch_size
        if size is not None:
            cropped = []
            for name, img in zip(names, imgs, strict=True):
                if min(img.shape[-2:]) < size:
                    raise ConfigError(
                        f"config: data.test_size = {size} is larger than the test image {name} ({img.shape[-2]}x{img.shape[-1]})"
                    )
                cropped.append(np.ascontiguousarray(center_crop(torch.from_numpy(np.asarray(img)), size).numpy()))
            imgs = cropped
    if not imgs:
        raise ConfigError("config: no images")
    chans = {img.shape[0] for img in imgs}
    if len(chans) > 1:
        odd = [n for n, i in zip(names, imgs, strict=True) if i.shape[0] != imgs[0].shape[0]]
        raise ConfigError(f"config: the images have different numbers of channels ({sorted(chans)}): {names[0]} has "
                          f"{imgs[0].shape[0]}, {odd[0]} has {next(i.shape[0] for n, i in zip(names, imgs, strict=True) if n == odd[0])}")
    c = imgs[0].shape[0]
    if patch is not None:
        h = w = patch
    else:
        shapes = {tuple(img.shape[-2:]) for img in imgs}
        if len(shapes) > 1:
            listing = ", ".join(f"{n} {tuple(i.shape[-2:])}" for n, i in list(zip(names, imgs, strict=True))[:3])
            raise ConfigError(
                f"config: the images have different sizes ({listing}, ...); set data.patch_size to train on patches"
                if not test else f"config: the test images have different sizes ({listing}, ...); set data.test_size"
            )
        h, w = next(iter(shapes))
    op, sampler = build_physics(cfg, (c, h, w), noise)
    if op.is_complex is True and cfg.data.phase > 0:
        imgs = _with_phase([norm.normalize(i) for i in imgs], cfg.data.phase, cfg.seed + (1 if test else 0))
        norm_used = norm
        from selfinv.data import Normalization

        norm = Normalization.identity()
    else:
        norm_used = norm
    if d.true_noise is not None and noise is None:
        raise ConfigError("config: data.true_noise needs noise (the model the losses assume) as well")
    true_noise = build_noise(cfg, d.true_noise, "data.true_noise")
    if isinstance(true_noise if true_noise is not None else noise, Unknown):
        raise ConfigError("config: noise 'unknown' describes real measurements and cannot simulate any: for simulated "
                          "data set data.true_noise to the noise that corrupts them (the losses still see 'unknown')")
    ds = SimulatedDataset(
        imgs,
        sampler if sampler is not None else op,
        noise=true_noise if true_noise is not None else noise,
        assumed_noise=noise if true_noise is not None else None,
        seed=cfg.seed + (10_007 if test else 0),
        patch_size=None if test else patch,
        patches_per_image=1 if test else d.patches_per_image,
        pairs=d.pairs,
        resample_noise_each_epoch=False if test else d.resample_noise_each_epoch,
        normalization=norm,
        names=names,
    )
    ds.normalization = norm_used
    return Simulation(ds, op, sampler, (c, h, w))


def image_channels(cfg: Config) -> int:
    """Channels of the images a config trains on (reads one file for image folders)."""
    from selfinv.data import list_images, read_image

    if cfg.data.source == "embedded":
        return 1 if cfg.data.gray else 3
    files = list_images(cfg.data.path)
    if not files:
        raise ValueError(f"{cfg.data.path}: no readable image files")
    arr = read_image(files[0])
    return int(arr.shape[-3])
