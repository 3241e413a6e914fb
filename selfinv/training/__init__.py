"""Training: the fit loop, self-supervised validation, checkpoints, callbacks, metrics, DDP."""

from selfinv.training.callbacks import Callback, Checkpointer, CSVLogger, EarlyStopping, Progress, TensorBoardLogger
from selfinv.training.checkpoint import load_checkpoint, save_checkpoint
from selfinv.training.fit import FitConfig, TrainState, default_callbacks, fit, pick_device
from selfinv.training.metrics import psnr, ssim
from selfinv.training.validation import baseline, validate

__all__ = [
    "CSVLogger",
    "Callback",
    "Checkpointer",
    "EarlyStopping",
    "FitConfig",
    "Progress",
    "TensorBoardLogger",
    "TrainState",
    "baseline",
    "default_callbacks",
    "fit",
    "load_checkpoint",
    "pick_device",
    "psnr",
    "save_checkpoint",
    "ssim",
    "validate",
]
