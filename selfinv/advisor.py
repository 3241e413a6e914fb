r"""The advisor: which self-supervised losses can learn from *these* measurements, and why.

It combines each registered loss's facts (the :class:`~selfinv.losses.LossInfo` of
:meth:`Loss.example() <selfinv.losses.Loss.example>` for every entry of :data:`selfinv.losses.LOSSES`: noise
models supported, A ≠ I, pairs needed, the risk it estimates, what makes the nullspace visible to it) with
the identifiability conditions of :mod:`selfinv.theory`. The rules read those fields only, never a loss's
name, so a newly registered loss gets a verdict without an edit here:

* one operator that is not injective: its nullspace is invisible to every loss of the measurement risk
  (``risk == "measurement"``: MC, SURE, R2R, Noise2Noise, UNSURE); something must add information;
* several operators :math:`A_g` (a sampler): the losses with ``needs_operator_family`` (MOI, splitting)
  need :math:`\operatorname{rank}\,\mathbb{E}_g A_g^\top A_g = n` (Tachella, Chen & Davies 2022; Daras et
  al. 2024);
* a group of transforms: the losses with ``needs_transforms`` (EI/REI) need
  :math:`\operatorname{rank}\,\mathbb{E}_g T_g^\top A^\top A T_g = n`, impossible when A is equivariant to
  the group (Tachella et al., JMLR 2023).

Example:
    >>> import torch
    >>> from selfinv.advisor import advise
    >>> from selfinv.physics import MRI
    >>> from selfinv.transforms import Rotate, Shift
    >>> mask = torch.zeros(16, 16); mask[:, ::4] = 1; mask[:, 6:10] = 1
    >>> advice = advise(MRI(mask), transforms=[Shift(), Rotate(4)])
    >>> print(advice.transform_lines[0])    # doctest: +ELLIPSIS
    MRI with Shift(): rank .../256 — these transforms do not help (MRI is equivariant to them)...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from selfinv.losses import LOSSES, LossInfo
from selfinv.noise import Estimate, Gaussian, PoissonGaussian, Unknown
from selfinv.physics.base import LinearOperator
from selfinv.physics.denoising import Denoising
from selfinv.theory import RankResult, is_equivariant, rank_condition
from selfinv.transforms import Transform


@dataclass(frozen=True)
class Verdict:
    """Whether one loss applies, in one plain sentence."""

    loss: str
    applicable: bool
    reason: str

    def __str__(self) -> str:
        return f"{'✓' if self.applicable else '✗'} {self.loss}: {self.reason}"


@dataclass
class Advice:
    """The advisor's report: the identifiability facts and one verdict per registered loss."""

    operator: str
    noise: str
    single: RankResult | None
    family: RankResult | None
    transform_results: list[tuple[Transform, RankResult, bool]] = field(default_factory=list)
    transform_lines: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    note: str | None = None  # the operator's own words on what it measures (its optional identifiability_note())

    @property
    def applicable(self) -> list[str]:
        """Names of the losses that apply."""
        return [v.loss for v in self.verdicts if v.applicable]

    def verdict(self, name: str) -> Verdict:
        return next(v for v in self.verdicts if v.loss == name)

    def __str__(self) -> str:
        lines = [f"Physics: {self.operator}; noise: {self.noise}."]
        if self.single is not None:
            lines.append(f"One operator: {self.single}.")
        if self.note:
            lines.append(self.note)
        if self.family is not None:
            lines.append(f"Operator family: {self.family}.")
        lines += self.transform_lines
        lines.append("Losses:")
        lines += [f"  {v}" for v in self.verdicts]
        return "\n".join(lines)


def advise(
    physics: LinearOperator,
    sampler=None,
    transforms: Sequence[Transform] | None = None,
    pairs: bool = False,
    noise_known: bool = True,
    n_operators: int = 32,
    x_shape: tuple[int, ...] | None = None,
) -> Advice:
    """Report which losses can learn from measurements of ``physics`` (and why).

    Args:
        physics: the operator with its noise model (``physics.noise``; None = noiseless).
        sampler: the operator family when each measurement has its own operator (a sampler of
            ``selfinv.physics.samplers``); None for one fixed operator.
        transforms: candidate group actions for EI/REI (e.g. ``[Shift(), Rotate(4)]``).
        pairs: whether two independent measurements of each x exist (Noise2Noise).
        noise_known: whether the noise model's parameters are trusted (False: only losses that tolerate
            unknown noise are recommended). A :class:`~selfinv.noise.Unknown` noise model means False, and
            with ``separable=False`` only the losses that tolerate correlated noise apply.
        n_operators: how many operators to draw from ``sampler`` for the rank test.
        x_shape: per-sample image shape (C, H, W), for operators that accept any size (blur, demosaicing).
    """
    op = physics.select(0) if physics.batch_size else physics
    name = type(op).__name__
    noise = physics.noise
    denoising = isinstance(op, Denoising)
    single = None if denoising else rank_condition(op, x_shape=x_shape)
    injective = denoising or single.holds
    family = rank_condition(sampler, n_operators=n_operators, x_shape=x_shape) if sampler is not None else None
    if isinstance(noise, Unknown):
        noise_known = False
        desc = "unknown, " + ("independent between entries (separable)" if noise.separable else "possibly correlated")
    elif isinstance(noise, Estimate):
        desc = f"to be estimated from the measurements ({' or '.join(c.__name__ for c in _noise_classes(noise))})"
    else:
        desc = "none (noiseless)" if noise is None else repr(noise) + ("" if noise_known else ", parameters not trusted")
    note = getattr(op, "identifiability_note", None)  # an operator's own words on its coverage (radio interferometry)
    advice = Advice(name, desc, single, family, note=note() if callable(note) else None)

    good_transforms = []
    for t in transforms or ():
        r = rank_condition(op, transforms=t, x_shape=x_shape) if not denoising else None
        eq = is_equivariant(op, t, x_shape=x_shape) if not denoising else None
        if r is None:
            continue
        helps = r.holds and not (single is not None and single.holds)
        advice.transform_results.append((t, r, helps))
        if r.holds:
            good_transforms.append(t)
            msg = f"{name} with {t!r}: rank {r.rank}/{r.n} — full rank, EI/REI can learn the nullspace"
        elif eq is not None and eq.equivariant:
            msg = f"{name} with {t!r}: rank {r.rank}/{r.n} — these transforms do not help ({name} is equivariant to them)"
        else:
            msg = f"{name} with {t!r}: rank {r.rank}/{r.n} — not enough; try another group"
        if not r.holds and single is not None and r.rank > single.rank:
            msg += f" (up from {single.rank})"
        advice.transform_lines.append(msg + ".")

    for loss_name, cls in LOSSES.items():
        advice.verdicts.append(
            _verdict(loss_name, cls.example().info, physics, denoising, injective, family, good_transforms, pairs, noise_known)
        )
    return advice


