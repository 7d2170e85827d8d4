"""Pixels in and out of the model: array dtypes and layouts, Pillow modes, alpha and gray, as the
`Upscaler` sees them. The model side is always NCHW float in [0, 1]; images come back in the dtype and layout
they came in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image as PILImage

__all__ = [
    "BT601",
    "bt601_gray",
    "from_float",
    "pil_from_array",
    "stack_alpha",
    "to_float",
    "upscale_array",
    "upscale_pil",
]

# BT.601 luma weights (OpenCV's RGB2GRAY, Real-ESRGAN's gray conversion).
BT601 = (0.299, 0.587, 0.114)

TensorUpscale = Callable[[torch.Tensor], torch.Tensor]


def upscale_array(upscale_tensor: TensorUpscale, array: np.ndarray) -> np.ndarray:
    """`array` (``H×W`` or ``H×W×C``, C 1-4; uint8, uint16 or float) through `upscale_tensor`, same layout
    and dtype back."""
    if array.ndim == 2:
        squeeze = True
        hwc = array[:, :, None]
    elif array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        squeeze = False
        hwc = array
    else:
        raise ValueError(f"expected an H×W or H×W×C array with C in 1..4, got shape {array.shape}")
    x = torch.from_numpy(to_float(hwc)).permute(2, 0, 1).unsqueeze(0)
    y = upscale_tensor(x)[0].permute(1, 2, 0)
    out = from_float(y, array.dtype)
    return out[:, :, 0] if squeeze else out


def upscale_pil(upscale_tensor: TensorUpscale, image: PILImage.Image) -> PILImage.Image:
    """A Pillow image through `upscale_tensor`: the mode is kept for L, LA, RGB, RGBA, I;16, I and F; palette
    and other modes come back as RGB or RGBA ("1" as L); ICC profile and EXIF are carried."""
    mode = image.mode
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("RGBa", "La"):
        image = image.convert(mode.upper())
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
    mode = image.mode
    array = np.asarray(image)
    if mode.startswith("I;16"):
        out = pil_from_array(upscale_array(upscale_tensor, array.astype(np.uint16)), "I;16")
    elif mode == "I":  # 32-bit int container of 16-bit values (older Pillow's 16-bit PNG gray)
        up = upscale_array(upscale_tensor, np.clip(array, 0, 65535).astype(np.uint16))
        out = pil_from_array(up.astype(np.int32), "I")
    elif mode == "F":
        out = pil_from_array(upscale_array(upscale_tensor, array.astype(np.float32)), "F")
    else:
        out = pil_from_array(upscale_array(upscale_tensor, array), mode)
    for key in ("icc_profile", "exif"):
        if image.info.get(key):
            out.info[key] = image.info[key]
    return out


def bt601_gray(y: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0, 1] → N×1×H×W gray (BT.601 luma), clamped."""
    weights = torch.tensor(BT601, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
    return (y * weights).sum(dim=1, keepdim=True).clamp_(0, 1)


def pil_from_array(array: np.ndarray, mode: str) -> PILImage.Image:
    """Pillow image of `mode` from an array (``H×W`` or ``H×W×C``) of the matching dtype."""
    array = np.ascontiguousarray(array)
    size = (array.shape[1], array.shape[0])
    if mode == "I;16":
        return PILImage.frombytes("I;16", size, array.astype("<u2").tobytes())
    if mode in ("L", "LA", "RGB", "RGBA"):
        return PILImage.frombytes(mode, size, array.tobytes())
    return PILImage.fromarray(array)  # "I" from int32, "F" from float32


def stack_alpha(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    color = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return np.concatenate([color, alpha[:, :, None]], axis=2)


def to_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype in (np.float16, np.float32, np.float64):
        return np.ascontiguousarray(array, dtype=np.float32)
    raise ValueError(f"expected uint8, uint16 or float pixels, got {array.dtype}")


def from_float(y: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """Clamped float tensor (H×W×C) → array of `dtype` (×255 / ×65535, round half to even)."""
    y = y.clamp(0, 1)
    if dtype == np.uint8:
        return (y * 255.0).round_().to(torch.uint8).cpu().numpy()
    if dtype == np.uint16:
        return (y * 65535.0).round_().to(torch.int32).cpu().numpy().astype(np.uint16)
    return y.cpu().numpy().astype(dtype)
