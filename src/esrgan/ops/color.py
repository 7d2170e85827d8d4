"""BT.601 YCbCr exactly as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` (SPEC §7.2), for RGB input.

With R, G, B in [0, 1]::

    Y  =  16 +  65.481·R + 128.553·G +  24.966·B      (16 … 235)
    Cb = 128 −  37.797·R −  74.203·G + 112.000·B      (16 … 240)
    Cr = 128 + 112.000·R −  93.786·G −  18.214·B      (16 … 240)

Contract of the numpy functions (one output scale, whatever the input dtype):

* input: ``H×W×3`` **RGB** (channel last) — ``uint8`` (0 … 255), ``uint16`` (0 … 65535) or floating point
  with values in [0, 1]. Never BGR: OpenCV-loaded arrays must be converted first.
* output: ``float64`` on the **8-bit scale**, i.e. Y ∈ [16, 235] — also for float or uint16 input (MATLAB
  itself would return [16/255, 235/255] for double input; divide by 255 for that).
* ``round_uint8=True`` rounds to integers with halves away from zero — what MATLAB returns for a ``uint8``
  image (it computes in double, then converts to ``uint8``). For ``uint8`` input the arithmetic follows
  MATLAB's (``T = origT/255`` applied to 0 … 255 values, then ``+ offset``), so even the 194 of 2^24
  colours whose exact Y is a tie ``k + 0.5`` round the way MATLAB's double arithmetic does.

The torch functions take ``N×3×H×W`` float tensors in [0, 1] (the project's tensor contract) and return the
same [0, 1] scale (Y ∈ [16/255, 235/255]); they never round. Do not use OpenCV's ``COLOR_RGB2YCrCb``: it is
the full-range JPEG formula, not this one.
"""

from __future__ import annotations

import numpy as np
import torch

from esrgan.ops.matlab_resize import round_half_away

__all__ = [
    "RGB_TO_YCBCR",
    "YCBCR_OFFSET",
    "rgb_to_ycbcr",
    "rgb_to_y",
    "ycbcr_to_rgb",
    "rgb_to_ycbcr_torch",
    "rgb_to_y_torch",
    "ycbcr_to_rgb_torch",
]

#: MATLAB's ``origT`` (rows Y, Cb, Cr; columns R, G, B), for RGB in [0, 1] and output on the 8-bit scale.
RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
RGB_TO_YCBCR.setflags(write=False)
#: MATLAB's ``origOffset`` on the 8-bit scale.
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
YCBCR_OFFSET.setflags(write=False)

# MATLAB builds T = scaleFactor.T * origT with scaleFactor.T = 1/255 and applies it to 0…255 values.
_T_8BIT = (1.0 / 255.0) * RGB_TO_YCBCR


def _to_8bit_scale(img: np.ndarray) -> np.ndarray:
    """RGB values on the 0…255 scale (dtype decides the input range, never the pixel values).

    uint8 stays uint8: the arithmetic below promotes it to float64 exactly, without a float copy.
    """
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"expected an H×W×3 RGB array, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 257.0  # 65535 / 255 = 257 exactly
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float64) * 255.0
    raise TypeError(f"expected a uint8, uint16 or float RGB array, got {img.dtype}")


def _lincomb(rgb8: np.ndarray, row: int) -> np.ndarray:
    # Left-to-right sum in double, like MATLAB's imlincomb(T1, R, T2, G, T3, B, offset).
    t = _T_8BIT[row]
    out = t[0] * rgb8[..., 0]  # float64 (uint8 is promoted exactly)
    out += t[1] * rgb8[..., 1]
    out += t[2] * rgb8[..., 2]
    out += YCBCR_OFFSET[row]
    return out