def _noise_classes(noise) -> tuple[type, ...]:
    """The noise model classes ``noise`` stands for: its own, or those an :class:`~selfinv.noise.Estimate` may
    resolve to (known after estimation)."""
    if isinstance(noise, Estimate):
        return {"gaussian": (Gaussian,), "poisson_gaussian": (PoissonGaussian,)}.get(noise.model, (Gaussian, PoissonGaussian))
    return (type(noise),)


def _verdict(name: str, info: LossInfo, physics, denoising, injective, family, good_transforms, pairs, noise_known) -> Verdict:
    """One loss's verdict, from its :class:`~selfinv.losses.LossInfo` and the identifiability facts only
    (``name`` only labels the verdict)."""
    noise = physics.noise
    coloured = isinstance(noise, Unknown) and not noise.separable
    if info.needs_ground_truth:
        return Verdict(name, False, "needs ground truth x (the reference to compare with, not a training option)")
    if not info.single_y and not pairs:
        return Verdict(name, False, "needs two independent measurements of each image (pairs=True)")
    if not info.general_operator and not denoising:
        return Verdict(name, False, f"defined for denoising (A = I) only, not {type(physics).__name__}")
    if noise is None and denoising:
        return Verdict(name, False, "nothing to learn: noiseless denoising")
    if not noise_known and noise is not None:
        if coloured and not info.unknown_coloured_noise:
            why = "tolerates unknown noise only when it is independent between entries" if info.unknown_separable_noise \
                else "needs the noise model and its level"
            return Verdict(name, False, f"{why}; yours is unknown and possibly correlated")
        if not coloured and not info.unknown_separable_noise:
            needs = "" if info.noise_models is None else f" ({', '.join(k.__name__ for k in info.noise_models)})"
            return Verdict(name, False, f"needs the noise model and its level{needs}, which are unknown here "
                                        "(estimate them, or use a loss that tolerates unknown noise)")
    elif info.noise_models is not None:
        if noise is None:
            return Verdict(name, False, "needs a noise model in physics.noise")
        kinds = _noise_classes(noise)
        if not any(issubclass(k, info.noise_models) for k in kinds):
            allowed = ", ".join(k.__name__ for k in info.noise_models)
            return Verdict(name, False, f"supports {allowed} noise, not {' or '.join(k.__name__ for k in kinds)}")
    if info.needs_operator_family:
        if family is None:
            return Verdict(name, False, "needs measurements through several operators (give the operator family)")
        if not family.holds:
            return Verdict(name, False, f"the operator family is not identifiable: rank {family.rank}/{family.n}")
        return Verdict(name, True, f"the operators together have full rank ({family.rank}/{family.n})")
    if info.needs_transforms:
        if denoising:
            return Verdict(name, False, "A = I: nothing in the nullspace for equivariance to recover")
        if not good_transforms:
            return Verdict(name, False, "no given transform group makes rank E_g T_gᵀAᵀAT_g = n (try rotations, shifts)")
        if info.noise_caveat is not None and noise is not None:
            return Verdict(name, False, info.noise_caveat)
        return Verdict(name, True, f"full rank with {good_transforms[0]!r}")
    if info.noise_caveat is not None and noise is not None and denoising:
        return Verdict(name, False, info.noise_caveat)
    if info.risk == "measurement" and not injective:
        if family is not None and family.holds:
            return Verdict(name, True, "estimates the measurement risk; the operator family makes it identifiable")
        return Verdict(name, False, "only sees the range of A: the nullspace stays unlearned (add EI/REI or MOI)")
    if noise is not None and info.unknown_separable_noise and not info.mmse_optimal:
        return Verdict(name, True, "valid for noise independent between entries, not MMSE-optimal")
    return Verdict(name, True, "applies" + (" (MMSE-optimal)" if info.mmse_optimal else ""))
