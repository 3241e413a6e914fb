"""A trained model, rebuilt from its checkpoint alone, applied to measurement files (``selfinv reconstruct``).

Every result is written in its input's kind: the same shape, dtype and units, DICOM as DICOM (the input's
header, a new series), TIFF with its tags; formats that cannot be written become ``.npy`` (``.png`` for JPEG).
Inputs may name an array inside a file (``scan.mat:CtDataLimited.sinogram``). Every output is planned before
anything is read (:func:`plan_outputs`): nothing is written over an input or an existing file. An input whose
normalised values fall far outside the training data's (the statistics stored in the checkpoint) gets one
``warning:``/``note:`` line (:mod:`selfinv.data.stats`). A failed call leaves no output folder behind that it
created. Large images of local operators are reconstructed in overlapping tiles (:mod:`selfinv.inference`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUTO_TILE",
    "AUTO_TILE_PIXELS",
    "DEFAULT_OVERLAP",
    "OutputFolder",
    "PlannedOutput",
    "default_overlap",
    "input_physics",
    "plan_outputs",
    "reconstruct_files",
]

#: output extension for input formats write_image cannot write
_OUT_EXT = {".jpg": ".png", ".jpeg": ".png", ".ima": ".dcm", ".h5": ".npy", ".hdf5": ".npy", ".npz": ".npy",
            ".mat": ".npy", ".cfl": ".npy", ".hdr": ".npy"}
#: overlap of neighbouring tiles when none is given (at most half the tile)
DEFAULT_OVERLAP = 32
#: images with more pixels than this are tiled by default (local operators)
AUTO_TILE_PIXELS = 1024 * 1024
AUTO_TILE = 512
#: volumes (3-D networks) with more voxels than this are tiled by default, in cubes of AUTO_TILE_3D voxels
AUTO_TILE_VOXELS = 160**3
AUTO_TILE_3D = 128


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def default_overlap(tile: int | None) -> int:
    """The overlap of neighbouring tiles when none is given: :data:`DEFAULT_OVERLAP`, at most half the tile."""
    return min(DEFAULT_OVERLAP, tile // 2) if tile else DEFAULT_OVERLAP


def _is_measurement_set(path: Path) -> bool:
    """An .npz/.h5 file holding an array ``y`` (a measurement set) rather than one image."""
    ext = path.suffix.lower()
    if not path.is_file() or ext not in (".npz", ".h5", ".hdf5"):
        return False
    try:
        if ext == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as z:
                return "y" in z.files
        import h5py

        with h5py.File(path, "r") as f:
            return "y" in f
    except Exception:  # unreadable: read_image reports it
        return False


@dataclass
class PlannedOutput:
    """One input (a file, and the array it names) and the output it will be written to."""

    path: Path
    key: str | None
    out: Path
    is_set: bool  # a measurement set (.npz/.h5 with y): one reconstruction per measurement


def plan_outputs(inputs: list[Path], output: Path) -> list[PlannedOutput]:
    """The output of every input in the folder ``output``; a missing input, a folder, an unknown extension, an
    output that is an input or exists, or two inputs with one output is one ValueError line."""
    from selfinv.data.readers import check_path, split_key

    plan, seen = [], {}
    sources = []
    for spec in inputs:
        p, key = split_key(spec)
        if not p.exists():
            raise ValueError(f"{spec}: no such file")
        check_path(p)  # a folder, an unknown extension: one line now, before the model is loaded
        sources.append((p, key))
    resolved_inputs = {p.resolve() for p, _ in sources}
    for p, key in sources:
        is_set = key is None and _is_measurement_set(p)
        ext = ".npy" if is_set else _OUT_EXT.get(p.suffix.lower(), p.suffix.lower())
        out = output / (p.stem + ext)
        if out.resolve() in resolved_inputs:
            raise ValueError(f"{out}: is an input; choose another output folder (inputs are never overwritten)")
        if out.exists():
            raise ValueError(f"{out}: already exists; choose another output folder (nothing is overwritten)")
        if out in seen:
            raise ValueError(f"{p.name} and {seen[out].name} would both be written to {out}")
        seen[out] = p
        plan.append(PlannedOutput(p, key, out, is_set))
    return plan


def input_physics(restored, y, params: dict, where: str):
    """The operator of one measurement y (1, C, H, W): the config's, sized for y, with --mask/--param arrays."""
    from selfinv.engine._args import init_parameters
    from selfinv.engine.physics_builders import (
        build_noise,
        estimated_arguments,
        operator_arguments,
        size_arguments,
        takes_image_size,
    )
    from selfinv.physics import OPERATORS

    cfg = restored.cfg
    cls = OPERATORS[cfg.physics.name]
    c, h, w = restored.img_shape[0], *restored.img_shape[-2:]  # volumes (C, D, H, W): their (H, W)
    x_shape = (c, h, w) if takes_image_size(cls) else (c, int(y.shape[-2]), int(y.shape[-1]))
    args = {**operator_arguments(cfg), **size_arguments(cls, x_shape, cfg.seed), **params}
    per_sample = getattr(cls, "_per_sample", ())  # a property of the instance for some classes (tomography)
    needed = [n for n in (per_sample if isinstance(per_sample, tuple) else ()) if n not in args]
    if cfg.physics.sampler is not None and needed:
        flag = "--mask FILE" if needed == ["mask"] else " ".join(f"--param {n}=FILE" for n in needed)
        raise ValueError(
            f"{where}: the model was trained with a new {', '.join(needed)} per measurement (physics.sampler "
            f"{cfg.physics.sampler.name}); give the {', '.join(needed)} of these measurements with {flag}"
        )
    takes = init_parameters(cls)
    unknown = [k for k in params if k not in takes]
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} has no parameter {unknown[0]!r} (it takes {', '.join(sorted(takes - {'self', 'noise'}))})")
    if cls.is_complex and "mask" in takes and args.get("mask") is None and y.ndim == 4:
        import warnings

        from selfinv.data.physics_params import MASK_FROM_ZEROS, mask_from_zeros

        args["mask"] = mask_from_zeros(y)  # k-space: the unsampled locations are its zeros, as in training
        warnings.warn(f"{where}: {MASK_FROM_ZEROS}", stacklevel=2)
    try:
        args = estimated_arguments(args, y)  # coil_maps: espirit, from this measurement's k-space
        op = cls(**args, noise=build_noise(cfg))
        op.A_adjoint(y)  # does the measurement fit the operator (shape, mask size, real/complex, channels)?
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    return op


