r"""An explicit, recorded normalisation :math:`u = (v - \text{offset}) / \text{scale}` and its inverse.

Data enter a network in normalised units and leave it in the file's units. The mapping is one
affine function stored as a plain dict (``to_dict``, kept in checkpoints) so that outputs are put
back exactly (``denormalize``) and written in the input's dtype with
:func:`selfinv.data.readers.write_image`. Nothing is rescaled behind the user's back:
:func:`~selfinv.data.readers.read_image` returns the file's values and a dataset applies the
``Normalization`` it is given (or the one it derives and records in ``dataset.normalization``).

Measurements and offsets: :math:`A(x - o) \ne Ax - o` for most operators (an inpainting mask or an
MRI mask zeroes the offset where nothing is measured), so measurement datasets use a scale only;
an offset is fine for ground-truth images, which are normalised before measurements are simulated.
Noise parameters are in normalised units: Gaussian :math:`\sigma` and Poisson gain scale with
``1 / scale``.

Example:
    >>> import numpy as np
    >>> norm = Normalization.from_range(0, 255)
    >>> norm.normalize(np.array([0.0, 51.0, 255.0])).tolist()
    [0.0, 0.2, 1.0]
    >>> Normalization.from_dict(norm.to_dict()) == norm
    True
    >>> float(norm.denormalize(norm.normalize(np.float32(17.0))))
    17.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from selfinv.data.readers import ImageInfo

T = TypeVar("T")


@dataclass(frozen=True)
class Normalization:
    """``normalize(v) = (v - offset) / scale`` and ``denormalize(u) = u * scale + offset``.

    Args:
        scale: a finite, positive float.
        offset: a finite float (0 for measurements, see the module docstring).
    """

    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Normalization: {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.scale <= 0:
            raise ValueError(f"Normalization: scale must be > 0, got {self.scale}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def identity(cls) -> Normalization:
        """No change (scale 1, offset 0)."""
        return cls()

    @classmethod
    def from_range(cls, low: float, high: float) -> Normalization:
        """Map the data range ``[low, high]`` to ``[0, 1]`` (e.g. ``[0, 255]`` for 8-bit images)."""
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            raise ValueError(f"Normalization.from_range: need finite low < high, got [{low}, {high}]")
        return cls(scale=float(high) - float(low), offset=float(low))

    @classmethod
    def from_info(cls, info: ImageInfo, measurements: bool = False) -> Normalization:
        """The normalisation implied by a file's :class:`~selfinv.data.readers.ImageInfo`.

        Integer data map their data range (``[0, 2^b - 1]`` for b-bit unsigned images) to [0, 1];
        float data are left as they are (their observed range is not a property of the format and
        would differ between images). With ``measurements=True`` no offset is used: the scale is the
        largest magnitude of the range, so zero stays zero (see the module docstring).
        """
        if info.bit_depth is None:
            return cls.identity()
        low, high = info.data_range
        if measurements:
            return cls(scale=max(abs(low), abs(high)) or 1.0)
        return cls.from_range(low, high)

    @classmethod
    def robust(cls, values, percentile: float = 99.5, offset: bool = False, max_values: int = 4_000_000) -> Normalization:
        r"""A scale from the data themselves, robust to outliers: the ``percentile``-th percentile of
        :math:`|v|` becomes 1 (a hot pixel or a k-space centre spike does not set it, as the maximum would).

        With ``offset=True`` (ground-truth images, normalised before measurements are simulated) and values
        below 0, the range from the ``100 - percentile``-th to the ``percentile``-th percentile is mapped to
        [0, 1] instead (CT in Hounsfield units: air at about 0). Complex data use their magnitude. At most
        ``max_values`` evenly spaced values are read (deterministic). All-zero data give the identity.

        Example:
            >>> import torch
            >>> v = torch.cat([torch.linspace(0, 3000, 1000), torch.tensor([1e6])])   # one hot pixel
            >>> round(Normalization.robust(v).scale)
            2988
            >>> n = Normalization.robust(torch.linspace(-1024, 2000, 1001), offset=True)
            >>> round(n.scale), round(n.offset)
            (2994, -1009)
        """
        import torch

        t = values if isinstance(values, torch.Tensor) else torch.as_tensor(values)
        t = t.detach().reshape(-1)
        t = t.abs() if t.is_complex() else t
        t = t.to(torch.float64)
        if t.numel() > max_values:
            t = t[:: math.ceil(t.numel() / max_values)]
        if t.numel() == 0 or not bool(torch.isfinite(t).all()):
            raise ValueError("Normalization.robust: the data are empty or hold NaN/Inf values")
        q = float(percentile) / 100.0
        if offset and float(t.min()) < 0:
            lo, hi = (float(v) for v in torch.quantile(t, torch.tensor([1.0 - q, q], dtype=torch.float64)))
            if hi > lo:
                return cls(scale=hi - lo, offset=lo)
        high = float(torch.quantile(t.abs(), q))
        if not high > 0:
            high = float(t.abs().max())
        return cls(scale=high) if high > 0 else cls.identity()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(scale=d["scale"], offset=d.get("offset", 0.0))
        except (KeyError, TypeError, AttributeError):
            raise ValueError(f"Normalization.from_dict: expected {{'scale': ..., 'offset': ...}}, got {d!r}") from None

    # ------------------------------------------------------------------ use
    def to_dict(self) -> dict[str, float]:
        """A JSON-ready dict, to be stored beside a model."""
        return {"scale": self.scale, "offset": self.offset}

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    def normalize(self, v: T) -> T:
        """``(v - offset) / scale`` for numpy arrays, tensors and numbers."""
        if self.is_identity:
            return v
        return (v - self.offset) / self.scale if self.offset else v / self.scale

    def denormalize(self, u: T) -> T:
        """``u * scale + offset``: back to the units of the data (inverse of :meth:`normalize`)."""
        if self.is_identity:
            return u
        return u * self.scale + self.offset if self.offset else u * self.scale
