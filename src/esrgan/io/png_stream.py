"""A PNG writer that takes the image a band of rows at a time, for images too large to hold in memory.

The file is written by hand with zlib: signature, IHDR, iCCP (ICC profile) and eXIf (EXIF) when given, IDAT
chunks from one `zlib.compressobj` fed row band by row band (each row filtered with `image_io`'s adaptive
filter, continuing from the previous band's last row), IEND. 8 and 16 bits per sample; gray, gray + alpha,
RGB and RGBA.

Like `write_image`, it never leaves a partial file: rows go through `esrgan._fs.atomic_writer` (a temporary
file in the destination folder, synced and moved into place only when every row was written); any error, or
leaving the ``with`` block by an exception, removes it. An existing file is never replaced unless
``overwrite=True``, even one that appeared while writing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from esrgan._fs import atomic_writer
from esrgan.errors import ImageError
from esrgan.io.images import (
    _PNG_COLOR_TYPE,
    _PNG_SIGNATURE,
    EXIF_PREFIX,
    _png_chunk,
    _png_filter,
)

logger = logging.getLogger(__name__)

# Compressed bytes collected before an IDAT chunk is written (decoders do not care; fewer chunk headers).
IDAT_CHUNK_BYTES = 1 << 20


class _Aborted(Exception):
    """Thrown into the atomic writer to discard the temporary file."""


class PngStreamWriter:
    """Write a ``width × height`` PNG band by band: ``with PngStreamWriter(...) as w: w.write_rows(rows)``.

    Args:
        path: the output file.
        width, height: image size in pixels.
        channels: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
        bit_depth: 8 (rows are ``uint8``) or 16 (``uint16``).
        icc_profile: raw ICC profile, written as an iCCP chunk.
        exif: EXIF block (TIFF structure, with or without the ``b"Exif\\0\\0"`` prefix), written as eXIf.
        overwrite: replace an existing file at `path`; otherwise an existing file is an `ImageError`.
        compress_level: zlib level 0–9 (6, as `write_image`).

    The file appears at `path` when the ``with`` block ends normally (or `close` is called) after exactly
    `height` rows; `abort` (or an exception in the block) removes everything written. Write errors raise
    `ImageError` naming the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        channels: int,
        bit_depth: int,
        icc_profile: bytes | None = None,
        exif: bytes | None = None,
        overwrite: bool = False,
        compress_level: int = 6,
    ) -> None:
        if not (1 <= width < 2**31 and 1 <= height < 2**31):
            raise ValueError(f"PNG width and height must be 1 to 2**31 - 1, got {width}×{height}")
        if channels not in _PNG_COLOR_TYPE:
            raise ValueError(f"channels must be 1 to 4 (gray, gray+alpha, RGB, RGBA), got {channels}")
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
        self.path = Path(path)
        self.width, self.height, self.channels, self.bit_depth = width, height, channels, bit_depth
        self.overwrite = overwrite
        self.rows_written = 0
        self._dtype = np.dtype(np.uint8 if bit_depth == 8 else ">u2")
        self._bytes_per_pixel = channels * bit_depth // 8
        self._previous: np.ndarray | None = None  # last unfiltered byte row, for the next row's filter
        self._compressor = zlib.compressobj(compress_level)
        self._pending = bytearray()
        self._file: BinaryIO | None = None
        self._done = False

        if not overwrite and self.path.exists():
            raise ImageError(f"{self.path}: already exists; use --overwrite (overwrite=True) to replace it")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ImageError(
                f"{self.path}: cannot create the folder {self.path.parent} ({e.strerror or e})"
            ) from e
        self._writer: contextlib.AbstractContextManager[BinaryIO]
        self._writer = atomic_writer(self.path, overwrite=overwrite)
        try:
            self._file = self._writer.__enter__()
            color_type = _PNG_COLOR_TYPE[channels]
            header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
            self._file.write(_PNG_SIGNATURE + _png_chunk(b"IHDR", header))
            if icc_profile:
                self._file.write(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
            if exif:
                self._file.write(_png_chunk(b"eXIf", exif.removeprefix(EXIF_PREFIX)))
        except OSError as e:
            self.abort()
            raise ImageError(f"{self.path}: cannot write the file ({e.strerror or e})") from e

    def write_rows(self, rows: np.ndarray) -> None:
        """Append the next rows: ``r × width × channels`` (or ``r × width`` for gray) of ``uint8``/``uint16``
        matching `bit_depth`."""
        if self._done:
            raise ValueError(f"{self.path}: the PNG writer is already closed")
        expected_dtype = np.uint8 if self.bit_depth == 8 else np.uint16
        if rows.ndim == 2 and self.channels == 1:
            rows = rows[:, :, None]
        if rows.dtype != expected_dtype or rows.ndim != 3 or rows.shape[1:] != (self.width, self.channels):
            raise ValueError(
                f"expected rows of shape (r, {self.width}, {self.channels}) and dtype "
                f"{np.dtype(expected_dtype).name}, got {rows.shape} {rows.dtype}"
            )
        if self.rows_written + rows.shape[0] > self.height:
            raise ValueError(
                f"{self.path}: {self.rows_written + rows.shape[0]} rows written to a {self.height}-row PNG"
            )
        if rows.shape[0] == 0:
            return
        raw = np.ascontiguousarray(rows, dtype=self._dtype).view(np.uint8).reshape(rows.shape[0], -1)
        if self._previous is not None:  # Up/Average/Paeth of the first row refer to the previous band
            filtered = _png_filter(np.concatenate([self._previous[None], raw]), self._bytes_per_pixel)[1:]
        else:
            filtered = _png_filter(raw, self._bytes_per_pixel)
        self._previous = raw[-1].copy()
        self._pending += self._compressor.compress(filtered.tobytes())
        self.rows_written += rows.shape[0]
        self._write_idat(final=False)

    def close(self) -> None:
        """Finish the file and move it to `path`; `ImageError` (and nothing at `path`) if rows are missing
        or the write fails."""
        if self._done:
            return
        if self.rows_written != self.height:
            self.abort()
            raise ImageError(
                f"{self.path}: only {self.rows_written} of {self.height} rows were written; no file was made"
            )
        self._pending += self._compressor.flush()
        self._write_idat(final=True)
        assert self._file is not None
        try:
            self._file.write(_png_chunk(b"IEND", b""))
            self._file = None
            self._done = True
            self._writer.__exit__(None, None, None)  # fsync, then move into place
        except FileExistsError:
            exists = f"{self.path}: already exists; use --overwrite (overwrite=True) to replace it"
            raise ImageError(exists) from None
        except OSError as e:
            self.abort()
            raise ImageError(f"{self.path}: cannot write the file ({e.strerror or e})") from e

    def abort(self) -> None:
        """Stop writing and remove the temporary file; nothing is created at `path`. Safe to call twice."""
        if self._file is None and self._done:
            return
        self._done = True
        self._file = None
        with contextlib.suppress(OSError, _Aborted):
            self._writer.__exit__(_Aborted, _Aborted(), None)  # an error inside the block: nothing is moved

    def _write_idat(self, *, final: bool) -> None:
        assert self._file is not None
        try:
            while len(self._pending) >= IDAT_CHUNK_BYTES or (final and self._pending):
                size = min(len(self._pending), IDAT_CHUNK_BYTES)
                self._file.write(_png_chunk(b"IDAT", bytes(self._pending[:size])))
                del self._pending[:size]
        except OSError as e:
            self.abort()
            raise ImageError(f"{self.path}: cannot write the file ({e.strerror or e})") from e

    def __enter__(self) -> PngStreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
