r"""Group actions :math:`T_g` on images, for equivariant imaging (EI) and the identifiability theory.

Equivariant imaging (Chen, Tachella & Davies, ICCV 2021, arXiv:2103.14756) assumes the signal set is
invariant to a group of transformations :math:`\{T_g\}_{g\in G}`: if :math:`x` is a plausible image, so
is :math:`T_g x`. Then :math:`y = Ax = (A T_g)(T_g^{-1}x)` is also a measurement of :math:`T_g^{-1}x`
through the *virtual* operator :math:`A T_g`, and the rank condition
:math:`\operatorname{rank}(\mathbb{E}_g T_g^\top A^\top A T_g) = n` of :mod:`selfinv.theory` says when
these virtual operators see the whole signal space (Tachella, Chen & Davies, JMLR 2023).

Every transform here acts on batches ``x`` of shape (B, C, H, W), real or complex, and keeps that
shape. Parameters are a (B, k) float64 tensor, **one group element per sample** (the peer library
deepinv draws one per batch): ``params = T.sample(B, generator, img_size)``, then
``T.apply(x, params)``, ``T.inverse(x, params)`` and ``T.adjoint(x, params)``; ``T(x, generator)``
does both steps and returns ``(T_g x, params)``. All randomness comes from the explicit generator
(:mod:`selfinv._random`) and every method is vectorised over the batch.

================================  ==========================================  =======  ========================
transform                         parameters (per sample)                     exact    ``elements``
================================  ==========================================  =======  ========================
``Shift(max_shift, step)``        (dy, dx) integer circular shift             yes      the H·W shifts (or a box)
``Rotate(n=4)``                   angle, a multiple of 360°/n                 n=1,2,4  the n rotations
``Rotate(degrees=(lo, hi))``      angle in degrees, bilinear, zero padding    no       raises (continuous)
``Reflect(dims)``                 one 0/1 flip flag per dimension             yes      the 2^len(dims) flips
``Scale(factors)``                (factor, centre_y, centre_x), down-scaling  no       the factors (fixed centre)
``Product([T1, T2])``/``T1 * T2`` the factors' parameters, concatenated       if all   the Cartesian product
================================  ==========================================  =======  ========================

*Exact* transforms are permutations of the pixels (one gather with a per-sample index map), so
``inverse(apply(x))`` returns ``x`` bit for bit and the adjoint :math:`T_g^\top` equals the inverse.
Interpolating transforms are linear maps with real coefficients; their ``adjoint`` is the exact
transpose of the discretised map (computed by autograd), and their ``inverse`` is only approximate.

Example:
    >>> import torch
    >>> from selfinv.transforms import Rotate, Shift
    >>> T = Shift() * Rotate(n=4)              # shift first, then rotate by a multiple of 90 degrees
    >>> x = torch.rand(3, 1, 8, 8)
    >>> y, params = T(x, generator=torch.Generator().manual_seed(0))
    >>> params.shape                           # (dy, dx, angle) for each sample
    torch.Size([3, 3])
    >>> torch.equal(T.inverse(y, params), x)   # exact: a pixel permutation
    True
    >>> T.elements((8, 8)).shape               # |G| = 64 shifts x 4 rotations
    torch.Size([256, 3])
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selfinv import _random

__all__ = ["Product", "Reflect", "Rotate", "Scale", "Shift", "Transform"]

#: dtype of every parameter tensor (integers such as shifts and flags are exact in float64)
PARAM_DTYPE = torch.float64


# ---------------------------------------------------------------------- helpers
def _size(img_size, owner: str) -> tuple[int, int]:
    if img_size is None:
        raise ValueError(f"{owner}: img_size (H, W) is needed to sample or enumerate this transform")
    if isinstance(img_size, numbers.Integral) and not isinstance(img_size, bool):
        img_size = (int(img_size), int(img_size))
    try:
        h, w = (int(s) for s in img_size)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: img_size must be an int or a pair (H, W), got {img_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{owner}: img_size must be positive, got {img_size!r}")
    return h, w


def _check_x(x, owner: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{owner}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{owner}: x must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        raise ValueError(f"{owner}: x must be a floating-point or complex tensor, got {x.dtype}")


def _check_batch(batch_size, owner: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"{owner}: batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(shape, generator) -> torch.Tensor:
    return _random.rand(shape, generator=generator, dtype=PARAM_DTYPE, device=_device(generator))


def _permute(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """out[b, c].flat[p] = x[b, c].flat[index[b, p]] for an index map (B, H*W) per sample."""
    b, c, h, w = x.shape
    idx = index.to(x.device)[:, None, :].expand(b, c, h * w)
    return x.reshape(b, c, h * w).gather(2, idx).reshape(b, c, h, w)


def _transpose(fn, y: torch.Tensor) -> torch.Tensor:
    """The transpose of a real-coefficient linear map ``fn`` applied to ``y`` (an exact vector-Jacobian product)."""
    if y.is_complex():  # a real-coefficient map acts on the real and imaginary parts separately
        return torch.complex(_transpose(fn, y.real.contiguous()), _transpose(fn, y.imag.contiguous()))
    with torch.enable_grad():
        x0 = torch.zeros_like(y, requires_grad=True)
        (g,) = torch.autograd.grad(fn(x0), x0, grad_outputs=y, create_graph=y.requires_grad)
    return g


def _as_real(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a real-coefficient map to a complex tensor through its (real, imaginary) channels."""
    if not x.is_complex():
        return fn(x)
    b, c, h, w = x.shape
    r = torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(b, 2 * c, h, w)
    out = fn(r).reshape(b, c, 2, h, w).permute(0, 1, 3, 4, 2).contiguous()
    return torch.view_as_complex(out)


