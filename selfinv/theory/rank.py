r"""The rank condition :func:`rank_condition`: which method (dense or matrix-free) and which algorithm."""

from __future__ import annotations

import math

import torch

from selfinv.theory.bounds import _positive_int, counting_bound
from selfinv.theory.dense import _dense
from selfinv.theory.normal import (
    _AveragedNormal,
    _count,
    _dtype,
    _family,
    _generator,
    _infer_shape,
    _measurements,
)
from selfinv.theory.randomized import _randomized
from selfinv.theory.results import RankResult
from selfinv.theory.structure import _fourier_rank, _permuted_average, _structure
from selfinv.transforms import Transform

#: ``method="auto"`` uses the dense method up to this many unknowns n ...
DENSE_MAX_N = 1024
#: ... while it needs at most this many operator applications (n · operators, times transforms unless exact) ...
DENSE_MAX_CALLS = 1 << 17
#: ... and at most this many gathers n² · |G| to average the permuted matrices of exact transforms
DENSE_MAX_GATHERS = 1 << 28


def _matrix_free(N: _AveragedNormal, dtype, tol, generator, block: int = 8):
    n, shape = N.n, N.x_shape
    if N.transform is not None and N.transform.exact and len(shape) == 3:
        # permutation transforms: find the structure of E_i A_i^H A_i (no |G| factor), then average by gathers
        base = _AveragedNormal([op for op, _ in N.ops], None, None, shape)
        kind, data = _structure(base, dtype, generator)
        if kind is not None:
            avg = _permuted_average(N, kind, data)
            if avg is not None and kind == "pixel":
                return (*_count(avg.real.flatten(), n, tol), "pixel-diagonal")
            if avg is not None:
                return _fourier_rank(avg, n, tol)
    kind, data = _structure(N, dtype, generator)
    if kind == "pixel":  # N = diag(d): masks, and masks under pixel permutations
        return (*_count(data.real.flatten(), n, tol), "pixel-diagonal")
    if kind == "fourier":  # translation invariant: blur, MRI, anything averaged over all shifts
        return _fourier_rank(data, n, tol)
    return _randomized(N, dtype, tol, generator, block)


