r"""Linear operators with an algebra, and the physics contract :math:`y = \mathcal{N}(A x)`.

A ``LinearOperator`` is a physics object: it holds the linear forward operator :math:`A` and,
optionally, a noise model. ``physics(x, generator=None)`` returns a noisy measurement
:math:`y = \mathcal{N}(Ax)`; ``A``, ``A_adjoint``, ``A_dagger`` and ``normal`` give the linear algebra.

Operators form an algebra in the style of sigpy's ``Linop``: ``op.H`` is an operator (the adjoint),
``A @ B`` composes (``(A @ B).H == B.H @ A.H``), ``A + B`` adds, ``c * A`` scales and ``op.subsample(s)``
is :math:`S A` with the diagonal :class:`MeasurementMask` :math:`S`, defined here with the algebra that
builds it. Public methods validate shapes and dtypes and raise errors that name the operator; subclasses
implement the small private hooks ``_A``, ``_A_adjoint`` and optionally ``_A_dagger`` (by default
:func:`~selfinv.physics.solvers.cg_dagger`), ``_normal``, ``_check_x``, ``_check_y``, ``_restrict`` and
``_groups`` (which measurement entries are acquired together).
Parameters (masks, kernels, angles) are constructor arguments and are never changed by ``A`` or
``forward``.

An operator also states the facts that code outside reads instead of testing its type: ``x_shape`` (the
input shape it fixes, for :mod:`selfinv.theory`), ``crop_alignment`` (whether and how its measurements can be
cut into patches and tiles) and ``no_learning(y)`` (its reconstruction without a network, the baseline of
validation and evaluation). A new operator is its module, one line in :data:`selfinv.physics.OPERATORS` and
one case in the contract tests.

Example:
    >>> import torch
    >>> from selfinv.physics import Inpainting
    >>> from selfinv.noise import Gaussian
    >>> mask = (torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    >>> physics = Inpainting(mask, noise=Gaussian(0.1))
    >>> x = torch.rand(2, 1, 8, 8)
    >>> y = physics(x, generator=torch.Generator().manual_seed(1))
    >>> bool(torch.all(y[:, :, mask[0, 0] == 0] == 0))    # nothing is measured off the mask
    True
    >>> torch.allclose(physics.A(physics.A_dagger(y)), physics.A(physics.A_dagger(physics.A(y))))
    True
"""

from __future__ import annotations

import copy
import math
import numbers

import torch

from selfinv._batched import PerSample
from selfinv.noise import NoiseModel
from selfinv.physics._mask import MaskHooks, as_measurement_mask
from selfinv.physics.solvers import cg_dagger


