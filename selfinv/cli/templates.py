"""``selfinv config init``: a commented YAML config per task that runs as is on the embedded photographs.

Default losses: SURE for denoising, and for the tasks with a new random operator per image (inpainting, MRI)
SURE plus an equivariance term; robust equivariant imaging (REI) for the fixed incomplete operators (CT,
deblurring, compressed sensing, demosaicing). Small, CPU-friendly defaults (32-pixel patches, a two-level U-Net of width 16, a few hundred steps), a model
per task (the U-Net alone for denoising, inside a back-projection wrapper for the incomplete operators), and
per task the transforms for equivariant imaging: rotations for MRI and CT, shifts for inpainting,
compressed sensing and demosaicing, down-scaling for deblurring. What depends on the loss is read off its
class (``info``, ``needs_backbone``, ``default_backbone``, :meth:`~selfinv.losses.Loss.example` and its
constructor's arguments), so a newly registered loss gets a template without an edit here. With
``--measurements PATH`` (denoising) the config trains on the user's raw frames instead: ``data.source:
measurements``, noise of unknown law and level, Neighbor2Neighbor (the fastest of the blind-spot family at the
same quality on the W2S frames, BENCHMARKS.md § Real measurements). For CT and MRI, ``--measurements FILE`` is one
scan (an HTC2022 sinogram, k-space), whose template is :mod:`selfinv.cli.scan_templates`'s.
"""

from __future__ import annotations

import json
import re
from typing import Any

from selfinv.config import registry_fields
from selfinv.losses import LOSSES
from selfinv.noise import NOISE_MODELS

TASKS = ("denoising", "inpainting", "mri", "ct", "deblur", "cs", "demosaic", "radio")

#: noise parameters for templates, per noise model (a loss that supports only some models gets one of them)
NOISE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gaussian": {"sigma": 0.1},
    "poisson": {"gain": 0.05},
    "poisson_gaussian": {"gain": 0.05, "sigma": 0.05},
    "gamma": {"shape": 10.0},
    "correlated_gaussian": {"sigma": 0.1, "kernel": [[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]]},
}

_UNET = {"name": "unet", "depth": 2, "width": 16}
_UNET3D = {"name": "unet3d", "depth": 2, "width": 16}