def rank_condition(
    physics,
    transforms: Transform | None = None,
    n_operators: int | None = None,
    generator: torch.Generator | None = None,
    method: str = "auto",
    tol: float | None = None,
    *,
    n_transforms: int | None = None,
    x_shape: tuple[int, ...] | None = None,
) -> RankResult:
    r"""The necessary identifiability condition :math:`\operatorname{rank}(\mathbb{E}_{i,g} T_g^\top A_i^\top A_i T_g) = n`.

    Args:
        physics: one operator, a list of operators (the family :math:`A_1..A_G`), or an operator sampler
            (``selfinv.physics.samplers``: ``sampler(n_operators, generator)``). An operator with
            per-sample parameters (``batch_size`` B) counts as the B operators it holds.
        transforms: a :class:`~selfinv.transforms.Transform` for equivariant imaging (combined with every
            operator), or None.
        n_operators: how many operators to draw from a sampler.
        generator: draws the operators, the sampled transforms and the matrix-free probes; None uses a
            fresh generator seeded with 0, so results are reproducible.
        method: ``"dense"``, ``"matrix-free"`` or ``"auto"`` (dense when n <= ``DENSE_MAX_N`` = 1024 and
            its cost stays under ``DENSE_MAX_CALLS`` operator applications and ``DENSE_MAX_GATHERS``).
        tol: absolute eigenvalue threshold; default :math:`n\,\varepsilon\,\lambda_{\max}` (float64
            :math:`\varepsilon`, as ``numpy.linalg.matrix_rank``).
        n_transforms: use a random sample of this many transforms instead of all of
            ``transforms.elements`` (needed for continuous families).
        x_shape: per-sample input shape (C, H, W); default: the operators' own ``x_shape`` (a mask's, an image size).

    **Dense** applies the averaged normal operator to the n basis images (batched), symmetrises the
    n × n matrix and counts its ``eigvalsh`` eigenvalues above ``tol``. Cost: n · G operator
    applications and :math:`O(n^3)`; float64 (complex128 for complex operators). For exact
    (permutation) transforms the matrix :math:`\mathbb{E}_i A_i^\top A_i` is built once and its permuted
    copies :math:`T_g^\top M T_g` are averaged by index gathers (n · operators applications).

    **Matrix-free** applies the operator only to a few images and certifies a structure with random
    probes :math:`z` (:math:`\|Nz - Sz\| \le 10^{-10}\|Nz\|`; a different linear operator passes this with
    probability 0):

    * *pixel-diagonal* (:math:`N = \operatorname{diag}(N\mathbf 1)`: masks, also under shifts, flips and
      90° rotations): the rank is the number of pixels with :math:`d_i > ` tol, i.e. the pixels some
      operator observes. Exact.
    * *fourier-diagonal* (:math:`N` commutes with translations: blur, MRI, any operator averaged over
      all shifts; MRI with rotations or flips too): eigenvalues are the per-frequency C × C blocks of
      the DFT of :math:`N\delta_c`. Exact.
    * otherwise an adaptive randomized range finder (Halko, Martinsson & Tropp 2011, Alg. 4.2) with
      re-orthogonalised deflation, stopped when a block of 8 fresh probes has residuals below
      tol/8 (so :math:`\|(I-QQ^H)N\| \le` tol with probability :math:`\ge 1 - 10^{-8}`), then Rayleigh–Ritz
      on :math:`Q^H N Q`. Costs about 2 · rank + 64 applications of N and :math:`O(n\,\mathrm{rank})` memory,
      so it is practical for n up to a few 10⁴ with moderate rank; it can disagree with the dense count
      only for eigenvalues within a small factor of tol.

    For exact (permutation) transforms the structure is first sought in :math:`\mathbb{E}_i A_i^\top A_i`
    alone (C + 3 operator applications) and then averaged over the group by index gathers, nested
    factor by factor over a whole product group (a shift factor costs one FFT, or nothing for a
    translation-invariant operator): 128 × 128 MRI or inpainting with all 16384 shifts (× 4 rotations)
    takes well under a second. Otherwise each application of N costs G = operators × transforms
    operator applications.

    Example:
        >>> import torch
        >>> from selfinv.physics import MRI
        >>> from selfinv.transforms import Rotate, Shift
        >>> from selfinv.theory import rank_condition
        >>> mask = torch.zeros(16, 16); mask[:, 6:10] = 1                       # 4 central k-space columns
        >>> [rank_condition(MRI(mask), T).rank for T in (None, Shift(), Rotate(n=4))]
        [64, 64, 135]
        >>> print(rank_condition(MRI(mask), Rotate(n=4), method="matrix-free"))  # doctest: +ELLIPSIS
        rank 135/256 (rank-deficient by 121: the condition fails) over 1 operator x 4 transforms Rotate(n=4) [matrix-free, fourier-diagonal, ...
    """
    if method not in ("auto", "dense", "matrix-free"):
        raise ValueError(f"rank_condition: method must be 'auto', 'dense' or 'matrix-free', got {method!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"rank_condition: tol must be a finite number >= 0 or None, got {tol!r}")
    if transforms is not None and not isinstance(transforms, Transform):
        raise ValueError(f"rank_condition: transforms must be a selfinv.transforms.Transform or None, got {type(transforms).__name__}")
    gen = _generator(generator)
    ops = _family(physics, n_operators, gen)
    shape = _infer_shape(ops, x_shape)
    dtype = _dtype(ops)
    tparams = None
    if transforms is not None:
        if len(shape) != 3:
            raise ValueError(f"rank_condition: transforms need images, x_shape (C, H, W), got {shape}")
        if n_transforms is None:
            tparams = transforms.elements(shape[-2:])
        else:
            tparams = transforms.sample(_positive_int(n_transforms, "n_transforms"), gen, img_size=shape[-2:])
        tparams = tparams.cpu()
    N = _AveragedNormal(ops, transforms, tparams, shape, full_group=n_transforms is None)
    n = N.n
    if method == "auto":
        permuting = transforms is not None and transforms.exact
        calls = n * N.n_operators * (1 if permuting else N.group_size)
        gathers = n * n * N.group_size if permuting else 0
        method = "dense" if n <= DENSE_MAX_N and calls <= DENSE_MAX_CALLS and gathers <= DENSE_MAX_GATHERS else "matrix-free"
    with torch.no_grad():
        if method == "dense":
            rank, t, lmax, algorithm = _dense(N, dtype, tol)
        else:
            rank, t, lmax, algorithm = _matrix_free(N, dtype, tol, gen)
        ms = [v for op in ops for v in _measurements(op, shape, dtype)]
    G = N.n_operators * N.group_size
    return RankResult(
        rank=rank,
        n=n,
        holds=rank == n,
        method=method,
        algorithm=algorithm,
        tol=t,
        lambda_max=lmax,
        n_operators=N.n_operators,
        group_size=N.group_size,
        m=max(ms),
        bound=counting_bound(n, G),
        bound_holds=sum(ms) * N.group_size >= n,
        transform=None if transforms is None else repr(transforms),
    )