class LinearOperator(PerSample):
    """Base class of every forward operator (and thus of every physics object).

    Args:
        noise: the noise model applied by ``forward``; ``None`` means noiseless measurements.
    """

    #: True for operators whose image and measurement domains are complex (MRI), False for real ones,
    #: None for operators that accept both (denoising)
    is_complex: bool | None = False
    #: True when ``A_dagger`` is an exact pseudo-inverse (A A† A = A holds to rounding)
    exact_dagger: bool = False
    #: for operators acting pixel by pixel on the image grid (denoising, inpainting, masks, demosaicing): the
    #: corner alignment under which a crop of y is the measurement of the same crop of x (1; 2 for a 2 × 2
    #: colour-filter pattern). Training patches, held-out bands and tiled reconstruction cut measurements only
    #: for such operators; None for the others (MRI, CT, blur, compressed sensing), measured and reconstructed whole
    crop_alignment: int | None = None

    def __init__(self, noise: NoiseModel | None = None) -> None:
        super().__init__()
        if noise is not None and not isinstance(noise, NoiseModel):
            raise ValueError(f"{type(self).__name__}: noise must be a selfinv.noise model or None, got {type(noise).__name__}")
        self.register_module("noise", noise)

    # ------------------------------------------------------------------ public API
    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the forward operator :math:`A x`."""
        self._validate(x, "x", self._check_x)
        return self._A(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the adjoint :math:`A^H y`."""
        self._validate(y, "y", self._check_y)
        return self._A_adjoint(y)

    def A_dagger(self, y: torch.Tensor, tol: float = 1e-6, max_iter: int = 200) -> torch.Tensor:
        """Apply the pseudo-inverse :math:`A^\\dagger y`.

        A closed form where the operator has one; otherwise the minimum-norm least-squares solution by
        conjugate gradient on the normal equations, started at zero (``tol`` is the relative residual
        of :math:`A^H A x = A^H y`, ``max_iter`` the iteration cap).
        """
        self._validate(y, "y", self._check_y)
        return self._A_dagger(y, tol, max_iter)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the normal operator :math:`A^H A x`."""
        self._validate(x, "x", self._check_x)
        return self._normal(x)

    @property
    def measurement_is_complex(self) -> bool | None:
        """``is_complex`` of the measurements, where it differs from the images' (radio: real sky, complex visibilities)."""
        return self.is_complex

    @property
    def x_shape(self) -> tuple[int, ...] | None:
        """The per-sample input shape, e.g. (C, H, W), when the operator fixes it (from its mask, its image size or
        its matrix); None when it accepts inputs of any size (denoising, blur, demosaicing). Where an image has
        any number of channels (tomography), the shape with one channel."""
        return None

    def no_learning(self, y: torch.Tensor) -> torch.Tensor:
        """The reconstruction without a network, the baseline that validation and evaluation report next to the
        trained one: :math:`A^\\dagger y` unless the operator knows better (y itself for denoising and deblurring,
        filtered back-projection for tomography)."""
        return self.A_dagger(y)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Simulate a measurement :math:`y = \\mathcal{N}(A x)` (noiseless when ``noise`` is None)."""
        return self.add_noise(self.A(x), generator)

    def add_noise(self, z: torch.Tensor, generator: torch.Generator | None = None, clamp: bool = False) -> torch.Tensor:
        """The noise model applied to clean measurements ``z = A x`` (entries not acquired stay zero).
        ``clamp=True`` first clips ``z`` at 0 for count-type noise (Poisson, Gamma), which needs ``z ≥ 0``:
        for simulating from an estimate that may dip below zero."""
        if self.noise is None:
            return z
        if clamp and self.noise.needs_nonnegative:
            z = z.clamp_min(0)
        return self._restrict(self.noise(z, generator))

    @property
    def H(self) -> LinearOperator:
        """The adjoint operator (``A.H.A == A.A_adjoint``)."""
        return Adjoint(self)

    def with_noise(self, noise: NoiseModel | None) -> LinearOperator:
        """The same operator with another noise model (the original is untouched)."""
        new = self._shallow_copy()
        new._modules["noise"] = noise
        return new

    def acquired(self, y: torch.Tensor) -> torch.Tensor:
        """Boolean mask (broadcastable to y) of the measurement entries that are really acquired.

        Masked operators (inpainting, MRI) zero-fill what they do not measure; those entries are not
        measurements and must not be split, re-noised or counted by a loss.
        """
        self._validate(y, "y", self._check_y)
        return self._restrict(torch.ones_like(y)) != 0

    def measurement_groups(self, y: torch.Tensor) -> torch.Tensor:
        """Integer labels (int64, broadcastable to y) of the groups of measurement entries acquired together.

        Entries of one sample with the same label were acquired as one unit: a Cartesian k-space line
        (:class:`~selfinv.physics.MRI` with a mask constant along an axis), a CT view (all detector bins
        of one angle and channel, :class:`~selfinv.physics.tomography.Tomography`). Measurement
        splitting (:class:`~selfinv.losses.Splitting`) holds out whole groups, so that the network
        learns to fill what the acquisition really misses. Labels lie in ``[0, G)`` per sample; a
        leading dimension of 1 is shared by the batch. The default, for operators without such
        structure (denoising, inpainting, ...), is one group per entry.
        """
        self._validate(y, "y", self._check_y)
        groups = self._groups(y)
        if groups is None:
            groups = torch.arange(y[0].numel(), device=y.device).reshape(1, *y.shape[1:])
        return groups

    def subsample(self, mask: torch.Tensor) -> LinearOperator:
        """The operator :math:`S A` that keeps only the measurements where ``mask`` is non-zero.

        ``mask`` is broadcastable to the measurements (per sample allowed). Operators that are masks
        themselves return the same kind of operator with the product mask (keeping closed-form
        pseudo-inverses); others compose a :class:`~selfinv.physics.MeasurementMask` on the left. The
        noise model is kept, so ``S A`` describes the noise of ``S y``.
        """
        return MeasurementMask(mask, noise=self.noise) @ self.with_noise(None)

    # ------------------------------------------------------------------ algebra
    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Compose([self, other])

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum([self, other])

    def __mul__(self, scalar: numbers.Number) -> LinearOperator:
        if not isinstance(scalar, numbers.Number) or isinstance(scalar, bool):
            return NotImplemented
        return Scaled(self, scalar)

    __rmul__ = __mul__

    # ------------------------------------------------------------------ hooks
    def _A(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _A_dagger(self, y: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
        return cg_dagger(self, y, tol=tol, max_iter=max_iter)

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return self._A_adjoint(self._A(x))

    def _check_x(self, x: torch.Tensor) -> None:
        """Raise ValueError if x is not a valid input (shape, size)."""

    def _check_y(self, y: torch.Tensor) -> None:
        """Raise ValueError if y is not a valid measurement (shape, size)."""

    def _restrict(self, y: torch.Tensor) -> torch.Tensor:
        """Zero what is not measured after noise (masked operators zero-fill their measurements)."""
        return y

    def _groups(self, y: torch.Tensor) -> torch.Tensor | None:
        """Group labels of the measurement entries (see :meth:`measurement_groups`); None: one per entry."""
        return None

    # ------------------------------------------------------------------ helpers
    def _validate(self, t: torch.Tensor, name: str, check) -> None:
        op = type(self).__name__
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must be batched (B, ...), got shape {tuple(t.shape)}")
        kind = self.is_complex if name == "x" else self.measurement_is_complex
        if kind is True and not t.is_complex():
            raise ValueError(
                f"{op}: {name} must be complex ({name}.dtype is {t.dtype}); "
                "convert 2-channel real data with selfinv.physics.channels_to_complex"
            )
        if kind is False and t.is_complex():
            raise ValueError(
                f"{op}: {name} must be real ({name}.dtype is {t.dtype}); "
                "convert complex data with selfinv.physics.complex_to_channels"
            )
        if not (t.is_floating_point() or t.is_complex()):
            raise ValueError(f"{op}: {name} must be a floating-point tensor, got {t.dtype}")
        self._check_batch(t.shape[0], name)
        check(t)

    def _shallow_copy(self) -> LinearOperator:
        new = copy.copy(self)
        new._buffers = dict(self._buffers)
        new._parameters = dict(self._parameters)
        new._modules = dict(self._modules)
        return new

    def _shape_error(self, name: str, t: torch.Tensor, expected: str) -> ValueError:
        return ValueError(f"{type(self).__name__}: {name} has shape {tuple(t.shape)}, expected {expected}")


# ---------------------------------------------------------------------- the algebra
class Adjoint(LinearOperator):
    """The adjoint :math:`A^H` of an operator, as an operator (noiseless; ``x_shape`` None: its input is a measurement)."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(noise=None)
        self.op = op
        self.is_complex = op.measurement_is_complex

    measurement_is_complex = property(lambda self: self.op.is_complex)  # the adjoint swaps the domains

    def _A(self, x):
        return self.op._A_adjoint(x)

    def _A_adjoint(self, y):
        return self.op._A(y)

    def _check_x(self, x):
        self.op._check_y(x)

    def _check_y(self, y):
        self.op._check_x(y)

    @property
    def H(self) -> LinearOperator:
        return self.op

    @property
    def crop_alignment(self) -> int | None:
        return self.op.crop_alignment


