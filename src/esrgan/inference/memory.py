"""How much memory a model run may take: automatic tile sizes, and smaller tiles after an out-of-memory error.

`MemoryPolicy` is the `Upscaler`'s (one per upscaler): it picks the first tile of ``tile="auto"`` from the
free memory of the device and the model's widest convolution, and `MemoryPolicy.retry` runs an attempt with a
tile size, halving the tile after an out-of-memory error down to `MemoryPolicy.min_tile` (auto tiling) or
turning the error into an `EsrganError` at once (a tile size the user chose). Errors other than running out
of memory are never caught.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from esrgan.errors import EsrganError
from esrgan.inference.runner import ModelRunner

__all__ = ["CPU_ACTIVATION_BUDGET", "CPU_CACHE_TILES", "MAX_AUTO_TILE", "MemoryPolicy", "is_out_of_memory"]

logger = logging.getLogger(__name__)

# Auto tile sizes are multiples of this, between `MemoryPolicy.min_tile` and this maximum.
_TILE_QUANTUM = 16
MAX_AUTO_TILE = 2048
# On the CPU, auto tiles are at most this many input pixels a side, by precision, and an image is run whole
# only up to about 1.5 such tiles (docs/benchmarks/tiles.md). fp32: a 23-block RRDBNet runs ~25 % faster per
# pixel on 176-256-pixel tiles than on a whole 480×320 image, whose feature maps no longer fit the caches.
# bf16 halves the feature maps: 384-pixel tiles and the whole 480×320 image ran 10-13 % faster than
# 192-pixel tiles on an AVX512-BF16 EPYC, and the same on an AMX Xeon.
CPU_CACHE_TILES = {"fp32": 192, "bf16": 384}
_CPU_WHOLE_IMAGE_TILES = 1.5
# Share of the free memory that an auto-sized tile may use: CUDA reports free memory reliably and raises a
# clean out-of-memory error; on the CPU, over-committing memory ends in swapping or the OOM killer, so stay
# well below.
_MEMORY_SHARE = {"cuda": 0.5, "cpu": 0.25}
_FALLBACK_MEMORY = 4 << 30
# On the CPU, activations never get more than this, so that a whole `esrgan upscale` stays under ~1 GB of
# resident memory at any image size (docs/benchmarks/inference.md); bigger tiles are barely faster.
CPU_ACTIVATION_BUDGET = 512 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class MemoryPolicy:
    """Tile sizes for running `runner`'s model (×`scale`, input sizes a multiple of `size_multiple`) on
    `device` with tiles that overlap by `tile_overlap` pixels."""

    device: torch.device
    runner: ModelRunner
    scale: int
    size_multiple: int
    tile_overlap: int

    @property
    def quantum(self) -> int:
        """Auto tile sizes are multiples of this."""
        return math.lcm(_TILE_QUANTUM, self.size_multiple)

    @property
    def min_tile(self) -> int:
        """The smallest tile that auto tiling and streaming go down to."""
        # Tiles must exceed 3 × overlap (see tiling.py); 4 × keeps at least a quarter of each tile useful.
        return _round_up(max(32, 4 * self.tile_overlap), self.quantum)

    @property
    def cpu_cache_tile(self) -> int:
        """The largest auto tile on the CPU for the runner's current precision."""
        return CPU_CACHE_TILES.get(self.runner.precision, CPU_CACHE_TILES["fp32"])

    def first_tile(self, height: int, width: int) -> int:
        """The first tile for a `height`×`width` input with ``tile="auto"``: one window when the whole image
        fits (and, on the CPU, is not much bigger than a cache-sized tile; tiles cost extra work where they
        overlap), else `auto_tile`."""
        whole = _round_up(max(height, width), self.quantum)
        budget, per_pixel = self.budget()
        fits = height * width * per_pixel <= budget
        if self.device.type == "cpu":
            fits = fits and height * width <= _CPU_WHOLE_IMAGE_TILES * self.cpu_cache_tile**2
        return whole if fits else min(self.auto_tile(), whole)

    def auto_tile(self) -> int:
        """A tile size that should fit the device's free memory (a rough estimate; `retry` fixes it)."""
        budget, per_pixel = self.budget()
        side = int(math.sqrt(budget / per_pixel)) // self.quantum * self.quantum
        if self.device.type == "cpu":
            side = min(side, _round_up(self.cpu_cache_tile, self.quantum))
        tile = min(MAX_AUTO_TILE, max(self.min_tile, side))
        logger.debug("auto tile: %d (budget %.2f GiB, ~%d bytes/pixel)", tile, budget / 2**30, per_pixel)
        return tile

    def stream_tile(self, height: int, width: int, bytes_per_input_row: int, band_bytes: int) -> int:
        """The tile for streaming a `height`×`width` input: `auto_tile`, at most the whole image, and small
        enough that one band of output rows (`bytes_per_input_row` per input row) stays under `band_bytes`."""
        whole = _round_up(max(height, width), self.quantum)
        cap = max(self.min_tile, band_bytes // bytes_per_input_row // self.quantum * self.quantum)
        return min(self.auto_tile(), whole, cap)

    def budget(self) -> tuple[float, int]:
        """(bytes the model's activations may use, estimated bytes per input pixel)."""
        budget = _free_memory(self.device) * _MEMORY_SHARE.get(self.device.type, 0.25)
        if self.device.type == "cpu":
            budget = min(budget, CPU_ACTIVATION_BUDGET)
        element_size = 4 if self.runner.precision == "fp32" else 2  # fp32 after a half-precision fall back
        per_pixel = _bytes_per_input_pixel(
            self.runner.feature_channels, self.scale, element_size, self.runner.strips
        )
        return budget, per_pixel

    def retry(self, attempt: Callable[[int], T], tile: int, *, adaptive: bool) -> T:
        """``attempt(tile)``; after an out-of-memory error, again with half the tile down to `min_tile` when
        `adaptive`, else an `EsrganError` naming the tile at once (no silent retries with a size the user
        chose)."""
        while True:
            try:
                return attempt(tile)
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                if not adaptive:
                    raise EsrganError(
                        f"out of memory with {tile}-pixel tiles on {self.device}; use a smaller --tile or "
                        "--tile auto"
                    ) from e
                if tile <= self.min_tile:
                    raise EsrganError(
                        f"out of memory on {self.device} even with {tile}-pixel tiles; free memory, use "
                        "--device cpu, --half (CUDA) or a smaller --tile-overlap"
                    ) from e
            # Retry outside the except block: the failed attempt's tensors (held by the traceback) are freed.
            tile = self._halve(tile)

    def _halve(self, tile: int) -> int:
        smaller = max(self.min_tile, tile // 2 // self.quantum * self.quantum)
        logger.warning(
            "out of memory with %d-pixel tiles on %s; retrying with %d", tile, self.device, smaller
        )
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return smaller


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says the device (or the host) ran out of memory."""
    if isinstance(error, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    if isinstance(error, RuntimeError):
        message = str(error).lower()
        return any(s in message for s in ("out of memory", "can't allocate memory", "not enough memory"))
    return False


def _bytes_per_input_pixel(features: int, scale: int, element_size: int, strips: bool = False) -> int:
    """Rough peak activation memory per input pixel: a few feature maps of the widest convolution (`features`
    channels) at output resolution (upsampled features, conv output, activation) dominate for ×2/×4 models,
    plus the dense-block concatenations (~10 maps: trunk, block inputs, growth channels, concatenation) at
    input resolution. With the tail in strips (`esrgan.inference.runner`) only the input-resolution part
    counts."""
    if strips:
        return element_size * features * 10
    return element_size * features * (3 * scale * scale + 10)


def _free_memory(device: torch.device) -> int:
    """Free bytes on `device` (CUDA: mem_get_info; CPU: MemAvailable or sysconf); a guess otherwise."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    return _FALLBACK_MEMORY


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
