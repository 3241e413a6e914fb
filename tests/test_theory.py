"""Identifiability conditions: known ranks (check_theory.py #8, anchors §6 items 12-13), equivariance, bounds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from selfinv.physics import MRI, Blur, Inpainting
from selfinv.physics.blur import box_kernel, gaussian_kernel, motion_kernel
from selfinv.physics.samplers import BernoulliMaskSampler, MRIMaskSampler
from selfinv.theory import (
    RankResult,
    counting_bound,
    is_equivariant,
    multi_operator_bound,
    rank_condition,
)
from selfinv.transforms import Reflect, Rotate, Shift
from tests.helpers import gen

H = 16


# ---------------------------------------------------------------------- check_theory.py #8, reproduced
def _reference_masks():
    """The masks of check_theory.py #8 (same numpy generator), and its ranks recomputed with numpy."""
    n = H * H
    mask = (np.random.default_rng(1).uniform(size=(H, H)) < 0.5).astype(float)
    cols = np.zeros((H, H))
    cols[:, ::4] = 1
    cols[:, :2] = 1
    shifts = [np.roll(np.eye(n).reshape(H, H, n), (dx, dy), (0, 1)).reshape(n, n) for dx in range(0, H, 4) for dy in range(0, H, 4)]
    F = np.fft.fft2(np.eye(n).reshape(n, H, H), norm="ortho").reshape(n, n).T
    A_mri = np.diag(cols.ravel()) @ F
    rot = [np.rot90(np.eye(n).reshape(n, H, H), k, axes=(1, 2)).reshape(n, n).T for k in range(4)]

    def crank(ops):
        return int(np.linalg.matrix_rank(sum(np.conj(B).T @ B for B in ops), tol=1e-8))

    A = np.diag(mask.ravel())
    ref = {
        "inpaint": crank([A]),
        "inpaint_shift": crank([A @ T for T in shifts]),
        "mri": crank([A_mri]),
        "mri_shift": crank([A_mri @ T for T in shifts]),
        "mri_rot": crank([A_mri @ R for R in rot]),
    }
    return torch.from_numpy(mask), torch.fft.fftshift(torch.from_numpy(cols)), ref


MASK, COLS, REF = _reference_masks()


def test_reference_numbers_are_those_of_check_theory():
    assert REF == {"inpaint": 127, "inpaint_shift": 256, "mri": 80, "mri_shift": 80, "mri_rot": 156}


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_inpainting_single_mask_vs_shifts(method):
    op = Inpainting(MASK)
    single = rank_condition(op, method=method)
    assert (single.rank, single.n, single.holds, single.m) == (127, 256, False, 127)
    assert single.rank == int(MASK.sum())  # rank = number of observed pixels
    for T in (Shift(step=4), Shift()):  # the 16 shifts of check_theory.py, and all 256
        r = rank_condition(op, T, method=method)
        assert (r.rank, r.holds, r.group_size) == (256, True, len(T.elements(H)))
    if method == "matrix-free":
        assert single.algorithm == "pixel-diagonal"


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_cartesian_mri_shifts_do_not_help_rotations_do(method):
    op = MRI(COLS)  # check_theory's column mask in fft2c's centred k-space convention
    assert rank_condition(op, method=method).rank == REF["mri"] == 80
    assert rank_condition(op, Shift(step=4), method=method).rank == REF["mri_shift"] == 80
    rot = rank_condition(op, Rotate(n=4), method=method)
    assert rot.rank == REF["mri_rot"] == 156 and rot.n == 256 and not rot.holds
    if method == "matrix-free":
        assert rot.algorithm == "fourier-diagonal"
    # adding flips to the rotations: the dihedral group
    assert rank_condition(op, Rotate(n=4) * Reflect(dims=("w",)), method=method).rank >= 156


def test_all_shifts_keep_the_mri_rank():
    assert rank_condition(MRI(COLS), Shift()).rank == 80


def test_mri_shift_is_a_k_space_modulation():
    """A T_g = D_g A with D_g diagonal: the ratio A T_g x / A x does not depend on x."""
    op = MRI(torch.ones(H, H))
    T, p = Shift(), torch.tensor([[3.0, -5.0]])
    x1, x2 = (torch.randn(1, 1, H, H, dtype=torch.complex128, generator=gen(s)) for s in (1, 2))
    d1 = op.A(T.apply(x1, p)) / op.A(x1)
    d2 = op.A(T.apply(x2, p)) / op.A(x2)
    torch.testing.assert_close(d1, d2)
    torch.testing.assert_close(d1.abs(), torch.ones_like(d1.abs()))


