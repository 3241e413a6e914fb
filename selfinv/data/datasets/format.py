r"""The on-disk format of a measurement set: ``.npz`` or ``.h5`` files, and folders.

A file (written by :meth:`~selfinv.data.datasets.PhysicsDataset.save`, read by
:meth:`~selfinv.data.datasets.MeasurementDataset.load`)::

    y            (N, ...) float32 or complex64   measurements (required)
    x            (N, ...)                         reference images (optional, never used for training)
    y2           (N, ...)                         second measurements (optional)
    <param>      (N, ...)                         per-sample operator parameters by name, e.g. mask
                                                  (N, 1, H, W); nested ones dotted: noise.sigma (N,)
    meta         JSON string (npz: a 0-d str array; h5: the file attribute "meta"), optional:
                 {"operator": "inpainting", "noise": {"name": "gaussian", "sigma": 0.1},
                  "normalization": {"scale": 255.0, "offset": 0.0}, "names": [...]}

The per-sample parameters and the ``operator``/``noise`` entries of ``meta`` are the physics' record
(:func:`selfinv.data.physics_params.physics_record`, read back by
:func:`~selfinv.data.physics_params.physics_from_record`).

A folder (:meth:`~selfinv.data.datasets.MeasurementDataset.from_folder`) holds one subfolder per array, ``y/`` required,
``x/``, ``y2/`` and one per parameter (``mask/``) optional, each with one file per sample (any format
:func:`~selfinv.data.readers.read_image` reads) matched by file stem, and an optional ``meta.json``.

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "set.npz"
    >>> write_arrays(path, {"y": np.zeros((2, 1, 4, 4), np.float32)}, {"operator": "denoising"}, overwrite=False)
    >>> arrays, meta = read_arrays(path)
    >>> sorted(arrays), meta, holds_y(path), stored_normalization(path)
    (['y'], {'operator': 'denoising'}, True, False)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RESERVED", "holds_y", "read_arrays", "stored_normalization", "write_arrays"]

#: the names of a measurement set's arrays that are not operator parameters
RESERVED = ("y", "x", "y2", "meta")


def write_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], overwrite: bool) -> None:
    """Write a measurement set: ``arrays`` by name and ``meta`` as JSON (module docstring)."""
    ext = path.suffix.lower()
    if ext not in (".npz", ".h5", ".hdf5"):
        raise ValueError(f"{path.name}: a measurement set is written as .npz or .h5")
    if path.exists() and not overwrite:
        raise ValueError(f"{path.name}: already exists; pass overwrite=True to replace it")
    text = json.dumps(meta)
    if ext == ".npz":
        with open(path, "wb" if overwrite else "xb") as fh:
            np.savez(fh, meta=np.array(text), **arrays)
    else:
        import h5py

        with h5py.File(path, "w" if overwrite else "w-") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
            f.attrs["meta"] = text


def read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays by name, meta) of a measurement set; any problem, NaN/Inf and empty arrays included, is one
    ValueError naming the file."""
    ext = path.suffix.lower()
    if not path.is_file():
        raise ValueError(f"{path.name}: no such file ({path})")
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.keys()}
            text = arrays.pop("meta", None)
            meta = json.loads(str(text)) if text is not None else {}
        elif ext in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
                text = f.attrs.get("meta")
            meta = json.loads(text) if text is not None else {}
        else:
            raise ValueError(f"{path.name}: a measurement set is an .npz or .h5 file")
    except ValueError as e:
        if str(e).startswith(f"{path.name}:"):
            raise
        raise ValueError(f"{path.name}: cannot read the measurement set ({type(e).__name__}: {e})") from e
    except Exception as e:
        raise ValueError(f"{path.name}: cannot read the measurement set ({type(e).__name__}: {e})") from e
    for k, v in arrays.items():
        if v.dtype.kind in "fc" and not np.isfinite(v).all():
            raise ValueError(f"{path.name}: array {k!r} contains NaN or Inf values")
        if v.size == 0:
            raise ValueError(f"{path.name}: array {k!r} is empty")
    return arrays, meta



def stored_normalization(path: Path) -> bool:
    """Whether a measurement set records its normalisation (written by ``save``: already normalised)."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        else:
            import h5py

            with h5py.File(path, "r") as f:
                text = f.attrs.get("meta")
            meta = json.loads(text) if text is not None else {}
    except Exception:  # unreadable: the loader says why
        return False
    return isinstance(meta, dict) and meta.get("normalization") is not None


def holds_y(path: Path) -> bool:
    """Whether an ``.npz``/``.h5`` file holds an array ``y`` (a measurement set, not an image file)."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return "y" in z.files
        import h5py

        with h5py.File(path, "r") as f:
            return "y" in f
    except Exception:  # unreadable: the reader says why
        return False
