"""SSIM as in Wang et al.'s ``ssim_index.m`` (SPEC §7.3) — the SSIM of the published SR tables.

Per channel, on float64 data on the input's scale (0…L, L = 255 for uint8):

    μ = w∗x,  σ² = w∗x² − μ²,  σ_xy = w∗(xy) − μ_x·μ_y      (w: 11×11 Gaussian, σ = 1.5, sum 1)
    map = (2μ_xμ_y + C1)(2σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)),  C1 = (0.01L)², C2 = (0.03L)²

with "valid" filtering (only where the whole window fits, i.e. 5 pixels less on every side); the score is the
mean of the map, and for RGB the mean of the three channel scores. L stays 255 for Y as well. This is *not*
MATLAB's built-in ``ssim()`` (R2014a+), which pads and gives different numbers.

The input contract (dtype, crop, Y conversion and rounding, gray images) is the one of
:mod:`esrgan.metrics.psnr`. The Gaussian is applied separably (two 1-D passes); the result equals the 11×11
``filter2(window, x, 'valid')`` to ~1e-13.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate1d

from esrgan.metrics.psnr import prepare_pair, prepare_pair_torch

__all__ = ["ssim", "ssim_torch", "gaussian_kernel_1d", "WINDOW_SIZE", "WINDOW_SIGMA"]

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5


def gaussian_kernel_1d(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is MATLAB ``fspecial('gaussian', size, sigma)``."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(planes: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation of ``…×H×W`` planes over the last two axes, keeping the 'valid' part."""
    r = len(kernel) // 2
    out = correlate1d(planes, kernel, axis=-2, mode="constant")
    out = correlate1d(out, kernel, axis=-1, mode="constant")
    return out[..., r:-r, r:-r]


def _ssim_per_channel(x: np.ndarray, y: np.ndarray, peak: float) -> np.ndarray:
    """Mean SSIM of each channel of two ``H×W×C`` float64 arrays; returns shape ``(C,)``."""
    h, w = x.shape[:2]
    if h < WINDOW_SIZE or w < WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs at least {WINDOW_SIZE}×{WINDOW_SIZE} pixels after cropping, got {w}×{h}"
        )
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    x = np.moveaxis(x, -1, 0)
    y = np.moveaxis(y, -1, 0)
    # All five local statistics of all channels in one filtering call: 5 × C × H × W.
    stats = _filter_valid(np.stack([x, y, x * x, y * y, x * y]), gaussian_kernel_1d())
    mu_x, mu_y, xx, yy, xy = stats
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_xx, sigma_yy, sigma_xy = xx - mu_xx, yy - mu_yy, xy - mu_xy
    ssim_map = ((2 * mu_xy + c1) * (2 * sigma_xy + c2)) / ((mu_xx + mu_yy + c1) * (sigma_xx + sigma_yy + c2))
    return ssim_map.mean(axis=(1, 2))


def ssim(
    sr: np.ndarray,
    hr: np.ndarray,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    y_rounding: bool = True,
    max_value: float | None = None,
) -> float:
    """Structural similarity (Wang et al. 2004, ``ssim_index.m``); 1.0 for identical images.

    Args:
        sr, hr: ``H×W×3`` RGB (or ``H×W`` gray) images, same shape and dtype: ``uint8``, or ``uint16`` with
            ``max_value``. Floats are refused (quantise first).
        crop_border: pixels removed from each side before filtering.
        y_channel: SSIM of MATLAB BT.601 Y (default); ``False``: mean of the R, G, B SSIMs.
        y_rounding: round Y like MATLAB on uint8 images (default); ``False`` = float Y (BasicSR).
        max_value: dynamic range L; default 255 for uint8, required for uint16.
    """
    a, b, peak = prepare_pair(
        sr, hr, crop_border=crop_border, y_channel=y_channel, y_rounding=y_rounding, max_value=max_value
    )
    return float(np.mean(_ssim_per_channel(a, b, peak)))


def ssim_torch(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    y_rounding: bool = False,
) -> torch.Tensor:
    """Per-image SSIM of ``N×C×H×W`` float tensors in [0, 1] (L = 1); returns shape ``(N,)``.

    Same formula and window as :func:`ssim` (valid filtering, mean over channels), computed on the float data
    as given (no clamping or quantisation) in the tensors' dtype; float Y unless ``y_rounding=True`` (MATLAB
    uint8 Y, :func:`ssim`'s default). On uint8-quantised inputs it equals ``ssim(..., y_rounding=y_rounding)``
    of the uint8 images to within 1e-5 (float32) — tested.
    """
    a, b = prepare_pair_torch(sr, hr, crop_border=crop_border, y_channel=y_channel, y_rounding=y_rounding)
    n, c, h, w = a.shape
    if h < WINDOW_SIZE or w < WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs at least {WINDOW_SIZE}×{WINDOW_SIZE} pixels after cropping, got {w}×{h}"
        )
    g = torch.as_tensor(gaussian_kernel_1d(), dtype=a.dtype, device=a.device)
    planes = torch.cat([a, b, a * a, b * b, a * b], dim=1)  # N × 5C × H × W
    k = 5 * c
    # Valid, separable, one group per plane (a depthwise conv is ~4× faster on CPU than N·5C single-plane
    # images through one 1-channel filter).
    stats = F.conv2d(planes, g.view(1, 1, -1, 1).expand(k, 1, WINDOW_SIZE, 1), groups=k)
    stats = F.conv2d(stats, g.view(1, 1, 1, -1).expand(k, 1, 1, WINDOW_SIZE), groups=k)
    mu_x, mu_y, xx, yy, xy = stats.reshape(n, 5, c, h - WINDOW_SIZE + 1, w - WINDOW_SIZE + 1).unbind(1)
    c1, c2 = 0.01**2, 0.03**2
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    ssim_map = ((2 * mu_xy + c1) * (2 * (xy - mu_xy) + c2)) / (
        (mu_xx + mu_yy + c1) * (xx - mu_xx + yy - mu_yy + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3))
