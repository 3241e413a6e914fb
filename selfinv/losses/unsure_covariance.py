r"""UNSURE for stationary correlated noise of unknown covariance :math:`\Sigma = K \star K` (:class:`UNSURECovariance`).

The theory, the start and the step of every variant are in :mod:`selfinv.losses.unsure` (which re-exports this
class); :func:`autocorrelation` and :func:`kernel_for` map the learned kernel :math:`K` to :math:`\Sigma` and back.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from selfinv.losses.divergence import shifted_divergences
from selfinv.losses.unsure_base import UNSURE_INFO, Multipliers, noise_variance, optional_positive
from selfinv.noise.wavelet import estimate_covariance


def autocorrelation(kernel: torch.Tensor) -> torch.Tensor:
    r""":math:`\Sigma[o] = \sum_p K[p]\,K[p+o]` for a (k, k) kernel: a (2k−1, 2k−1) kernel, offset 0 at the centre.

    The covariance of :math:`K \circledast \varepsilon` for white :math:`\varepsilon`; symmetric, and its
    Fourier transform is :math:`|\hat K|^2 \ge 0`.
    """
    k = kernel.shape[-1]
    padded = F.pad(kernel[None, None], (k - 1, k - 1, k - 1, k - 1))
    return F.conv2d(padded, kernel[None, None])[0, 0]


def kernel_for(covariance: torch.Tensor, iterations: int = 100) -> torch.Tensor:
    r"""A (r+1, r+1) kernel :math:`K` whose :math:`K \star K` is closest to a (2r+1, 2r+1) covariance kernel (least squares).

    The fit is not convex: L-BFGS from a few starts (white :math:`\sqrt{\Sigma[0]}\,\delta` at each position
    of :math:`K`, flat, and the (r+1)² window of the zero-phase square root of the spectrum), the best kept. A
    target that is not positive semi-definite gets a nearby factorable kernel.
    """
    r = covariance.shape[-1] // 2
    target = covariance.detach().to(torch.float64).cpu()
    if r == 0 or float(target[r, r]) <= 0:
        return target[r:r + 1, r:r + 1].clamp_min(0).sqrt().reshape(1, 1).to(covariance.device)
    scale = float(target[r, r])
    unit = target / scale
    size = 4 * r + 4  # the zero-phase square root of the (clipped) spectrum, on a grid that holds it
    grid = torch.zeros(size, size, dtype=torch.float64)
    grid[: 2 * r + 1, : 2 * r + 1] = unit
    root = torch.fft.ifft2(torch.fft.fft2(torch.roll(grid, (-r, -r), (0, 1))).real.clamp_min(0).sqrt()).real
    root = torch.roll(root, (r // 2, r // 2), (0, 1))[: r + 1, : r + 1]
    starts = [root, torch.full((r + 1, r + 1), 1.0 / (r + 1), dtype=torch.float64)]
    for p in range(r + 1):
        for q in range(r + 1):
            white = torch.zeros(r + 1, r + 1, dtype=torch.float64)
            white[p, q] = 1.0
            starts.append(white)
    best, best_value = starts[0], math.inf
    with torch.enable_grad():
        for start in starts:
            kernel = start.clone().requires_grad_(True)
            opt = torch.optim.LBFGS([kernel], lr=1.0, max_iter=iterations, tolerance_grad=1e-12, tolerance_change=1e-15,
                                    line_search_fn="strong_wolfe")

            def closure(kernel=kernel, opt=opt):
                opt.zero_grad()
                value = (autocorrelation(kernel) - unit).pow(2).sum()
                value.backward()
                return value

            opt.step(closure)
            value = float((autocorrelation(kernel.detach()) - unit).pow(2).sum())
            if value < best_value:
                best, best_value = kernel.detach(), value
    return (best * math.sqrt(scale)).to(covariance.device)


class UNSURECovariance(Multipliers):
    r"""UNSURE for stationary correlated noise: a learned covariance :math:`\Sigma = K \star K` on a (2r+1)×(2r+1) window.

    .. math:: \frac1m\Big[\|y - h(y)\|^2 + 2\sum_{o}\Sigma[o]\sum_i \frac{\partial h_i}{\partial y_{i+o}}(y)\Big],
        \qquad \Sigma[o] = \sum_p K[p]\,K[p+o],

    with offsets acting circularly on the last two axes of ``y`` (the same window for every channel;
    channels are not coupled). On volumes (B, C, D, H, W) the window is therefore in-plane: :math:`\Sigma`
    covers offsets within each z slice and assumes the slices' noises uncorrelated (stripe or line noise of
    each plane; noise correlated along z is not modelled). ``kernel`` is the learned (r+1, r+1) kernel :math:`K` (the paper's
    parametrisation: noise :math:`K \circledast \varepsilon` has covariance :math:`K \star K`), and ``eta`` the
    (2r+1, 2r+1) covariance kernel :math:`\Sigma` (offset 0 at the centre) it gives: symmetric and positive
    semi-definite by construction (:math:`\hat\Sigma = |\hat K|^2 \ge 0`), so no clamping is needed.

    The ascent is a gradient step on :math:`K` of the Lagrangian's penalty
    :math:`P(K) = \sum_o \Sigma[o]\,c[o]` (:math:`c[o]` the offset-:math:`o` constraint per measured entry):
    :math:`K \leftarrow K + \frac{s\lambda_t}{4}\nabla_K P`, the scaling under which a white kernel
    :math:`K = \sqrt\eta\,\delta` moves exactly as :class:`UNSURE` does. The default start is the robust
    covariance estimate of the first batch (:func:`~selfinv.noise.estimate_covariance`, a
    median-based variogram) factored as :math:`K \star K` (:func:`kernel_for`); a white noise estimate would
    miss most of the power of strongly correlated noise (a 3×3 box leaves 1/9 of the variance in the finest
    details). ``sigma_init`` gives a white start :math:`K = \sigma_0\delta` instead. For
    :math:`\Sigma` the saddle point of a linear model :math:`f(y) = Wy + c` has
    :math:`W = I - \Sigma C_y^{-1}` and :math:`\sum_i W_{i,i+o} = 0` for every offset; with little signal
    (:math:`C_y \to \Sigma`) this gives :math:`\Sigma \to` the noise covariance. The MC estimate of all
    offsets uses one perturbed pass: :math:`\sum_i b_{i+o}(h(y+\tau b) - h(y))_i/\tau`.

    :meth:`monitored` gives ``eta_centre`` (:math:`\Sigma[0]`, the per-pixel variance) and ``eta_sum``
    (:math:`\sum_o\Sigma[o] = \hat K(0)^2`, the noise power at frequency 0).

    Args:
        radius: r: :math:`\Sigma` on a (2r+1)² window, :math:`K` of size (r+1)² (default 1; the paper's
            "kernel 3" experiment, a 3×3 :math:`K`, is ``radius=2``).
        sigma_init: a white start :math:`\sqrt{\Sigma[0]}`; ``None`` (default) estimates the covariance from
            the first training batch.
        step_size, momentum, divergence, tau, tau_rel, n_probes: as :class:`UNSURE`.

    Example:
        >>> import torch
        >>> from selfinv.losses.unsure import UNSURECovariance
        >>> loss = UNSURECovariance(radius=1, sigma_init=0.1)
        >>> loss.eta
        tensor([[0.0000, 0.0000, 0.0000],
                [0.0000, 0.0100, 0.0000],
                [0.0000, 0.0000, 0.0000]], dtype=torch.float64)
        >>> loss.kernel.shape
        torch.Size([2, 2])
    """

    info = replace(
        UNSURE_INFO,
        unknown_coloured_noise=True,
        reference="Tachella, Davies & Jacques, UNSURE, ICLR 2025 (unknown noise covariance)",
    )
    _param_name = "kernel"

    def __init__(
        self,
        radius: int = 1,
        sigma_init: float | None = None,
        # the ascent and the divergence, as every variant
        step_size: float = 3e-3, momentum: float = 0.0, divergence: str = "mc",
        tau: float | torch.Tensor | None = None, tau_rel: float = 1e-2, n_probes: int = 1,
    ) -> None:
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"UNSURECovariance: radius must be a non-negative integer, got {radius}")
        s0 = optional_positive(sigma_init, "sigma_init", "UNSURECovariance")
        self.radius = radius
        super().__init__(self._white(0.0 if s0 is None else s0), s0 is not None, step_size, momentum, divergence, tau,
                         tau_rel, n_probes)

    def _white(self, sigma) -> torch.Tensor:
        kernel = torch.zeros(self.radius + 1, self.radius + 1, dtype=torch.float64)
        kernel[0, 0] = sigma
        return kernel

    @property
    def sigma(self) -> torch.Tensor:
        r""":math:`\sqrt{\Sigma[0]}`, the per-pixel noise standard deviation the centre stands for."""
        return self.eta[self.radius, self.radius].sqrt()

    def monitored(self) -> dict[str, float]:
        return {"eta_centre": float(self.eta[self.radius, self.radius]), "eta_sum": float(self.eta.sum())}

    def _initial(self, y, mask):
        if y.ndim >= 3 and not y.is_complex() and min(y.shape[-2:]) > self.radius + 1:
            covariance = estimate_covariance(y, self.radius, mask)
            if bool(torch.isfinite(covariance).all()) and float(covariance[self.radius, self.radius]) > 0:
                return kernel_for(covariance).to(y.device)
        return self._white(noise_variance(y, mask).sqrt()).to(y.device)

    def _eta_of(self, kernel):
        return autocorrelation(kernel)

    def _param_of(self, eta):
        return kernel_for(eta)

    def _constraints(self, ctx, y, h, h_y, mask):
        return shifted_divergences(h, y, self.radius, self.divergence, h_y, mask=mask, **self._div_kwargs(ctx))

    def _direction(self, c):
        with torch.enable_grad():
            kernel = self.kernel.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad((autocorrelation(kernel) * c).sum(), kernel)
        return grad / 4
