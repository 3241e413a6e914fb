r"""Physics-aware reconstruction networks ``model(y, physics)`` built from an image-to-image backbone.

* :class:`BackProjection`: :math:`\hat x = f(A^H y)` or :math:`f(A^\dagger y)`, the back-projected U-Net of
  Jin, McCann, Froustey & Unser (IEEE TIP 2017).
* :class:`Unrolled`: :math:`\hat x = f(y, A)`, a fixed number of iterations of an optimisation algorithm whose
  proximal step is a network (Monga, Li & Eldar, IEEE Signal Processing Magazine 2021): proximal gradient
  ("pgd") or MoDL's alternation of a denoiser and an exact data-consistency step solved by conjugate
  gradient (Aggarwal, Mani & Jacob, IEEE TMI 2019).

Both go through ``physics`` for every use of the operator (so per-sample masks, kernels and noise levels
work) and handle complex physics (MRI): the complex image is given to the backbone as 2C real channels by
:func:`~selfinv.physics.complex_to_channels` and converted back after, so the backbone has 2C channels in and
out. A backbone whose ``forward`` has a ``physics`` argument (every backbone of :mod:`selfinv.models`) receives
the physics, from which e.g. :class:`~selfinv.models.drunet.DRUNet` reads its noise level.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import nn

from selfinv._batched import dot
from selfinv._checks import check_either, check_ints
from selfinv.physics.base import LinearOperator
from selfinv.physics.mri import channels_to_complex, complex_to_channels
from selfinv.physics.solvers import estimate_lipschitz

__all__ = ["BackProjection", "Unrolled", "conjugate_gradient", "estimate_lipschitz"]

Init = str | Callable[[torch.Tensor, LinearOperator], torch.Tensor]
_INITS = ("adjoint", "pinv", "cg")
#: conjugate-gradient steps of ``init="cg"``: least squares stopped early, which regularises by iteration count
CG_INIT_STEPS = 10


# ---------------------------------------------------------------------- helpers
def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) real tensor shaped to broadcast against like (B, ...), in like's real dtype."""
    real = like.real.dtype if like.is_complex() else like.dtype
    return v.to(device=like.device, dtype=real).reshape(-1, *([1] * (like.ndim - 1)))


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x: torch.Tensor | None = None,
    n_iter: int = 10,
    tol: float = 1e-6,
) -> torch.Tensor:
    r"""Solve :math:`M x = b` for a Hermitian positive-definite M, for every sample of a batch at once.

    ``apply`` computes :math:`M x` on a batch; ``x`` is the starting point (zero by default). At most
    ``n_iter`` iterations with per-sample step sizes; a sample stops once its residual is below ``tol``
    times :math:`\|b\|` (its later steps are zero, so a batch gives the same results as its samples one by
    one). Real and complex tensors; differentiable through the iterations (autograd), as MoDL trains.

    Example:
        >>> import torch
        >>> from selfinv.models.wrappers import conjugate_gradient
        >>> d = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])           # two diagonal systems
        >>> x = conjugate_gradient(lambda v: d * v, torch.ones(2, 3), n_iter=5)
        >>> torch.allclose(x, 1 / d)
        True
    """
    x = torch.zeros_like(b) if x is None else x
    r = b - apply(x)
    p = r
    rs = dot(r, r)
    stop = (tol**2) * dot(b, b).clamp_min(torch.finfo(rs.dtype).tiny)
    for _ in range(n_iter):
        active = rs > stop
        if not bool(active.any()):
            break
        Ap = apply(p)
        pAp = dot(p, Ap)
        ok = active & (pAp > 0)
        alpha = torch.where(ok, rs / torch.where(ok, pAp, torch.ones_like(pAp)), torch.zeros_like(rs))
        x = x + _per_sample(alpha, x) * p
        r = r - _per_sample(alpha, r) * Ap
        rs_new = dot(r, r)
        pos = active & (rs > 0)
        beta = torch.where(pos, rs_new / torch.where(pos, rs, torch.ones_like(rs)), torch.zeros_like(rs))
        p = r + _per_sample(beta, p) * p
        rs = torch.where(active, rs_new, rs)
    return x


@torch.no_grad()
def _accepts_physics(module: nn.Module) -> bool:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "physics" or p.kind == p.VAR_KEYWORD for p in params)


