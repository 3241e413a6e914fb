"""``check``: which losses can learn from a config's measurements, and why (:mod:`selfinv.engine.advice`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfinv.cli._app import SET_HELP, VersionOption, app
from selfinv.cli._errors import guarded, note


@app.command()
@guarded
def check(
    config: Annotated[Path, typer.Argument(help="The YAML config.")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help=SET_HELP)] = None,
    size: Annotated[int | None, typer.Option("--size", help="Image side for the rank tests (default: min(patch_size, 32), "
                             "16 for tomography, whose test is slow).")] = None,
    transform: Annotated[list[str] | None, typer.Option("--transform", "-t", help="A candidate group for EI/REI: shift, rotate, "
                                        "reflect, scale or YAML such as '{name: rotate, n: 4}' (repeatable).")] = None,
    noise_unknown: Annotated[bool, typer.Option("--noise-unknown", help="The noise parameters are not trusted.")] = False,
    version: VersionOption = False,
) -> None:
    """Which losses can learn from this config's measurements, and why (the identifiability advisor)."""
    from selfinv.config import load_config
    from selfinv.config.loading import yaml_value
    from selfinv.engine.advice import config_advice

    def skipped(t) -> None:
        note(f"note: {t!r} has no finite list of elements (continuous or random parameters); "
             "the rank test needs a finite group (e.g. rotate with n: 4): skipped")

    cfg = load_config(config, set_ or [])
    checked = config_advice(cfg, size, [yaml_value(t) for t in transform or []], noise_unknown, on_skipped=skipped)
    cfg, advice = checked.cfg, checked.advice
    typer.echo(f"{config.name}: {cfg.physics.name}{checked.family}, images {'x'.join(map(str, checked.x_shape))} "
               "for the rank tests")
    if checked.noise_estimate is not None:
        typer.echo(checked.noise_estimate.summary())
        enabled = checked.enabled_by_estimate
        typer.echo("With this estimate, the losses that need the noise level apply: "
                   + (", ".join(enabled) if enabled else "none") + ".")
    typer.echo(str(advice))
    if checked.noise_estimate is None and cfg.data.source == "measurements" and cfg.physics.name == "denoising":
        # raw frames with a noise of unknown level: what noise: {name: estimate} would find, and what it would enable
        from selfinv.config import ConfigError

        try:
            alt = config_advice(load_config(config, [*(set_ or []), "noise={name: estimate}"]), size,
                                [yaml_value(t) for t in transform or []], noise_unknown)
        except (ConfigError, ValueError) as e:
            note(f"note: the noise could not be estimated from these measurements: {e}")
            alt = None
        if alt is not None and alt.noise_estimate is not None:
            typer.echo(alt.noise_estimate.summary())
            now = {v.loss for v in advice.verdicts if v.applicable}
            more = [n for n in alt.enabled_by_estimate if n not in now]
            typer.echo("With noise: {name: estimate} in the config, the losses that need the noise level apply too: "
                       + (", ".join(more) if more else "none") + ".")
    names = [cfg.loss.name, *(t.name for t in cfg.loss.extra)]
    verdicts = [advice.verdict(n) for n in names if any(v.loss == n for v in advice.verdicts)]
    if verdicts:
        main = verdicts[0]
        extra = f" + {', '.join(names[1:])}" if len(names) > 1 else ""
        typer.echo(f"Configured loss: {main.loss}{extra} — {'applies' if main.applicable else 'does not apply'}: {main.reason}.")
