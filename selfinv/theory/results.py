"""The results of the identifiability checks: :class:`RankResult` and :class:`EquivariantResult`.

Both are frozen dataclasses whose ``str`` is one plain sentence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RankResult:
    r"""The rank of the averaged normal operator :math:`\mathbb{E}_{g} T_g^\top A_i^\top A_i T_g` and the counting bound.

    Attributes:
        rank: numerical rank (eigenvalues above ``tol``).
        n: number of unknowns (complex unknowns for complex operators such as MRI).
        holds: ``rank == n``, the necessary condition for learning from measurements alone.
        method: ``"dense"`` or ``"matrix-free"``.
        algorithm: ``"eigvalsh"`` (dense), ``"pixel-diagonal"``, ``"fourier-diagonal"`` or
            ``"randomized-range-finder"`` (matrix-free).
        tol: the eigenvalue threshold used (absolute).
        lambda_max: the largest eigenvalue.
        n_operators: number of operators :math:`A_i` averaged over.
        group_size: number of transforms :math:`T_g` averaged over (1 without transforms).
        m: measurements per operator (the largest), None when unknown.
        bound: the counting bound :math:`\lceil n / G \rceil`, :math:`G` = ``n_operators * group_size``.
        bound_holds: whether :math:`G_T \sum_i m_i \ge n` (i.e. :math:`m \ge n/G` for equal :math:`m_i`),
            None when m is unknown. Necessary for ``holds``, not sufficient.
        transform: ``repr`` of the transforms, or None.
    """

    rank: int
    n: int
    holds: bool
    method: str
    algorithm: str
    tol: float
    lambda_max: float
    n_operators: int
    group_size: int
    m: int | None
    bound: int
    bound_holds: bool | None
    transform: str | None = None

    @property
    def G(self) -> int:
        """Number of (virtual) operators averaged over: ``n_operators * group_size``."""
        return self.n_operators * self.group_size

    @property
    def nullity(self) -> int:
        """Dimension of the part of the signal space that no operator sees: ``n - rank``."""
        return self.n - self.rank

    def __str__(self) -> str:
        verdict = "full rank: the condition holds" if self.holds else f"rank-deficient by {self.nullity}: the condition fails"
        ops = f"{self.n_operators} operator{'s' if self.n_operators != 1 else ''}"
        if self.transform is not None:
            ops += f" x {self.group_size} transforms {self.transform}"
        if self.m is None:
            count = f"counting bound m >= {self.bound} (m unknown)"
        else:
            count = f"counting bound m >= ceil({self.n}/{self.G}) = {self.bound}: m = {self.m}, {'met' if self.bound_holds else 'not met'}"
        return (
            f"rank {self.rank}/{self.n} ({verdict}) over {ops} "
            f"[{self.method}, {self.algorithm}, tol {self.tol:.2g}]; {count}"
        )


@dataclass(frozen=True)
class EquivariantResult:
    r"""Whether :math:`A T_g = \tilde T_g A` for some linear :math:`\tilde T_g`, for every tested :math:`g`.

    Attributes:
        equivariant: ``residual <= tol``.
        residual: the largest relative residual
            :math:`\|A T_g (I - A^\dagger A) z\| / (\|A\| \|(I - A^\dagger A) z\|)` over the tested
            elements and random probes :math:`z` (0 when :math:`A` is injective).
        tol: the threshold.
        n_tested: number of group elements tested.
        exhaustive: True when every element of the (finite) group was tested.
        worst: parameters of the element with the largest residual.
        transform: ``repr`` of the transform.
        operator: the operator's class name.
    """

    equivariant: bool
    residual: float
    tol: float
    n_tested: int
    exhaustive: bool
    worst: tuple[float, ...]
    transform: str
    operator: str

    def __str__(self) -> str:
        scope = f"all {self.n_tested} group elements" if self.exhaustive else f"{self.n_tested} sampled group elements"
        if self.equivariant:
            verdict = f"{self.operator} is equivariant to {self.transform} (these transforms add no information)"
        else:
            verdict = f"{self.operator} is not equivariant to {self.transform} (worst g = {self.worst})"
        cmp = "<=" if self.equivariant else ">"
        return f"{verdict}: max relative residual {self.residual:.2g} {cmp} tol {self.tol:.2g} over {scope}"
