r"""Equivariant imaging (EI) and robust EI (REI): learning the nullspace from invariance of the signal set."""

from __future__ import annotations

from selfinv._checks import check_either
from selfinv.losses.base import LossInfo
from selfinv.losses.consistency import WithConsistency
from selfinv.transforms import Shift, Transform


class EI(WithConsistency):
    r"""Equivariant imaging (Chen, Tachella & Davies, ICCV 2021).

    If the signal set is invariant to a group :math:`\{T_g\}`, then :math:`y = A x = A T_g T_g^{-1} x`:
    every :math:`A T_g` is a "virtual" operator for free. EI asks :math:`f \circ A` to be equivariant:

    .. math::

        \mathcal{L}_{\text{EI}}(y, f) = \underbrace{\tfrac1m\|y - A\hat x\|^2}_{\text{consistency}}
        + \lambda\,\mathbb{E}_g\,\tfrac1n\big\|T_g \hat x - f(A T_g \hat x)\big\|^2,
        \qquad \hat x = f(y, A),

    with :math:`g` drawn **per sample** (the peer library draws one per batch). Learning is possible only
    if :math:`\operatorname{rank}\,\mathbb{E}_g T_g^\top A^\top A T_g = n`, which fails when A is
    equivariant to the group (e.g. Cartesian MRI with shifts; use rotations): see
    :func:`selfinv.theory.rank_condition`. Tachella & Pereyra (2024): for linear, measurement-consistent
    f the EI loss is the supervised loss plus a bias that is small when :math:`f \circ A` is not
    equivariant.

    ``renoise=True`` simulates :math:`\mathcal N(A T_g \hat x)` with the physics' noise model (needed
    when the network expects noisy inputs; for Poisson/Gamma noise :math:`A T_g\hat x` is clipped at 0);
    ``stop_gradient=True`` treats :math:`T_g\hat x` as a fixed target. ``consistency`` is the measurement
    term: "mc" (noiseless data), "sure" or "r2r" (noisy data: this is robust EI, :class:`REI`), or "none"
    for the equivariance term alone. Network evaluations per
    step: f(y) (shared with the consistency term) + :math:`f(A T_g \hat x)`: 2 with MC, 3 with SURE.

    Args:
        transform: the group action (``selfinv.transforms``), e.g. ``Shift()``, ``Rotate(4)``, ``Scale()``.
        consistency: "mc" (default), "sure", "r2r" or "none".
        weight: :math:`\lambda` (EI paper: 1 for inpainting, 100 for CT).
        renoise: add the physics' noise to :math:`A T_g\hat x`.
        stop_gradient: no gradient through the target :math:`T_g \hat x`.

    Example:
        >>> import torch
        >>> from selfinv.losses import EI
        >>> from selfinv.physics import Inpainting
        >>> from selfinv.transforms import Shift
        >>> physics = Inpainting((torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float())
        >>> y = physics(torch.rand(2, 1, 8, 8))
        >>> model = lambda y, physics: physics.A_adjoint(y)
        >>> EI(Shift())(y, physics, model, generator=torch.Generator().manual_seed(1)).shape
        torch.Size([])
    """

    _base_info = LossInfo(
        train_evals=2, general_operator=True, needs_transforms=True,
        reference="Chen, Tachella & Davies, ICCV 2021",
    )

    def __init__(self, transform: Transform, consistency: str = "mc", weight: float = 1.0, renoise: bool = False,
                 stop_gradient: bool = False) -> None:
        if not isinstance(transform, Transform):
            raise ValueError(f"{type(self).__name__}: transform must be a selfinv.transforms.Transform, got {transform!r}")
        robust = consistency in ("sure", "r2r")
        reference = "Chen, Tachella & Davies, CVPR 2022 (robust EI)" if robust else self._base_info.reference
        # MC consistency fits y exactly, noise included; SURE/R2R estimate the noiseless consistency
        caveat = "noisy data: use rei (SURE/R2R consistency) instead" if consistency == "mc" else None
        super().__init__(consistency, weight, self._base_info, 1, renoise, stop_gradient, reference=reference,
                         noise_caveat=caveat)
        self.transform = transform

    @classmethod
    def example(cls) -> EI:
        """With shifts, the group that suits most operators (not MRI: it is equivariant to them)."""
        return cls(Shift())

    def _term(self, ctx):
        x_t, _ = self.transform(ctx.x_hat, generator=ctx.generator)
        return self._remeasured(ctx, x_t, ctx.physics)  # f(N(A T x̂)) against T x̂

    def extra_repr(self) -> str:
        return f"transform={self.transform!r}, weight={self.weight:g}, renoise={self.renoise}"


class REI(EI):
    r"""Robust equivariant imaging (Chen, Tachella & Davies, CVPR 2022): SURE (default) or R2R + EI.

    .. math::

        \mathcal{L}_{\text{REI}}(y, f) = \underbrace{\mathrm{SURE}(y, A f)}_{\approx \frac1m\|A(f(y) - x)\|^2}
        + \lambda\,\mathbb{E}_g\,\tfrac1n\big\|T_g \hat x - f(\mathcal{N}(A T_g \hat x))\big\|^2

    The measurement term is an unbiased estimate of the noiseless consistency (Gaussian, Poisson or
    Poisson-Gaussian noise from ``physics.noise``), and :math:`A T_g\hat x` is re-noised so the network
    always sees inputs with the data's noise. Network evaluations: 3 per step (f(y), the SURE
    perturbation and :math:`f(\mathcal N(A T_g\hat x))`).

    Example:
        >>> import torch
        >>> from selfinv.losses import REI
        >>> from selfinv.noise import Gaussian
        >>> from selfinv.physics import Inpainting
        >>> from selfinv.transforms import Rotate
        >>> physics = Inpainting(torch.ones(8, 8), noise=Gaussian(0.1))
        >>> y = physics(torch.rand(2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> REI(Rotate(4))(y, physics, lambda y, physics: y, generator=torch.Generator().manual_seed(1)).shape
        torch.Size([])
    """

    def __init__(self, transform: Transform, consistency: str = "sure", weight: float = 1.0, renoise: bool = True,
                 stop_gradient: bool = False) -> None:  # EI's arguments, with REI's defaults
        check_either(consistency, ("sure", "r2r"), "consistency", "REI")
        super().__init__(transform, consistency=consistency, weight=weight, renoise=renoise, stop_gradient=stop_gradient)
