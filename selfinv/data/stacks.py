r"""Microscopy files as users have them: an axes string, frames of one field of view as Noise2Noise pairs,
saturated pixels reported.

* **Axes** (``data.axes``): the layout of the stored array in tifffile's letters, ``YX``, ``CYX``, ``TYX``,
  ``ZYX``, ``YXT``, ``TCYX``, ... (Y rows, X columns, C or S channels, T frames, Z slices). Every file is
  checked against it (:func:`read_with_axes`: one line naming the file, its shape and the axes) and read into
  the package's (C, H, W) / (D, C, H, W) layout, T or Z becoming D. T frames are separate measurements of
  one field of view (or the Noise2Noise pairs below); Z is a volume axis kept as D, exactly as reading a
  ``ZYX`` TIFF does without an axes string (2-D models take its slices one by one). The axes string is kept
  in ``info.tags["axes"]`` so that outputs are written back in the same order.
* **Pairs from files** (:func:`read_measurement_files`): two raw frames of the same field of view are
  independent noisy measurements of one image (Noise2Noise): a second file per file (``data.pairs_path``:
  matched by identical names, else in sorted order), or consecutive frames of a T stack (frame 2k with
  2k + 1). Frames of different sizes or unequal numbers of files are one-line errors.
* **Saturation** (:func:`saturated_pixels`): integer files whose pixels sit at the format's maximum (255,
  65535, or 4095 for 12-bit data), or at a maximum that many more pixels share than the value just below it (a
  sensor's full well), are reported in one warning with their count; they are kept as they are (never
  clipped or rescaled): their noise is cut off, which the losses do not model.

Example:
    >>> import numpy as np, pathlib, tempfile, warnings
    >>> from selfinv.data import write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(folder / "t.tif", np.zeros((4, 1, 8, 8), np.uint16))      # 4 frames of 8x8
    >>> y, y2, names, _ = read_measurement_files([folder / "t.tif"], axes="TYX", frame_pairs=True)
    >>> len(y), len(y2), names
    (2, 2, ['t.tif[0,1]', 't.tif[2,3]'])
    >>> read_with_axes(folder / "t.tif", "YX")
    Traceback (most recent call last):
    ...
    ValueError: t.tif has shape (4, 8, 8) but data.axes is 'YX'
    >>> a = np.full((1, 8, 8), 100.0, np.float32); a[0, :2] = 255
    >>> from selfinv.data import ImageInfo
    >>> saturated_pixels(a, ImageInfo.for_dtype("uint8"))
    (16, 255.0, 'the 8-bit maximum')
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from selfinv.data._io import AxesMismatch
from selfinv.data.image_info import ImageInfo
from selfinv.data.readers import check_path, read_image, split_key

__all__ = ["dchw_axes", "match_pair_files", "parse_axes", "read_measurement_files", "read_with_axes",
           "saturated_pixels", "saturation_warning"]

#: the letters of an axes string and what they become in the (D, C, H, W) layout
AXIS_LETTERS = {"T": "D", "Z": "D", "C": "C", "S": "C", "Y": "H", "X": "W"}


def parse_axes(axes: str, where: str | None = "data.axes") -> str:
    """The axes string in capitals; one ``ValueError`` line (starting ``where = 'axes':``) when it is not distinct
    letters among T, Z, C, S, Y, X with Y and X, at most one of T and Z and one of C and S.

    Example:
        >>> parse_axes("tyx")
        'TYX'
    """
    a = str(axes).strip().upper()
    if (not a or len(set(a)) != len(a) or not set(a) <= set(AXIS_LETTERS) or not {"Y", "X"} <= set(a)
            or len(set(a) & {"T", "Z"}) > 1 or len(set(a) & {"C", "S"}) > 1):
        raise ValueError(f"{f'{where} = {axes!r}: ' if where else ''}expected distinct letters among T (frames), Z "
                         "(slices), C (channels), Y, X including Y and X, at most one of T and Z, e.g. YX, CYX, TYX, ZYX")
    return a


def dchw_axes(axes: str) -> str:
    """An axes string in the (D, C, H, W) letters of :func:`~selfinv.data.readers.read_image` (``TYX`` → ``DHW``)."""
    return "".join(AXIS_LETTERS[c] for c in parse_axes(axes))


def read_with_axes(path, axes: str, key: str | None = None, where: str = "data.axes") -> tuple[np.ndarray, ImageInfo]:
    """Read ``path`` as laid out by ``axes`` (module docstring): (C, H, W) without T/Z, (D, C, H, W) with one;
    a file that does not have that many dimensions is one ``ValueError`` line naming it, its shape and the axes.
    ``info.tags["axes"]`` becomes ``axes`` (outputs are written back in that order)."""
    letters = parse_axes(axes, where)
    p, key = split_key(path, key)
    p, fmt = check_path(p)
    if fmt.axes:
        try:
            arr, info = read_image(p, key=key, axes=dchw_axes(letters), return_info=True)
        except AxesMismatch as e:
            raise ValueError(f"{p.name} has shape {e.shape} but {where} is {letters!r}") from None
    else:  # PNG, JPEG, DICOM: the reader's layout, checked against the axes
        arr, info = read_image(p, key=key, return_info=True)
        stack, c = arr.ndim == 4, int(arr.shape[-3])
        if stack != bool(set(letters) & {"T", "Z"}) or (c > 1) != bool(set(letters) & {"C", "S"}):
            shape = (*arr.shape[:1], *arr.shape[-2:]) if stack else tuple(arr.shape[-2:])
            raise ValueError(f"{p.name} has shape {shape + ((c,) if c > 1 else ())} but {where} is {letters!r}")
    return arr, dataclasses.replace(info, tags={**(info.tags or {}), "axes": letters})  # .mat and .npy infos have no tags


# ---------------------------------------------------------------------- saturation
def saturated_pixels(a: np.ndarray, info: ImageInfo | None) -> tuple[int, float, str] | None:
    """(count, value, why) of the saturated pixels of an integer file's values ``a``, or None (module docstring).

    Saturated: at the format's maximum (``info.data_range[1]``), or at a maximum shared by at least 16 pixels
    (and 0.01 %) and by more than four times as many pixels as the next value below it."""
    if info is None or info.bit_depth is None or np.dtype(info.dtype).kind not in "iu" or a.size == 0:
        return None
    top = float(a.max())
    n = int(np.count_nonzero(a == top))
    if top >= info.data_range[1]:
        return n, top, f"the {info.bit_depth}-bit maximum"
    below = a[a < top]
    if below.size == 0:
        return None
    n_next = int(np.count_nonzero(a == below.max()))
    if n >= max(16, 1e-4 * a.size) and n > 4 * n_next:
        return n, top, f"{n // max(n_next, 1)}x more pixels than the value below: a sensor's limit"
    return None


def saturation_warning(found: list[tuple[str, int, int, float, str]], n_files: int, where: str) -> str | None:
    """One warning line for the saturated files ``(name, count, size, value, why)`` of ``n_files`` (or None)."""
    if not found:
        return None
    total, size = sum(f[1] for f in found), sum(f[2] for f in found)
    shown = "; ".join(f"{name}: {n} at {value:g} ({why})" if i == 0 else f"{name}: {n} at {value:g}"
                      for i, (name, n, _, value, why) in enumerate(found[:3]))
    more = f"; ... ({len(found) - 3} more)" if len(found) > 3 else ""
    return (f"{where}: {len(found)} of {n_files} files have saturated pixels ({shown}{more}; {total} pixels, "
            f"{100 * total / size:.2g} % of those files); kept as they are (not clipped, not masked): their noise is cut "
            "off, which no loss models; lower the exposure or gain if these regions matter")


# ---------------------------------------------------------------------- files → measurements (and pairs)
def match_pair_files(files: list[Path], pair_files: list[Path], where: str = "data.pairs_path") -> list[Path]:
    """The second file of each file: the one of the same name, or else the one at the same place in sorted order
    (with a warning that says so); unequal numbers of files are one ``ValueError`` line."""
    if len(files) != len(pair_files):
        raise ValueError(f"{where}: {len(pair_files)} files for {len(files)} measurement files; give one second frame "
                         "of the same field of view per file")
    by_name = {p.name: p for p in pair_files}
    if all(f.name in by_name for f in files):
        return [by_name[f.name] for f in files]
    warnings.warn(f"{where}: the file names differ from the measurements'; paired in sorted order ("
                  + ", ".join(f"{a.name} with {b.name}" for a, b in list(zip(files, pair_files, strict=True))[:3])
                  + (", ..." if len(files) > 3 else "") + ")", stacklevel=3)
    return list(pair_files)


def read_measurement_files(files: list[Path], key: str | None = None, axes: str | None = None,
                           pair_files: list[Path] | None = None, frame_pairs: bool = False, where: str = "data.path"):
    """Measurements (and second measurements) from image files: ``(ys, y2s or None, names, infos)``, lists of
    (C, H, W) arrays in the files' values.

    Each file gives its image, or one measurement per slice of a stack; with ``frame_pairs`` (a T stack), frames
    2k and 2k + 1 give one measurement and its second measurement (an odd last frame is left out, with a
    warning); with ``pair_files`` (one per file, :func:`match_pair_files`) the second file's slices are the
    second measurements. Frames of different sizes are one ``ValueError`` line naming both files; saturated
    pixels one warning (:func:`saturation_warning`)."""
    if frame_pairs and pair_files is not None:
        raise ValueError(f"{where}: pairs come from consecutive frames (data.axes with T) or from data.pairs_path, not both")
    if frame_pairs and (axes is None or "T" not in parse_axes(axes)):
        raise ValueError(f"{where}: pairs of frames need a T axis in data.axes (e.g. TYX); got {axes!r}")
    ys, y2s, names, infos = [], [], [], []
    saturated, odd = [], []
    for i, f in enumerate(files):
        arr, info = read_with_axes(f, axes, key) if axes is not None else read_image(f, key=key, return_info=True)
        hit = saturated_pixels(arr, info)
        if hit is not None:
            saturated.append((f.name, hit[0], arr.size, hit[1], hit[2]))
        slices = list(arr) if arr.ndim == 4 else [arr]
        tag = [f"{f.name}[{d}]" for d in range(len(slices))] if arr.ndim == 4 else [f.name]
        if frame_pairs:
            if len(slices) < 2:
                raise ValueError(f"{f.name}: {len(slices)} frame; pairs of frames need at least 2 per file")
            if len(slices) % 2:
                odd.append(f.name)
            k = len(slices) // 2
            ys += slices[0 : 2 * k : 2]
            y2s += slices[1 : 2 * k : 2]
            names += [f"{f.name}[{2 * j},{2 * j + 1}]" for j in range(k)]
            infos += [info] * k
            continue
        ys += slices
        names += tag
        infos += [info] * len(slices)
        if pair_files is not None:
            g = pair_files[i]
            arr2, _ = read_with_axes(g, axes, key) if axes is not None else read_image(g, key=key, return_info=True)
            if arr2.shape != arr.shape:
                raise ValueError(f"{f.name} {_shape(arr)} and its pair {g.name} {_shape(arr2)} differ in size; the "
                                 "frames of a Noise2Noise pair must show the same field of view at one size")
            y2s += list(arr2) if arr2.ndim == 4 else [arr2]
    if odd:
        warnings.warn(f"{where}: {', '.join(odd[:3])}{' ...' if len(odd) > 3 else ''}: an odd number of frames; the last "
                      "frame is left out of the pairs (frame 2k is paired with 2k + 1)", stacklevel=2)
    line = saturation_warning(saturated, len(files), where)
    if line:
        warnings.warn(line, stacklevel=2)
    return ys, (y2s if (frame_pairs or pair_files is not None) else None), names, infos


def _shape(a: np.ndarray) -> tuple[int, ...]:
    """The shape of a read array without its channel axis of size 1 (as the user sees the file)."""
    return tuple(s for i, s in enumerate(a.shape) if not (i == a.ndim - 3 and s == 1))
