"""LDL: the locally discriminative artifact loss of Liang et al. (CVPR 2022, "Details or Artifacts: A Locally
Discriminative Learning Approach to Realistic Image Super-Resolution").

GAN training makes both fine detail and artifacts; artifacts are where the residual |gt − sr| is large *and*
locally irregular, and where the generator is worse than its own stable average (the EMA copy). The artifact
map, per pixel (residuals summed over the colour channels):

    r      = Σ_c |gt − sr|,     r_ema = Σ_c |gt − sr_ema|
    patch  = var(r over the whole patch) ** (1/5)                    (one value per image)
    local  = var(r over the k×k window around the pixel)             (reflect padding; unbiased variance)
    M      = patch · local,  and M = 0 where r < r_ema                (G already beats its EMA there)

    loss   = weight · mean|M·sr − M·gt|

Differences from the authors' code: the map is computed without gradients (it weights the L1 loss and is not
itself optimised), and the variances of the local windows come from box filters of r and r² (the same values
as unfolding the windows, without the k²-times larger tensor).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["artifact_map", "artifact_loss"]


def _local_variance(r: Tensor, kernel_size: int) -> Tensor:
    """Unbiased variance of `r` (N×1×H×W) over each pixel's k×k window, reflect-padded."""
    pad = kernel_size // 2
    padded = F.pad(r, (pad, pad, pad, pad), mode="reflect")
    n = kernel_size * kernel_size
    mean = F.avg_pool2d(padded, kernel_size, stride=1)
    mean_sq = F.avg_pool2d(padded * padded, kernel_size, stride=1)
    return ((mean_sq - mean * mean) * (n / (n - 1))).clamp_min_(0)


@torch.no_grad()
def artifact_map(gt: Tensor, sr: Tensor, sr_ema: Tensor, kernel_size: int = 7) -> Tensor:
    """The LDL artifact map ``M`` (N×1×H×W, no gradient) of `sr` against `gt`, given the EMA's `sr_ema`."""
    if not gt.shape == sr.shape == sr_ema.shape:
        raise ValueError(
            f"shapes differ: gt {tuple(gt.shape)}, sr {tuple(sr.shape)}, ema {tuple(sr_ema.shape)}"
        )
    gt, sr, sr_ema = gt.float(), sr.float(), sr_ema.float()
    residual = (gt - sr).abs().sum(dim=1, keepdim=True)
    residual_ema = (gt - sr_ema).abs().sum(dim=1, keepdim=True)
    patch = residual.flatten(1).var(dim=1).pow(0.2).view(-1, 1, 1, 1)
    weight = patch * _local_variance(residual, kernel_size)
    return weight.masked_fill_(residual < residual_ema, 0.0)


def artifact_loss(gt: Tensor, sr: Tensor, sr_ema: Tensor, *, weight: float, kernel_size: int = 7) -> Tensor:
    """``weight · mean|M·sr − M·gt|`` with ``M = artifact_map(gt, sr, sr_ema)``; gradients flow via `sr`."""
    m = artifact_map(gt, sr, sr_ema, kernel_size)
    return weight * (m * (sr.float() - gt.float())).abs().mean()
