"""Reading and writing configs: YAML files, ``--set key=value`` overrides, validation into a :class:`Config`.

:func:`load_config` is the whole path from a file to a validated config: :func:`read_yaml`,
:func:`apply_overrides`, :func:`parse_config`; every problem is one :class:`~selfinv.config.ConfigError`
line. :func:`dump_yaml` writes the resolved config into run folders.

Example:
    >>> data = apply_overrides({"loss": "sure"}, ["loss.tau=1e-3", "training.epochs=2"])
    >>> data
    {'loss': {'name': 'sure', 'tau': 0.001}, 'training': {'epochs': 2}}
    >>> cfg = parse_config(data)
    >>> cfg.loss.tau, cfg.training.epochs, dump_yaml(cfg).splitlines()[-1]
    (0.001, 2, 'seed: 0')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from selfinv.config.errors import ConfigError, format_validation_error
from selfinv.config.schema import Config

__all__ = ["apply_overrides", "dump_yaml", "load_config", "parse_config", "read_yaml", "yaml_value"]


def parse_config(data: dict | None) -> Config:
    """Validate a dict (e.g. a parsed YAML file); any problem is one :class:`ConfigError` line."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: the file must hold a mapping of keys (data, physics, ...), got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def yaml_value(text: str) -> Any:
    """A ``--set`` value parsed as YAML (``1e-3`` a float, not YAML 1.1's string); unparsable text as it is."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML; list items by index: ``loss.extra.0.weight``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. training.lr=1e-3)")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".")]
        if not all(parts):
            raise ConfigError(f"--set {item!r}: empty key")
        node: Any = data
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"--set {key}: '{p}' is not an index of the list {'.'.join(parts[:i])}")
                if last:
                    node[int(p)] = yaml_value(text)
                else:
                    node = node[int(p)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")
            if last:
                node[p] = yaml_value(text)
            else:
                if isinstance(node.get(p), str):  # shorthand "loss: sure" -> {name: sure}
                    node[p] = {"name": node[p]}
                elif node.get(p) is None:
                    node[p] = {}
                node = node[p]
    return data


def read_yaml(path: str | Path) -> dict:
    """A YAML file as a dict; a missing or malformed file is one ConfigError line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path.name}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path.name}: cannot read the file ({type(e).__name__}: {e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: a config is a mapping of keys (data, physics, noise, loss, model, training, seed)")
    return data


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (``None``: the defaults), apply ``--set`` overrides and validate."""
    data = read_yaml(path) if path is not None else {}
    return parse_config(apply_overrides(data, overrides))


def dump_yaml(cfg: Config | dict) -> str:
    """The configuration as YAML (the resolved form written into run folders)."""
    import yaml

    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else cfg
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
