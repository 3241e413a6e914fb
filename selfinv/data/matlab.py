r"""MATLAB ``.mat`` files: v4/v5/v7 through :func:`scipy.io.loadmat`, v7.3 (HDF5) through h5py, one layout.

A variable is named by its key; fields of (1 × 1) structs are dotted: ``CtDataLimited.sinogram``.
Without a key, :func:`read_mat` takes the only numeric array that could be an image (at least two
dimensions larger than 1), else it lists the candidates in its one-line error.

Layout. MATLAB stores arrays column-major. A v5 file read by scipy gives an array of MATLAB's size
(``size(A) = [61, 560]`` → shape (61, 560)). A v7.3 file is HDF5, whose datasets h5py reads
row-major, so the same array comes out transposed, (560, 61); it is transposed back here (all axes
reversed), so both versions give MATLAB's size and the same values. v7.3 files start with a 512-byte
user block holding the text header ``MATLAB 7.3 MAT-file, ...``; h5py finds the HDF5 data behind it.
Complex v7.3 arrays (a compound of ``real`` and ``imag``) become complex arrays, ``char`` arrays
strings, ``logical`` arrays booleans.

:func:`read_mat_image` is :func:`~selfinv.data.readers.read_image`'s reader of ``.mat`` files: the array of
:func:`read_mat` in selfinv's layout (2-D HW, 3-D HWC, 4-D HWCD unless ``axes=`` says otherwise).

:func:`read_mat_struct` reads a struct's fields as a dict (geometry parameters, acquisition
settings): scalars as Python numbers, arrays squeezed (a 1 × 61 row of angles → (61,)), strings as
``str``, nested structs as dicts and cells as lists.

Example:
    >>> import numpy as np, pathlib, scipy.io, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.mat"
    >>> scipy.io.savemat(path, {"scan": {"sinogram": np.ones((3, 8)), "parameters": {"angles": np.arange(3.0), "unit": "mm"}}})
    >>> raw, key = read_mat(path, None)
    >>> key, raw.shape
    ('scan.sinogram', (3, 8))
    >>> read_mat_struct(path, "scan.parameters")
    {'angles': array([0., 1., 2.]), 'unit': 'mm'}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from selfinv.data._io import PathLike, _check_array, _fail, _guard, _to_dchw
from selfinv.data.image_info import ImageInfo, _info_from_array

__all__ = ["mat_is_v73", "read_mat", "read_mat_image", "read_mat_struct"]


def mat_is_v73(path: PathLike) -> bool:
    """Whether a ``.mat`` file is MATLAB v7.3 (HDF5)."""
    import h5py

    try:
        return bool(h5py.is_hdf5(str(path)))
    except OSError:
        return False


# ---------------------------------------------------------------------- one tree for both versions
# A node is ("array", ndarray), ("char", str | list[str]), ("struct", {name: node}), ("cell", [node]),
# or ("other", what). v7.3 arrays stay h5py datasets until read, so listing a large file reads nothing.
def _v5_node(value: Any) -> tuple[str, Any]:
    if isinstance(value, np.ndarray):
        if value.dtype.names is not None:
            if value.size != 1:
                return "other", f"struct array {_size(value.shape)}"
            rec = value.flat[0]
            return "struct", {n: _v5_node(rec[n]) for n in value.dtype.names}
        if value.dtype.kind in "US":
            text = [str(s) for s in value.ravel()]
            return "char", text[0] if len(text) == 1 else (text or "")
        if value.dtype == object:
            return "cell", [_v5_node(v) for v in value.ravel(order="F")]
        if value.dtype.kind in "iubfc":
            return "array", value
    return "other", type(value).__name__


def _v5_tree(path: Path, top: str | None) -> dict[str, tuple[str, Any]]:
    import scipy.io

    def load():
        names = [top] if top is not None else None
        return scipy.io.loadmat(path, variable_names=names, squeeze_me=False, struct_as_record=True, chars_as_strings=True)

    m = _guard(path, "the MAT file", load)
    return {k: _v5_node(v) for k, v in m.items() if not k.startswith("__")}


def _h5_class(obj) -> str:
    c = obj.attrs.get("MATLAB_class", b"")
    return c.decode() if isinstance(c, bytes) else str(c)


def _v73_array(ds) -> np.ndarray:
    """A v7.3 dataset as MATLAB's array (transposed back to MATLAB's size)."""
    cls = _h5_class(ds)
    if ds.attrs.get("MATLAB_empty", 0):
        return np.zeros((0, 0))
    a = ds[()]
    if a.dtype.names is not None and {"real", "imag"} <= set(a.dtype.names):
        a = a["real"] + 1j * a["imag"]
    a = np.asarray(a).T
    return a.astype(bool) if cls == "logical" else a


def _v73_node(f, obj) -> tuple[str, Any]:
    import h5py

    cls = _h5_class(obj)
    if isinstance(obj, h5py.Group):
        if cls in ("struct", "") and "MATLAB_sparse" not in obj.attrs:
            return "struct", {k: _v73_node(f, obj[k]) for k in obj if not k.startswith("#")}
        return "other", cls or "group"
    if cls == "char":
        if obj.attrs.get("MATLAB_empty", 0):
            return "char", ""
        codes = np.asarray(obj[()]).T
        codes = codes if codes.ndim == 2 else codes.reshape(1, -1)
        text = ["".join(map(chr, row)) for row in codes]
        return "char", text[0] if len(text) == 1 else text
    if cls == "cell" or obj.dtype.kind == "O":
        refs = np.asarray(obj[()]).T.ravel(order="F")
        return "cell", [_v73_node(f, f[r]) for r in refs]
    if obj.dtype.kind in "iubfc" or obj.dtype.names is not None:
        return "array", obj  # read when needed
    return "other", cls or str(obj.dtype)


_WHAT = {"array": "a numeric array", "char": "a string (char array)", "cell": "a cell array", "struct": "a struct"}


def _what(node: tuple[str, Any]) -> str:
    return _WHAT.get(node[0], f"a {node[1]}")


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _walk(tree: dict[str, tuple[str, Any]], prefix: str = ""):
    """(dotted name, node) of every node, structs descended."""
    for name, node in tree.items():
        yield prefix + name, node
        if node[0] == "struct":
            yield from _walk(node[1], f"{prefix}{name}.")


def _resolve(path: Path, tree: dict[str, tuple[str, Any]], key: str) -> tuple[str, Any]:
    node: tuple[str, Any] = ("struct", tree)
    done: list[str] = []
    for part in key.split("."):
        if node[0] != "struct":
            raise _fail(path, f"{'.'.join(done)} is not a struct ({_what(node)}), so it has no field {part!r}")
        if part not in node[1]:
            where = f"struct {'.'.join(done)}" if done else "file"
            raise _fail(path, f"has no variable {key!r}: the {where} holds {sorted(node[1])}")
        node = node[1][part]
        done.append(part)
    return node


def _materialise(node: tuple[str, Any]) -> np.ndarray:
    value = node[1]
    return np.asarray(value) if isinstance(value, np.ndarray) else _v73_array(value)


def _shape(node: tuple[str, Any]) -> tuple[int, ...]:
    value = node[1]
    if isinstance(value, np.ndarray):
        return value.shape
    return (0, 0) if value.attrs.get("MATLAB_empty", 0) else tuple(value.shape[::-1])


def _open_tree(path: Path, key: str | None):
    """(tree, h5 file or None): the caller closes the file."""
    if mat_is_v73(path):
        import h5py

        f = _guard(path, "the MAT v7.3 (HDF5) file", lambda: h5py.File(path, "r"))
        tree = _guard(path, "the MAT v7.3 file", lambda: {k: _v73_node(f, f[k]) for k in f if not k.startswith("#")})
        return tree, f
    return _v5_tree(path, None if key is None else key.split(".")[0]), None


def read_mat(path: PathLike, key: str | None) -> tuple[np.ndarray, str]:
    """A numeric array of a ``.mat`` file in MATLAB's layout (v5 and v7.3 alike) and its dotted key.

    Raises:
        ValueError: naming the file, for a missing key (listing what is there), a key that is not a
            numeric array, or no key and not exactly one image-like numeric array.
    """
    path = Path(path)
    tree, f = _open_tree(path, key)
    try:
        if key is None:
            arrays = [(name, node) for name, node in _walk(tree) if node[0] == "array"]
            shapes = {name: _shape(node) for name, node in arrays}
            images = [name for name in shapes if sum(s > 1 for s in shapes[name]) >= 2]
            if len(images) != 1:
                listed = ", ".join(f"{n} ({_size(shapes[n])})" for n in (images or list(shapes)))
                what = f"{len(images)} arrays that could be images" if images else "no 2-D numeric array"
                raise _fail(path, f"holds {what} ({listed or 'no numeric arrays'}); pass key= or write FILE.mat:NAME "
                            "(struct fields dotted: NAME.FIELD)")
            key = images[0]
        node = _resolve(path, tree, key)
        if node[0] == "struct":
            fields = sorted(node[1])
            raise _fail(path, f"{key} is a struct with fields {fields}; name one, e.g. key='{key}.{fields[0] if fields else 'FIELD'}'")
        if node[0] != "array":
            raise _fail(path, f"{key} is {_what(node)}, not a numeric array")
        raw = _guard(path, f"variable {key!r}", lambda: _materialise(node))
    finally:
        if f is not None:
            f.close()
    return raw, key


def read_mat_image(path: Path, key: str | None = None, axes: str | None = None) -> tuple[np.ndarray, ImageInfo]:
    """The array ``key`` of a ``.mat`` file as (C, H, W) / (D, C, H, W): HW, HWC (MATLAB's images, H×W×3, and
    coil stacks), HWCD, or ``axes``."""
    raw, key = read_mat(path, key)
    _check_array(path, raw, f"variable {key!r}")
    if axes is None:
        axes = {2: "HW", 3: "HWC", 4: "HWCD"}.get(raw.ndim, "")
    return _to_dchw(path, raw, axes), _info_from_array(raw)


def _plain(node: tuple[str, Any]) -> Any:
    kind, value = node
    if kind == "struct":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "cell":
        return [_plain(v) for v in value]
    if kind == "array":
        a = _materialise(node)
        return a.item() if a.size == 1 else np.squeeze(a)
    if kind == "char":
        return value
    return None


def read_mat_struct(path: PathLike, key: str | None = None) -> dict[str, Any]:
    """The fields of a struct (``key``, dotted) or, without a key, the file's variables, as a dict.

    Numeric scalars become Python numbers, arrays are squeezed numpy arrays in MATLAB's layout, char
    arrays ``str``, nested structs dicts, cells lists; anything else (sparse matrices, objects) ``None``.

    Example (HTC2022 CT data): ``read_mat_struct("ta.mat", "CtDataLimited.parameters")["angles"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, f"no such file ({path})")
    tree, f = _open_tree(path, key)
    try:
        node = ("struct", tree) if key is None else _resolve(path, tree, key)
        if node[0] != "struct":
            raise _fail(path, f"{key} is {_what(node)}, not a struct; read arrays with read_image('{path.name}:{key}')")
        return _guard(path, f"struct {key!r}" if key else "the MAT file", lambda: _plain(node))
    finally:
        if f is not None:
            f.close()
