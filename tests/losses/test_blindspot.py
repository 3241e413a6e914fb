"""BlindSpotNet (exact blind spot by construction) and the BlindSpot loss (plain, Gaussian NLL, posterior mean)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfinv.losses.base import sq_mean
from selfinv.losses.blindspot import BlindSpot, PosteriorMean, gaussian_posterior_mean
from selfinv.models.blindspot import BlindSpotNet
from selfinv.noise import Gaussian, Poisson
from selfinv.physics import Denoising, Inpainting
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


def make_net(*args, dtype=torch.float64, **kwargs) -> BlindSpotNet:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return BlindSpotNet(*args, **kwargs).to(dtype)


def jacobian(f, y: torch.Tensor, c_out: int) -> torch.Tensor:
    """(pixels out, pixels in, channels out, channels in) of a per-sample f at one image y (1, C, H, W).

    One batched backward pass: copy b of the image back-propagates output entry b only (f treats the samples
    of a batch independently, see test_batch_independence), so its input gradient is row b of the Jacobian.
    """
    _, c_in, H, W = y.shape
    n = c_out * H * W
    batch = y.expand(n, c_in, H, W).clone().requires_grad_(True)
    out = f(batch)
    (out.reshape(n, n).diagonal()).sum().backward()
    J = batch.grad.reshape(c_out, H, W, c_in, H, W)
    return J.permute(1, 2, 4, 5, 0, 3).reshape(H * W, H * W, c_out, c_in)


@pytest.mark.parametrize(
    "size, depth, predict_variance",
    [((8, 9), 2, False), ((8, 8), 2, False), ((5, 7), 1, True), ((6, 6), 0, False), ((9, 4), 3, False)],
)
def test_jacobian_diagonal_is_exactly_zero_and_neighbours_are_seen(size, depth, predict_variance):
    H, W = size
    # float32: PyTorch's float64 CPU convolutions take a slow path; zeros that are structural are exact anyway
    net = make_net(2, 3, width=4, depth=depth, predict_variance=predict_variance, dtype=torch.float32)
    y = torch.rand(1, 2, H, W, generator=gen(0))
    outputs = [lambda t: net(t)]
    if predict_variance:
        outputs.append(lambda t: net.mean_and_variance(t)[1])
    idx = torch.arange(H * W)
    for f in outputs:
        J = jacobian(f, y, 3)
        assert torch.count_nonzero(J[idx, idx]) == 0  # ∂f_{c,i}/∂y_{c',i} = 0 exactly, for all c, c'
        seen = J.abs().amax((2, 3)) > 0
        rows, cols = idx // W, idx % W
        adjacent = torch.maximum((rows[:, None] - rows[None]).abs(), (cols[:, None] - cols[None]).abs()) == 1
        assert bool(seen[adjacent].all())  # every one of the (up to) 8 neighbours is seen
        assert float(seen.float().mean()) > 0.5


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (3, 2), (13, 17), (16, 16)])
def test_any_image_size(size):
    net = make_net(3, 1, width=4, depth=2)
    y = torch.rand(2, 3, *size, dtype=torch.float64, generator=gen(1))
    assert net(y, Denoising()).shape == (2, 1, *size)
    assert net(y).shape == (2, 1, *size)
    with pytest.raises(ValueError, match="expects y of shape"):
        net(torch.rand(2, 2, 8, 8, dtype=torch.float64))


def test_batch_independence():
    """No normalisation across the batch: sample b's output depends on sample b only."""
    net = make_net(1, width=4, depth=1)
    y = torch.rand(3, 1, 6, 6, dtype=torch.float64, generator=gen(2), requires_grad=True)
    assert torch.allclose(net(y)[1:2], net(y[1:2]))
    (g,) = torch.autograd.grad(net(y)[1].sum(), y)
    assert torch.count_nonzero(g[0]) == 0 and torch.count_nonzero(g[2]) == 0


