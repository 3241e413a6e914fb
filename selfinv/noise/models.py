r"""Noise models :math:`y \sim p(y \mid z)` for a clean measurement :math:`z = A x`.

Every parameter is a float or a per-sample tensor of shape (B,). Sampling takes an optional
``torch.Generator`` and is reproducible from it. Each model exposes what the self-supervised losses
need: its parameters (``sigma``, ``gain``, ``shape``) and ``variance(z)``, the per-element variance
of :math:`y` given the clean signal.

=================== ============================================================= =============================
model               sample                                                        variance(z)
=================== ============================================================= =============================
``Gaussian``        :math:`z + \sigma\,\varepsilon`                               :math:`\sigma^2`
``Poisson``         :math:`\gamma\,\mathcal{P}(z/\gamma)`                         :math:`\gamma z`
``PoissonGaussian`` :math:`c+\gamma\,\mathcal{P}((z-c)/\gamma)+\sigma\varepsilon` :math:`\gamma (z-c)+\sigma^2`
``Gamma``           :math:`z\,G,\ G\sim\mathcal{G}(\ell,\ell)`                    :math:`z^2/\ell`
=================== ============================================================= =============================

For complex data (MRI k-space) the Gaussian model adds :math:`\sigma` noise to the real and the
imaginary part independently, the same as :math:`\sigma` per channel on the 2-channel real view.

Example:
    >>> import torch
    >>> from selfinv.noise import Poisson
    >>> y = Poisson(gain=0.1)(torch.ones(2, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(y / 0.1, (y / 0.1).round(), atol=1e-4))
    True
"""

from __future__ import annotations

import torch

from selfinv import _random
from selfinv._batched import PerSample, as_param, broadcast_param


