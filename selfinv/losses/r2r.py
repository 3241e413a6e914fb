r"""Recorrupted-to-Recorrupted (R2R) and its exponential-family generalisation (GR2R)."""

from __future__ import annotations

import math

import torch

from selfinv import _random
from selfinv._checks import check_bool, check_fraction, check_positive, check_positive_int
from selfinv.losses.base import Estimator, Loss, LossInfo, Model, noise_of, noise_param, sq_mean
from selfinv.noise import Gamma, Gaussian, NoiseModel, Poisson, PoissonGaussian
from selfinv.physics.base import LinearOperator

SUPPORTED = (Gaussian, Poisson, Gamma)


# ---------------------------------------------------------------------- generator-driven draws
def binomial(count: torch.Tensor, prob: float | torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Binomial(count, prob) draws (``count`` non-negative integers stored as floats), from ``generator``.

    Drawn on the generator's device, like :mod:`selfinv._random`, so a seed gives the same numbers
    on CPU and GPU.
    """
    src = generator.device if generator is not None else count.device
    c = count.to(src)
    p = torch.as_tensor(prob, dtype=c.dtype, device=src).expand(c.shape).contiguous()
    return torch.binomial(c, p, generator=generator).to(count.device)


def beta(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    r"""Beta(a, b) draws as :math:`G_a/(G_a+G_b)` with independent :math:`G_a\sim\mathcal G(a)`, :math:`G_b\sim\mathcal G(b)`.

    Drawn in float64 (small shapes such as :math:`\ell\alpha < 1` make both gammas tiny); the
    vanishingly rare case :math:`G_a = G_b = 0` (both underflow) returns the mean :math:`a/(a+b)`.
    """
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    ga = _random.standard_gamma(a64, generator=generator)
    gb = _random.standard_gamma(b64, generator=generator)
    total = ga + gb
    out = torch.where(total > 0, ga / torch.where(total > 0, total, torch.ones_like(total)), a64 / (a64 + b64))
    return out.to(a.dtype)


# ---------------------------------------------------------------------- the recorruption
def _refuse_poisson_gaussian(physics: LinearOperator, owner: str) -> None:
    if isinstance(physics.noise, PoissonGaussian):
        raise ValueError(
            f"{owner}: Poisson-Gaussian noise has no exact recorruption (binomial thinning needs the integer "
            "counts, which the Gaussian part hides); supported noise models: Gaussian, Poisson, Gamma"
        )


def recorrupt(
    y: torch.Tensor,
    physics: LinearOperator,
    alpha: float,
    generator: torch.Generator | None = None,
    owner: str = "R2R",
) -> tuple[torch.Tensor, torch.Tensor, LinearOperator]:
    r"""One GR2R recorruption: ``(y1, y2, physics1)`` with y1, y2 independent given x.

    ========== ============================================================ ===========================
    noise      :math:`y_1` (then :math:`y_2 = (y - (1-\alpha) y_1)/\alpha`)  law of :math:`y_1` (physics1)
    ========== ============================================================ ===========================
    Gaussian   :math:`y + \sqrt{\alpha/(1-\alpha)}\,\omega`,                 Gaussian(:math:`\sigma/\sqrt{1-\alpha}`)
               :math:`\omega\sim\mathcal N(0,\sigma^2 I)`
    Poisson    :math:`(y - \gamma\omega)/(1-\alpha)`,                        Poisson(:math:`\gamma/(1-\alpha)`)
               :math:`\omega\sim\mathrm{Bin}(y/\gamma, \alpha)`
    Gamma      :math:`y\circ(1-\omega)/(1-\alpha)`,                          Gamma(:math:`\ell(1-\alpha)`)
               :math:`\omega\sim\mathrm{Beta}(\ell\alpha, \ell(1-\alpha))`
    ========== ============================================================ ===========================

    The law of :math:`y_2` is Gaussian(:math:`\sigma/\sqrt\alpha`), Poisson(:math:`\gamma/\alpha`) and
    Gamma(:math:`\ell\alpha`) respectively; both have mean Ax. Independence: Gaussian, the covariance
    :math:`\sigma^2 - \frac{1-\alpha}{\alpha}\cdot\frac{\alpha}{1-\alpha}\sigma^2 = 0` of jointly
    Gaussian variables; Poisson, binomial thinning splits :math:`z\sim\mathcal P(\lambda)` into
    independent :math:`z-\omega\sim\mathcal P((1-\alpha)\lambda)` and :math:`\omega\sim\mathcal P(\alpha\lambda)`;
    Gamma, the beta-gamma algebra splits :math:`G\sim\mathcal G(\ell)` into independent
    :math:`G(1-\omega)\sim\mathcal G(\ell(1-\alpha))` and :math:`G\omega\sim\mathcal G(\ell\alpha)`.

    Per-sample parameters (shape (B,)) are honoured. Unacquired (zero-filled) entries stay zero.
    ``y`` is never modified. Poisson needs ``y/gain`` to be integer counts (ValueError otherwise);
    Poisson-Gaussian noise is refused: binomial thinning needs the counts, which the Gaussian part hides,
    and no exact independent split of the sum is known.
    """
    _refuse_poisson_gaussian(physics, owner)
    noise = noise_of(physics, SUPPORTED, owner)
    if y.is_complex() and not isinstance(noise, Gaussian):
        raise ValueError(f"{owner}: {type(noise).__name__} recorruption needs real measurements, got {y.dtype}")
    a = float(alpha)
    if isinstance(noise, Gaussian):
        sigma = noise_param(noise, "sigma", y)
        omega = _random.randn(tuple(y.shape), generator=generator, dtype=y.dtype, device=y.device)
        omega = torch.where(physics.acquired(y), omega, torch.zeros_like(omega))
        y1 = y + math.sqrt(a / (1.0 - a)) * sigma * omega
        y2 = (y - (1.0 - a) * y1) / a
        new_noise: NoiseModel = Gaussian(noise.sigma / math.sqrt(1.0 - a))
    elif isinstance(noise, Poisson):
        gain = noise_param(noise, "gain", y)
        z = y / gain
        counts = torch.round(z)
        tol = 1e-3 + 8 * torch.finfo(y.dtype).eps * counts.abs()
        bad = ~((z - counts).abs() <= tol) | (counts < 0)
        if bool(bad.any()):
            worst = float((z - counts).abs().max())
            raise ValueError(
                f"{owner}: Poisson recorruption (binomial thinning) needs y/gain to be non-negative integer counts, "
                f"but y/gain is off an integer by up to {worst:.3g} or negative; was y measured with Poisson(gain) "
                "noise of this physics? (Poisson-Gaussian data is not supported)"
            )
        omega = binomial(counts, a, generator)
        y1 = gain * (counts - omega) / (1.0 - a)
        y2 = gain * omega / a  # = (y - (1 - a) y1) / a, computed from the exact counts
        new_noise = Poisson(noise.gain / (1.0 - a))
    else:
        ell = noise_param(noise, "shape", y).expand(y.shape)
        omega = beta(ell * a, ell * (1.0 - a), generator)
        y1 = y * (1.0 - omega) / (1.0 - a)
        y2 = y * omega / a  # = (y - (1 - a) y1) / a
        new_noise = Gamma(noise.shape * (1.0 - a))
    return y1, y2, physics.with_noise(new_noise)


def pang_to_alpha(alpha_pang: float) -> float:
    r"""Convert Pang et al.'s :math:`\alpha_P` (:math:`y_a = y + \alpha_P\omega`, :math:`y_b = y - \omega/\alpha_P`) to GR2R's α.

    :math:`\alpha = \alpha_P^2/(1+\alpha_P^2)`, the inverse of :math:`\alpha_P = \sqrt{\alpha/(1-\alpha)}`
    (so Pang's default 0.5 is α = 0.2 and α = 0.15 is :math:`\alpha_P \approx 0.42`); the two
    parametrisations then give the same pair :math:`(y_1, y_2)`.
    """
    check_positive(alpha_pang, "alpha_pang", "pang_to_alpha")
    return alpha_pang**2 / (1.0 + alpha_pang**2)


class R2REstimator(Estimator):
    r"""The R2R test-time estimator :math:`\frac1N\sum_{i=1}^N f(y_1^{(i)}, A_1)` over N fresh recorruptions of y.

    Each :math:`y_1^{(i)}` is drawn by :func:`recorrupt` (with the physics :math:`A_1` describing its
    noise); N = 1 is the cheap, noisier version. Costs N network evaluations; called as
    ``estimator(y, physics, generator=None)``, the draws come from ``generator`` (the default generator if
    None), so a seeded generator gives reproducible outputs. Gradients follow the caller's mode (wrap the
    call in ``torch.no_grad()`` for inference).
    """

    def __init__(self, model: Model, alpha: float, n_samples: int) -> None:
        super().__init__()
        check_positive_int(n_samples, "n_samples", "R2R")
        self.model = model  # registered as a submodule when it is one
        self.alpha, self.n_samples = alpha, n_samples

    def forward(
        self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        total = None
        for _ in range(self.n_samples):
            y1, _, physics1 = recorrupt(y, physics, self.alpha, generator, owner="R2R.test_model")
            out = self.model(y1, physics1)
            total = out if total is None else total + out
        return total / self.n_samples

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, n_samples={self.n_samples}"


class R2R(Loss):
    r"""Recorrupted-to-Recorrupted (Pang et al., CVPR 2021), generalised to Poisson and Gamma noise (GR2R,
    Monroy, Bacca & Tachella, CVPR 2025): :math:`\frac1m\|y_2 - A f(y_1)\|^2`.

    A single measurement y is split into two measurements :math:`y_1, y_2` of the same x with
    **independent** noises (see :func:`recorrupt` for the laws), using the GR2R parametrisation
    :math:`\alpha\in(0,1)`:

    .. math::

        y_1 \text{ as in the table of } \texttt{recorrupt}, \qquad y_2 = \frac{y - (1-\alpha)\,y_1}{\alpha}.

    Since :math:`y_2` is independent of :math:`y_1` with :math:`\mathbb{E}\{y_2\mid x\} = Ax`, this is
    Noise2Noise on the pair: for any f and any linear A,

    .. math::

        \mathbb{E}\,\tfrac1m\|y_2 - A f(y_1)\|^2 = \mathbb{E}\,\tfrac1m\|A f(y_1) - Ax\|^2
        + \tfrac1m\mathbb{E}\|y_2 - Ax\|^2,

    and the last term is :math:`\sigma^2/\alpha` for Gaussian noise (the variance of :math:`y_2`). The
    minimiser is (for invertible A) the MMSE estimator :math:`\mathbb{E}\{x\mid y_1\}` at the inflated
    noise level of :math:`y_1`: :math:`\sigma^2/(1-\alpha)`, gain :math:`\gamma/(1-\alpha)`, shape
    :math:`\ell(1-\alpha)` — the price of a single measurement. The network is called as
    ``model(y1, physics1)`` with ``physics1 = physics.with_noise(<the law of y1>)``, so a
    noise-conditioned network sees the level of its actual input.

    With ``subtract_noise=True`` the per-entry variance of :math:`y_2` is subtracted — exactly
    :math:`\sigma^2/\alpha` (Gaussian); for Poisson :math:`\gamma y/\alpha` and for Gamma
    :math:`y^2/(\alpha(\ell+1))`, unbiased estimates of :math:`\gamma Ax/\alpha` and :math:`(Ax)^2/(\ell\alpha)`
    — so the value estimates the measurement-domain risk at the inflated noise level (the gradient is
    unchanged).

    The loss costs one network evaluation. At test time :meth:`test_model` averages the network over
    ``n_samples`` fresh recorruptions (tutorial part 2: :math:`f^{test}(y) = \frac1N\sum_i f(y_1^{(i)})`).

    Pang's parametrisation :math:`y_a = y + \alpha_P\omega`, :math:`y_b = y - \omega/\alpha_P` is the
    Gaussian case with :math:`\alpha = \alpha_P^2/(1+\alpha_P^2)`: pass ``alpha_pang`` instead of
    ``alpha`` (see :func:`pang_to_alpha`). Note the tutorial slide's
    :math:`y_a = y + \sqrt{(1-\alpha)/\alpha}\,\omega` pairs with :math:`y_b` only when the square root reads
    :math:`\sqrt{\alpha/(1-\alpha)}`, as in its GR2R table and here; other pairings such as
    :math:`y_1 = y + \alpha\sigma w` give correlated noises (covariance :math:`\sigma^2(1-\alpha(1-\alpha))`).

    Args:
        alpha: the split α ∈ (0, 1) (default 0.15, deepinv's default; the GR2R demos use 0.2).
        n_samples: recorruptions averaged by the test-time estimator (default 5).
        subtract_noise: subtract the variance of :math:`y_2` so that the value estimates the risk.
        alpha_pang: Pang et al.'s :math:`\alpha_P > 0`, converted to ``alpha`` (give one of the two).

    Example:
        >>> import torch
        >>> from selfinv.losses.r2r import R2R
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> physics = Denoising(noise=Gaussian(0.1))
        >>> g = torch.Generator().manual_seed(0)
        >>> y = physics(torch.zeros(4, 1, 32, 32), generator=g)
        >>> zero = lambda y, physics: torch.zeros_like(y)
        >>> loss = R2R(alpha=0.2)
        >>> round(float(loss(y, physics, zero, generator=g)) / (0.1**2 / 0.2), 1)   # sigma^2 / alpha
        1.0
        >>> est = loss.test_model(lambda y, physics: 2 * y, n_samples=3)
        >>> est(y, physics, generator=g).shape
        torch.Size([4, 1, 32, 32])
    """

    info = LossInfo(
        train_evals=1, test_evals=">1", uses_x_hat=False,  # its network input is y1, not y
        mmse_optimal=True, noise_models=SUPPORTED,
        general_operator=True, risk="measurement",  # E‖A(f(y) − x)‖²: blind to the nullspace of A
        reference="R2R (Pang et al., CVPR 2021); GR2R (Monroy, Bacca & Tachella, CVPR 2025)",
    )

    def __init__(
        self,
        alpha: float | None = None,
        n_samples: int = 5,
        subtract_noise: bool = False,
        alpha_pang: float | None = None,
    ) -> None:
        super().__init__()
        if alpha is not None and alpha_pang is not None:
            raise ValueError("R2R: give alpha (GR2R) or alpha_pang (Pang et al.), not both")
        if alpha_pang is not None:
            alpha = pang_to_alpha(alpha_pang)
        elif alpha is None:
            alpha = 0.15
        self.alpha = check_fraction(alpha, "alpha", "R2R")
        self.n_samples = check_positive_int(n_samples, "n_samples", "R2R")
        self.subtract_noise = check_bool(subtract_noise, "subtract_noise", "R2R")

    def _check(self, physics):
        _refuse_poisson_gaussian(physics, "R2R")
        super()._check(physics)

    def recorrupt(
        self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, LinearOperator]:
        """``(y1, y2, physics1)`` for this loss's α (see :func:`recorrupt`)."""
        return recorrupt(y, physics, self.alpha, generator)

    def _loss(self, ctx):
        y, physics = ctx.y, ctx.physics
        y1, y2, physics1 = recorrupt(y, physics, self.alpha, ctx.generator)
        value = sq_mean(y2 - physics.A(ctx.model(y1, physics1)))
        if self.subtract_noise:
            value = value - self._y2_variance(y, physics).mean()
        return value

    def _y2_variance(self, y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
        """Per-entry estimate of Var(y2 | x), unbiased, zero off the acquired entries."""
        noise, a = physics.noise, self.alpha
        real = y.real if y.is_complex() else y
        if isinstance(noise, Gaussian):
            var = (noise_param(noise, "sigma", real) ** 2 / a).expand(real.shape)
        elif isinstance(noise, Poisson):
            var = noise_param(noise, "gain", real) * real / a
        else:
            var = real**2 / (a * (noise_param(noise, "shape", real) + 1.0))
        return torch.where(physics.acquired(y), var, torch.zeros_like(var))

    def test_model(self, model: Model, n_samples: int | None = None) -> R2REstimator:
        r"""The averaged estimator :math:`\frac1N\sum_i f(y_1^{(i)})` (:class:`R2REstimator`), N = ``n_samples`` or the loss's."""
        return R2REstimator(model, self.alpha, self.n_samples if n_samples is None else n_samples)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, n_samples={self.n_samples}, subtract_noise={self.subtract_noise}"
