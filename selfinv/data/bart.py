"""BART's array files: a ``.hdr`` text header with the dimensions and a ``.cfl`` of raw complex64 in Fortran order.

:func:`read_cfl` returns the array exactly as BART describes it (its dimensions in BART's order: read, phase 1,
phase 2, coils, ESPIRiT maps, ..., trailing singleton dimensions dropped, as BART's own ``cfl.readcfl`` does);
:func:`write_cfl` writes one that BART reads. The package's image layout of a BART file (C, H, W) / (D, C, H, W)
is :func:`~selfinv.data.readers.read_image`'s (:func:`selfinv.data.array_formats.read_cfl`). Every failure is one
``ValueError`` naming the file.

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> base = pathlib.Path(tempfile.mkdtemp()) / "ksp"
    >>> a = (np.arange(24) * (1 + 1j)).reshape(1, 3, 4, 2)          # 1 x 3 x 4 k-space, 2 coils
    >>> write_cfl(base, a)
    >>> base.with_suffix(".hdr").read_text().splitlines()[1].split()
    ['1', '3', '4', '2']
    >>> b = read_cfl(base.with_suffix(".cfl"))
    >>> b.dtype, b.shape, bool((b == a).all())
    (dtype('complex64'), (1, 3, 4, 2), True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfinv.data._io import PathLike, _check_values, _fail, _guard

__all__ = ["cfl_paths", "read_cfl", "write_cfl"]


def cfl_paths(path: PathLike) -> tuple[Path, Path]:
    """The ``(.hdr, .cfl)`` pair of a BART array named by either file or by its base name (``ksp``)."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in (".cfl", ".hdr") else path
    return base.with_name(base.name + ".hdr"), base.with_name(base.name + ".cfl")


def _dims(hdr: Path) -> list[int]:
    lines = hdr.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if line.strip().startswith("# Dimensions"))
    return [int(v) for v in lines[i + 1].split()]


def read_cfl(path: PathLike) -> np.ndarray:
    """A BART array as complex64 of BART's dimensions (read from the ``.hdr``, data in Fortran order), trailing
    singleton dimensions dropped (at least one dimension kept). ``path`` is the ``.cfl``, the ``.hdr`` or the base
    name. A missing file, a header without ``# Dimensions``, a ``.cfl`` of the wrong size and NaN/Inf values are
    one-line errors."""
    hdr, cfl = cfl_paths(path)
    for p in (hdr, cfl):
        if not p.is_file():
            raise _fail(p, "is missing (a BART array needs both the .hdr and the .cfl file)")
    dims = _guard(hdr, "the BART header (no '# Dimensions' line followed by integers)", lambda: _dims(hdr))
    if not dims or any(d < 0 for d in dims):
        raise _fail(hdr, f"invalid BART dimensions {dims}")
    n = int(np.prod(dims))
    size = cfl.stat().st_size
    if size != 8 * n:
        raise _fail(cfl, f"has {size} bytes but the header's dimensions {dims} need {8 * n}; the file is truncated or "
                         "does not match")
    while len(dims) > 1 and dims[-1] == 1:
        dims = dims[:-1]
    arr = np.fromfile(cfl, dtype=np.complex64).reshape(dims, order="F")
    _check_values(cfl, arr)
    return arr


def write_cfl(path: PathLike, array, overwrite: bool = False) -> None:
    """Write ``array`` (any shape, in BART's dimension order) as a BART ``.hdr``/``.cfl`` pair of complex64 in
    Fortran order. ``path`` is either file or the base name; existing files are replaced only with ``overwrite``."""
    hdr, cfl = cfl_paths(path)
    a = np.asarray(array)
    if a.dtype.kind not in "iufc":
        raise _fail(cfl, f"BART arrays are complex numbers, got dtype {a.dtype}")
    if not overwrite:
        for p in (hdr, cfl):
            if p.exists():
                raise _fail(p, "already exists; pass overwrite=True to replace it")
    a = a.astype(np.complex64).reshape(a.shape or (1,))
    hdr.write_text("# Dimensions\n" + " ".join(str(d) for d in a.shape) + " \n")
    with open(cfl, "wb") as f:
        np.ascontiguousarray(a.T).tofile(f)  # a.T in C order is a in Fortran order
