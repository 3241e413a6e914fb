"""``evaluate``: a trained model, rebuilt from its checkpoint alone, scored on a config's test data or on a
measurement set (:mod:`selfinv.engine.evaluate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import VersionOption, app
from selfinv.cli._errors import fail, guarded, note


@app.command()
@guarded
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by selfinv train, or a shipped pretrained "
                                               "name (selfinv info; DATA is then a config).")],
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

    from selfinv.config import load_config
    from selfinv.engine.checkpoints import is_pretrained_name, restore, restore_pretrained
    from selfinv.engine.evaluate import (
        config_evaluation_set,
        evaluate_dataset,
        evaluation_record,
        measurement_evaluation_set,
    )
    from selfinv.engine.files import to_json, write_text_new

    if output is not None and output.exists():
        fail(f"{output}: already exists (nothing is overwritten)")
    is_yaml = data.suffix.lower() in (".yaml", ".yml")
    if is_pretrained_name(checkpoint):
        if not is_yaml:
            fail(f"{checkpoint}: a pretrained network has no operator of its own; give a YAML config as DATA "
                 "(the physics, noise and test data)")
        cfg = load_config(data, set_ or [])
        restored = restore_pretrained(str(checkpoint), cfg, device)
    else:
        restored = restore(checkpoint, device)
    if is_yaml:
        target = config_evaluation_set(restored, load_config(data, set_ or []), data.name)
        if target.fallback:
            note(f"note: {target.source}")
    else:
        if set_:
            fail("--set applies to a config given as DATA")
        if not data.exists():
            fail(f"{data}: no such file or folder")
        target = measurement_evaluation_set(restored, data)
    source, data_range = target.source, target.data_range
    show = sys.stderr.isatty() if progress is None else progress
    ev = evaluate_dataset(restored.model, restored.loss, target.dataset, data_range, restored.device, batch_size,
                          seed=restored.cfg.seed, progress=show)
    summary = ev.summary()
    text = to_json(evaluation_record(checkpoint, data, restored, ev, data_range))
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
