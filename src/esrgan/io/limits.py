"""How large an output esrgan makes: the size arithmetic and the limits, without torch.

One home for them because two places need them: `esrgan.inference` (before and while upscaling) and the
`esrgan upscale` command, which checks every input's output size from its image header before it imports
torch or loads a model, so that an impossible ``--outscale`` is refused in a fraction of a second.

- Outputs above `STREAM_THRESHOLD_PIXELS` that go to PNG are streamed band by band (bounded memory), up to
  `MAX_STREAMED_OUTPUT_PIXELS`; all others are made in memory, up to `MAX_IN_MEMORY_OUTPUT_PIXELS`.
- Each side must also fit the file format (`MAX_SIDE`).
"""

from __future__ import annotations

__all__ = [
    "MAX_IN_MEMORY_OUTPUT_PIXELS",
    "MAX_SIDE",
    "MAX_STREAMED_OUTPUT_PIXELS",
    "STREAM_THRESHOLD_PIXELS",
    "output_size_problem",
    "scaled_size",
    "streams",
]

# Outputs with more pixels than this are streamed when they go to PNG: 16 Mpx (e.g. 4096 × 4096). The
# in-memory path holds about 30 bytes per output pixel at its peak (float32 accumulator, its clamped copy, the
# uint8 image, the encoder's buffer), so beyond this it would pass the ~1 GB resident-memory target.
STREAM_THRESHOLD_PIXELS = 16 * 2**20
# The largest output made in memory: 2^28 pixels (16384², ~8 GiB at the peak above) is already more than
# most machines hold.
MAX_IN_MEMORY_OUTPUT_PIXELS = 2**28
# The largest output streamed to PNG. Memory stays bounded at any size, so this limit is about time and disk:
# 2^32 pixels (65536², ~12 GiB of raw RGB).
MAX_STREAMED_OUTPUT_PIXELS = 2**32
# Largest width or height each output format can store (PNG's own limit is 2^31 - 1).
MAX_SIDE = {"PNG": 2**31 - 1, "JPEG": 65_535, "WEBP": 16_383, "TIFF": 2**32 - 1, "BMP": 2**31 - 1}


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(height, width)`` times `scale`, rounded, at least 1 pixel: the output size for an outscale."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def streams(height: int, width: int, fmt: str, *, streamable: bool = True) -> bool:
    """Whether an output of this size and format (a PIL format name, e.g. ``"PNG"``) is streamed: PNG, more
    than `STREAM_THRESHOLD_PIXELS`, and settings that can stream (`streamable`; back-projection cannot)."""
    return fmt == "PNG" and height * width > STREAM_THRESHOLD_PIXELS and streamable


def output_size_problem(height: int, width: int, fmt: str, *, streamable: bool = True) -> str | None:
    """Why an output of ``width × height`` pixels in format `fmt` is not made, or None when it is."""
    streamed = streams(height, width, fmt, streamable=streamable)
    limit = MAX_STREAMED_OUTPUT_PIXELS if streamed else MAX_IN_MEMORY_OUTPUT_PIXELS
    side = MAX_SIDE.get(fmt, 2**31 - 1)
    if max(height, width) > side:
        return f"{fmt} files hold at most {side:,} pixels a side"
    if height * width <= limit:
        return None
    if streamed:
        return f"the limit is {limit / 1e9:.1f} gigapixels"
    return (
        f"the limit is {limit / 1e6:.0f} megapixels in memory ({fmt}); PNG outputs are streamed up to "
        f"{MAX_STREAMED_OUTPUT_PIXELS / 1e9:.1f} gigapixels"
    )
