"""``compare``: several losses, the same model, data, budget and seed (:func:`selfinv.engine.compare.run_comparison`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import SET_HELP, VersionOption, app
from selfinv.cli._errors import fail, guarded, note


def _loss_list(text: str, cfg) -> list[str]:
    """``a,b,c``, or ``all-applicable``: the advisor's applicable losses (+ supervised with ground truth)."""
    from selfinv.losses import LOSSES

    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all-applicable"]:
        from selfinv.engine.advice import applicable_losses

        names = applicable_losses(cfg)
        note(f"all-applicable: {', '.join(names)}")
        return names
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        raise ValueError(f"--losses: {unknown[0]!r} is not one of {', '.join(LOSSES)} (or all-applicable)")
    return names


@app.command()
@guarded
def compare(
    config: Annotated[Path, typer.Argument(help="The YAML config (data, physics, noise, model, training).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (must not exist or be empty).")],
    losses: Annotated[str, typer.Option("--losses", "-l", help="Comma-separated losses, e.g. sure,r2r,noise2self; "
                               "or all-applicable (the advisor's list, plus supervised as the reference).")] = "",
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimisation steps per loss (default: the config's budget).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help=SET_HELP)] = None,
    variant: Annotated[list[str] | None, typer.Option("--variant", "-V", help="A further run, labelled: "
                       "LABEL=KEY=VALUE[;KEY=VALUE...], e.g. 'sure-2sigma=loss.name=sure;noise.sigma=0.2' "
                       "(repeatable).")] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
    version: VersionOption = False,
) -> None:
    """Train each loss with the same model, data, budget and seed; write results.json, results.md, comparison.png."""
    from selfinv.config import load_config
    from selfinv.engine.compare import Variant, run_comparison
    from selfinv.engine.comparison_report import comparison_table
    from selfinv.engine.device import check_device

    overrides = list(set_ or []) + ([f"training.device={device}"] if device else [])
    cfg = load_config(config, overrides)
    if not losses.strip() and not variant:
        fail("compare: give --losses and/or --variant")
    check_device(cfg.training.device, "--device" if device else "training.device")
    names: list[str | Variant] = [*(_loss_list(losses, cfg) if losses.strip() else []), *map(Variant.parse, variant or [])]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{out}: the output folder exists and is not empty; choose another (nothing is overwritten)")
    comparison = run_comparison(cfg, names, out, steps, progress, log=note)
    for line in comparison_table(comparison.results):
        typer.echo(line)
    typer.echo(f"results: {out / 'results.json'}, {out / 'results.md'}, {out / 'comparison.png'}")
    if comparison.failed:
        fail(f"{len(comparison.failed)} of {len(comparison.runs)} losses failed ({', '.join(comparison.failed)}); "
             "see results.json")
