"""Validation within measurements (N = 1): disjoint held-out entries or bands, and an unbiased held-out error."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.data import MeasurementDataset, collate
from selfinv.noise import Gaussian
from selfinv.physics import MRI, Denoising, Inpainting, Tomography
from selfinv.training.holdout import HeldOutEntries, holdout_band, holdout_entries, within_measurements
from selfinv.training.validation import validate


def mri_set(n=2, h=16, w=16, sigma=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 1, h, w, generator=g) < 0.5).float()
    x = torch.randn(n, 1, h, w, generator=g, dtype=torch.complex64)
    op = MRI(mask, noise=Gaussian(sigma))
    return MeasurementDataset(op(x, generator=g), op, x=x), x, mask


def test_held_out_entries_are_acquired_disjoint_and_exactly_the_fraction():
    ds, _, mask = mri_set()
    train, val = holdout_entries(ds, 0.2, seed=3)
    kept = train.params["mask"]
    held = val.held_out
    assert isinstance(val, HeldOutEntries) and len(train) == len(val) == 2
    assert bool(((kept > 0) & (held > 0)).sum() == 0)  # disjoint
    torch.testing.assert_close(kept + held, mask)  # together: exactly the acquired entries
    for i in range(2):
        assert int(held[i].sum()) == round(0.2 * int(mask[i].sum()))
    assert bool((train.y[held > 0] == 0).all())  # the network never sees them
    assert torch.equal(train.x, ds.x)
    again, _ = holdout_entries(ds, 0.2, seed=3)
    assert torch.equal(again.params["mask"], kept)  # seeded


def test_held_out_error_is_unbiased_for_the_measurement_risk_plus_noise():
    """E L_val = ||S_Γ(A x̂ - A x)||²/|Γ| + σ² per real degree of freedom... for complex noise σ² per real part:
    a fixed estimator (independent of the held-out noise), Monte Carlo over the noise, 4 standard errors."""
    h = w = 16
    sigma = 0.1
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, 1, h, w, generator=g) < 0.6).float()
    x = torch.randn(1, 1, h, w, generator=g, dtype=torch.complex128)
    op = MRI(mask, noise=Gaussian(sigma))
    x_hat = 0.8 * x  # a fixed estimate: f ignores its input
    values = []
    for t in range(300):
        y = op(x, generator=torch.Generator().manual_seed(100 + t))
        ds = MeasurementDataset(y, op)
        train, val = holdout_entries(ds, 0.25, seed=1)
        batch = collate([val[0]])
        values.append(float(val.validation_loss(lambda y_, p_: x_hat, batch, val.make_physics(batch.params))))
    held = val.held_out
    risk = float(((op.A(x_hat - x)).abs() ** 2 * held).sum() / (2 * held.sum()))  # per real degree of freedom
    mean = sum(values) / len(values)
    se = (sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5
    assert abs(mean - (risk + sigma**2)) < 4 * se, (mean, risk + sigma**2, se)


def test_validate_uses_the_held_out_error_and_sees_no_held_out_entry():
    ds, _, _ = mri_set(n=1)
    train, val = holdout_entries(ds, 0.3, seed=0)
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, y, physics):
            seen.append(y.clone())
            return physics.A_adjoint(y)

    from selfinv.losses import MC

    out = validate(Spy(), MC(), val, batch_size=1, device=torch.device("cpu"), seed=0)
    assert bool((seen[0][val.held_out > 0] == 0).all())
    batch = collate([val[0]])
    expected = val.validation_loss(lambda y, p: p.A_adjoint(y), batch, val.make_physics(batch.params))
    assert out["val_loss"] == pytest.approx(float(expected))
    assert out["val_loss"] != pytest.approx(float(MC()(batch.y, val.make_physics(batch.params), lambda y, p: p.A_adjoint(y))))


def test_tomography_entries_keep_the_filtered_back_projection():
    op = Tomography(12, img_size=16, noise=Gaussian(0.01))
    x = torch.rand(1, 1, 16, 16)
    ds = MeasurementDataset(op(x, generator=torch.Generator().manual_seed(0)), op)
    train, val = holdout_entries(ds, 0.1, seed=0)
    sub = train.make_physics({k: v[:1] for k, v in train.params.items()})
    assert callable(getattr(sub, "fbp", None))  # FBP of the zero-filled sinogram, as the wrapper's init expects
    torch.testing.assert_close(sub.fbp(train.y[:1]), op.fbp(train.y[:1]))


def test_band_for_pixelwise_operators_is_a_disjoint_crop():
    y = torch.rand(1, 1, 40, 30)
    masks = (torch.rand(1, 1, 40, 30) > 0.3).float()
    ds = MeasurementDataset(y * masks, Inpainting(masks))
    train, val = within_measurements(ds, 0.25)
    a, b = train[0], val[0]
    assert a.y.shape[-2:] == (30, 30) and b.y.shape[-2:] == (10, 30)  # the longer side is cut
    assert torch.equal(torch.cat([a.y, b.y], dim=-2), ds.y[0])
    assert torch.equal(torch.cat([a.params["mask"], b.params["mask"]], dim=-2), masks[0])
    phys = val.make_physics(collate([b]).params)
    assert phys.mask.shape[-2:] == (10, 30)
    with pytest.raises(ValueError, match="too small"):
        holdout_band(MeasurementDataset(torch.rand(1, 1, 10, 10), Denoising()), 0.2)
    assert math.isclose(len(train), 1)


def test_multi_coil_entries_are_held_out_in_every_coil():
    """A k-space location is read by all coils at once: it is held out (or kept) in all of them, so the training
    operator's mask (one for the coils) and the training data agree."""
    from selfinv.physics import MultiCoilMRI

    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 1, 12, 10, generator=g) < 0.5).float()
    maps = torch.randn(1, 4, 12, 10, generator=g, dtype=torch.complex64)
    op = MultiCoilMRI(mask, maps)
    ds = MeasurementDataset(op.A(torch.randn(2, 1, 12, 10, generator=g, dtype=torch.complex64)), op)
    train, val = holdout_entries(ds, 0.2, seed=1)
    kept, held = train.params["mask"], val.held_out
    assert kept.shape == (2, 1, 12, 10) and torch.equal(held, held[:, :1].expand_as(held))
    torch.testing.assert_close(kept.expand_as(held) + held, mask.expand_as(held))  # disjoint, all acquired
    for i in range(2):
        assert int(held[i, 0].sum()) == round(0.2 * int(mask[i].sum()))
    assert torch.equal(train.y != 0, (kept > 0).expand_as(train.y))  # the data are zero exactly off the mask