def _align(model, op) -> int:
    """Tile starts that keep the network (a U-Net's poolings) and the operator (its ``crop_alignment``: the
    Bayer tile) consistent."""
    align = op.crop_alignment or 1
    for m in model.modules():
        downs = getattr(m, "downs", None)
        if downs is not None and hasattr(downs, "__len__"):
            align = math.lcm(align, 2 ** len(downs))
            break
    return align


def _reconstruct_one(restored, estimator, y, op, tile: int | None, overlap: int, progress: bool, where: str,
                     generator, log: Callable[[str], None]):
    """x̂ for one measurement (1, C, H, W) on the CPU: whole, or tiled for large images of local operators;
    an averaged estimator (R2R) draws from ``generator``."""
    import torch

    from selfinv.config import LOCAL_OPERATORS
    from selfinv.data import per_sample_buffers, with_params
    from selfinv.losses.base import estimate

    dev = restored.device
    name = restored.cfg.physics.name
    h, w = int(y.shape[-2]), int(y.shape[-1])
    auto = tile is None
    if auto and y.ndim == 5:  # a volume (1, C, D, H, W) of a 3-D network: cubes of AUTO_TILE_3D voxels
        tile = AUTO_TILE_3D if math.prod(y.shape[2:]) > AUTO_TILE_VOXELS else 0
    elif auto:
        tile = AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0
    if tile and op.crop_alignment is None:  # not a pixel-wise operator: tiles are not its measurements
        if not auto:
            log(f"note: {where}: tiling applies to {', '.join(LOCAL_OPERATORS)}; {name} is reconstructed whole")
        tile = 0
    with torch.no_grad():
        if not tile or tile >= max(y.shape[2:]):
            return estimate(estimator, y.to(dev), op.to(dev), generator).cpu()
        from selfinv.inference import tiled_apply

        align = _align(restored.model, op)
        tile = max(align, math.ceil(tile / align) * align)
        overlap = max(0, min(overlap, tile - align))
        # per-pixel operator parameters (an inpainting mask) travel with y through the tiles as extra channels
        pixel = {k: v for k, v in per_sample_buffers(op).items() if v.ndim == 4 and tuple(v.shape[-2:]) == (h, w)}
        sizes = [int(y.shape[1])] + [int(v.shape[1]) for v in pixel.values()]
        packed = torch.cat([y] + [v[:1].to(y.dtype).expand(1, -1, -1, -1) for v in pixel.values()], dim=1)

        def fn(t):
            parts = torch.split(t, sizes, dim=1)
            tile_op = with_params(op, {k: p.real if p.is_complex() else p for k, p in zip(pixel, parts[1:], strict=True)}) if pixel else op
            return estimate(estimator, parts[0], tile_op.to(t.device), generator)

        return tiled_apply(fn, packed, tile, overlap, device=dev, progress=progress, align=align).cpu()


