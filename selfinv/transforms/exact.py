r"""The exact transforms that permute pixels: circular shifts (:class:`Shift`) and flips (:class:`Reflect`)."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import torch

from selfinv.transforms.base import PARAM_DTYPE, Transform, _permute, _size, _uniform


class Shift(Transform):
    r"""Integer circular shifts :math:`(T_g x)_{i,j} = x_{(i - d_y) \bmod H,\ (j - d_x) \bmod W}` (``torch.roll``).

    Natural images are approximately translation invariant; shifts are the group of the original EI
    inpainting experiments (Chen, Tachella & Davies, ICCV 2021). The shifts form the cyclic group
    :math:`\mathbb{Z}_H \times \mathbb{Z}_W`; :math:`T_g` is a permutation, so :math:`T_g^{-1} = T_g^\top
    = T_{-g}` exactly.

    Args:
        max_shift: None draws uniformly among all :math:`H W` shifts (the whole group, so ``sample``
            needs ``img_size``); an int m draws :math:`d_y, d_x` uniformly in :math:`\{-m, \dots, m\}`
            (a box of shifts, not a group unless it covers the image).
        step: shifts are multiples of ``step`` (a subgroup when ``step`` divides H and W; e.g. ``step=4``
            on 16 × 16 images gives the 16 shifts of ``check_theory.py``).

    Parameters: (B, 2) integers (dy, dx). ``elements(img_size)`` lists the distinct shifts modulo
    (H, W) that ``sample`` can draw, in [0, H) × [0, W).

    Example:
        >>> import torch
        >>> from selfinv.transforms import Shift
        >>> x = torch.arange(4.0).reshape(1, 1, 1, 4)
        >>> Shift().apply(x, torch.tensor([[0.0, 1.0]]))
        tensor([[[[3., 0., 1., 2.]]]])
        >>> len(Shift().elements((4, 6))), len(Shift(step=2).elements((4, 6))), len(Shift(max_shift=1).elements(8))
        (24, 6, 9)
    """

    n_params = 2
    exact = True

    def __init__(self, max_shift: int | None = None, step: int = 1) -> None:
        if max_shift is not None and (isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0):
            raise ValueError(f"Shift: max_shift must be None or an int >= 0, got {max_shift!r}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
            raise ValueError(f"Shift: step must be an int >= 1, got {step!r}")
        self.max_shift = None if max_shift is None else int(max_shift)
        self.step = int(step)

    def _sample(self, batch_size, generator, img_size):
        u = _uniform((batch_size, 2), generator)
        if self.max_shift is None:
            h, w = _size(img_size, "Shift")
            counts = torch.tensor([math.ceil(h / self.step), math.ceil(w / self.step)], dtype=PARAM_DTYPE, device=u.device)
            return (u * counts).floor() * self.step
        r = self.max_shift // self.step
        return ((u * (2 * r + 1)).floor() - r) * self.step

    def _index(self, p: torch.Tensor, h: int, w: int) -> torch.Tensor:
        dy, dx = p[:, 0].long(), p[:, 1].long()
        rows = (torch.arange(h, device=p.device) - dy[:, None]) % h
        cols = (torch.arange(w, device=p.device) - dx[:, None]) % w
        return (rows[:, :, None] * w + cols[:, None, :]).reshape(p.shape[0], h * w)

    def _apply(self, x, p):
        return _permute(x, self._index(p, *x.shape[-2:]))

    def _inverse(self, x, p):
        return _permute(x, self._index(-p, *x.shape[-2:]))

    def _check_params(self, p, x):
        if not bool((p == p.round()).all()):
            raise ValueError("Shift: params must be integer shifts (dy, dx)")

    def _elements(self, size):
        h, w = size
        if self.max_shift is None:
            ys, xs = list(range(0, h, self.step)), list(range(0, w, self.step))
        else:
            r = self.max_shift // self.step
            ys = sorted({(k * self.step) % h for k in range(-r, r + 1)})
            xs = sorted({(k * self.step) % w for k in range(-r, r + 1)})
        return torch.tensor(list(itertools.product(ys, xs)), dtype=PARAM_DTYPE)

    def __repr__(self) -> str:
        args = [] if self.max_shift is None else [f"max_shift={self.max_shift}"]
        args += [] if self.step == 1 else [f"step={self.step}"]
        return f"Shift({', '.join(args)})"


class Reflect(Transform):
    r"""Random flips: :math:`T_g` reverses the rows (``"h"``) and/or the columns (``"w"``) of the image.

    Each listed dimension is flipped with probability 1/2, independently per sample. Flips generate
    the group :math:`\mathbb{Z}_2^{d}` (``d = len(dims)``); :math:`T_g = T_g^{-1} = T_g^\top` exactly.

    Args:
        dims: a subset of ``("h", "w")`` (also -2, -1).

    Parameters: (B, len(dims)) flags in {0, 1}.

    Example:
        >>> import torch
        >>> from selfinv.transforms import Reflect
        >>> x = torch.arange(3.0).reshape(1, 1, 1, 3)
        >>> Reflect(dims=("w",)).apply(x, torch.tensor([[1.0]]))
        tensor([[[[2., 1., 0.]]]])
    """

    exact = True

    def __init__(self, dims: Sequence[str | int] = ("h", "w")) -> None:
        names = {"h": "h", "w": "w", -2: "h", -1: "w"}
        if isinstance(dims, (str, int)):
            dims = (dims,)
        try:
            out = tuple(names[d] for d in dims)
        except (KeyError, TypeError):
            raise ValueError(f"Reflect: dims must be a subset of ('h', 'w') (or -2, -1), got {dims!r}") from None
        if not out or len(set(out)) != len(out):
            raise ValueError(f"Reflect: dims must be a non-empty subset of ('h', 'w') without repeats, got {dims!r}")
        self.dims = out
        self.n_params = len(out)

    def _sample(self, batch_size, generator, img_size):
        return (_uniform((batch_size, self.n_params), generator) < 0.5).to(PARAM_DTYPE)

    def _index(self, p, h, w):
        flip = {d: p[:, i].bool()[:, None] for i, d in enumerate(self.dims)}
        rows = torch.arange(h, device=p.device).expand(p.shape[0], h)
        cols = torch.arange(w, device=p.device).expand(p.shape[0], w)
        if "h" in flip:
            rows = torch.where(flip["h"], h - 1 - rows, rows)
        if "w" in flip:
            cols = torch.where(flip["w"], w - 1 - cols, cols)
        return (rows[:, :, None] * w + cols[:, None, :]).reshape(p.shape[0], h * w)

    def _apply(self, x, p):
        return _permute(x, self._index(p, *x.shape[-2:]))

    _inverse = _apply

    def _check_params(self, p, x):
        if not bool(((p == 0) | (p == 1)).all()):
            raise ValueError("Reflect: params must be flags in {0, 1}")

    def _elements(self, size):
        return torch.tensor(list(itertools.product((0.0, 1.0), repeat=self.n_params)), dtype=PARAM_DTYPE)

    def __repr__(self) -> str:
        return f"Reflect(dims={self.dims!r})"