def test_plain_loss_and_refusal():
    net = make_net(1, width=4, depth=1)
    physics = Denoising(noise=Gaussian(0.1))
    y = physics(torch.rand(4, 1, 8, 8, dtype=torch.float64, generator=gen(3)), generator=gen(4))
    y0 = y.clone()
    value = BlindSpot()(y, physics, net)
    assert value.ndim == 0 and torch.allclose(value, sq_mean(y - net(y)))
    value.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())
    assert torch.equal(y, y0)
    assert BlindSpot().test_model(net) is net

    class Ordinary(nn.Module):
        def forward(self, y, physics=None):
            return y

    for model in [Ordinary(), lambda y, physics: y]:
        with pytest.raises(ValueError, match="blind-spot network"):
            BlindSpot()(y, physics, model)
    with pytest.raises(ValueError, match="only defined for denoising"):
        BlindSpot()(y, Inpainting(torch.ones(8, 8)), net)
    info = BlindSpot.info
    assert (info.train_evals, info.test_evals, info.single_y, info.mmse_optimal) == (1, 1, True, False)
    assert (info.unknown_separable_noise, info.unknown_coloured_noise, info.noise_models, info.general_operator) == (
        True,
        False,
        None,
        False,
    )


def test_gaussian_nll_with_predicted_variance():
    net = make_net(1, width=4, depth=1, predict_variance=True)
    sigma = torch.tensor([0.1, 0.3], dtype=torch.float64)
    physics = Denoising(noise=Gaussian(sigma))
    y = physics(torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=gen(5)), generator=gen(6))
    value = BlindSpot()(y, physics, net)
    mu, var_p = net.mean_and_variance(y)
    assert bool((var_p > 0).all()) and torch.equal(net(y), mu)
    var = var_p + sigma.view(2, 1, 1, 1) ** 2
    nll = -torch.distributions.Normal(mu, var.sqrt()).log_prob(y)
    assert torch.allclose(value, nll.mean())
    value.backward()
    assert all(p.grad is not None for p in net.parameters())
    for bad in [Denoising(noise=Poisson(0.1)), Denoising()]:
        with pytest.raises(ValueError, match="Gaussian"):
            BlindSpot()(y.abs(), bad, net)
    with pytest.raises(ValueError, match="predict_variance"):
        make_net(1, width=4, depth=1).mean_and_variance(y)


def test_posterior_mean_formula():
    g = gen(7)
    mu, var_p, var_n, y = 0.3, 0.04, 0.01, 0.5
    # closed form: precision-weighted average
    expected = (mu / var_p + y / var_n) / (1 / var_p + 1 / var_n)
    got = gaussian_posterior_mean(*(torch.tensor(v, dtype=torch.float64) for v in (y, mu, var_p)), var_n)
    assert abs(float(got) - expected) < 1e-12
    # Monte Carlo: E[x | y] by weighting prior draws with the likelihood (self-normalised importance sampling)
    x = mu + math.sqrt(var_p) * torch.randn(400_000, dtype=torch.float64, generator=g)
    w = torch.exp(-((y - x) ** 2) / (2 * var_n))
    mc = float((w * x).sum() / w.sum())
    ess = float(w.sum() ** 2 / (w**2).sum())
    se = math.sqrt(var_p * var_n / (var_p + var_n) / ess)  # posterior sd over sqrt(effective sample size)
    assert abs(mc - expected) < 4 * se, (mc, expected, se)

    class Known(nn.Module):
        """A stand-in blind-spot model with known prior mean and variance."""

        blind_spot, predict_variance = True, True

        def mean_and_variance(self, y, physics=None):
            return torch.full_like(y, mu), torch.full_like(y, var_p)

    sigma = torch.tensor([0.1, 0.2], dtype=torch.float64)
    physics = Denoising(noise=Gaussian(sigma))
    yy = torch.full((2, 1, 3, 3), y, dtype=torch.float64)
    est = BlindSpot().test_model(Known())
    assert isinstance(est, PosteriorMean)
    out = est(yy, physics)
    for b in range(2):
        v = float(sigma[b]) ** 2
        assert torch.allclose(
            out[b], torch.full((1, 3, 3), (mu / var_p + y / v) / (1 / var_p + 1 / v), dtype=torch.float64)
        )
    with pytest.raises(ValueError, match="Gaussian"):
        est(yy, Denoising(noise=Poisson(0.1)))