class OutputFolder:
    """The output folder, created on the first write; on failure removed again if this call created it and it
    is still empty (with the parents it created)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created: list[Path] = []  # outermost first

    def ensure(self) -> Path:
        if not self.path.is_dir():
            missing, q = [], self.path
            while not q.exists() and q != q.parent:
                missing.append(q)
                q = q.parent
            self.path.mkdir(parents=True, exist_ok=True)
            self.created = list(reversed(missing))
        return self.path

    def clean_up(self) -> None:
        for folder in reversed(self.created):  # innermost first; stop at the first that is not empty
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []


def _input_normalization(restored, info):
    """The normalisation of an input file, as ``data.normalization`` chose it in training: ``auto``: 8-bit files /
    255, any other file in the model's units (its training data's normalisation, e.g. a robust scale of 16-bit
    counts); an explicit ``{scale, offset}`` or ``none``: the stored one, whatever the file's dtype.
    Runs trained with ``range`` (and older checkpoints) map every integer file by its own data range (16-bit
    / 65535). Measurements other than denoising get a scale only (an offset breaks y = A x)."""
    from selfinv.data import Normalization

    measurements = restored.cfg.physics.name != "denoising"
    mode = restored.data_info.get("normalization_mode", "range")
    by_range = mode == "range" or (mode == "auto" and info.bit_depth == 8)  # explicit or none: the stored one
    if info.bit_depth is not None and by_range:
        return Normalization.from_info(info, measurements=measurements)
    norm = restored.normalization
    return Normalization(norm.scale) if measurements else norm


def reconstruct_files(checkpoint: Path, plan: list[PlannedOutput], output: Path, mask: Path | None = None,
                      param: list[str] | None = None, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
                      device: str | None = None, progress: bool = False,
                      log: Callable[[str], None] | None = None, axes: str | None = None, config=None) -> None:
    """Reconstruct every planned input with the checkpoint's model into ``output`` (created on the first write,
    removed again on failure when this call created it and it is still empty). ``mask`` and ``param``
    (``NAME=FILE``) give operator parameters of the measurements; ``tile`` (None: automatic, 0: never) and
    ``overlap`` the tiling of large images; ``log(line)`` reports each output and any domain warning (default:
    stderr). Averaged estimators (R2R) draw from one generator seeded with the run's seed, over all inputs.
    Image files are read with ``axes`` (``"TYX"``, ...; default: the training data's ``data.axes``, else their
    metadata) and written back in that order. ``checkpoint`` may be a shipped pretrained name with ``config`` (a
    :class:`~selfinv.config.Config`) saying the measurements' physics, noise and units (zero-shot use)."""
    folder = OutputFolder(output)
    try:
        _reconstruct_all(checkpoint, plan, folder, mask, param, tile, overlap, device, progress, log or _stderr, axes, config)
    except BaseException:
        folder.clean_up()
        raise


