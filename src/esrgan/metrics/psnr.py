"""PSNR, MSE and PIRM's RMSE, MATLAB conventions (SPEC §7.1, §7.2, §7.5).

Contract of the numpy metrics (shared with :mod:`esrgan.metrics.ssim`):

* ``sr`` and ``hr``: same shape, same dtype; ``H×W×3`` **RGB** (channel last), or ``H×W`` / ``H×W×1`` gray.
  ``uint8`` (peak 255), or ``uint16`` with an explicit ``max_value`` (65535 for 16-bit data, 4095 for 12-bit
  data stored in uint16, …). Float arrays are refused: quantise SR output the way it is saved
  (``np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)``) so that the score is the score of the PNG.
* ``crop_border`` pixels are removed from every side before anything else.
* ``y_channel=True``: compare the BT.601 luma Y of MATLAB ``rgb2ycbcr`` (:func:`esrgan.ops.color.rgb_to_y`);
  ``y_rounding=True`` rounds Y to the integer grid of the input (what MATLAB returns for integer images; the
  published tables use it). ``y_rounding=False`` keeps float Y (BasicSR's convention; bicubic ×4 Set5 then
  reads 28.43 dB instead of 28.42). Gray input is taken as luma already, so both flags are ignored for it
  (the MATLAB scripts skip ``rgb2ycbcr`` for single-channel images). ``y_channel=False`` on RGB compares all
  three channels.
* Computation in float64 on the input's own scale (0…max_value); the result is a Python float.

The torch versions (``psnr_torch``, ``ssim_torch``) work on ``N×C×H×W`` float tensors in [0, 1] (batched, any
device) for monitoring during training; they compute on the float data as given and keep float Y unless asked
for ``y_rounding=True`` (see their docstrings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from esrgan.ops.color import rgb_to_y, rgb_to_y_torch
from esrgan.ops.matlab_resize import round_half_away

__all__ = ["mse", "psnr", "rmse_pirm", "psnr_torch", "prepare_pair", "prepare_pair_torch"]


def _peak(img: np.ndarray, max_value: float | None) -> float:
    if img.dtype == np.uint8:
        return 255.0 if max_value is None else float(max_value)
    if img.dtype == np.uint16:
        if max_value is None:
            raise ValueError(
                "uint16 images need an explicit max_value (65535 for 16-bit data, 4095 for 12-bit, …); "
                "the bit depth is not guessed from the pixel values"
            )
        return float(max_value)
    if np.issubdtype(img.dtype, np.floating):
        raise TypeError(
            f"metrics take integer images (uint8, or uint16 with max_value), got {img.dtype}; quantise float "
            "output as it is saved: np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)"
        )
    raise TypeError(f"metrics take uint8 or uint16 images, got {img.dtype}")


def _crop(img: np.ndarray, crop_border: int) -> np.ndarray:
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border == 0:
        return img
    h, w = img.shape[:2]
    if h <= 2 * crop_border or w <= 2 * crop_border:
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {w}×{h} image")
    return img[crop_border:-crop_border, crop_border:-crop_border]


def _planes(img: np.ndarray, peak: float, y_channel: bool, y_rounding: bool) -> np.ndarray:
    """``H×W×C`` float64 on the input's scale: Y (C = 1), the gray plane (C = 1) or the RGB planes (C = 3)."""
    if img.ndim == 2:
        return img.astype(np.float64)[..., None]
    if img.shape[-1] == 1 or not y_channel:
        return img.astype(np.float64)
    if img.dtype == np.uint8 and peak == 255.0:
        y = rgb_to_y(img, round_uint8=y_rounding)  # MATLAB's own arithmetic for uint8
    else:
        y = rgb_to_y(img.astype(np.float64) / peak) * (peak / 255.0)
        if y_rounding:
            y = round_half_away(y)
    return y[..., None]