# ---------------------------------------------------------------------- the base class
class Transform:
    r"""A family of linear maps :math:`T_g` on (B, C, H, W) images, one element :math:`g` per sample.

    Subclasses set ``n_params`` (k, the width of the parameter tensor) and ``exact`` and implement
    ``_sample``, ``_apply``, ``_inverse`` and ``_elements``; the public methods validate their inputs
    and raise ``ValueError`` with the transform's name.

    ``adjoint`` is :math:`T_g^\top`: the inverse for exact (permutation) transforms, otherwise the
    transpose of the discretised linear map, computed exactly by one autograd vector-Jacobian product.
    Transforms multiply: ``T1 * T2`` is :class:`Product` ``([T1, T2])``, which applies ``T1`` first.
    """

    #: width k of the (B, k) parameter tensor
    n_params: int = 1
    #: True when T_g permutes the pixels, so that ``inverse(apply(x)) == x`` bit for bit
    exact: bool = False

    # ------------------------------------------------------------------ public API
    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        img_size: int | tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Draw one group element per sample: a (batch_size, n_params) float64 tensor on the generator's device.

        ``img_size`` (H, W) is needed by transforms whose range depends on the image (``Shift()``).
        """
        b = _check_batch(batch_size, self._name)
        return self._sample(b, generator, img_size)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        r""":math:`T_g x`, each sample with its own parameters."""
        _check_x(x, self._name)
        return self._apply(x, self._params(params, x))

    def inverse(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        r""":math:`T_g^{-1} x` (exact for ``exact`` transforms, approximate otherwise)."""
        _check_x(x, self._name)
        return self._inverse(x, self._params(params, x))

    def adjoint(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        r""":math:`T_g^\top x`, the transpose of :meth:`apply` (exact for every transform)."""
        _check_x(x, self._name)
        p = self._params(params, x)
        return self._adjoint(x, p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one element per sample and apply it: returns ``(T_g x, params)``."""
        _check_x(x, self._name)
        params = self.sample(x.shape[0], generator, img_size=tuple(x.shape[-2:]))
        return self.apply(x, params), params

    def elements(self, img_size: int | tuple[int, int]) -> torch.Tensor:
        """Every element of the (finite) set the transform draws from, as a (|G|, n_params) tensor.

        Raises ``ValueError`` for continuous families (``Rotate(degrees=...)``, ``Scale`` with a random centre).
        """
        return self._elements(_size(img_size, self._name))

    def __mul__(self, other: Transform) -> Product:
        if not isinstance(other, Transform):
            return NotImplemented
        return Product([self, other])

    # ------------------------------------------------------------------ hooks
    def _sample(self, batch_size, generator, img_size) -> torch.Tensor:
        raise NotImplementedError

    def _apply(self, x, p) -> torch.Tensor:
        raise NotImplementedError

    def _inverse(self, x, p) -> torch.Tensor:
        raise NotImplementedError

    def _adjoint(self, x, p) -> torch.Tensor:
        if self.exact:
            return self._inverse(x, p)
        return _transpose(lambda v: self._apply(v, p), x)

    def _elements(self, size: tuple[int, int]) -> torch.Tensor:
        raise ValueError(f"{self._name} is a continuous family: it has no finite list of elements")

    def _check_params(self, p: torch.Tensor, x: torch.Tensor) -> None:
        """Raise ValueError if the parameter values are not valid for x (subclass hook)."""

    # ------------------------------------------------------------------ helpers
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _params(self, params, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(params, torch.Tensor):
            raise ValueError(f"{self._name}: params must be a torch.Tensor, got {type(params).__name__}")
        if params.ndim != 2 or params.shape[1] != self.n_params or params.shape[0] != x.shape[0]:
            raise ValueError(
                f"{self._name}: params must have shape (B, {self.n_params}) = ({x.shape[0]}, {self.n_params}), "
                f"got {tuple(params.shape)}"
            )
        if params.is_complex():
            raise ValueError(f"{self._name}: params must be real, got {params.dtype}")
        p = params.detach().to(device=x.device, dtype=PARAM_DTYPE)
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"{self._name}: params contain NaN or Inf")
        self._check_params(p, x)
        return p

    def __repr__(self) -> str:
        return f"{self._name}()"


