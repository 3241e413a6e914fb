r"""The Helsinki Tomography Challenge 2022 (HTC2022) sinograms: :func:`read_htc2022` and their fan-beam operator.

An HTC2022 ``.mat`` file (MATLAB v5 through scipy, v7.3 / HDF5 through h5py: :mod:`selfinv.data.matlab`
reads both in MATLAB's layout) holds one struct, ``CtDataLimited`` or ``CtDataFull``, with the fields

* ``sinogram``: (n_angles, n_detectors) absorption line integrals :math:`-\log(I/I_0)` (a v7.3 file stores
  it transposed, 560 x n_angles, in HDF5's row-major order; it comes out as MATLAB's n_angles x 560);
* ``parameters``: the scan, among others ``angles`` (degrees), ``distanceSourceOrigin`` (410.66 mm),
  ``distanceSourceDetector`` (553.74 mm), ``numDetectorsPost`` (560), ``pixelSizePost`` (0.2 mm, the
  binned detector pixel), ``geometricMagnification`` (1.348) and ``effectivePixelSizePost`` (0.1483 mm, the
  detector pixel seen at the rotation centre), ``distanceUnit`` (mm).

The geometry is a flat-detector fan beam (the files say ``Cone``: the cone-beam scanner's central slice). The
challenge reconstructs 512 x 512 images with pixels of the effective pixel size (75.9 mm across, for discs of
about 70 mm) using ASTRA's ``fanflat`` geometry, whose convention
:class:`~selfinv.physics.FanBeamTomography` follows: ``FanBeamTomography(**geometry)`` is that operator, with
distances in mm (so the images are attenuation coefficients per mm).

:func:`htc2022_measurement` gives the sinogram as the operator's (1, 1, n_detectors, n_angles) measurement with
the operator, and :func:`htc2022_config` the ``data`` and ``physics`` sections that train on a file with
``data.source: measurements`` (the sinogram read through the ``.mat`` reader as ``<struct>.sinogram`` with
``axes: XY``, the geometry written out in the ``physics`` section).

Example:
    >>> import numpy as np, pathlib, scipy.io, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.mat"
    >>> parameters = {"angles": np.arange(4) * 90.0, "distanceSourceOrigin": 410.66, "distanceSourceDetector": 553.74,
    ...               "numDetectorsPost": 8.0, "pixelSizePost": 0.2, "effectivePixelSizePost": 0.2 * 410.66 / 553.74,
    ...               "distanceUnit": "mm"}
    >>> sinogram = np.tile(np.hanning(8), (4, 1))                 # a centred object, air at the detector's edges
    >>> scipy.io.savemat(path, {"CtDataLimited": {"sinogram": sinogram, "parameters": parameters}})
    >>> sinogram, geometry = read_htc2022(path)
    >>> sinogram.shape, geometry["n_detectors"], geometry["img_size"], round(geometry["pixel_size"], 4)
    ((4, 8), 8, 512, 0.1483)
    >>> y, op = htc2022_measurement(path, img_size=64)         # y (1, 1, n_detectors, n_angles) for the operator
    >>> tuple(y.shape), op.img_size, round(op.pixel_size, 4)  # 64 pixels over the same 75.9 mm
    ((1, 1, 8, 4), 64, 1.1866)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selfinv.data._io import PathLike, _fail
from selfinv.data.matlab import read_mat_struct

if TYPE_CHECKING:  # annotations only: the operator is imported when it is built
    import torch

    from selfinv.noise import NoiseModel
    from selfinv.physics.fanbeam import FanBeamTomography

__all__ = ["HTC2022_IMG_SIZE", "htc2022_config", "htc2022_measurement", "htc2022_operator", "is_htc2022", "read_htc2022"]

#: the challenge's reconstruction grid: 512 x 512 pixels of the effective pixel size
HTC2022_IMG_SIZE = 512

#: the parameters read, by the operator argument they give
_FIELDS = {
    "source_distance": "distanceSourceOrigin",
    "detector_distance": "distanceSourceDetector",
    "detector_spacing": "pixelSizePost",
    "n_detectors": "numDetectorsPost",
}


def _scan_struct(path: Path, variables: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, fields) of the file's struct holding ``sinogram`` and ``parameters``."""
    found = [(k, v) for k, v in variables.items() if isinstance(v, dict) and {"sinogram", "parameters"} <= set(v)]
    if len(found) != 1:
        what = f"{len(found)} such structs" if found else f"none (variables: {sorted(variables)})"
        raise _fail(path, f"is not an HTC2022 scan: expected one struct with fields sinogram and parameters "
                    f"(CtDataLimited or CtDataFull), found {what}")
    return found[0]


