"""Pixel losses (SPEC §5.1, as BasicSR `basic_loss.py`).

Inputs: NCHW float tensors of equal shape (`pred` the network output, `target` the ground truth).
Without `weight` the loss is the mean over all N·C·H·W elements. With an element weight (NCHW, or N1HW to
weight every channel alike) it is the mean over the weighted region: sum(weight · err) / sum(weight), where a
one-channel weight counts C times in the denominator. A weight that is zero everywhere gives 0/0 (NaN),
as in BasicSR.
"""

from __future__ import annotations

from torch import Tensor

from esrgan.config import PixelLossConfig

__all__ = ["l1_loss", "mse_loss", "pixel_loss"]


def _check_shapes(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def _weighted_mean(error: Tensor, weight: Tensor | None) -> Tensor:
    if weight is None:
        return error.mean()
    if weight.dim() != error.dim() or weight.size(1) not in (1, error.size(1)):
        raise ValueError(
            f"weight of shape {tuple(weight.shape)} does not fit a loss of shape {tuple(error.shape)}: "
            "expected N×C×H×W or N×1×H×W"
        )
    denominator = weight.sum() if weight.size(1) > 1 else weight.sum() * error.size(1)
    return (error * weight).sum() / denominator


def l1_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean absolute error: mean(|pred − target|), optionally weighted (see module docstring)."""
    _check_shapes(pred, target)
    return _weighted_mean((pred - target).abs(), weight)


def mse_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean squared error: mean((pred − target)²), optionally weighted (see module docstring)."""
    _check_shapes(pred, target)
    return _weighted_mean((pred - target).square(), weight)


_CRITERIA = {"l1": l1_loss, "mse": mse_loss}


def pixel_loss(sr: Tensor, gt: Tensor, cfg: PixelLossConfig) -> Tensor:
    """`cfg.weight · criterion(sr, gt)`: the generator's pixel term (ESRGAN: 1e-2·L1 in the GAN stage)."""
    return cfg.weight * _CRITERIA[cfg.criterion](sr, gt)
