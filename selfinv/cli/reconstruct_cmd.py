"""``reconstruct``: a trained model, rebuilt from its checkpoint alone, applied to measurement files; outputs
keep the input's shape, dtype and units (:mod:`selfinv.engine.reconstruct`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import VersionOption, app
from selfinv.cli._errors import fail, guarded, note
from selfinv.engine.reconstruct import AUTO_TILE, AUTO_TILE_PIXELS, DEFAULT_OVERLAP


@app.command()
@guarded
def reconstruct(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by selfinv train (best.pt or last.pt), or a "
                                               "shipped pretrained name (selfinv info) with --config.")],
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
    axes: Annotated[str | None, typer.Option("--axes", help="The layout of the input files, e.g. YX, TYX, ZYX, CYX (default: "
                             "the training data's data.axes, else the files' metadata); outputs keep it.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="With a pretrained name: the YAML config of the "
                                   "measurements (physics, noise, data units).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a key of --config.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, mps (default: the best available).")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: when stderr is a terminal).")] = None,
    version: VersionOption = False,
) -> None:
    """Reconstruct measurements with a trained model; outputs keep the input's shape, dtype and units."""
    import sys

    from selfinv.engine.device import check_device
    from selfinv.engine.reconstruct import default_overlap, plan_outputs, reconstruct_files

    show = sys.stderr.isatty() if progress is None else progress
    if tile is not None and tile < 0:
        fail("--tile must be >= 0")
    if overlap is not None and overlap < 0:
        fail("--overlap must be >= 0")
    if tile and overlap is not None and tile <= overlap:
        fail(f"--tile {tile} must be larger than --overlap {overlap} (neighbouring tiles share --overlap pixels); "
             "use a larger --tile or a smaller --overlap")
    if overlap is None:
        overlap = default_overlap(tile)
    check_device(device)
    if output.exists() and not output.is_dir():
        fail(f"{output}: exists and is not a folder; give an output folder")
    # plan every output first: nothing is written over an input or over an existing file
    plan = plan_outputs(inputs, output)
    if axes is not None:
        from selfinv.data.stacks import parse_axes

        axes = parse_axes(axes, "--axes")
    cfg = None
    if config is not None:
        from selfinv.config import load_config

        cfg = load_config(config, set_ or [])
    elif set_:
        fail("--set applies to --config")
    reconstruct_files(checkpoint, plan, output, mask, param, tile, overlap, device, show, log=note, axes=axes, config=cfg)
