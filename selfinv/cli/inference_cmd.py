"""``reconstruct`` and ``evaluate``: a trained model, rebuilt from its checkpoint alone, applied to new data.

``reconstruct`` writes every result in its input's kind: the same shape, dtype and units, DICOM as DICOM
(the input's header, a new series), TIFF with its tags; formats that cannot be written become ``.npy``
(``.png`` for JPEG). Inputs may name an array inside a file (``scan.mat:CtDataLimited.sinogram``). An input
whose normalised values fall far outside the training data's (the statistics stored in the checkpoint) gets
one ``warning:``/``note:`` line (:mod:`selfinv.data.stats`). A failed call leaves no output folder behind
that it created.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import VersionOption, app
from selfinv.cli._errors import fail, guarded, note

#: output extension for input formats write_image cannot write
_OUT_EXT = {".jpg": ".png", ".jpeg": ".png", ".ima": ".dcm", ".h5": ".npy", ".hdf5": ".npy", ".npz": ".npy",
            ".mat": ".npy", ".cfl": ".npy", ".hdr": ".npy"}
#: overlap of neighbouring tiles when --overlap is not given (at most half the tile)
DEFAULT_OVERLAP = 32
#: images with more pixels than this are tiled by default (local operators)
AUTO_TILE_PIXELS = 1024 * 1024
AUTO_TILE = 512


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


def _input_physics(restored, y, params: dict, where: str):
    """The operator of one measurement y (1, C, H, W): the config's, sized for y, with --mask/--param arrays."""
    from selfinv.config import OPERATORS
    from selfinv.experiment import _params, _physics_args, _signature, _size_args, build_noise

    cfg = restored.cfg
    cls = OPERATORS[cfg.physics.name]
    c, h, w = restored.img_shape
    sized = any(k in _signature(cls) for k in ("img_size", "img_shape", "in_shape"))
    x_shape = (c, h, w) if sized else (c, int(y.shape[-2]), int(y.shape[-1]))
    base = {k: v for k, v in _params(cfg.physics, ("name", "sampler")).items() if v is not None}
    args = {**_physics_args(cls, base, "physics"), **_size_args(cls, x_shape, cfg.seed), **params}
    needed = [n for n in getattr(cls, "_per_sample", ()) if n not in args]
    if cfg.physics.sampler is not None and needed:
        flag = "--mask FILE" if needed == ["mask"] else " ".join(f"--param {n}=FILE" for n in needed)
        raise ValueError(
            f"{where}: the model was trained with a new {', '.join(needed)} per measurement (physics.sampler "
            f"{cfg.physics.sampler.name}); give the {', '.join(needed)} of these measurements with {flag}"
        )
    unknown = [k for k in params if k not in _signature(cls)]
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} has no parameter {unknown[0]!r} (it takes {', '.join(sorted(_signature(cls) - {'self', 'noise'}))})")
    try:
        op = cls(**args, noise=build_noise(cfg))
        op.A_adjoint(y)  # does the measurement fit the operator (shape, mask size, real/complex, channels)?
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    return op


def _align(model, physics_name: str) -> int:
    """Tile starts that keep the network (a U-Net's poolings) and the operator (the Bayer tile) consistent."""
    align = 2 if physics_name == "demosaicing" else 1
    for m in model.modules():
        downs = getattr(m, "downs", None)
        if downs is not None and hasattr(downs, "__len__"):
            align = math.lcm(align, 2 ** len(downs))
            break
    return align


