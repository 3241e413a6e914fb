"""Backbones (UNet, DnCNN, DRUNet) and the physics-aware wrappers (BackProjection, Unrolled)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfinv.models.dncnn import DnCNN
from selfinv.models.drunet import DRUNet
from selfinv.models.registry import BACKBONES, build_backbone, spatial_dims
from selfinv.models.unet import BiasFreeBatchNorm2d, UNet, crop, pad_to_multiple
from selfinv.models.wrappers import BackProjection, Unrolled, conjugate_gradient, estimate_lipschitz
from selfinv.noise import Gaussian, Poisson
from selfinv.physics import (
    MRI,
    Blur,
    CompressedSensing,
    Demosaicing,
    Denoising,
    Inpainting,
    Tomography,
    gaussian_kernel,
)
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


def small(name: str, cin: int, cout: int | None = None, **kw) -> nn.Module:
    """A tiny configuration of each backbone."""
    cout = cin if cout is None else cout
    torch.manual_seed(0)
    if name == "unet":
        return UNet(cin, cout, **{"depth": 2, "width": 4, **kw})
    if name == "dncnn":
        return DnCNN(cin, cout, **{"depth": 4, "width": 4, **kw})
    return DRUNet(cin, cout, **{"widths": (4, 8, 8), "n_blocks": 1, **kw})


class Identity(nn.Module):
    """A denoiser that returns its input (no physics argument: the wrappers must cope)."""

    def forward(self, x):
        return x


# ---------------------------------------------------------------------- backbones
@pytest.mark.parametrize("name", ["unet", "dncnn", "drunet"])
@pytest.mark.parametrize("size", [(17, 23), (1, 5), (1, 1), (16, 8)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backbone_keeps_shape_any_size(name, size, channels, dtype):
    net = small(name, channels).to(dtype)
    x = torch.rand(2, channels, *size, generator=gen(), dtype=dtype)
    out = net(x)
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    assert net(x, Denoising()).shape == x.shape  # also callable as model(y, physics)


@pytest.mark.parametrize(
    "kw",
    [
        {"down": "conv"},
        {"up": "bilinear"},
        {"padding": "zeros"},
        {"batch_norm": True},
        {"depth": 0},
        {"residual": False},
    ],
)
def test_unet_variants_keep_shape(kw):
    net = UNet(2, 2, **{"depth": 2, "width": 4, **kw})
    x = torch.rand(3, 2, 11, 6, generator=gen())
    assert net(x).shape == x.shape


def test_backbone_output_channels_and_registry():
    for name in BACKBONES:
        if name == "ram":  # keeps the channel count (a residual on its input): tests/models/test_ram.py
            continue
        net = build_backbone(name, 3, 1, {"widths": (4, 8)} if name == "drunet" else {"width": 4})
        size = (9, 7) if spatial_dims(name) == 2 else (5, 9, 7)  # volumes for 3-D backbones
        assert net(torch.rand(1, 3, *size)).shape == (1, 1, *size)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet", 1, 1)


def test_padding_helpers():
    x = torch.rand(1, 2, 5, 9)
    for mode in ("reflect", "replicate", "zeros"):
        xp, pad = pad_to_multiple(x, 8, mode)
        assert xp.shape[-2:] == (8, 16) and torch.equal(crop(xp, pad), x)
    tiny = torch.rand(1, 1, 1, 2)  # reflection impossible: falls back to replicate
    xp, pad = pad_to_multiple(tiny, 8)
    assert xp.shape[-2:] == (8, 8) and torch.equal(crop(xp, pad), tiny)
    with pytest.raises(ValueError, match="mode"):
        pad_to_multiple(x, 4, "circular")


@pytest.mark.parametrize("name", ["unet", "dncnn", "drunet"])
def test_backbone_checks_input(name):
    net = small(name, 1)
    with pytest.raises(ValueError, match="input channels"):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        net(torch.rand(8, 8))


@pytest.mark.parametrize("name", ["unet", "dncnn", "drunet"])
def test_backbone_takes_complex_images_as_two_channels(name):
    net = small(name, 2)
    x = torch.randn(2, 1, 9, 10, dtype=torch.complex64, generator=gen())
    out = net(x)
    assert out.dtype == torch.complex64 and out.shape == x.shape
    with pytest.raises(ValueError, match="complex"):
        small(name, 1)(x)


def _bias_free_configs():
    yield "unet", UNet(2, 2, depth=2, width=4, bias=False)
    yield (
        "unet-bn-conv-bilinear-zeros",
        UNet(2, 2, depth=2, width=4, bias=False, batch_norm=True, down="conv", up="bilinear", padding="zeros"),
    )
    yield "unet-no-residual", UNet(2, 1, depth=1, width=4, bias=False)
    yield "dncnn", DnCNN(2, 2, depth=5, width=8, bias=False)
    yield "dncnn-no-bn", DnCNN(2, 2, depth=5, width=8, bias=False, batch_norm=False)
    yield "drunet-no-map", DRUNet(2, 2, widths=(4, 8, 8), n_blocks=1, noise_level_map=False)


@pytest.mark.parametrize("a", [0.3, 7.0])
def test_bias_free_backbones_are_positively_homogeneous(a):
    torch.manual_seed(0)
    x = torch.randn(2, 2, 13, 10, generator=gen(), dtype=torch.float64)
    for name, net in _bias_free_configs():
        net = net.double().eval()  # batch norm: running statistics, a linear map
        assert not any(n.endswith("bias") for n, _ in net.named_parameters()), name
        assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules()), name
        torch.testing.assert_close(net(a * x), a * net(x), rtol=1e-9, atol=1e-12, msg=name)
    # with a noise-level map: f(a y, a sigma) = a f(y, sigma), per-sample sigma
    net = DRUNet(2, 2, widths=(4, 8, 8), n_blocks=1).double()
    sigma = torch.tensor([0.1, 0.4], dtype=torch.float64)
    torch.testing.assert_close(net(a * x, sigma=a * sigma), a * net(x, sigma=sigma), rtol=1e-9, atol=1e-12)
    # and the test has teeth: networks with biases are not homogeneous
    biased = UNet(2, 2, depth=2, width=4).double()
    assert not torch.allclose(biased(a * x), a * biased(x), atol=1e-6)


def test_bias_free_batch_norm_updates_running_sd_in_training():
    bn = BiasFreeBatchNorm2d(3)
    x = 5 * torch.randn(16, 3, 8, 8, generator=gen())
    out = bn(x)
    assert torch.allclose(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
    assert torch.allclose(bn.running_sd, torch.full((3,), 0.9 + 0.5), atol=0.05)
    bn.eval()
    torch.testing.assert_close(bn(2 * x), 2 * bn(x))


@pytest.mark.parametrize(
    "name, kw",
    [
        ("unet", {}),
        ("unet", {"batch_norm": True, "down": "conv", "up": "bilinear"}),
        ("unet", {"bias": False, "batch_norm": True}),
        ("dncnn", {}),
        ("dncnn", {"bias": False}),
        ("drunet", {}),
    ],
)
def test_gradients_reach_every_parameter(name, kw):
    net = small(name, 1, **kw).train()
    x = torch.rand(4, 1, 12, 11, generator=gen())
    kwargs = {"sigma": torch.tensor([0.0, 0.1, 0.2, 0.3])} if name == "drunet" else {}
    net(x, **kwargs).square().mean().backward()
    for n, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n


def test_drunet_noise_level_map_is_per_sample():
    net = DRUNet(1, 1, widths=(4, 8), n_blocks=1).double()
    x = torch.rand(1, 1, 10, 9, generator=gen(), dtype=torch.float64).expand(3, 1, 10, 9)
    sigma = torch.tensor([0.0, 0.2, 0.5], dtype=torch.float64)
    out = net(x, sigma=sigma)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])
    for i in range(3):  # a batch with mixed noise levels equals single calls
        torch.testing.assert_close(out[i : i + 1], net(x[:1], sigma=float(sigma[i])))
    # from the physics: per-sample Gaussian sigma, 0 without Gaussian noise
    torch.testing.assert_close(net(x, Denoising(Gaussian(sigma))), out)
    torch.testing.assert_close(net(x, Denoising()), net(x, sigma=0.0))
    torch.testing.assert_close(net(x, Denoising(Poisson(0.1))), net(x, sigma=0.0))
    torch.testing.assert_close(net(x), net(x, sigma=0.0))
    with pytest.raises(ValueError, match="sigma"):
        net(x, sigma=torch.ones(2))
    no_map = DRUNet(1, 1, widths=(4, 8), n_blocks=1, noise_level_map=False)
    assert torch.equal(no_map(x.float(), sigma=0.1), no_map(x.float(), sigma=0.9))


# ---------------------------------------------------------------------- back-projection
def _physics_cases():
    """(name, physics, clean image x): every operator of selfinv.physics."""
    g = gen(1)
    mask = (torch.rand(2, 1, 9, 11, generator=g) > 0.4).float()
    kmask = torch.zeros(2, 1, 8, 10)
    kmask[0, :, :, ::2] = 1
    kmask[1, :, :, ::3] = 1
    kmask[:, :, :, 4:6] = 1
    return [
        ("denoising", Denoising(Gaussian(torch.tensor([0.1, 0.2]))), torch.rand(2, 1, 9, 11, generator=g)),
        ("inpainting", Inpainting(mask, noise=Gaussian(0.05)), torch.rand(2, 1, 9, 11, generator=g)),
        ("mri", MRI(kmask, noise=Gaussian(0.01)), torch.randn(2, 1, 8, 10, dtype=torch.complex64, generator=g)),
        ("tomography", Tomography(angles=5, img_size=8, noise=Gaussian(0.1)), torch.rand(2, 1, 8, 8, generator=g)),
        ("blur", Blur(gaussian_kernel(1.0, 5), noise=Gaussian(0.01)), torch.rand(2, 3, 9, 11, generator=g)),
        (
            "cs-gaussian",
            CompressedSensing(30, (1, 6, 7), kind="gaussian", generator=g),
            torch.rand(2, 1, 6, 7, generator=g),
        ),
        (
            "cs-structured",
            CompressedSensing(30, (2, 6, 7), kind="structured", generator=g),
            torch.rand(2, 2, 6, 7, generator=g),
        ),
        ("demosaicing", Demosaicing("RGGB", noise=Gaussian(0.02)), torch.rand(2, 3, 8, 9, generator=g)),
    ]


@pytest.mark.parametrize("init", ["adjoint", "pinv"])
@pytest.mark.parametrize("backbone", ["unet", "drunet"])
def test_backprojection_on_every_physics(init, backbone):
    for name, physics, x in _physics_cases():
        y = physics(x, generator=gen(2))
        c = 2 * x.shape[1] if x.is_complex() else x.shape[1]
        model = BackProjection(small(backbone, c), init=init)
        out = model(y, physics)
        assert out.shape == x.shape and out.dtype == x.dtype, name
        out.abs().square().mean().backward()
        assert all(p.grad is not None for p in model.parameters()), name


def test_backprojection_init_and_plain_backbones():
    physics = Denoising(Gaussian(0.1))
    y = physics(torch.rand(2, 1, 8, 8, generator=gen()), generator=gen(1))
    torch.testing.assert_close(BackProjection(Identity(), init="none")(y, physics), y)
    conv = nn.Conv2d(1, 1, 3, padding=1)  # a backbone without a physics argument
    torch.testing.assert_close(BackProjection(conv)(y, physics), conv(y))
    tomo = Tomography(angles=8, img_size=8)
    yt = tomo.A(torch.rand(1, 1, 8, 8, generator=gen()))
    torch.testing.assert_close(BackProjection(Identity(), init=lambda y, p: p.fbp(y))(yt, tomo), tomo.fbp(yt))
    with pytest.raises(ValueError, match="init"):
        BackProjection(Identity(), init="fbp")
    with pytest.raises(ValueError, match="nn.Module"):
        BackProjection(lambda x: x)


def test_backprojection_channel_mismatch_raises():
    cases = {name: (physics, x) for name, physics, x in _physics_cases()}
    physics, x = cases["mri"]
    with pytest.raises(ValueError, match="2 real channels"):
        BackProjection(small("unet", 1))(physics.A(x), physics)  # complex MRI needs 2 channels
    physics, x = cases["demosaicing"]
    with pytest.raises(ValueError, match="in_channels"):
        BackProjection(small("dncnn", 1))(physics.A(x), physics)  # y has 1 channel, A^H y has 3
    with pytest.raises(ValueError, match="out_channels"):
        BackProjection(small("unet", 3, 1))(physics.A(x), physics)
    cs = CompressedSensing(10, 36, kind="structured", generator=gen())  # a 1-D signal is not an image
    with pytest.raises(ValueError, match="img_shape"):
        BackProjection(small("unet", 1))(cs.A(torch.rand(2, 36)), cs)


def test_backprojection_per_sample_physics_equals_single_calls():
    name, physics, x = _physics_cases()[2]  # MRI, one mask per sample
    y = physics(x, generator=gen())
    model = BackProjection(small("drunet", 2))
    out = model(y, physics)
    for i in range(2):
        torch.testing.assert_close(out[i : i + 1], model(y[i : i + 1], physics.select(i)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- unrolled
def _unrolled_cases(dtype=torch.float32):
    g = gen(3)
    mask = (torch.rand(3, 1, 8, 8, generator=g) > 0.5).to(dtype)
    kmask = (torch.rand(3, 1, 8, 8, generator=g) > 0.6).to(dtype)
    kmask[:, :, 3:5, 3:5] = 1
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return [
        ("inpainting", Inpainting(mask), torch.rand(3, 1, 8, 8, generator=g, dtype=dtype)),
        ("mri", MRI(kmask), torch.randn(3, 1, 8, 8, generator=g, dtype=cdtype)),
        ("tomography", Tomography(angles=6, img_size=8), torch.rand(3, 1, 8, 8, generator=g, dtype=dtype)),
    ]


@pytest.mark.parametrize("mode", ["pgd", "modl"])
@pytest.mark.parametrize("shared", [True, False])
def test_unrolled_shapes_positive_parameters_and_gradients(mode, shared):
    for name, physics, x in _unrolled_cases():
        y = physics(x)
        c = 2 if x.is_complex() else 1
        model = Unrolled(small("dncnn", c), iterations=3, mode=mode, shared=shared)
        assert len(model.denoisers) == (1 if shared else 3)
        out = model(y, physics)
        assert out.shape == x.shape and out.dtype == x.dtype, name
        (out - x).abs().square().mean().backward()
        raw = model.log_step if mode == "pgd" else model.log_lam
        assert raw.grad is not None and torch.isfinite(raw.grad).all(), name
        # x_0 = A^dagger y is already consistent for exact masks, so only the first pgd step may get no gradient
        assert bool((raw.grad[1:] != 0).all()) and (mode == "pgd" or bool(raw.grad[0] != 0)), name
        assert all(p.grad is not None for p in model.denoisers.parameters()), name
        with torch.no_grad():  # a wild optimiser step keeps them positive
            raw -= 20 * raw.grad.sign()
        values = model.step if mode == "pgd" else model.lam
        assert bool((values > 0).all()), name


def test_unrolled_pgd_with_identity_denoiser_fits_the_measurements():
    def zeros(y, physics):
        return torch.zeros_like(physics.A_adjoint(y))

    for name, physics, x in _unrolled_cases(torch.float64):
        y = physics.A(x)  # noiseless: gradient descent on ||Ax - y||^2 from 0 must reach A x = y
        iters, tol = (300, 1e-2) if name == "tomography" else (2, 1e-10)
        model = Unrolled(Identity(), iterations=iters, mode="pgd", init=zeros).double()
        with torch.no_grad():
            out = model(y, physics)
        res = (physics.A(out) - y).abs().flatten(1).norm(dim=1) / y.abs().flatten(1).norm(dim=1)
        assert bool((res < tol).all()), (name, res)


def test_unrolled_modl_small_lambda_gives_the_pseudo_inverse():
    for name, physics, x in _unrolled_cases(torch.float64):
        y = physics(x)
        model = Unrolled(
            Identity(), iterations=1, mode="modl", init="adjoint", lam=1e-9, cg_iterations=200, cg_tol=1e-12
        ).double()
        with torch.no_grad():
            out = model(y, physics)
        ref = physics.A_dagger(y, tol=1e-10, max_iter=500)
        torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()), msg=name)


@pytest.mark.parametrize("mode", ["pgd", "modl"])
def test_unrolled_per_sample_masks_equal_single_calls(mode):
    for name, physics, x in _unrolled_cases(torch.float64)[:2]:  # per-sample masks
        y = physics(x)
        c = 2 if x.is_complex() else 1
        model = Unrolled(small("unet", c), iterations=2, mode=mode).double()
        out = model(y, physics)
        singles = torch.cat([model(y[i : i + 1], physics.select(i)) for i in range(y.shape[0])])
        torch.testing.assert_close(out, singles, msg=name)


def test_wrappers_accept_subsampled_physics():
    """The splitting losses call model(y_a, physics.subsample(mask)): a composed S A works as any operator."""
    tomo = Tomography(angles=6, img_size=8, noise=Gaussian(0.1))
    keep = (torch.rand(2, 1, 8, 6, generator=gen()) > 0.5).float()
    sub = tomo.subsample(keep)
    y = sub(torch.rand(2, 1, 8, 8, generator=gen(1)), generator=gen(2))
    assert BackProjection(small("unet", 1))(y, sub).shape == (2, 1, 8, 8)
    for mode in ("pgd", "modl"):
        out = Unrolled(small("drunet", 1), iterations=2, mode=mode, init="adjoint")(y, sub)
        assert out.shape == (2, 1, 8, 8) and torch.isfinite(out).all()


def test_unrolled_configuration_errors():
    dn = small("dncnn", 1)
    with pytest.raises(ValueError, match="2 denoisers for 3"):
        Unrolled([dn, dn], iterations=3)
    with pytest.raises(ValueError, match="mode"):
        Unrolled(dn, mode="admm")
    with pytest.raises(ValueError, match="step"):
        Unrolled(dn, step=-1.0)
    with pytest.raises(ValueError, match="lipschitz"):
        Unrolled(dn, lipschitz=0.0)
    name, physics, x = _unrolled_cases()[0]
    with pytest.raises(ValueError, match="lipschitz has 2 values"):
        Unrolled(dn, iterations=1, lipschitz=torch.ones(2))(physics.A(x), physics)
    per_iter = Unrolled([small("dncnn", 1) for _ in range(2)], iterations=2, lipschitz=1.0)
    assert not per_iter.shared and len(per_iter.denoisers) == 2
    copies = Unrolled(dn, iterations=2, shared=False)
    assert copies.denoisers[0] is not copies.denoisers[1]
    name, physics, x = _unrolled_cases()[1]
    with pytest.raises(ValueError, match="complex"):
        Unrolled(small("unet", 1), iterations=1)(physics.A(x), physics)


def test_conjugate_gradient_and_lipschitz():
    g = gen()
    m = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    spd = m @ m.transpose(1, 2) + 0.5 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(2, 5, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: (spd @ v[..., None])[..., 0], b, n_iter=20, tol=1e-12)
    torch.testing.assert_close(x, torch.linalg.solve(spd, b))
    tomo = Tomography(angles=6, img_size=8)
    like = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    L = estimate_lipschitz(tomo, like, n_iter=100)
    a = torch.stack([tomo.A(e.reshape(1, 1, 8, 8)).flatten() for e in torch.eye(64, dtype=torch.float64)], 1)
    torch.testing.assert_close(L, torch.linalg.matrix_norm(a, ord=2).square().expand(2), rtol=1e-6, atol=0)
    state = torch.get_rng_state()
    estimate_lipschitz(tomo, like)
    assert torch.equal(state, torch.get_rng_state())  # leaves the global RNG alone