class NoiseModel(PerSample):
    """Base class: ``noise(z, generator=None) -> y``. Subclasses implement ``_sample`` and ``_variance``."""

    #: whether the model accepts complex z
    supports_complex: bool = False
    #: whether z must be non-negative (count-type noise)
    needs_nonnegative: bool = False
    #: per-sample parameters left out of the repr and of :func:`describe` while they are all 0 (optional ones)
    _omit_zero: tuple[str, ...] = ()

    def _register(self, name: str, value: float | torch.Tensor, *, positive: bool) -> None:
        t = as_param(value, name, type(self).__name__)
        bad = (t <= 0) if positive else (t < 0)
        if bool(bad.any()):
            rel = "> 0" if positive else ">= 0"
            raise ValueError(f"{type(self).__name__}: {name} must be {rel}, got {value}")
        self.register_buffer(name, t)
        self._per_sample = (*self._per_sample, name)

    def _validate(self, z: torch.Tensor) -> None:
        name = type(self).__name__
        if not isinstance(z, torch.Tensor):
            raise ValueError(f"{name}: expected a tensor, got {type(z).__name__}")
        if z.ndim < 1:
            raise ValueError(f"{name}: expected a batched tensor (B, ...), got a scalar")
        if z.is_complex() and not self.supports_complex:
            raise ValueError(f"{name}: noise is defined for real data only, got {z.dtype}")
        self._check_batch(z.shape[0])
        if self.needs_nonnegative:
            if bool(torch.isnan(z).any()):
                raise ValueError(f"{name}: input contains NaN")
            if bool((z < 0).any()):
                raise ValueError(f"{name}: input must be non-negative (min {float(z.min()):.3g})")
            if bool(torch.isinf(z).any()):
                raise ValueError(f"{name}: input contains Inf")

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self._validate(z)
        return self._sample(z, generator)

    def variance(self, z: torch.Tensor) -> torch.Tensor:
        """Per-element variance of y given the clean signal z (same shape as z)."""
        self._check_batch(z.shape[0])
        return self._variance(z)

    def _p(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return broadcast_param(getattr(self, name), like)

    def _sample(self, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def _variance(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _shown(self) -> tuple[str, ...]:
        """The per-sample parameters the repr and :func:`describe` show (optional ones only when nonzero)."""
        return tuple(n for n in self._per_sample if n not in self._omit_zero or bool(getattr(self, n).any()))

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={_fmt(getattr(self, n))}" for n in self._shown())


def _fmt(t: torch.Tensor) -> str:
    return f"{float(t):g}" if t.ndim == 0 else f"tensor(shape={tuple(t.shape)})"


class Gaussian(NoiseModel):
    r"""Additive white Gaussian noise :math:`y = z + \sigma\varepsilon`, :math:`\varepsilon\sim\mathcal{N}(0, I)`.

    Args:
        sigma: standard deviation, a float or a (B,) tensor, :math:`\sigma \ge 0`.
    """

    supports_complex = True

    def __init__(self, sigma: float | torch.Tensor) -> None:
        super().__init__()
        self._register("sigma", sigma, positive=False)

    def _sample(self, z, generator):
        eps = _random.randn(tuple(z.shape), generator=generator, dtype=z.dtype, device=z.device)
        return z + self._p("sigma", z) * eps

    def _variance(self, z):
        return (self._p("sigma", z) ** 2).expand(z.shape).to(z.real.dtype if z.is_complex() else z.dtype)


class Poisson(NoiseModel):
    r"""Scaled Poisson noise :math:`y = \gamma\,\mathcal{P}(z/\gamma)`: mean z, variance :math:`\gamma z`.

    Args:
        gain: :math:`\gamma > 0`, a float or a (B,) tensor (smaller gain = less noise).
    """

    needs_nonnegative = True

    def __init__(self, gain: float | torch.Tensor) -> None:
        super().__init__()
        self._register("gain", gain, positive=True)

    def _sample(self, z, generator):
        g = self._p("gain", z)
        return g * _random.poisson(z / g, generator=generator)

    def _variance(self, z):
        return self._p("gain", z) * z


class PoissonGaussian(NoiseModel):
    r"""Mixed Poisson-Gaussian noise :math:`y = c + \gamma\,\mathcal{P}((z - c)/\gamma) + \sigma\varepsilon`.

    Mean z, variance :math:`\gamma (z - c) + \sigma^2` (Le Montagner, Angelini & Olivo-Marin, IEEE TIP 2014, with
    :math:`c = 0`). The black level (camera offset, pedestal) :math:`c \ge 0` is the signal at which no photon is
    counted: real cameras have :math:`\operatorname{Var} y = \gamma x + b` with :math:`b = \sigma^2 - \gamma c`, which
    may be negative (Foi, Trimeche, Katkovnik & Egiazarian, IEEE TIP 2008); :func:`~selfinv.noise.estimate` returns
    such an offset. Signal below the black level counts no photons: :math:`z - c` is clamped at 0 in sampling and in
    ``variance`` (then y has mean c, not z). With ``offset=0`` (the default) it is the model without black level.

    Args:
        gain: :math:`\gamma > 0`, a float or a (B,) tensor.
        sigma: :math:`\sigma \ge 0`, a float or a (B,) tensor.
        offset: the black level :math:`c \ge 0`, a float or a (B,) tensor (a negative one would only be a larger
            :math:`\sigma^2`).
    """

    needs_nonnegative = True
    _omit_zero = ("offset",)

    def __init__(self, gain: float | torch.Tensor, sigma: float | torch.Tensor,
                 offset: float | torch.Tensor = 0.0) -> None:
        super().__init__()
        self._register("gain", gain, positive=True)
        self._register("sigma", sigma, positive=False)
        self._register("offset", offset, positive=False)

    def _photons(self, z):
        """:math:`z - c` clamped at 0 (z itself, bit for bit, without an offset)."""
        return z if not bool(self.offset.any()) else (z - self._p("offset", z)).clamp_min(0)

    def _sample(self, z, generator):
        g = self._p("gain", z)
        counts = _random.poisson(self._photons(z) / g, generator=generator)
        eps = _random.randn(tuple(z.shape), generator=generator, dtype=z.dtype, device=z.device)
        y = g * counts + self._p("sigma", z) * eps
        return y if not bool(self.offset.any()) else y + self._p("offset", z)

    def _variance(self, z):
        return self._p("gain", z) * self._photons(z) + self._p("sigma", z) ** 2


class Gamma(NoiseModel):
    r"""Multiplicative Gamma (speckle) noise :math:`y = z\,G`, :math:`G \sim \mathcal{G}(\ell, \text{rate}=\ell)`.

    Mean z, variance :math:`z^2/\ell` (:math:`\ell` = number of looks in SAR / ultrasound).

    Args:
        shape: :math:`\ell > 0`, a float or a (B,) tensor.
    """

    needs_nonnegative = True

    def __init__(self, shape: float | torch.Tensor) -> None:
        super().__init__()
        self._register("shape", shape, positive=True)

    def _sample(self, z, generator):
        ell = self._p("shape", z).expand(z.shape).contiguous()
        g = _random.standard_gamma(ell, generator=generator) / ell
        return z * g

    def _variance(self, z):
        return z**2 / self._p("shape", z)


#: registry of noise models by config name
NOISE_MODELS: dict[str, type[NoiseModel]] = {
    "gaussian": Gaussian,
    "poisson": Poisson,
    "poisson_gaussian": PoissonGaussian,
    "gamma": Gamma,
}


class CorrelatedGaussian(NoiseModel):
    r"""Spatially correlated Gaussian noise :math:`y = z + \sigma\,(k \circledast \varepsilon)`, :math:`\varepsilon\sim\mathcal{N}(0, I)`.

    :math:`k \circledast \varepsilon` is the circular convolution over the last two axes (height, width)
    with a small real kernel :math:`k` of shape (kh, kw), centred at (kh // 2, kw // 2); channels get
    independent noise. The noise is stationary: each pixel has variance :math:`\sigma^2\|k\|^2` and the
    covariance between pixels :math:`i` and :math:`i + o` is
    :math:`\sigma^2 (k \star k)[o] = \sigma^2 \sum_p k[p]\,k[p + o]` (the autocorrelation of the kernel),
    exactly so when the image is at least (2kh - 1) × (2kw - 1) (smaller images alias the offsets
    circularly). This is the "spatially-correlated noise" of UNSURE (Tachella, Davies & Jacques, ICLR
    2025: σ = 0.2 convolved with a 3×3 box).

    Args:
        sigma: noise scale :math:`\sigma \ge 0`, a float or a (B,) tensor.
        kernel: (kh, kw) real tensor.

    Example:
        >>> import torch
        >>> from selfinv.noise import CorrelatedGaussian
        >>> noise = CorrelatedGaussian(0.1, torch.ones(3, 3) / 3)
        >>> round(float(noise.covariance_kernel()[2, 2]), 6)   # σ² ‖k‖² at offset 0 (the centre of a 5×5 kernel)
        0.01
        >>> noise(torch.zeros(2, 1, 8, 8), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, sigma: float | torch.Tensor, kernel: torch.Tensor) -> None:
        super().__init__()
        self._register("sigma", sigma, positive=False)
        if not isinstance(kernel, torch.Tensor) or kernel.ndim != 2 or kernel.numel() == 0:
            shape = tuple(kernel.shape) if isinstance(kernel, torch.Tensor) else type(kernel).__name__
            raise ValueError(f"CorrelatedGaussian: kernel must be a (kh, kw) tensor, got {shape}")
        if kernel.is_complex():
            raise ValueError("CorrelatedGaussian: kernel must be real")
        kernel = kernel.detach()
        if not kernel.is_floating_point():
            kernel = kernel.to(torch.float64)
        if not bool(torch.isfinite(kernel).all()):
            raise ValueError("CorrelatedGaussian: kernel contains NaN or Inf")
        self.register_buffer("kernel", kernel)

    def _validate(self, z):
        super()._validate(z)
        kh, kw = self.kernel.shape
        if z.ndim < 3 or z.shape[-2] < kh or z.shape[-1] < kw:
            raise ValueError(
                f"CorrelatedGaussian: needs images (B, ..., H, W) at least as large as the {kh}×{kw} kernel, "
                f"got shape {tuple(z.shape)}"
            )

    def _correlate(self, eps: torch.Tensor) -> torch.Tensor:
        k = self.kernel.to(device=eps.device, dtype=eps.dtype)
        kh, kw = k.shape
        out = torch.zeros_like(eps)
        for p in range(kh):
            for q in range(kw):
                if float(k[p, q]) != 0.0:
                    out = out + k[p, q] * torch.roll(eps, shifts=(p - kh // 2, q - kw // 2), dims=(-2, -1))
        return out

    def _sample(self, z, generator):
        eps = _random.randn(tuple(z.shape), generator=generator, dtype=z.dtype, device=z.device)
        return z + self._p("sigma", z) * self._correlate(eps)

    def _variance(self, z):
        var = self._p("sigma", z) ** 2 * self.kernel.to(device=z.device, dtype=z.dtype).pow(2).sum()
        return var.expand(z.shape)

    def autocorrelation(self) -> torch.Tensor:
        r"""The kernel's autocorrelation :math:`(k \star k)[o] = \sum_p k[p]\,k[p+o]`, shape (2kh - 1, 2kw - 1), offset 0 at the centre."""
        k = self.kernel
        kh, kw = k.shape
        out = torch.zeros(2 * kh - 1, 2 * kw - 1, dtype=k.dtype, device=k.device)
        for dy in range(-(kh - 1), kh):
            for dx in range(-(kw - 1), kw):
                a = k[max(0, -dy) : kh - max(0, dy), max(0, -dx) : kw - max(0, dx)]
                b = k[max(0, dy) : kh - max(0, -dy), max(0, dx) : kw - max(0, -dx)]
                out[dy + kh - 1, dx + kw - 1] = (a * b).sum()
        return out

    def covariance_kernel(self) -> torch.Tensor:
        r"""The noise covariance by offset, :math:`\sigma^2 (k \star k)`: (2kh - 1, 2kw - 1), or (B, 2kh - 1, 2kw - 1) for a per-sample σ.

        Entry [kh - 1 + dy, kw - 1 + dx] is :math:`\mathrm{Cov}(n_{i}, n_{i + (dy, dx)})`.
        """
        s2 = self.sigma.to(self.kernel.dtype) ** 2
        auto = self.autocorrelation()
        return s2 * auto if s2.ndim == 0 else s2[:, None, None] * auto


NOISE_MODELS["correlated_gaussian"] = CorrelatedGaussian


class Unknown(NoiseModel):
    r"""Noise whose distribution and level nobody knows: what real measurements usually come with.

    It describes the measurements (``y = A x + ε`` with ε of unknown law) without being able to simulate
    them, so it cannot corrupt clean data and has no ``variance``. It tells the losses and the advisor
    what may be assumed: ``separable=True`` (the default) is noise that is independent from pixel to
    pixel (entry to entry) given the signal, with zero mean — the assumption of Noise2Void/Noise2Self,
    Neighbor2Neighbor, the blind-spot network and UNSURE (tutorial part 2, "unknown noise");
    ``separable=False`` allows spatially correlated noise as well (only the losses marked
    ``unknown_coloured_noise`` apply: Noise2Noise with pairs, UNSURE with a covariance). Losses that need
    the noise level (SURE, PURE, R2R, Noise2Score, ...) refuse it: estimate the level first, or choose one
    of those losses.

    Note the difference with ``noise: null`` in a config, which means *noiseless* measurements.

    Args:
        separable: whether the noise is independent between measurement entries.

    Example:
        >>> import torch
        >>> noise = Unknown()
        >>> noise
        Unknown(separable=True)
        >>> noise(torch.zeros(1, 1, 2, 2))
        Traceback (most recent call last):
        ...
        ValueError: Unknown: the noise is unknown, so it cannot be simulated; give a noise model (e.g. data.true_noise) to simulate measurements
    """

    supports_complex = True

    def __init__(self, separable: bool = True) -> None:
        super().__init__()
        if not isinstance(separable, bool):
            raise ValueError(f"Unknown: separable must be true or false, got {separable!r}")
        self.separable = separable

    def _sample(self, z, generator):
        raise ValueError(
            "Unknown: the noise is unknown, so it cannot be simulated; give a noise model (e.g. data.true_noise) "
            "to simulate measurements"
        )

    def _variance(self, z):
        raise ValueError("Unknown: the noise is unknown, so it has no variance; estimate it or use a loss that does not need it")

    def extra_repr(self) -> str:
        return f"separable={self.separable}"


NOISE_MODELS["unknown"] = Unknown


#: the noise models :class:`Estimate` can stand for
ESTIMABLE = ("auto", "gaussian", "poisson_gaussian")


class Estimate(NoiseModel):
    r"""A placeholder for noise whose model and level are read off the measurements (:func:`selfinv.noise.estimate`).

    In a config, ``noise: {name: estimate, model: auto}`` asks the engine to estimate the noise from the
    training measurements when the experiment is built and to replace this placeholder by the concrete
    :class:`Gaussian` or :class:`PoissonGaussian` it finds (the median of the per-sample estimates), which is
    what the run's config, its report and its checkpoints record. The losses that need the noise level (SURE,
    R2R, PURE, ...) then run with it. Like :class:`Unknown`, it cannot simulate anything.

    Args:
        model: ``"auto"`` (Poisson-Gaussian when the fitted gain is significantly above 0, else Gaussian),
            ``"gaussian"`` or ``"poisson_gaussian"``.
        method: the Gaussian estimator, ``"pca"`` (Chen, Zhu & Heng 2015, the default) or ``"mad"`` (wavelet MAD,
            Donoho & Johnstone 1994).

    Example:
        >>> Estimate(model="gaussian")
        Estimate(model='gaussian', method='pca')
    """

    supports_complex = True

    def __init__(self, model: str = "auto", method: str = "pca") -> None:
        super().__init__()
        if model not in ESTIMABLE:
            raise ValueError(f"Estimate: model must be one of {', '.join(ESTIMABLE)}, got {model!r}")
        if method not in ("pca", "mad"):
            raise ValueError(f"Estimate: method must be pca or mad, got {method!r}")
        self.model, self.method = model, method

    def _sample(self, z, generator):
        raise ValueError("Estimate: the noise is to be estimated from measurements, so it cannot be simulated; set "
                         "data.true_noise to the noise that corrupts simulated data")

    def _variance(self, z):
        raise ValueError("Estimate: the noise has not been estimated yet (selfinv.noise.estimate)")

    def extra_repr(self) -> str:
        return f"model={self.model!r}, method={self.method!r}"


NOISE_MODELS["estimate"] = Estimate


def describe(noise: NoiseModel | None) -> dict | None:
    """A noise model as a config section (``{"name": "gaussian", "sigma": 0.1}``): its registry name and its
    parameters (per-sample ones by their first value); None for noiseless.

    Example:
        >>> describe(PoissonGaussian(0.1, 0.02)), describe(Unknown(separable=False))
        ({'name': 'poisson_gaussian', 'gain': 0.1, 'sigma': 0.02}, {'name': 'unknown', 'separable': False})
        >>> describe(PoissonGaussian(0.1, 0.0, offset=0.05))      # a black level is shown when it is nonzero
        {'name': 'poisson_gaussian', 'gain': 0.1, 'sigma': 0.0, 'offset': 0.05}
    """
    if noise is None:
        return None
    name = next((k for k, c in NOISE_MODELS.items() if type(noise) is c), None)
    if name is None:
        return {"name": type(noise).__name__}
    out: dict = {"name": name}
    for p in noise._shown():
        t = getattr(noise, p)
        out[p] = float(t.reshape(-1)[0]) if t.numel() else None
    if isinstance(noise, Unknown):
        out["separable"] = noise.separable
    if isinstance(noise, Estimate):
        out.update(model=noise.model, method=noise.method)
    return out