# ---------------------------------------------------------------------- exact transforms
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


# ---------------------------------------------------------------------- rotations
class Rotate(Transform):
    r"""Rotations about the image centre, counter-clockwise as displayed (``torch.rot90`` for 90°).

    Two families:

    * ``Rotate(n)``: the cyclic group of the n rotations by multiples of :math:`360°/n`, drawn
      uniformly. For n ∈ {1, 2, 4} these are exact pixel permutations (``exact=True``): 180° works on
      any image, but **90° and 270° need square images** (they swap H and W) and raise ``ValueError``
      otherwise — use ``Rotate(n=2)`` on non-square images. Other n interpolate as below.
    * ``Rotate(degrees=(lo, hi))``: angles uniform in [lo, hi), by bilinear interpolation
      (``grid_sample``) with zero padding outside the image. Not exact: corners are lost and the image
      is smoothed, so ``inverse`` (rotation by the opposite angle) is approximate; ``adjoint`` is the
      exact transpose of the interpolation.

    The output pixel at offset :math:`(u, v)` from the centre :math:`((W-1)/2, (H-1)/2)` (u to the right,
    v down) takes the input value at :math:`(u\cos\theta - v\sin\theta,\ u\sin\theta + v\cos\theta)`.
    Rotation invariance is the group used for CT and MRI in EI (Chen, Tachella & Davies, ICCV 2021;
    CVPR 2022).

    Args:
        n: number of rotations of the cyclic group (default 4 when ``degrees`` is not given).
        degrees: (lo, hi) range of a continuous family, exclusive with ``n``.

    Parameters: (B, 1) angles in degrees.

    Example:
        >>> import torch
        >>> from selfinv.transforms import Rotate
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> torch.equal(Rotate(n=4).apply(x, torch.tensor([[90.0]])), torch.rot90(x, 1, dims=(-2, -1)))
        True
        >>> Rotate(n=4).elements(8).flatten().tolist()
        [0.0, 90.0, 180.0, 270.0]
    """

    def __init__(self, n: int | None = None, degrees: tuple[float, float] | None = None) -> None:
        if degrees is not None:
            if n is not None:
                raise ValueError("Rotate: give either n (a cyclic group) or degrees (a continuous range), not both")
            try:
                lo, hi = (float(d) for d in degrees)
            except (TypeError, ValueError):
                raise ValueError(f"Rotate: degrees must be a pair (lo, hi), got {degrees!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"Rotate: degrees must satisfy lo <= hi (finite), got {degrees!r}")
            self.n, self.degrees = None, (lo, hi)
        else:
            n = 4 if n is None else n
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
                raise ValueError(f"Rotate: n must be an int >= 1, got {n!r}")
            self.n, self.degrees = int(n), None
        self.exact = self.n in (1, 2, 4)

    def _sample(self, batch_size, generator, img_size):
        u = _uniform((batch_size, 1), generator)
        if self.degrees is not None:
            lo, hi = self.degrees
            return lo + (hi - lo) * u
        return (u * self.n).floor() * (360.0 / self.n)

    def _check_params(self, p, x):
        if not self.exact:
            return
        k = p[:, 0] / 90.0
        if not bool((k == k.round()).all()):
            raise ValueError(f"Rotate(n={self.n}): exact rotations need multiples of 90 degrees, got {p[:, 0].tolist()}")
        h, w = x.shape[-2:]
        if h != w and bool((k.round().long() % 2 == 1).any()):
            raise ValueError(
                f"Rotate: a 90 or 270 degree rotation swaps H and W, so it needs square images, got {h} x {w}; "
                "use Rotate(n=2) (180 degrees) on non-square images"
            )

    # exact path: index maps of torch.rot90
    def _index(self, p, h, w):
        base = torch.arange(h * w, device=p.device).reshape(h, w)
        ks = (0, 1, 2, 3) if h == w else (0, 2)
        maps = torch.zeros(4, h * w, dtype=torch.long, device=p.device)
        for k in ks:
            maps[k] = torch.rot90(base, k, dims=(0, 1)).reshape(-1)
        return maps[(p[:, 0] / 90.0).round().long() % 4]

    def _rotate(self, x, angle):
        """Bilinear rotation by per-sample angles (degrees), zero padding."""
        b, _, h, w = x.shape
        theta = torch.deg2rad(angle).to(x.real.dtype if x.is_complex() else x.dtype)[:, None, None]
        u = (torch.arange(w, device=x.device, dtype=theta.dtype) - (w - 1) / 2)[None, None, :]
        v = (torch.arange(h, device=x.device, dtype=theta.dtype) - (h - 1) / 2)[None, :, None]
        cos, sin = torch.cos(theta), torch.sin(theta)
        u_in = u * cos - v * sin
        v_in = u * sin + v * cos
        grid = torch.stack([2 * u_in / w, 2 * v_in / h], dim=-1)  # align_corners=False normalisation
        return _as_real(lambda r: F.grid_sample(r, grid, mode="bilinear", padding_mode="zeros", align_corners=False), x)

    def _apply(self, x, p):
        if self.exact:
            return _permute(x, self._index(p, *x.shape[-2:]))
        return self._rotate(x, p[:, 0])

    def _inverse(self, x, p):
        if self.exact:
            return _permute(x, self._index(-p, *x.shape[-2:]))
        return self._rotate(x, -p[:, 0])

    def _elements(self, size):
        if self.degrees is not None:
            return super()._elements(size)
        return (torch.arange(self.n, dtype=PARAM_DTYPE) * (360.0 / self.n))[:, None]

    def __repr__(self) -> str:
        return f"Rotate(degrees={self.degrees})" if self.degrees is not None else f"Rotate(n={self.n})"


# ---------------------------------------------------------------------- scale
class Scale(Transform):
    r"""Down-scaling (zoom out) about a centre, as in scale-equivariant imaging for deblurring and super-resolution.

    Scanvic, Davies, Abry & Tachella, "Self-supervised learning for image super-resolution and
    deblurring" (2023, arXiv:2312.11232) use the approximate scale invariance of natural images: for
    a factor :math:`s \le 1` and a centre :math:`c`,

    .. math:: (T_g x)(p) = (G_{\sigma(s)} x)\big(c + (p - c)/s\big),

    the image shrinks by :math:`s` about :math:`c` and the surrounding area is filled by the boundary
    extension of :math:`x` (``"periodic"`` or whole-sample symmetric ``"reflect"``). Values between
    pixels are bilinear (separable, per sample). With ``antialias`` the image is first low-pass filtered
    by a Gaussian of standard deviation :math:`\sigma(s) = (1/s - 1)/2` pixels (the rule of
    ``skimage.transform.rescale``), applied in Fourier on the periodic (or symmetric) extension.

    Not invertible: detail is lost. ``inverse`` zooms back in by :math:`1/s` (bilinear, no deblurring),
    so ``inverse(apply(x)) ≈ x`` only for smooth images, away from the borders. ``adjoint`` is the
    exact transpose of the discretised map (autograd). A factor of 1 is the identity.

    Args:
        factors: the scale factors, drawn uniformly per sample; each in (0, 1]. Default (0.5, 0.75),
            the factors of Scanvic et al. (and deepinv's default).
        padding: ``"periodic"`` or ``"reflect"``.
        antialias: low-pass filter before down-sampling.
        random_center: draw the centre uniformly in the image per sample (as Scanvic et al.); if False
            the centre is the image centre and ``elements`` lists the factors.

    Parameters: (B, 3) = (factor, cy, cx) with the centre :math:`c = (c_y (H-1), c_x (W-1))`, i.e. the
    centre as fractions in [0, 1] (0.5 = image centre).

    Example:
        >>> import torch
        >>> from selfinv.transforms import Scale
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y, params = Scale()(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape == x.shape, params.shape
        (True, torch.Size([2, 3]))
        >>> torch.equal(Scale().apply(x, torch.tensor([[1.0, 0.5, 0.5]] * 2)), x)   # factor 1: identity
        True
    """

    n_params = 3

    def __init__(
        self,
        factors: Sequence[float] = (0.5, 0.75),
        padding: str = "periodic",
        antialias: bool = True,
        random_center: bool = True,
    ) -> None:
        try:
            fs = tuple(float(f) for f in factors)
        except (TypeError, ValueError):
            raise ValueError(f"Scale: factors must be a sequence of numbers in (0, 1], got {factors!r}") from None
        if not fs or not all(0 < f <= 1 for f in fs):
            raise ValueError(f"Scale: factors must be a non-empty sequence of numbers in (0, 1], got {factors!r}")
        if padding not in ("periodic", "reflect"):
            raise ValueError(f"Scale: padding must be 'periodic' or 'reflect', got {padding!r}")
        self.factors, self.padding = fs, padding
        self.antialias, self.random_center = bool(antialias), bool(random_center)

    def _sample(self, batch_size, generator, img_size):
        u = _uniform((batch_size, 3), generator)
        fs = torch.tensor(self.factors, dtype=PARAM_DTYPE, device=u.device)
        s = fs[(u[:, 0] * len(fs)).floor().long().clamp_max(len(fs) - 1)]
        centre = u[:, 1:] if self.random_center else torch.full_like(u[:, 1:], 0.5)
        return torch.cat([s[:, None], centre], dim=1)

    def _check_params(self, p, x):
        if not bool((p[:, 0] > 0).all()):
            raise ValueError("Scale: factors must be > 0")

    def _boundary(self, i: torch.Tensor, n: int) -> torch.Tensor:
        if self.padding == "periodic" or n == 1:
            return i % n
        period = 2 * n - 2
        r = i % period
        return torch.where(r >= n, period - r, r)

    def _interp(self, x: torch.Tensor, q: torch.Tensor, dim: int) -> torch.Tensor:
        """Linear interpolation of x along dim (-2 or -1) at per-sample positions q (B, L)."""
        n = x.shape[dim]
        i0 = q.floor()
        t = (q - i0).to(x.dtype)
        i0 = i0.long()
        a, b = self._boundary(i0, n), self._boundary(i0 + 1, n)
        shape = (x.shape[0], 1, -1, 1) if dim == -2 else (x.shape[0], 1, 1, -1)
        full = list(x.shape)
        full[dim] = q.shape[1]
        xa = x.gather(dim, a.reshape(shape).expand(full))
        xb = x.gather(dim, b.reshape(shape).expand(full))
        t = t.reshape(shape)
        return xa * (1 - t) + xb * t

    def _blur(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Gaussian low-pass with per-sample sigma, in Fourier on the periodic or symmetric extension."""
        h, w = x.shape[-2:]
        if self.padding == "reflect":
            if h > 2:
                x = torch.cat([x, x.flip(-2)[..., 1 : h - 1, :]], dim=-2)
            if w > 2:
                x = torch.cat([x, x.flip(-1)[..., :, 1 : w - 1]], dim=-1)
        fy = torch.fft.fftfreq(x.shape[-2], dtype=x.dtype, device=x.device)[:, None]
        fx = torch.fft.rfftfreq(x.shape[-1], dtype=x.dtype, device=x.device)[None, :]
        s2 = sigma.to(x.dtype).reshape(-1, 1, 1, 1) ** 2
        gain = torch.exp(-2 * math.pi**2 * s2 * (fy**2 + fx**2))
        out = torch.fft.irfft2(torch.fft.rfft2(x) * gain, s=tuple(x.shape[-2:]))
        return out[..., :h, :w]

    def _zoom(self, x, p, inverse: bool):
        h, w = x.shape[-2:]
        s = p[:, 0:1]
        cy, cx = p[:, 1:2] * (h - 1), p[:, 2:3] * (w - 1)
        rows = torch.arange(h, dtype=PARAM_DTYPE, device=x.device)[None]
        cols = torch.arange(w, dtype=PARAM_DTYPE, device=x.device)[None]
        factor = s if inverse else 1 / s
        qy, qx = cy + (rows - cy) * factor, cx + (cols - cx) * factor

        def real_map(r):
            if self.antialias and not inverse and bool((s < 1).any()):
                r = self._blur(r, ((1 / s[:, 0] - 1) / 2).clamp_min(0))
            return self._interp(self._interp(r, qy, -2), qx, -1)

        return _as_real(real_map, x)

    def _apply(self, x, p):
        return self._zoom(x, p, inverse=False)

    def _inverse(self, x, p):
        return self._zoom(x, p, inverse=True)

    def _elements(self, size):
        if self.random_center:
            return super()._elements(size)
        return torch.tensor([[f, 0.5, 0.5] for f in self.factors], dtype=PARAM_DTYPE)

    def __repr__(self) -> str:
        return f"Scale(factors={self.factors}, padding={self.padding!r})"


# ---------------------------------------------------------------------- products
class Product(Transform):
    r"""The product of transforms, applied **in list order**: ``Product([T1, T2]).apply(x) = T2(T1(x))``.

    ``T1 * T2`` builds the same object (nested products are flattened). Parameters are the factors'
    parameters concatenated in the same order; ``inverse`` applies the factors' inverses in reverse
    order (:math:`(T_2 T_1)^{-1} = T_1^{-1} T_2^{-1}`) and ``adjoint`` their adjoints in reverse order.
    It is exact when every factor is; ``elements`` is the Cartesian product of the factors' elements,
    so the sizes multiply (``Rotate(n=4) * Reflect(dims=("w",))`` lists the 4 × 2 = 8 elements of the
    dihedral group of the square).

    Example:
        >>> from selfinv.transforms import Reflect, Rotate, Shift
        >>> T = Shift(step=4) * Rotate(n=4)
        >>> T, T.n_params, len(T.elements(16))
        (Shift(step=4) * Rotate(n=4), 3, 64)
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        flat: list[Transform] = []
        for t in transforms:
            if not isinstance(t, Transform):
                raise ValueError(f"Product: every factor must be a Transform, got {type(t).__name__}")
            flat.extend(t.transforms if isinstance(t, Product) else [t])
        if not flat:
            raise ValueError("Product: needs at least one transform")
        self.transforms = tuple(flat)
        self.n_params = sum(t.n_params for t in flat)
        self.exact = all(t.exact for t in flat)

    def _split(self, p):
        return torch.split(p, [t.n_params for t in self.transforms], dim=1)

    def _sample(self, batch_size, generator, img_size):
        return torch.cat([t._sample(batch_size, generator, img_size) for t in self.transforms], dim=1)

    def _check_params(self, p, x):
        for t, q in zip(self.transforms, self._split(p), strict=True):
            t._check_params(q, x)

    def _apply(self, x, p):
        for t, q in zip(self.transforms, self._split(p), strict=True):
            x = t._apply(x, q)
        return x

    def _inverse(self, x, p):
        for t, q in reversed(list(zip(self.transforms, self._split(p), strict=True))):
            x = t._inverse(x, q)
        return x

    def _adjoint(self, x, p):
        for t, q in reversed(list(zip(self.transforms, self._split(p), strict=True))):
            x = t._adjoint(x, q)
        return x

    def _elements(self, size):
        out = torch.zeros(1, 0, dtype=PARAM_DTYPE)
        for t in self.transforms:
            e = t._elements(size)
            out = torch.cat([out.repeat_interleave(len(e), dim=0), e.repeat(len(out), 1)], dim=1)
        return out

    def __repr__(self) -> str:
        return " * ".join(repr(t) for t in self.transforms)
