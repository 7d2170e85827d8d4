"""Image operations shared by data preparation, NIQE and evaluation (MATLAB-faithful).

* :mod:`esrgan.ops.matlab_resize` — MATLAB bicubic ``imresize`` (numpy reference + torch fast path),
  ``downscale_uint8`` (benchmark LR protocol), ``modcrop``.
* :mod:`esrgan.ops.color` — BT.601 YCbCr / Y exactly as MATLAB ``rgb2ycbcr`` (RGB input).
* :mod:`esrgan.ops.interpolation` — image interpolation ``(1 − α)·A + α·B`` (SPEC §9).
"""

from __future__ import annotations

from esrgan.ops.color import (
    rgb_to_y,
    rgb_to_y_torch,
    rgb_to_ycbcr,
    rgb_to_ycbcr_torch,
    ycbcr_to_rgb,
    ycbcr_to_rgb_torch,
)
from esrgan.ops.interpolation import interpolate_image_folders, interpolate_images
from esrgan.ops.matlab_resize import (
    downscale_uint8,
    imresize,
    imresize_reference,
    modcrop,
    resize_weights,
    round_half_away,
)

__all__ = [
    "downscale_uint8",
    "imresize",
    "imresize_reference",
    "interpolate_image_folders",
    "interpolate_images",
    "modcrop",
    "resize_weights",
    "rgb_to_y",
    "rgb_to_y_torch",
    "rgb_to_ycbcr",
    "rgb_to_ycbcr_torch",
    "round_half_away",
    "ycbcr_to_rgb",
    "ycbcr_to_rgb_torch",
]
