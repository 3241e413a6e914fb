"""Contract tests run on every registered loss (tests/contracts/losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from selfinv.losses import LOSSES, MC, Estimator, Loss, Supervised, estimate
from tests.contracts.losses import LOSS_CASES, Counting, TinyNet

NAMES = list(LOSS_CASES)
B = 3


def setup(name, seed=0):
    case = LOSS_CASES[name]
    torch.manual_seed(seed)  # only for the network's initial weights
    loss, physics, model = case.build(B)
    g = torch.Generator().manual_seed(seed)
    x = 0.2 + 0.6 * torch.rand(B, 1, *case.size, generator=g, dtype=torch.float32)
    y = physics(x, generator=g).float()
    y2 = physics(x, generator=g).float() if case.needs_y2 else None
    return loss, physics, Counting(model), x, y, y2


def call(loss, physics, model, x, y, y2, seed=1):
    return loss(y, physics, model, x=x, y2=y2, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NAMES)
def test_scalar_differentiable_and_counts_network_evaluations(name):
    loss, physics, model, x, y, y2 = setup(name)
    y_before = y.clone()
    value = call(loss, physics, model, x, y, y2)
    assert value.ndim == 0 and bool(torch.isfinite(value))
    # the registry's train_evals is what really happens in a training step
    assert model.calls == loss.train_evals_for(physics), f"{name}: {model.calls} calls, it says {loss.train_evals_for(physics)}"
    value.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert torch.equal(y, y_before), "the loss modified y in place"


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_from_the_generator(name):
    loss, physics, model, x, y, y2 = setup(name)
    loss.eval()  # learned state (UNSURE) must not move between the two calls
    a = call(loss, physics, model, x, y, y2, seed=5)
    b = call(loss, physics, model, x, y, y2, seed=5)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_eval_mode_leaves_learned_state_alone(name):
    loss, physics, model, x, y, y2 = setup(name)
    loss.eval()
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    with torch.no_grad():
        call(loss, physics, model, x, y, y2)
    after = loss.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", NAMES)
def test_refuses_physics_it_cannot_handle(name):
    loss, physics, model, x, y, y2 = setup(name)
    info = loss.info
    if info.noise_models is not None:
        with pytest.raises(ValueError, match="noise"):
            call(loss, physics.with_noise(None), model, x, y, y2)
    if not info.general_operator:
        from selfinv.physics import Inpainting

        other = Inpainting(torch.ones(1, 1, *y.shape[-2:]), noise=physics.noise)
        with pytest.raises(ValueError):
            call(loss, other, model, x, y, y2)


@pytest.mark.parametrize("name", NAMES)
def test_test_model_is_an_estimator(name):
    loss, physics, model, x, y, y2 = setup(name)
    est = loss.test_model(model)
    with torch.no_grad():
        out = est(y, physics)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", NAMES)
def test_test_model_takes_a_generator_and_leaves_the_global_one_alone(name):
    """The randomness contract: the model itself or an Estimator called as est(y, physics, generator); with a
    generator it is reproducible from the seed and PyTorch's global generator is left as it was."""
    loss, physics, model, x, y, _ = setup(name)
    est = loss.test_model(model)
    assert est is model or isinstance(est, Estimator), type(est).__name__
    state = torch.get_rng_state()
    with torch.no_grad():
        a = estimate(est, y, physics, torch.Generator().manual_seed(3))
        b = estimate(est, y, physics, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)
    if LOSS_CASES[name].random_estimator:
        with torch.no_grad():
            c = estimate(est, y, physics, torch.Generator().manual_seed(4))
        assert not torch.equal(a, c)


def _pattern(v):
    """A fixed image of v's shape that does not depend on v's values (the same in every call)."""
    n = v[0].numel()
    return torch.linspace(-0.5, 1.0, n, dtype=v.dtype, device=v.device).reshape(v.shape[1:]).expand(v.shape)


#: pointwise affine models whose estimates each case states in closed form (``LossCase.estimate``)
ORACLES = {
    "constant": lambda v, physics=None: _pattern(v),
    "affine": lambda v, physics=None: 2 * v - _pattern(v),
}
DRAWS = 16


@pytest.mark.parametrize("oracle", list(ORACLES))
@pytest.mark.parametrize("name", NAMES)
def test_test_model_gives_the_closed_form_estimate_of_a_known_model(name, oracle):
    """The test-time estimator of a pointwise affine model f, against the estimate its method prescribes: f(y)
    for the model itself and for averages over unbiased re-draws of y (R2R), the corrected (1+a²)f(z)−z over
    a² (Noisier2Noise), Tweedie's formulas (Noise2Score), f(0) (Noise2Self's J-invariant average). A wrong sign
    or scale in an estimator changes the estimate. Deterministic estimators must match to float precision;
    estimators with random draws must match in mean, within 5 standard
    errors of the mean over DRAWS calls (seeded generators) and the pixels of each sample."""
    case = LOSS_CASES[name]
    loss, physics, _, x, y, y2 = setup(name)
    f = ORACLES[oracle]
    expected = case.estimate(f, y, physics)
    est = loss.test_model(f)
    outs = []
    for k in range(DRAWS):
        with torch.no_grad():
            outs.append(estimate(est, y, physics, torch.Generator().manual_seed(100 + k)))
    outs = torch.stack(outs)
    assert outs.shape[1:] == x.shape == expected.shape
    deterministic = all(torch.equal(o, outs[0]) for o in outs)
    if oracle == "affine":  # a model that reads its input: random draws show in the output
        assert deterministic != case.random_estimator, f"{name}: random draws expected: {case.random_estimator}"
    if deterministic:
        assert torch.allclose(outs[0], expected, rtol=1e-4, atol=1e-5), float((outs[0] - expected).abs().max())
    else:
        d = (outs - expected).transpose(0, 1).flatten(1).double()  # per sample: DRAWS x pixels
        z = d.mean(1) / (d.std(1) / math.sqrt(d.shape[1]))
        assert bool((z.abs() < 5).all()), f"{name}: mean error / standard error per sample: {z.tolist()}"


def test_every_registered_loss_has_a_contract_case():
    covered = set()
    for name in NAMES:
        loss, *_ = setup(name)
        covered |= {type(m) for m in loss.modules()}
    missing = [name for name, cls in LOSSES.items() if cls not in covered]
    assert not missing, f"losses without a contract-test case: {missing}"


def test_sum_of_losses_shares_one_evaluation_of_f():
    loss, physics, model, x, y, _ = setup("mc")
    combined = Supervised() + 0.5 * MC() + MC() * 2.0
    value = combined(y, physics, model, x=x)
    assert model.calls == 1
    ref = Supervised()(y, physics, TinyNet().eval(), x=x)  # a different net: values differ, shapes agree
    assert value.shape == ref.shape
    parts = Supervised()(y, physics, model.model, x=x) + 2.5 * MC()(y, physics, model.model)
    assert torch.allclose(value, parts)
    assert isinstance(combined, Loss) and len(combined.terms) == 3


def test_supervised_needs_ground_truth():
    loss, physics, model, x, y, _ = setup("supervised")
    with pytest.raises(ValueError, match="ground truth"):
        loss(y, physics, model)


def test_mc_identity_is_a_minimiser_for_denoising():
    loss, physics, _, x, y, _ = setup("mc")
    assert float(loss(y, physics, lambda y, physics: y)) == 0.0