def _in_channels(module: nn.Module) -> int | None:
    """The number of input channels of a backbone: its ``in_channels``, else that of its first Conv2d."""
    c = getattr(module, "in_channels", None)
    if isinstance(c, int):
        return c
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def _apply(
    module: nn.Module, takes_physics: bool, x: torch.Tensor, physics: LinearOperator, owner: str
) -> torch.Tensor:
    """Run an image-to-image backbone on x (complex images as 2C real channels); check channels and shape."""
    if x.ndim != 4:
        raise ValueError(
            f"{owner}: the backbone input must be an image (B, C, H, W), got shape {tuple(x.shape)}; "
            "for compressed sensing give the operator a (C, H, W) img_shape"
        )
    was_complex = x.is_complex()
    inp = complex_to_channels(x) if was_complex else x
    expected = _in_channels(module)
    if expected is not None and expected != inp.shape[1] and inp.shape[1] not in getattr(module, "kinds", ()):
        what = (
            f"{x.shape[1]} complex channels = {inp.shape[1]} real channels"
            if was_complex
            else f"{inp.shape[1]} channels"
        )
        raise ValueError(
            f"{owner}: the backbone {type(module).__name__} takes {expected} input channels but the image has {what}; "
            f"build it with in_channels = out_channels = {inp.shape[1]}"
        )
    out = module(inp, physics=physics) if takes_physics else module(inp)
    if out.shape != inp.shape:
        raise ValueError(
            f"{owner}: the backbone {type(module).__name__} maps {tuple(inp.shape)} to {tuple(out.shape)}; "
            "it must return an image of its input's shape (out_channels = in_channels)"
        )
    return channels_to_complex(out) if was_complex else out