#: per task: physics, noise, equivariance transform, default loss, data and model choices
TASK_SPECS: dict[str, dict[str, Any]] = {
    "denoising": {
        "about": "Gaussian denoising (A = I) of the embedded photographs",
        "physics": {"name": "denoising"},
        "noise": {"name": "gaussian", "sigma": 0.1},
        "transform": None,
        "loss": "sure",
        "gray": True,
        "test_size": 128,
        "wrapper": {"name": "none"},
    },
    "inpainting": {
        "about": "inpainting: half of the pixels observed, a new random mask for every image",
        "physics": {"name": "inpainting", "sampler": {"name": "bernoulli_mask", "p": 0.5}},
        "noise": {"name": "gaussian", "sigma": 0.05},
        "transform": {"name": "shift"},
        "loss": "sure",
        "gray": True,
        "test_size": 64,
        "wrapper": {"name": "backprojection", "init": "adjoint"},
    },
    "mri": {
        "about": "single-coil Cartesian MRI, 4x acceleration, a new random line mask for every image "
        "(complex images made from the embedded photos; data.phase > 0 adds a smooth phase)",
        "physics": {"name": "mri", "sampler": {"name": "mri_mask", "acceleration": 4.0, "center_fraction": 0.08, "pattern": "random"}},
        "noise": {"name": "gaussian", "sigma": 0.02},
        "transform": {"name": "rotate", "n": 4},
        "loss": "sure",
        "gray": True,
        "test_size": 64,
        "wrapper": {"name": "backprojection", "init": "adjoint"},
    },
    "ct": {
        "about": "sparse-view parallel-beam CT (15 angles) of the embedded photos and the Shepp-Logan phantom",
        "physics": {"name": "tomography", "angles": 15},
        "noise": {"name": "gaussian", "sigma": 0.2},
        "transform": {"name": "rotate", "n": 4},
        "loss": "rei",
        "gray": True,
        "test_size": 32,
        "test_images": ["phantom", "camera", "coins", "moon"],
        "wrapper": {"name": "backprojection", "init": "fbp"},
    },
    "deblur": {
        "about": "deblurring: a fixed Gaussian blur (sigma 1.5 px), light noise",
        "physics": {"name": "blur", "kernel": {"kind": "gaussian", "sigma": 1.5, "size": 9}},
        "noise": {"name": "gaussian", "sigma": 0.01},
        "transform": {"name": "scale"},
        "loss": "rei",
        "gray": True,
        "test_size": 64,
        "wrapper": {"name": "backprojection", "init": "adjoint"},
    },
    "cs": {
        "about": "compressed sensing: m = 256 random Gaussian projections of 32x32 images (n = 1024)",
        "physics": {"name": "compressed_sensing", "m": 256, "kind": "gaussian"},
        "noise": {"name": "gaussian", "sigma": 0.01},
        "transform": {"name": "shift"},
        "loss": "rei",
        "gray": True,
        "test_size": 32,
        "wrapper": {"name": "backprojection", "init": "adjoint"},
    },
    "demosaic": {
        "about": "demosaicing: a Bayer RGGB colour-filter array on the RGB photographs",
        "physics": {"name": "demosaicing", "pattern": "RGGB"},
        "noise": {"name": "gaussian", "sigma": 0.02},
        "transform": {"name": "shift"},
        "loss": "rei",
        "gray": False,
        "test_size": 64,
        "wrapper": {"name": "backprojection", "init": "adjoint"},
    },
    "radio": {
        "about": "radio interferometry: the EHT 2017 array observing M87* for 12 hours at 1.3 mm (a 160 µas field), "
        "synthetic black-hole crescents, thermal noise on the visibilities",
        "physics": {"name": "radio_interferometry", "sampler": {"name": "radio_observation", "array": "eht2017"}},
        "sampler_comment": "the observation (ARRAYS: eht2017, vla_d); fixed: add duration: 4, station_dropout: 0.25 "
        "for a random one per image (MOI)",
        "noise": {"name": "gaussian", "sigma": 0.05},
        "transform": [{"name": "rotate", "degrees": [0, 360]}, {"name": "scale"}],
        "loss": "rei",
        "gray": True,
        "images": ["black_holes"],
        "test_images": ["black_holes_test"],
        "patch_size": None,
        "test_size": 64,
        "wrapper": {"name": "backprojection", "init": "cg"},
    },
}


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _v(value: Any) -> str:
    """A YAML flow value (JSON is valid YAML; simple words are left unquoted)."""
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_v(v) for v in value) + "]"
    return json.dumps(value)


def _flow(d: dict | list) -> str:
    """A YAML flow mapping (a list of mappings: a flow sequence of them, e.g. a product of transforms)."""
    if isinstance(d, list):
        return "[" + ", ".join(_flow(v) if isinstance(v, (dict, list)) else _v(v) for v in d) + "]"
    return "{" + ", ".join(f"{k}: {_v(v) if not isinstance(v, (dict, list)) else _flow(v)}" for k, v in d.items()) + "}"


def _photographs_data(add, task: str, spec: dict, pairs: bool) -> None:
    add("data:")
    add("  source: embedded            # embedded | images (a folder of ground truth to simulate from) | measurements (your y)")
    if "images" in spec:
        add(f"  images: {_v(spec['images'])}   # embedded: sky images (selfinv.data.sky.SKY_SETS: hubble_train, ...)")
    else:
        add("  images: null                # embedded: image names (null: the 14 training photographs)")
    if "images" in spec:
        add(f"  test_images: {_v(spec['test_images'])}   # evaluation images")
    elif "test_images" in spec:
        add(f"  test_images: {_v(spec['test_images'])}   # evaluation images ('phantom' = Shepp-Logan)")
    else:
        add("  test_images: null           # evaluation images (null: camera, coins, moon, astronaut)")
    add("  path: null                  # images: folder/glob of ground-truth images; measurements: a set, a folder or image files")
    add("  test_path: null             # the same for evaluation (null: the validation split)")
    add(f"  gray: {_v(spec['gray'])}{' ' * (22 - len(_v(spec['gray'])))}# embedded: luminance (1 channel) or RGB (3)")
    if task == "mri":
        add("  phase: 0.0                  # amplitude (x pi rad) of a smooth random phase added to the complex images")
    patch = spec.get("patch_size", 32)
    add(f"  patch_size: {_v(patch)}{' ' * (16 - len(_v(patch)))}# train on random square patches of this size (null: whole images)")
    add(f"  patches_per_image: {8 if patch else 1}")
    add(f"  test_size: {spec['test_size']}{' ' * (17 - len(str(spec['test_size'])))}# evaluation: central crops of this size")
    add("  val_fraction: 0.15          # share of the images held out for validation (0 or one image: a band of each)")
    add("  normalization: auto         # auto (8-bit / 255, else a robust scale) | range | none | {scale, offset}")
    add("  data_range: 1.0             # of the normalised images, for PSNR and SSIM")
    add(f"  pairs: {_v(pairs)}{' ' * (21 - len(_v(pairs)))}# simulate a second noisy measurement (Noise2Noise)")


