r"""Stein's unbiased risk estimator and its Poisson and Poisson-Gaussian versions (PURE, PG-URE).

One class, :class:`SURE`, dispatching on ``physics.noise``. All three estimate the measurement-domain risk
per real degree of freedom, constants included,

.. math::

    \mathcal R(f) = \frac1m\,\mathbb E\,\|A f(y) - A x\|^2
    \qquad (= \tfrac1n \mathbb E\|f(y) - x\|^2 \text{ for denoising, the value of } \texttt{Supervised}),

from :math:`y` alone, with :math:`h(y) = A f(y)` and :math:`m` the number of real entries of :math:`y`
(zero-filled entries of masked operators count in :math:`m`, as in ``MC``; they carry no noise and
are never perturbed).
"""

from __future__ import annotations

import dataclasses

import torch

from selfinv.losses.base import Loss, LossContext, LossInfo, noise_of, noise_param, per_sample_sq, real_dofs
from selfinv.losses.divergence import check_method, divergence, second_divergence
from selfinv.losses.divergence_base import check_n_probes
from selfinv.noise import Gaussian, Poisson, PoissonGaussian
from selfinv.physics.base import LinearOperator


def measured_mask(physics: LinearOperator, y: torch.Tensor) -> torch.Tensor:
    """Real 0/1 tensor shaped like y: 1 where ``physics`` measures (and adds noise), 0 on zero-filled entries."""
    return physics.acquired(y).expand(y.shape).to(y.real.dtype if y.is_complex() else y.dtype)


def prepare_h(ctx: LossContext, method: str):
    r"""``(y, h, h(y))`` for a divergence of :math:`h(v) = A f(v)` that shares the evaluation :math:`f(y)`.

    For the autograd methods, :math:`f(y)` must be computed from a ``y`` that requires grad: if no term
    has evaluated it yet, the context's ``y`` is replaced by a detached copy that requires grad before the
    shared evaluation (so the whole loss makes one forward call); otherwise the divergence re-evaluates
    :math:`f` once.
    """
    physics, model = ctx.physics, ctx.model

    def h(v: torch.Tensor) -> torch.Tensor:
        return physics.A(model(v, physics))

    if method != "mc" and not ctx.y.requires_grad and not ctx.evaluated:
        ctx.y = ctx.y.detach().requires_grad_(True)
    return ctx.y, h, physics.A(ctx.x_hat)


def _per_sample_scalar(p: torch.Tensor, batch: int) -> torch.Tensor:
    """A broadcast parameter (0-d or (B, 1, ...)) as a (B,) tensor."""
    return p.reshape(-1).expand(batch) if p.ndim > 0 else p.expand(batch)


