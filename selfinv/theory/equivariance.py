r"""Equivariance :math:`A T_g = \tilde T_g A`: the transforms that add no information (:func:`is_equivariant`)."""

from __future__ import annotations

import math

import torch

from selfinv import _random
from selfinv.physics.base import LinearOperator
from selfinv.theory.bounds import _positive_int
from selfinv.theory.normal import _CHUNK, _device, _dtype, _generator, _infer_shape
from selfinv.theory.results import EquivariantResult
from selfinv.transforms import Transform

#: at most this many group elements are tested exhaustively by ``is_equivariant`` ...
MAX_EXHAUSTIVE = 1024
#: ... and this many are sampled from larger or continuous families
N_SAMPLED = 64


def is_equivariant(
    physics: LinearOperator,
    transform: Transform,
    generator: torch.Generator | None = None,
    n_tests: int | None = None,
    tol: float = 1e-5,
    *,
    n_probes: int = 2,
    x_shape: tuple[int, ...] | None = None,
) -> EquivariantResult:
    r"""Test whether :math:`A T_g = \tilde T_g A` for some linear :math:`\tilde T_g`, for every tested g.

    Such a :math:`\tilde T_g` exists iff :math:`T_g` maps the nullspace of :math:`A` into itself, i.e.
    :math:`A T_g (I - A^\dagger A) = 0` (then :math:`\tilde T_g = A T_g A^\dagger`). For random probes
    :math:`z` and :math:`w = (I - A^\dagger A) z` the test computes
    :math:`\|A T_g w\| / (\|A\|_2 \|w\|)` (:math:`\|A\|_2` by power iteration); a non-zero
    :math:`A T_g (I - A^\dagger A)` gives a non-zero residual with probability 1. Equivariant operators
    gain nothing from the transforms (the rank condition stays at :math:`\operatorname{rank}(A)`):
    MRI and blur are shift-equivariant (:math:`\tilde T_g` a k-space modulation, resp. the shift
    itself), inpainting with a random mask is not.

    Args:
        physics: the operator (per-sample operators are all tested; the result is their worst case).
        transform: the transforms :math:`T_g`.
        generator: draws the probes (and sampled elements); None uses a generator seeded with 0.
        n_tests: None tests every element of a finite family with at most ``MAX_EXHAUSTIVE`` = 1024
            elements, else a sample of ``N_SAMPLED`` = 64 (also for continuous families); an int tests
            that many sampled elements.
        tol: threshold on the relative residual. It must exceed the accuracy of ``A_dagger`` (exact
            pseudo-inverses give ~1e-15; ``Blur`` drops Fourier coefficients below ``rtol`` = 1e-6).
        n_probes: random probes per element.
        x_shape: per-sample input shape (C, H, W) when it cannot be inferred.

    Example:
        >>> import torch
        >>> from selfinv.physics import Blur, MRI
        >>> from selfinv.physics.blur import gaussian_kernel
        >>> from selfinv.transforms import Rotate, Shift
        >>> from selfinv.theory import is_equivariant
        >>> mask = torch.zeros(8, 8); mask[:, ::3] = 1
        >>> is_equivariant(MRI(mask), Shift()).equivariant, is_equivariant(MRI(mask), Rotate(n=4)).equivariant
        (True, False)
        >>> print(is_equivariant(Blur(gaussian_kernel(1.0)), Shift(), x_shape=(1, 8, 8)))  # doctest: +ELLIPSIS
        Blur is equivariant to Shift() (these transforms add no information): max relative residual ... over all 64 group elements
    """
    if not isinstance(physics, LinearOperator):
        raise ValueError(f"is_equivariant: physics must be a LinearOperator, got {type(physics).__name__}")
    if not isinstance(transform, Transform):
        raise ValueError(f"is_equivariant: transform must be a selfinv.transforms.Transform, got {type(transform).__name__}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"is_equivariant: tol must be a finite number >= 0, got {tol!r}")
    n_probes = _positive_int(n_probes, "n_probes")
    gen = _generator(generator)
    op = physics.with_noise(None)
    shape = _infer_shape([op], x_shape)
    if len(shape) != 3:
        raise ValueError(f"is_equivariant: transforms need images, x_shape (C, H, W), got {shape}")
    dtype, dev = _dtype([op]), _device([op])
    params = None
    if n_tests is None:
        try:
            params = transform.elements(shape[-2:])
        except ValueError:  # a continuous family
            pass
        if params is not None and len(params) > MAX_EXHAUSTIVE:
            params = None
    exhaustive = params is not None
    if params is None:
        k = N_SAMPLED if n_tests is None else _positive_int(n_tests, "n_tests")
        params = transform.sample(k, gen, img_size=shape[-2:])
    params = params.cpu()
    b = op.batch_size
    nb, ng, n = b or 1, len(params), math.prod(shape)
    with torch.no_grad():
        # spectral norm of every operator sample by power iteration on A^H A
        v = _random.randn((nb, *shape), generator=gen, dtype=dtype, device=dev)
        for _ in range(30):
            v = v / v.flatten(1).norm(dim=1).clamp_min(1e-300).reshape(-1, *[1] * len(shape))
            v = op.normal(v)
        norms = v.flatten(1).norm(dim=1).sqrt()  # ||A^H A v|| for unit v -> sigma_max^2
        total = nb * ng * n_probes
        res = torch.zeros(total, dtype=torch.float64)
        step = max(1, _CHUNK // n)
        for start in range(0, total, step):
            t = torch.arange(start, min(total, start + step))
            g, s = (t // n_probes) % ng, t // (n_probes * ng)
            opc = op.select(s) if b else op
            z = _random.randn((len(t), *shape), generator=gen, dtype=dtype, device=dev)
            w = z - opc.A_dagger(opc.A(z), tol=1e-12, max_iter=1000)
            r = opc.A(transform.apply(w, params[g])).flatten(1).norm(dim=1)
            wn = w.flatten(1).norm(dim=1)
            znorm = z.flatten(1).norm(dim=1)
            ok = (wn > 1e-12 * znorm) & (norms[s] > 0)
            res[t] = torch.where(ok, r / (norms[s] * wn).clamp_min(1e-300), torch.zeros_like(r)).to("cpu", torch.float64)
    worst = int(res.argmax())
    residual = float(res[worst])
    return EquivariantResult(
        equivariant=residual <= tol,
        residual=residual,
        tol=float(tol),
        n_tested=ng,
        exhaustive=exhaustive,
        worst=tuple(float(p) for p in params[(worst // n_probes) % ng]),
        transform=repr(transform),
        operator=type(physics).__name__,
    )
