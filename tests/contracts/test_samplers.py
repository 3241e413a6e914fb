"""Contract tests run on every registered operator sampler (``selfinv.physics.SAMPLERS``).

A sampler draws the parameters of a batch of operators, one per sample: ``sampler.sample(B, generator)``
returns a float tensor (B, ...) reproducible from the generator, and ``sampler(B, generator, noise)`` the
physics built from exactly those parameters. Masks are binary and acquire the fraction of entries they are
asked for (the Bernoulli probability, 1 / acceleration of the k-space lines, the area outside the holes);
kernels are non-negative and sum to 1. A new sampler adds one entry to ``CASES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from selfinv.noise import Gaussian
from selfinv.physics import (
    SAMPLERS,
    BernoulliMaskSampler,
    BlockMaskSampler,
    BlurKernelSampler,
    MRIMaskSampler,
    RadioObservationSampler,
)
from tests.helpers import gen

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class Case:
    build: Callable[[], object]
    #: the attribute of the built physics that holds the sampled parameters
    param: str = "mask"
    #: the expected fraction of acquired entries of a mask (None: not a mask)
    fraction: float | None = None
    #: the standard deviation of one entry of the mask (sqrt(p (1 - p)) for i.i.d. entries; 0 when every
    #: sample acquires the same number of entries)
    spread: float = 0.0
    #: how far one sample's fraction may be from ``fraction`` by construction (rounding of line counts)
    slack: float = 0.0


CASES: dict[str, Case] = {
    "bernoulli_mask": Case(lambda: BernoulliMaskSampler((8, 10), p=0.3), fraction=0.3, spread=math.sqrt(0.21)),
    "bernoulli_mask_per_channel": Case(
        lambda: BernoulliMaskSampler((8, 10), p=0.6, channels=3), fraction=0.6, spread=math.sqrt(0.24)
    ),
    "block_mask": Case(lambda: BlockMaskSampler((8, 10), block_size=(3, 4)), fraction=1 - 12 / 80),
    "mri_mask": Case(lambda: MRIMaskSampler((6, 20), acceleration=4, center_fraction=0.1), fraction=0.25),
    "mri_mask_gaussian": Case(
        lambda: MRIMaskSampler((6, 20), acceleration=4, center_fraction=0.1, pattern="gaussian"), fraction=0.25
    ),
    "mri_mask_equispaced": Case(
        lambda: MRIMaskSampler((6, 20), acceleration=4, center_fraction=0.1, pattern="equispaced"),
        fraction=0.25,
        slack=1 / 20,  # round(W / acceleration) lines up to one
    ),
    "blur_kernel": Case(lambda: BlurKernelSampler("gaussian", size=5), param="kernel"),
    "blur_kernel_motion": Case(lambda: BlurKernelSampler("motion", size=7), param="kernel"),
    "radio_observation": Case(
        lambda: RadioObservationSampler(32, "eht2017", duration=4.0, n_times=4, station_dropout=0.3), param="observation"
    ),
}
NAMES = list(CASES)
MASKS = [n for n in NAMES if CASES[n].fraction is not None]
B = 4


def test_every_registered_sampler_has_a_case():
    covered = {type(case.build()) for case in CASES.values()}
    missing = [name for name, cls in SAMPLERS.items() if cls not in covered]
    assert not missing, f"samplers without a contract case: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_reproducible_per_sample_tensors(name):
    sampler = CASES[name].build()
    a, b, c = (sampler.sample(B, generator=gen(s)) for s in (3, 3, 4))
    assert a.shape[0] == B and a.is_floating_point() and bool(torch.isfinite(a).all())
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(t.flatten().tolist()) for t in a}) > 1, "every sample of the batch got the same parameters"


@pytest.mark.parametrize("name", NAMES)
def test_builds_the_physics_of_exactly_its_samples(name):
    case = CASES[name]
    sampler, noise = case.build(), Gaussian(0.1)
    physics = sampler(B, generator=gen(5), noise=noise)
    assert torch.equal(getattr(physics, case.param), sampler.sample(B, generator=gen(5)))
    assert physics.noise is noise and physics.batch_size == B


@pytest.mark.parametrize("name", NAMES)
def test_refuses_a_batch_size_below_one(name):
    with pytest.raises(ValueError, match="batch_size") as e:
        CASES[name].build().sample(0, generator=gen(0))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", MASKS)
def test_masks_are_binary_and_acquire_the_fraction_asked_for(name):
    """Over 200 samples the acquired fraction is within 5 standard errors (+ the construction's slack) of the
    fraction asked for; each sample within its own 5 standard errors + slack."""
    case = CASES[name]
    masks = case.build().sample(200, generator=gen(6))
    assert bool(((masks == 0) | (masks == 1)).all())
    per_sample = masks.flatten(1).mean(1)
    n = masks[0].numel()
    eps = 1e-6  # float32 means of exact fractions
    assert abs(float(per_sample.mean()) - case.fraction) <= 5 * case.spread / math.sqrt(masks.numel()) + case.slack + eps
    worst = float((per_sample - case.fraction).abs().max())
    assert worst <= 5 * case.spread / math.sqrt(n) + case.slack + eps, f"{name}: a sample is {worst:.3f} off"


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].param == "kernel"])
def test_kernels_are_non_negative_and_sum_to_one(name):
    k = CASES[name].build().sample(B, generator=gen(7))
    assert bool((k >= 0).all())
    torch.testing.assert_close(k.flatten(1).sum(1), torch.ones(B, dtype=k.dtype))
