r"""The :class:`Transform` contract, its group algebra (:class:`Product`) and the helpers every family shares.

A transform validates its inputs in the public methods and implements small private hooks; ``T1 * T2`` is the
:class:`Product` that applies ``T1`` first. The helpers check sizes and batches, draw uniform parameters from an
explicit generator, permute pixels (exact transforms) and transpose real-coefficient maps by autograd
(interpolating ones).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from selfinv import _random

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
