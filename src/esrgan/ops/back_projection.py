"""Back-projection post-processing (SPEC §11): make an SR image consistent with its LR input.

ESRGAN's PIRM submission ran 20 iterations of BasicSR's MATLAB ``main_reverse_filter.m`` on the network
output. Both MATLAB variants from ``scripts/matlab_scripts/back_projection/`` are here, on images in [0, 1]
with MATLAB bicubic ``imresize`` (:func:`esrgan.ops.matlab_resize.imresize`, torch fast path, float64):

``variant="reverse_filter"`` (``main_reverse_filter.m``, the one ESRGAN's QA.md names)::

    J = up(LR)
    repeat: SR ← SR + (J − up(down(SR)))

``variant="ibp"`` (``backprojection.m``, classic iterative back-projection)::

    repeat: SR ← SR + conv2(up(LR − down(SR)), p, 'same')        per channel, zero padding

with ``p`` = ``fspecial('gaussian', 5, 1)`` squared element-wise and renormalised to sum 1.

``up``/``down`` are bicubic ×scale / ×1/scale (antialiased). Nothing is clipped between iterations; the result
is clipped to [0, 1] once at the end, as MATLAB's ``imwrite`` does. An SR image whose bicubic downscale equals
the LR exactly is a fixed point of both variants (``up`` is injective, so for the reverse filter
``up(down(SR)) = up(LR)`` ⇔ ``down(SR) = LR``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from esrgan.ops.matlab_resize import imresize, round_half_away

__all__ = ["back_project", "ibp_kernel", "lr_consistency_rmse", "VARIANTS"]

VARIANTS = ("reverse_filter", "ibp")
Variant = Literal["reverse_filter", "ibp"]
A = TypeVar("A", np.ndarray, torch.Tensor)


@lru_cache(maxsize=1)
def _ibp_kernel_f64() -> np.ndarray:
    t = np.arange(-2, 3, dtype=np.float64)
    h = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 2.0)  # fspecial('gaussian', 5, 1) before normalising
    h[h < np.finfo(np.float64).eps * h.max()] = 0  # fspecial's cut-off (no effect at this size)
    h /= h.sum()
    p = h**2
    p /= p.sum()
    p.setflags(write=False)
    return p


@lru_cache(maxsize=1)
def _ibp_kernel_1d_f64() -> np.ndarray:
    """``g`` with ``g·gᵀ`` = :func:`ibp_kernel` (checked to 1e-15)."""
    p = _ibp_kernel_f64()
    g = p[:, 2] / np.sqrt(p[2, 2])
    if not np.allclose(np.outer(g, g), p, rtol=0, atol=1e-15):  # pragma: no cover - a property of exp(-r²)
        raise AssertionError("the IBP kernel is expected to be separable")
    g.setflags(write=False)
    return g


def ibp_kernel() -> np.ndarray:
    """The 5×5 IBP kernel of ``backprojection.m``: ``fspecial('gaussian', 5, 1)`` squared, renormalised."""
    return _ibp_kernel_f64().copy()


def _as_nchw_float64(x: np.ndarray | torch.Tensor, what: str) -> tuple[torch.Tensor, str]:
    """``x`` as an N×C×H×W float64 tensor in [0, 1]-scale, and a tag describing the input layout."""
    if isinstance(x, torch.Tensor):
        if x.ndim not in (3, 4):
            raise ValueError(f"{what}: expected a C×H×W or N×C×H×W tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{what}: expected a float tensor in [0, 1], got {x.dtype}")
        t = x.detach().to(torch.float64)
        return (t if x.ndim == 4 else t.unsqueeze(0)), f"tensor{x.ndim}"
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ValueError(f"{what}: expected an H×W or H×W×C array, got shape {x.shape}")
        if x.dtype == np.uint8:
            arr = x.astype(np.float64) / 255.0  # MATLAB im2double
        elif np.issubdtype(x.dtype, np.floating):
            arr = x.astype(np.float64)
        else:
            raise TypeError(f"{what}: expected a uint8 array or a float array in [0, 1], got {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
        t = t[None, None] if x.ndim == 2 else t.permute(2, 0, 1).unsqueeze(0)
        return t, f"array{x.ndim}"
    raise TypeError(f"{what}: expected a numpy array or a torch tensor, got {type(x).__name__}")


def back_project(
    sr: A,
    lr: np.ndarray | torch.Tensor,
    *,
    scale: int,
    iterations: int = 20,
    variant: Variant = "reverse_filter",
    clip: bool = True,
) -> A:
    """Back-project ``sr`` onto the LR image it was made from (SPEC §11; module docstring for the formulas).

    Args:
        sr: the super-resolved image: numpy ``H×W×C`` / ``H×W`` (``uint8``, or float in [0, 1]) or a torch
            float tensor ``C×H×W`` / ``N×C×H×W`` in [0, 1].
        lr: the low-resolution input, the same layout, ``H/scale × W/scale``; numpy ``uint8`` or float in
            [0, 1], or a float tensor (it may differ in kind and dtype from ``sr``: ``uint8`` is read as
            ``im2double``).
        scale: integer SR factor; ``sr`` must be exactly ``scale`` times the LR size.
        iterations: number of updates (the ESRGAN PIRM submission used 20); 0 returns ``sr`` unchanged
            (converted back as below, i.e. clipped).
        variant: ``"reverse_filter"`` (``main_reverse_filter.m``) or ``"ibp"`` (``backprojection.m``).
        clip: clip the result to [0, 1] at the end (MATLAB ``imwrite``); intermediate values are never
            clipped.

    Returns:
        The same kind as ``sr``: a ``uint8`` array (rounded half away from zero, like ``imwrite``) for
        ``uint8`` input, a float array / tensor of ``sr``'s dtype (and device) otherwise. Computed in float64.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown back-projection variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"back_project needs an integer scale >= 1, got {scale!r}")
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    scale = int(scale)
    x, layout = _as_nchw_float64(sr, "sr")
    y, _ = _as_nchw_float64(lr, "lr")
    y = y.to(x.device)
    if y.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"sr and lr must have the same batch size and channels, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if (x.shape[-2], x.shape[-1]) != (y.shape[-2] * scale, y.shape[-1] * scale):
        raise ValueError(
            f"sr is {x.shape[-2]}×{x.shape[-1]} but lr×{scale} is {y.shape[-2] * scale}×{y.shape[-1] * scale}"
        )

    down, up = 1.0 / scale, float(scale)
    if variant == "reverse_filter":
        target = imresize(y, up)  # J
        for _ in range(int(iterations)):
            x = x + (target - imresize(imresize(x, down), up))
    else:
        channels = x.shape[1]
        # p = g·gᵀ (a squared Gaussian is a Gaussian: separable) and symmetric, so MATLAB's
        # conv2(·, p, 'same') (zero padding) is two zero-padded 1-D passes — 6× faster than 5×5 in float64.
        g = torch.from_numpy(_ibp_kernel_1d_f64().copy()).to(x.device)
        col, row = g.view(1, 1, 5, 1).expand(channels, 1, 5, 1), g.view(1, 1, 1, 5).expand(channels, 1, 1, 5)
        for _ in range(int(iterations)):
            diff = imresize(y - imresize(x, down), up)
            diff = F.conv2d(diff, col, padding=(2, 0), groups=channels)
            x = x + F.conv2d(diff, row, padding=(0, 2), groups=channels)
    if clip:
        x = x.clamp(0.0, 1.0)
    return _restore(x, sr, layout)  # type: ignore[return-value]


