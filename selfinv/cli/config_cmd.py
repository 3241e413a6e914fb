"""``config init`` (a commented YAML config per task, :mod:`selfinv.cli.templates`; for one real CT or MRI scan,
:mod:`selfinv.cli.scan_templates`) and ``config reference``
(every config key, :mod:`selfinv.config_reference`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import VersionOption, config_app
from selfinv.cli._errors import fail, guarded, note


@config_app.command("init")
@guarded
def config_init(
    task: Annotated[str, typer.Option("--task", help="denoising, inpainting, mri, ct, deblur, cs or demosaic.")],
    loss: Annotated[str | None, typer.Option("--loss", help="The loss (default: sure, plus an EI term for inpainting and MRI; rei for CT, deblur, cs, demosaic).")] = None,
    measurements: Annotated[str | None, typer.Option("--measurements", help="Train on your measurements instead. denoising: "
                            "a folder, glob or file of raw frames (noise unknown, loss neighbor2neighbor); ct: an HTC2022 "
                            "sinogram .mat (its fan-beam geometry written out, loss ei with rotations); mri: k-space, BART "
                            ".cfl/.hdr or fastMRI .h5 (multi-coil: multicoil_mri with ESPIRiT maps; single-coil: mri; loss "
                            "splitting, an unrolled network). --loss overrides the loss.")] = None,
    volume: Annotated[bool | None, typer.Option("--volume/--no-volume", help="With --measurements: the files are ZYX volumes "
                      "(z-stacks, tomograms): a 3-D U-Net on 3-D patches (default: when a TIFF's metadata has a Z axis).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here (refused if it exists); default: stdout.")] = None,
    version: VersionOption = False,
) -> None:
    """Write a commented YAML config for a task that runs as is on the embedded photographs (or on --measurements: raw
    frames, an HTC2022 sinogram, k-space)."""
    from selfinv.cli.scan_templates import SCAN_LOSSES, render_scan
    from selfinv.cli.templates import render, stack_layout
    from selfinv.engine.files import write_text_new

    if measurements is not None and task in SCAN_LOSSES:  # one CT or MRI scan
        text = render_scan(task, loss, measurements, bool(volume))
    else:
        if volume is None:
            layout = stack_layout(measurements) if measurements is not None else None
            volume = layout is not None and "Z" in layout
            if layout is not None and not volume and layout[0] in "QI" and len(layout) == 3:
                note(f"{measurements}: a stack of unnamed slices ({layout}); each slice is an image. For a volume "
                     "(z-stack, tomogram) use --volume")
        text = render(task, loss, measurements, volume)
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists():
        fail(f"{output}: already exists; choose another file (nothing is overwritten)")
    if not output.parent.is_dir():
        fail(f"{output}: the folder {output.parent} does not exist")
    try:
        write_text_new(output, text)
    except FileExistsError:
        fail(f"{output}: already exists; choose another file (nothing is overwritten)")
    note(f"wrote {output}; train it with: selfinv train {output}")


@config_app.command("reference")
@guarded
def config_reference_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here (refused if it exists); default: stdout.")] = None,
    version: VersionOption = False,
) -> None:
    """Print the reference of every config key, generated from the schema (docs/config.md)."""
    from selfinv.config_reference import config_reference
    from selfinv.engine.files import write_text_new

    text = config_reference()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        write_text_new(output, text)
    except FileExistsError:
        fail(f"{output}: already exists; choose another file (nothing is overwritten)")
    note(f"wrote {output}")
