r"""The loss contract, loss algebra and the registry of loss properties (the tutorial's summary table).

A loss is a ``torch.nn.Module`` called as ``loss(y, physics, model, x=None, y2=None, generator=None)``
and returns a scalar (mean over the batch) that is differentiable in the model's parameters.

* ``model(y, physics) -> x_hat`` is any callable;
* noise parameters always come from ``physics.noise`` (per-sample σ/gain allowed), never from a copy
  held by the loss; a loss that cannot handle the noise model raises a ``ValueError``;
* ``x`` is read only by :class:`~selfinv.losses.Supervised`, ``y2`` only by Noise2Noise;
* ``generator`` drives every random draw of the loss (recorruptions, masks, probes), so a validation
  pass with a seeded generator is reproducible; ``None`` uses PyTorch's default generator;
* losses add and scale (``loss_a + 0.1 * loss_b``), and the terms of a sum that need
  :math:`f(y)` share one evaluation of it (:attr:`LossContext.x_hat`);
* ``loss.test_model(model)`` is the estimator to use at test time (the model itself unless the method
  says otherwise: R2R averages over recorruptions, Noise2Self can average J-invariant passes). An
  estimator other than the model is an :class:`Estimator`, called as ``estimator(y, physics,
  generator=None)`` (the generator drives its draws); :func:`estimate` calls either kind, so code that
  runs whatever ``test_model`` returned (validation, evaluation, reconstruction) passes a seeded generator
  and never touches PyTorch's global generator;
* a capability a loss reads off the model (``blind_spot``, ``predict_variance``, ``bottleneck_dim``) is read
  off :func:`unwrap` ``(model)``, the network inside a ``DistributedDataParallel`` wrapper;
* learned state (the UNSURE multiplier) is in the loss's ``state_dict`` and changes only in training
  mode.

Each loss class carries a :class:`LossInfo` (network evaluations at train and test time, whether it
needs pairs, MMSE-optimality, which unknown noise it tolerates, the noise models it supports, whether
it works for A ≠ I, the risk it estimates and what makes the nullspace visible to it), the backbone it
needs (``needs_backbone``, ``default_backbone``) and a small instance (:meth:`Loss.example`).
:data:`LOSSES` maps config names to classes; code (the advisor, the templates, the docs, the
call-counting test) reads the properties from there, never a table keyed by loss name.

Example:
    >>> import torch
    >>> from selfinv.losses import MC, Supervised
    >>> from selfinv.physics import Denoising
    >>> from selfinv.noise import Gaussian
    >>> physics = Denoising(noise=Gaussian(0.1))
    >>> model = lambda y, physics: 0.5 * y
    >>> x = torch.rand(2, 1, 4, 4); y = physics(x, generator=torch.Generator().manual_seed(0))
    >>> loss = Supervised() + 0.5 * MC()
    >>> float(loss(y, physics, model, x=x)) == float(Supervised()(y, physics, model, x=x) + 0.5 * MC()(y, physics, model))
    True
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from selfinv._batched import broadcast_param
from selfinv.noise import NoiseModel
from selfinv.physics.base import LinearOperator

Model = Callable[[torch.Tensor, LinearOperator], torch.Tensor]


class Estimator(nn.Module):
    """A test-time estimator built around a network (an average over draws, Tweedie's formula, ...).

    Called as ``estimator(y, physics, generator=None) -> x_hat``. ``generator`` drives every random draw of
    the estimator (recorruptions, masks, random neighbours), so the same seed gives the same output; ``None``
    uses PyTorch's default generator. Deterministic estimators accept it and ignore it. The network is
    ``self.model`` (a submodule when it is one), so ``eval()``/``train()``/``.to()`` reach it.
    """

    def forward(
        self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


def estimate(
    estimator: Model, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Run what :meth:`Loss.test_model` returned: an :class:`Estimator` gets ``generator``, a plain model is
    called as ``model(y, physics)`` (it draws nothing)."""
    if isinstance(estimator, Estimator):
        return estimator(y, physics, generator=generator)
    return estimator(y, physics)


def unwrap(model: Model) -> Model:
    """The network inside a ``DistributedDataParallel`` wrapper (``model.module``), else ``model`` itself: where
    a loss reads capabilities (``blind_spot``, ``predict_variance``) that the wrapper does not forward."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@dataclass(frozen=True, kw_only=True)
class LossInfo:
    """The properties of a loss, as in the tutorial's summary table (part 2) plus what code needs.

    Given by name. A loss states its network evaluations, its reference and what it claims; a fact it leaves
    out keeps its default, which claims nothing: one measurement of each x, the network itself at test time
    (1 evaluation), any noise model (it does not read one), not MMSE-optimal, no unknown noise tolerated,
    A = I only (:meth:`Loss._check` refuses other operators).
    """

    #: network evaluations per training step
    train_evals: int
    #: network evaluations of the test-time estimator (``">1"`` for averaged estimators)
    test_evals: int | str = 1
    #: works from a single measurement of each x (False: needs pairs y, y2)
    single_y: bool = True
    #: the minimiser of its expected value is the MMSE estimator E[x | y]
    mmse_optimal: bool = False
    #: tolerates unknown separable (pixel-wise independent) noise
    unknown_separable_noise: bool = False
    #: tolerates unknown coloured (spatially correlated) noise
    unknown_coloured_noise: bool = False
    #: the noise models it supports; ``None`` means any (it does not read the noise model)
    noise_models: tuple[type[NoiseModel], ...] | None = None
    #: works for A ≠ I (estimates a measurement-domain risk or enforces consistency with A)
    general_operator: bool = False
    #: where the method comes from
    reference: str
    #: needs ground truth x (only the supervised reference)
    needs_ground_truth: bool = False
    #: one of its network evaluations is f(y) itself, shared through ``LossContext.x_hat`` with other terms
    uses_x_hat: bool = True
    # -- what the advisor judges identifiability with (selfinv.advisor reads these, never a loss's name)
    #: the risk it estimates: ``"measurement"``, :math:`\mathbb{E}\|A(f(y) - x)\|^2`, blind to the nullspace of A
    #: unless the operator changes between measurements; ``"image"``, :math:`\mathbb{E}\|f(y) - x\|^2` (A = I,
    #: ground truth, or the nullspace reached through an operator family or transforms)
    risk: str = "image"
    #: learns the nullspace from measurements through several operators :math:`A_g` (an operator family, a
    #: sampler): identifiable when :math:`\operatorname{rank}\,\mathbb{E}_g A_g^\top A_g = n`
    needs_operator_family: bool = False
    #: learns the nullspace from a group of transforms :math:`T_g`: identifiable when
    #: :math:`\operatorname{rank}\,\mathbb{E}_g T_g^\top A^\top A T_g = n` (and A = I leaves nothing to learn)
    needs_transforms: bool = False
    #: why it does not suit noisy measurements (its data term fits y exactly, noise included), as the advisor
    #: says it; None when it handles noise. The advisor applies it to noisy denoising, and to any noisy data
    #: for a loss that needs transforms
    noise_caveat: str | None = None

    def __post_init__(self) -> None:
        if self.risk not in ("image", "measurement"):
            raise ValueError(f"LossInfo: risk must be 'image' or 'measurement', got {self.risk!r}")


class LossContext:
    """One evaluation of a (possibly combined) loss: the inputs and the shared model output f(y)."""

    def __init__(
        self,
        y: torch.Tensor,
        physics: LinearOperator,
        model: Model,
        x: torch.Tensor | None,
        y2: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> None:
        self.y, self.physics, self.model, self.x, self.y2, self.generator = y, physics, model, x, y2, generator
        self._x_hat: torch.Tensor | None = None

    @property
    def x_hat(self) -> torch.Tensor:
        """:math:`\\hat x = f(y, A)`, evaluated once and shared by every term that needs it."""
        if self._x_hat is None:
            self._x_hat = self.model(self.y, self.physics)
        return self._x_hat

    @property
    def evaluated(self) -> bool:
        """Whether :math:`f(y)` has already been evaluated by a term of the loss."""
        return self._x_hat is not None


class Loss(nn.Module):
    """Base class. Subclasses set ``info`` and implement ``_loss(ctx) -> scalar``."""

    info: LossInfo
    #: what the loss needs of the network's backbone, as config keys that must hold (e.g. ``{"name": "blindspot"}``
    #: or ``{"residual": False}``); such losses also take the network without a physics wrapper
    needs_backbone: dict = {}  # noqa: RUF012  (read-only class fact)
    #: a small backbone config that meets ``needs_backbone`` (what ``selfinv config init`` and ``selfinv compare``
    #: give the loss); empty for losses that take any network
    default_backbone: dict = {}  # noqa: RUF012  (read-only class fact)

    @classmethod
    def example(cls) -> Loss:
        """A small instance with default arguments, for tests, templates and the advisor (a loss whose
        constructor needs an argument, a transform or an operator family, overrides this with a typical one)."""
        return cls()

    def forward(
        self,
        y: torch.Tensor,
        physics: LinearOperator,
        model: Model,
        x: torch.Tensor | None = None,
        y2: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        name = type(self).__name__
        if not isinstance(y, torch.Tensor):
            raise ValueError(f"{name}: y must be a torch.Tensor, got {type(y).__name__}")
        if not isinstance(physics, LinearOperator):
            raise ValueError(f"{name}: physics must be a selfinv.physics operator, got {type(physics).__name__}")
        if not callable(model):
            raise ValueError(f"{name}: model must be callable as model(y, physics)")
        self._check(physics)
        return self._loss(LossContext(y, physics, model, x, y2, generator))

    def _loss(self, ctx: LossContext) -> torch.Tensor:
        raise NotImplementedError

    def _check(self, physics: LinearOperator) -> None:
        """Refuse a physics this loss cannot handle (wrong noise model, A ≠ I, ...) with a ValueError."""
        info = getattr(self, "info", None)
        if info is None:
            return
        if info.noise_models is not None:
            noise_of(physics, info.noise_models, type(self).__name__)
        if not info.general_operator and not _is_identity(physics):
            raise ValueError(f"{type(self).__name__}: only defined for denoising (A = I), got {type(physics).__name__}")

    def train_evals_for(self, physics: LinearOperator) -> int:
        """Network evaluations of one training step with this physics (``info.train_evals`` unless the count
        depends on the noise model, as PG-URE's second-order term does)."""
        return self.info.train_evals

    def test_model(self, model: Model) -> Model:
        """The test-time estimator: the model itself unless the method prescribes another, which is then an
        :class:`Estimator` (run either with :func:`estimate`)."""
        return model

    # -- hooks for the training loop ------------------------------------------
    def monitored(self) -> dict[str, float]:
        """Values worth logging after a step (e.g. UNSURE's learned noise level), by name; empty for most losses.

        A loss made of other losses (a sum, a wrapper) reports its parts' values, merged; a name that
        two parts share is kept for the first and suffixed ``_2``, ``_3``, ... for the others.
        ``fit`` writes them to ``steps.csv`` (every step) and to the epoch's metrics (``metrics.csv``,
        the history, TensorBoard).
        """
        out: dict[str, float] = {}
        for part in _parts(self):
            for key, value in part.monitored().items():
                name, k = key, 2
                while name in out:
                    name, k = f"{key}_{k}", k + 1
                out[name] = value
        return out

    def set_lr_factor(self, factor: float) -> None:
        """The optimiser's learning rate relative to its initial value (1 at the start; ``fit`` calls this
        before every training step). Losses with learned state that must follow the schedule (UNSURE's
        multipliers) read it; the default passes it on to the parts of a composite loss."""
        for part in _parts(self):
            part.set_lr_factor(factor)

    # -- algebra -----------------------------------------------------------
    def __add__(self, other: Loss) -> Loss:
        if not isinstance(other, Loss):
            return NotImplemented
        return SumLoss([(1.0, self), (1.0, other)])

    def __mul__(self, weight: float) -> Loss:
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            return NotImplemented
        return SumLoss([(float(weight), self)])

    __rmul__ = __mul__


def _parts(module: nn.Module):
    """The losses directly inside ``module`` (through containers such as ``nn.ModuleList``, not into losses)."""
    for child in module.children():
        if isinstance(child, Loss):
            yield child
        else:
            yield from _parts(child)


class SumLoss(Loss):
    r"""A weighted sum :math:`\sum_k w_k \mathcal{L}_k` whose terms share one evaluation of :math:`f(y)`.

    The test-time estimator is that of the first term that prescribes one (e.g. R2R in R2R + EI).
    """

    def __init__(self, terms: list[tuple[float, Loss]]) -> None:
        super().__init__()
        flat: list[tuple[float, Loss]] = []
        for w, term in terms:
            if isinstance(term, SumLoss):
                flat.extend((w * w2, t) for w2, t in zip(term.weights, term.terms, strict=True))
            else:
                flat.append((w, term))
        self.weights = [w for w, _ in flat]
        self.terms = nn.ModuleList([t for _, t in flat])
        self.info = combine_info([t.info for t in self.terms])

    def _check(self, physics):
        for term in self.terms:
            term._check(physics)

    def _loss(self, ctx):
        return sum(w * term._loss(ctx) for w, term in zip(self.weights, self.terms, strict=True))

    def test_model(self, model):
        for term in self.terms:
            estimator = term.test_model(model)
            if estimator is not model:
                return estimator
        return model

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}·{type(t).__name__}" for w, t in zip(self.weights, self.terms, strict=True))


def combine_info(infos: list[LossInfo]) -> LossInfo:
    """The properties of a sum of losses: evaluations of f(y) are shared, assumptions accumulate."""
    shared = any(i.uses_x_hat for i in infos)
    evals = sum(i.train_evals - (1 if i.uses_x_hat else 0) for i in infos) + (1 if shared else 0)
    tests = [i.test_evals for i in infos]
    kinds = [set(i.noise_models) for i in infos if i.noise_models is not None]
    noise = tuple(sorted(set.intersection(*kinds), key=lambda k: k.__name__)) if kinds else None
    return LossInfo(
        train_evals=evals,
        test_evals=">1" if ">1" in tests else max(int(t) for t in tests),
        single_y=all(i.single_y for i in infos),
        mmse_optimal=all(i.mmse_optimal for i in infos),
        unknown_separable_noise=all(i.unknown_separable_noise for i in infos),
        unknown_coloured_noise=all(i.unknown_coloured_noise for i in infos),
        noise_models=noise,
        general_operator=all(i.general_operator for i in infos),
        reference=" + ".join(i.reference for i in infos),
        needs_ground_truth=any(i.needs_ground_truth for i in infos),
        uses_x_hat=shared,
        risk="measurement" if all(i.risk == "measurement" for i in infos) else "image",
        needs_operator_family=any(i.needs_operator_family for i in infos),
        needs_transforms=any(i.needs_transforms for i in infos),
        noise_caveat=next((i.noise_caveat for i in infos if i.noise_caveat is not None), None),
    )


# ---------------------------------------------------------------------- helpers for losses
def sq_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean squared magnitude per real degree of freedom (complex entries count as two)."""
    if t.is_complex():
        return torch.view_as_real(t).pow(2).mean()
    return t.pow(2).mean()


def per_sample_sq(t: torch.Tensor) -> torch.Tensor:
    """(B,) squared norms per sample, summed over real degrees of freedom."""
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.pow(2).flatten(1).sum(1)


def real_dofs(t: torch.Tensor) -> int:
    """The number of real degrees of freedom of one sample of t."""
    n = t[0].numel()
    return 2 * n if t.is_complex() else n


def noise_of(physics: LinearOperator, kinds: tuple[type[NoiseModel], ...], owner: str) -> NoiseModel:
    """physics.noise if it is one of ``kinds``, else a clear ValueError naming what is supported."""
    from selfinv.noise import Unknown

    noise = physics.noise
    if isinstance(noise, Unknown):
        raise ValueError(
            f"{owner}: needs the noise model and its level ({', '.join(k.__name__ for k in kinds)}), but the noise is "
            "unknown; give them, or use a loss that tolerates unknown noise (selfinv check lists them)"
        )
    if noise is None or not isinstance(noise, kinds):
        got = "no noise model (noiseless physics)" if noise is None else type(noise).__name__
        allowed = ", ".join(k.__name__ for k in kinds)
        raise ValueError(f"{owner}: needs physics.noise to be one of {allowed}; got {got}")
    return noise


def noise_param(noise: NoiseModel, name: str, like: torch.Tensor) -> torch.Tensor:
    """A noise parameter (float or per-sample (B,)) shaped to broadcast against ``like``."""
    return broadcast_param(getattr(noise, name), like)


def _is_identity(physics: LinearOperator) -> bool:
    from selfinv.physics.denoising import Denoising

    return isinstance(physics, Denoising)
