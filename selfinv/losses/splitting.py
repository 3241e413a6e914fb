r"""Measurement splitting (SSDU): hold out part of the acquired measurements and predict it."""

from __future__ import annotations

import math

import torch
from torch import nn

from selfinv import _random
from selfinv.losses.base import Loss, LossContext, LossInfo, Model
from selfinv.losses.consistency import make_consistency
from selfinv.physics.base import LinearOperator

SPLITS = ("bernoulli", "gaussian")
MODES = ("full", "average")


def split_masks(
    acquired: torch.Tensor,
    split_ratio: float,
    kind: str = "bernoulli",
    gaussian_std: float = 0.25,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Input masks S: for each sample, ``round(split_ratio · #acquired)`` of its acquired entries.

    ``acquired`` is a boolean tensor (B, ...) of the entries actually measured. ``"bernoulli"`` picks
    the input entries uniformly; ``"gaussian"`` (SSDU's variable-density selection) puts entries near
    the centre of the last two axes (the k-space centre for MRI) preferentially in the held-out set,
    with weights :math:`\exp(-r^2/2s^2)`, :math:`s` = ``gaussian_std`` times the axis length. Exact
    counts per sample (Gumbel top-k over the acquired entries), vectorised over the batch.
    """
    b = acquired.shape[0]
    flat = acquired.reshape(b, -1)
    u = _random.rand(tuple(flat.shape), generator=generator, dtype=torch.float64, device=flat.device)
    keys = -torch.log(-torch.log(u.clamp(1e-300, 1 - 1e-16)))  # Gumbel(0, 1)
    if kind == "gaussian":
        h, w = acquired.shape[-2:]
        r2 = ((torch.arange(h, device=flat.device) - h // 2)[:, None] / (gaussian_std * h)) ** 2 + (
            (torch.arange(w, device=flat.device) - w // 2)[None, :] / (gaussian_std * w)
        ) ** 2
        logw = (-0.5 * r2).to(torch.float64).expand(acquired.shape).reshape(b, -1)
        keys = keys + logw  # larger key: more likely held out
    keys = keys.masked_fill(~flat, -math.inf)
    n_acq = flat.sum(1)
    n_target = torch.round((1.0 - split_ratio) * n_acq).long()
    rank = keys.argsort(1, descending=True).argsort(1)  # 0 for the largest key
    target = (rank < n_target[:, None]) & flat
    return (flat & ~target).reshape(acquired.shape)


class Splitting(Loss):
    r"""Measurement splitting / SSDU (Yaman et al., MRM 2020; tutorial part 3).

    For each sample, the acquired measurements are split at random into an input part :math:`S` and a
    held-out part :math:`I - S` (``split_ratio`` is the input share; SSDU's loss share
    :math:`\rho = 0.4` is ``split_ratio=0.6``), and the network reconstructs from the input part only:

    .. math::

        \mathcal{L}_{\text{SPLIT}}(y, f) = \mathbb{E}_S \big\|(I - S)\big(y - A f(Sy, SA)\big)\big\|^2
        \;[+\ \text{a consistency term on } Sy].

    Theorem (Daras et al. 2024, tutorial): if :math:`\mathbb{E}\{A^\top A \mid SA\}` has full rank, the
    minimiser is :math:`\mathbb{E}\{x \mid Sy, SA\}`. That needs *several* operators (e.g. a mask per
    sample); splitting one fixed operator cannot identify its nullspace. Per-sample operator masks are
    respected: only acquired entries are split.

    ``consistency`` adds a term on the input part: ``"mc"`` (the default,
    :math:`\|S(y - A f)\|^2`: with the held-out term, the tutorial's full :math:`\|y - A f(Sy, SA)\|^2`,
    biased by noise on the input entries), ``"none"`` (SSDU's held-out term alone: nothing then constrains
    :math:`S A f`, so use it only with networks that keep their input entries, such as unrolled networks
    with data-consistency steps; a back-projection network trained so returns garbage on the measured
    entries, see BENCHMARKS.md § Inpainting), or one of the noisy variants of the tutorial's slide:
    ``"sure"`` (SURE of :math:`S A f(Sy, SA)` on the input entries, one more network evaluation) or
    ``"r2r"`` (the network sees the recorrupted :math:`S y_1` and the input entries are compared with the independent
    :math:`S y_2`, :math:`\|S(y_2 - A f(Sy_1, SA))\|^2`; still one evaluation). The held-out part
    :math:`(I - S)(y - A f)` is not affected by separable noise.

    Test time (``test_model``): ``mode="full"`` evaluates :math:`f(y, A)` (SSDU practice, cheap) and
    ``mode="average"`` the average :math:`\frac1K\sum_k f(S_k y, S_k A)` over K fresh splits.

    Args:
        split_ratio: fraction of the acquired entries given to the network as input, in (0, 1).
        split: "bernoulli" (uniform) or "gaussian" (variable density, for k-space).
        consistency: "mc" (default), "none", "sure" or "r2r".
        alpha: the R2R recorruption level (``consistency="r2r"``).
        gaussian_std: width of the variable-density profile (fraction of each axis).
        mode: default test-time mode, "full" or "average"; n_samples: K for "average".

    Example:
        >>> import torch
        >>> from selfinv.losses import Splitting
        >>> from selfinv.physics.samplers import MRIMaskSampler
        >>> physics = MRIMaskSampler(16, acceleration=2, center_fraction=0.25)(2, generator=torch.Generator().manual_seed(0))
        >>> y = physics(torch.randn(2, 1, 16, 16, dtype=torch.complex64))
        >>> model = lambda y, physics: physics.A_adjoint(y)
        >>> Splitting()(y, physics, model, generator=torch.Generator().manual_seed(1)).shape
        torch.Size([])
    """

    def __init__(
        self,
        split_ratio: float = 0.6,
        split: str = "bernoulli",
        consistency: str = "mc",
        gaussian_std: float = 0.25,
        mode: str = "full",
        n_samples: int = 5,
        alpha: float = 0.15,
    ) -> None:
        super().__init__()
        if not 0 < split_ratio < 1:
            raise ValueError(f"Splitting: split_ratio must be in (0, 1), got {split_ratio}")
        if split not in SPLITS:
            raise ValueError(f"Splitting: split must be one of {', '.join(SPLITS)}, got {split!r}")
        if consistency not in ("none", "mc", "sure", "r2r"):
            raise ValueError(f"Splitting: consistency must be one of none, mc, sure, r2r, got {consistency!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"Splitting: alpha must be in (0, 1), got {alpha}")
        if mode not in MODES:
            raise ValueError(f"Splitting: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if n_samples < 1:
            raise ValueError(f"Splitting: n_samples must be >= 1, got {n_samples}")
        self.split_ratio, self.split, self.gaussian_std = float(split_ratio), split, float(gaussian_std)
        self.mode, self.n_samples = mode, int(n_samples)
        self.consistency_name, self.alpha = consistency, float(alpha)
        self.consistency = make_consistency(consistency, "Splitting") if consistency in ("sure", "r2r") else None
        self.info = LossInfo(
            train_evals=2 if consistency == "sure" else 1,
            test_evals=1 if mode == "full" else ">1",
            single_y=True,
            mmse_optimal=True,
            unknown_separable_noise=consistency == "none",  # MC on the input entries fits their noise; SURE/R2R need it
            unknown_coloured_noise=False,
            noise_models=self.consistency.info.noise_models if self.consistency is not None else None,
            general_operator=True,
            reference="Yaman et al., MRM 2020 (SSDU); Daras et al. 2024",
            uses_x_hat=False,
        )

    def _check(self, physics):
        if self.consistency is not None:
            self.consistency._check(physics)

    def masks(self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw the input masks S (as float, y's shape) for a batch."""
        acquired = physics.acquired(y).expand(y.shape)
        s = split_masks(acquired, self.split_ratio, self.split, self.gaussian_std, generator)
        return s.to(y.real.dtype if y.is_complex() else y.dtype)

    def _loss(self, ctx):
        y, physics = ctx.y, ctx.physics
        s = self.masks(y, physics, ctx.generator)
        held_out = physics.acquired(y).expand(y.shape).to(s.dtype) * (1 - s)
        if self.consistency_name == "r2r":  # the network sees S y1; the input entries are checked against S y2
            from selfinv.losses.r2r import recorrupt

            y1, y2, physics1 = recorrupt(y, physics, self.alpha, ctx.generator, owner="Splitting")
            sub, y_in = physics1.subsample(s), s * y1
        else:
            sub, y_in = physics.subsample(s), s * y
        sub_ctx = LossContext(y_in, sub, ctx.model, None, None, ctx.generator)
        x_hat = sub_ctx.x_hat  # f(Sy, SA)
        residual = y - physics.A(x_hat)
        dof = 2 if y.is_complex() else 1  # mean per real degree of freedom
        loss = _sq(held_out * residual).sum() / (dof * held_out.sum().clamp_min(1))
        if self.consistency_name == "mc":
            loss = loss + _sq(s * residual).sum() / (dof * s.sum().clamp_min(1))
        elif self.consistency_name == "r2r":
            loss = loss + _sq(s * (y2 - physics.A(x_hat))).sum() / (dof * s.sum().clamp_min(1))
        elif self.consistency is not None:
            loss = loss + self.consistency._loss(sub_ctx)
        return loss

    def test_model(self, model: Model, mode: str | None = None, n_samples: int | None = None,
                   generator: torch.Generator | None = None) -> Model:
        """``"full"``: the model itself; ``"average"``: :class:`SplitAverage` over K fresh splits."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"Splitting: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "full":
            return model
        return SplitAverage(model, self, n_samples or self.n_samples, generator)


class SplitAverage(nn.Module):
    r"""The averaged splitting estimator :math:`\frac1K \sum_k f(S_k y, S_k A)` (K network evaluations)."""

    def __init__(self, model: Model, loss: Splitting, n_samples: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.model, self.loss, self.n_samples, self.generator = model, loss, n_samples, generator

    def forward(self, y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
        total = None
        for _ in range(self.n_samples):
            s = self.loss.masks(y, physics, self.generator)
            out = self.model(s * y, physics.subsample(s))
            total = out if total is None else total + out
        return total / self.n_samples


def _sq(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t).pow(2).sum(-1) if t.is_complex() else t.pow(2)
