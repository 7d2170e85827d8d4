"""MATLAB-compatible bicubic ``imresize`` (SPEC §8), one implementation for data, NIQE and evaluation.

MATLAB's ``imresize(A, scale, 'bicubic')`` is separable. Per axis, output pixel ``x`` (1-based) reads the
input around ``u = x/s + 0.5·(1 − 1/s)`` with the Keys cubic kernel (a = −0.5); when shrinking (s < 1) the
kernel is stretched to ``s·cubic(s·t)`` over a support of ``4/s`` pixels (antialiasing). Taps that fall
outside the image are mirrored *including* the edge sample (``[1..n, n..1]`` periodically), every row of
weights is normalised to sum 1, and the output length is ``ceil(n·s)``.

Three entry points share that weight computation (:func:`resize_weights`):

* :func:`imresize_reference` — a readable numpy version (gather the taps, weight, sum), float64 only.
* :func:`imresize` — the fast path: each axis becomes a banded ``out × in`` matrix (mirrored taps are
  accumulated into it) applied as a few small matmuls, cached per (length, scale, dtype, device). Takes
  torch tensors (CHW/NCHW, float32/float64, batched, any device) or numpy float arrays (HW/HWC, returned as
  float64). Agrees with the reference to ~1e-13 in float64.
* :func:`downscale_uint8` — the benchmark LR protocol: ``im2double`` → ``imresize(1/scale)`` → ``imwrite``.

All arithmetic is done without intermediate rounding, like MATLAB on ``double`` input (MATLAB on ``uint8``
input rounds after each pass; the reference scripts avoid that with ``im2double`` and so do we).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TypeVar, overload

import numpy as np
import torch

__all__ = [
    "cubic",
    "resize_weights",
    "output_size",
    "imresize_reference",
    "imresize",
    "resize_to",
    "StreamingResize",
    "downscale_uint8",
    "modcrop",
    "round_half_away",
]

_KERNEL_WIDTH = 4.0  # support of the Keys cubic kernel, in input pixels


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = −0.5 (MATLAB's ``cubic``), evaluated element-wise."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def output_size(length: int, scale: float) -> int:
    """Output length MATLAB gives for ``imresize`` by ``scale``: ``ceil(length·scale)``."""
    return int(math.ceil(length * scale))


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"imresize scale must be a positive finite number, got {scale!r}")
    return scale


def resize_weights(
    in_length: int, scale: float, *, antialias: bool = True, out_length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis taps of MATLAB bicubic ``imresize`` (``contributions`` in ``imresize.m``).

    Returns ``(weights, indices)``, both ``(out_length, taps)``: output pixel ``i`` is
    ``sum_j weights[i, j] · input[indices[i, j]]`` with 0-based, already mirrored ``indices``. Tap columns
    whose weight is zero for every output pixel are dropped (16 taps remain for ×1/4, 8 for ×1/2, 4 for
    upscaling). `out_length` defaults to ``ceil(in_length·scale)``; MATLAB given an output size uses
    ``scale = out_length / in_length`` with that length.
    """
    if in_length < 1:
        raise ValueError(f"cannot resize an axis of length {in_length}")
    scale = _check_scale(scale)
    out_length = output_size(in_length, scale) if out_length is None else int(out_length)
    if out_length < 1:
        raise ValueError(f"cannot resize to an axis of length {out_length}")
    if scale < 1 and antialias:
        kernel_width = _KERNEL_WIDTH / scale

        def h(t: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * t)
    else:
        kernel_width = _KERNEL_WIDTH
        h = cubic

    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based output coordinates, as in MATLAB
    u = x / scale + 0.5 * (1 - 1 / scale)  # matching input coordinate (1-based)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based, may be out of range
    weights = h(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Symmetric mirroring including the edge sample: MATLAB indexes [1..n, n..1] modulo 2n.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]

    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


# ------------------------------------------------------------------------------------------------------
# numpy reference


def _resize_axis_reference(img: np.ndarray, axis: int, scale: float, antialias: bool) -> np.ndarray:
    weights, indices = resize_weights(img.shape[axis], scale, antialias=antialias)
    src = np.moveaxis(img, axis, 0)
    out = np.zeros((weights.shape[0], *src.shape[1:]), dtype=np.float64)
    tail = (slice(None),) + (None,) * (src.ndim - 1)  # broadcast one weight per output row
    for j in range(weights.shape[1]):  # one tap at a time: out[i] += w[i, j] · src[idx[i, j]]
        out += weights[:, j][tail] * src[indices[:, j]]
    return np.moveaxis(out, 0, axis)


