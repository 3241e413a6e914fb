r"""Statistics of the training inputs, to warn when a model is applied to data unlike them.

A network learns a map on the values it was trained on. Applied to inputs of another scale, e.g. a
model trained on 8-bit photographs (normalised to [0, 1]) given a float CT file in Hounsfield units
(values in the hundreds), it still returns numbers, just meaningless ones. Checkpoints therefore
carry :func:`input_statistics` of the training measurements y (in normalised units), and
``selfinv reconstruct`` compares every input's statistics with them (:func:`domain_warning`).

Statistics. Of the values, or of the magnitude :math:`|y|` of complex data: the robust percentiles
:math:`p_1, p_{50}, p_{99}`, the mean and the standard deviation, from at most ``max_values`` entries
drawn with a fixed-seed :class:`torch.Generator` (so the cost is bounded and the result
reproducible).

Comparison. With the central ranges :math:`r = p_{99} - p_1` of training (t) and input (i),

.. math::

    \text{beyond} = \max(p_1^t - p_1^i,\; p_{99}^i - p_{99}^t,\; 0) / r^t,
    \qquad \rho = r^i / r^t,

a ``warning:`` is given when :math:`\text{beyond} > 1/2` (the input's central 98 % reaches more than
half a training range past the training's) or :math:`\rho > 4`, a ``note:`` when :math:`\rho < 1/8`
(a much narrower range: another scale or an almost constant input). Inputs like the training data
(other images of the same kind, the same noise) stay well inside both bounds.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> train = input_statistics(torch.rand(8, 1, 32, 32, generator=g))
    >>> round(train["p50"], 1), round(train["p99"], 2)
    (0.5, 0.99)
    >>> domain_warning(train, input_statistics(torch.rand(1, 1, 32, 32, generator=g)), "photo.png") is None
    True
    >>> domain_warning(train, input_statistics(300 * torch.rand(1, 1, 32, 32, generator=g)), "ct.tif")[:22]
    'warning: ct.tif: its v'
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["STAT_KEYS", "domain_warning", "input_statistics"]

#: the keys of :func:`input_statistics`
STAT_KEYS = ("p1", "p50", "p99", "mean", "std")
#: at most this many values enter the statistics
MAX_VALUES = 1_000_000
#: thresholds of :func:`domain_warning` (module docstring)
BEYOND, WIDER, NARROWER = 0.5, 4.0, 1 / 8


def input_statistics(y: Any, max_values: int = MAX_VALUES, seed: int = 0) -> dict[str, float]:
    """Robust statistics of ``y`` (a tensor or array; complex: of the magnitude) as a JSON-ready dict.

    Returns:
        ``{"p1", "p50", "p99", "mean", "std"}`` as floats; at most ``max_values`` entries are used,
        drawn with replacement by a generator seeded with ``seed``.
    """
    t = torch.as_tensor(y).detach()
    if t.numel() == 0:
        raise ValueError("input_statistics: y is empty")
    if t.is_complex():
        t = t.abs()
    flat = t.reshape(-1)
    if flat.numel() > max_values:
        g = torch.Generator().manual_seed(seed)
        flat = flat[torch.randint(0, flat.numel(), (max_values,), generator=g).to(flat.device)]
    v = flat.to(device="cpu", dtype=torch.float64)
    q = torch.quantile(v, torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64))
    std = float(v.std()) if v.numel() > 1 else 0.0
    return {"p1": float(q[0]), "p50": float(q[1]), "p99": float(q[2]), "mean": float(v.mean()), "std": std}


def _range(s: dict[str, float]) -> float:
    scale = max(abs(s["p1"]), abs(s["p99"]), 1.0)
    return max(s["p99"] - s["p1"], 4 * s.get("std", 0.0), 1e-9 * scale)


def domain_warning(train_stats: dict[str, float] | None, input_stats: dict[str, float], name: str) -> str | None:
    """One ``warning:``/``note:`` line when ``input_stats`` fall far outside ``train_stats``, else None.

    Both in normalised units (the model's). ``train_stats`` None (a checkpoint without statistics):
    None.
    """
    if not train_stats or any(k not in train_stats for k in ("p1", "p99")):
        return None
    r_t, r_i = _range(train_stats), _range(input_stats)
    beyond = max(train_stats["p1"] - input_stats["p1"], input_stats["p99"] - train_stats["p99"], 0.0) / r_t
    ratio = r_i / r_t
    seen = (f"1st-99th percentile {input_stats['p1']:.3g} to {input_stats['p99']:.3g}, training data "
            f"{train_stats['p1']:.3g} to {train_stats['p99']:.3g}, in the model's normalised units")
    if beyond > BEYOND or ratio > WIDER:
        return (f"warning: {name}: its values lie far outside those the model was trained on ({seen}); the result "
                "is unreliable: check the file's units and scaling (e.g. a float file in other units than the "
                "training data's)")
    if ratio < NARROWER:
        return (f"note: {name}: its values span a much narrower range than the training data's ({seen}); "
                "check the file's units and scaling if the result looks wrong")
    return None
