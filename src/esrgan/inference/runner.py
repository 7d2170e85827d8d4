"""`ModelRunner`: how one input tile goes through the model, fast and with bounded memory.

The `Upscaler` decides *what* to run (padding, tiles, channels, alpha); this module decides *how*:

- **channels_last** on CPU and CUDA: oneDNN and cuDNN run 3×3 convolutions natively in NHWC; with NCHW
  tensors PyTorch's CPU path falls back to slower kernels (docs/benchmarks/inference.md has the numbers).
- **inference_mode**: no autograd bookkeeping.
- **upsampling tail in row strips**: a model that splits into `forward_features` (the trunk, at input
  resolution) and `forward_upsample` (the tail, ``upsample_factor``× larger, with a receptive field of
  ``upsample_halo`` feature pixels) gets its tail run on horizontal strips that overlap by that halo, when the
  tail's activations would exceed `strip_bytes` (smaller inputs run through the module's own call). The tail
  works at output resolution, so for RRDBNet ×4 it would otherwise need ~16× the trunk's memory per feature
  map; in strips the trunk bounds the memory and the result is the same (each strip sees every pixel its rows
  depend on; only float rounding differs). On glibc each strip's maps also stay under the mmap threshold
  below, so that they come from the kept heap instead of fresh, page-faulting mappings.
- **freed activations stay in the heap** (glibc, CPU): glibc hands every freed block above its mmap threshold
  back to the kernel, so each forward pass page-faults its feature maps in again (~130,000 faults and ~0.25
  CPU-seconds a 128² tile for the 23-block RRDBNet in bf16). `keep_freed_memory` raises that threshold to
  its maximum (32 MiB) once per process, and the heap-trim threshold with it, so the next pass reuses them.
- **half precision**: ``precision="fp16"`` (CUDA) or ``"bf16"`` (CUDA, CPU) runs under autocast with the
  weights kept in fp32; a tile whose output is not finite, or black where the input is not, is run again in
  fp32 and the rest of the job stays in fp32 (with a warning), because fp16 overflows in some community
  models.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import math
import platform
from typing import Literal

import torch
from torch import nn

from esrgan.archs.blocks import as_written as archs_as_written

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# Bytes of tail activations allowed per strip: small enough to stay in the memory budget, large enough that
# the halo rows computed twice cost little (~1% of the work for RRDBNet).
TAIL_STRIP_BYTES = 96 << 20
# Feature maps alive at once in the tail at output resolution (upsampled input, conv output, next conv).
_TAIL_LIVE_MAPS = 3
# "Black" output: brightest output pixel below one 8-bit level while the input has some content.
_BLACK_OUTPUT = 1.0 / 255.0
_NONBLACK_INPUT = 16.0 / 255.0
# glibc mallopt parameters and values: the largest mmap threshold glibc accepts on 64-bit systems, and a trim
# threshold that keeps a few freed tiles' worth of activations in the heap.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20
_MALLOC_SLACK = 1 << 20  # a block needs a little more than its tensor: allocator headers and alignment
_TRIM_THRESHOLD = 256 << 20


def supports_strips(model: nn.Module) -> bool:
    """Whether `model` splits into a trunk and an upsampling tail that can run in row strips."""
    return all(
        hasattr(model, name)
        for name in ("forward_features", "forward_upsample", "upsample_factor", "upsample_halo")
    )


class ModelRunner:
    """Run input tiles (NCHW float in [0, 1]) through `model` on `device`; output float32 on that device.

    Args:
        model: the network; moved to `device`, put in eval mode and (CPU/CUDA) into channels_last.
        device: where the model runs.
        precision: "fp32", "fp16" (CUDA only) or "bf16"; see the module docstring for the fp32 fall back.
        channels_last: use NHWC memory format (default on CPU and CUDA for models with weights).
        strip_bytes: memory allowed for one strip of the upsampling tail (models with `forward_upsample`).
        as_written: compute the network exactly as written, without its inference rewrites
            (`esrgan.archs.blocks.as_written`): bit-for-bit reproducible evaluation tables.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        *,
        precision: Precision = "fp32",
        channels_last: bool | None = None,
        strip_bytes: int = TAIL_STRIP_BYTES,
        as_written: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and device.type != "cuda":
            logger.warning("fp16 inference needs CUDA; using fp32 on %s", device)
            precision = "fp32"
        self.device = device
        if device.type == "cpu":
            keep_freed_memory()
        self.precision: Precision = precision
        if channels_last is None:  # models without weights (onnxruntime wrappers) take plain NCHW arrays
            channels_last = device.type in ("cpu", "cuda") and any(True for _ in model.parameters())
        self.channels_last = channels_last
        self.strip_bytes = strip_bytes
        self.as_written = as_written
        self.model = model.to(device=device, dtype=torch.float32).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.strips = supports_strips(self.model)
        # Channels of the widest convolution: the feature maps that dominate activation memory.
        widths = [m.out_channels for m in self.model.modules() if isinstance(m, nn.Conv2d)]
        self.feature_channels = max(widths, default=64)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.device, dtype=torch.float32)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "fp32":
            return self._forward(x)
        y = self._forward(x)
        if _usable(y, x):
            return y
        logger.warning(
            "%s inference gave %s output; running in fp32 from now on",
            self.precision,
            "non-finite" if not torch.isfinite(y).all() else "black",
        )
        self.precision = "fp32"
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        exactly = archs_as_written() if self.as_written else contextlib.nullcontext()
        with torch.inference_mode(), self._autocast(), exactly:
            if not (self.strips and self._tail_too_big(x)):
                return self.model(x).float()  # the module's own call: its hooks run
            return self._strip_forward(x)

    def _tail_too_big(self, x: torch.Tensor) -> bool:
        """Whether one tail feature map for `x` (at output resolution) exceeds what one strip may hold."""
        n, _, height, width = x.shape
        scale: int = self.model.scale  # type: ignore[assignment]
        out_pixels = n * height * scale * width * scale
        return out_pixels * self.feature_channels * self._element_size() > self._tail_map_bytes()

    def _element_size(self) -> int:
        """Bytes per activation: autocast computes the convolutions in the half-precision type."""
        return PRECISIONS[self.precision].itemsize

    def _tail_map_bytes(self) -> int:
        """Bytes allowed for one tail feature map of a strip: its share of `strip_bytes` and, where glibc
        keeps freed blocks (`keep_freed_memory`), at most the mmap threshold: a larger block would be mapped
        afresh, and page-faulted in, on every strip (3 × 33 MB a 128² tile of RRDBNet ×4 in bf16, ~4 % of
        its time)."""
        limit = self.strip_bytes // _TAIL_LIVE_MAPS
        if self.device.type == "cpu" and keep_freed_memory():
            limit = min(limit, _MMAP_THRESHOLD - _MALLOC_SLACK)
        return limit

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def _strip_forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        features = model.forward_features(x)  # type: ignore[operator]
        factor: int = model.upsample_factor  # type: ignore[assignment]
        halo: int = model.upsample_halo  # type: ignore[assignment]
        n, c, height, width = features.shape
        # One output-resolution map per feature row; a column wider for the padded maps some tails use.
        bytes_per_row = n * c * (width + 1) * factor * factor * features.element_size()
        rows = max(1, self._tail_map_bytes() // bytes_per_row - 2 * halo - 1)
        rows = math.ceil(height / math.ceil(height / rows))  # strips of equal height
        if rows >= height:
            return model.forward_upsample(features).float()  # type: ignore[operator]
        out: torch.Tensor | None = None
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            a0, a1 = max(0, r0 - halo), min(height, r1 + halo)
            y = model.forward_upsample(features[:, :, a0:a1])  # type: ignore[operator]
            if out is None:
                out = torch.empty(
                    (n, y.shape[1], height * factor, width * factor),
                    dtype=torch.float32,
                    device=y.device,
                    memory_format=torch.channels_last if self.channels_last else torch.contiguous_format,
                )
            out[:, :, r0 * factor : r1 * factor] = y[:, :, (r0 - a0) * factor : (r1 - a0) * factor]
        assert out is not None
        return out


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks of up to 32 MiB in the heap instead of unmapping them (see the module
    docstring); whether it could. A no-op elsewhere (other C libraries, Windows, macOS)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):
        return False


def _usable(y: torch.Tensor, x: torch.Tensor) -> bool:
    """Half-precision output is usable unless it has NaN/inf, or is black where the input is not."""
    if not bool(torch.isfinite(y).all()):
        return False
    return not (float(y.amax()) < _BLACK_OUTPUT and float(x.amax()) > _NONBLACK_INPUT)