# ---------------------------------------------------------------------- equivariance
def test_equivariance_known_answers():
    assert is_equivariant(MRI(COLS), Shift()).equivariant
    mri_rot = is_equivariant(MRI(COLS), Rotate(n=4))
    assert not mri_rot.equivariant and mri_rot.residual > 0.1 and mri_rot.exhaustive and mri_rot.n_tested == 4
    inp = is_equivariant(Inpainting(MASK), Shift())
    assert not inp.equivariant and inp.n_tested == 256
    assert is_equivariant(Inpainting(torch.ones(H, H)), Shift()).equivariant  # injective: trivially
    assert not is_equivariant(Blur(motion_kernel(6.0, 0.0)), Rotate(n=4), x_shape=(1, H, H)).equivariant


@pytest.mark.parametrize(
    "kernel",
    [gaussian_kernel(1.5), box_kernel(4), motion_kernel(7.0, 30.0), torch.rand(5, 5, generator=gen(3), dtype=torch.float64)],
    ids=["gaussian", "box4", "motion", "random"],
)
def test_blur_with_any_kernel_is_shift_equivariant(kernel):
    op = Blur(kernel)
    res = is_equivariant(op, Shift(), x_shape=(1, H, H))
    assert res.equivariant and res.exhaustive, res
    # consequently shifts add nothing to the rank (box4 has zeros in its spectrum: a real nullspace)
    single = rank_condition(op, x_shape=(1, H, H), method="matrix-free")
    assert rank_condition(op, Shift(), x_shape=(1, H, H)).rank == single.rank
    if kernel.shape[-1] == 4:
        assert single.rank == (H - 3) ** 2  # 3 zero frequencies per axis


def test_per_sample_operators_are_all_tested():
    ops = MRIMaskSampler(H, acceleration=4, center_fraction=0.125)(3, generator=gen())
    assert is_equivariant(ops, Shift()).equivariant
    masks = BernoulliMaskSampler(8, p=0.5)(3, generator=gen())
    res = is_equivariant(masks, Shift(), n_tests=10, generator=gen(1))
    assert not res.equivariant and res.n_tested == 10 and not res.exhaustive
    assert "not equivariant" in str(res) and "\n" not in str(res)


# ---------------------------------------------------------------------- multiple operators
def test_bernoulli_masks_full_rank_iff_union_covers():
    sampler = BernoulliMaskSampler(3, p=0.5)  # P(full rank) = 0.875^9 = 0.30
    outcomes = set()
    for seed in range(12):
        ops = sampler(3, generator=gen(seed))
        union = (ops.mask > 0).any(0)
        r = rank_condition(ops)
        assert r.rank == int(union.sum()) and r.n_operators == 3
        assert r.holds == bool(union.all())
        outcomes.add(r.holds)
    assert outcomes == {True, False}  # both cases were exercised


def test_probability_of_full_rank_matches_theory():
    """P(full rank) = (1 - (1-p)^G)^n for G i.i.d. Bernoulli(p) masks (anchors §6 item 12)."""
    n, p, G, trials = 4, 0.5, 3, 300
    sampler = BernoulliMaskSampler(2, p=p)
    g = gen(11)
    hits = sum(rank_condition(sampler, n_operators=G, generator=g).holds for _ in range(trials))
    expected = (1 - (1 - p) ** G) ** n
    se = math.sqrt(expected * (1 - expected) / trials)
    assert abs(hits / trials - expected) < 4 * se, (hits / trials, expected)


def test_splitting_a_fixed_operator_is_not_identifiable():
    """Splits S_b of one fixed mask Omega never see outside Omega: the rank is at most |Omega| (anchors §6 item 13)."""
    omega = MASK.float()
    splits = BernoulliMaskSampler(H, p=0.6).sample(20, generator=gen(4))[:, 0]
    r = rank_condition([Inpainting(omega * s) for s in splits])
    assert r.rank == int(omega.sum()) == 127 and not r.holds and r.n_operators == 20
    same = rank_condition([Inpainting(omega)] * 5)  # repeating one operator adds nothing
    assert same.rank == 127 and same.bound == counting_bound(256, 5)