def _measurements_header(add, loss: str, measurements: str) -> None:
    add("# selfinv config: denoising your raw frames (no ground truth, noise of unknown law and level) in")
    add(f"#   {measurements}")
    add(f"# Generated by `selfinv config init --task denoising --measurements PATH --loss {loss}`.")
    add("# Check it (the losses that can learn from it): selfinv check THIS.yaml")
    add("# Train:                                        selfinv train THIS.yaml   (--set training.max_steps=20 for a trial)")
    add("# Denoise files into a new folder:              selfinv reconstruct RUN_DIR/best.pt FILES... -o OUT/")
    add("")


def _measurements_data(add, measurements: str, pairs: bool, volume: bool) -> None:
    add("data:")
    add("  source: measurements        # your measurements y (no ground truth needed)")
    add(f"  path: {_v(measurements)}   # a folder, a glob (raw/*.tif) or one file")
    if volume:
        add("  axes: ZYX                   # volumes: Z slices are a volume axis (a 3-D network below)")
        add("  patch_depth: 32             # 3-D patches of patch_depth x patch_size x patch_size")
    else:
        add("  axes: null                  # the files' layout: YX, CYX, TYX (frames), ZYX (slices), ... (null: TIFF metadata)")
    add(f"  pairs: {_v(pairs)}{' ' * (21 - len(_v(pairs)))}# true with T stacks (axes TYX): frames 2k, 2k+1 are Noise2Noise pairs")
    add("  pairs_path: null            # second raw frames of the same fields of view (Noise2Noise), matched by name")
    add("  test_path: null             # measurements for evaluation (null: the validation split)")
    add(f"  patch_size: {32 if volume else 64}              # new random patches of this size every epoch")
    add("  val_fraction: 0.15          # share of the measurements held out for validation (0 or one file: a band of each)")
    add("  normalization: auto         # auto (8-bit / 255, else a robust scale) | range | none | {scale, offset}; stored")
    add("                              # in the checkpoint and undone on output")
    add("  data_range: 1.0             # of the normalised images, for PSNR and SSIM")


def stack_layout(measurements: str) -> str | None:
    """The TIFF axes string (``ZYX``, ``QYX``, ...) of the first file of ``measurements`` when it is a stack of
    2-D slices, else None (not a TIFF, one image, unreadable: the config's own checks report those later)."""
    from pathlib import Path

    import tifffile

    from selfinv.data.sources import image_files

    try:
        files = image_files(Path(measurements), measurements, "--measurements")
        first = next((f for f in files if f.suffix.lower() in (".tif", ".tiff")), None)
        if first is None:
            return None
        with tifffile.TiffFile(first) as t:
            axes = t.series[0].axes.replace("S", "")
    except (ValueError, OSError, IndexError, tifffile.TiffFileError):
        return None
    return axes if len(axes) == 3 and axes.endswith("YX") else None


def _run_name(measurements: str) -> str:
    """A run folder name from a measurements path: its last part without wildcards or extension."""
    parts = [p for p in re.split(r"[\\/]", measurements) if p and not any(c in p for c in "*?[")]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", parts[-1].rsplit(".", 1)[0] if parts else "measurements")
    return name or "measurements"


