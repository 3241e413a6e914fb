r"""Noise2Score: learn the score of the measurements, denoise with Tweedie's formula."""

from __future__ import annotations

import torch

from selfinv import _random
from selfinv._checks import check_positive, check_positive_int
from selfinv.losses.base import Estimator, Loss, LossInfo, Model, _is_identity, noise_of, noise_param, sq_mean
from selfinv.noise import Gamma, Gaussian, NoiseModel, Poisson
from selfinv.physics.base import LinearOperator

SUPPORTED = (Gaussian, Poisson, Gamma)
POISSON_FORMULAS = ("mean", "noise2score")


def _check_formula(poisson_formula: str) -> str:
    if poisson_formula not in POISSON_FORMULAS:
        raise ValueError(f"Noise2Score: poisson_formula must be one of {POISSON_FORMULAS}, got {poisson_formula!r}")
    return poisson_formula


def tweedie(
    y: torch.Tensor, score: Model | torch.Tensor, physics: LinearOperator, poisson_formula: str = "mean"
) -> torch.Tensor:
    r"""Tweedie's formula for the noise model of ``physics`` (denoising), from the score :math:`s \approx \nabla\log p_y`.

    ``score`` is a tensor :math:`s(y)` or a callable ``score(y, physics)`` (needed by the ``"mean"``
    Poisson formula, which evaluates it at :math:`y + \zeta/2`). Writing the noise as an exponential
    family :math:`p(y\mid\eta) = h(y)\,e^{\eta y - A(\eta)}` and differentiating
    :math:`p_y(y) = \int p(y\mid\eta)\,\pi(\eta)\,d\eta` under the integral gives the exact identity
    :math:`\mathbb{E}\{\eta\mid y\} = (\log p_y)'(y) - (\log h)'(y)` for the natural parameter η:

    * Gaussian(σ): :math:`\eta = x/\sigma^2`, :math:`(\log h)' = -y/\sigma^2`, hence
      :math:`\hat x = y + \sigma^2 s(y) = \mathbb{E}\{x\mid y\}` (exact).
    * Gamma(ℓ) (:math:`y = xG/\ell`): :math:`\eta = -\ell/x`, :math:`h = y^{\ell-1}`, hence
      :math:`\mathbb{E}\{1/x\mid y\} = \frac{(\ell-1) - y s(y)}{\ell y}` exactly, and Noise2Score's
      :math:`\hat x = \frac{\ell y}{(\ell-1) - y\,s(y)} = 1/\mathbb{E}\{1/x\mid y\}`, the posterior
      harmonic mean (below :math:`\mathbb{E}\{x\mid y\}` by Jensen, by a relative
      :math:`\approx\operatorname{Var}(x\mid y)/\mathbb{E}\{x\mid y\}^2`).

      *Guard.* The denominator is :math:`D = (\ell-1) - y\,s(y) = \ell\,y\,\mathbb{E}\{1/x\mid y\}`: positive
      for the exact score, and :math:`D \ge \ell y/B` whenever the images lie in :math:`[0, B]`
      (:math:`\mathbb{E}\{1/x\mid y\} \ge 1/B`); a learned score can leave this range (:math:`D \to 0^+`
      sends :math:`\hat x` to infinity). ``B`` is a per-sample upper confidence bound on the image's
      maximum, :math:`B = \max_i y_i / q_\ell`, with :math:`q_\ell` the :data:`GAMMA_BOUND_P` quantile of
      :math:`G/\ell \sim \mathcal G(\ell, \text{rate } \ell)`: at the brightest pixel :math:`i^*`,
      :math:`y_{i^*} \ge q_\ell x_{i^*}` with probability :math:`1 - p`, so :math:`\max_i x_i \le B` with
      probability at least :math:`1 - p` (for ℓ = 10, :math:`q_\ell \approx 0.30`). :math:`D` is projected
      onto its valid range :math:`[\ell y^+/B, \infty)` (:math:`y^+ = \max(y, 0)`), which is the same as
      :math:`\hat x = \min(\ell y^+/D, B)` for :math:`D > 0` and :math:`\hat x = B` for :math:`D \le 0`
      (the limit :math:`D \to 0^+`): the estimate is always in :math:`[0, B]`, finite and non-negative;
      the estimate of the exact score is unchanged when the prior's support lies below B (it is at most
      the largest x the prior allows), and when the bound holds the projection onto :math:`[0, B] \ni x_i`
      can only reduce each pixel's error.
    * Poisson(ζ) (:math:`y = \zeta k`, :math:`k\sim\mathcal P(x/\zeta)`), with :math:`p_y` extended to
      real :math:`k` by :math:`1/k! \to 1/\Gamma(k+1)`: :math:`\eta = \log x`,
      :math:`(\log h)'(y) = -\psi(k+1)/\zeta`, hence exactly
      :math:`\mathbb{E}\{\log x\mid y\} = \log\zeta + \psi(y/\zeta+1) + \zeta s(y)`.

      - ``"mean"`` (default): Robbins' exact :math:`\mathbb{E}\{x\mid y\} = (y+\zeta)\,p_y(y+\zeta)/p_y(y)`
        with the midpoint rule :math:`\log p_y(y+\zeta) - \log p_y(y) \approx \zeta\,s(y + \zeta/2)`:
        :math:`\hat x = (y+\zeta)\,e^{\zeta s(y+\zeta/2)}`, the posterior mean up to the midpoint
        error :math:`\zeta^3(\log p_y)^{(3)}/24` in the exponent (one network call, at :math:`y+\zeta/2`).
      - ``"noise2score"`` (Kim & Ye's formula): :math:`\zeta e^{\psi(k+1)} \approx y + \zeta/2` in the
        identity gives :math:`\hat x = (y + \zeta/2)\,e^{\zeta s(y)} \approx e^{\mathbb{E}\{\log x\mid y\}}`,
        the posterior *geometric* mean, below :math:`\mathbb{E}\{x\mid y\}` by a relative
        :math:`\approx\operatorname{Var}(\log x\mid y)/2 \approx 1/(2k)`.

    Per-sample parameters are honoured; ``y`` is never modified.
    """
    _check_formula(poisson_formula)
    noise = noise_of(physics, SUPPORTED, "Noise2Score")

    def s_at(v):
        return score(v, physics) if callable(score) else score

    if isinstance(noise, Gaussian):
        return y + noise_param(noise, "sigma", y) ** 2 * s_at(y)
    if isinstance(noise, Poisson):
        zeta = noise_param(noise, "gain", y)
        if poisson_formula == "mean":
            if not callable(score):
                raise ValueError("Noise2Score: the 'mean' Poisson formula needs the score as a callable score(y, physics)")
            return (y + zeta) * torch.exp(zeta * s_at(y + zeta / 2))
        return (y + zeta / 2) * torch.exp(zeta * s_at(y))
    ell = noise_param(noise, "shape", y)
    den = (ell - 1.0) - y * s_at(y)
    y_pos = y.clamp_min(0)
    tiny = torch.finfo(den.dtype).tiny
    bound = gamma_max_bound(y, ell)
    return ell * y_pos / torch.maximum(den, (ell * y_pos / bound).clamp_min(tiny))


