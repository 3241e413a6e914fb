"""Noise2Void and Noise2Self: J-invariance, masks, replacements, test-time estimators (Monte Carlo within 4 SE)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from selfinv.losses.masking import JInvariantAverage, Noise2Self, Noise2Void, _interpolate, grid_mask
from selfinv.noise import Gaussian
from selfinv.physics import Denoising, Inpainting
from tests.helpers import gen

SIGMA = 0.3


pytestmark = pytest.mark.usefixtures("one_thread")


class SmallCNN(nn.Module):
    """An arbitrary (not J-invariant) network: two 3×3 convolutions plus a residual 0.5·y."""

    def __init__(self, channels: int = 1, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.body = nn.Sequential(
                nn.Conv2d(channels, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, channels, 3, padding=1)
            )
        self.to(dtype)

    def forward(self, y, physics=None):
        return 0.5 * y + self.body(y)


class Counting:
    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, y, physics=None):
        self.calls += 1
        return self.model(y, physics)


def smooth_image(c: int = 1, h: int = 8, w: int = 8) -> torch.Tensor:
    r = torch.linspace(0, 1, h, dtype=torch.float64)[:, None]
    s = torch.linspace(0, 1, w, dtype=torch.float64)[None, :]
    return torch.stack([torch.sin(3 * r + 2 * s + k) for k in range(c)])[None]


def unique_image(b: int, c: int, h: int, w: int) -> torch.Tensor:
    """Value = 10000·c + w·row + col (+ 1e6·sample): every entry names its own position."""
    t = torch.arange(h * w, dtype=torch.float64).reshape(h, w)
    return (
        t
        + 10000.0 * torch.arange(c, dtype=torch.float64)[:, None, None]
        + 1e6 * torch.arange(b, dtype=torch.float64)[:, None, None, None]
    )


LOSSES = {
    "n2v": lambda: Noise2Void(ratio=0.1),
    "n2v_cp": lambda: Noise2Void(ratio=0.1, replacement="uniform_withCP"),
    "n2v_per_channel": lambda: Noise2Void(ratio=0.1, per_channel=True),
    "n2s_zero": lambda: Noise2Self(width=3),
    "n2s_interp": lambda: Noise2Self(width=4, replacement="interpolate"),
}


# ---------------------------------------------------------------------- the J-invariance identity (anchors §6.10)
def test_linear_zero_diagonal_identity_and_generic_gap():
    n, draws = 16, 200_000
    g = gen(0)
    x = torch.rand(n, dtype=torch.float64, generator=g)
    W = torch.randn(n, n, dtype=torch.float64, generator=g) / math.sqrt(n)
    y = x + SIGMA * torch.randn(draws, n, dtype=torch.float64, generator=g)
    for weights, gap in [(W - torch.diag(W.diag()), 0.0), (W, -2 * SIGMA**2 * float(W.trace()) / n)]:
        f = y @ weights.T
        d = (f - y).pow(2).mean(1) - (f - x).pow(2).mean(1)  # per draw: ||f-y||²/n - ||f-x||²/n
        se = float(d.std()) / math.sqrt(draws)
        assert abs(float(d.mean()) - (SIGMA**2 + gap)) < 4 * se, (float(d.mean()), SIGMA**2 + gap, se)
    assert abs(2 * SIGMA**2 * float(W.trace()) / n) > 20 * se  # the generic gap is resolvable at this sample size


@pytest.mark.parametrize(
    "masker", [Noise2Self(width=3), Noise2Self(width=2, replacement="interpolate"), Noise2Void(radius=1)]
)
def test_average_estimator_of_a_cnn_satisfies_the_identity(masker):
    # float32: PyTorch's float64 CPU convolutions take a slow path (the statistics are computed in float64)
    x = smooth_image(1, 8, 8).float()
    draws = 3000
    y = x + SIGMA * torch.randn(draws, 1, 8, 8, generator=gen(100))
    net = SmallCNN(dtype=torch.float32)
    with torch.no_grad():
        for f, j_invariant in [(masker.test_model(net, mode="average"), True), (net, False)]:
            out = f(y, Denoising()).double()
            d = (out - y.double()).pow(2).flatten(1).mean(1) - (out - x.double()).pow(2).flatten(1).mean(1)
            se = float(d.std()) / math.sqrt(draws)
            err = abs(float(d.mean()) - SIGMA**2)
            assert (err < 4 * se) if j_invariant else (err > 10 * se), (type(f).__name__, float(d.mean()), se)


def jacobian(f, y: torch.Tensor) -> torch.Tensor:
    """(pixels out, pixels in, channels out, channels in) of a per-sample f at one image y (1, C, H, W).

    One batched backward pass: copy b of the image back-propagates output entry b only, so (f treating the
    samples of a batch independently) its input gradient is row b of the Jacobian.
    """
    _, C, H, W = y.shape
    n = C * H * W
    batch = y.expand(n, C, H, W).clone().requires_grad_(True)
    f(batch).reshape(n, n).diagonal().sum().backward()
    return batch.grad.reshape(C, H, W, C, H, W).permute(1, 2, 4, 5, 0, 3).reshape(H * W, H * W, C, C)


@pytest.mark.parametrize(
    "masker", [Noise2Self(width=2), Noise2Self(width=3, replacement="interpolate"), Noise2Void(radius=2)]
)
def test_average_estimator_has_exactly_zero_jacobian_diagonal(masker):
    net = SmallCNN(channels=2, dtype=torch.float32)
    f = masker.test_model(net, mode="average")
    y = torch.rand(1, 2, 5, 6, generator=gen(2))
    J = jacobian(lambda t: f(t, Denoising()), y)
    idx = torch.arange(30)
    assert torch.count_nonzero(J[idx, idx]) == 0  # ∂f_{c,i}/∂y_{c',i} = 0 exactly, all c, c'
    off = J.abs().amax((2, 3))
    off[idx, idx] = 1
    assert float((off > 0).float().mean()) > 0.3  # it does see other pixels
    plain = jacobian(net, y)
    assert torch.count_nonzero(plain[idx, idx]) > 0  # while the network itself is not J-invariant


@pytest.mark.parametrize("name", ["n2v", "n2s_zero", "n2s_interp"])
def test_loss_estimates_masked_supervised_risk_plus_sigma2(name):
    """E[L] = E[(1/|b|)||m_b∘(x - f(y_a))||²] + σ² for any network (the split makes f_b(y_a) J-invariant)."""
    loss = LOSSES[name]()
    x = smooth_image(1, 16, 16).expand(512, 1, 16, 16).float()
    y = x + SIGMA * torch.randn(x.shape, generator=gen(3))
    net = SmallCNN(dtype=torch.float32)
    with torch.no_grad():
        y_a, mask = loss.split(y, gen(4))
        out = net(y_a, None)
        value = loss(y, Denoising(), net, generator=gen(4))
    m = mask.expand_as(y)
    per_sample = ((y - out).pow(2) * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    assert torch.allclose(value, per_sample.mean())  # the loss is the masked mean of this split
    y, x, out = y.double(), x.double(), out.double()
    d = (y - out)[m].pow(2) - (x - out)[m].pow(2)
    se = float(d.std()) / math.sqrt(d.numel())
    assert abs(float(d.mean()) - SIGMA**2) < 4 * se, (float(d.mean()), se)


def test_with_cp_is_biased_by_the_centre_pixel():
    """With the centre allowed, pixel i keeps y_i with probability p_i: E[L] - E[S] = σ²(1 - 2 E[p_i]).

    Sources are uniform over the centre and the unmasked neighbours inside the image, so
    p_i = 1 / (1 + #unmasked neighbours of i), counted here with a box filter on the mask.
    """
    H = W = 16
    x = torch.zeros(4096, 1, H, W, dtype=torch.float64)
    y = x + SIGMA * torch.randn(x.shape, dtype=torch.float64, generator=gen(3))
    ident = lambda t, physics=None: t  # noqa: E731  (the identity exposes the centre pixel)
    for replacement in ["uniform", "uniform_withCP"]:
        loss = Noise2Void(ratio=0.04, radius=2, replacement=replacement)
        y_a, mask = loss.split(y, gen(4))
        m = mask.expand_as(y)
        d = (y - y_a)[m].pow(2) - (x - y_a)[m].pow(2)
        se = float(d.std()) / math.sqrt(d.numel())
        box = torch.ones(1, 1, 5, 5, dtype=torch.float64)
        unmasked = torch.nn.functional.conv2d((~mask).double(), box, padding=2)  # unmasked pixels in the window
        p_self = float((1.0 / (1.0 + unmasked[m])).mean()) if replacement == "uniform_withCP" else 0.0
        assert abs(float(d.mean()) - SIGMA**2 * (1 - 2 * p_self)) < 4 * se, (replacement, float(d.mean()), se)
        assert torch.allclose(loss(y, Denoising(), ident, generator=gen(4)), (y - y_a)[m].pow(2).mean())
    assert 2 * SIGMA**2 * p_self > 8 * se  # the bias is resolved


# ---------------------------------------------------------------------- masks and replacements
def test_loss_only_sees_masked_pixels():
    y = torch.rand(3, 2, 10, 11, dtype=torch.float64, generator=gen(5))
    for loss in [Noise2Void(ratio=0.05), Noise2Void(ratio=0.05, per_channel=True), Noise2Self(width=3)]:
        out = torch.zeros_like(y, requires_grad=True)
        loss(y, Denoising(), lambda t, physics, out=out: out + 0 * t, generator=gen(6)).backward()
        _, mask = loss.split(y, gen(6))
        assert torch.equal(out.grad != 0, mask.expand_as(y) & (y != 0))
        # and the value is the mean over the masked entries of each sample
        m = mask.expand_as(y)
        expected = ((y**2 * m).flatten(1).sum(1) / m.flatten(1).sum(1)).mean()
        assert torch.allclose(loss(y, Denoising(), lambda t, physics: 0 * t, generator=gen(6)), expected)


def test_n2v_masked_fraction_and_uniform_positions():
    loss = Noise2Void(ratio=0.015)
    y = torch.zeros(4000, 1, 16, 20)
    mask = loss.sample_mask(y, gen(7))
    n, k = 16 * 20, round(0.015 * 16 * 20)
    assert mask.shape == (4000, 1, 16, 20) and bool((mask.flatten(1).sum(1) == k).all())
    assert abs(k / n - 0.015) <= 0.5 / n  # exactly round(ratio·n) pixels: the fraction matches ratio
    freq = mask.double().mean(0).flatten()  # each pixel is hidden with probability k/n
    p = k / n
    se = math.sqrt(p * (1 - p) / 4000)
    assert abs(float(freq.mean()) - p) < 1e-12
    assert float(((freq - p) / se).abs().max()) < 4.5  # 320 pixels, none more than 4.5 SE away
    border = torch.ones(16, 20, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    assert abs(float(freq[border.flatten()].mean() - freq[~border.flatten()].mean())) < 4 * se / math.sqrt(50)
    # per-channel masks differ across channels; joint masks are shared (shape (B, 1, H, W))
    pc = Noise2Void(ratio=0.1, per_channel=True).sample_mask(torch.zeros(2, 3, 8, 8), gen(8))
    assert pc.shape == (2, 3, 8, 8) and not torch.equal(pc[:, 0], pc[:, 1])
    assert bool((pc.flatten(2).sum(2) == round(6.4)).all())


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("ratio", [0.05, 0.3])
def test_n2v_replacement_from_unmasked_neighbours_never_itself(per_channel, ratio):
    radius = 2
    loss = Noise2Void(ratio=ratio, radius=radius, per_channel=per_channel)
    B, C, H, W = 64, 3, 9, 12
    y = unique_image(B, C, H, W)
    y_a, mask = loss.split(y, gen(9))
    m = mask.expand_as(y)
    assert torch.equal(y_a[~m], y[~m])  # the rest is untouched
    src = (
        y_a
        - 10000.0 * torch.arange(C, dtype=torch.float64)[:, None, None]
        - 1e6 * torch.arange(B, dtype=torch.float64)[:, None, None, None]
    )
    rows = torch.arange(H)[:, None].expand(H, W)
    cols = torch.arange(W)[None, :].expand(H, W)
    b, c, r, q = m.nonzero(as_tuple=True)
    s = src[b, c, r, q].long()
    sr, sc = s // W, s % W
    dist = torch.maximum((sr - rows[r, q]).abs(), (sc - cols[r, q]).abs())
    assert bool((dist >= 1).all()) and bool((dist <= radius).all())  # a neighbour, never the pixel itself
    g = torch.zeros_like(b) if not per_channel else c
    assert not bool(mask[b, g, sr, sc].any())  # never another hidden pixel
    if not per_channel:  # all channels of a pixel take the same neighbour
        s_all = src.permute(0, 2, 3, 1)[mask[:, 0]]
        assert torch.equal(s_all, s_all[:, :1].expand_as(s_all))


def test_n2v_offsets_are_uniform_and_with_cp_includes_the_centre():
    y = unique_image(1, 1, 15, 15).expand(3000, 1, 15, 15).contiguous()
    for replacement, n_off in [("uniform", 24), ("uniform_withCP", 25)]:
        loss = Noise2Void(ratio=0.01, radius=2, replacement=replacement)
        y_a, mask = loss.split(y, gen(10))
        b, _, r, c = mask.nonzero(as_tuple=True)
        interior = (r >= 2) & (r <= 12) & (c >= 2) & (c <= 12)
        s = y_a[b, 0, r, c].long()[interior]
        off = (s // 15 - r[interior] + 2) * 5 + (s % 15 - c[interior] + 2)
        counts = torch.bincount(off, minlength=25).double()
        p = 1 / n_off
        se = math.sqrt(p * (1 - p) * counts.sum())
        expected = torch.full((25,), p * float(counts.sum()), dtype=torch.float64)
        if replacement == "uniform":
            assert counts[12] == 0  # offset (0, 0) never drawn
            expected[12] = 0
        assert float((counts - expected).abs().max()) < 4.5 * se, (replacement, counts)


def test_grid_phases_cover_every_pixel_once_and_n2s_draws_phases_per_sample():
    for w, (H, W) in [(2, (4, 5)), (3, (7, 9)), (4, (8, 8))]:
        masks = grid_mask(H, W, w, torch.arange(w * w))
        assert torch.equal(masks.sum(0), torch.ones(1, H, W, dtype=torch.long))
    loss = Noise2Self(width=3)
    mask = loss.sample_mask(torch.zeros(200, 2, 7, 9), gen(11))
    assert mask.shape == (200, 1, 7, 9)
    phases = [(r % 3) * 3 + (c % 3) for r, c in (m[0].nonzero()[0].tolist() for m in mask)]
    assert set(phases) == set(range(9))  # per-sample phases, all of them drawn
    assert torch.equal(mask, grid_mask(7, 9, 3, torch.tensor(phases)))
    with pytest.raises(ValueError, match="at least 3×3"):
        loss.sample_mask(torch.zeros(1, 1, 2, 9))


def test_n2s_replacements():
    y = torch.rand(2, 3, 6, 7, dtype=torch.float64, generator=gen(12))
    mask = grid_mask(6, 7, 2, torch.tensor([0, 3]))
    assert torch.equal(Noise2Self(2).replace(y, mask), torch.where(mask, 0.0, y))
    interp = Noise2Self(2, "interpolate").replace(y, mask)
    k = torch.tensor([[0.5, 1, 0.5], [1, 0, 1], [0.5, 1, 0.5]], dtype=torch.float64) / 6
    b, r, c = 1, 3, 3  # an interior masked pixel of sample 1 (phase 3 = (1, 1))
    assert bool(mask[b, 0, r, c])
    assert torch.allclose(interp[b, :, r, c], (y[b, :, r - 1 : r + 2, c - 1 : c + 2] * k).sum((-1, -2)))
    assert torch.equal(interp[~mask.expand_as(y)], y[~mask.expand_as(y)])
    # at the border the weights are renormalised over the existing neighbours: constants stay constant
    assert torch.allclose(_interpolate(torch.ones(1, 1, 5, 5)), torch.ones(1, 1, 5, 5))


# ---------------------------------------------------------------------- test-time estimators
def test_test_models():
    net = SmallCNN()
    assert isinstance(Noise2Self(width=3).test_model(net), JInvariantAverage)  # the default for Noise2Self
    assert Noise2Void().test_model(net) is net
    for loss in [Noise2Self(width=3), Noise2Void()]:
        assert loss.test_model(net, mode="single") is net
        with pytest.raises(ValueError, match="test mode"):
            loss.test_model(net, mode="median")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    counting = Counting(net)
    f = Noise2Self(width=3).test_model(counting, mode="average")
    assert isinstance(f, JInvariantAverage)
    y = torch.rand(2, 1, 7, 8, dtype=torch.float64, generator=gen(13))
    f(y, Denoising())
    assert counting.calls == 9  # w² passes
    assert net.training and all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    # the average of the identity is the replacement itself: the neighbour mean for "interpolate"
    ident = lambda t, physics=None: t  # noqa: E731
    assert torch.allclose(Noise2Self(3, "interpolate").test_model(ident, "average")(y), _interpolate(y))
    # Noise2Void's analogue: every output pixel is the value of some other pixel within the radius
    u = unique_image(2, 1, 7, 8)
    out = Noise2Void(radius=1).test_model(ident, "average", width=2)(u, generator=gen(14)).long() % 1_000_000
    r, c = torch.arange(7)[:, None], torch.arange(8)[None, :]
    dist = torch.maximum((out // 8 - r).abs(), (out % 8 - c).abs())
    assert bool((dist == 1).all())


# ---------------------------------------------------------------------- the loss contract
@pytest.mark.parametrize("name", list(LOSSES))
def test_scalar_differentiable_reproducible_and_y_untouched(name):
    loss = LOSSES[name]()
    net = SmallCNN(channels=3)
    physics = Denoising(noise=Gaussian(0.1))
    y = physics(smooth_image(3, 12, 13).expand(4, 3, 12, 13), generator=gen(15))
    y0 = y.clone()
    value = loss(y, physics, net, generator=gen(16))
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())
    assert torch.equal(y, y0)
    with torch.no_grad():
        assert float(loss(y, physics, net, generator=gen(16))) == float(value)
        assert float(loss(y, physics, net, generator=gen(17))) != float(value)
    counting = Counting(net)
    loss(y, physics, counting, generator=gen(16))
    assert counting.calls == loss.info.train_evals == 1


def test_refusals():
    net = SmallCNN()
    with pytest.raises(ValueError, match="only defined for denoising"):
        Noise2Self()(torch.rand(1, 1, 8, 8), Inpainting(torch.ones(8, 8)), net)
    with pytest.raises(ValueError, match="shape"):
        Noise2Void()(torch.rand(8, 8), Denoising(), net)
    with pytest.raises(ValueError, match="ratio"):
        Noise2Void(ratio=1.5)
    with pytest.raises(ValueError, match="replacement"):
        Noise2Void(replacement="median")
    with pytest.raises(ValueError, match="width"):
        Noise2Self(width=1)
    with pytest.raises(ValueError, match="replacement"):
        Noise2Self(replacement="mean")
    for loss in (Noise2Self(), Noise2Void()):
        info = loss.info
        expected_test = ">1" if isinstance(loss, Noise2Self) else 1  # Noise2Self averages w² passes by default
        assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (1, expected_test, True, False)
        assert (
            info.unknown_separable_noise,
            info.unknown_coloured_noise,
            info.noise_models,
            info.general_operator,
        ) == (True, False, None, False)


class _CountOps(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "loss", [Noise2Void(ratio=0.02), Noise2Void(ratio=0.02, per_channel=True), Noise2Self(3, "interpolate")]
)
def test_splits_are_vectorised(loss):
    """The number of torch operations of a split does not grow with the batch, channels or pixels."""
    counts = []
    for shape in [(2, 1, 16, 16), (128, 3, 64, 64)]:
        with _CountOps() as ops:
            loss.split(torch.rand(shape), gen(18))
        counts.append(ops.n)
    # bounded: one pass plus a few vectorised rejection rounds (log of the count), far below the 31k hidden entries
    assert counts[1] < 300 and counts[1] <= 3 * counts[0], counts
