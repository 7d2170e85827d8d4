"""Upscaling straight into a PNG file band by band, for outputs too large for memory (e.g. 16k × 16k).

`Upscaler.upscale_image_bands` yields the output a band of rows at a time (only the band under the current
row of tiles is held, see `esrgan.inference.tiling.tiled_forward_bands`) and `PngStreamWriter` compresses each
band into the file as it comes, so memory is bounded by the input and about two bands instead of the whole
output (a 16384 × 16384 RGB output is 3 GiB as float32). The pixels are those of
``write_image(dst, upscaler.upscale_image(image))``.

Decisions:

- Only PNG is streamed: its rows can be compressed one after the other. Other formats are encoded in memory.
- `needs_streaming` is true from `STREAM_THRESHOLD_PIXELS` output pixels on (`esrgan.io.limits`, with the
  other size limits): below that, the in-memory path is fine and no slower.
- An `outscale` resize streams too (MATLAB bicubic is separable with a small support). Back-projection needs
  the whole output at once and cannot stream; `needs_streaming` is false for it and `upscale_to_png` raises
  `EsrganError`.
- Output size limits (`esrgan.io.limits`), checked by `check_output_size` before any work.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from esrgan.errors import ImageError
from esrgan.inference.upscaler import Upscaler
from esrgan.io import limits
from esrgan.io.images import WRITE_FORMATS, Image, output_format
from esrgan.io.png_stream import PngStreamWriter

logger = logging.getLogger(__name__)


def check_output_size(upscaler: Upscaler, image: Image, dst: str | os.PathLike[str]) -> None:
    """Raise `ImageError` when the output of `image` for `dst` is larger than `esrgan upscale` makes (see the
    limits above); cheap, so it runs before the model does."""
    height, width = upscaler.output_size(image.height, image.width)
    fmt = WRITE_FORMATS.get(Path(dst).suffix.lower(), "PNG")
    problem = limits.output_size_problem(height, width, fmt, streamable=upscaler.can_stream)
    if problem is not None:
        raise ImageError(
            f"the output would be {width:,}×{height:,} pixels "
            f"(×{upscaler.scale:g} of {image.width}×{image.height}); {problem}; lower --outscale"
        )


def needs_streaming(upscaler: Upscaler, image: Image, dst: str | os.PathLike[str]) -> bool:
    """Whether `image` should be upscaled into `dst` with `upscale_to_png` rather than in memory: `dst` is a
    PNG, the output has more than `STREAM_THRESHOLD_PIXELS` pixels, and the upscaler's settings can stream
    (`Upscaler.can_stream`)."""
    height, width = upscaler.output_size(image.height, image.width)
    fmt = WRITE_FORMATS.get(Path(dst).suffix.lower(), "")
    return limits.streams(height, width, fmt, streamable=upscaler.can_stream)


def upscale_to_png(
    upscaler: Upscaler, image: Image, dst: str | os.PathLike[str], *, overwrite: bool = False
) -> None:
    """Upscale `image` into the PNG file `dst` band by band, with bounded memory.

    The file holds the same pixels, ICC profile and EXIF as
    ``write_image(dst, upscaler.upscale_image(image))`` (8 or 16 bits, gray/RGB with or without alpha, as
    `image`). It appears only when complete: on any error
    nothing is left at `dst` and no temporary file remains. An existing `dst` is never replaced unless
    `overwrite`.

    Raises `ImageError` (not a PNG path, `dst` exists, write errors) or `EsrganError` (settings that cannot
    stream, out of memory; see `Upscaler.upscale_image_bands`).
    """
    dst = Path(dst)
    fmt = output_format(dst)
    if fmt != "PNG":
        raise ImageError(f"{dst}: only PNG output can be streamed, not {fmt}; use a .png file name")
    height, width = upscaler.output_size(image.height, image.width)
    channels = (1 if image.pixels.ndim == 2 else 3) + (image.alpha is not None)
    logger.info("streaming a %d×%d output to %s", width, height, dst)
    with (
        PngStreamWriter(
            dst,
            width=width,
            height=height,
            channels=channels,
            bit_depth=image.bit_depth,
            icc_profile=image.icc_profile,
            exif=image.exif,
            overwrite=overwrite,
        ) as writer,
        contextlib.closing(upscaler.upscale_image_bands(image)) as bands,
    ):
        for row0, rows in bands:
            if row0 != writer.rows_written:  # bands come in order by contract; never write rows misplaced
                raise RuntimeError(f"band at output row {row0} after {writer.rows_written} rows")
            writer.write_rows(rows)