def imresize_reference(img: np.ndarray, scale: float, *, antialias: bool = True) -> np.ndarray:
    """Readable numpy MATLAB bicubic ``imresize(img, scale)``; :func:`imresize` is tested against it.

    Args:
        img: ``H×W`` or ``H×W×C`` array of any real dtype; values are used as they are (no ``/255``).
        scale: resize factor, > 0, the same for both axes (up or down).
        antialias: stretch the kernel when shrinking (MATLAB's default ``'Antialiasing', true``).

    Returns:
        float64 array ``ceil(H·scale) × ceil(W·scale) (× C)``, not rounded or clipped.
    """
    x = np.asarray(img, dtype=np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"imresize_reference expects an H×W or H×W×C array, got shape {x.shape}")
    x = _resize_axis_reference(x, 0, scale, antialias)  # rows (H) first, like BasicSR; order is irrelevant
    return _resize_axis_reference(x, 1, scale, antialias)  # without intermediate rounding


# ------------------------------------------------------------------------------------------------------
# torch fast path


# Each axis is applied as a banded matrix product. The dense ``out × in`` matrix is cut into blocks of
# consecutive output pixels; a block only reads a contiguous band of the input (its taps, mirrored taps
# included), so it is one small matmul on that band. The work per output pixel then stays constant instead
# of growing with the axis length (one dense matmul was ~5× slower for 2040×1356 at ×1/4 and 500² at ×4).
_BAND_INPUT_PIXELS = (
    128  # aim for input bands of about this many pixels (measured, benchmarks/bench_metrics.py)
)


def _rows_per_block(scale: float) -> int:
    return int(min(128, max(16, round(_BAND_INPUT_PIXELS * min(scale, 1.0)))))


def _block(weights: np.ndarray, indices: np.ndarray) -> tuple[int, int, np.ndarray]:
    """``(in_start, in_stop, rows × (in_stop − in_start) matrix)`` of some output rows' taps; mirrored taps
    that land on the same input pixel are summed into one matrix entry."""
    lo, hi = int(indices.min()), int(indices.max()) + 1
    block = np.zeros((weights.shape[0], hi - lo), dtype=np.float64)
    rows = np.broadcast_to(np.arange(weights.shape[0])[:, None], indices.shape)
    np.add.at(block, (rows, indices - lo), weights)
    return lo, hi, block


@lru_cache(maxsize=32)
def _band_plan_f64(
    in_length: int, scale: float, antialias: bool, out_length: int | None = None
) -> tuple[tuple[int, int, np.ndarray], ...]:
    """`_block` per block of consecutive output rows (see above)."""
    weights, indices = resize_weights(in_length, scale, antialias=antialias, out_length=out_length)
    step = _rows_per_block(scale)
    plan = []
    for start in range(0, weights.shape[0], step):
        lo, hi, block = _block(weights[start : start + step], indices[start : start + step])
        block.setflags(write=False)
        plan.append((lo, hi, block))
    return tuple(plan)


@lru_cache(maxsize=64)
def _band_plan(
    in_length: int,
    scale: float,
    antialias: bool,
    dtype: torch.dtype,
    device: torch.device,
    out_length: int | None = None,
) -> tuple[tuple[int, int, torch.Tensor], ...]:
    return tuple(
        (lo, hi, torch.from_numpy(block.copy()).to(device=device, dtype=dtype))
        for lo, hi, block in _band_plan_f64(in_length, scale, antialias, out_length)
    )


def _resize_rows(x: torch.Tensor, scale: float, antialias: bool) -> torch.Tensor:
    """Resize dim −2 of ``x`` (…×H×W)."""
    plan = _band_plan(x.shape[-2], scale, antialias, x.dtype, x.device)
    parts = [torch.matmul(block, x[..., lo:hi, :]) for lo, hi, block in plan]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-2)


