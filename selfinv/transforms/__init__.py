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

Layout: :mod:`~selfinv.transforms.base` holds the :class:`Transform` contract and the group algebra
(:class:`Product`); the geometric families live in :mod:`~selfinv.transforms.exact` (:class:`Shift`,
:class:`Reflect`), :mod:`~selfinv.transforms.rotate` and :mod:`~selfinv.transforms.scale`; the registry
:data:`TRANSFORMS` is here, next to them.

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

from selfinv.transforms.base import PARAM_DTYPE, Product, Transform  # noqa: F401 (PARAM_DTYPE: read here too)
from selfinv.transforms.exact import Reflect, Shift
from selfinv.transforms.rotate import Rotate
from selfinv.transforms.scale import Scale

__all__ = ["TRANSFORMS", "Product", "Reflect", "Rotate", "Scale", "Shift", "Transform"]

#: group actions for equivariant imaging, by config name (``transform: rotate`` or ``{name: rotate, n: 4}``)
TRANSFORMS: dict[str, type[Transform]] = {"shift": Shift, "rotate": Rotate, "reflect": Reflect, "scale": Scale}