class SURE(Loss):
    r"""Unbiased risk estimate of :math:`\frac1m\|A f(y) - Ax\|^2` for Gaussian, Poisson and Poisson-Gaussian noise.

    With :math:`h = A f`, :math:`m` the real entries of :math:`y`, :math:`\partial_i h_i` the diagonal of
    the Jacobian of :math:`h` and the noise parameters read from ``physics.noise`` (floats or per-sample
    (B,) tensors):

    **Gaussian** :math:`y = Ax + \sigma\varepsilon` (Stein 1981; measurement-domain SURE for any linear
    A; complex data: σ per real and imaginary part, divergence over real pairs):

    .. math:: \mathrm{SURE} = \frac1m\Big[\|y - h(y)\|^2 - m_\Omega\sigma^2 + 2\sigma^2 \sum_i \partial_i h_i(y)\Big]

    with :math:`m_\Omega` the number of measured real entries. Stein's lemma
    :math:`\mathbb E[\varepsilon_i h_i(y)] = \sigma^2\mathbb E[\partial_i h_i(y)]` makes it **exactly** unbiased.

    **Poisson** :math:`y = \gamma\,\mathcal P(Ax/\gamma)` (Hudson 1978; PURE, Luisier, Blu & Unser 2011).
    Hudson's lemma for :math:`z\sim\mathcal P(\lambda)`, :math:`\mathbb E[\lambda g(z)] = \mathbb E[z\,g(z-1)]`,
    gives the exact identity (writing :math:`\bar x = Ax`)

    .. math:: \mathbb E[\bar x_i h_i(y)] = \mathbb E[y_i\,h_i(y - \gamma e_i)],

    hence the exactly unbiased (but :math:`m+1` evaluations) estimate
    :math:`\frac1m[\|y-h(y)\|^2 - \gamma 1^\top y + 2\sum_i y_i(h_i(y) - h_i(y-\gamma e_i))]`, using
    :math:`\mathbb E\|y\|^2 = \|\bar x\|^2 + \gamma 1^\top\bar x`. The implemented PURE replaces the difference
    by its first-order Taylor term, :math:`h_i(y) - h_i(y - \gamma e_i) \approx \gamma\,\partial_i h_i(y)`:

    .. math:: \mathrm{PURE} = \frac1m\Big[\|y - h(y)\|^2 - \gamma\,1^\top y + 2\gamma \sum_i y_i\,\partial_i h_i(y)\Big],

    exact for :math:`h` affine in each :math:`y_i`; otherwise the bias is
    :math:`\frac1m\mathbb E\sum_i y_i(\gamma^2\partial^2_{ii}h_i + O(\gamma^3))` (for :math:`h_i = a y_i + c y_i^2`
    it is exactly :math:`\frac{2c\gamma^2}{m}\sum_i \bar x_i`). The weighted divergence is then estimated like
    deepinv's ``SurePoissonLoss``: :math:`\frac{\gamma}{\tau}(y\odot b)^\top(h(y+\tau b) - h(y))`.

    **Poisson-Gaussian** :math:`y = \gamma\,\mathcal P(Ax/\gamma) + \sigma\varepsilon` (PG-URE, Le Montagner,
    Angelini & Olivo-Marin, IEEE TIP 2014). Stein in :math:`\varepsilon` and Hudson in the counts give the
    exact identity :math:`\mathbb E[\bar x_i h_i(y)] = \mathbb E[y_i h_i(y-\gamma e_i)] - \sigma^2\,\mathbb E[\partial_i h_i(y-\gamma e_i)]`;
    first-order Taylor expansions of both terms in :math:`\gamma` give

    .. math:: \mathrm{PGURE} = \frac1m\Big[\|y - h(y)\|^2 - \gamma 1^\top y - m_\Omega\sigma^2
        + 2\sum_i (\gamma y_i + \sigma^2)\,\partial_i h_i(y) - 2\gamma\sigma^2 \sum_i \partial^2_{ii} h_i(y)\Big].

    The second-order term has a **minus** sign (it comes from :math:`-\sigma^2\partial_i h_i(y-\gamma e_i)
    \approx -\sigma^2\partial_i h_i + \gamma\sigma^2\partial^2_{ii}h_i` inside :math:`-2\mathbb E[\bar x^\top h]`);
    deepinv's ``SurePGLoss`` code has it right and its docstring has it wrong. The bias left is that of
    PURE, :math:`\frac1m\mathbb E\sum_i y_i\gamma^2\partial^2_{ii}h_i`, plus third-derivative terms
    :math:`O(\gamma^2\sigma^2\partial^3 h)`; for :math:`h_i = a y_i + c y_i^2` it is exactly
    :math:`\frac{2c\gamma^2}{m}\sum_i\bar x_i` again. With ``second_order=False`` the last term is dropped,
    which adds the bias :math:`+\frac{2\gamma\sigma^2}{m}\mathbb E\sum_i\partial^2_{ii}h_i` (:math:`4\gamma\sigma^2 c\,n/m`
    for that quadratic).

    **Black level** :math:`y = c + \gamma\,\mathcal P((Ax - c)/\gamma) + \sigma\varepsilon` (``offset`` c of
    :class:`~selfinv.noise.PoissonGaussian`, :math:`\operatorname{Var} y_i = \gamma(\bar x_i - c) + \sigma^2`, what
    :func:`~selfinv.noise.estimate` finds on cameras whose variance line has a negative intercept). With
    :math:`y' = y - c` and :math:`\bar x' = \bar x - c`, :math:`y' = \gamma\,\mathcal P(\bar x'/\gamma) +
    \sigma\varepsilon` is the model above, and :math:`h'(y') = h(y' + c) - c` has the same residual
    :math:`y' - h'(y') = y - h(y)`, the same error :math:`h'(y') - \bar x' = h(y) - \bar x` and the same
    derivatives. PG-URE of :math:`h'` at :math:`y'` is therefore unbiased for the risk of :math:`h`: every noise term
    reads :math:`y - c` where it read :math:`y`,

    .. math:: \frac1m\Big[\|y - h(y)\|^2 - \sum_i \big(\gamma (y_i - c) + \sigma^2\big)
        + 2\sum_i (\gamma (y_i - c) + \sigma^2)\,\partial_i h_i(y) - 2\gamma\sigma^2 \sum_i \partial^2_{ii} h_i(y)\Big]

    (sums over the measured entries; :math:`\gamma(y_i - c) + \sigma^2` is the unbiased estimate of
    :math:`\operatorname{Var} y_i`). Ignoring c would overstate every variance by :math:`\gamma c`: the estimate
    would be biased by :math:`\frac{\gamma c}{m}(2\sum_i\partial_i h_i - m_\Omega)` and favour over-smoothing
    (smaller divergences). The clamp :math:`(\bar x - c)_+` of the model (signal below the black level) is outside
    these identities.

    **Divergences** (:mod:`selfinv.losses.divergence`): ``"mc"`` (default) one extra network evaluation
    for Gaussian and Poisson (2 in all), and for PG-URE with its second-order term two extra (3 in all:
    :math:`f(y\pm\tau_2 b)` with a skewed two-point probe, central differences for both terms). The step
    :math:`\tau` is relative to :math:`\max_i|y_i|` per sample unless an absolute ``tau`` is given, so the
    defaults work for [0, 1] and [0, 255] data.

    ``"hutchinson"`` and ``"exact"`` compute the divergence by autograd, with no step size in the value.
    They **train** networks with kinks (ReLU, DnCNN, U-Nets) correctly: autograd's derivative of the
    Jacobian of a piecewise-linear network is blind to parameters that only move its activation pattern
    (every bias before a ReLU, whose gradient would be exactly 0, and a network trained so stays near its
    start), so in training (gradients enabled, a model with parameters) the value stays the autograd one
    and the parameter gradient is taken from finite differences along the same probe, which see the
    pattern change (see :mod:`selfinv.losses.divergence`). Network evaluations per training step:
    ``"hutchinson"`` 1 + ``n_probes`` for Gaussian and Poisson (2 by default, as ``"mc"``, with the same
    gradient as ``"mc"`` for the same probe) and 1 + 2 ``n_probes`` for PG-URE with its second-order term;
    ``"exact"`` 1 + 2 per real entry of a sample (tiny signals only). In evaluation (under
    ``torch.no_grad()``) there are no differences: :math:`f(y)` once, and once more with a graph for
    autograd (2 in all). ``tau``/``tau_rel`` (``tau2``/``tau2_rel`` for PG-URE's pair) set the step of
    those training differences too. For ReLU networks the autograd value of PG-URE's second-order term is 0
    almost everywhere (its part on the kinks is missed): use ``"mc"`` there when the value matters.

    Args:
        divergence: ``"mc"``, ``"hutchinson"`` or ``"exact"`` (the last for tiny signals only).
        tau: absolute first-order step (float or (B,)); ``None`` uses ``tau_rel``. Used by ``"mc"``, and by
            the autograd methods for their training gradient.
        tau_rel: first-order step relative to :math:`\max|y|` (default :math:`10^{-2}`, DeepInverse's and the
            MC-SURE reference code's 0.01: with :math:`10^{-3}` (Metzler et al.'s :math:`\max y/1000`) the finite
            difference rarely crosses a ReLU's kink, so its parameter gradient has a large variance and SURE trained
            0.9 dB below supervised; see BENCHMARKS.md, "The SURE gap").
        tau2: absolute step of the PG-URE central differences; ``None`` uses ``tau2_rel``.
        tau2_rel: the same relative to :math:`\max|y|` (default :math:`10^{-2}`).
        n_probes: random probes averaged per divergence (each costs its evaluations).
        second_order: keep PG-URE's second-order term (default True).

    Example:
        >>> import torch
        >>> from selfinv.losses.sure import SURE
        >>> from selfinv.losses.supervised import Supervised
        >>> from selfinv.physics import Denoising
        >>> from selfinv.noise import Gaussian
        >>> physics = Denoising(noise=Gaussian(0.1))
        >>> x = torch.rand(20000, 1, 4, 4, dtype=torch.float64)
        >>> y = physics(x, generator=torch.Generator().manual_seed(0))
        >>> identity = lambda y, physics: y
        >>> round(float(SURE(divergence="exact")(y, physics, identity).detach()), 6)  # the noisy MSE σ²
        0.01
        >>> shrink = lambda y, physics: 0.8 * y + 0.1
        >>> sure = float(SURE()(y, physics, shrink, generator=torch.Generator().manual_seed(1)))
        >>> abs(sure - float(Supervised()(y, physics, shrink, x=x))) < 2e-4   # same risk, no ground truth
        True
    """

    info = LossInfo(
        train_evals=2, mmse_optimal=True, noise_models=(Gaussian, Poisson, PoissonGaussian),
        general_operator=True,
        reference="Stein 1981; Ramani, Blu & Unser 2008 (MC divergence); Hudson 1978 / Luisier et al. 2011 (PURE); "
        "Le Montagner, Angelini & Olivo-Marin 2014 (PG-URE)",
        risk="measurement",  # E‖A(f(y) − x)‖²: blind to the nullspace of A
    )

    def __init__(
        self,
        divergence: str = "mc",
        tau: float | torch.Tensor | None = None,
        tau_rel: float = 1e-2,
        tau2: float | torch.Tensor | None = None,
        tau2_rel: float = 1e-2,
        n_probes: int = 1,
        second_order: bool = True,
    ) -> None:
        super().__init__()
        self.divergence = check_method(divergence, "SURE")
        for name, value in (("tau_rel", tau_rel), ("tau2_rel", tau2_rel)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"SURE: {name} must be a positive number, got {value}")
        self.tau, self.tau_rel, self.tau2, self.tau2_rel = tau, float(tau_rel), tau2, float(tau2_rel)
        self.n_probes = check_n_probes(n_probes, "SURE")
        self.second_order = bool(second_order)
        if n_probes != 1:  # one evaluation of f(y) plus one per probe (PG-URE's second-order term: two per probe)
            self.info = dataclasses.replace(type(self).info, train_evals=1 + n_probes)

    def per_sample(
        self,
        y: torch.Tensor,
        physics: LinearOperator,
        model,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The estimate for each sample, shape (B,) (the loss is its mean)."""
        self._check(physics)
        return self._estimate(LossContext(y, physics, model, None, None, generator))

    def _loss(self, ctx):
        return self._estimate(ctx).mean()

    def _estimate(self, ctx: LossContext) -> torch.Tensor:
        noise = noise_of(ctx.physics, self.info.noise_models, "SURE")
        y, h, h_y = prepare_h(ctx, self.divergence)
        batch, m = y.shape[0], real_dofs(y)
        d = measured_mask(ctx.physics, y)
        residual = per_sample_sq(y - h_y)
        # the steps serve "mc", and the training gradient of the autograd methods
        kw = {"n_probes": self.n_probes, "generator": ctx.generator, "tau": self.tau, "tau_rel": self.tau_rel}
        yd = y.detach()

        if isinstance(noise, Gaussian):
            s2 = noise_param(noise, "sigma", y) ** 2
            dofs = d.flatten(1).sum(1) * (2 if y.is_complex() else 1)
            div = divergence(h, y, self.divergence, h_y, weight=s2, mask=d, **kw)
            return (residual - _per_sample_scalar(s2, batch) * dofs + 2 * div) / m

        gain = noise_param(noise, "gain", y)
        if isinstance(noise, Poisson):
            div = divergence(h, y, self.divergence, h_y, weight=gain * yd, mask=d, **kw)
            return (residual - (gain * yd).flatten(1).sum(1) + 2 * div) / m

        # Poisson-Gaussian: the counts are read from y − c (the black level c, 0 by default: then y itself)
        s2 = noise_param(noise, "sigma", y) ** 2
        if bool(noise.offset.any()):
            yd = (yd - noise_param(noise, "offset", y)) * d
        variance = (gain * yd + s2 * d).flatten(1).sum(1)  # unbiased for Σ_i Var y_i over the measured entries
        weight = gain * yd + s2
        if not self.second_order:
            div = divergence(h, y, self.divergence, h_y, weight=weight, mask=d, **kw)
            return (residual - variance + 2 * div) / m
        kw.update(tau=self.tau2, tau_rel=self.tau2_rel)
        div, div2 = second_divergence(h, y, self.divergence, h_y, weight=weight, mask=d, **kw)
        return (residual - variance + 2 * div - 2 * _per_sample_scalar(gain * s2, batch) * div2) / m

    def train_evals_for(self, physics: LinearOperator) -> int:
        noise = getattr(physics, "noise", None)
        if isinstance(noise, PoissonGaussian) and self.second_order:
            return 1 + 2 * self.n_probes  # f(y), then two perturbed evaluations per probe for the second-order term
        return self.info.train_evals

    def extra_repr(self) -> str:
        return f"divergence={self.divergence!r}"