def check_loss(task: str, loss: str) -> None:
    """Refuse a loss that cannot work for the task (from the loss registry's properties)."""
    if loss not in LOSSES:
        raise ValueError(f"config init: --loss {loss!r} is not one of {', '.join(LOSSES)}")
    info = LOSSES[loss].example().info
    if not info.general_operator and task != "denoising":
        raise ValueError(f"config init: {loss} is defined for denoising (A = I) only; choose another loss for {task}")


def loss_section(add, loss: str, transform: dict, incomplete: bool, sampled: bool = False,
                 given: dict[str, tuple[Any, str]] | None = None) -> None:
    """The ``loss`` section for ``loss`` (a name of LOSSES): its required arguments (``transform``: the group for
    equivariant imaging), ``given`` arguments written out with a comment (``{name: (value, comment)}``; ``weight``
    replaces the default 1.0), the other arguments commented out with their defaults, and for a measurement-domain
    loss of an ``incomplete`` operator an equivariance term (the random operators of a ``sampled`` physics make its
    risk identifiable already)."""
    cls = LOSSES[loss]
    info = cls.example().info
    fields = registry_fields("loss", cls)  # from the class: a loss registered after the schema was built works too
    given = dict(given or {})
    add(f"loss:                         # {', '.join(LOSSES)}")
    add(f"  name: {loss}")
    weight = given.pop("weight", None)
    add("  weight: 1.0" if weight is None else f"  weight: {_v(weight[0])}{' ' * max(1, 20 - len(_v(weight[0])))}# {weight[1]}")
    required = {k: v for k, v in fields.items() if v is ... and k not in ("weight", "extra")}
    for k in required:
        if k == "transform":
            add(f"  transform: {_flow(transform)}   # group for equivariant imaging: shift, rotate, reflect, scale")
        else:
            add(f"  {k}: null")
    for k, (v, comment) in given.items():
        value = _flow(v) if isinstance(v, dict) else _v(v)
        add(f"  {k}: {value}{' ' * max(1, 26 - len(k) - len(value))}# {comment}")
    optional = {k: v for k, v in fields.items() if v is not ... and k not in ("weight", "extra", *given)}
    if optional:
        add(f"  # arguments of {cls.__name__} (defaults; uncomment to change):")
        for k, v in optional.items():
            add(f"  # {k}: {_v(v) if not isinstance(v, dict) else _flow(v)}")
    if incomplete and info.risk == "measurement":
        if sampled:
            add("  # The random operators (physics.sampler) make the measurement risk identifiable; an equivariance")
            add("  # term adds the invariance of the images to the group (remove it to compare).")
        else:
            add("  # A measurement-domain loss does not see the nullspace of A: an equivariance term adds it.")
        add("  extra:")
        add(f"    - {{name: ei, transform: {_flow(transform)}, consistency: none, renoise: true, weight: 1.0}}")
    else:
        add("  extra: []                   # more terms added to the loss, each {name: ..., weight: ..., ...}")
    add("")


def training_section(add, run_name: str, epochs: int = 20, batch_size: int = 8, epochs_comment: str = "") -> None:
    """The ``training`` section, its run folder ``runs/<run_name>``."""
    add("training:")
    add(f"  epochs: {epochs}" + (f"{' ' * max(1, 20 - len(str(epochs)))}# {epochs_comment}" if epochs_comment else ""))
    add(f"  batch_size: {batch_size}")
    add("  lr: 0.001")
    add("  scheduler: cosine           # cosine | step | none")
    add("  max_steps: null             # a budget in optimisation steps (null: epochs decide)")
    add("  checkpoint_every: null      # also write last.pt every this many steps")
    add("  patience: null              # early stopping after this many epochs without a better validation loss")
    add("  device: null                # null: cuda, then mps, then cpu")
    add(f"  run_dir: runs/{run_name}  # never overwritten; continue it with --resume")
    add("")


def supported_noise(info, noise: dict) -> dict:
    """``noise`` (a noise section) when the loss of ``info`` supports it, else its first supported model with the
    template levels of :data:`NOISE_DEFAULTS`."""
    if info.noise_models is None or NOISE_MODELS[noise["name"]] in info.noise_models:
        return noise
    name = next(k for k, c in NOISE_MODELS.items() if c in info.noise_models)
    return {"name": name, **NOISE_DEFAULTS.get(name, {})}


