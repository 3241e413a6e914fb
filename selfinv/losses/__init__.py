"""Self-supervised losses: ``loss(y, physics, model, x=None, y2=None, generator=None) -> scalar``.

:data:`LOSSES` maps config names to loss classes; every class carries a :class:`LossInfo` (the
tutorial's summary table: network evaluations, pairs, MMSE-optimality, unknown noise, A ≠ I).
:func:`summary_table` renders it. A new loss is its module, one line in :data:`LOSSES` and one case in the
contract tests: the advisor, the config schema and ``selfinv config init`` read the class (its ``info``,
``needs_backbone``, ``default_backbone`` and :meth:`~selfinv.losses.Loss.example`), never a list of names.
"""

from selfinv.losses.autoencoder import AutoencoderLoss
from selfinv.losses.base import Estimator, Loss, LossContext, LossInfo, SumLoss, estimate, unwrap
from selfinv.losses.blindspot import BlindSpot
from selfinv.losses.ei import EI, REI
from selfinv.losses.masking import Noise2Self, Noise2Void
from selfinv.losses.moi import MOI
from selfinv.losses.n2n import Noise2Noise
from selfinv.losses.neighbor import Neighbor2Neighbor
from selfinv.losses.noisier2noise import Noisier2Noise
from selfinv.losses.r2r import R2R
from selfinv.losses.score import Noise2Score
from selfinv.losses.splitting import Splitting
from selfinv.losses.supervised import MC, Supervised
from selfinv.losses.sure import SURE
from selfinv.losses.unsure import UNSURE, UNSURECovariance, UNSUREPoissonGaussian

#: every loss by config name (the CLI, the advisor and the contract tests read this)
LOSSES: dict[str, type[Loss]] = {
    "supervised": Supervised,
    "mc": MC,
    "noise2noise": Noise2Noise,
    "r2r": R2R,
    "noisier2noise": Noisier2Noise,
    "sure": SURE,
    "unsure": UNSURE,
    "unsure_covariance": UNSURECovariance,
    "unsure_pg": UNSUREPoissonGaussian,
    "noise2score": Noise2Score,
    "noise2void": Noise2Void,
    "noise2self": Noise2Self,
    "neighbor2neighbor": Neighbor2Neighbor,
    "blind_spot": BlindSpot,
    "autoencoder": AutoencoderLoss,
    "splitting": Splitting,
    "moi": MOI,
    "ei": EI,
    "rei": REI,
}


def _mark(flag: bool) -> str:
    return "✓" if flag else ""


def summary_table(names: list[str] | None = None) -> str:
    """The tutorial's summary table (part 2), generated from the registry, as Markdown.

    Losses whose properties depend on their arguments (MOI, EI, splitting) are shown as their
    :meth:`~selfinv.losses.Loss.example`.
    """
    rows = [
        "| loss | train evals | test evals | single y | MMSE optimal | unknown separable noise | "
        "unknown coloured noise | A ≠ I | noise models |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names or list(LOSSES):
        info = LOSSES[name].example().info
        noise = "any" if info.noise_models is None else ", ".join(k.__name__ for k in info.noise_models)
        rows.append(
            f"| {name} | {info.train_evals} | {info.test_evals} | {_mark(info.single_y)} | {_mark(info.mmse_optimal)} | "
            f"{_mark(info.unknown_separable_noise)} | {_mark(info.unknown_coloured_noise)} | "
            f"{_mark(info.general_operator)} | {noise} |"
        )
    return "\n".join(rows)


__all__ = [
    "LOSSES",
    "MC",
    "MOI",
    "R2R",
    "SURE",
    "UNSURE",
    "EI",
    "REI",
    "AutoencoderLoss",
    "BlindSpot",
    "Estimator",
    "Loss",
    "LossContext",
    "LossInfo",
    "Neighbor2Neighbor",
    "Noise2Noise",
    "Noise2Score",
    "Noise2Self",
    "Noise2Void",
    "Noisier2Noise",
    "Splitting",
    "SumLoss",
    "Supervised",
    "UNSURECovariance",
    "UNSUREPoissonGaussian",
    "estimate",
    "summary_table",
    "unwrap",
]