def _reconstruct_one(restored, estimator, y, op, tile: int | None, overlap: int, progress: bool, where: str):
    """x̂ for one measurement (1, C, H, W) on the CPU: whole, or tiled for large images of local operators."""
    import torch

    from selfinv.config import LOCAL_OPERATORS
    from selfinv.data import per_sample_buffers, with_params

    dev = restored.device
    name = restored.cfg.physics.name
    h, w = int(y.shape[-2]), int(y.shape[-1])
    auto = tile is None
    if auto:
        tile = AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0
    if tile and name not in LOCAL_OPERATORS:
        if not auto:
            note(f"note: {where}: tiling applies to {', '.join(LOCAL_OPERATORS)}; {name} is reconstructed whole")
        tile = 0
    with torch.no_grad():
        if not tile or (tile >= h and tile >= w):
            return estimator(y.to(dev), op.to(dev)).cpu()
        from selfinv.inference import tiled_apply

        align = _align(restored.model, name)
        tile = max(align, math.ceil(tile / align) * align)
        overlap = max(0, min(overlap, tile - align))
        # per-pixel operator parameters (an inpainting mask) travel with y through the tiles as extra channels
        pixel = {k: v for k, v in per_sample_buffers(op).items() if v.ndim == 4 and tuple(v.shape[-2:]) == (h, w)}
        sizes = [int(y.shape[1])] + [int(v.shape[1]) for v in pixel.values()]
        packed = torch.cat([y] + [v[:1].to(y.dtype).expand(1, -1, -1, -1) for v in pixel.values()], dim=1)

        def fn(t):
            parts = torch.split(t, sizes, dim=1)
            tile_op = with_params(op, {k: p.real if p.is_complex() else p for k, p in zip(pixel, parts[1:], strict=True)}) if pixel else op
            return estimator(parts[0], tile_op.to(t.device))

        return tiled_apply(fn, packed, tile, overlap, device=dev, progress=progress, align=align).cpu()


class _OutputFolder:
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
    """The normalisation of an input file, as ``data.normalization`` chose it in training: 8-bit files / 255, any
    other file in the model's units (its training data's normalisation, e.g. a robust scale of 16-bit counts).
    Runs trained with ``range`` (and older checkpoints) map every integer file by its own data range (16-bit
    / 65535). Measurements other than denoising get a scale only (an offset breaks y = A x)."""
    from selfinv.data import Normalization

    measurements = restored.cfg.physics.name != "denoising"
    by_range = restored.data_info.get("normalization_mode", "range") == "range" or info.bit_depth == 8
    if info.bit_depth is not None and by_range:
        return Normalization.from_info(info, measurements=measurements)
    norm = restored.normalization
    return Normalization(norm.scale) if measurements else norm


@app.command()
@guarded
def reconstruct(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by selfinv train (best.pt or last.pt).")],
    inputs: Annotated[list[Path], typer.Argument(help="Measurements: image/array files (PNG, TIFF, NPY, DICOM, ...) or "
                                        "measurement sets (.npz/.h5 with an array y).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (created if needed; existing files are never replaced).")],
    mask: Annotated[Path | None, typer.Option("--mask", help="The operator's mask for these measurements (needed when the model "
                              "was trained with per-sample masks).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Another operator parameter from a file: NAME=FILE, e.g. kernel=psf.tif.")] = None,
    tile: Annotated[int | None, typer.Option("--tile", help=f"Tile side for large images of local operators (denoising, inpainting, "
                             f"demosaicing); 0: never tile (default: {AUTO_TILE} above {AUTO_TILE_PIXELS // 1024 // 1024} Mpixel).")] = None,
    overlap: Annotated[int | None, typer.Option("--overlap", help="Overlap of neighbouring tiles in pixels, smaller than "
                                f"--tile (default: {DEFAULT_OVERLAP}, at most half the tile).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, mps (default: the best available).")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: when stderr is a terminal).")] = None,
    version: VersionOption = False,
) -> None:
    """Reconstruct measurements with a trained model; outputs keep the input's shape, dtype and units."""
    import sys

    from selfinv.cli._device import check_device
    from selfinv.data.readers import _check_path, split_key

    show = sys.stderr.isatty() if progress is None else progress
    if tile is not None and tile < 0:
        fail("--tile must be >= 0")
    if overlap is not None and overlap < 0:
        fail("--overlap must be >= 0")
    if tile and overlap is not None and tile <= overlap:
        fail(f"--tile {tile} must be larger than --overlap {overlap} (neighbouring tiles share --overlap pixels); "
             "use a larger --tile or a smaller --overlap")
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, tile // 2) if tile else DEFAULT_OVERLAP
    check_device(device)
    if output.exists() and not output.is_dir():
        fail(f"{output}: exists and is not a folder; give an output folder")
    # plan every output first: nothing is written over an input or over an existing file
    plan, seen = [], {}
    sources = []
    for spec in inputs:
        p, key = split_key(spec)
        if not p.exists():
            fail(f"{spec}: no such file")
        _check_path(p)  # a folder, an unknown extension: one line now, before the model is loaded
        sources.append((p, key))
    resolved_inputs = {p.resolve() for p, _ in sources}
    for p, key in sources:
        is_set = key is None and _is_measurement_set(p)
        ext = ".npy" if is_set else _OUT_EXT.get(p.suffix.lower(), p.suffix.lower())
        out = output / (p.stem + ext)
        if out.resolve() in resolved_inputs:
            fail(f"{out}: is an input; choose another output folder (inputs are never overwritten)")
        if out.exists():
            fail(f"{out}: already exists; choose another output folder (nothing is overwritten)")
        if out in seen:
            fail(f"{p.name} and {seen[out].name} would both be written to {out}")
        seen[out] = p
        plan.append((p, key, out, is_set))
    folder = _OutputFolder(output)
    try:
        _reconstruct_all(checkpoint, plan, folder, mask, param, tile, overlap, device, show)
    except BaseException:
        folder.clean_up()
        raise