def _resize_cols(
    x: torch.Tensor, scale: float, antialias: bool, out_length: int | None = None
) -> torch.Tensor:
    """Resize dim −1 of ``x`` (…×H×W)."""
    plan = _band_plan(x.shape[-1], scale, antialias, x.dtype, x.device, out_length)
    parts = [torch.matmul(x[..., lo:hi], block.T) for lo, hi, block in plan]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def _imresize_tensor(x: torch.Tensor, scale: float, antialias: bool) -> torch.Tensor:
    """Resize the last two dims of ``x`` (…×H×W): rows then columns (the order is irrelevant in float)."""
    return _resize_cols(_resize_rows(x, scale, antialias), scale, antialias)


T = TypeVar("T", np.ndarray, torch.Tensor)


@overload
def imresize(x: torch.Tensor, scale: float, *, antialias: bool = ...) -> torch.Tensor: ...
@overload
def imresize(x: np.ndarray, scale: float, *, antialias: bool = ...) -> np.ndarray: ...


def imresize(
    x: np.ndarray | torch.Tensor, scale: float, *, antialias: bool = True
) -> np.ndarray | torch.Tensor:
    """MATLAB bicubic ``imresize(x, scale)`` — the fast path used everywhere in the package.

    Args:
        x: either a torch tensor ``C×H×W`` or ``N×C×H×W`` (float32/float64/float16/bfloat16, any device; the
            result has the same shape rank, dtype and device), or a numpy **float** array ``H×W`` or
            ``H×W×C`` (computed and returned in float64). Values are used as they are: no range is assumed,
            nothing is rounded or clipped. Integer arrays are refused (MATLAB would round per pass); convert
            with ``img / 255.0`` first, or use :func:`downscale_uint8`.
        scale: resize factor > 0 for both axes. Output size ``ceil(H·scale) × ceil(W·scale)``.
        antialias: stretch the kernel when shrinking (MATLAB default).

    Gradients flow through the tensor path (it is two matmuls), so it can be used inside losses.
    """
    scale = _check_scale(scale)
    if isinstance(x, torch.Tensor):
        if x.ndim not in (3, 4):
            raise ValueError(f"imresize expects a C×H×W or N×C×H×W tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"imresize expects a floating-point tensor, got {x.dtype}")
        return _imresize_tensor(x, scale, antialias)
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ValueError(f"imresize expects an H×W or H×W×C array, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(
                f"imresize expects a float array, got {x.dtype}; convert with img / 255.0 "
                "(MATLAB im2double) or use downscale_uint8 for the uint8 LR protocol"
            )
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        t = t.unsqueeze(0) if x.ndim == 2 else t.permute(2, 0, 1)  # → C×H×W
        out = _imresize_tensor(t, scale, antialias)
        out = out[0] if x.ndim == 2 else out.permute(1, 2, 0)
        return np.ascontiguousarray(out.numpy())
    raise TypeError(f"imresize expects a numpy array or a torch tensor, got {type(x).__name__}")


# ------------------------------------------------------------------------------------------------------
# resizing to a given size, band by band


class StreamingResize:
    """MATLAB bicubic resize of an ``N×C×H×W`` tensor to ``out_size``, fed and returned in bands of rows.

    `push` takes the next rows of the input, top to bottom, and returns the output rows that they complete, as
    ``(out_row0, N×C×r×W')`` bands; only the input rows that later output rows still read are kept. The
    output is that of MATLAB ``imresize(x, out_size, 'bicubic')`` (each axis with ``scale = out/in``), so
    resizing a whole image is one `push` of all its rows (`resize_to`). Memory: about one input band plus
    the kernel's reach (2 rows when enlarging, ``2·in/out`` when shrinking).
    """

    def __init__(
        self, in_size: tuple[int, int], out_size: tuple[int, int], *, antialias: bool = True
    ) -> None:
        (self.in_height, self.in_width), (self.out_height, self.out_width) = in_size, out_size
        if min(*in_size, *out_size) < 1:
            raise ValueError(f"cannot resize {in_size} to {out_size}: sizes must be positive")
        self.antialias = antialias
        self._scale_h = self.out_height / self.in_height
        self._scale_w = self.out_width / self.in_width
        self._weights, self._indices = resize_weights(
            self.in_height, self._scale_h, antialias=antialias, out_length=self.out_height
        )
        # Output row i can be made once input row needed[i] has arrived (and every row above it is made);
        # input rows below keep_from[i] are read by no output row from i on.
        self._needed = np.maximum.accumulate(self._indices.max(axis=1))
        self._keep_from = np.minimum.accumulate(self._indices.min(axis=1)[::-1])[::-1]
        self._buffer: torch.Tensor | None = None
        self._buffer_row0 = 0  # input row of the buffer's first row
        self._received = 0
        self._made = 0

    @property
    def done(self) -> bool:
        return self._made == self.out_height

    def push(self, rows: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """Add the next input rows (``N×C×r×W``, floating point); returns the output bands they complete."""
        if rows.ndim != 4 or rows.shape[-1] != self.in_width or not rows.is_floating_point():
            raise ValueError(f"expected float N×C×rows×{self.in_width} input rows, got {tuple(rows.shape)}")
        if self._received + rows.shape[-2] > self.in_height:
            raise ValueError(f"more than the {self.in_height} input rows this resize was made for")
        self._buffer = rows if self._buffer is None else torch.cat([self._buffer, rows], dim=-2)
        self._received += rows.shape[-2]
        ready = int(np.searchsorted(self._needed, self._received, side="left"))  # rows with needed < received
        bands = []
        step = _rows_per_block(self._scale_h)
        for start in range(self._made, ready, step):
            stop = min(ready, start + step)
            lo, hi, block = _block(self._weights[start:stop], self._indices[start:stop])
            matrix = torch.from_numpy(block).to(device=self._buffer.device, dtype=self._buffer.dtype)
            part = self._buffer[..., lo - self._buffer_row0 : hi - self._buffer_row0, :]
            out = torch.matmul(matrix, part)
            bands.append((start, _resize_cols(out, self._scale_w, self.antialias, self.out_width)))
        self._made = ready
        if self._made < self.out_height:
            drop = int(self._keep_from[self._made]) - self._buffer_row0
            if drop > 0:
                self._buffer = self._buffer[..., drop:, :]
                self._buffer_row0 += drop
        else:
            self._buffer = None
        return bands


def resize_to(x: torch.Tensor, size: tuple[int, int], *, antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, [h w], 'bicubic')`` of an ``N×C×H×W`` float tensor (see `StreamingResize`)."""
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"resize_to expects a float N×C×H×W tensor, got {x.dtype} {tuple(x.shape)}")
    resize = StreamingResize((x.shape[-2], x.shape[-1]), size, antialias=antialias)
    bands = [band for _, band in resize.push(x)]
    return bands[0] if len(bands) == 1 else torch.cat(bands, dim=-2)


# ------------------------------------------------------------------------------------------------------
# uint8 protocol helpers


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (MATLAB ``round`` / integer conversion).

    ``np.round`` rounds halves to even, which differs from MATLAB on exact ``.5`` values.
    """
    out = np.abs(x)
    out += 0.5
    np.floor(out, out=out)
    return np.copysign(out, x, out=out)


def modcrop(img: T, mod: int) -> T:
    """Crop the bottom/right of ``img`` so that H and W are multiples of ``mod`` (MATLAB ``modcrop``).

    ``img`` is ``H×W`` or ``H×W×C`` (numpy) — the first two axes are cropped; a view is returned.
    """
    if mod < 1:
        raise ValueError(f"modcrop needs mod >= 1, got {mod}")
    h, w = img.shape[0], img.shape[1]
    return img[: h - h % mod, : w - w % mod]


def downscale_uint8(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR image exactly as the MATLAB benchmark scripts make it (SPEC §6.4).

    ``im2double(hr)`` → ``imresize(·, 1/scale, 'bicubic')`` → ``imwrite`` (clip to [0, 1], ×255, round
    halves away from zero) → uint8.

    Args:
        hr: ``H×W×C`` or ``H×W`` uint8 image (RGB or gray); H and W must be multiples of ``scale``
            (apply :func:`modcrop` first, as the reference scripts do).
        scale: integer down-scaling factor (2, 3, 4, …).

    Returns:
        uint8 array ``H/scale × W/scale (× C)``.
    """
    if hr.dtype != np.uint8:
        raise TypeError(f"downscale_uint8 expects a uint8 image, got {hr.dtype}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"downscale_uint8 expects an integer scale >= 1, got {scale!r}")
    scale = int(scale)
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(
            f"image size {w}×{h} is not a multiple of {scale}; modcrop(hr, {scale}) first "
            "(MATLAB imresize would return a ceil-sized LR that no longer matches the HR)"
        )
    lr = imresize(hr.astype(np.float64) / 255.0, 1.0 / scale)
    return round_half_away(np.clip(lr, 0.0, 1.0) * 255.0).astype(np.uint8)
