"""``selfinv config init --task ct|mri --measurements FILE``: a commented config that trains on one real scan as is.

* ``--task ct``: an HTC2022 fan-beam sinogram (``.mat``, v5 or v7.3; :mod:`selfinv.data.htc2022`). The ``data`` and
  ``physics`` sections are :func:`~selfinv.data.htc2022.htc2022_config`'s: the sinogram ``<struct>.sinogram`` read
  detectors x angles, whole, and the :class:`~selfinv.physics.FanBeamTomography` of the file's ``parameters``
  written out (each value commented with the field it comes from), on a 128-pixel grid over the challenge's field
  of view (the challenge's grid is 512; the operator costs about 4x per doubling). Default loss: equivariant
  imaging with its measurement-consistency term (``ei``, ``consistency: mc``, no noise model needed) under
  rotations by about the scan's angular range, which stand in for the angles a limited-angle scan lacks; the
  network is a small U-Net inside a filtered back-projection wrapper.
* ``--task mri``: k-space, a BART ``.cfl``/``.hdr`` or a fastMRI ``.h5`` (:func:`~selfinv.data.kspace.read_kspace`).
  Multi-coil k-space (coil dimension > 1) gives the SENSE operator ``multicoil_mri`` with ESPIRiT coil maps
  estimated from each measurement (``coil_maps: espirit``), single-coil k-space the ``mri`` operator; the mask is
  the zeros of the k-space either way. Default loss: splitting (SSDU: acquired k-space locations held out, all coils
  together); the network is a small DnCNN (no batch normalisation) unrolled in MoDL steps (``wrapper: unrolled``).

Both validate within the scan (``data.val_fraction: 0``, ``data.val_holdout``: a share of the acquired entries, the
k-space samples or sinogram bins, never seen in training; zero-shot validation as in ZS-SSL). The noise section
follows the loss: ``null`` for a loss that reads no noise model (what ``check`` then judges), ``{name: unknown}``
for one that tolerates unknown noise, else the first model the loss supports at a guessed level.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from selfinv.cli.templates import (
    _UNET,
    _flow,
    _run_name,
    _v,
    check_loss,
    loss_section,
    supported_noise,
    training_section,
)
from selfinv.config import registry_fields
from selfinv.losses import LOSSES

__all__ = ["SCAN_LOSSES", "ct_scan", "mri_scan", "render_scan"]

#: the tasks whose ``--measurements`` is one scan file, and their default losses
SCAN_LOSSES = {"ct": "ei", "mri": "splitting"}

#: the default reconstruction grid of an HTC2022 scan (the challenge's is 512)
CT_IMG_SIZE = 128

#: the unrolled network of k-space scans (BENCHMARKS.md § Real multi-coil MRI): MoDL, 5 iterations of a shared
#: denoiser and 5 conjugate-gradient data-consistency steps, from A^H y; L = 1 (a 0/1 mask, unit-RSS coil maps, the
#: orthonormal FFT), so no power iteration per call
MRI_WRAPPER = {"name": "unrolled", "iterations": 5, "mode": "modl", "cg_iterations": 5, "init": "adjoint", "lipschitz": 1.0}
#: its denoiser: a DnCNN without batch normalisation (one scan per batch: the running statistics of batch
#: normalisation do not match a single image, -1.4 dB in the support on the real slice at 40 steps)
MRI_BACKBONE = {"name": "dncnn", "depth": 5, "width": 16, "batch_norm": False}

#: the comments of the fan-beam arguments: the file's fields they come from
_CT_FIELDS = {
    "n_detectors": "parameters.numDetectorsPost",
    "source_distance": "parameters.distanceSourceOrigin",
    "detector_distance": "parameters.distanceSourceDetector",
    "detector_spacing": "parameters.pixelSizePost (the binned detector pixel)",
}


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _arc(angles: np.ndarray) -> float:
    """The angular range (degrees) an ordered set of projection angles covers: the circle less its largest gap,
    plus one angular step."""
    a = np.unique(np.mod(angles, 360.0))
    if a.size < 2:
        return 0.0
    gaps = np.diff(np.concatenate([a, a[:1] + 360.0]))
    return float(min(360.0, 360.0 - gaps.max() + np.median(np.diff(a))))


def _not_a_file(path: Path) -> str:
    return "a folder, not one scan file (folders of raw frames are --task denoising's)" if path.is_dir() else "no such file"


def ct_scan(measurements: str, img_size: int = CT_IMG_SIZE) -> dict[str, Any]:
    """What the CT template needs of an HTC2022 file: ``config`` (the ``data`` and ``physics`` sections of
    :func:`~selfinv.data.htc2022.htc2022_config`), ``n_angles``, ``first``/``last`` angle and ``arc`` (degrees).
    Anything else is one ``ValueError`` line naming the file and what was expected."""
    from selfinv.data.htc2022 import htc2022_config

    path = Path(measurements)
    expected = ("an HTC2022 sinogram (.mat, v5 or v7.3, holding a struct CtDataLimited or CtDataFull with fields "
                "sinogram and parameters)")
    if not path.is_file():
        raise ValueError(f"config init: {measurements}: {_not_a_file(path)}; --task ct --measurements takes {expected}")
    if path.suffix.lower() != ".mat":
        raise ValueError(f"config init: {path.name}: expected {expected}; for other sinograms write data.source: "
                         "measurements and the physics section yourself (docs/config.md)")
    try:
        config = htc2022_config(path, img_size)
    except ValueError as e:
        raise ValueError(f"config init: {e}") from None
    config["data"]["path"] = measurements
    angles = np.asarray(config["physics"]["angles"])
    return {"config": config, "n_angles": int(angles.size), "first": float(angles[0]), "last": float(angles[-1]),
            "arc": _arc(angles)}


def mri_scan(measurements: str) -> dict[str, Any]:
    """What the MRI template needs of a k-space file: ``path`` (the file to read; a BART base name's ``.cfl``),
    ``n`` (slices), ``coils``, ``shape`` (H, W), ``sampled`` (the acquired share of the first slice), ``fastmri``
    (an ``.h5`` read as its ``kspace``). A file that holds no k-space is one ``ValueError`` line naming it."""
    from selfinv.data.array_formats import h5_datasets, h5_open
    from selfinv.data.bart import cfl_paths
    from selfinv.data.kspace import read_kspace
    from selfinv.data.physics_params import mask_from_zeros

    path = Path(measurements)
    expected = "k-space: a BART .cfl/.hdr pair or a fastMRI .h5 (its kspace dataset)"
    suffix = path.suffix.lower()
    bart = suffix in (".cfl", ".hdr") or (not path.exists() and cfl_paths(path)[0].is_file())
    if not bart and not path.is_file():
        raise ValueError(f"config init: {measurements}: {_not_a_file(path)}; --task mri --measurements takes {expected}")
    if not bart and suffix not in (".h5", ".hdf5"):
        raise ValueError(f"config init: {path.name}: expected {expected}; for other files write data.source: "
                         "measurements, data.key and the physics section yourself (docs/config.md)")
    n = None
    try:
        if not bart:
            with h5_open(path) as f:
                names = h5_datasets(f)
                if "kspace" not in names:
                    raise ValueError(f"{path.name}: no kspace dataset (it holds {names}); expected {expected}")
                n = int(f["kspace"].shape[0])
            k = read_kspace(path, slices=[0])
        else:
            k = read_kspace(path)
    except ValueError as e:
        raise ValueError(f"config init: {e}") from None
    if bart and suffix not in (".cfl", ".hdr"):  # a BART base name: the data set reads the .cfl
        measurements = str(cfl_paths(path)[1])
    return {"path": measurements, "n": n if n is not None else int(k.shape[0]), "coils": int(k.shape[1]), "shape": tuple(k.shape[-2:]),
            "sampled": float(mask_from_zeros(k[:1]).float().mean()), "fastmri": not bart}


def _line(text: str, comment: str) -> str:
    """``text`` and its comment at column 30 (or one space after a longer text)."""
    return f"{text}{' ' * max(1, 30 - len(text))}# {comment}"


def _noise_section(add, loss: str) -> None:
    """The noise section of a scan for ``loss`` (module docstring), with why."""
    info = LOSSES[loss].example().info
    if info.noise_models is None and not info.unknown_separable_noise:
        add("# The loss reads no noise model (its consistency term fits y as measured): null (noiseless) is how check")
        add("# judges it. A noise-aware loss needs one, e.g. {name: gaussian, sigma: 0.01}; NOISE_MODELS.")
        add("noise: null")
    else:
        noise = supported_noise(info, {"name": "unknown"})
        why = "real noise of unknown law and level (the loss tolerates it)" if noise["name"] == "unknown" else \
            "a guess: the loss needs the noise model and its level (normalised units)"
        add(_line(f"noise: {_flow(noise)}", why))
    add("")


def _header(add, task: str, loss: str, measurements: str, lines: list[str], check: list[str]) -> None:
    what = "CT reconstruction from your sinogram" if task == "ct" else "MRI reconstruction from your k-space"
    add(f"# selfinv config: {what} (no ground truth) in")
    add(f"#   {measurements}")
    for line in lines:
        add(f"# {line}")
    add(f"# Generated by `selfinv config init --task {task} --measurements PATH --loss {loss}`.")
    for line in check:
        add(f"# {line}")
    add("# Train:                                        selfinv train THIS.yaml   (--set training.max_steps=20 for a trial)")
    add("# Reconstruct:                                  selfinv reconstruct RUN_DIR/best.pt PATH -o OUT/")
    add("")


def _validation(add, what: str) -> None:
    add("  val_fraction: 0.0           # 0: validation within each measurement (a single scan validates so anyway)")
    add("  val_holdout: 0.2            # validation: this share of the acquired entries, held out at random and never")
    add(f"                              # seen in training ({what}); the loss on them scores the model (ZS-SSL)")
    add("  normalization: auto         # the 99.5th percentile of the back-projection becomes 1; stored in the checkpoint")
    add("                              # and undone on output")
    add("  data_range: 1.0             # of the normalised images, for PSNR and SSIM")


def _model(add, loss: str, wrapper: dict, backbone: dict | None = None) -> None:
    cls = LOSSES[loss]
    backbone = cls.default_backbone or backbone or _UNET
    wrapper = {"name": "none"} if cls.needs_backbone else wrapper  # such losses take the network bare
    add("model:")
    add(f"  backbone: {_flow(backbone)}   # BACKBONES: unet, dncnn, drunet, ...")
    add(f"  wrapper: {_flow(wrapper)}   # backprojection | unrolled | none | auto")
    add("")


def _ct(add, loss: str, measurements: str) -> None:
    scan = ct_scan(measurements)
    data, physics = scan["config"]["data"], scan["config"]["physics"]
    arc = scan["arc"]
    n_rot = max(4, math.ceil(360.0 / arc - 1e-6)) if arc > 0 else 4
    transform = {"name": "rotate", "n": n_rot}
    limited = arc < 180.0
    _header(add, "ct", loss, measurements, [
        f"An HTC2022 fan-beam sinogram ({data['key'].split('.')[0]}): {scan['n_angles']} angles from "
        f"{_fmt(scan['first'])} to {_fmt(scan['last'])} degrees",
        f"({_fmt(arc)} degrees covered{', a limited-angle scan' if limited else ''}), {physics['n_detectors']} "
        "detector bins.",
    ], [
        "Check it (the losses that can learn from it): selfinv check THIS.yaml --set data.img_size=16",
        "  (its rank tests run on the whole grid: hours at 128 x 128, minutes on the central 16 x 16 pixels)",
    ])
    add("data:")
    add("  source: measurements        # your measurements y (no ground truth needed)")
    add(f"  path: {_v(measurements)}")
    add(_line(f"  key: {data['key']}", "the file's sinogram (angles x detectors), read detectors x"))
    add(_line(f"  axes: {data['axes']}", "angles: (1, n_detectors, n_angles), the operator's layout"))
    add(_line(f"  img_size: {data['img_size']}", "the reconstruction grid over the challenge's field of view; the"))
    add(_line("", "challenge's grid is 512 (scale physics.pixel_size with it); A costs ~4x per doubling"))
    add("  patch_size: null            # sinograms train whole (a crop of a sinogram is no measurement of a crop)")
    _validation(add, "sinogram bins")
    add("")
    fov = physics["pixel_size"] * data["img_size"]
    add("physics:                      # the scan's geometry, from the file's parameters (lengths in mm)")
    add("  name: fanbeam_tomography    # flat-detector fan beam (ASTRA fanflat): the central slice of the cone-beam scan")
    add(f"  angles: {_angles(physics['angles'])}")
    add("                              # parameters.angles (degrees)")
    for k, field in _CT_FIELDS.items():
        add(_line(f"  {k}: {_v(physics[k])}", field))
    add(_line(f"  pixel_size: {_fmt(physics['pixel_size'])}", "pixelSizePost / (distanceSourceDetector / distanceSourceOrigin)"))
    add(_line("", f"x 512 / data.img_size: {data['img_size']} pixels over the challenge's {_fmt(round(fov, 2))} mm"))
    add("")
    _noise_section(add, loss)
    if limited and registry_fields("loss", LOSSES[loss]).get("transform") is ...:
        add(f"# Rotations by 360/{n_rot} degrees: {n_rot} copies of the {_fmt(arc)}-degree arc cover every direction, the")
        add("# angles this limited-angle scan lacks (the images' invariance to rotations stands in for them).")
    given = _consistency(loss)
    if "weight" in registry_fields("loss", LOSSES[loss]):  # EI, REI, MOI: the weight of their own prior term
        given["weight"] = (100.0, "lambda of its own term (EI paper: 100 for CT, whose y is large)")
    loss_section(add, loss, transform, incomplete=True, given=given)
    _model(add, loss, {"name": "backprojection", "init": "fbp"})
    training_section(add, f"{_run_name(measurements)}-{loss}", epochs=300, batch_size=1,
                     epochs_comment="one scan: one step per epoch")


def _consistency(loss: str) -> dict[str, tuple[Any, str]]:
    """A loss's ``consistency`` argument, written out at its default (it decides what the loss needs of the noise)."""
    default = registry_fields("loss", LOSSES[loss]).get("consistency")
    if not isinstance(default, str):
        return {}
    return {"consistency": (default, "the term on y: mc ||y - A x||^2 (no noise model), sure or r2r (a noise model)")}


def _angles(angles: list[float], per_line: int = 12) -> str:
    """A YAML flow list of the angles, ``per_line`` to a line."""
    items = [_fmt(a) for a in angles]
    rows = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n           ").join(rows) + "]"


