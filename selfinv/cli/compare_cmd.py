"""``compare`` (several losses, same model, data, budget and seed) and ``demo`` (SURE vs supervised)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from selfinv.cli._app import VersionOption, app
from selfinv.cli._errors import error_line, fail, guarded, note
from selfinv.cli.train_cmd import SET_HELP


def switch_loss(section: dict[str, Any], name: str) -> dict[str, Any]:
    """The loss section for ``name``: ``section`` itself when it names that loss, else ``{name}`` with the
    transform EI/REI require (the section's, else shifts)."""
    from selfinv.config import LossConfig
    from selfinv.experiment import section_fields

    if section["name"] == name:
        return section
    new: dict[str, Any] = {"name": name}
    if section_fields(LossConfig, name).get("transform", None) is ...:
        found = [t.get("transform") for t in [section, *section.get("extra", [])] if t.get("transform")]
        new["transform"] = found[0] if found else "shift"
    return new


def loss_config(cfg, name: str, run_dir: Path, steps: int | None, n_train: int):
    """The config of one compared run: the base config with ``loss`` replaced (its own parameters kept when it
    is the config's loss), the backbone a loss requires, and the step budget."""
    from selfinv.config import LOSS_BACKBONES, parse_config
    from selfinv.experiment import resolve_wrapper, steps_to_epochs
    from selfinv.losses import LOSSES

    data = cfg.model_dump(mode="json")
    data["model"]["wrapper"] = resolve_wrapper(cfg)
    data["loss"] = switch_loss(data["loss"], name)
    needs = LOSSES[name].needs_backbone
    if needs:  # keep the base network where it can meet the loss's needs (same size for every loss), else the default
        backbone = data["model"]["backbone"]
        fits = "name" not in needs or needs["name"] == backbone["name"]
        settable = all(k == "name" or k in backbone for k in needs)
        data["model"] = {"backbone": {**backbone, **needs} if fits and settable else LOSS_BACKBONES[name],
                         "wrapper": {"name": "none"}}
    t = data["training"]
    t["run_dir"] = str(run_dir)
    t["patience"] = None  # the same budget for every loss
    if steps is not None:
        t["max_steps"] = steps
        t["epochs"] = max(t["epochs"], steps_to_epochs(cfg, n_train, steps))
    return parse_config(data)


class Variant(NamedTuple):
    """One compared run that differs from the base config by ``--set``-style ``overrides`` (for instance
    ``("sure-half-sigma", ("loss.name=sure", "data.true_noise={name: gaussian, sigma: 0.2}"))``). Overrides of
    ``data``, ``physics``, ``noise`` or ``seed`` rebuild the data for that run."""

    label: str
    overrides: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``LABEL=KEY=VALUE;KEY=VALUE`` (the ``--variant`` option)."""
        label, sep, rest = text.partition("=")
        items = tuple(s.strip() for s in rest.split(";") if s.strip())
        if not sep or not label.strip() or not items:
            raise ValueError(f"--variant {text!r}: expected LABEL=KEY=VALUE[;KEY=VALUE...] "
                             "(e.g. sure-2sigma=loss.name=sure;noise.sigma=0.2)")
        if not re.fullmatch(r"[A-Za-z0-9_.@+-]+", label.strip()):
            raise ValueError(f"--variant {text!r}: the label names a folder: use letters, digits and _ . @ + -")
        return cls(label.strip(), items)

    def base(self, data: dict[str, Any]) -> dict[str, Any]:
        """The config (as a dict) the overrides apply to: another ``loss.name`` starts a fresh loss section."""
        import yaml

        names = [o.split("=", 1)[1].strip() for o in self.overrides if o.split("=", 1)[0].strip() == "loss.name"]
        if names:
            data = {**data, "loss": switch_loss(data["loss"], str(yaml.safe_load(names[-1])))}
        return data


_DATA_KEYS = ("data.", "physics", "noise", "seed")


def run_comparison(cfg, losses: list[str | Variant], out: Path, steps: int | None = None, progress: bool | None = None,
                   examples: int = 1, extra_tests: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train every loss of ``losses`` on the same data, model, budget and seed; write ``out/results.json``,
    ``out/results.md``, ``out/comparison.png`` and one run folder per loss under ``out/runs``.

    An entry is a loss name (the base config with that loss) or a :class:`Variant` (the base config with
    overrides, labelled). ``extra_tests`` (label → dataset) are further test sets every trained model is
    evaluated on (``run["extra"][label]``)."""
    import torch

    from selfinv.cli._device import check_device
    from selfinv.cli.runs import (
        clean_floats,
        count_network_evals,
        evaluate_dataset,
        machine_info,
        new_folder,
        to_json,
        train_experiment,
        write_text_new,
    )
    from selfinv.config import apply_overrides, parse_config
    from selfinv.experiment import Experiment, _absolute_paths, build_loss, build_model
    from selfinv.training.figures import comparison_figure

    if not losses:
        raise ValueError("compare: no losses given")
    labels = [e.label if isinstance(e, Variant) else e for e in losses]
    dupes = sorted({n for n in labels if labels.count(n) > 1})
    if dupes:
        raise ValueError(f"compare: {', '.join(dupes)} given twice")
    device = check_device(cfg.training.device, "training.device")  # before any folder is made
    new_folder(out)
    cfg = _absolute_paths(cfg)
    cfg, base_data = _comparison_data(cfg)
    test_name, n_test = base_data[-1], len(base_data[-2])
    runs: list[dict[str, Any]] = []
    baseline: dict[str, Any] = {"psnr": None, "ssim": None}
    shown: dict[str, torch.Tensor] = {}
    measurement = "measurement"
    for i, entry in enumerate(losses):
        name = entry.label if isinstance(entry, Variant) else entry
        run: dict[str, Any] = {"loss": name, "psnr": None, "ssim": None, "val_loss": None, "steps": None,
                               "train_seconds": None, "step_seconds_median": None, "network_evals_per_step": None,
                               "network_evals_counted": None, "test_evals": None, "test_seconds_per_image": None,
                               "model": None, "run_dir": str(out / "runs" / name), "error": None}
        if isinstance(entry, Variant):
            run["overrides"] = list(entry.overrides)
        note(f"[{i + 1}/{len(losses)}] {name}")
        try:
            rcfg, (ds, op, img_shape, is_complex, norm, sampler, train, val, test, _) = cfg, base_data
            if isinstance(entry, Variant):
                rcfg = parse_config(apply_overrides(entry.base(cfg.model_dump(mode="json")), list(entry.overrides)))
                if any(o.split("=", 1)[0].strip().startswith(_DATA_KEYS) for o in entry.overrides):
                    rcfg, data = _comparison_data(_absolute_paths(rcfg))
                    ds, op, img_shape, is_complex, norm, sampler, train, val, test, _ = data
            lcfg = loss_config(rcfg, rcfg.loss.name if isinstance(entry, Variant) else name, out / "runs" / name,
                               steps, len(train))
            torch.manual_seed(lcfg.seed)
            model = build_model(lcfg, img_shape[0], is_complex)
            loss = build_loss(lcfg, sampler, img_shape)
            exp = Experiment(lcfg, ds, train, val, img_shape, is_complex, norm, op, sampler, model, loss)
            result = train_experiment(exp, out / "runs" / name, progress=progress, title=name, epoch_lines=False,
                                      examples_from=test)
            ev = evaluate_dataset(model, loss, test, lcfg.data.data_range, device, lcfg.training.batch_size,
                                  seed=lcfg.seed, examples=examples)
            summary = ev.summary()
            last = result.last
            run.update(
                psnr=summary["psnr"], ssim=summary["ssim"], val_loss=last.get("val_loss"), steps=result.state.step,
                train_seconds=result.seconds,
                step_seconds_median=sorted(result.step_times)[len(result.step_times) // 2] if result.step_times else None,
                network_evals_per_step=loss.train_evals_for(op), test_evals=loss.info.test_evals,
                test_seconds_per_image=summary["seconds_per_image"], model=lcfg.model.backbone.name,
            )
            run["baseline"] = summary["baseline"]
            if baseline["psnr"] is None and summary["baseline"]["psnr"] is not None:
                baseline = summary["baseline"]
            for label, extra in (extra_tests or {}).items():
                es = evaluate_dataset(model, loss, extra, lcfg.data.data_range, device, lcfg.training.batch_size,
                                      seed=lcfg.seed, with_loss=False).summary()
                run.setdefault("extra", {})[label] = {"psnr": es["psnr"], "ssim": es["ssim"], "baseline": es["baseline"],
                                                      "n_images": len(extra)}
            if ev.examples:
                if not shown:
                    shown = {k: v for k, v in ev.examples.items() if k in ("truth", "measurement", "no learning")}
                    measurement = ev.measurement_title
                    if shown["measurement"].shape == shown["no learning"].shape and torch.equal(shown["measurement"], shown["no learning"]):
                        del shown["no learning"]  # denoising: the baseline is y itself
                shown[name] = ev.examples["reconstruction"]
            run["network_evals_counted"] = count_network_evals(model, loss, train, device, lcfg.training.batch_size, lcfg.seed)
            if run["network_evals_counted"] != run["network_evals_per_step"]:
                note(f"note: {name}: counted {run['network_evals_counted']} network evaluations in one step, "
                     f"its LossInfo says {run['network_evals_per_step']}")
        except Exception as e:  # one loss failing must not lose the others: recorded, reported at the end
            from selfinv.cli._errors import debug

            if debug():
                raise
            run["error"] = error_line(e)
            note(f"{name}: failed: {run['error']}")
            if not Path(run["run_dir"]).exists():  # failed before its first checkpoint: nothing was kept
                run["run_dir"] = None
        runs.append(run)
    results = clean_floats({
        "runs": runs,
        "baseline": baseline,
        "test_set": {"source": test_name, "n_images": n_test},
        "data_range": cfg.data.data_range,
        "machine": machine_info(device),
        "config": cfg.model_dump(mode="json"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    write_text_new(out / "results.json", to_json(results) + "\n")
    write_text_new(out / "results.md", results_markdown(results))
    order = ["truth", "measurement", "no learning"] + [r["loss"] for r in runs]
    panels = {(measurement if k == "measurement" else k): shown[k] for k in order if k in shown}
    comparison_figure(out / "comparison.png", runs, baseline, panels, data_range=cfg.data.data_range,
                      own_scale=(measurement,) if "Aᴴy" in measurement else ())
    return results


def _comparison_data(cfg):
    """The resolved config and (dataset, template, img_shape, is_complex, normalization, sampler, train, val, test,
    test name) of a config."""
    from selfinv.experiment import build_data, build_test_set, split_data

    ds, op, img_shape, is_complex, norm, sampler, cfg = build_data(cfg)
    train, val = split_data(cfg, ds)
    test = build_test_set(cfg)
    test_name = "test split" if test is not None else "validation split"
    return cfg, (ds, op, img_shape, is_complex, norm, sampler, train, val, test if test is not None else val, test_name)


def _fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def results_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    b = results["baseline"]
    lines = [
        "# Loss comparison",
        "",
        f"Same model, data, number of steps and seed for every loss; metrics on the {results['test_set']['source']} "
        f"({results['test_set']['n_images']} images, data range {results['data_range']:g}). "
        f"Machine: {m['cpu']}, {m['threads']} threads, torch {m['torch']}, device {m['device']}.",
        "",
        "| loss | PSNR (dB) | SSIM | its own val loss¹ | steps | train s | step ms (median) | net evals/step (counted) | test ms/image |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| no learning | {_fmt(b.get('psnr'), '.2f')} | {_fmt(b.get('ssim'), '.3f')} | | | | | | |",
    ]
    for r in results["runs"]:
        if r.get("error"):
            lines.append(f"| {r['loss']} | failed: {r['error']} | | | | | | | |")
            continue
        step_ms = None if r["step_seconds_median"] is None else r["step_seconds_median"] * 1000
        test_ms = None if r["test_seconds_per_image"] is None else r["test_seconds_per_image"] * 1000
        lines.append(
            f"| {r['loss']} | {_fmt(r['psnr'], '.2f')} | {_fmt(r['ssim'], '.3f')} | {_fmt(r['val_loss'], '.4g')} | "
            f"{r['steps']} | {_fmt(r['train_seconds'], '.1f')} | {_fmt(step_ms, '.1f')} | "
            f"{r['network_evals_per_step']} ({_fmt(r['network_evals_counted'], 'd')}) | {_fmt(test_ms, '.1f')} |"
        )
    lines += ["", "¹ Each run's own training loss on the validation set: the losses measure different things on "
              "different scales, so this column follows one run, it does not rank the rows (PSNR and SSIM do).",
              "", "![comparison](comparison.png)", ""]
    return "\n".join(lines)


def _loss_list(text: str, cfg) -> list[str]:
    """``a,b,c``, or ``all-applicable``: the advisor's applicable losses (+ supervised with ground truth)."""
    from selfinv.losses import LOSSES

    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all-applicable"]:
        from selfinv.advisor import advise
        from selfinv.cli.train_cmd import _channels
        from selfinv.experiment import build_noise, build_physics

        if cfg.data.source == "measurements":
            raise ValueError("--losses all-applicable needs simulated data (data.source embedded or images)")
        n = min(cfg.data.patch_size or 32, 32)
        shape = (_channels(cfg), n, n)
        op, sampler = build_physics(cfg, shape, build_noise(cfg))
        from selfinv.experiment import transforms_of

        advice = advise(op, sampler=sampler, transforms=[t for t in transforms_of(cfg) if _finite(t, shape)],
                        pairs=cfg.data.pairs, x_shape=shape)
        names = ["supervised", *advice.applicable]
        note(f"all-applicable: {', '.join(names)}")
        return names
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        raise ValueError(f"--losses: {unknown[0]!r} is not one of {', '.join(LOSSES)} (or all-applicable)")
    return names


def _finite(t, shape) -> bool:
    try:
        t.elements(shape[-2:])
        return True
    except ValueError:
        return False


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
    from selfinv.cli._device import check_device
    from selfinv.config import load_config

    overrides = list(set_ or []) + ([f"training.device={device}"] if device else [])
    cfg = load_config(config, overrides)
    if not losses.strip() and not variant:
        fail("compare: give --losses and/or --variant")
    check_device(cfg.training.device, "--device" if device else "training.device")
    names: list[str | Variant] = [*(_loss_list(losses, cfg) if losses.strip() else []), *map(Variant.parse, variant or [])]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{out}: the output folder exists and is not empty; choose another (nothing is overwritten)")
    results = run_comparison(cfg, names, out, steps, progress)
    _print_table(results)
    typer.echo(f"results: {out / 'results.json'}, {out / 'results.md'}, {out / 'comparison.png'}")
    failed = [r["loss"] for r in results["runs"] if r.get("error")]
    if failed:
        fail(f"{len(failed)} of {len(results['runs'])} losses failed ({', '.join(failed)}); see results.json")


def _print_table(results: dict[str, Any], labels: dict[str, str] | None = None) -> None:
    labels = labels or {}
    b = results["baseline"]
    typer.echo(f"{'':28}{'PSNR (dB)':>10}{'SSIM':>8}{'steps':>7}{'train s':>9}")
    typer.echo(f"{labels.get('baseline', 'no learning'):28}{_fmt(b.get('psnr'), '.2f'):>10}{_fmt(b.get('ssim'), '.3f'):>8}")
    for r in results["runs"]:
        label = labels.get(r["loss"], r["loss"])
        if r.get("error"):
            typer.echo(f"{label:28}failed: {r['error']}")
            continue
        typer.echo(f"{label:28}{_fmt(r['psnr'], '.2f'):>10}{_fmt(r['ssim'], '.3f'):>8}{r['steps']:>7}"
                   f"{_fmt(r['train_seconds'], '.1f'):>9}")


# ---------------------------------------------------------------------- demo
DEMO = {
    "full": {"steps": 1200, "patch_size": 40, "patches_per_image": 8, "test_size": 256, "width": 16},
    "quick": {"steps": 60, "patch_size": 32, "patches_per_image": 4, "test_size": 96, "width": 16},
}


def demo_config(loss: str, quick: bool, steps: int | None, test_size: int | None, device: str | None,
                test_images: list[str] | None = None):
    from selfinv.config import parse_config

    d = dict(DEMO["quick" if quick else "full"])
    return parse_config({
        "data": {"source": "embedded", "gray": True, "patch_size": d["patch_size"], "patches_per_image": d["patches_per_image"],
                 "val_fraction": 0.15, "test_size": test_size or d["test_size"], "test_images": test_images},
        "physics": {"name": "denoising"},
        "noise": {"name": "gaussian", "sigma": 0.1},
        "loss": {"name": loss},
        "model": {"backbone": {"name": "unet", "depth": 2, "width": d["width"]}, "wrapper": {"name": "none"}},
        "training": {"batch_size": 8, "lr": 2e-3, "epochs": 1, "max_steps": steps or d["steps"], "val_every": 5,
                     "device": device},
        "seed": 0,
    }), steps or d["steps"]


def _demo_folder(out: Path | None) -> Path:
    if out is not None:
        return out
    base = Path("selfinv-demo")
    if not base.exists():
        return base
    i = 2
    while Path(f"{base}-{i}").exists():
        i += 1
    return Path(f"{base}-{i}")


@app.command()
@guarded
def demo(
    loss: Annotated[str, typer.Option("--loss", help="The self-supervised loss to train (beside the supervised reference).")] = "sure",
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run of about 10 seconds (60 steps per model, 96-pixel test crops; the full demo takes about 1.5 minutes on 2 CPU cores).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default: ./selfinv-demo, numbered if it exists).")] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, hidden=True)] = None,
    test_size: Annotated[int | None, typer.Option("--test-size", min=8, hidden=True)] = None,
    test_images: Annotated[str | None, typer.Option("--test-images", hidden=True)] = None,
    version: VersionOption = False,
) -> None:
    """Denoise the embedded photographs: a self-supervised loss (SURE) against the supervised reference."""
    from selfinv.losses import LOSSES

    if loss not in LOSSES:
        fail(f"--loss {loss!r} is not one of {', '.join(LOSSES)}")
    if loss == "supervised":
        fail("--loss supervised is the reference the demo already trains; choose a self-supervised loss")
    from selfinv.cli._device import check_device

    check_device(device)
    folder = _demo_folder(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        fail(f"{folder}: the report folder exists and is not empty; choose another with --out")
    names = [n.strip() for n in test_images.split(",")] if test_images else None
    cfg, n_steps = demo_config(loss, quick, steps, test_size, device, names)
    size = cfg.data.test_size
    typer.echo(f"selfinv demo: Gaussian denoising (sigma = 0.1) of the photographs embedded in scikit-image; "
               f"{n_steps} steps per model on {cfg.data.patch_size}x{cfg.data.patch_size} patches of the 14 training "
               f"images, test on {size}x{size} crops of the held-out ones")
    t0 = time.perf_counter()
    results = run_comparison(cfg, [loss, "supervised"], folder, n_steps, progress)
    _print_table(results, {"baseline": "noisy (no learning)", loss: f"{loss} (self-supervised)",
                           "supervised": "supervised (reference)"})
    _demo_report(folder, results, loss, time.perf_counter() - t0)
    typer.echo(f"report: {folder / 'report.md'} ({time.perf_counter() - t0:.0f} s)")
    failed = [r["loss"] for r in results["runs"] if r.get("error")]
    if failed:
        fail(f"{', '.join(failed)} failed; see {folder / 'results.json'}")


def _demo_report(folder: Path, results: dict[str, Any], loss: str, seconds: float) -> None:
    from selfinv.cli.runs import write_text_new

    table = (folder / "results.md").read_text().split("\n", 2)[2]
    text = "\n".join([
        "# selfinv demo: learning to denoise without clean images",
        "",
        f"A small U-Net is trained twice on noisy patches of the photographs embedded in scikit-image (Gaussian noise, "
        f"sigma = 0.1): once with the self-supervised **{loss}** loss, which sees the noisy measurements only, and once "
        "with the supervised loss, which also sees the clean images (the reference). Both get the same data, "
        "network, number of steps and seed; PSNR and SSIM are measured on the held-out test photographs.",
        "",
        table.strip(),
        "",
        f"Training curves and validation examples of each run: [{loss}](runs/{loss}/report.md), "
        "[supervised](runs/supervised/report.md). Machine-readable results: `results.json`. "
        f"Total time: {seconds:.0f} s.",
        "",
    ])
    write_text_new(folder / "report.md", text)