def _reconstruct_all(checkpoint: Path, plan: list, folder: _OutputFolder, mask: Path | None, param: list[str] | None,
                     tile: int | None, overlap: int, device: str | None, show: bool) -> None:
    """The work of ``reconstruct`` once its arguments are checked and every output is planned."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from selfinv.cli.runs import restore
    from selfinv.data import read_image, write_image
    from selfinv.data.stats import domain_warning, input_statistics
    from selfinv.experiment import load_tensor, measurement_set

    def check_domain(values, name: str) -> str | None:
        """The line to print once the input is reconstructed (a failing input gets its error alone)."""
        if restored.data_stats is None:
            return None
        return domain_warning(restored.data_stats, input_statistics(values), name)

    restored = restore(checkpoint, device)
    params = {}
    if mask is not None:
        params["mask"] = load_tensor(str(mask), "--mask")
    for item in param or []:
        if "=" not in item:
            fail(f"--param {item!r}: expected NAME=FILE")
        k, v = item.split("=", 1)
        params[k.strip()] = load_tensor(v, f"--param {k.strip()}")
    estimator = restored.estimator()
    torch.manual_seed(restored.cfg.seed)  # averaged estimators (R2R) draw from the global generator
    for p, key, out, is_set in tqdm(plan, desc="reconstruct", unit="file", disable=not show or len(plan) < 2):
        if is_set:
            ds, _, _, _ = measurement_set(restored.cfg, p, img_shape=restored.img_shape,
                                          normalization=restored.normalization)
            domain = check_domain(ds.y, p.name)
            xs = []
            for i in tqdm(range(len(ds)), desc=p.name, unit="image", disable=not show, leave=False):
                s = ds[i]
                op = ds.make_physics({k: v[None] for k, v in s.params.items()})
                xs.append(_reconstruct_one(restored, estimator, s.y[None], op, 0, overlap, False, p.name)[0])
            x = ds.normalization.denormalize(torch.stack(xs))
            if domain:
                note(domain)
            folder.ensure()
            write_image(out, x.numpy())
            note(f"{p.name}: {len(ds)} reconstructions -> {out}")
            continue
        arr, info = read_image(p, key=key, return_info=True)
        norm = _input_normalization(restored, info)
        name = p.name if key is None else f"{p.name}:{key}"
        domain = check_domain(norm.normalize(arr), name)
        slices = list(arr) if arr.ndim == 4 else [arr]
        outs = []
        for d, a in enumerate(slices):
            where = name if len(slices) == 1 else f"{name}[{d}]"
            y = torch.from_numpy(np.ascontiguousarray(norm.normalize(a)))[None]
            op = _input_physics(restored, y, params, where)
            x_hat = _reconstruct_one(restored, estimator, y, op, tile, overlap, show, where)[0]
            outs.append(norm.denormalize(x_hat).numpy())
        result = np.stack(outs) if arr.ndim == 4 else outs[0]
        if np.iscomplexobj(result) and not np.iscomplexobj(arr):
            result = np.abs(result)
        if domain:
            note(domain)
        folder.ensure()
        write_image(out, result, like=info)
        note(f"{name} -> {out}")


@app.command()
@guarded
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by selfinv train.")],
    data: Annotated[Path, typer.Argument(help="A measurement set (.npz/.h5 file or folder; metrics need its x) or a YAML "
                                "config (its test split is simulated as in training).")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a key of a config given as DATA.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON results to this file (must not exist).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    device: Annotated[str | None, typer.Option("--device")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
    version: VersionOption = False,
) -> None:
    """PSNR and SSIM (explicit data range) against the ground truth, beside the no-learning baseline."""
    import sys

    from selfinv.cli.runs import clean_floats, evaluate_dataset, restore, to_json, write_text_new
    from selfinv.config import load_config
    from selfinv.experiment import build_data, build_test_set, measurement_set, split_data

    if output is not None and output.exists():
        fail(f"{output}: already exists (nothing is overwritten)")
    restored = restore(checkpoint, device)
    if data.suffix.lower() in (".yaml", ".yml"):
        cfg = load_config(data, set_ or [])
        ds = build_test_set(cfg, normalization=restored.normalization)  # in the model's units
        source = f"{data.name} (test split)"
        if ds is None:
            full, *_ , cfg = build_data(cfg)
            ds = split_data(cfg, full)[1]
            source = f"{data.name} (validation split: the config has no data.test_path)"
            note(f"note: {source}")
        data_range = cfg.data.data_range
    else:
        if set_:
            fail("--set applies to a config given as DATA")
        if not data.exists():
            fail(f"{data}: no such file or folder")
        ds = measurement_set(restored.cfg, data, img_shape=restored.img_shape, normalization=restored.normalization)[0]
        source = data.name
        data_range = restored.cfg.data.data_range
    show = sys.stderr.isatty() if progress is None else progress
    ev = evaluate_dataset(restored.model, restored.loss, ds, data_range, restored.device, batch_size,
                          seed=restored.cfg.seed, progress=show)
    summary = ev.summary()
    result = clean_floats({
        "checkpoint": str(checkpoint),
        "data": str(data),
        "loss_name": restored.cfg.loss.name,
        "step": restored.step,
        "data_range": data_range,
        **summary,
        "per_image": [
            {"name": n, **({"psnr": ev.psnr[i], "ssim": ev.ssim[i], "baseline_psnr": ev.baseline_psnr[i],
                            "baseline_ssim": ev.baseline_ssim[i]} if ev.has_truth else {})}
            for i, n in enumerate(ev.names[: ev.n])
        ],
    })
    text = to_json(result)
    if output is not None:
        write_text_new(output, text + "\n")
    if as_json:
        typer.echo(text)
        return
    typer.echo(f"{source}: {ev.n} images; model {restored.cfg.loss.name} ({checkpoint.name}, step {restored.step}); "
               f"data range {data_range:g}")
    if ev.has_truth:
        typer.echo(f"{'':24}{'PSNR (dB)':>10}{'SSIM':>8}")
        b = summary["baseline"]
        typer.echo(f"{'no learning':24}{b['psnr']:>10.2f}{b['ssim']:>8.3f}")
        typer.echo(f"{restored.cfg.loss.name:24}{summary['psnr']:>10.2f}{summary['ssim']:>8.3f}")
    else:
        typer.echo("no ground truth (x) in the data: PSNR/SSIM unavailable")
    if summary["loss"] is not None:
        typer.echo(f"{restored.cfg.loss.name} loss on the data: {summary['loss']:.5g}")
    typer.echo(f"test time: {summary['seconds_per_image'] * 1000:.1f} ms per image")