class Compose(LinearOperator):
    """The composition :math:`A_1 A_2 \\cdots A_k` (applied right to left); its adjoint reverses the order.

    The noise model of the composition is that of the leftmost operator, the one acting last.
    """

    def __init__(self, ops: list[LinearOperator]) -> None:
        flat: list[LinearOperator] = []
        for op in ops:
            flat.extend(op.ops if isinstance(op, Compose) else [op])
        super().__init__(noise=flat[0].noise)
        kinds = [op.is_complex for op in reversed(flat) if op.is_complex is not None]
        self.is_complex = kinds[0] if kinds else None  # the input domain; every factor validates its own input
        self.ops = torch.nn.ModuleList([op.with_noise(None) for op in flat])

    measurement_is_complex = property(lambda self: next((o.measurement_is_complex for o in self.ops
                                                         if o.measurement_is_complex is not None), None))

    def _validate(self, t, name, check):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"Compose: {name} must be a torch.Tensor, got {type(t).__name__}")
        self._check_batch(t.shape[0], name)  # dtypes and shapes are checked by each factor

    def _A(self, x):
        for op in reversed(self.ops):
            x = op.A(x)
        return x

    def _A_adjoint(self, y):
        for op in self.ops:
            y = op.A_adjoint(y)
        return y

    def _restrict(self, y):
        return self.ops[0]._restrict(y)

    def _groups(self, y):
        # y is the leftmost factor's output; a MeasurementMask (S A from ``subsample``) keeps the layout
        # of its input, so the structure is that of the first factor that is not one
        for op in self.ops:
            if not isinstance(op, MeasurementMask):
                return op._groups(y)
        return None

    @property
    def H(self) -> LinearOperator:
        return Compose([op.H for op in reversed(self.ops)])

    @property
    def crop_alignment(self) -> int | None:
        return _common_alignment(self.ops)

    @property
    def x_shape(self) -> tuple[int, ...] | None:
        return _first_shape(reversed(self.ops))  # the rightmost factor acts first

    def no_learning(self, y):
        try:
            fbp = self.fbp
        except AttributeError:
            return self.A_dagger(y)
        return fbp(y)

    @property
    def fbp(self):
        r""":math:`S_1 \cdots S_k A` with a filtered back-projection for A (a subsampled sinogram,
        ``Tomography.subsample``, subsampled again by a split of it): the FBP of the zero-filled measurements,
        :math:`\mathrm{FBP}_A(S_k^H \cdots S_1^H y)`. Absent otherwise."""
        inner, masks = self.ops[-1], list(self.ops[:-1])
        if masks and all(isinstance(m, MeasurementMask) for m in masks) and callable(getattr(inner, "fbp", None)):
            def zero_filled_fbp(y: torch.Tensor) -> torch.Tensor:
                for m in masks:  # S_1^H first: the adjoint reverses the composition
                    y = m.A_adjoint(y)
                return inner.fbp(y)

            return zero_filled_fbp
        raise AttributeError(f"{type(self).__name__} of {', '.join(type(o).__name__ for o in self.ops)} has no fbp")