def test_list_and_sampler_agree():
    sampler = BernoulliMaskSampler(8, p=0.25)
    from_sampler = rank_condition(sampler, n_operators=4, generator=gen(5))
    batched = sampler(4, generator=gen(5))
    from_list = rank_condition([batched.select(i) for i in range(4)])
    from_batched = rank_condition(batched)
    assert from_sampler.rank == from_list.rank == from_batched.rank
    assert from_sampler.n_operators == from_list.n_operators == from_batched.n_operators == 4
    assert from_sampler.m == from_list.m == int(batched.mask.flatten(1).sum(1).max())


def test_operators_and_transforms_combine():
    ops = BernoulliMaskSampler(8, p=0.1)(2, generator=gen(2))
    r = rank_condition(ops, Rotate(n=4))
    assert r.G == 8 and r.group_size == 4 and r.n_operators == 2
    union = (ops.mask[:, 0] > 0).any(0)
    covered = torch.stack([torch.rot90(union, k) for k in range(4)]).any(0)
    assert r.rank == int(covered.sum())


# ---------------------------------------------------------------------- dense vs matrix-free
def test_dense_and_matrix_free_agree_on_medium_cases():
    mask = (torch.rand(32, 32, generator=gen(6)) < 0.02).float()
    d = rank_condition(Inpainting(mask), Shift(step=4), method="dense")
    f = rank_condition(Inpainting(mask), Shift(step=4), method="matrix-free")
    assert d.rank == f.rank < 1024 and d.method == "dense" and f.method == "matrix-free"
    mri = MRIMaskSampler(32, acceleration=4, center_fraction=0.125)(1, generator=gen(7))
    d = rank_condition(mri, Rotate(n=4), method="dense")
    f = rank_condition(mri, Rotate(n=4), method="matrix-free")
    assert d.rank == f.rank and d.n == 1024 and 256 < d.rank < 1024
    assert f.algorithm == "fourier-diagonal" and math.isclose(d.lambda_max, f.lambda_max, rel_tol=1e-9)


def test_randomized_range_finder_agrees_with_dense():
    """Operators with no pixel or Fourier structure use the general matrix-free path."""
    mask = (torch.rand(12, 12, generator=gen(8)) < 0.4).float()
    cases = [
        (Inpainting(mask) @ Blur(box_kernel(2)), None, None),
        (Inpainting(mask), Rotate(degrees=(0.0, 360.0)), 3),
    ]
    for op, T, k in cases:
        d = rank_condition(op, T, n_transforms=k, method="dense", generator=gen(1))
        f = rank_condition(op, T, n_transforms=k, method="matrix-free", generator=gen(1))
        assert f.algorithm == "randomized-range-finder"
        assert d.rank == f.rank, (d, f)
        assert 0 < d.rank <= 144


@pytest.mark.parametrize(
    "T",
    [Shift(step=3), Shift(max_shift=1) * Rotate(n=4), Reflect(dims=("w",)) * Shift(step=5), Rotate(n=2) * Shift(step=7)],
    ids=repr,
)
def test_matrix_free_group_averages_match_dense(T):
    """Permutation groups are averaged by gathers (nested over product factors, FFT for shift sets
    that are not symmetric under negation); eigenvalues must match the dense computation."""
    g = gen(9)
    ops = [
        BernoulliMaskSampler(12, p=0.1)(2, generator=g),  # pixel-diagonal
        Inpainting((torch.rand(1, 3, 12, 12, generator=g) > 0.8).float()),  # pixel-diagonal, 3 channels
        MRIMaskSampler(12, acceleration=4, center_fraction=0.17)(2, generator=g),  # Fourier-diagonal
        Blur(torch.rand(1, 3, 3, 3, generator=g, dtype=torch.float64)),  # Fourier, 3x3 blocks per frequency
    ]
    for op, c in zip(ops, (1, 3, 1, 3), strict=True):
        d = rank_condition(op, T, method="dense", x_shape=(c, 12, 12))
        f = rank_condition(op, T, method="matrix-free", x_shape=(c, 12, 12))
        assert f.algorithm in ("pixel-diagonal", "fourier-diagonal")
        assert d.rank == f.rank and math.isclose(d.lambda_max, f.lambda_max, rel_tol=1e-9), (op, d, f)
    # a random sample of the group (not a full product group) takes the element-by-element path
    d = rank_condition(ops[0], T, method="dense", n_transforms=5, generator=gen(1))
    f = rank_condition(ops[0], T, method="matrix-free", n_transforms=5, generator=gen(1))
    assert d.rank == f.rank and d.group_size == f.group_size == 5