def _initial(init: Init, y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
    if callable(init):
        return init(y, physics)
    if init == "adjoint":
        return physics.A_adjoint(y)
    if init == "pinv":
        return physics.A_dagger(y)
    if init == "cg":
        return physics.A_dagger(y, tol=0.0, max_iter=CG_INIT_STEPS)
    return y  # "none"


def _check_init(init, allowed: tuple[str, ...], owner: str) -> None:
    if not (callable(init) or init in allowed):
        raise ValueError(
            f"{owner}: init must be one of {', '.join(map(repr, allowed))} or a callable (y, physics) -> x0, got {init!r}"
        )


def _check_module(m, owner: str) -> None:
    if not isinstance(m, nn.Module):
        raise ValueError(f"{owner}: backbones must be torch.nn.Module instances, got {type(m).__name__}")


# ---------------------------------------------------------------------- back-projection
class BackProjection(nn.Module):
    r"""Back-projected network :math:`\hat x = f(A^H y)` (Jin et al., IEEE TIP 2017), or :math:`f(A^\dagger y)`.

    Args:
        backbone: an image-to-image ``nn.Module`` (e.g. :class:`~selfinv.models.unet.UNet`) with as many input
            and output channels as the image, 2C for a complex image of C channels (MRI). Checked at every
            call: a mismatch raises ``ValueError``.
        init: ``"adjoint"`` (:math:`x_0 = A^H y`), ``"pinv"`` (:math:`x_0 = A^\dagger y`, by conjugate gradient
            for operators without a closed form, e.g. tomography: slow), ``"cg"`` (10 conjugate-gradient steps on
            :math:`A^H A x = A^H y` from 0, or the closed form where the operator has one: least squares
            regularised by stopping early, the scale of :math:`A^\dagger y` at a fraction of its cost; radio
            interferometry, whose :math:`A^H A` stacks the redundant short baselines), ``"none"`` (:math:`x_0 = y`, for
            denoising) or a callable ``(y, physics) -> x0`` (e.g. ``lambda y, p: p.fbp(y)`` for tomography).

    Works for every operator of :mod:`selfinv.physics` whose image is (B, C, H, W) (compressed sensing with a
    (C, H, W) ``img_shape``; :math:`A^H y` of a sinogram or of CS measurements is image-shaped).

    Example:
        >>> import torch
        >>> from selfinv.physics import MRI
        >>> from selfinv.models.unet import UNet
        >>> from selfinv.models.wrappers import BackProjection
        >>> mask = torch.zeros(8, 8); mask[:, ::2] = 1
        >>> model = BackProjection(UNet(2, 2, depth=1, width=4))          # 1 complex channel = 2 real ones
        >>> y = MRI(mask).A(torch.randn(3, 1, 8, 8, dtype=torch.complex64))
        >>> x_hat = model(y, MRI(mask))
        >>> x_hat.dtype, x_hat.shape
        (torch.complex64, torch.Size([3, 1, 8, 8]))
    """

    def __init__(self, backbone: nn.Module, init: Init = "adjoint") -> None:
        super().__init__()
        _check_module(backbone, "BackProjection")
        _check_init(init, (*_INITS, "none"), "BackProjection")
        self.backbone = backbone
        self.init = init
        self._takes_physics = _accepts_physics(backbone)

    def forward(self, y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
        """Reconstruct :math:`\\hat x = f(x_0)` from measurements y."""
        return _apply(self.backbone, self._takes_physics, _initial(self.init, y, physics), physics, "BackProjection")

    def extra_repr(self) -> str:
        return f"init={self.init!r}"


# ---------------------------------------------------------------------- unrolled
class Unrolled(nn.Module):
    r"""Unrolled reconstruction network :math:`\hat x = f(y, A)` (Monga, Li & Eldar 2021), K iterations.

    With :math:`x_0` from ``init``, :math:`L = \|A\|^2` (per sample) and :math:`D_k` the denoiser of
    iteration k:

    * ``mode="pgd"`` (unrolled proximal gradient):
      :math:`x_{k+1} = D_k\big(x_k - \tfrac{\gamma_k}{L} A^H(A x_k - y)\big)`, learnable :math:`\gamma_k > 0`;
    * ``mode="modl"`` (MoDL, Aggarwal et al., IEEE TMI 2019): :math:`z_k = D_k(x_k)` and
      :math:`x_{k+1} = \arg\min_x \|Ax - y\|^2 + \lambda_k L \|x - z_k\|^2`, i.e. the solution of
      :math:`(A^H A + \lambda_k L\, I)\, x = A^H y + \lambda_k L\, z_k` by ``cg_iterations`` steps of batched
      conjugate gradient started at :math:`z_k`, differentiated through; learnable :math:`\lambda_k > 0`.

    Step sizes and weights are relative to :math:`L`, so the defaults suit any operator: ``step=1`` is the
    classical :math:`1/L` step and ``lam`` weighs the prior against the largest singular value. The output
    is :math:`x_K`. The parameters are stored as logarithms (``log_step``, ``log_lam``, one per iteration),
    so they stay positive under any optimiser update; :attr:`step` and :attr:`lam` give their values.

    Args:
        denoisers: one image-to-image ``nn.Module``, or a sequence of ``iterations`` of them (one per
            iteration). Channels: as for :class:`BackProjection` (2C for complex images).
        iterations: K, the number of unrolled iterations.
        mode: ``"pgd"`` or ``"modl"``.
        shared: with a single module, use it at every iteration (``True``, weight sharing as in MoDL) or
            make K independent copies of it (``False``). A sequence is always one module per iteration.
        step: initial :math:`\gamma_k` (pgd; :math:`\gamma_k < 2` keeps the gradient step stable).
        lam: initial :math:`\lambda_k` (modl).
        init: ``"pinv"`` (:math:`x_0 = A^\dagger y`), ``"adjoint"`` (:math:`A^H y`) or a callable ``(y, physics)``.
        cg_iterations: conjugate-gradient iterations per data-consistency step (modl).
        cg_tol: relative residual at which a sample's conjugate gradient stops early (modl).
        lipschitz: :math:`L`, a number or a (B,) tensor; ``None`` estimates it per sample at every call by
            power iteration (:func:`estimate_lipschitz`, ``power_iterations`` applications of :math:`A^H A`). Pass 1
            for masks with values in [0, 1], MRI and denoising to skip the estimate.

    The denoiser receives ``physics`` when its ``forward`` accepts it (a noise-conditioned DRUNet reads
    ``physics.noise.sigma``).

    Example:
        >>> import torch
        >>> from selfinv.physics import Inpainting
        >>> from selfinv.models.dncnn import DnCNN
        >>> from selfinv.models.wrappers import Unrolled
        >>> mask = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
        >>> physics = Inpainting(mask)                               # one mask per sample
        >>> model = Unrolled(DnCNN(1, 1, depth=3, width=8), iterations=3, mode="modl", lipschitz=1.0)
        >>> x_hat = model(physics.A(torch.rand(2, 1, 8, 8)), physics)
        >>> x_hat.shape, bool((model.lam > 0).all())
        (torch.Size([2, 1, 8, 8]), True)
    """

    def __init__(
        self,
        denoisers: nn.Module | Sequence[nn.Module],
        iterations: int = 5,
        mode: str = "pgd",
        shared: bool = True,
        step: float = 1.0,
        lam: float = 0.05,
        init: Init = "pinv",
        cg_iterations: int = 10,
        cg_tol: float = 1e-6,
        lipschitz: float | torch.Tensor | None = None,
        power_iterations: int = 20,
    ) -> None:
        super().__init__()
        check_ints("Unrolled", iterations=iterations, cg_iterations=cg_iterations, power_iterations=power_iterations)
        check_either(mode, ("pgd", "modl"), "mode", "Unrolled")
        for name, v in (("step", step), ("lam", lam), ("cg_tol", cg_tol)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"Unrolled: {name} must be a finite number > 0, got {v!r}")
        _check_init(init, _INITS, "Unrolled")
        if lipschitz is not None:
            lt = torch.as_tensor(lipschitz, dtype=torch.float64)
            if lt.ndim > 1 or lt.is_complex() or not bool(torch.isfinite(lt).all() and (lt > 0).all()):
                raise ValueError(
                    f"Unrolled: lipschitz must be None, a number > 0 or a (B,) tensor of them, got {lipschitz!r}"
                )
        if isinstance(denoisers, nn.Module) and not isinstance(denoisers, nn.ModuleList):
            _check_module(denoisers, "Unrolled")
            mods = [denoisers] if shared else [copy.deepcopy(denoisers) for _ in range(iterations)]
        elif isinstance(denoisers, (Sequence, nn.ModuleList)):
            mods = list(denoisers)
            for m in mods:
                _check_module(m, "Unrolled")
            if len(mods) != iterations:
                raise ValueError(
                    f"Unrolled: got {len(mods)} denoisers for {iterations} iterations (give one, or one per iteration)"
                )
        else:
            raise ValueError(
                f"Unrolled: denoisers must be an nn.Module or a sequence of them, got {type(denoisers).__name__}"
            )
        self.denoisers = nn.ModuleList(mods)
        self._takes_physics = [_accepts_physics(m) for m in mods]
        self.iterations, self.mode, self.init = iterations, mode, init
        self.cg_iterations, self.cg_tol, self.power_iterations = cg_iterations, float(cg_tol), power_iterations
        self.lipschitz = lipschitz
        if mode == "pgd":
            self.log_step = nn.Parameter(torch.full((iterations,), math.log(step)))
        else:
            self.log_lam = nn.Parameter(torch.full((iterations,), math.log(lam)))

    @property
    def step(self) -> torch.Tensor:
        r"""The step sizes :math:`\gamma_k > 0` (relative to :math:`1/L`), shape (K,)."""
        return self.log_step.exp()

    @property
    def lam(self) -> torch.Tensor:
        r"""The data-consistency weights :math:`\lambda_k > 0` (relative to :math:`L`), shape (K,)."""
        return self.log_lam.exp()

    @property
    def shared(self) -> bool:
        """Whether one denoiser is used at every iteration."""
        return len(self.denoisers) == 1

    def _denoise(self, k: int, x: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
        i = 0 if self.shared else k
        return _apply(self.denoisers[i], self._takes_physics[i], x, physics, "Unrolled")

    def forward(self, y: torch.Tensor, physics: LinearOperator) -> torch.Tensor:
        """Run the K unrolled iterations from measurements y."""
        x = _initial(self.init, y, physics)
        aty = physics.A_adjoint(y)
        if self.lipschitz is None:
            L = estimate_lipschitz(physics, x, self.power_iterations)
        else:
            L = torch.as_tensor(self.lipschitz).reshape(-1)
            if L.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"Unrolled: lipschitz has {L.shape[0]} values for a batch of {x.shape[0]}")
            L = L.expand(x.shape[0])
        L = _per_sample(L, x)
        for k in range(self.iterations):
            if self.mode == "pgd":
                gamma = self.log_step[k].exp().to(L.dtype) / L
                x = self._denoise(k, x - gamma * (physics.normal(x) - aty), physics)
            else:
                z = self._denoise(k, x, physics)
                w = self.log_lam[k].exp().to(L.dtype) * L
                x = conjugate_gradient(
                    lambda v, w=w: physics.normal(v) + w * v, aty + w * z, z, self.cg_iterations, self.cg_tol
                )
        return x

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}, mode={self.mode!r}, shared={self.shared}, init={self.init!r}"