#: the per-sample probability that :func:`gamma_max_bound` is below the image's maximum
GAMMA_BOUND_P = 1e-3


def gamma_quantile(ell: torch.Tensor | float, p: float = GAMMA_BOUND_P) -> torch.Tensor:
    r"""The p-quantile :math:`q` of :math:`G/\ell`, :math:`G \sim \mathcal G(\ell, 1)` (the relative Gamma noise
    factor): :math:`P(G/\ell \le q) = p`, by bisection of the regularised incomplete gamma function (float64, on
    the CPU; ``ell`` any shape). Below 1 for p < 1/2."""
    if not 0 < p < 1:
        raise ValueError(f"gamma_quantile: p must be in (0, 1), got {p!r}")
    a = torch.as_tensor(ell).detach().to(device="cpu", dtype=torch.float64)
    # P(G/l <= t) = gammainc(l, l t) increases in t; its p-quantile (p < 1) lies in (0, hi)
    lo, hi = torch.zeros_like(a), torch.ones_like(a)
    for _ in range(64):  # p > 1/2 only: widen until P(G/l <= hi) >= p
        short = torch.special.gammainc(a, a * hi) < p
        if not bool(short.any()):
            break
        hi = torch.where(short, 2 * hi, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = torch.special.gammainc(a, a * mid) < p
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def gamma_max_bound(y: torch.Tensor, ell: torch.Tensor | float, p: float = GAMMA_BOUND_P) -> torch.Tensor:
    r"""A per-sample upper confidence bound :math:`B = \max_i y_i / q_\ell` (shape (B, 1, ...)) on the maximum of
    the image x behind Gamma(ℓ) measurements :math:`y = x G/\ell`: :math:`P(\max_i x_i > B) \le p`.

    At the brightest pixel :math:`i^*`, :math:`y_{i^*} < q_\ell\,x_{i^*}` has probability exactly p
    (:func:`gamma_quantile`), and :math:`\max_i y_i \ge y_{i^*}`. Detached; at least the smallest normal
    number, so that it can divide."""
    y = y.detach()
    top = y.reshape(y.shape[0], -1).amax(1)
    q = gamma_quantile(ell, p).to(device=y.device, dtype=y.dtype).reshape(-1)
    bound = (top / q).clamp_min(torch.finfo(y.dtype).tiny)
    return bound.reshape(-1, *([1] * (y.ndim - 1)))


class TweedieEstimator(Estimator):
    r"""The Noise2Score estimator :math:`\hat x = T(y, s(y))`, Tweedie's formula applied to the score network.

    One network evaluation (at :math:`y + \zeta/2` for the ``"mean"`` Poisson formula). See :func:`tweedie`.
    Deterministic: called as ``estimator(y, physics, generator=None)``, it ignores the generator.
    """

    def __init__(self, model: Model, poisson_formula: str = "mean") -> None:
        super().__init__()
        self.model = model  # registered as a submodule when it is one
        self.poisson_formula = _check_formula(poisson_formula)

    def forward(
        self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        _check_denoising(physics)
        return tweedie(y, self.model, physics, self.poisson_formula)


def _check_denoising(physics: LinearOperator) -> None:
    noise_of(physics, SUPPORTED, "Noise2Score")
    if not _is_identity(physics):
        raise ValueError(f"Noise2Score: only defined for denoising (A = I), got {type(physics).__name__}")


def noise_scale(noise: NoiseModel, y: torch.Tensor) -> torch.Tensor:
    r"""Per-sample noise level :math:`\bar\sigma` (shape (B, 1, ...)): the root of the mean of an unbiased per-entry variance estimate.

    Gaussian :math:`\sigma`; Poisson :math:`\sqrt{\zeta\,\overline{y}}`; Gamma
    :math:`\sqrt{\overline{y^2}/(\ell+1)}` (bars: means over the sample's entries). Detached.
    """
    y = y.detach()
    if isinstance(noise, Gaussian):
        return noise_param(noise, "sigma", y).expand(y.shape[:1] + (1,) * (y.ndim - 1))
    if isinstance(noise, Poisson):
        var = noise_param(noise, "gain", y) * y
    else:
        var = y**2 / (noise_param(noise, "shape", y) + 1.0)
    return var.flatten(1).mean(1).clamp_min(0).sqrt().reshape(-1, *([1] * (y.ndim - 1)))


class Noise2Score(Loss):
    r"""Noise2Score (Kim & Ye, NeurIPS 2021): learn the score :math:`s(y) \approx \nabla\log p_y(y)`, denoise with Tweedie.

    The network output is read as the score of the *measurements'* law. It is learned with the
    amortised residual denoising auto-encoder objective (AR-DAE, Lim et al., ICML 2020)

    .. math::

        \mathcal L = \tfrac1n\,\mathbb{E}_{u\sim\mathcal N(0,I)}\,\|u + \sigma_a\, s(y + \sigma_a u)\|^2 ,

    whose minimiser is :math:`s(\tilde y) = -\mathbb{E}\{u\mid\tilde y\}/\sigma_a = \nabla\log(p_y * \mathcal N(0,\sigma_a^2 I))(\tilde y)`,
    the score of :math:`p_y` smoothed at scale :math:`\sigma_a`, which tends to the score of :math:`p_y`
    as :math:`\sigma_a \to 0`. The value is about 1 (the :math:`\|u\|^2/n` term); what is learned is in
    the :math:`O(\sigma_a)` remainder, so use a scale-free optimiser (Adam) as Kim & Ye do.

    **Perturbation level.** :math:`\sigma_a = \delta\,\bar\sigma`, with :math:`\bar\sigma` the sample's
    noise level (:func:`noise_scale`: σ for Gaussian, :math:`\sqrt{\zeta\bar y}` for Poisson,
    :math:`\sqrt{\overline{y^2}/(\ell+1)}` for Gamma). Relative to the noise, because what matters is
    the smoothing :math:`\sigma_a^2` added to the noise variance: for Gaussian noise the learned score
    is exactly that of noise level :math:`\sigma\sqrt{1+\delta^2}`, a relative error :math:`\delta^2`
    whatever the units of the data. δ is annealed linearly from ``delta_max`` to ``delta_min`` over
    ``total_steps`` training calls (defaults 0.1 → 0.001 over 1000, deepinv's values): larger δ early
    gives a stronger learning signal (the gradient's signal-to-noise ratio is :math:`O(\delta)`), small δ
    late removes the smoothing bias. For Poisson noise :math:`\sigma_a \ge \zeta/2` (half a count, the
    lower end of Kim & Ye's schedule): below the lattice spacing ζ the smoothed law is a comb of spikes
    whose score does not describe the smooth interpolation Tweedie needs (the ripple left at
    :math:`\sigma_a = \zeta/2` is a relative :math:`2e^{-\pi^2/2} \approx 1.4\%` of the density).

    The annealing counter ``step`` is a buffer (saved in the ``state_dict``) and advances only when
    the loss is in training mode (``loss.train()``), never on evaluation passes. The network receives
    the physics unchanged (the perturbation is :math:`\le\delta` of the noise).

    :meth:`test_model` returns the Tweedie estimator (:class:`TweedieEstimator`, formulas in
    :func:`tweedie`): Gaussian :math:`y + \sigma^2 s(y)` (the MMSE estimator); Poisson
    :math:`(y+\zeta)e^{\zeta s(y+\zeta/2)}` (Robbins' posterior mean with a midpoint rule;
    ``poisson_formula="noise2score"`` gives Kim & Ye's :math:`(y+\zeta/2)e^{\zeta s(y)}`, the posterior
    geometric mean) and Gamma :math:`\ell y/((\ell-1) - y s(y))` (Kim & Ye), exactly
    :math:`1/\mathbb{E}\{1/x\mid y\}`: the score of :math:`p_y` determines the posterior mean of the
    natural parameter :math:`-\ell/x`, not of x, so for Gamma noise the estimator is the posterior
    harmonic mean (MMSE for :math:`1/x`, not for x). Denoising only (A = I).

    **MMSE optimality depends on the noise model** (:meth:`mmse_optimal_for`): with the exact score the
    estimator is :math:`\mathbb{E}\{x\mid y\}` for Gaussian noise (exactly) and for Poisson noise with the
    ``"mean"`` formula (up to the midpoint rule), but the posterior geometric mean for Poisson with
    ``"noise2score"`` and the posterior harmonic mean for Gamma noise. The registry flag
    ``info.mmse_optimal`` is one value for the class, so it is ``False``.

    **Network.** The output is the score itself, of size :math:`\approx (x - y)/\sigma^2`, not an image:
    use a network without a skip connection from the input (``residual=False``; ``default_backbone``
    gives the experiments a non-residual DnCNN). A residual network :math:`y - \text{net}(y)` must learn
    :math:`\text{net}(y) = y - s(y)`, and trains to a worse score (residual → non-residual depth-8 DnCNN,
    40×40 crops of train400, 400 steps, set12: 25.72 → 26.13 dB for Gaussian σ = 25/255, 21.05 → 21.79 dB
    for Gamma ℓ = 10).

    Args:
        delta_max: initial relative perturbation δ (default 0.1).
        delta_min: final relative perturbation δ (default 0.001).
        total_steps: training calls over which δ is annealed (default 1000).
        poisson_formula: ``"mean"`` (default) or ``"noise2score"``, the Poisson Tweedie formula (see :func:`tweedie`).

    Example:
        >>> import torch
        >>> from selfinv.losses.score import Noise2Score
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> physics = Denoising(noise=Gaussian(0.1))
        >>> y = physics(torch.full((1, 1, 4, 4), 0.5), generator=torch.Generator().manual_seed(0))
        >>> exact_score = lambda y, physics: -(y - 0.5) / (0.04 + 0.01)   # x ~ N(0.5, 0.2^2)
        >>> x_hat = Noise2Score().test_model(exact_score)(y, physics)     # Tweedie: 0.5 + 0.8 (y - 0.5)
        >>> torch.allclose(x_hat, 0.5 + 0.8 * (y - 0.5))
        True
        >>> loss = Noise2Score(total_steps=10)
        >>> _ = loss(y, physics, exact_score); int(loss.step), round(loss.delta, 4)   # advanced in train mode
        (1, 0.0901)
        >>> _ = loss.eval()(y, physics, exact_score); int(loss.step)        # not in eval mode
        1
    """

    info = LossInfo(
        train_evals=1, uses_x_hat=False,  # its network input is the perturbed y + σ_a u
        mmse_optimal=False,  # per noise model: mmse_optimal_for (Gamma gives the posterior harmonic mean)
        noise_models=SUPPORTED,
        reference="Noise2Score (Kim & Ye, NeurIPS 2021); AR-DAE (Lim et al., ICML 2020)",
    )


    needs_backbone = {"residual": False}  # noqa: RUF012  (the output is the score, not an image)
    default_backbone = {"name": "dncnn", "depth": 8, "width": 32, "batch_norm": False, "residual": False}  # noqa: RUF012
    def __init__(
        self,
        delta_max: float = 0.1,
        delta_min: float = 0.001,
        total_steps: int = 1000,
        poisson_formula: str = "mean",
    ) -> None:
        super().__init__()
        check_positive(delta_max, "delta_max", "Noise2Score")
        check_positive(delta_min, "delta_min", "Noise2Score")
        if delta_min > delta_max:
            raise ValueError(f"Noise2Score: delta_min ({delta_min}) must not exceed delta_max ({delta_max})")
        check_positive_int(total_steps, "total_steps", "Noise2Score")
        self.delta_max, self.delta_min, self.total_steps = float(delta_max), float(delta_min), total_steps
        self.poisson_formula = _check_formula(poisson_formula)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def delta(self) -> float:
        """The current relative perturbation δ (linear from ``delta_max`` to ``delta_min``)."""
        t = min(int(self.step), self.total_steps) / self.total_steps
        return self.delta_max + (self.delta_min - self.delta_max) * t

    def perturbation(self, y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
        r"""The per-sample :math:`\sigma_a = \delta\,\bar\sigma` (shape (B, 1, ...)), floored at ζ/2 for Poisson."""
        noise = noise_of(physics, SUPPORTED, "Noise2Score")
        sigma_a = self.delta * noise_scale(noise, y)
        if isinstance(noise, Poisson):
            sigma_a = torch.maximum(sigma_a, noise_param(noise, "gain", y) / 2)
        return sigma_a

    def _loss(self, ctx):
        y = ctx.y
        sigma_a = self.perturbation(y, ctx.physics)
        u = _random.randn(tuple(y.shape), generator=ctx.generator, dtype=y.dtype, device=y.device)
        score = ctx.model(y + sigma_a * u, ctx.physics)
        if score.shape != y.shape:
            raise ValueError(f"Noise2Score: the score network output has shape {tuple(score.shape)}, y has {tuple(y.shape)}")
        value = sq_mean(u + sigma_a * score)
        if self.training:
            self.step += 1
        return value

    def mmse_optimal_for(self, noise: NoiseModel) -> bool:
        r"""Whether the estimator, with the exact score, is the posterior mean :math:`\mathbb{E}\{x\mid y\}` for this noise.

        Gaussian: yes (exact). Poisson: with ``poisson_formula="mean"`` (Robbins, up to the midpoint rule), not
        with ``"noise2score"`` (geometric mean). Gamma: no (harmonic mean). Other noise models are refused.
        """
        if isinstance(noise, Gaussian):
            return True
        if isinstance(noise, Poisson):
            return self.poisson_formula == "mean"
        if isinstance(noise, Gamma):
            return False
        allowed = ", ".join(k.__name__ for k in SUPPORTED)
        raise ValueError(f"Noise2Score: needs physics.noise to be one of {allowed}; got {type(noise).__name__}")

    def test_model(self, model: Model) -> TweedieEstimator:
        """Tweedie's formula applied to the score network (see :func:`tweedie`)."""
        return TweedieEstimator(model, self.poisson_formula)

    def extra_repr(self) -> str:
        return (
            f"delta=({self.delta_max:g} -> {self.delta_min:g}) over {self.total_steps} steps, step={int(self.step)}, "
            f"poisson_formula={self.poisson_formula!r}"
        )
