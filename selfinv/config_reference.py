"""The reference of every configuration key, generated from the schema (``docs/config.md``; ``selfinv config reference``).

The schema of :mod:`selfinv.config` is built from the registries and the constructors' signatures, so this page is
too: the keys and defaults come from the pydantic models, their descriptions from the fields' ``description``, and
a registry entry's arguments are described by the ``Args:`` section of its class docstring. A test compares
``docs/config.md`` with :func:`config_reference`, so the page cannot drift from the code.

Example:
    >>> text = config_reference()
    >>> text.startswith("# Configuration reference") and "| `patch_size` |" in text and "### `mri`" in text
    True
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["config_reference", "docstring_args"]


def docstring_args(cls: type) -> dict[str, str]:
    """The ``Args:`` section of a class (or its ``__init__``) docstring as ``{name: description}``."""
    out: dict[str, str] = {}
    for doc in (cls.__doc__, getattr(cls.__init__, "__doc__", None)):
        if not doc:
            continue
        lines = inspect.cleandoc(doc).splitlines()
        try:
            start = next(i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:", "Parameters:"))
        except StopIteration:
            continue
        indent, current = None, None
        for line in lines[start + 1:]:
            if not line.strip():
                if current is not None:
                    current = None
                continue
            depth = len(line) - len(line.lstrip())
            if indent is None:
                indent = depth
            if depth < indent:
                break
            m = re.match(r"\s*([A-Za-z_][\w]*)(?:\s*\([^)]*\))?\s*:\s*(.*)$", line)
            if depth == indent and m:
                current = m.group(1)
                out.setdefault(current, m.group(2).strip())
            elif current is not None and depth > indent:
                out[current] += " " + line.strip()
    return out


def _md(text: str | None) -> str:
    if not text:
        return ""
    text = " ".join(str(text).split())
    text = re.sub(r":(?:math|class|func|meth|mod|data|attr):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`").replace("\\|", "|")
    return text.replace("|", "\\|")


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        return "(section)"
    if isinstance(value, dict) and "name" in value:
        return f"`{value['name']}`" + (" ..." if len(value) > 1 else "")
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{value!r}`"


#: keys every member of a registry section shares (the schema adds them, no docstring describes them)
_COMMON = {
    "sampler": "a sampler section (`physics.sampler`): a new operator for every image instead of a fixed one",
    "weight": "factor of this term (EI/REI/MOI: the weight of their own prior term)",
    "extra": "further loss terms added to this one, each a loss section",
}


def _rows(model: type[BaseModel], docs: dict[str, str] | None = None, skip: tuple[str, ...] = ("name",)) -> list[str]:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, field in model.model_fields.items():
        if key in skip:
            continue
        text = field.description or (docs or {}).get(key) or _COMMON.get(key)
        rows.append(f"| `{key}` | {_default(field)} | {_md(text)} |")
    return rows


def _members(union: Any) -> dict[str, type[BaseModel]]:
    from selfinv.config.registry import unwrap

    kind, members = unwrap(union)
    assert kind == "union", union
    return members


def _registry_section(title: str, key: str, union: Any, registry: dict[str, type], intro: str,
                      synthetic: dict[str, str] | None = None) -> list[str]:
    out = [f"## `{key}`: {title}", "", intro, ""]
    for name, model in _members(union).items():
        cls = registry.get(name)
        out.append(f"### `{name}`")
        out.append("")
        if cls is None:
            out += [(synthetic or {}).get(name, ""), ""]
            continue
        first = _md(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0])
        out += [f"{first} (`{cls.__module__}.{cls.__name__}`)", ""]
        rows = _rows(model, docstring_args(cls))
        out += (rows if len(rows) > 2 else ["No arguments."]) + [""]
    return out


def config_reference() -> str:
    """The Markdown page documenting every configuration key (module docstring)."""
    from selfinv.config import (
        KERNELS,
        TRANSFORMS,
        BackboneConfig,
        Config,
        DataConfig,
        LossConfig,
        ModelConfig,
        NoiseConfig,
        NormalizationConfig,
        PhysicsConfig,
        SamplerConfig,
        TrainingConfig,
        WrapperConfig,
    )
    from selfinv.losses import LOSSES
    from selfinv.models import BACKBONES, WRAPPERS
    from selfinv.noise import NOISE_MODELS
    from selfinv.physics import OPERATORS, SAMPLERS

    out = [
        "# Configuration reference",
        "",
        "<!-- generated by `selfinv config reference` from the schema in selfinv/config/; do not edit by hand -->",
        "",
        "A run is one YAML file with these top-level keys, all optional (the defaults train SURE denoising of the "
        "embedded photographs). Any key can be overridden on the command line: `--set data.patch_size=64`. "
        "Registry sections name a class (`name:`) and take its constructor's arguments; an unknown key or name is "
        "refused with one line that says what is allowed.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    for key, field in Config.model_fields.items():
        out.append(f"| `{key}` | {_default(field)} | {_md(field.description)} |")
    out += ["", "## `data`", "", _md(DataConfig.__doc__), ""]
    out += _rows(DataConfig, skip=())
    out += ["", "`data.normalization` as a mapping:", ""] + _rows(NormalizationConfig, skip=())
    out += [
        "",
        "A measurement folder (`data.source: measurements`, `data.path: FOLDER`) holds `y/` (one file per "
        "measurement, any readable format; a stack gives one measurement per slice), and optionally `x/` (reference "
        "images, used only for metrics, never for training), `y2/` (a second, independent measurement of the same "
        "images, for Noise2Noise), one folder per per-sample operator parameter (`mask/`, ...; files matched by "
        "name, 8-bit masks read as 0/1) and `meta.json` (`{\"operator\": ..., \"noise\": {...}}`). An `.npz`/`.h5` "
        "measurement set holds the same as arrays (`y`, `x`, `y2`, `mask`, `angles`, `angle_mask`, "
        "`noise.sigma`, ...). Without `y/`, the files of a folder, a glob or one file are the measurements y.",
        "",
        "Readable files: PNG/JPEG, TIFF (axes from the metadata), NPY/NPZ, HDF5 (`.h5`, fastMRI), MATLAB `.mat` "
        "(v5 and v7.3), DICOM, BART `.cfl/.hdr`; `FILE:KEY` (or `data.key`) picks an array of an HDF5/NPZ/MAT file.",
        "",
    ]
    out += _registry_section(
        "the forward operator", "physics", PhysicsConfig, OPERATORS,
        "`name` is an operator; tensor arguments (`mask`, `kernel`, ...) are a file, a nested list, a kernel "
        "description (`{kind: gaussian, sigma: 2, size: 13}`, kinds: " + ", ".join(KERNELS) + ") or one seeded draw "
        "of a sampler (`{sampler: bernoulli_mask, img_size: 64, p: 0.5, seed: 0}`). `sampler:` (below) draws a new "
        "operator for every image instead. Image sizes come from the data.")
    out += _registry_section(
        "a new operator per image", "physics.sampler", SamplerConfig, SAMPLERS,
        "Random operator families: `physics: {name: inpainting, sampler: {name: bernoulli_mask, p: 0.5}}`.")
    out += _registry_section(
        "the noise model", "noise", NoiseConfig, NOISE_MODELS,
        "Parameters are in normalised units (after `data.normalization`). `null` means noiseless; "
        "`{name: unknown}` is noise nobody knows (real data): only the losses that tolerate it apply "
        "(`selfinv check` lists them).")
    out += _registry_section(
        "the training loss", "loss", LossConfig, LOSSES,
        "Every loss takes `weight` (a factor; for EI/REI/MOI the weight of their own prior term) and `extra` (a "
        "list of further terms, each a loss section). Transforms (`transform:`) are one of "
        + ", ".join(TRANSFORMS) + ", `{name: rotate, n: 4}` or a list (their product).")
    out += ["## `model`", "", _md(ModelConfig.__doc__), ""] + _rows(ModelConfig, skip=()) + [""]
    out += _registry_section("the network", "model.backbone", BackboneConfig, BACKBONES,
                             "`in_channels`/`out_channels` follow the data (2 real channels per complex one).")
    out += _registry_section("the physics-aware wrapper", "model.wrapper", WrapperConfig, WRAPPERS,
                             "`init` is `adjoint`, `pinv`, `cg` (10 conjugate-gradient steps of least squares), "
                             "`fbp` or `none`.",
                             synthetic={"none": "The backbone alone, applied to y.",
                                        "auto": "`none` for denoising, else `backprojection` (with `init: fbp` for "
                                                "tomography)."})
    out += ["## `training`", "", _md(TrainingConfig.__doc__), ""] + _rows(TrainingConfig, skip=()) + [""]
    return "\n".join(out).rstrip() + "\n"


