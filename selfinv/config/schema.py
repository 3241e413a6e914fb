"""The schema of a run's configuration: :class:`Config` and its sections (module docstring of :mod:`selfinv.config`).

``data`` (:class:`DataConfig`), ``training`` (:class:`TrainingConfig`, the fields of
:class:`selfinv.training.FitConfig` with their comments as descriptions) and ``model`` (:class:`ModelConfig`)
are written out here; the registry sections (``physics``, ``noise``, ``loss``, ``model.backbone``,
``model.wrapper``) are generated from the registries in :mod:`selfinv.config.registry`. Every key carries
its description, from which :mod:`selfinv.config_reference` writes docs/config.md.

Example:
    >>> cfg = Config()
    >>> cfg.data.source, cfg.physics.name, cfg.loss.name, cfg.model.backbone.name
    ('embedded', 'denoising', 'sure', 'unet')
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, create_model

from selfinv.config.registry import (
    BackboneConfig,
    LossConfig,
    NoiseConfig,
    PhysicsConfig,
    StrictModel,
    WrapperConfig,
    field_type,
)
from selfinv.training.fit import SCHEDULERS, FitConfig

__all__ = ["Config", "DataConfig", "ModelConfig", "NormalizationConfig", "TrainingConfig"]


class NormalizationConfig(StrictModel):
    """``u = (v - offset) / scale`` (:class:`selfinv.data.Normalization`)."""

    scale: float = Field(1.0, gt=0, description="divide by this")
    offset: float = Field(0.0, description="after subtracting this (images only: measurements take a scale only)")


def _size_list(value: Any) -> Any:
    return [value, value] if isinstance(value, int) and not isinstance(value, bool) else value


def _auto_normalization(value: Any) -> Any:
    return "auto" if value is None else value


def _axes(value: Any) -> Any:
    from selfinv.data.stacks import parse_axes

    return None if value is None else parse_axes(value, where=None)


class DataConfig(StrictModel):
    """Where the training data come from, how they are cut, normalised and split."""

    source: Literal["embedded", "images", "measurements"] = Field(
        "embedded", description="embedded: photographs shipped with scikit-image; images: your ground-truth images "
        "(measurements are simulated from them); measurements: your measurements, no ground truth needed")
    images: list[str] | None = Field(None, description="embedded: image names (default: the training split); "
                                     "'phantom' is the Shepp-Logan phantom; black_holes, black_holes_test, "
                                     "hubble_train, hubble_test are sky images (selfinv.data.sky)")
    test_images: list[str] | None = Field(None, description="embedded: image names for evaluation (default: the test split)")
    path: str | None = Field(None, description="images: a folder or glob pattern of ground-truth images. measurements: "
                             "a measurement set (.npz/.h5 holding y and per-sample parameters; a folder with y/ and "
                             "optional x/ (references), y2/ (second measurements), one folder per parameter such as "
                             "mask/, meta.json), or image files holding y (a folder, a glob such as raw/*.tif, or one "
                             "file; FILE:KEY picks an array of an .h5/.npz/.mat file)")
    test_path: str | None = Field(None, description="the same for evaluation (default: the validation split)")
    key: str | None = Field(None, description="the array of .h5/.npz/.mat files to read (e.g. kspace, "
                            "CtDataLimited.sinogram); also written path: FILE:KEY")
    gray: bool = Field(True, description="embedded: luminance (1 channel) or RGB (3)")
    phase: float = Field(0.0, ge=0, description="complex operators (MRI) on real images: amplitude (× π rad) of a "
                         "smooth random phase")
    img_size: Annotated[list[int] | None, BeforeValidator(_size_list)] = Field(
        None, description="measurements: the size of x, N (square), [H, W] or [C, H, W], for operators whose "
        "measurements do not show it (tomography, compressed sensing)")
    patch_size: int | None = Field(32, ge=4, description="train on random square patches of this side (null: whole "
                                   "images of one size). images: patches of the ground truth, simulated once. "
                                   "measurements: new random crops every epoch, for operators acting pixel by pixel "
                                   "(denoising, inpainting, demosaicing); operators whose measurements cannot be cut "
                                   "(MRI k-space, sinograms, compressed sensing, blur) train on whole measurements and "
                                   "refuse an explicit patch_size")
    patch_depth: int | None = Field(None, ge=2, description="3-D networks (model.backbone with spatial_dims 3, e.g. "
                                    "unet3d; measurements are then whole volumes, one per file, (C, D, H, W)): the "
                                    "D side of the random (patch_depth, patch_size, patch_size) patches (default: "
                                    "patch_size); 2-D networks take the slices of a stack as separate images")
    patches_per_image: int = Field(4, ge=1, description="images: patches cut from each image (fixed). measurements: "
                                   "random patches per measurement and epoch (default: enough to cover each "
                                   "measurement once per epoch, (H x W) / patch_size²)")
    test_size: int | None = Field(None, ge=4, description="evaluation: central crop side (default: patch_size)")
    max_images: int | None = Field(None, ge=1, description="use the first this many training images")
    max_test_images: int | None = Field(None, ge=1, description="and the first this many test images")
    true_noise: NoiseConfig | None = Field(None, description="simulated data: the noise that corrupts them when it "
                                           "differs from `noise` (what the losses assume), e.g. to study a "
                                           "mis-specified or unknown noise level")
    val_fraction: float = Field(0.25, ge=0, lt=1, description="share of the measurements (source images) held out "
                                "for validation; 0, or a single measurement, validates within each measurement "
                                "(see val_holdout)")
    val_holdout: float = Field(0.2, gt=0, lt=1, description="validation within measurements: the share of each "
                               "measurement held out — a band of the image for operators acting pixel by pixel, "
                               "acquired entries (k-space samples, sinogram bins) otherwise, never seen in training; "
                               "the validation loss is then the prediction error on them")
    normalization: Annotated[NormalizationConfig | Literal["auto", "range", "none"], BeforeValidator(_auto_normalization)] = Field(
        "auto", description="auto: 8-bit files / 255, anything else (16-bit, float, complex, DICOM) by a robust scale "
        "(99.5th percentile of |x|, or of the back-projection |A^H y| for measurements) so that values lie in about "
        "[0, 1]; range: the file type's range (8-bit / 255, 16-bit / 65535, floats as they are); none; or "
        "{scale, offset}. Stored in checkpoints and undone on output")
    data_range: float = Field(1.0, gt=0, description="of the normalised images, for PSNR and SSIM")
    pairs: bool = Field(False, description="Noise2Noise pairs: images: simulate a second measurement y2 of each image; "
                        "measurements: frames 2k and 2k+1 of each T stack (data.axes with T) are a measurement and "
                        "its y2 (second measurements also come from data.pairs_path or a set's y2/)")
    pairs_path: str | None = Field(None, description="measurements: second raw frames of the same fields of view as "
                                   "the files of data.path (a folder, glob or file; Noise2Noise y2), matched by "
                                   "identical file names, else in sorted order")
    axes: Annotated[str | None, BeforeValidator(_axes)] = Field(
        None, description="measurements: the layout of the files' arrays in tifffile's letters (YX, CYX, TYX, ZYX, "
        "YXT, ...; default: the TIFF's metadata, else by dimension), checked against every file; T frames become "
        "separate measurements (or pairs, data.pairs), Z slices a volume axis, C channels; outputs are written in "
        "the same order")
    resample_noise_each_epoch: bool = Field(False, description="simulated data: new noise every epoch (turns any "
                                            "loss into Noise2Noise; off by default)")


def _field_comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field of a dataclass, from its source (its documentation)."""
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # pragma: no cover - no source (frozen apps)
        return {}
    out = {}
    for line in source.splitlines():
        m = re.match(r"\s+(\w+): [^=]+=[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _fit_fields() -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    docs = _field_comments(FitConfig)
    for f in dataclasses.fields(FitConfig):
        if f.name in ("seed", "data_range"):  # top-level seed, data.data_range
            continue
        t = Literal[tuple(SCHEDULERS)] if f.name == "scheduler" else field_type(f.type, f.default)
        out[f.name] = (t, Field(f.default, description=docs.get(f.name)))
    return out


TrainingConfig = create_model(
    "TrainingConfig",
    __base__=StrictModel,
    checkpoint_every=(int | None, Field(None, ge=1, description="also write last.pt every this many steps")),
    patience=(int | None, Field(None, ge=1, description="early stopping after this many epochs without a better "
                                "validation loss")),
    run_dir=(str | None, Field(None, description="the run folder (default: runs/<config file name>); never "
                               "overwritten, continued with --resume")),
    progress=(bool | None, Field(None, description="progress bar (default: when stderr is a terminal)")),
    **_fit_fields(),
)
TrainingConfig.__doc__ = "The fields of selfinv.training.FitConfig (minus seed and data_range) and the run's options."


class ModelConfig(StrictModel):
    """A backbone from BACKBONES inside a physics-aware wrapper from WRAPPERS (or none)."""

    backbone: BackboneConfig = Field(default={"name": "unet", "depth": 2, "width": 16}, validate_default=True,
                                     description="the network (in and out channels follow the data)")
    wrapper: WrapperConfig = Field(default={"name": "auto"}, validate_default=True,
                                   description="how the network sees the physics: auto is none for denoising, "
                                   "back-projection (filtered for tomography) otherwise")
    pretrained: str | None = Field(None, description="start from these weights: a shipped pretrained network's name "
                                   "(selfinv info lists them; backbone and wrapper then become its architecture) or "
                                   "a checkpoint of the same model (selfinv finetune sets it)")


class Config(StrictModel):
    """A training run (module docstring)."""

    data: DataConfig = Field(default_factory=DataConfig, description="where the data come from")
    physics: PhysicsConfig = Field(default={"name": "denoising"}, validate_default=True,
                                   description="the forward operator A and its parameters")
    noise: NoiseConfig | None = Field(default={"name": "gaussian", "sigma": 0.1}, validate_default=True,
                                      description="the noise model the losses assume, levels in normalised units; "
                                      "{name: unknown} for real data of unknown noise; null: noiseless (or a "
                                      "measurement set's recorded noise)")
    loss: LossConfig = Field(default={"name": "sure"}, validate_default=True, description="the training loss")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the network")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="the optimisation and the run")
    seed: int = Field(0, description="one integer for the data, the operators, the initialisation and the training draws")