def _reconstruct_all(checkpoint: Path, plan: list[PlannedOutput], folder: OutputFolder, mask: Path | None,
                     param: list[str] | None, tile: int | None, overlap: int, device: str | None, show: bool,
                     log: Callable[[str], None], axes: str | None = None, config=None) -> None:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from selfinv.data import read_image, write_image
    from selfinv.data.stacks import read_with_axes
    from selfinv.data.stats import domain_warning, input_statistics
    from selfinv.engine.checkpoints import restore_model
    from selfinv.engine.measurements import measurement_set
    from selfinv.engine.physics_builders import load_tensor
    from selfinv.models.registry import spatial_dims

    def check_domain(values, name: str) -> str | None:
        """The line to print once the input is reconstructed (a failing input gets its error alone)."""
        if restored.data_stats is None:
            return None
        return domain_warning(restored.data_stats, input_statistics(values), name)

    restored = restore_model(checkpoint, device, config)
    params = {}
    if mask is not None:
        params["mask"] = load_tensor(str(mask), "--mask")
    for item in param or []:
        if "=" not in item:
            raise ValueError(f"--param {item!r}: expected NAME=FILE")
        k, v = item.split("=", 1)
        params[k.strip()] = load_tensor(v, f"--param {k.strip()}")
    estimator = restored.estimator()
    generator = torch.Generator().manual_seed(restored.cfg.seed)  # averaged estimators' (R2R) draws, all inputs
    for item in tqdm(plan, desc="reconstruct", unit="file", disable=not show or len(plan) < 2):
        p, key, out = item.path, item.key, item.out
        if item.is_set:
            ds = measurement_set(restored.cfg, p, img_shape=restored.img_shape,
                                 normalization=restored.normalization, with_axes=False).dataset
            domain = check_domain(ds.y, p.name)
            xs = []
            for i in tqdm(range(len(ds)), desc=p.name, unit="image", disable=not show, leave=False):
                s = ds[i]
                op = ds.make_physics({k: v[None] for k, v in s.params.items()})
                xs.append(_reconstruct_one(restored, estimator, s.y[None], op, 0, overlap, False, p.name, generator, log)[0])
            x = ds.normalization.denormalize(torch.stack(xs))
            if domain:
                log(domain)
            folder.ensure()
            write_image(out, x.numpy())
            log(f"{p.name}: {len(ds)} reconstructions -> {out}")
            continue
        layout = axes or restored.cfg.data.axes
        if layout is None:
            arr, info = read_image(p, key=key, return_info=True)
        else:  # the layout of the training files (or --axes), kept for the output
            arr, info = read_with_axes(p, layout, key, where="--axes" if axes else "the training data's data.axes (or --axes)")
        norm = _input_normalization(restored, info)
        name = p.name if key is None else f"{p.name}:{key}"
        domain = check_domain(norm.normalize(arr), name)
        volume = spatial_dims(restored.model) == 3  # a 3-D network: the whole stack (C, D, H, W) at once
        if volume and arr.ndim != 4:
            raise ValueError(f"{name}: the model is a 3-D network and needs a volume (a Z, Y, X stack), got one image "
                             f"of shape {tuple(arr.shape)}")
        # a 2-D network reconstructs a stack slice by slice (the slice-wise mode of volumes)
        slices = [np.moveaxis(arr, 0, 1)] if volume else list(arr) if arr.ndim == 4 else [arr]
        outs, pairs = [], []
        for d, a in enumerate(slices):
            where = name if len(slices) == 1 else f"{name}[{d}]"
            y = torch.from_numpy(np.ascontiguousarray(norm.normalize(a)))[None]
            op = input_physics(restored, y, params, where)
            x_hat = _reconstruct_one(restored, estimator, y, op, tile, overlap, show, where, generator, log)[0]
            outs.append(norm.denormalize(x_hat).numpy())
            pairs.append((y[0], x_hat))
        result = np.moveaxis(outs[0], 0, 1) if volume else np.stack(outs) if arr.ndim == 4 else outs[0]
        if np.iscomplexobj(result) and not np.iscomplexobj(arr):
            result = np.abs(result)
        if domain:
            log(domain)
        folder.ensure()
        write_image(out, result, like=info)
        log(f"{name} -> {out}")
        if restored.cfg.physics.name == "denoising":
            for line in residual_lines(pairs, name):
                log(line)


def residual_lines(pairs: list, name: str) -> list[str]:
    """What :func:`~selfinv.noise.residual_check` says of a denoised input (its slices as a batch, or one volume)
    against the noise model estimated from the input itself; nothing when the input is too small to estimate from."""
    import torch

    from selfinv.noise import estimate, residual_check

    y = torch.stack([p[0] for p in pairs]).double()
    x_hat = torch.stack([p[1] for p in pairs]).to(y.device).double()
    if y.is_complex() or x_hat.is_complex() or y.shape != x_hat.shape:
        return []
    try:
        noise = estimate(y, model="auto")
        check = residual_check(y, x_hat, noise)
    except ValueError:
        return []
    return [f"{name}: residual check: {check.summary()}"] + [f"{name}: residual check: {w}" for w in check.warnings()]