def test_image_sized_problems_are_fast():
    mri = MRIMaskSampler(128, acceleration=4, center_fraction=0.08)(1, generator=gen())
    assert rank_condition(mri, Shift() * Rotate(n=4)).method == "matrix-free"
    assert rank_condition(mri, Shift()).rank == 128 * 32  # 32 of 128 lines: shifts add nothing
    masks = rank_condition(BernoulliMaskSampler(128, p=0.05), Shift(), n_operators=2, generator=gen())
    assert masks.holds and masks.group_size == 128 * 128


def test_exact_transforms_shortcut_matches_generic_path():
    """Dense with exact transforms averages permuted matrices; a non-exact identity factor forces the generic path."""
    from selfinv.transforms import Scale

    op = MRI(COLS[::2, ::2].contiguous())
    fast = rank_condition(op, Rotate(n=4), method="dense")
    slow = rank_condition(op, Rotate(n=4) * Scale(factors=(1.0,), random_center=False), method="dense")
    assert fast.rank == slow.rank and math.isclose(fast.lambda_max, slow.lambda_max, rel_tol=1e-12)


def test_auto_picks_dense_for_small_problems():
    assert rank_condition(Inpainting(MASK)).method == "dense"
    assert rank_condition(Inpainting(torch.ones(48, 48))).method == "matrix-free"


# ---------------------------------------------------------------------- bounds and the result object
def test_counting_bounds():
    assert counting_bound(256, 16) == 16 and counting_bound(10, 3) == 4 and counting_bound(5, 10) == 1
    assert multi_operator_bound(784, 40, 12) == 32 and multi_operator_bound(100, 10, 0) == 11
    for bad in ((0, 1), (4, 0), (4.0, 2)):
        with pytest.raises(ValueError):
            counting_bound(*bad)
    with pytest.raises(ValueError):
        multi_operator_bound(10, 2, -1)
    mask = torch.zeros(4, 4)
    mask[0, :3] = 1  # 3 observed pixels, 4 rotations: 12 < 16 measurements in total
    r = rank_condition(Inpainting(mask), Rotate(n=4))
    assert (r.m, r.bound, r.bound_holds, r.holds) == (3, 4, False, False)
    assert rank_condition(MRI(COLS), Rotate(n=4)).bound_holds  # 80 >= 256/4, yet rank 156 < 256


def test_result_is_frozen_and_reads_as_a_sentence():
    r = rank_condition(Inpainting(MASK), Shift(step=4))
    assert isinstance(r, RankResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.rank = 3
    s = str(r)
    assert "\n" not in s and s.startswith("rank 256/256 (full rank") and "Shift(step=4)" in s and "dense" in s
    assert r.tol == pytest.approx(256 * torch.finfo(torch.float64).eps * r.lambda_max)
    d = dataclasses.asdict(r)
    assert d["rank"] == 256 and d["holds"] and r.nullity == 0
    fail = str(rank_condition(Inpainting(MASK)))
    assert "rank-deficient by 129" in fail
    eq = str(is_equivariant(MRI(COLS), Shift()))
    assert eq.startswith("MRI is equivariant to Shift()") and "all 256 group elements" in eq


def test_bad_arguments_raise():
    op = Inpainting(MASK)
    sampler = BernoulliMaskSampler(8, p=0.5)
    for call in (
        lambda: rank_condition(op, method="svd"),
        lambda: rank_condition(op, tol=-1.0),
        lambda: rank_condition(op, n_operators=3),
        lambda: rank_condition(sampler),
        lambda: rank_condition([]),
        lambda: rank_condition("inpainting"),
        lambda: rank_condition(op, transforms="shift"),
        lambda: rank_condition(op, Rotate(degrees=(0, 10))),  # continuous: needs n_transforms
        lambda: rank_condition(Blur(box_kernel(3))),  # shape unknown
        lambda: rank_condition([op, MRI(COLS)]),  # real and complex domains
        lambda: is_equivariant(op, "shift"),
        lambda: is_equivariant(op, Shift(), tol=-1),
        lambda: is_equivariant(sampler, Shift()),
    ):
        with pytest.raises(ValueError):
            call()