#: the loss of ``config init --measurements``: noise of unknown law and level, one frame per field of view
MEASUREMENTS_LOSS = "neighbor2neighbor"


def render(task: str, loss: str | None = None, measurements: str | None = None, volume: bool = False) -> str:
    """The commented YAML config for ``task`` trained with ``loss`` (default: the task's); with ``measurements``
    (a folder, glob or file of raw frames; denoising only: one CT or MRI scan is
    :func:`~selfinv.cli.scan_templates.render_scan`'s) it trains on them, noise unknown; with ``volume`` the files
    are ZYX volumes and the network is 3-D (``unet3d`` on 3-D patches)."""
    if task not in TASK_SPECS:
        raise ValueError(f"config init: --task {task!r} is not one of {', '.join(TASKS)}")
    if volume and measurements is None:
        raise ValueError("config init: --volume is for --measurements (ZYX volumes of your own)")
    if measurements is not None and task != "denoising":
        raise ValueError(f"config init: --measurements is for --task denoising (raw frames), ct (an HTC2022 .mat "
                         f"sinogram) or mri (k-space: BART .cfl/.hdr, fastMRI .h5); for {task}, set data.source: "
                         "measurements and data.path in the config (docs/config.md)")
    spec = TASK_SPECS[task]
    loss = loss or (MEASUREMENTS_LOSS if measurements is not None else spec["loss"])
    check_loss(task, loss)
    cls = LOSSES[loss]
    info = cls.example().info
    noise = supported_noise(info, {"name": "unknown"} if measurements is not None else dict(spec["noise"]))
    pairs = not info.single_y
    incomplete = task != "denoising"
    transform = spec["transform"] or {"name": "shift"}
    sampled = "sampler" in spec["physics"] and "sampler_comment" not in spec  # radio: the sampler draws one fixed operator

    L: list[str] = []
    add = L.append
    if measurements is not None:
        _measurements_header(add, loss, measurements)
        _measurements_data(add, measurements, pairs, volume)
    else:
        add(f"# selfinv config: {spec['about']}.")
        where = ("sky images that selfinv makes (selfinv.data.sky" if "images" in spec
                 else "the photographs embedded in scikit-image (fixed train/test split")
        add(f"# Generated by `selfinv config init --task {task} --loss {loss}`; runs as is on {where}).")
        add("# Train:                                          selfinv train THIS.yaml")
        add("# Override any key on the command line:           selfinv train THIS.yaml --set training.epochs=50")
        add("# Check which losses can learn from this physics: selfinv check THIS.yaml")
        add("")
        add("# Your own measurements, no ground truth (see docs/config.md for every key):")
        add("#   data: {source: measurements, path: raw/*.tif}   and   noise: {name: unknown}   (real noise of unknown level)")
        add("")
        _photographs_data(add, task, spec, pairs)
    add("")
    add("physics:                      # an operator of selfinv.physics.OPERATORS and its arguments")
    phys = spec["physics"]
    add(f"  name: {phys['name']}")
    for k, v in phys.items():
        if k in ("name", "sampler"):
            continue
        add(f"  {k}: {_flow(v) if isinstance(v, dict) else _v(v)}")
    if "sampler" in phys:
        add(f"  sampler: {_flow(phys['sampler'])}   # {spec.get('sampler_comment', 'a new operator per image (SAMPLERS)')}")
    add("")
    add(f"noise: {_flow(noise)}   # NOISE_MODELS; levels in normalised units; {{name: unknown}} for real noise")
    add("")
    loss_section(add, loss, transform, incomplete, sampled=sampled)
    add("model:")
    backbone = cls.default_backbone or _UNET
    if volume:
        backbone = {**backbone, "name": "unet3d"} if backbone["name"] == "unet" else _UNET3D
    wrapper = {"name": "none"} if cls.needs_backbone else spec["wrapper"]  # such losses take the network bare
    add(f"  backbone: {_flow(backbone)}   # BACKBONES: unet, dncnn, drunet, ...")
    add(f"  wrapper: {_flow(wrapper)}   # backprojection | unrolled | none | auto")
    add("")
    run_name = f"{_run_name(measurements)}-{loss}" if measurements is not None else f"{task}-{loss}"
    training_section(add, run_name)
    add("seed: 0")
    return "\n".join(L) + "\n"
