r"""The configuration of a training run: a pydantic schema generated from the registries, YAML I/O, builders.

A run is described by one YAML file with seven top-level keys (every one optional; the defaults train a
small U-Net with SURE on Gaussian denoising of the embedded photographs)::

    data:      where the images or measurements come from, patches, split, normalisation, data range
    physics:   {name: <OPERATORS key>, <operator parameters>, sampler: {name: <SAMPLERS key>, ...}}
    noise:     {name: <NOISE_MODELS key>, <parameters>}   (null: noiseless / the measurement set's)
    loss:      {name: <LOSSES key>, weight: 1.0, <parameters>, extra: [<more terms>]}
    model:     {backbone: {name: <BACKBONES key>, ...}, wrapper: {name: backprojection | unrolled | none | auto, ...}}
    training:  the fields of :class:`selfinv.training.FitConfig` + checkpoint_every, patience, run_dir, progress
    seed:      one integer for the data, the operators, the initialisation and the training draws

Every registry section is validated against the constructor of the class it names (the accepted keys are
the constructor's arguments, read from its signature), so a typo'd key or name is refused with one line::

    config: unknown key 'loss.nmae' (allowed: name, weight, extra, divergence, tau, ...)
    config: loss.name = 'sur' is not one of supervised, mc, noise2noise, r2r, sure, ...

:func:`load_config` reads a file and ``--set key=value`` overrides; :class:`ConfigError` carries the one-line
message. :func:`selfinv.experiment.build_experiment` turns a :class:`Config` into data sets, physics, model
and loss, only through the registries (``OPERATORS``, ``SAMPLERS``, ``NOISE_MODELS``, ``LOSSES``, ``BACKBONES``,
``WRAPPERS`` and :data:`TRANSFORMS`).

The package by concept: :mod:`~selfinv.config.registry` (the sections read off the registries,
:func:`registry_fields`), :mod:`~selfinv.config.schema` (:class:`Config` and its sections),
:mod:`~selfinv.config.errors` (:class:`ConfigError`, pydantic's errors in one line) and
:mod:`~selfinv.config.loading` (YAML, overrides, validation).

Example:
    >>> cfg = parse_config({"loss": {"name": "r2r", "n_samples": 3}, "training": {"epochs": 2}})
    >>> cfg.loss.name, cfg.loss.n_samples, cfg.physics.name, cfg.noise.sigma
    ('r2r', 3, 'denoising', 0.1)
    >>> parse_config({"loss": {"name": "sure", "nmae": 1}})
    Traceback (most recent call last):
    ...
    selfinv.config.ConfigError: config: unknown key 'loss.nmae' (allowed: name, weight, extra, divergence, tau, tau_rel, tau2, tau2_rel, n_probes, second_order; did you mean 'name'?)
    >>> parse_config({"loss": "sur"})       # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    selfinv.config.ConfigError: config: loss.name = 'sur' is not one of supervised, mc, ...
"""

# Besides __all__, importable from here as from the former selfinv/config.py: the schema's sections,
# format_validation_error, apply_overrides and read_yaml.
# TRANSFORMS and KERNELS sit next to their families (selfinv.transforms, selfinv.physics.blur); a config names
# their entries (transform: rotate, kernel: {kind: gaussian, ...}).
from selfinv.config.errors import ConfigError
from selfinv.config.errors import format_validation_error as format_validation_error
from selfinv.config.loading import apply_overrides as apply_overrides
from selfinv.config.loading import dump_yaml, load_config, parse_config
from selfinv.config.loading import read_yaml as read_yaml
from selfinv.config.registry import LOCAL_OPERATORS, LOSS_BACKBONES, registry_fields
from selfinv.config.registry import BackboneConfig as BackboneConfig
from selfinv.config.registry import LossConfig as LossConfig
from selfinv.config.registry import LossTerm as LossTerm
from selfinv.config.registry import NoiseConfig as NoiseConfig
from selfinv.config.registry import PhysicsConfig as PhysicsConfig
from selfinv.config.registry import SamplerConfig as SamplerConfig
from selfinv.config.registry import WrapperConfig as WrapperConfig
from selfinv.config.schema import Config
from selfinv.config.schema import DataConfig as DataConfig
from selfinv.config.schema import ModelConfig as ModelConfig
from selfinv.config.schema import NormalizationConfig as NormalizationConfig
from selfinv.config.schema import TrainingConfig as TrainingConfig
from selfinv.physics import KERNELS
from selfinv.transforms import TRANSFORMS

__all__ = [
    "KERNELS",
    "LOCAL_OPERATORS",
    "LOSS_BACKBONES",
    "TRANSFORMS",
    "Config",
    "ConfigError",
    "dump_yaml",
    "load_config",
    "parse_config",
    "registry_fields",
]
