r"""Raw multi-coil k-space as a measurement set for :class:`~selfinv.physics.MultiCoilMRI` (SENSE).

:func:`read_kspace` reads k-space as (N, C, H, W) complex64 (N slices, C coils) from the files scanners and
reconstruction toolboxes write:

* BART ``.cfl``/``.hdr`` (:mod:`~selfinv.data.bart`; dims read, phase 1, phase 2 → H, W and slices, dim 3 → coils,
  dims ≥ 5 → slices, as :func:`~selfinv.data.readers.read_image` lays BART files out);
* fastMRI multi-coil ``.h5`` (:func:`~selfinv.data.readers.read_fastmri`): the ``kspace`` dataset of documented
  layout (slices, coils, H, W) complex64, k-space centre in the middle (fastMRI's ``fft2c`` convention, the same
  as :func:`selfinv.physics.fft2c`); ``slices`` reads some of them. Single-coil files give C = 1;
* any array :func:`~selfinv.data.readers.read_image` reads (``.npy``/``.npz``/``.mat``/``.h5`` with ``key``).

:func:`kspace_dataset` turns k-space into a :class:`~selfinv.data.MeasurementDataset`: the mask is where any coil
is non-zero (unsampled locations are stored as zeros; or give it), the coil maps are estimated per slice by
ESPIRiT (:func:`~selfinv.physics.espirit_maps`) or given, and the set is normalised like every measurement set
(``"auto"``: the 99.5th percentile of :math:`|A^H y|` becomes 1, :func:`~selfinv.data.sources.auto_normalization`).
In a config the same is ``data: {source: measurements, path: ksp.cfl}`` with
``physics: {name: multicoil_mri, coil_maps: espirit}``.

Example:
    >>> import numpy as np, pathlib, tempfile, torch
    >>> from selfinv.data.bart import write_cfl
    >>> k = np.zeros((1, 16, 16, 4), np.complex64)                         # BART: 1 x 16 x 16, 4 coils
    >>> k[0, 4:12, 4:12] = np.random.default_rng(0).standard_normal((8, 8, 4))
    >>> base = pathlib.Path(tempfile.mkdtemp()) / "ksp"
    >>> write_cfl(base, k)
    >>> read_kspace(base.with_suffix(".cfl")).shape
    torch.Size([1, 4, 16, 16])
    >>> ds = kspace_dataset(base.with_suffix(".cfl"), coil_maps=torch.ones(1, 4, 16, 16, dtype=torch.complex64) / 2)
    >>> ds.y.shape, float(ds.physics_template.mask.mean())
    (torch.Size([1, 4, 16, 16]), 0.25)
"""

from __future__ import annotations

import numpy as np
import torch

from selfinv.data._io import PathLike
from selfinv.data.array_formats import h5_datasets, h5_open
from selfinv.data.bart import cfl_paths
from selfinv.data.datasets.measured import MeasurementDataset
from selfinv.data.normalization import Normalization
from selfinv.data.physics_params import mask_from_zeros
from selfinv.data.readers import read_fastmri, read_image, split_key
from selfinv.data.sources import auto_normalization
from selfinv.noise import NoiseModel
from selfinv.physics.coil_maps import espirit_maps
from selfinv.physics.multicoil_mri import MultiCoilMRI

__all__ = ["kspace_dataset", "read_kspace"]


def _is_fastmri(path) -> bool:
    with h5_open(path) as f:
        return "kspace" in h5_datasets(f)