def _mri(add, loss: str, measurements: str) -> None:
    scan = mri_scan(measurements)
    multi = scan["coils"] > 1
    h, w = scan["shape"]
    slices = f"{scan['n']} slices" if scan["n"] > 1 else "one slice"
    _header(add, "mri", loss, measurements, [
        f"{'Multi' if multi else 'Single'}-coil k-space: {slices} of {h} x {w}"
        + (f", {scan['coils']} coils" if multi else "") + f", {100 * scan['sampled']:.1f} % of k-space acquired"
        + (" (first slice)" if scan["n"] > 1 else "") + "; unsampled locations are zeros.",
    ], [
        "Check it (the losses that can learn from it): selfinv check THIS.yaml" + (
            "  (slow: its rank tests of the SENSE" if multi else ""),
    ] + (["  operator run on all the pixels of the slice: hours for a whole multi-coil slice)"] if multi else []))
    add("data:")
    add("  source: measurements        # your measurements y (no ground truth needed)")
    add(f"  path: {_v(scan['path'])}")
    if scan["fastmri"]:
        add("  key: kspace                 # the fastMRI file's k-space (slices, coils, H, W), not its reconstruction")
    add("  patch_size: null            # k-space trains whole (a crop of k-space is no measurement of a crop)")
    _validation(add, "k-space locations, all coils together")
    add("")
    add("physics:                      # an operator of selfinv.physics.OPERATORS and its arguments")
    if multi:
        add("  name: multicoil_mri         # SENSE: y_c = M F (S_c x), the coils share the mask")
        add("  coil_maps: espirit          # estimated by ESPIRiT from each measurement's fully sampled centre")
        add("                              # ({name: espirit, calib_size: 24}), or a file of maps (BART maps.cfl)")
    else:
        add("  name: mri                   # single-coil: y = M F x")
    add("  # mask: not given: the zeros of the k-space" + (" (acquired where any coil is non-zero)" if multi else "")
        + ", with a warning")
    add("")
    _noise_section(add, loss)
    if loss == "splitting":
        add("# Splitting (SSDU): each step the network sees a random 60 % of the acquired k-space locations (all coils")
        add("# together) and is scored on the others.")
    given = ({"consistency": ("none", "SSDU: only the held-out k-space points are scored (as measured in BENCHMARKS.md)")}
             if loss == "splitting" else _consistency(loss))
    loss_section(add, loss, {"name": "rotate", "n": 4}, incomplete=True, given=given)
    add("# An unrolled network (MoDL): 5 iterations of the shared denoiser, each followed by 5 conjugate-gradient steps")
    add("# of data consistency; lipschitz 1 (= ||A||^2 for a 0/1 mask and unit-RSS coil maps) skips a power iteration.")
    _model(add, loss, MRI_WRAPPER, MRI_BACKBONE)
    training_section(add, f"{_run_name(measurements)}-{loss}", epochs=300 if scan["n"] == 1 else 50, batch_size=1,
                     epochs_comment="one scan: one step per epoch (a new split of its k-space each step)"
                     if scan["n"] == 1 else "one step per slice and epoch")


def render_scan(task: str, loss: str | None, measurements: str, volume: bool = False) -> str:
    """The commented YAML config that trains on one scan (module docstring): ``task`` ``"ct"`` (an HTC2022
    ``.mat``) or ``"mri"`` (k-space: BART ``.cfl``/``.hdr``, fastMRI ``.h5``) with ``loss`` (default
    :data:`SCAN_LOSSES`); ``volume`` is refused (for raw frames only)."""
    if task not in SCAN_LOSSES:
        raise ValueError(f"config init: --task {task} takes no scan file; scans are for {', '.join(SCAN_LOSSES)}")
    if volume:
        raise ValueError(f"config init: --volume is for --task denoising (ZYX stacks of raw frames), not {task} scans")
    loss = loss or SCAN_LOSSES[task]
    check_loss(task, loss)
    L: list[str] = []
    (_ct if task == "ct" else _mri)(L.append, loss, measurements)
    L.append("seed: 0")
    return "\n".join(L) + "\n"
