r"""Cross-validation (J-invariance) losses: Noise2Void and Noise2Self (tutorial part 2, "Measurement Splitting").

If :math:`f_i` does not depend on :math:`y_i` and the noise is pixel-wise independent with zero mean,
:math:`\mathbb{E}\,\|y - f(y)\|^2 = \mathbb{E}\,\|x - f(y)\|^2 + \sum_i \operatorname{Var}(y_i \mid x_i)`, so
measurement consistency becomes a valid self-supervised risk. Both losses here obtain that independence by
training: at every step a set :math:`b` of pixels is hidden, the network sees :math:`y_a` (the masked pixels
replaced by something that does not carry their value) and the loss is taken only on the hidden pixels,

.. math::

    \mathcal{L}(y, f) = \frac{1}{|b|}\,\|m_b \circ (y - f(y_a))\|^2

(mean over the masked entries of each sample, then over the batch). Neither loss reads the noise model:
any unknown *separable* noise works, coloured noise does not (neighbours would predict the noise) — except
noise correlated along one axis, which Noise2Void's structN2V mask (``struct_axis``) hides. Both work on images
(B, C, H, W) and volumes (B, C, D, H, W) (3-D masks, :mod:`selfinv.losses.masks`).

At test time (tutorial, "Measurement Splitting", test time) :meth:`~Noise2Self.test_model` offers

1. ``mode="average"``: :math:`f^{\text{test}}(y) = \sum_p m_p \circ f(y_{a_p})` over the :math:`w^2` phases
   :math:`p` of a :math:`w \times w` grid partition (:class:`JInvariantAverage`). Every pixel is hidden
   exactly once, so :math:`M = I` in the tutorial's formula, and the estimator is **exactly** J-invariant
   for any network. It costs :math:`w^2` network evaluations.
2. ``mode="single"`` (default): :math:`f(y)`, one evaluation, assuming the trained network generalises to
   unmasked inputs. Batson & Royer's MNIST notebook reports a slightly *lower* test error for the single
   pass (0.017 vs 0.021), which together with the :math:`w^2` cost is why it is the default.
"""

from __future__ import annotations

import math

import torch

from selfinv import _random
from selfinv._checks import check_either, check_fraction, check_int, check_one_of
from selfinv.losses.base import Estimator, Loss, LossContext, LossInfo, Model
from selfinv.losses.masks import (
    check_spatial,
    fill_uniform,
    interpolate,
    neighbour_replace,
    struct_line,
    uniform_int,
)
from selfinv.losses.masks import grid_mask as grid_mask_nd

__all__ = ["JInvariantAverage", "Noise2Self", "Noise2Void", "grid_mask"]

_TEST_MODES = ("single", "average")
#: structN2V's line directions: the spatial axis each one runs along
_STRUCT_AXES = {"none": None, "horizontal": -1, "vertical": -2, "depth": -3}


# ---------------------------------------------------------------------- helpers
def _check_image(y: torch.Tensor, owner: str, min_size: int = 1) -> None:
    check_spatial(y, owner, min_size)


def _check_output(out: torch.Tensor, y: torch.Tensor, owner: str) -> None:
    if not isinstance(out, torch.Tensor) or out.shape != y.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{owner}: the model output must have the shape of y {tuple(y.shape)}, got {got}")


_uniform_int = uniform_int
_interpolate = interpolate