def _restore(x: torch.Tensor, like: np.ndarray | torch.Tensor, layout: str) -> np.ndarray | torch.Tensor:
    if layout.startswith("tensor"):
        assert isinstance(like, torch.Tensor)
        out = x if layout == "tensor4" else x[0]
        return out.to(device=like.device, dtype=like.dtype)
    assert isinstance(like, np.ndarray)
    arr = x[0, 0].numpy() if layout == "array2" else x[0].permute(1, 2, 0).numpy()
    if like.dtype == np.uint8:
        return round_half_away(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(arr.astype(like.dtype, copy=False))


def lr_consistency_rmse(sr: np.ndarray, lr: np.ndarray, *, scale: int) -> float:
    """RMSE (on the [0, 1] scale) between ``imresize(sr, 1/scale)`` and ``lr`` — what back-projection reduces.

    Both arrays are numpy ``uint8`` or float in [0, 1], ``H×W(×C)``; no rounding of the downscaled image.
    """
    s, _ = _as_nchw_float64(sr, "sr")
    t, _ = _as_nchw_float64(lr, "lr")
    d = imresize(s, 1.0 / scale)
    if d.shape != t.shape:
        raise ValueError(f"downscaled sr has shape {tuple(d.shape)} but lr has {tuple(t.shape)}")
    return math.sqrt(float(torch.mean((d - t) ** 2)))
