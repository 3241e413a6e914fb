"""Several losses trained and tested alike (:func:`run_comparison`): the same model, data, step budget and seed
for every loss, one run folder each under ``out/runs``, and the comparison's report
(:mod:`selfinv.engine.comparison_report`: results.json, results.md, comparison.png).

An entry is a loss name (the base config with that loss) or a :class:`Variant` (the base config with
``--set``-style overrides, labelled). A run that fails is recorded with its error line; the others go on.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from selfinv.config import Config, LossConfig, apply_overrides, parse_config
from selfinv.engine.budget import steps_to_epochs
from selfinv.engine.build import Experiment
from selfinv.engine.comparison_report import comparison_results, write_comparison_report
from selfinv.engine.data import Data, absolute_paths, build_data, build_test_set, split_data
from selfinv.engine.device import check_device
from selfinv.engine.errors import debug, error_line
from selfinv.engine.evaluate import count_network_evals, evaluate_dataset
from selfinv.engine.files import new_folder
from selfinv.engine.model_builders import build_loss, build_model, resolve_wrapper, section_fields
from selfinv.engine.train import train_experiment
from selfinv.losses import LOSSES

__all__ = ["Comparison", "ComparisonData", "Variant", "comparison_data", "loss_config", "run_comparison", "switch_loss"]


def switch_loss(section: dict[str, Any], name: str) -> dict[str, Any]:
    """The loss section for ``name``: ``section`` itself when it names that loss, else ``{name}`` with the
    transform EI/REI require (the section's, else shifts)."""
    if section["name"] == name:
        return section
    new: dict[str, Any] = {"name": name}
    if section_fields(LossConfig, name).get("transform", None) is ...:
        found = [t.get("transform") for t in [section, *section.get("extra", [])] if t.get("transform")]
        new["transform"] = found[0] if found else "shift"
    return new


def loss_config(cfg: Config, name: str, run_dir: Path, steps: int | None, n_train: int) -> Config:
    """The config of one compared run: the base config with ``loss`` replaced (its own parameters kept when it
    is the config's loss), the backbone a loss requires, and the step budget."""
    data = cfg.model_dump(mode="json")
    data["model"]["wrapper"] = resolve_wrapper(cfg)
    data["loss"] = switch_loss(data["loss"], name)
    needs = LOSSES[name].needs_backbone
    if needs:  # keep the base network where it can meet the loss's needs (same size for every loss), else the default
        backbone = data["model"]["backbone"]
        fits = "name" not in needs or needs["name"] == backbone["name"]
        settable = all(k == "name" or k in backbone for k in needs)
        data["model"] = {"backbone": {**backbone, **needs} if fits and settable else dict(LOSSES[name].default_backbone),
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

    @property
    def rebuilds_data(self) -> bool:
        """Whether the overrides change the data (``data``, ``physics``, ``noise`` or ``seed``)."""
        return any(o.split("=", 1)[0].strip().startswith(_DATA_KEYS) for o in self.overrides)


_DATA_KEYS = ("data.", "physics", "noise", "seed")


@dataclass
class ComparisonData:
    """The data of a comparison: the training data, its split, and the test set the runs are scored on."""

    data: Data
    train: Any
    val: Any
    test: Any  # the test set, else the validation set
    test_name: str  # "test split" or "validation split"

    @property
    def cfg(self) -> Config:
        return self.data.cfg

    def experiment(self, cfg: Config, model: torch.nn.Module, loss) -> Experiment:
        """The experiment of one run on these data (its own config, network and loss)."""
        d = self.data
        return Experiment(cfg, d.dataset, self.train, self.val, d.img_shape, d.is_complex, d.normalization, d.physics,
                          d.sampler, model, loss)


def comparison_data(cfg: Config) -> ComparisonData:
    """The data of a config for a comparison (the config resolved as :func:`~selfinv.engine.data.build_data`
    resolves it); the runs are tested on its test set, else on its validation set."""
    data = build_data(cfg)
    train, val = split_data(data.cfg, data.dataset)
    test = build_test_set(data.cfg)
    test_name = "test split" if test is not None else "validation split"
    return ComparisonData(data, train, val, test if test is not None else val, test_name)


@dataclass
class Comparison:
    """What :func:`run_comparison` wrote: its folder and ``results`` (the content of results.json)."""

    folder: Path
    results: dict[str, Any]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.results["runs"]

    @property
    def failed(self) -> list[str]:
        """The labels of the runs that failed."""
        return [r["loss"] for r in self.runs if r.get("error")]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _new_run(name: str, entry: str | Variant, out: Path) -> dict[str, Any]:
    run: dict[str, Any] = {"loss": name, "psnr": None, "ssim": None, "val_loss": None, "steps": None,
                           "train_seconds": None, "step_seconds_median": None, "network_evals_per_step": None,
                           "network_evals_counted": None, "test_evals": None, "test_seconds_per_image": None,
                           "model": None, "run_dir": str(out / "runs" / name), "error": None}
    if isinstance(entry, Variant):
        run["overrides"] = list(entry.overrides)
    return run


def run_comparison(cfg: Config, losses: list[str | Variant], out: Path, steps: int | None = None,
                   progress: bool | None = None, examples: int = 1, extra_tests: dict[str, Any] | None = None,
                   log: Callable[[str], None] | None = None) -> Comparison:
    """Train every loss of ``losses`` on the same data, model, budget and seed; write ``out/results.json``,
    ``out/results.md``, ``out/comparison.png`` and one run folder per loss under ``out/runs``.

    An entry is a loss name (the base config with that loss) or a :class:`Variant` (the base config with
    overrides, labelled). ``extra_tests`` (label → dataset) are further test sets every trained model is
    evaluated on (``run["extra"][label]``). ``log(line)`` reports progress and failed runs (default: stderr);
    with :func:`~selfinv.engine.errors.debug` on, a failed run raises instead."""
    log = log or _stderr
    if not losses:
        raise ValueError("compare: no losses given")
    labels = [e.label if isinstance(e, Variant) else e for e in losses]
    dupes = sorted({n for n in labels if labels.count(n) > 1})
    if dupes:
        raise ValueError(f"compare: {', '.join(dupes)} given twice")
    device = check_device(cfg.training.device, "training.device")  # before any folder is made
    new_folder(out)
    base = comparison_data(absolute_paths(cfg))
    cfg = base.cfg
    runs: list[dict[str, Any]] = []
    baseline: dict[str, Any] = {"psnr": None, "ssim": None}
    shown: dict[str, torch.Tensor] = {}
    measurement = "measurement"
    for i, entry in enumerate(losses):
        name = entry.label if isinstance(entry, Variant) else entry
        run = _new_run(name, entry, out)
        log(f"[{i + 1}/{len(losses)}] {name}")
        try:
            data = base
            if isinstance(entry, Variant):
                rcfg = parse_config(apply_overrides(entry.base(cfg.model_dump(mode="json")), list(entry.overrides)))
                if entry.rebuilds_data:
                    data = comparison_data(absolute_paths(rcfg))
                    rcfg = data.cfg
            else:
                rcfg = cfg
            lcfg = loss_config(rcfg, rcfg.loss.name if isinstance(entry, Variant) else name, out / "runs" / name,
                               steps, len(data.train))
            d = data.data
            model = build_model(lcfg, d.img_shape[0], d.is_complex)  # initialised from lcfg.seed
            loss = build_loss(lcfg, d.sampler, d.img_shape)
            result = train_experiment(data.experiment(lcfg, model, loss), out / "runs" / name, progress=progress,
                                      title=name, epoch_lines=False, examples_from=data.test)
            ev = evaluate_dataset(model, loss, data.test, lcfg.data.data_range, device, lcfg.training.batch_size,
                                  seed=lcfg.seed, examples=examples)
            summary = ev.summary()
            times = result.step_times
            run.update(
                psnr=summary["psnr"], ssim=summary["ssim"], val_loss=result.last.get("val_loss"), steps=result.state.step,
                train_seconds=result.seconds, step_seconds_median=sorted(times)[len(times) // 2] if times else None,
                network_evals_per_step=loss.train_evals_for(d.physics), test_evals=loss.info.test_evals,
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
            run["network_evals_counted"] = count_network_evals(model, loss, data.train, device, lcfg.training.batch_size, lcfg.seed)
            if run["network_evals_counted"] != run["network_evals_per_step"]:
                log(f"note: {name}: counted {run['network_evals_counted']} network evaluations in one step, "
                    f"its LossInfo says {run['network_evals_per_step']}")
        except Exception as e:  # one loss failing must not lose the others: recorded, reported at the end
            if debug():
                raise
            run["error"] = error_line(e)
            log(f"{name}: failed: {run['error']}")
            if not Path(run["run_dir"]).exists():  # failed before its first checkpoint: nothing was kept
                run["run_dir"] = None
        runs.append(run)
    results = comparison_results(runs, baseline, base.test_name, len(base.test), cfg, device)
    write_comparison_report(out, results, runs, baseline, shown, measurement)
    return Comparison(out, results)
