"""Image-quality metrics with MATLAB conventions (SPEC §7).

Numpy metrics take ``H×W×3`` RGB (or ``H×W`` gray) ``uint8`` images — ``uint16`` with an explicit
``max_value`` — and return Python floats; the torch versions take ``N×C×H×W`` float tensors in [0, 1] and
return per-image ``(N,)`` tensors (for validation during training). See each module for the exact contract.

* :func:`psnr`, :func:`mse`, :func:`rmse_pirm`, :func:`psnr_torch` — :mod:`esrgan.metrics.psnr`
* :func:`ssim`, :func:`ssim_torch` — :mod:`esrgan.metrics.ssim`
* :func:`niqe` — :mod:`esrgan.metrics.niqe`
"""

from __future__ import annotations

from esrgan.metrics.niqe import NiqeUndefinedError, niqe
from esrgan.metrics.psnr import mse, psnr, psnr_torch, rmse_pirm
from esrgan.metrics.ssim import ssim, ssim_torch

__all__ = ["NiqeUndefinedError", "mse", "niqe", "psnr", "psnr_torch", "rmse_pirm", "ssim", "ssim_torch"]