class Sum(LinearOperator):
    """The sum :math:`A_1 + \\dots + A_k` of operators with the same domains (noiseless)."""

    def __init__(self, ops: list[LinearOperator]) -> None:
        super().__init__(noise=None)
        self.ops = torch.nn.ModuleList(ops)
        self.is_complex = ops[0].is_complex

    measurement_is_complex = property(lambda self: self.ops[0].measurement_is_complex)

    def _A(self, x):
        return sum(op.A(x) for op in self.ops)

    def _A_adjoint(self, y):
        return sum(op.A_adjoint(y) for op in self.ops)

    @property
    def H(self) -> LinearOperator:
        return Sum([op.H for op in self.ops])

    @property
    def crop_alignment(self) -> int | None:
        return _common_alignment(self.ops)

    @property
    def x_shape(self) -> tuple[int, ...] | None:
        return _first_shape(reversed(self.ops))


class Scaled(LinearOperator):
    """A scalar multiple :math:`c A`; the adjoint is :math:`\\bar c A^H`."""

    def __init__(self, op: LinearOperator, scalar: numbers.Number) -> None:
        super().__init__(noise=op.noise)
        self.op = op.with_noise(None)
        self.scalar = scalar
        self.is_complex = op.is_complex
        self.exact_dagger = op.exact_dagger and scalar != 0

    measurement_is_complex = property(lambda self: self.op.measurement_is_complex)

    def _A(self, x):
        return self.scalar * self.op._A(x)

    def _A_adjoint(self, y):
        return self.scalar.conjugate() * self.op._A_adjoint(y)

    def _A_dagger(self, y, tol, max_iter):
        if self.scalar == 0:
            return torch.zeros_like(self.op._A_adjoint(y))
        return self.op._A_dagger(y, tol, max_iter) / self.scalar

    def _check_x(self, x):
        self.op._check_x(x)

    def _check_y(self, y):
        self.op._check_y(y)

    def _restrict(self, y):
        return self.op._restrict(y)

    def _groups(self, y):
        return self.op._groups(y)

    @property
    def crop_alignment(self) -> int | None:
        return self.op.crop_alignment

    @property
    def x_shape(self) -> tuple[int, ...] | None:
        return self.op.x_shape


