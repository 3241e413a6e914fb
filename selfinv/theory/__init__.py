r"""Identifiability conditions for learning from measurements alone (tutorial parts 3–4).

Without ground truth, a reconstruction network can only learn what some operator sees. Two
necessary conditions (Tachella, Chen & Davies, "Sensing theorems for unsupervised learning in
linear inverse problems", JMLR 24(39), 2023; Tachella, Chen & Davies, NeurIPS 2022):

* **several operators** :math:`A_1, \dots, A_G` (multi-operator imaging, splitting):
  :math:`\operatorname{rank}(\mathbb{E}_g A_g^\top A_g) = n`, hence :math:`m \ge n/G`;
* **one operator and a symmetry group** (equivariant imaging):
  :math:`\operatorname{rank}(\mathbb{E}_g T_g^\top A^\top A T_g) = n`, hence :math:`m \ge n/|G|`; this
  fails whenever :math:`A` is equivariant (:math:`A T_g = \tilde T_g A`), because then the rank stays
  :math:`\operatorname{rank}(A^\top A)`.

:func:`rank_condition` computes these ranks (dense eigenvalues for small images, matrix-free for
large ones), :func:`is_equivariant` tests :math:`A T_g = \tilde T_g A`, and :func:`counting_bound` /
:func:`multi_operator_bound` give the counting conditions. Both result objects are frozen dataclasses
whose ``str`` is one plain sentence.

Layout, one topic a module: :mod:`~selfinv.theory.results` (the two result objects),
:mod:`~selfinv.theory.bounds` (the counting bounds), :mod:`~selfinv.theory.normal` (the averaged normal
operator of a family), :mod:`~selfinv.theory.dense` (dense eigenvalues), :mod:`~selfinv.theory.structure`
(pixel- and Fourier-diagonal structure, detected and certified), :mod:`~selfinv.theory.randomized` (the
randomized range finder), :mod:`~selfinv.theory.rank` (:func:`rank_condition`) and
:mod:`~selfinv.theory.equivariance` (:func:`is_equivariant`).

Example:
    >>> import torch
    >>> from selfinv.physics import Inpainting
    >>> from selfinv.transforms import Shift
    >>> from selfinv.theory import rank_condition, is_equivariant
    >>> mask = torch.zeros(8, 8); mask[:, :5] = 1             # 40 of 64 pixels observed
    >>> r = rank_condition(Inpainting(mask))
    >>> r.rank, r.n, r.holds
    (40, 64, False)
    >>> rank_condition(Inpainting(mask), Shift()).holds       # EI with shifts sees every pixel
    True
    >>> is_equivariant(Inpainting(mask), Shift()).equivariant
    False
"""

from selfinv.theory.bounds import counting_bound, multi_operator_bound
from selfinv.theory.equivariance import is_equivariant
from selfinv.theory.rank import rank_condition
from selfinv.theory.results import EquivariantResult, RankResult

__all__ = [
    "EquivariantResult",
    "RankResult",
    "counting_bound",
    "is_equivariant",
    "multi_operator_bound",
    "rank_condition",
]

# the tuning constants, read as ``selfinv.theory.DENSE_MAX_N`` etc. (not in __all__); each lives in its topic's module
from selfinv.theory.equivariance import MAX_EXHAUSTIVE, N_SAMPLED  # noqa: E402, F401
from selfinv.theory.rank import DENSE_MAX_CALLS, DENSE_MAX_GATHERS, DENSE_MAX_N  # noqa: E402, F401
from selfinv.theory.structure import STRUCTURE_RTOL  # noqa: E402, F401
