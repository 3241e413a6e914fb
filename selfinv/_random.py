"""Random draws from an explicit ``torch.Generator`` (never the global RNG state).

Draws are made on the generator's device and then moved to the target device, so a seed gives
the same numbers on CPU and GPU (the habit kornia documents in its TESTING.md).

:func:`global_seed` is the one exception, for code that cannot take a generator (weight initialisation
in ``nn.Module`` constructors, dropout): it seeds PyTorch's global generator for a block and restores it after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def global_seed(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run a block with PyTorch's global CPU generator (and ``device``'s, when it is a CUDA device) seeded
    with ``seed``, and restore their states after it.

    For draws that cannot take a ``torch.Generator``: the weight initialisation of ``nn.Module``
    constructors and layers such as dropout. The block's draws depend only on ``seed``, and the caller's
    global state is the same after the block as before it (the library never changes it).

    Example:
        >>> import torch
        >>> before = torch.get_rng_state()
        >>> with global_seed(0):
        ...     a = torch.rand(2)
        >>> with global_seed(0):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b), torch.equal(torch.get_rng_state(), before)
        (True, True)
    """
    device = torch.device("cpu" if device is None else device)
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def _gen_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def randn(
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Standard normal draws; complex dtypes get N(0, 1) in each of the real and imaginary parts."""
    real = dtype.to_real() if dtype.is_complex else dtype
    src = _gen_device(generator, device)
    if dtype.is_complex:
        z = torch.randn((*shape, 2), generator=generator, dtype=real, device=src)
        out = torch.view_as_complex(z)
    else:
        out = torch.randn(shape, generator=generator, dtype=real, device=src)
    return out.to(device)


def rand(
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Uniform draws on [0, 1)."""
    src = _gen_device(generator, device)
    return torch.rand(shape, generator=generator, dtype=dtype, device=src).to(device)


def poisson(rate: torch.Tensor, *, generator: torch.Generator | None) -> torch.Tensor:
    """Poisson draws with the given (non-negative) rates."""
    src = _gen_device(generator, rate.device)
    return torch.poisson(rate.to(src), generator=generator).to(rate.device)


def standard_gamma(shape_param: torch.Tensor, *, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(k, 1) draws for a tensor of shapes k > 0 (Marsaglia & Tsang, ACM TOMS 2000).

    ``torch.distributions.Gamma`` cannot take a generator, so this is the generator-driven version:
    the rejection loop runs over rounds (acceptance > 95 % per round), each round fully vectorised;
    k < 1 uses the boost Gamma(k) = Gamma(k + 1) · U^{1/k}.
    """
    src = _gen_device(generator, shape_param.device)
    k = shape_param.to(src)
    dtype = k.dtype
    boost = k < 1
    a = torch.where(boost, k + 1, k)
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    for _ in range(64):  # rounds of rejection sampling; P(any left after 64) is negligible
        n = int(todo.sum())
        if n == 0:
            break
        dd, cc = d[todo], c[todo]
        z = torch.randn(n, generator=generator, dtype=dtype, device=src)
        u = torch.rand(n, generator=generator, dtype=dtype, device=src)
        v = (1 + cc * z) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(torch.finfo(dtype).tiny)) < 0.5 * z**2 + dd - dd * v + dd * torch.log(v.clamp_min(1e-30)))
        idx = todo.nonzero(as_tuple=True)
        sel = tuple(i[ok] for i in idx)
        out[sel] = (dd * v)[ok]
        todo[sel] = False
    if bool(todo.any()):  # pragma: no cover - probability ~ 0.05**64
        raise RuntimeError("gamma sampler did not converge")
    if bool(boost.any()):
        u = torch.rand(k.shape, generator=generator, dtype=dtype, device=src)
        out = torch.where(boost, out * u.clamp_min(torch.finfo(dtype).tiny) ** (1.0 / k), out)
    return out.to(shape_param.device)