def rgb_to_ycbcr(img: np.ndarray, *, round_uint8: bool = False) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` on an RGB image.

    Args:
        img: ``H×W×3`` RGB, ``uint8`` / ``uint16`` / float in [0, 1].
        round_uint8: round each channel to an integer (halves away from zero), as MATLAB does for uint8 input.

    Returns:
        ``H×W×3`` float64 (Y, Cb, Cr) on the 8-bit scale: Y ∈ [16, 235], Cb, Cr ∈ [16, 240].
    """
    rgb8 = _to_8bit_scale(np.asarray(img))
    out = np.stack([_lincomb(rgb8, row) for row in range(3)], axis=-1)
    return round_half_away(out) if round_uint8 else out


def rgb_to_y(img: np.ndarray, *, round_uint8: bool = False) -> np.ndarray:
    """BT.601 luma Y of an RGB image, MATLAB ``rgb2ycbcr(img)(:, :, 1)``.

    Args:
        img: ``H×W×3`` RGB, ``uint8`` (0…255), ``uint16`` (0…65535) or float in [0, 1].
        round_uint8: round Y to an integer (halves away from zero) — MATLAB's result for a uint8 image, used
            by the published PSNR/SSIM tables, PIRM's RMSE and NIQE. ``False`` gives the float Y that
            BasicSR and MATLAB-on-double use.

    Returns:
        ``H×W`` float64, Y ∈ [16, 235] (8-bit scale) for every input dtype.

    Example: white → 235, black → 16, pure red (255, 0, 0) → 81.481 (81 with ``round_uint8``).
    """
    rgb8 = _to_8bit_scale(np.asarray(img))
    y = _lincomb(rgb8, 0)
    return round_half_away(y) if round_uint8 else y


def ycbcr_to_rgb(img: np.ndarray) -> np.ndarray:
    """MATLAB ``ycbcr2rgb``: inverse of :func:`rgb_to_ycbcr`.

    Args:
        img: ``H×W×3`` (Y, Cb, Cr) on the 8-bit scale (float or uint8).

    Returns:
        ``H×W×3`` float64 RGB on the 8-bit scale (0…255 for in-gamut colours), neither clipped nor rounded.
    """
    ycc = np.asarray(img, dtype=np.float64)
    if ycc.ndim != 3 or ycc.shape[-1] != 3:
        raise ValueError(f"expected an H×W×3 YCbCr array, got shape {ycc.shape}")
    inverse = np.linalg.inv(RGB_TO_YCBCR) * 255.0
    return (ycc - YCBCR_OFFSET) @ inverse.T


# ------------------------------------------------------------------------------------------------------
# torch, N×3×H×W float in [0, 1]


def _check_nchw_rgb(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an N×3×H×W RGB tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor in [0, 1], got {x.dtype}")


def rgb_to_ycbcr_torch(x: torch.Tensor) -> torch.Tensor:
    """``N×3×H×W`` RGB in [0, 1] → ``N×3×H×W`` (Y, Cb, Cr) on the [0, 1] scale (Y ∈ [16/255, 235/255])."""
    _check_nchw_rgb(x)
    t = torch.as_tensor(RGB_TO_YCBCR / 255.0, dtype=x.dtype, device=x.device)
    offset = torch.as_tensor(YCBCR_OFFSET / 255.0, dtype=x.dtype, device=x.device)
    return torch.einsum("oc,nchw->nohw", t, x) + offset.view(1, 3, 1, 1)


def rgb_to_y_torch(x: torch.Tensor) -> torch.Tensor:
    """``N×3×H×W`` RGB in [0, 1] → ``N×1×H×W`` Y on the [0, 1] scale (Y ∈ [16/255, 235/255]); not rounded."""
    _check_nchw_rgb(x)
    r, g, b = (RGB_TO_YCBCR[0] / 255.0).tolist()
    return r * x[:, 0:1] + g * x[:, 1:2] + b * x[:, 2:3] + YCBCR_OFFSET[0] / 255.0


def ycbcr_to_rgb_torch(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr_torch`: ``N×3×H×W`` YCbCr on the [0, 1] scale → RGB (not clipped)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an N×3×H×W YCbCr tensor, got shape {tuple(x.shape)}")
    inverse = torch.as_tensor(np.linalg.inv(RGB_TO_YCBCR) * 255.0, dtype=x.dtype, device=x.device)
    offset = torch.as_tensor(YCBCR_OFFSET / 255.0, dtype=x.dtype, device=x.device)
    return torch.einsum("oc,nchw->nohw", inverse, x - offset.view(1, 3, 1, 1))