def _common_alignment(ops) -> int | None:
    """The crop alignment of a composition or sum: the least common multiple of its parts', None if one has none."""
    parts = [op.crop_alignment for op in ops]
    return None if any(p is None for p in parts) else math.lcm(*parts)


def _first_shape(ops) -> tuple[int, ...] | None:
    return next((op.x_shape for op in ops if op.x_shape is not None), None)


# ---------------------------------------------------------------------- the measurement mask S
class MeasurementMask(MaskHooks, LinearOperator):
    r""":math:`S = \operatorname{diag}(s)` acting on tensors of any shape (B, ...), s broadcastable to them.

    Used to subsample the measurements of an arbitrary operator, :math:`S A` (measurement splitting,
    SSDU). Unlike :class:`~selfinv.physics.Inpainting` it does not assume an image layout. It accepts
    real and complex data, and the pseudo-inverse is closed form (:math:`s^+ = 1/s` where s ≠ 0). In
    :math:`S A` it keeps the layout of A's measurements, so the composition reports A's
    :meth:`measurement_groups` (alone, one group per entry).

    Args:
        mask: (B|1, ...) non-negative, broadcastable to the data.
        noise: noise model, or ``None``.

    Example:
        >>> import torch
        >>> from selfinv.physics import MeasurementMask
        >>> MeasurementMask(torch.tensor([[1.0, 0.0, 1.0]])).A(torch.ones(2, 3))
        tensor([[1., 0., 1.],
                [1., 0., 1.]])
    """

    exact_dagger = True
    is_complex = None
    crop_alignment = 1
    _per_sample = ("mask",)

    def __init__(self, mask: torch.Tensor, noise: NoiseModel | None = None) -> None:
        super().__init__(noise=noise)
        self.register_buffer("mask", as_measurement_mask(mask))

    @property
    def x_shape(self) -> tuple[int, ...] | None:
        """The per-sample shape of the mask (size-1 dimensions broadcast); None for a mask of one dimension."""
        return tuple(int(s) for s in self.mask.shape[1:]) if self.mask.ndim >= 2 else None

    def _m(self, like):
        return self.mask.to(device=like.device, dtype=like.real.dtype if like.is_complex() else like.dtype)

    def _check_x(self, x):
        if x.ndim != self.mask.ndim:
            raise self._shape_error("x", x, f"{self.mask.ndim} dimensions like the mask {tuple(self.mask.shape)}")
        try:
            torch.broadcast_shapes(self.mask.shape, x.shape)
        except RuntimeError:
            raise self._shape_error("x", x, f"a shape the mask {tuple(self.mask.shape)} broadcasts to") from None

    _check_y = _check_x