def prepare_pair(
    sr: np.ndarray,
    hr: np.ndarray,
    *,
    crop_border: int,
    y_channel: bool,
    y_rounding: bool,
    max_value: float | None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate a metric's input pair and return ``(sr_planes, hr_planes, peak)``, planes ``H×W×C`` float64.

    Shared by PSNR/MSE and SSIM so that every metric reads its inputs the same way (module docstring).
    """
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {sr.shape} and {hr.shape}")
    if sr.dtype != hr.dtype:
        raise TypeError(f"sr and hr must have the same dtype, got {sr.dtype} and {hr.dtype}")
    if sr.ndim not in (2, 3) or (sr.ndim == 3 and sr.shape[-1] not in (1, 3)):
        raise ValueError(f"expected H×W×3 RGB or H×W / H×W×1 gray images, got shape {sr.shape}")
    peak = _peak(sr, max_value)
    sr, hr = _crop(sr, crop_border), _crop(hr, crop_border)
    return _planes(sr, peak, y_channel, y_rounding), _planes(hr, peak, y_channel, y_rounding), peak


def mse(
    sr: np.ndarray,
    hr: np.ndarray,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    y_rounding: bool = True,
    max_value: float | None = None,
) -> float:
    """Mean squared error on the input's scale (0…255 for uint8), MATLAB ``immse`` after the conversions.

    Arguments as :func:`psnr` (module docstring for the input contract).
    """
    a, b, _ = prepare_pair(
        sr, hr, crop_border=crop_border, y_channel=y_channel, y_rounding=y_rounding, max_value=max_value
    )
    return float(np.mean((a - b) ** 2))


def psnr(
    sr: np.ndarray,
    hr: np.ndarray,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    y_rounding: bool = True,
    max_value: float | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB, ``10·log10(max_value² / MSE)``; ``inf`` for identical images.

    Args:
        sr, hr: ``H×W×3`` RGB (or ``H×W`` gray) images, same shape and dtype: ``uint8``, or ``uint16`` with
            ``max_value``. Floats are refused (quantise first).
        crop_border: pixels removed from each side (the scale factor in the published protocol).
        y_channel: compare MATLAB BT.601 Y (default) instead of the RGB channels.
        y_rounding: round Y to integers like MATLAB on uint8 images (default; the published tables).
            ``False`` = float Y (BasicSR).
        max_value: peak value; default 255 for uint8, required for uint16.

    Example: uint8 images that differ by 5 everywhere (``y_channel=False``) → 10·log10(255²/25) = 34.15 dB.
    """
    a, b, peak = prepare_pair(
        sr, hr, crop_border=crop_border, y_channel=y_channel, y_rounding=y_rounding, max_value=max_value
    )
    err = float(np.mean((a - b) ** 2))
    return math.inf if err == 0 else 10.0 * math.log10(peak * peak / err)


def rmse_pirm(sr_list: Sequence[np.ndarray], hr_list: Sequence[np.ndarray], crop_border: int = 4) -> float:
    """PIRM 2018 RMSE: ``sqrt(mean over images of per-image MSE)`` on the rounded uint8 Y, shaved borders.

    As PIRM's ``evaluate_results.m``: MATLAB ``rgb2ycbcr`` on the uint8 image, keep Y (rounded), shave
    ``crop_border`` pixels, ``immse``; the set's RMSE is the square root of the mean MSE — not the mean of the
    per-image RMSEs.

    Args:
        sr_list, hr_list: equally long sequences of ``H×W×3`` uint8 RGB images (pairs of equal shape).
        crop_border: pixels shaved from each side (PIRM: 4).
    """
    if len(sr_list) != len(hr_list):
        raise ValueError(f"got {len(sr_list)} SR images but {len(hr_list)} HR images")
    if len(sr_list) == 0:
        raise ValueError("rmse_pirm needs at least one image pair")
    for img in (*sr_list, *hr_list):
        if np.asarray(img).dtype != np.uint8:
            raise TypeError(f"PIRM RMSE is defined on uint8 images, got {np.asarray(img).dtype}")
    errors = [
        mse(sr, hr, crop_border=crop_border, y_channel=True, y_rounding=True)
        for sr, hr in zip(sr_list, hr_list, strict=True)
    ]
    return math.sqrt(sum(errors) / len(errors))


# ------------------------------------------------------------------------------------------------------
# torch, for validation during training


def _rounded_y_torch(x: torch.Tensor) -> torch.Tensor:
    """Y of ``N×3×H×W`` RGB in [0, 1], rounded on the 8-bit grid (halves up; Y > 0), back on the [0, 1] scale.

    Computed in float64 so that only colours within ~1e-6 of a tie can round differently from MATLAB's uint8
    arithmetic (when the input is uint8-quantised float32).
    """
    y = rgb_to_y_torch(x.to(torch.float64)) * 255.0
    return (torch.floor(y + 0.5) / 255.0).to(x.dtype)


def prepare_pair_torch(
    sr: torch.Tensor, hr: torch.Tensor, *, crop_border: int, y_channel: bool, y_rounding: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``N×C×H×W`` float inputs; crop, then Y (if C = 3 and ``y_channel``); return both tensors."""
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if sr.ndim != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"expected N×3×H×W (RGB) or N×1×H×W tensors, got shape {tuple(sr.shape)}")
    if not (sr.is_floating_point() and hr.is_floating_point()):
        raise TypeError(f"expected float tensors in [0, 1], got {sr.dtype} and {hr.dtype}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        h, w = sr.shape[-2:]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {w}×{h} image")
        sr = sr[..., crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel and sr.shape[1] == 3:
        to_y = _rounded_y_torch if y_rounding else rgb_to_y_torch
        sr, hr = to_y(sr), to_y(hr)
    return sr, hr


def psnr_torch(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    y_rounding: bool = False,
) -> torch.Tensor:
    """Per-image PSNR (dB, peak 1) of ``N×C×H×W`` float tensors in [0, 1]; returns shape ``(N,)``.

    For monitoring during training. It computes on the float data as given (no clamping or quantisation), in
    the tensors' dtype. Y is float by default (BasicSR); ``y_rounding=True`` rounds it to the 8-bit grid like
    :func:`psnr`'s default (MATLAB uint8). On uint8-quantised inputs (``x = k/255``) it equals
    ``psnr(..., y_rounding=y_rounding)`` of the uint8 images to within 1e-4 dB (float32) — tested. Clamp and
    quantise first (``x.clamp(0, 1).mul(255).round().div(255)``) to score what would be saved. ``inf`` where
    identical.
    """
    a, b = prepare_pair_torch(sr, hr, crop_border=crop_border, y_channel=y_channel, y_rounding=y_rounding)
    err = (a - b).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(1.0 / err)