def read_kspace(path: PathLike, key: str | None = None, slices=None) -> torch.Tensor:
    """K-space of a file as (N, C, H, W) complex64 (module docstring): BART ``.cfl``/``.hdr``, a fastMRI ``.h5``
    (its ``kspace``; ``slices`` picks some, see :func:`~selfinv.data.readers.read_fastmri`), or the array ``key`` of
    any file :func:`~selfinv.data.readers.read_image` reads. Real data are refused (k-space is complex)."""
    p, key = split_key(path, key)
    suffix = p.suffix.lower()
    if suffix not in (".cfl", ".hdr") and not p.exists() and cfl_paths(p)[1].is_file():
        suffix = ".cfl"  # a BART base name (ksp for ksp.hdr + ksp.cfl)
    if suffix in (".h5", ".hdf5") and key in (None, "kspace") and p.is_file() and _is_fastmri(p):
        k = read_fastmri(p, slices=slices)["kspace"]
    else:
        if slices is not None:
            raise ValueError(f"{p.name}: slices= applies to fastMRI .h5 files; give a key or read the slices you need")
        k = read_image(cfl_paths(p)[1] if suffix in (".cfl", ".hdr") else p, key=key)
        k = k[None] if k.ndim == 3 else k
    if not np.iscomplexobj(k):
        raise ValueError(f"{p.name}: holds real data of shape {k.shape}; k-space is complex (give the k-space array "
                         "with key=, not a reconstruction)")
    return torch.from_numpy(np.ascontiguousarray(k, dtype=np.complex64))


def _as_tensor(value, what: str, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        arr = read_image(value)
        value = arr[None] if arr.ndim == 3 else arr
    t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 and not (what == "mask" and t.ndim == 2):
        raise ValueError(f"kspace_dataset: {what} must be (N|1, C, H, W), got shape {tuple(t.shape)}")
    return t.to(like.device)


def kspace_dataset(
    kspace,
    mask=None,
    coil_maps="espirit",
    *,
    key: str | None = None,
    slices=None,
    calib_size: int | None = None,
    noise: NoiseModel | None = None,
    normalization: Normalization | str = "auto",
    names: list[str] | None = None,
) -> MeasurementDataset:
    r"""A :class:`~selfinv.data.MeasurementDataset` of multi-coil k-space with its :class:`~selfinv.physics.MultiCoilMRI`.

    Args:
        kspace: (N, C, H, W) or (C, H, W) complex k-space (array or tensor), or a file :func:`read_kspace` reads.
        mask: the sampled locations, (H, W) or (N|1, 1|C, H, W); default: where any coil is non-zero.
        coil_maps: ``"espirit"`` (default: :func:`~selfinv.physics.espirit_maps` of each slice, with
            ``calib_size``), an array or tensor (N|1, C, H, W), or a file (e.g. BART ``maps.cfl``).
        key, slices: which array of the file, which slices of a fastMRI file (:func:`read_kspace`).
        calib_size: ESPIRiT's calibration square (default: the fully sampled centre, at most 24).
        noise: the noise model of the operator (None: unknown to the set).
        normalization: ``"auto"`` (scale only: the 99.5th percentile of :math:`|A^H y|` becomes 1), ``"none"`` or a
            :class:`~selfinv.data.Normalization` (a scale).
        names: one name per slice (default: the file's name with the slice index).
    """
    where = "kspace_dataset"
    if isinstance(kspace, (str, bytes)) or hasattr(kspace, "__fspath__"):
        stem = split_key(kspace, key)[0].stem
        y = read_kspace(kspace, key=key, slices=slices)
        names = names or ([stem] if y.shape[0] == 1 else [f"{stem}[{i}]" for i in range(y.shape[0])])
    else:
        y = kspace if isinstance(kspace, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(kspace))
        y = y[None] if y.ndim == 3 else y
    if y.ndim != 4 or not y.is_complex():
        raise ValueError(f"{where}: kspace must be complex (N, C, H, W), got {y.dtype} of shape {tuple(y.shape)}")
    mask = mask_from_zeros(y) if mask is None else _as_tensor(mask, "mask", y)
    if isinstance(coil_maps, str) and coil_maps == "espirit":
        coil_maps = espirit_maps(y, mask=mask, calib_size=calib_size)
    else:
        coil_maps = _as_tensor(coil_maps, "coil_maps", y)
    op = MultiCoilMRI(mask, coil_maps, noise=noise)
    op.A_adjoint(y)  # the maps and the mask fit the k-space (coils, size, batch): one error line if not
    if normalization == "auto":
        normalization = auto_normalization(y, op, where=where)
    elif normalization == "none":
        normalization = Normalization.identity()
    elif not isinstance(normalization, Normalization):
        raise ValueError(f"{where}: normalization must be 'auto', 'none' or a Normalization, got {normalization!r}")
    return MeasurementDataset(y, op, normalization=normalization, names=names)
