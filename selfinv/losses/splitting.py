r"""Measurement splitting (SSDU): hold out part of the acquired measurements and predict it."""

from __future__ import annotations

import math

import torch

from selfinv import _random
from selfinv._checks import check_one_of
from selfinv.losses.base import Estimator, Loss, LossContext, LossInfo, Model, real_dofs
from selfinv.losses.consistency import make_consistency
from selfinv.physics.base import LinearOperator

SPLITS = ("bernoulli", "gaussian")
STRUCTURES = ("auto", "entries")
MODES = ("full", "average")


def split_masks(
    acquired: torch.Tensor,
    split_ratio: float,
    kind: str = "bernoulli",
    gaussian_std: float = 0.25,
    generator: torch.Generator | None = None,
    groups: torch.Tensor | None = None,
    owner: str = "split_masks",
) -> torch.Tensor:
    r"""Input masks S: for each sample, whole groups of acquired entries, about ``split_ratio`` of them.

    ``acquired`` is a boolean tensor (B, ...) of the entries actually measured; ``groups`` (int64 labels
    broadcastable to it, as :meth:`~selfinv.physics.LinearOperator.measurement_groups` returns; ``None``:
    every entry its own group) says which entries are kept together: a group is either wholly in the
    input S or wholly held out. Groups are ranked at random and held out in that order, as many as
    bring the held-out count closest to :math:`n_{\text{target}} = \operatorname{round}((1 -
    \texttt{split_ratio})\, n_{\text{acq}})` of the sample's :math:`n_{\text{acq}}` acquired entries
    (ties: fewer held out), and never none or all of its acquired groups. So the input share is as
    close as the group sizes allow to ``split_ratio`` *of the acquired entries*; for entries this is
    exactly :math:`n_{\text{acq}} - n_{\text{target}}`, for groups of one size (Cartesian lines, CT
    views) about ``split_ratio`` of the groups.

    The ranking is a Gumbel top-k (sampling without replacement), vectorised over the batch:
    ``"bernoulli"`` ranks the groups uniformly; ``"gaussian"`` (SSDU's variable-density selection) puts
    groups near the centre of the last two axes (the k-space centre for MRI, so the calibration lines
    of a Cartesian mask) preferentially in the held-out set, with weights :math:`\exp(-r^2/2s^2)`,
    :math:`s` = ``gaussian_std`` times the axis length, a group weighing the geometric mean of its
    acquired entries' weights. A sample with fewer than two acquired groups cannot be split
    (ValueError).
    """
    b = acquired.shape[0]
    flat = acquired.reshape(b, -1)
    dev = flat.device
    if groups is not None and groups.shape[0] == 1 and groups.numel() == flat.shape[1]:
        if torch.equal(groups.reshape(-1), torch.arange(flat.shape[1], device=groups.device)):
            groups = None  # one group per entry (the default of unstructured operators)
    if groups is None and kind == "bernoulli":
        return _entry_split(flat, split_ratio, generator, owner).reshape(acquired.shape)
    if groups is None:
        labels = torch.arange(flat.shape[1], device=dev).expand(b, -1)
    else:
        labels = groups.to(dev, torch.long).expand(acquired.shape).reshape(b, -1)
    n_groups = int(labels.max()) + 1 if labels.numel() else 0
    acq = flat.to(torch.float64)
    sizes = torch.zeros(b, n_groups, dtype=torch.float64, device=dev).scatter_add_(1, labels, acq)
    present = sizes > 0
    n_present = present.sum(1)
    if bool((n_present < 2).any()):
        bad = (n_present < 2).nonzero().flatten().tolist()
        raise ValueError(f"{owner}: sample(s) {bad} acquire fewer than 2 groups of entries; there is nothing to split")
    u = _random.rand((b, n_groups), generator=generator, dtype=torch.float64, device=dev)
    keys = -torch.log(-torch.log(u.clamp(1e-300, 1 - 1e-16)))  # Gumbel(0, 1)
    if kind == "gaussian":
        h, w = acquired.shape[-2:]
        r2 = ((torch.arange(h, device=dev) - h // 2)[:, None] / (gaussian_std * h)) ** 2 + (
            (torch.arange(w, device=dev) - w // 2)[None, :] / (gaussian_std * w)
        ) ** 2
        logw = (-0.5 * r2).to(torch.float64).expand(acquired.shape).reshape(b, -1)
        group_logw = torch.zeros_like(sizes).scatter_add_(1, labels, logw * acq) / sizes.clamp_min(1)
        keys = keys + group_logw  # larger key: more likely held out
    keys = keys.masked_fill(~present, -math.inf)
    order = keys.argsort(1, descending=True)  # held out first
    held_count = sizes.gather(1, order).cumsum(1)  # [:, k - 1]: entries held out with the first k groups
    n_target = torch.round((1.0 - split_ratio) * flat.sum(1)).to(torch.float64)
    k = torch.arange(1, n_groups + 1, device=dev)
    err = (held_count - n_target[:, None]).abs().masked_fill(k[None] > (n_present - 1)[:, None], math.inf)
    n_held = err.argmin(1) + 1  # the first minimum: fewer groups on ties
    held_group = order.argsort(1) < n_held[:, None]
    held = held_group.gather(1, labels) & flat
    return (flat & ~held).reshape(acquired.shape)


def _entry_split(flat: torch.Tensor, split_ratio: float, generator: torch.Generator | None, owner: str) -> torch.Tensor:
    r""":func:`split_masks` for single entries ranked uniformly (the same law, one ``topk`` instead of two sorts):
    a uniformly random set of :math:`\min(\max(n_{\text{target}}, 1), n_{\text{acq}} - 1)` acquired entries is held out."""
    n_acq = flat.sum(1)
    if bool((n_acq < 2).any()):
        bad = (n_acq < 2).nonzero().flatten().tolist()
        raise ValueError(f"{owner}: sample(s) {bad} acquire fewer than 2 groups of entries; there is nothing to split")
    keys = _random.rand(flat.shape, generator=generator, dtype=torch.float64, device=flat.device).masked_fill(~flat, -1.0)
    n_held = torch.minimum(torch.round((1.0 - split_ratio) * n_acq.to(torch.float64)).long().clamp_min(1), n_acq - 1)
    top = keys.topk(int(n_held.max()), dim=1).values  # descending
    held = (keys >= top.gather(1, (n_held - 1)[:, None])) & flat
    return flat & ~held


class Splitting(Loss):
    r"""Measurement splitting / SSDU (Yaman et al., MRM 2020; tutorial part 3).

    For each sample, the acquired measurements are split at random into an input part :math:`S` and a
    held-out part :math:`I - S` (``split_ratio`` is the input share; SSDU's loss share
    :math:`\rho = 0.4` is ``split_ratio=0.6``), and the network reconstructs from the input part only:

    .. math::

        \mathcal{L}_{\text{SPLIT}}(y, f) = \mathbb{E}_S\, \frac{\|(I - S)\big(y - A f(Sy, SA)\big)\|^2}{|I - S|}
        \;[+\ \text{a consistency term on } Sy],

    each term a mean per real degree of freedom of its entries (:math:`|S|` counts the input entries).
    Theorem (Daras et al. 2024, tutorial): if :math:`\mathbb{E}\{A^\top A \mid SA\}` has full rank, the
    minimiser is :math:`\mathbb{E}\{x \mid Sy, SA\}`. That needs *several* operators (e.g. a mask per
    sample); splitting one fixed operator cannot identify its nullspace. Per-sample operator masks are
    respected: only acquired entries are split.

    **What is held out** (``structure``). With ``"auto"`` (the default) the split follows the
    acquisition, :meth:`physics.measurement_groups <selfinv.physics.LinearOperator.measurement_groups>`:
    whole k-space lines for Cartesian MRI masks (shared or per sample), whole views (all detector bins
    of an angle) for CT, single entries for inpainting, denoising and unstructured operators. Held-out
    entries then look like what the acquisition misses: splitting entries inside acquired lines never
    asks the network to fill a missing line, and it learns less than the zero-filled input gives
    (64² knee crops, ×4 masks per image: 21.7 dB entry-wise, 22.3 line-wise, 22.7 zero-filled). The
    input share is as close as the group sizes allow to ``split_ratio`` of the acquired entries (see
    :func:`split_masks`). ``"entries"`` splits entry by entry whatever the operator.

    ``consistency`` adds a term on the input part, normalised like the held-out term (divided by the
    real degrees of freedom of :math:`S y`, whichever estimator): ``"mc"`` (the default,
    :math:`\|S(y - A f)\|^2`: with the held-out term, the tutorial's full :math:`\|y - A f(Sy, SA)\|^2`,
    biased by noise on the input entries), ``"none"`` (SSDU's held-out term alone: nothing then constrains
    :math:`S A f`, so use it only with networks that keep their input entries, such as unrolled networks
    with data-consistency steps; a back-projection network trained so returns garbage on the measured
    entries, see BENCHMARKS.md § Inpainting), or one of the noisy variants of the tutorial's slide:
    ``"sure"`` (SURE of :math:`S A f(Sy, SA)` on the input entries,
    :math:`\|S(y - A f)\|^2 - |S|\sigma^2 + 2\sigma^2 \operatorname{div}`, one more network evaluation) or
    ``"r2r"`` (the network sees the recorrupted :math:`S y_1` and the input entries are compared with the independent
    :math:`S y_2`, :math:`\|S(y_2 - A f(Sy_1, SA))\|^2`; still one evaluation). As the noise vanishes the
    three terms agree. The held-out part :math:`(I - S)(y - A f)` is not affected by separable noise.

    Test time (``test_model``): ``mode="full"`` evaluates :math:`f(y, A)` (SSDU practice, cheap) and
    ``mode="average"`` the tutorial's per-entry average over K fresh splits (:class:`SplitAverage`).

    Args:
        split_ratio: share of the acquired entries given to the network as input, in (0, 1).
        split: how groups are drawn: "bernoulli" (uniform) or "gaussian" (variable density, for
            k-space: centre lines/entries preferentially held out).
        structure: "auto" (default: whole groups of ``physics.measurement_groups``) or "entries".
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
        >>> s = Splitting().masks(y, physics, generator=torch.Generator().manual_seed(1))
        >>> bool((s == s[:, :, :1]).all())            # whole k-space lines (columns) are held out
        True
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
        structure: str = "auto",
    ) -> None:
        super().__init__()
        if not 0 < split_ratio < 1:
            raise ValueError(f"Splitting: split_ratio must be in (0, 1), got {split_ratio}")
        check_one_of(split, SPLITS, "split", "Splitting")
        check_one_of(structure, STRUCTURES, "structure", "Splitting")
        check_one_of(consistency, ("none", "mc", "sure", "r2r"), "consistency", "Splitting")
        if not 0 < alpha < 1:
            raise ValueError(f"Splitting: alpha must be in (0, 1), got {alpha}")
        check_one_of(mode, MODES, "mode", "Splitting")
        if n_samples < 1:
            raise ValueError(f"Splitting: n_samples must be >= 1, got {n_samples}")
        self.split_ratio, self.split, self.gaussian_std = float(split_ratio), split, float(gaussian_std)
        self.structure = structure
        self.mode, self.n_samples = mode, int(n_samples)
        self.consistency_name, self.alpha = consistency, float(alpha)
        self.consistency = make_consistency(consistency, "Splitting") if consistency in ("sure", "r2r") else None
        self.info = LossInfo(
            train_evals=2 if consistency == "sure" else 1,
            test_evals=1 if mode == "full" else ">1",
            uses_x_hat=False,  # its network input is S y, not y
            mmse_optimal=True,
            unknown_separable_noise=consistency == "none",  # MC on the input entries fits their noise; SURE/R2R need it
            noise_models=self.consistency.info.noise_models if self.consistency is not None else None,
            general_operator=True,
            needs_operator_family=True,  # the held-out entries see the nullspace only as the operators vary
            reference="Yaman et al., MRM 2020 (SSDU); Daras et al. 2024",
        )

    def _check(self, physics):
        if self.consistency is not None:
            self.consistency._check(physics)

    def masks(self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw the input masks S (as float, y's shape) for a batch: whole groups of
        ``physics.measurement_groups(y)`` (``structure="auto"``) or single entries."""
        acquired = physics.acquired(y).expand(y.shape)
        groups = physics.measurement_groups(y) if self.structure == "auto" else None
        s = split_masks(acquired, self.split_ratio, self.split, self.gaussian_std, generator, groups, owner="Splitting")
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
        n_input = dof * s.sum().clamp_min(1)  # every consistency term is a mean over the real dofs of S y
        if self.consistency_name == "mc":
            loss = loss + _sq(s * residual).sum() / n_input
        elif self.consistency_name == "r2r":
            loss = loss + _sq(s * (y2 - physics.A(x_hat))).sum() / n_input
        elif self.consistency is not None:  # SURE divides by all m real entries of y: back to a sum first
            loss = loss + (self.consistency._estimate(sub_ctx) * real_dofs(y_in)).sum() / n_input
        return loss

    def test_model(self, model: Model, mode: str | None = None, n_samples: int | None = None) -> Model:
        """``"full"``: the model itself; ``"average"``: :class:`SplitAverage` over K fresh splits."""
        mode = check_one_of(mode or self.mode, MODES, "mode", "Splitting")
        if mode == "full":
            return model
        return SplitAverage(model, self, n_samples or self.n_samples)


class SplitAverage(Estimator):
    r"""The tutorial's test-time splitting estimator: each entry averaged over the splits that held it out.

    With K fresh splits :math:`S_k` (held-out masks :math:`m_k = \text{acquired} \odot (1 - s_k)`) and
    :math:`f_k = f(S_k y, S_k A)`, the tutorial (part 3, "Measurement Splitting", test time) defines

    .. math:: M \sum_k \operatorname{diag}(m_k)\, f_k, \qquad M = \Big(\sum_k \operatorname{diag}(m_k)\Big)^{-1},

    for denoising, where the entries of the output are the measured entries: every entry is predicted
    only by the splits that did not see it. For :math:`A \ne I` the held-out entries are measurements,
    so the average is taken in the measurement domain, :math:`\hat y = M \sum_k \operatorname{diag}(m_k)
    A f_k`, and brought back to the image with the pseudo-inverse around the plain mean
    :math:`\bar x = \frac1K \sum_k f_k`:

    .. math:: \hat x = \bar x + A^\dagger D\,(\hat y - A \bar x),

    :math:`D` the diagonal of the entries held out at least once. **Fallback:** an entry never held out
    in the K draws (and every unacquired one) keeps :math:`A\bar x`, the plain average. For
    :math:`A = I` and pixel masks (inpainting) :math:`\hat x` is exactly the tutorial's per-entry
    average (:math:`\bar x` on the fallback pixels); for Cartesian MRI it replaces the held-out k-space
    entries of :math:`\bar x` by their average, keeping :math:`\bar x` in the nullspace. K network
    evaluations (one per split, each on the whole batch) and one :math:`A^\dagger`. Called as
    ``estimator(y, physics, generator=None)``; the K splits are drawn from ``generator``.
    """

    def __init__(self, model: Model, loss: Splitting, n_samples: int) -> None:
        super().__init__()
        self.model, self.loss, self.n_samples = model, loss, n_samples

    def forward(
        self, y: torch.Tensor, physics: LinearOperator, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        acquired = physics.acquired(y).expand(y.shape)
        total = held_sum = count = None
        for _ in range(self.n_samples):  # K draws, each vectorised over the batch
            s = self.loss.masks(y, physics, generator)
            out = self.model(s * y, physics.subsample(s))
            held = acquired.to(s.dtype) * (1 - s)
            pred = held * physics.A(out)
            total = out if total is None else total + out
            held_sum = pred if held_sum is None else held_sum + pred
            count = held if count is None else count + held
        mean = total / self.n_samples
        y_bar = physics.A(mean)
        y_hat = held_sum / count.clamp_min(1)
        correction = torch.where(count > 0, y_hat - y_bar, torch.zeros_like(y_bar))
        return mean + physics.A_dagger(correction)


def _sq(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t).pow(2).sum(-1) if t.is_complex() else t.pow(2)