def _number(path: Path, params: dict[str, Any], field: str) -> float:
    value = params.get(field)
    if value is None:
        raise _fail(path, f"parameters has no field {field!r} (it holds {sorted(params)})")
    try:
        out = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise _fail(path, f"parameters.{field} must be one number, got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise _fail(path, f"parameters.{field} must be a positive number, got {out!r}")
    return out


def read_htc2022(path: PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """The sinogram and the geometry of an HTC2022 ``.mat`` file (v5 or v7.3).

    Returns:
        ``(sinogram, geometry)``: the sinogram as float64 (n_angles, n_detectors) (a file storing it as
        n_detectors x n_angles is transposed), and the keyword arguments of
        :class:`~selfinv.physics.FanBeamTomography` for the challenge's 512 x 512 grid: ``angles`` (degrees,
        float64 (n_angles,)), ``img_size`` (512), ``n_detectors``, ``source_distance``, ``detector_distance``,
        ``detector_spacing`` and ``pixel_size`` (the effective pixel size, ``pixelSizePost`` divided by the
        magnification ``distanceSourceDetector / distanceSourceOrigin``), in the file's unit (mm).

    Raises:
        ValueError: one line naming the file: not a ``.mat`` scan, a missing or invalid parameter, a sinogram
            whose shape fits neither (n_angles, n_detectors) nor its transpose, or non-finite values.
    """
    return _read(Path(path))[1:]


def _read(path: Path) -> tuple[str, np.ndarray, dict[str, Any]]:
    """(struct name, sinogram, geometry) of :func:`read_htc2022`."""
    name, scan = _scan_struct(path, read_mat_struct(path))
    params = scan["parameters"]
    if not isinstance(params, dict):
        raise _fail(path, f"{name}.parameters is not a struct")
    args: dict[str, Any] = {arg: _number(path, params, field) for arg, field in _FIELDS.items()}
    n_det = args["n_detectors"]
    if n_det != int(n_det):
        raise _fail(path, f"parameters.numDetectorsPost must be an integer, got {n_det!r}")
    args["n_detectors"] = n_det = int(n_det)
    if args["detector_distance"] <= args["source_distance"]:
        raise _fail(path, "parameters.distanceSourceDetector must exceed distanceSourceOrigin")
    angles = np.asarray(params.get("angles", np.zeros(0)), dtype=np.float64).reshape(-1)
    if angles.size == 0 or not np.isfinite(angles).all():
        raise _fail(path, "parameters.angles must hold the finite projection angles (degrees)")
    sino = scan["sinogram"]
    if not isinstance(sino, np.ndarray) or sino.dtype.kind not in "iuf":
        raise _fail(path, f"{name}.sinogram is not a real numeric array")
    n_ang = angles.size
    if sino.size == n_ang * n_det and sino.ndim <= 2:
        if sino.ndim == 2 and sino.shape == (n_det, n_ang) and n_det != n_ang:
            sino = sino.T
        sino = sino.reshape(n_ang, n_det)
    else:
        raise _fail(path, f"{name}.sinogram has shape {sino.shape}, expected ({n_ang}, {n_det}) = "
                    "(angles, numDetectorsPost) or its transpose")
    sino = np.ascontiguousarray(sino, dtype=np.float64)
    if not np.isfinite(sino).all():
        raise _fail(path, f"{name}.sinogram holds NaN or infinite values")
    _check_not_truncated(path, name, sino)
    magnification = args["detector_distance"] / args["source_distance"]
    geometry = {"angles": angles, "img_size": HTC2022_IMG_SIZE, **args,
                "pixel_size": args["detector_spacing"] / magnification}
    return name, sino, geometry


#: an object whose projections still attenuate this share of the sinogram's maximum at the detector's outer bins
#: (median over the views) reaches beyond the fan; the real HTC2022 scans measure about 1 % there (air and noise)
_EDGE_SHARE = 0.1


def _check_not_truncated(path: Path, name: str, sino: np.ndarray) -> None:
    """Refuse a scan whose object extends beyond the fan: the two outermost detector bins on either side still see
    a large share of the maximum attenuation in most views (truncated projections, or a geometry that does not
    match the file: the reconstruction disc would not contain the object)."""
    peak = float(np.abs(sino).max())
    if peak == 0 or sino.shape[1] < 8:
        return
    edge = np.maximum(np.abs(sino[:, :2]).mean(1), np.abs(sino[:, -2:]).mean(1))
    share = float(np.median(edge)) / peak
    if share > _EDGE_SHARE:
        raise _fail(path, f"{name}.sinogram: the object reaches the edges of the detector (median attenuation at the "
                    f"outer bins {share:.0%} of the maximum): it lies partly outside the fan of parameters."
                    "numDetectorsPost x pixelSizePost, and truncated projections are not supported")


def is_htc2022(path: PathLike) -> bool:
    """Whether ``path`` is a ``.mat`` file that :func:`read_htc2022` reads."""
    path = Path(path)
    if path.suffix.lower() != ".mat" or not path.is_file():
        return False
    try:
        read_htc2022(path)
    except ValueError:
        return False
    return True


def htc2022_operator(geometry: dict[str, Any], img_size: int | None = None,
                     noise: NoiseModel | None = None) -> FanBeamTomography:
    """The :class:`~selfinv.physics.FanBeamTomography` of a :func:`read_htc2022` geometry on an ``img_size``
    grid (default 512) over the same field of view: the pixel size scales by 512 / ``img_size``."""
    from selfinv.physics.fanbeam import FanBeamTomography

    args = dict(geometry)
    if img_size is not None:
        args["pixel_size"] = args["pixel_size"] * args["img_size"] / img_size
        args["img_size"] = img_size
    return FanBeamTomography(**args, noise=noise)


def htc2022_measurement(path: PathLike, img_size: int | None = None,
                        noise: NoiseModel | None = None) -> tuple[torch.Tensor, FanBeamTomography]:
    """``(y, operator)``: the sinogram of an HTC2022 file as float64 (1, 1, n_detectors, n_angles) and its
    :func:`htc2022_operator`."""
    import torch

    sino, geometry = read_htc2022(path)
    return torch.from_numpy(np.ascontiguousarray(sino.T))[None, None], htc2022_operator(geometry, img_size, noise)


def htc2022_config(path: PathLike, img_size: int = HTC2022_IMG_SIZE) -> dict[str, Any]:
    """The ``data`` and ``physics`` sections of a config that trains on an HTC2022 file (``data.source:
    measurements``): the sinogram as the file's ``<struct>.sinogram`` read detectors x angles (``axes: XY``),
    whole (no patches), and the :class:`~selfinv.physics.FanBeamTomography` of :func:`htc2022_operator` on an
    ``img_size`` grid, its angles listed. Merge it into a config (``selfinv config init`` writes the rest).
    """
    path = Path(path)
    name, _, geometry = _read(path)
    scale = geometry["img_size"] / img_size
    physics = {k: v for k, v in geometry.items() if k not in ("angles", "img_size", "pixel_size")}
    physics = {"name": "fanbeam_tomography", "angles": [float(a) for a in geometry["angles"]], **physics,
               "pixel_size": geometry["pixel_size"] * scale}
    data = {"source": "measurements", "path": str(path), "key": f"{name}.sinogram", "axes": "XY",
            "img_size": img_size, "patch_size": None}
    return {"data": data, "physics": physics}
