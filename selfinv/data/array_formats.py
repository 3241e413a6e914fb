"""Raw array files: NPY/NPZ (numpy), HDF5 and fastMRI (h5py), BART ``.cfl``/``.hdr`` pairs.

The readers are the entries of :func:`~selfinv.data.readers.read_image`'s table for ``.npy .npz``,
``.h5 .hdf5`` (fastMRI files: :func:`~selfinv.data.readers.read_fastmri`) and ``.cfl .hdr`` (layouts in that
module's docstring); :func:`npy_bytes` is
:func:`~selfinv.data.writers.write_image`'s for ``.npy``. Every failure is one ``ValueError`` naming the file
(:mod:`~selfinv.data._io`).

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "set.npz"
    >>> np.savez(path, y=np.zeros((2, 5, 6)), mask=np.ones((5, 6)))
    >>> read_npy(path, key="mask")[0].shape
    (1, 5, 6)
    >>> read_npy(path)
    Traceback (most recent call last):
    ...
    ValueError: set.npz: holds 2 arrays ['y', 'mask']; pass key= to choose one
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from selfinv.data import bart
from selfinv.data._io import _check_array, _default_axes, _fail, _guard, _to_dchw
from selfinv.data.image_info import ImageInfo, _info_from_array

__all__ = ["FASTMRI_RECON", "h5_datasets", "h5_open", "npy_bytes", "read_cfl", "read_h5", "read_npy"]


# ---------------------------------------------------------------------- NPY / NPZ
def read_npy(path: Path, key: str | None = None, axes: str | None = None) -> tuple[np.ndarray, ImageInfo]:
    """An ``.npy`` array, or the array ``key`` of an ``.npz`` (the only one without a key); axes by dimension."""
    if path.suffix.lower() == ".npz":

        def load():
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if key is None and len(names) != 1:
                    raise _fail(path, f"holds {len(names)} arrays {names}; pass key= to choose one")
                k = key if key is not None else names[0]
                if k not in names:
                    raise _fail(path, f"has no array {k!r}; it holds {names}")
                return z[k]

        raw = _guard(path, "the NPZ file", load)
    else:
        raw = _guard(path, "the NPY file", lambda: np.load(path, allow_pickle=False))
    raw = np.asarray(raw)
    _check_array(path, raw)
    return _to_dchw(path, raw, axes or _default_axes(raw.ndim)), _info_from_array(raw)


def npy_bytes(a: np.ndarray) -> bytes:
    """The array as it is, as an ``.npy`` file."""
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


# ---------------------------------------------------------------------- HDF5
#: the reconstruction datasets of fastMRI files, in the order they are preferred
FASTMRI_RECON = ("reconstruction_esc", "reconstruction_rss")


def h5_open(path: Path):
    """The HDF5 file, open for reading (a failure names the file)."""
    import h5py

    return _guard(path, "the HDF5 file", lambda: h5py.File(path, "r"))


def h5_datasets(f) -> list[str]:
    """The paths of every dataset of an open HDF5 file."""
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def read_h5(path: Path, key: str | None = None, axes: str | None = None) -> tuple[np.ndarray, ImageInfo]:
    """The dataset ``key`` of an HDF5 file (the only one, or a fastMRI file's reconstruction, without a key);
    axes from its ``axes`` attribute, else by dimension (fastMRI: stacks of slices)."""
    with h5_open(path) as f:
        names = h5_datasets(f)
        fastmri = "kspace" in names
        if key is None:
            recon = [n for n in FASTMRI_RECON if n in names]
            if fastmri:
                if not recon:
                    raise _fail(path, "is a fastMRI file without a reconstruction; use read_fastmri() or key='kspace'")
                key = recon[0]
            elif len(names) == 1:
                key = names[0]
            else:
                raise _fail(path, f"holds {len(names)} datasets {names}; pass key= to choose one")
        if key not in names:
            raise _fail(path, f"has no dataset {key!r}; it holds {names}")
        raw = np.asarray(_guard(path, f"dataset {key!r}", lambda: f[key][()]))
        file_axes = f[key].attrs.get("axes")
    _check_array(path, raw, f"dataset {key!r}")
    if axes is None:
        if isinstance(file_axes, bytes):
            file_axes = file_axes.decode()
        axes = file_axes if isinstance(file_axes, str) else None
    coil = fastmri and key == "kspace" and raw.ndim == 4 and axes is None
    if axes is None:
        axes = {3: "DHW", 4: "DCHW"}.get(raw.ndim) if fastmri else None
    info = _info_from_array(raw, channel_axis="coil" if coil else None)
    return _to_dchw(path, raw, axes or _default_axes(raw.ndim)), info


# ---------------------------------------------------------------------- BART
def read_cfl(path: Path) -> tuple[np.ndarray, ImageInfo]:
    """A BART ``.cfl``/``.hdr`` pair (either name; read by :func:`selfinv.data.bart.read_cfl`): complex64 in Fortran
    order, dims 0-2 → H, W, D, dims 3-4 → C (coils × ESPIRiT maps), dims ≥ 5 → D."""
    arr = bart.read_cfl(path)
    dims = list(arr.shape) + [1] * max(0, 5 - arr.ndim)
    arr = arr.reshape(dims)  # trailing singleton dimensions back (no reordering)
    spatial = [d for d in (0, 1, 2) if dims[d] > 1]
    pair = sorted((spatial + [d for d in (0, 1, 2) if d not in spatial])[:2])
    z = [d for d in (0, 1, 2) if d not in pair][0]
    stack_axes = list(range(len(dims) - 1, 4, -1)) + [z]  # dims >= 5, then the third spatial axis
    arr = np.transpose(arr, stack_axes + [4, 3] + pair)
    d_size = int(np.prod([dims[a] for a in stack_axes]))
    arr = arr.reshape(d_size, dims[3] * dims[4], dims[pair[0]], dims[pair[1]])
    if d_size == 1:
        arr = arr[0]
    return arr, _info_from_array(arr, channel_axis="coil")  # BART's C is receive coils (× ESPIRiT maps)
