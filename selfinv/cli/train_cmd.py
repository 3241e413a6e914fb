"""``info``, ``config init``, ``train`` and ``check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import selfinv
from selfinv.cli._app import VersionOption, app, config_app
from selfinv.cli._errors import fail, guarded, note

SET_HELP = "Override a config key, e.g. --set training.lr=3e-4 --set loss.name=r2r (repeatable; values are YAML)."


@app.command()
def info(version: VersionOption = False) -> None:
    """Print the installed version and the available operators, samplers, noise models, losses and backbones."""
    from selfinv.config import TRANSFORMS
    from selfinv.losses import LOSSES
    from selfinv.models import BACKBONES, WRAPPERS
    from selfinv.noise import NOISE_MODELS
    from selfinv.physics import OPERATORS, SAMPLERS

    typer.echo(f"selfinv {selfinv.__version__}")
    typer.echo("operators: " + ", ".join(sorted(OPERATORS)))
    typer.echo("samplers: " + ", ".join(sorted(SAMPLERS)))
    typer.echo("noise models: " + ", ".join(sorted(NOISE_MODELS)))
    typer.echo("losses: " + ", ".join(LOSSES))
    typer.echo("backbones: " + ", ".join(BACKBONES) + "; wrappers: " + ", ".join([*WRAPPERS, "none", "auto"]))
    typer.echo("transforms: " + ", ".join(TRANSFORMS))


@config_app.command("init")
@guarded
def config_init(
    task: Annotated[str, typer.Option("--task", help="denoising, inpainting, mri, ct, deblur, cs or demosaic.")],
    loss: Annotated[str | None, typer.Option("--loss", help="The loss (default: sure, plus an EI term for inpainting and MRI; rei for CT, deblur, cs, demosaic).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here (refused if it exists); default: stdout.")] = None,
    version: VersionOption = False,
) -> None:
    """Write a commented YAML config for a task that runs as is on the embedded photographs."""
    from selfinv.cli.runs import write_text_new
    from selfinv.cli.templates import render

    text = render(task, loss)
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
    from selfinv.cli.runs import write_text_new
    from selfinv.config_reference import config_reference

    text = config_reference()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        write_text_new(output, text)
    except FileExistsError:
        fail(f"{output}: already exists; choose another file (nothing is overwritten)")
    note(f"wrote {output}")


@app.command()
@guarded
def train(
    config: Annotated[Path, typer.Argument(help="The YAML config (selfinv config init writes one).")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help=SET_HELP)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in its run folder exactly from last.pt.")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="The run folder (default: training.run_dir, else runs/<config name>).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: training.device, else the best available).")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: when stderr is a terminal).")] = None,
    version: VersionOption = False,
) -> None:
    """Train a network from a config; writes checkpoints, metrics, figures and report.md into the run folder."""
    import shlex

    from selfinv.cli._device import check_device
    from selfinv.cli._errors import debug
    from selfinv.cli.runs import Interrupted, check_run_folder, train_experiment
    from selfinv.config import load_config
    from selfinv.experiment import build_experiment, fit_config

    overrides = list(set_ or [])
    if device is not None:
        overrides.append(f"training.device={device}")
    cfg = load_config(config, overrides)
    folder = run_dir or (Path(cfg.training.run_dir) if cfg.training.run_dir else Path("runs") / config.stem)
    # everything that can be checked is checked before the run folder is created
    fit_config(cfg)
    check_device(cfg.training.device, "--device" if device is not None else "training.device")
    check_run_folder(folder, resume)
    cfg = load_config(config, [*overrides, f"training.run_dir={json.dumps(str(folder))}"])
    exp = build_experiment(cfg)
    try:
        result = train_experiment(exp, folder, resume=resume, progress=progress, log=note)
    except Interrupted as e:
        if debug():
            raise
        again = ["selfinv", "train", str(config), *(a for o in set_ or [] for a in ("--set", o)),
                 *(["--device", device] if device is not None else []), *(["--run-dir", str(run_dir)] if run_dir else [])]
        fail(e.line(shlex.join(again)), code=130)
    last = result.last
    typer.echo(f"run: {folder} ({result.state.step} steps, {result.seconds:.1f} s)")
    parts = [f"{k} {last[k]:.4g}" for k in ("train_loss", "val_loss") if k in last]
    if "val_psnr" in last:
        parts.append(f"val PSNR {last['val_psnr']:.2f} dB (no learning {last.get('baseline_psnr', float('nan')):.2f} dB)")
    if parts:
        typer.echo(", ".join(parts))
    typer.echo(f"report: {folder / 'report.md'}")


def _channels(cfg) -> int:
    """Channels of the images a config trains on (reads one file for image folders)."""
    from selfinv.data import list_images, read_image

    if cfg.data.source == "embedded":
        return 1 if cfg.data.gray else 3
    files = list_images(cfg.data.path)
    if not files:
        raise ValueError(f"{cfg.data.path}: no readable image files")
    arr = read_image(files[0])
    return int(arr.shape[-3])


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
    from selfinv.advisor import advise
    from selfinv.config import ConfigError, _yaml_value, load_config
    from selfinv.experiment import build_data, build_noise, build_physics, build_transform, transforms_of

    cfg = load_config(config, set_ or [])
    transforms = transforms_of(cfg)
    for i, t in enumerate(transform or []):
        transforms.append(build_transform(_yaml_value(t), f"--transform[{i}]"))
    if cfg.data.source == "measurements":
        ds, op, img_shape, _, _, sampler, cfg = build_data(cfg)
        x_shape = img_shape
        # per-sample operators in the file: the family is the first (up to) 32 of them
        sampler = ds.make_physics({k: v[:32] for k, v in ds.params.items()}) if ds.params else None
    else:
        n = size or min(cfg.data.patch_size or 32, 16 if cfg.physics.name == "tomography" else 32)
        if n < 4:
            raise ConfigError("check: --size must be >= 4")
        x_shape = (_channels(cfg), n, n)
        op, sampler = build_physics(cfg, x_shape, build_noise(cfg))
    usable, seen = [], set()
    for t in transforms:
        if repr(t) in seen:
            continue
        seen.add(repr(t))
        try:
            t.elements(x_shape[-2:])
            usable.append(t)
        except ValueError:
            note(f"note: {t!r} has no finite list of elements (continuous or random parameters); "
                 "the rank test needs a finite group (e.g. rotate with n: 4): skipped")
    fixed_family = sampler is not None and not callable(getattr(sampler, "sample", None))  # a measurement set's operators
    advice = advise(op, sampler=sampler, transforms=usable, pairs=cfg.data.pairs, noise_known=not noise_unknown,
                    x_shape=tuple(x_shape), **({"n_operators": None} if fixed_family else {}))
    if fixed_family:
        family = f" with the measurement set's {sampler.batch_size} operators"
    elif cfg.physics.sampler is not None:
        family = f" with per-sample operators ({cfg.physics.sampler.name})"
    else:
        family = ""
    typer.echo(f"{config.name}: {cfg.physics.name}{family}, images {'x'.join(map(str, x_shape))} for the rank tests")
    typer.echo(str(advice))
    names = [cfg.loss.name, *(t.name for t in cfg.loss.extra)]
    verdicts = [advice.verdict(n) for n in names if any(v.loss == n for v in advice.verdicts)]
    if verdicts:
        main = verdicts[0]
        extra = f" + {', '.join(names[1:])}" if len(names) > 1 else ""
        typer.echo(f"Configured loss: {main.loss}{extra} — {'applies' if main.applicable else 'does not apply'}: {main.reason}.")