def _masked_mean(residual: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of |residual|² over the masked entries of each sample, averaged over the batch.

    Complex entries count as two real degrees of freedom, as in :func:`~selfinv.losses.base.sq_mean`.
    """
    if residual.is_complex():
        residual, mask = torch.view_as_real(residual), mask.unsqueeze(-1)
    m = mask.expand_as(residual)
    sq = torch.where(m, residual.pow(2), torch.zeros((), dtype=residual.dtype, device=residual.device))
    return (sq.flatten(1).sum(1) / m.flatten(1).sum(1)).mean()


def grid_mask(height: int, width: int, grid: int, phase: torch.Tensor) -> torch.Tensor:
    r"""The grid masks of Noise2Self: pixel (r, c) is hidden when :math:`(r \bmod w)\,w + (c \bmod w) = p`.

    Args:
        height, width: the image size.
        grid: the grid width :math:`w`; the :math:`w^2` phases partition the pixels.
        phase: (B,) integer phases in :math:`\{0, \dots, w^2 - 1\}`, one per sample.

    Returns:
        a (B, 1, H, W) boolean mask (all channels of a pixel are hidden together). Volumes:
        :func:`selfinv.losses.masks.grid_mask` (any number of axes, :math:`w^n` phases).

    Example:
        >>> import torch
        >>> m = grid_mask(4, 4, 2, torch.arange(4))
        >>> bool(m.sum(0).eq(1).all())     # the 4 phases cover every pixel exactly once
        True
    """
    return grid_mask_nd((height, width), grid, phase)


# ---------------------------------------------------------------------- test-time estimator
class JInvariantAverage(Estimator):
    r"""The J-invariant test-time estimator :math:`f^{\text{test}}(y) = \sum_{p} m_p \circ f(y_{a_p})`.

    The :math:`w^2` phases :math:`p` of a :math:`w\times w` grid (:func:`grid_mask`) partition the pixels; for
    each phase the hidden pixels are replaced by the loss's replacement rule (``masker.replace``) and only
    those pixels of :math:`f(y_{a_p})` are kept. Output pixel :math:`i` is therefore computed from an input in
    which :math:`y_i` does not appear: :math:`\partial f^{\text{test}}_i / \partial y_i = 0` exactly, for any
    network. Cost: :math:`w^2` network evaluations (one per phase, each on the whole batch).

    It wraps the model without modifying it (``eval()``/``train()`` on the wrapper propagate as usual).
    Called as ``estimator(y, physics=None, generator=None)``: ``generator`` drives the random replacement of
    Noise2Void (Noise2Self's rules are deterministic).

    Args:
        model: the trained network, called as ``model(y_a, physics)``.
        masker: the loss whose ``replace(y, mask, generator)`` rule is used (:class:`Noise2Self` or
            :class:`Noise2Void`).
        width: the grid width :math:`w` (:math:`\geq 2`).
    """

    def __init__(self, model: Model, masker: Noise2Self | Noise2Void, width: int):
        super().__init__()
        self.model = model
        self.masker = masker
        self.width = check_int(width, "width", "JInvariantAverage", low=2)

    def forward(self, y: torch.Tensor, physics=None, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(y, "JInvariantAverage", min_size=self.width)
        B, spatial = y.shape[0], tuple(y.shape[2:])
        out = None
        for p in range(self.width ** len(spatial)):  # one pass per phase (w² or w³ passes), each on the whole batch
            mask = grid_mask_nd(spatial, self.width, torch.full((B,), p, device=y.device))
            f = self.model(self.masker.replace(y, mask, generator), physics)
            _check_output(f, y, "JInvariantAverage")
            kept = torch.where(mask, f, torch.zeros((), dtype=f.dtype, device=f.device))
            out = kept if out is None else out + kept
        return out

    def extra_repr(self) -> str:
        return f"width={self.width}, passes={self.width**2} (images) or {self.width**3} (volumes)"


def _test_model(loss: Noise2Self | Noise2Void, model: Model, mode: str, width: int) -> Model:
    if mode not in _TEST_MODES:
        raise ValueError(f"{type(loss).__name__}: test mode must be one of {_TEST_MODES}, got {mode!r}")
    if mode == "single":
        return model
    return JInvariantAverage(model, loss, width)


# ---------------------------------------------------------------------- losses
class _Masking(Loss):
    """What Noise2Void and Noise2Self share: hide a random set of pixels (``sample_mask``), replace them in the
    network input (``replace``) and take the loss on the hidden pixels only."""

    def sample_mask(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def replace(self, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def split(self, y: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One random split: returns the network input :math:`y_a` and the boolean mask :math:`m_b`."""
        mask = self.sample_mask(y, generator)
        return self.replace(y, mask, generator), mask

    def _loss(self, ctx: LossContext) -> torch.Tensor:
        y = ctx.y
        y_a, mask = self.split(y, ctx.generator)
        out = ctx.model(y_a, ctx.physics)
        _check_output(out, y, type(self).__name__)
        return _masked_mean(y - out, mask)


class Noise2Void(_Masking):
    r"""Noise2Void (Krull, Buchholz & Jug, CVPR 2019): hide random pixels, predict them from their neighbours.

    At each step a random set :math:`b` of ``round(ratio·H·W)`` pixels is drawn independently for every image
    (uniformly without replacement, like N2V's fixed number of pixels per patch); each hidden pixel is replaced
    by the value of a pixel drawn uniformly from its :math:`(2r+1)^2` neighbourhood **excluding itself** and
    excluding the other hidden pixels. The loss is taken on the hidden pixels only:

    .. math::

        \mathcal{L}_{N2V}(y, f) = \frac{1}{|b|}\,\|m_b \circ (y - f(y_a))\|^2 .

    The original code's default manipulator ``'uniform_withCP'`` lets the centre pixel be drawn as its own
    replacement (with probability :math:`1/(2r+1)^2` in the interior). Then :math:`y_a` sometimes contains
    :math:`y_i` at position :math:`i`, so :math:`f_i(y_a)` can depend on :math:`y_i`: by Stein's lemma (Gaussian
    noise) the expected loss is *lowered* by :math:`2\sigma^2\,\mathbb{E}[\partial f_i/\partial y_i]/(2r+1)^2`,
    which rewards copying the centre pixel and pulls the minimiser toward the identity (for :math:`f = I`
    the loss is :math:`\sigma^2(1 - 2p_i)` above the masked supervised risk instead of :math:`\sigma^2`).
    Excluding the centre keeps the estimator J-invariant and the loss an unbiased estimate of the masked
    supervised risk plus the noise variance; ``replacement="uniform_withCP"`` reproduces the original
    behaviour.

    **Volumes** (B, C, D, H, W): the same with voxels, ``round(ratio·D·H·W)`` per volume and a
    :math:`(2r+1)^3` neighbourhood.

    **structN2V** (Broaddus, Krull, Weigert, Schmidt & Myers, "Removing structured noise with self-supervised
    blind-spot networks", ISBI 2020). When the noise is correlated along one axis (stripes, line noise of a
    scanner), a neighbour on that line predicts the noise of the hidden pixel and the network learns to copy
    it. ``struct_axis`` (``"horizontal"``: along W, ``"vertical"``: along H, ``"depth"``: along D) hides, with
    every masked pixel :math:`i`, the line :math:`L_i = \{i + k e : 0 < |k| \le s/2\}` of ``struct_span`` = s
    pixels: they get values drawn uniformly in the sample's [min, max] (as the structN2V and CAREamics code),
    and no replacement of any hidden pixel is drawn from a line. The input :math:`y_a` then holds no
    :math:`y_j` for :math:`j \in \{i\} \cup L_i`, so :math:`f_i(y_a)` is independent of them: the blind
    spot is the whole line. The loss is still taken on the masked pixels only.

    Args:
        ratio: fraction of pixels hidden per image (N2V: 1.5 %, i.e. ~64 pixels of a 64×64 patch).
        radius: neighbourhood radius :math:`r` (N2V's code defaults to 5; 2 keeps replacements local).
        replacement: ``"uniform"`` (a random neighbour, never the pixel itself) or ``"uniform_withCP"``.
        per_channel: hide each channel of a pixel independently (own mask and own neighbour per channel, as
            asked for in juglab/n2v#3); by default all channels of a pixel are hidden together, which is what
            J-invariance needs when the noise is correlated across channels.
        struct_axis: ``"none"`` (plain N2V), or the direction of the structN2V line: ``"horizontal"``,
            ``"vertical"`` or ``"depth"`` (volumes).
        struct_span: the line's length s (odd, >= 3; CAREamics' default 5), the masked pixel in the middle.

    ``test_model(model, mode="single" | "average", width=3)``: see the module docstring; the
    ``"average"`` analogue for Noise2Void is the :math:`w\times w` grid partition with Noise2Void's random
    neighbour replacement (exactly J-invariant, :math:`w^2` evaluations).

    Example:
        >>> import torch
        >>> from selfinv.losses.masking import Noise2Void
        >>> from selfinv.physics import Denoising
        >>> loss = Noise2Void(ratio=0.1)
        >>> y = torch.rand(2, 1, 8, 8)
        >>> y_a, mask = loss.split(y, torch.Generator().manual_seed(0))
        >>> mask.shape, int(mask[0].sum())          # round(0.1 · 64) pixels per image
        (torch.Size([2, 1, 8, 8]), 6)
        >>> bool(torch.equal(y_a[~mask.expand_as(y)], y[~mask.expand_as(y)]))   # the rest is untouched
        True
        >>> float(loss(y, Denoising(), lambda y, physics: y, generator=torch.Generator().manual_seed(0))) > 0
        True
        >>> v = torch.rand(1, 1, 4, 8, 8)                   # a volume: round(0.1 · 256) voxels
        >>> int(loss.sample_mask(v, torch.Generator().manual_seed(0)).sum())
        26
        >>> s = Noise2Void(ratio=0.02, struct_axis="horizontal", struct_span=3)
        >>> y_a, mask = s.split(y, torch.Generator().manual_seed(1))
        >>> r, c = [int(t) for t in mask[0, 0].nonzero()[0]]
        >>> bool(y_a[0, 0, r, c] != y[0, 0, r, c]), bool((y_a[0, 0, r, max(c - 1, 0):c + 2] != y[0, 0, r, max(c - 1, 0):c + 2]).all())
        (True, True)
    """

    info = LossInfo(
        train_evals=1, uses_x_hat=False,  # its network input is y_a, not y
        unknown_separable_noise=True,
        reference="Krull, Buchholz & Jug, Noise2Void, CVPR 2019",
    )

    def __init__(self, ratio: float = 0.015, radius: int = 2, replacement: str = "uniform", per_channel: bool = False,
                 struct_axis: str = "none", struct_span: int = 5):
        super().__init__()
        self.ratio = check_fraction(ratio, "ratio", "Noise2Void")
        self.radius = check_int(radius, "radius", "Noise2Void")
        self.replacement = check_either(replacement, ("uniform", "uniform_withCP"), "replacement", "Noise2Void")
        self.per_channel = bool(per_channel)
        self.struct_axis = check_one_of(struct_axis, tuple(_STRUCT_AXES), "struct_axis", "Noise2Void")
        self.struct_span = check_int(struct_span, "struct_span", "Noise2Void", low=3)
        if self.struct_span % 2 == 0:
            raise ValueError(f"Noise2Void: struct_span must be odd (the pixel and span // 2 on each side), got {struct_span}")
        if self.struct_axis != "none" and self.replacement != "uniform":
            raise ValueError("Noise2Void: struct_axis needs replacement='uniform' (the centre must not see itself)")

    def sample_mask(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A boolean mask (B, 1 or C, *spatial) with ``round(ratio·N)`` hidden pixels (voxels) per image (and
        channel), N the number of pixels of (H, W) or voxels of (D, H, W)."""
        _check_image(y, "Noise2Void")
        axis = _STRUCT_AXES[self.struct_axis]
        if axis is not None and -axis > y.ndim - 2:
            raise ValueError(f"Noise2Void: struct_axis {self.struct_axis!r} is for volumes (B, C, D, H, W), got shape "
                             f"{tuple(y.shape)}")
        B, C, spatial = y.shape[0], y.shape[1], tuple(y.shape[2:])
        n = math.prod(spatial)
        if n < 2:
            raise ValueError("Noise2Void: images need at least 2 pixels")
        k = min(max(1, round(self.ratio * n)), n - 1)
        G = C if self.per_channel else 1
        u = _random.rand((B, G, n), generator=generator, dtype=torch.float64, device=y.device)
        idx = u.topk(k, dim=-1).indices  # a uniform random k-subset per image (and channel)
        mask = torch.zeros(B, G, n, dtype=torch.bool, device=y.device).scatter_(-1, idx, True)
        return mask.reshape(B, G, *spatial)

    def replace(self, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """:math:`y_a`: the masked entries replaced by random neighbours (a new tensor; y is not modified).

        With ``struct_axis`` the line through each masked pixel is hidden too: its other pixels get random
        values (:func:`~selfinv.losses.masks.fill_uniform`) and no neighbour is drawn from any line."""
        axis = _STRUCT_AXES[self.struct_axis]
        if axis is None:
            return neighbour_replace(y, mask, self.radius, self.replacement == "uniform", generator)
        line = struct_line(mask, axis, self.struct_span)
        y_a = neighbour_replace(y, mask, self.radius, True, generator, hidden=line)
        return fill_uniform(y_a, line & ~mask, generator)

    def test_model(self, model: Model, mode: str = "single", width: int = 3) -> Model:
        """``"single"``: the model itself; ``"average"``: :class:`JInvariantAverage` with random neighbours
        (drawn from the generator it is called with)."""
        return _test_model(self, model, mode, width)

    def extra_repr(self) -> str:
        struct = f", struct_axis={self.struct_axis!r}, struct_span={self.struct_span}" if self.struct_axis != "none" else ""
        return (f"ratio={self.ratio:g}, radius={self.radius}, replacement={self.replacement!r}, "
                f"per_channel={self.per_channel}{struct}")


class Noise2Self(_Masking):
    r"""Noise2Self (Batson & Royer, ICML 2019): grid masking with a random phase per image.

    For a grid width :math:`w`, each image draws a phase :math:`p \in \{0,\dots,w^2-1\}` and hides the pixels
    with :math:`(\text{row} \bmod w,\ \text{col} \bmod w) = (\lfloor p/w \rfloor,\ p \bmod w)`
    (all channels together). Hidden pixels are replaced by 0 (``"zero"``, the code's default) or by the
    weighted mean of their 8 neighbours with kernel :math:`[[.5,1,.5],[1,0,1],[.5,1,.5]]/6`
    (``"interpolate"``, used in the notebooks; renormalised at the image border). Since two hidden pixels are
    at least :math:`w \geq 2` apart, an interpolated value never uses a hidden pixel. The loss is

    .. math::

        \mathcal{L}_{N2S}(y, f) = \frac{1}{|b|}\,\|m_b \circ (y - f(y_a))\|^2 .

    On volumes (B, C, D, H, W) the grid is 3-D (:math:`w^3` phases, a fraction :math:`1/w^3` hidden) and
    ``"interpolate"`` averages the 26 neighbours with weight :math:`2^{1-\|o\|_1}` (faces 1, edges 1/2,
    corners 1/4, :func:`~selfinv.losses.masks.interpolate`).

    Args:
        width: the grid width :math:`w \geq 2` (3 in the code, 4 in the notebooks); a fraction
            :math:`1/w^2` of the pixels is hidden per step.
        replacement: ``"zero"`` or ``"interpolate"``.

    ``test_model(model, mode="single" | "average")``: ``"average"`` is the exactly J-invariant
    :math:`\sum_p m_p \circ f(y_{a_p})` over all :math:`w^2` phases (:class:`JInvariantAverage`,
    :math:`w^2` evaluations); ``"single"`` (default) is :math:`f(y)`.

    Example:
        >>> import torch
        >>> from selfinv.losses.masking import Noise2Self
        >>> loss = Noise2Self(width=2)
        >>> y = torch.rand(3, 1, 6, 6)
        >>> y_a, mask = loss.split(y, torch.Generator().manual_seed(0))
        >>> [int(m.sum()) for m in mask]            # a quarter of the pixels per image
        [9, 9, 9]
        >>> bool((y_a[mask.expand_as(y)] == 0).all())
        True
        >>> net = lambda y, physics: 0.5 * y
        >>> f = loss.test_model(net, mode="average")
        >>> torch.allclose(f(y), torch.zeros_like(y))   # 0.5·y_a is 0 on the hidden pixels of every phase
        True
    """

    info = LossInfo(
        train_evals=1, test_evals=">1", uses_x_hat=False,  # its network input is y_a, not y
        unknown_separable_noise=True,
        reference="Batson & Royer, Noise2Self, ICML 2019",
    )

    def __init__(self, width: int = 3, replacement: str = "zero"):
        super().__init__()
        self.width = check_int(width, "width", "Noise2Self", low=2)
        self.replacement = check_either(replacement, ("zero", "interpolate"), "replacement", "Noise2Self")

    def sample_mask(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The (B, 1, *spatial) grid mask of a random phase per image (a 3-D grid for volumes)."""
        _check_image(y, "Noise2Self", min_size=self.width)
        spatial = tuple(y.shape[2:])
        phase = uniform_int((y.shape[0],), self.width ** len(spatial), generator, y.device)
        return grid_mask_nd(spatial, self.width, phase)

    def replace(self, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """:math:`y_a`: hidden pixels set to 0 or to the neighbour mean (a new tensor; y is not modified)."""
        fill = torch.zeros((), dtype=y.dtype, device=y.device) if self.replacement == "zero" else interpolate(y)
        return torch.where(mask, fill, y)

    def test_model(self, model: Model, mode: str = "average") -> Model:
        """``"average"`` (default): the J-invariant :class:`JInvariantAverage` (w² network calls), the
        estimator the network was trained to be; ``"single"``: the model itself (one call). The single
        pass can fail badly for residual networks trained on zeroed pixels (BENCHMARKS.md, Gaussian
        ladder: 4 dB with ``"zero"``, no denoising with ``"interpolate"``), hence the default."""
        return _test_model(self, model, mode, self.width)

    def extra_repr(self) -> str:
        return f"width={self.width}, replacement={self.replacement!r}"
