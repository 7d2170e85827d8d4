"""`Upscaler`: run a super-resolution model on arrays, PIL images, tensors and `Image`s.

The model is any `torch.nn.Module` with an integer attribute `scale` that maps NCHW float RGB in [0, 1] to
NCHW float ``scale×`` larger (not clamped). Everything else is handled here:

- gray images are replicated to 3 channels for a 3-channel model and the result turned back into gray with
  BT.601 weights (0.299, 0.587, 0.114); a 1-channel model gets each channel separately;
- alpha is upscaled on its own, by the model (replicated to 3 channels, result to gray, as Real-ESRGAN does)
  or by bicubic interpolation;
- big images go through blended tiles (`esrgan.inference.tiling`); ``tile="auto"`` picks the tile size from
  free memory and halves it after an out-of-memory error down to a minimum, then raises `EsrganError`
  (`esrgan.inference.memory`) — errors are never swallowed (Real-ESRGAN prints and carries on with a stale
  tile, SPEC §13.16);
- optional back-projection (`esrgan.ops.back_projection`, SPEC §11) of the colour channels onto the input;
- `outscale` resizes the network output to any final scale (bicubic with antialiasing, on float data, so
  16-bit images keep 16-bit precision);
- output: clamp to [0, 1], ×255 or ×65535, round half to even, cast to the input dtype.

How each tile runs (channels_last, inference mode, the upsampling tail in strips, fp16/bf16 autocast with an
fp32 fall back) is `esrgan.inference.runner.ModelRunner`'s job; the model is moved to `device` and put in eval
mode when the `Upscaler` is created. An `Upscaler` keeps no state between calls, except that a failed
half-precision tile switches it to fp32 for good.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from functools import partial
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn

from esrgan.archs.descriptor import ModelDescriptor, describe
from esrgan.errors import ConfigError, EsrganError
from esrgan.inference.memory import MemoryPolicy, is_out_of_memory
from esrgan.inference.pixels import (
    bt601_gray,
    from_float,
    stack_alpha,
    to_float,
    upscale_array,
    upscale_pil,
)
from esrgan.inference.runner import ModelRunner, Precision
from esrgan.inference.tiling import tiled_forward, tiled_forward_bands
from esrgan.io.images import Image
from esrgan.io.limits import MAX_IN_MEMORY_OUTPUT_PIXELS, scaled_size
from esrgan.ops.back_projection import back_project
from esrgan.ops.matlab_resize import StreamingResize, resize_to
from esrgan.precision import PRECISION_CHOICES, resolve_precision

logger = logging.getLogger(__name__)

# Tile overlap (input pixels) by default: with the bundled models, 8-pixel-overlap tiles differ from the
# whole-image output by at most one level (83-92 dB), and a smaller overlap wastes less work
# (docs/inference.md).
DEFAULT_TILE_OVERLAP = 8
# Streaming (`Upscaler.upscale_image_bands`) with tile=0 or "auto": the float32 accumulator of one band of
# output rows (tile · scale rows × the full output width) stays below this many bytes; two bands can be alive
# at once, so with the input as float32 a 16384² output stays near 1 GB (docs/benchmarks/streaming.md).
STREAM_BAND_BYTES = 128 << 20
ArrayOrPIL = TypeVar("ArrayOrPIL", np.ndarray, PILImage.Image)


class Upscaler:
    """Upscale images with a super-resolution model.

    Args:
        model: `nn.Module` with an int attribute `scale`; NCHW float [0, 1] → NCHW float, `scale`× larger.
        tile: input tile size in pixels; 0 = the whole image at once; "auto" = from free memory, halved
            after an out-of-memory error.
        tile_overlap: context pixels on each side of a tile that it does not contribute to, plus as many
            for the cross-fade between tiles (see `esrgan.inference.tiling`). Tiled output equals
            whole-image output when this is at least the model's receptive-field radius.
        device: "cpu", "cuda", "cuda:1", "mps", ...; default CUDA if available, else CPU.
        half: fp16 inference; only on CUDA (elsewhere fp32 is used and a warning logged). Same as
            ``precision="fp16"``.
        precision: "auto" (default), "fp32", "fp16" (CUDA) or "bf16" autocast. "auto" is fp16 on CUDA, bf16
            on CPUs with native bf16 (AMX, AVX512-BF16), fp32 elsewhere and for models without weights
            (`esrgan.precision`); the choice is in `requested_precision`. A tile whose half-precision output
            is not finite or black is redone in fp32, and fp32 is kept from then on
            (`esrgan.inference.runner`).
        alpha_upsampler: how an alpha channel is upscaled: "model" or "bicubic" (``alpha=`` is the same
            argument's older name, kept for existing code).
        tile_batch: run up to this many same-sized tiles through the model at once (GPUs: fuller device).
        outscale: final scale factor (any positive number); the network output is resized to
            ``round(h·outscale) × round(w·outscale)``. Default: the model's scale.
        back_projection: iterations of back-projection (MATLAB ``main_reverse_filter.m``, SPEC §11; the
            ESRGAN PIRM submission used 20) applied to the colour channels of the network output, before
            `outscale`; 0 = off.
        progress: show a tqdm bar over the tiles of each image.
        as_written: compute the network exactly as written, without its inference rewrites (evaluation:
            tables that reproduce bit for bit; see `esrgan.archs.blocks.as_written`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        tile: int | Literal["auto"] = 0,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        device: str | torch.device | None = None,
        half: bool = False,
        precision: Precision | Literal["auto"] | None = None,
        alpha_upsampler: Literal["model", "bicubic"] = "model",
        tile_batch: int = 1,
        outscale: float | None = None,
        back_projection: int = 0,
        progress: bool = False,
        alpha: Literal["model", "bicubic"] | None = None,
        as_written: bool = False,
    ) -> None:
        if alpha is not None:  # the older name of alpha_upsampler
            alpha_upsampler = alpha
        described = describe(model)
        if described.scale is None:
            scale = getattr(model, "scale", None)
            raise ConfigError(f"the model needs an integer attribute `scale` >= 1, got {scale!r}")
        _check_settings(tile, tile_overlap, tile_batch, alpha_upsampler, outscale, back_projection)
        precision = _precision_setting(half, precision)
        self.device = torch.device(device) if device is not None else _default_device(described)
        if precision == "auto" and not described.has_weights:
            precision = "fp32"  # a weightless wrapper (onnxruntime) computes outside PyTorch's autocast
        chosen = resolve_precision(precision, self.device, "inference")
        if precision == "auto":
            logger.info("precision auto: %s on %s", chosen, self.device)
        self.runner = ModelRunner(model, self.device, precision=chosen, as_written=as_written)
        self.model = self.runner.model
        # What the job asked for (the runner may fall back to fp32 later); recorded in manifests.
        self.requested_precision: Precision = self.runner.precision
        self.model_scale = scale = described.scale
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.tile_batch = tile_batch
        self.alpha_upsampler = alpha_upsampler
        self.outscale = None if outscale is None else float(outscale)
        self.back_projection = back_projection
        self.progress = progress
        self.in_channels = described.in_channels
        self.size_multiple = described.size_multiple
        self.memory = MemoryPolicy(self.device, self.runner, scale, self.size_multiple, tile_overlap)

    @property
    def scale(self) -> float:
        """The final scale: `outscale` if given, else the model's scale."""
        return self.outscale if self.outscale is not None else float(self.model_scale)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Output ``(height, width)`` for an input of ``height × width`` pixels."""
        if self.outscale is None:
            return height * self.model_scale, width * self.model_scale
        return scaled_size(height, width, self.outscale)

    # ----------------------------------------------------------------------------------------------
    # public entry points

    def upscale(self, image: ArrayOrPIL) -> ArrayOrPIL:
        """Upscale a numpy array or a PIL image and return the same kind.

        Arrays: ``H×W`` (gray) or ``H×W×C`` with C = 1 (gray), 2 (gray + alpha), 3 (RGB), 4 (RGBA); dtype
        uint8, uint16 or float in [0, 1]; the result has the same layout and dtype. PIL images keep their mode
        for L, LA, RGB, RGBA, I;16 (and I, F); palette and other modes come back as RGB or RGBA ("1" as L).
        The ICC profile and EXIF in ``image.info`` are copied to the result.
        """
        if isinstance(image, PILImage.Image):
            return self._upscale_pil(image)
        if isinstance(image, np.ndarray):
            return self._upscale_array(image)
        raise TypeError(f"expected a numpy array or a PIL image, got {type(image).__name__}")

    def upscale_image(self, image: Image) -> Image:
        """Upscale an `Image` (as returned by `read_image`), keeping its dtype, alpha and metadata."""
        if image.alpha is None:
            return replace(image, pixels=self._upscale_array(image.pixels))
        out = self._upscale_array(stack_alpha(image.pixels, image.alpha))
        color = out[:, :, 0] if image.pixels.ndim == 2 else out[:, :, :3]
        return replace(image, pixels=np.ascontiguousarray(color), alpha=np.ascontiguousarray(out[:, :, -1]))

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale an NCHW float tensor in [0, 1]; returns NCHW float32 in [0, 1] on `x`'s device.

        C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
            raise ValueError(f"expected a float NCHW tensor, got {getattr(x, 'shape', type(x))}")
        channels = x.shape[1]
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"expected 1 to 4 channels (gray, gray+alpha, RGB, RGBA), got {channels}")
        height, width = x.shape[2:]
        out_height, out_width = self.output_size(height, width)
        if out_height * out_width > MAX_IN_MEMORY_OUTPUT_PIXELS:
            raise EsrganError(
                f"the output would be {out_width:,}×{out_height:,} pixels, more than the "
                f"{MAX_IN_MEMORY_OUTPUT_PIXELS / 1e6:.0f} megapixels made in memory; lower outscale, or "
                "stream "
                "it to PNG with esrgan.inference.upscale_to_png"
            )
        with torch.no_grad():
            x = x.detach().float()
            if channels in (2, 4):
                color, alpha = x[:, : channels - 1], x[:, channels - 1 :]
            else:
                color, alpha = x, None
            out = self._upscale_color(color)
            if self.back_projection:
                out = self._back_project(out, color)
            if alpha is not None:
                if self.alpha_upsampler == "model":
                    out_alpha = self._upscale_color(alpha)
                else:
                    out_alpha = F.interpolate(
                        alpha, size=out.shape[2:], mode="bicubic", align_corners=False
                    ).clamp_(0, 1)
                out = torch.cat([out, out_alpha], dim=1)
            target = self.output_size(height, width)
            if tuple(out.shape[2:]) != target:
                # MATLAB bicubic with antialiasing (a proper low-pass when outscale < model scale), on float
                # data (16-bit safe); the same resize as the streamed path, so both give the same pixels.
                out = resize_to(out, target).clamp_(0, 1)
        return out

    def _back_project(self, sr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:

        out = back_project(sr, lr, scale=self.model_scale, iterations=self.back_projection)
        return out.to(torch.float32)

    # ----------------------------------------------------------------------------------------------
    # streaming

    @property
    def can_stream(self) -> bool:
        """Whether `upscale_image_bands` works with these settings (no step that needs the whole output)."""
        return self._stream_blocker() is None

    def upscale_image_bands(self, image: Image) -> Generator[tuple[int, np.ndarray], None, None]:
        """Upscale `image` band by band of output rows, for outputs too large to hold in memory.

        Yields ``(row0, rows)`` top to bottom, covering ``output_size(image.height, image.width)``: `rows` is
        ``r × W' × C`` of the image's dtype holding output rows ``[row0, row0 + r)``, colour channels then
        alpha (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA). The pixels are those of `upscale_image`: the same
        tiles, blending, channel handling and rounding (the model runs on the tiles of one tile row at a time,
        colour and alpha interleaved). Alpha by bicubic interpolation is computed per band with two input
        rows of context, exact for model scales that are powers of two. An `outscale` resize is done band by
        band too (`esrgan.ops.matlab_resize.StreamingResize`, the resize `upscale_image` uses).

        The whole point is bounded memory, so there is always a tile size: `tile` if it is a number, else
        (``tile=0`` or ``"auto"``) the automatic tile size, further limited so that one band accumulator
        stays below `STREAM_BAND_BYTES` (for small images the same tile as ``"auto"`` in memory). Memory
        held: the input (8-bit images as they are, tiles converted as they run; others as float32) and about
        two bands of ``tile · scale`` float32 output rows.

        Raises `EsrganError` when the settings need the whole output at once (back-projection) and for
        out-of-memory errors (with ``tile=0``/``"auto"``, an
        out-of-memory error before the first band halves the tile and starts again).
        """
        blocker = self._stream_blocker()
        if blocker is not None:
            raise EsrganError(f"cannot stream the output band by band: {blocker}")
        adaptive = self.tile == 0 or self.tile == "auto"
        tile, first, bands = self.memory.retry(
            partial(self._start_bands, image), self._stream_tile(image), adaptive=adaptive
        )
        yield first
        try:
            yield from bands
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            raise EsrganError(
                f"out of memory with {tile}-pixel tiles on {self.device} after part of the output was done; "
                "use a smaller --tile"
            ) from e

    def _stream_blocker(self) -> str | None:
        """Why these settings cannot stream (a step needs the whole output), or None."""
        if self.back_projection:
            return "back-projection needs the whole output image; leave back_projection at 0"
        return None

    def _stream_tile(self, image: Image) -> int:
        """The input tile size for streaming `image` (see `upscale_image_bands`)."""
        if isinstance(self.tile, int) and self.tile > 0:
            return self.tile
        # float32 bytes of one band accumulator per input row: `scale` output rows of the full output width
        # with the model's channels (twice when alpha goes through the model: a second accumulator).
        groups = 2 if image.alpha is not None and self.alpha_upsampler == "model" else 1
        channels = max(self.in_channels, 3)  # gray goes through a 3-channel model as RGB
        per_input_row = 4 * groups * channels * image.width * self.model_scale**2
        # an outscale resize holds its output band too: (outscale / scale)² as many bytes per input row
        per_input_row = int(per_input_row * (1 + (self.scale / self.model_scale) ** 2))
        return self.memory.stream_tile(image.height, image.width, per_input_row, STREAM_BAND_BYTES)

    def _start_bands(
        self, image: Image, tile: int
    ) -> tuple[int, tuple[int, np.ndarray], Generator[tuple[int, np.ndarray], None, None]]:
        """The bands of `image` with `tile`, started: ``(tile, first band, the rest)``; out-of-memory errors
        show here, before anything was yielded (`upscale_image_bands` then retries with smaller tiles)."""
        bands = self._image_bands(image, tile)
        try:
            return tile, next(bands), bands
        except BaseException:
            bands.close()
            raise

    def _image_bands(self, image: Image, tile: int) -> Generator[tuple[int, np.ndarray], None, None]:
        """`upscale_image_bands` for one tile size, without its out-of-memory handling."""
        bands = self._model_scale_bands(image, tile)
        target = self.output_size(image.height, image.width)
        s = self.model_scale
        if target != (image.height * s, image.width * s):  # outscale: MATLAB bicubic, band by band
            resize = StreamingResize((image.height * s, image.width * s), target)
            bands = (out for _, band in bands for out in resize.push(band))
        for row0, band in bands:
            yield row0, from_float(band[0].permute(1, 2, 0), image.pixels.dtype)

    def _model_scale_bands(self, image: Image, tile: int) -> Iterator[tuple[int, torch.Tensor]]:
        """The model's output band by band (float ``1×C×rows×(W·s)``), colour channels then alpha."""
        s = self.model_scale
        color = image.pixels if image.pixels.ndim == 3 else image.pixels[:, :, None]
        x = _band_input(color)
        color_bands = self._color_bands(x, tile)
        if image.alpha is None:
            yield from color_bands
            return
        alpha = _band_input(image.alpha[:, :, None])
        alpha_bands = self._color_bands(alpha, tile) if self.alpha_upsampler == "model" else None
        for row0, band in color_bands:
            if alpha_bands is not None:
                alpha_row0, alpha_band = next(alpha_bands)
                if (alpha_row0, alpha_band.shape[2]) != (row0, band.shape[2]):  # same plan: cannot happen
                    raise RuntimeError("colour and alpha bands out of step")
            else:
                alpha_band = _bicubic_rows(alpha, row0, band.shape[2], s)
            yield row0, torch.cat([band, alpha_band], dim=1)

    def _color_bands(self, x: torch.Tensor, tile: int) -> Iterator[tuple[int, torch.Tensor]]:
        """`_upscale_color` band by band: ``(row0, N×C×rows×(W·s))`` float in [0, 1]."""
        model_input, from_model = self._adapt_channels(x)
        for row0, band in self._forward_bands(model_input, tile):
            yield row0, from_model(band)

    def _forward_bands(self, x: torch.Tensor, tile: int) -> Iterator[tuple[int, torch.Tensor]]:
        """`_forward` band by band with tiles of `tile` input pixels (no out-of-memory handling)."""
        n, c, h, w = x.shape
        s = self.model_scale
        tile = max(self.size_multiple, tile // self.size_multiple * self.size_multiple)  # as `_tiled`
        if not x.is_floating_point() and (-h % self.size_multiple or -w % self.size_multiple):
            x = _as_unit_float(x)  # mirror padding needs float data
        run = self._run_model if x.is_floating_point() else lambda t: self._run_model(_as_unit_float(t))
        progress = _TileProgress(self.progress)
        try:
            for row0, band in tiled_forward_bands(
                run,
                self._pad_to_multiple(x),
                scale=s,
                tile=tile,
                overlap=self.tile_overlap,
                progress=progress,
                batch=self.tile_batch,
                multiple=self.size_multiple,
            ):
                if row0 < h * s:  # rows below h·s come from the padding only
                    yield row0, band[:, :, : h * s - row0, : w * s].clamp(0, 1)
        finally:
            progress.close()

    # ----------------------------------------------------------------------------------------------
    # conversions (esrgan.inference.pixels)

    def _upscale_array(self, array: np.ndarray) -> np.ndarray:
        return upscale_array(self.upscale_tensor, array)

    def _upscale_pil(self, image: PILImage.Image) -> PILImage.Image:
        return upscale_pil(self.upscale_tensor, image)

    # ----------------------------------------------------------------------------------------------
    # model

    def _upscale_color(self, x: torch.Tensor) -> torch.Tensor:
        """N×C×H×W float → N×C×(H·s)×(W·s) float in [0, 1], adapting channels to the model."""
        model_input, from_model = self._adapt_channels(x)
        return from_model(self._forward(model_input))

    def _adapt_channels(self, x: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """The model's input for N×C×H×W colour `x`, and the function that turns the model's clamped output
        (or any band of its rows) back into C channels in [0, 1]."""
        n, c, h, w = x.shape
        m = self.in_channels
        if c == m:
            return x, _identity
        if c == 1 and m == 3:
            return x.expand(n, 3, h, w), bt601_gray
        if m == 1:
            return x.reshape(n * c, 1, h, w), lambda y: y.reshape(n, c, *y.shape[2:])
        raise ConfigError(f"the model takes {m} channels; cannot upscale a {c}-channel image with it")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model output for `x` (whole or tiled, with OOM handling), clamped to [0, 1], on `x`'s device."""
        n, c, h, w = x.shape
        x = self._pad_to_multiple(x)
        s = self.model_scale
        if self.tile == 0:
            y = self._whole(x)
        elif self.tile == "auto":
            y = self.memory.retry(
                partial(self._tiled, x), self.memory.first_tile(*x.shape[2:]), adaptive=True
            )
        else:
            y = self.memory.retry(partial(self._tiled, x), self.tile, adaptive=False)
        return y[:, :, : h * s, : w * s].clamp(0, 1)  # out of place: `y` may be an inference-mode tensor

    def _pad_to_multiple(self, x: torch.Tensor) -> torch.Tensor:
        """`x` mirror-padded at the bottom/right to sizes divisible by the model's size multiple (the output
        is cropped back afterwards)."""
        h, w = x.shape[2:]
        q = self.size_multiple
        pad_h, pad_w = -h % q, -w % q
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return x

    @property
    def precision(self) -> Precision:
        """ "fp32", "fp16" or "bf16"; becomes "fp32" after half precision gave unusable output."""
        return self.runner.precision

    @property
    def half(self) -> bool:
        return self.precision != "fp32"

    def _run_model(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)

    def _whole(self, x: torch.Tensor) -> torch.Tensor:
        try:
            y = self._run_model(x)
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            raise EsrganError(
                f"out of memory upscaling a {x.shape[3]}×{x.shape[2]} image on {self.device}; "
                "use --tile auto or --tile 512 (tile=...) to process it in pieces"
            ) from e
        expected = (x.shape[2] * self.model_scale, x.shape[3] * self.model_scale)
        if tuple(y.shape[2:]) != expected:
            raise ValueError(f"model output {tuple(y.shape)} does not match its scale {self.model_scale}")
        return y.to(x.device)

    def _tiled(self, x: torch.Tensor, tile: int) -> torch.Tensor:
        """Blended tiles of `tile` input pixels (out-of-memory errors go to `MemoryPolicy.retry`)."""
        tile = max(self.size_multiple, tile // self.size_multiple * self.size_multiple)
        progress = _TileProgress(self.progress)
        try:
            return tiled_forward(
                self._run_model,
                x,
                scale=self.model_scale,
                tile=tile,
                overlap=self.tile_overlap,
                progress=progress,
                batch=self.tile_batch,
                multiple=self.size_multiple,
            )
        finally:
            progress.close()


# --------------------------------------------------------------------------------------------------
# helpers


def _identity(y: torch.Tensor) -> torch.Tensor:
    return y


def _band_input(array: np.ndarray) -> torch.Tensor:
    """``1×C×H×W`` input for streaming: 8-bit images stay uint8 (a quarter of float32's memory; tiles are
    converted as the model takes them, to the same values), others become float32 in [0, 1]."""
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0)
    return torch.from_numpy(to_float(array)).permute(2, 0, 1).unsqueeze(0)


def _as_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 tensor → float32 in [0, 1], as `to_float` converts arrays (a division in float32)."""
    return x.to(torch.float32).div_(255.0)


def _bicubic_rows(alpha: torch.Tensor, row0: int, rows: int, scale: int) -> torch.Tensor:
    """Output rows ``[row0, row0 + rows)`` of the bicubic ×`scale` upscaling of N×1×H×W `alpha`, clamped.

    Interpolates only the input rows under the band plus two rows of context on each side (the bicubic
    kernel's reach), so each output pixel sees the same input pixels, weights and border clamping as when
    the whole image is interpolated; the result is bit-identical when 1/`scale` is exact in binary.
    """
    height, width = alpha.shape[2:]
    if row0 % scale or rows % scale:
        raise ValueError(f"band rows [{row0}, {row0 + rows}) are not whole input rows at scale {scale}")
    a0, a1 = row0 // scale, (row0 + rows) // scale
    c0, c1 = max(0, a0 - 2), min(height, a1 + 2)
    rows_in = alpha[:, :, c0:c1]
    if not rows_in.is_floating_point():
        rows_in = _as_unit_float(rows_in)
    up = F.interpolate(rows_in, size=((c1 - c0) * scale, width * scale), mode="bicubic", align_corners=False)
    return up[:, :, (a0 - c0) * scale : (a1 - c0) * scale].clamp_(0, 1)


def _check_settings(
    tile: object,
    tile_overlap: object,
    tile_batch: object,
    alpha_upsampler: object,
    outscale: object,
    back_projection: object,
) -> None:
    """Raise `ConfigError` for an `Upscaler` setting out of its range (see the class docstring)."""
    if not (tile == "auto" or (isinstance(tile, int) and not isinstance(tile, bool) and tile >= 0)):
        raise ConfigError(f"tile must be an integer >= 0 (0 = whole image) or 'auto', got {tile!r}")
    if not isinstance(tile_overlap, int) or tile_overlap < 0:
        raise ConfigError(f"tile_overlap must be an integer >= 0, got {tile_overlap!r}")
    if isinstance(tile, int) and 0 < tile <= 3 * tile_overlap:
        raise ConfigError(
            f"tile ({tile}) must be larger than 3 × tile_overlap ({3 * tile_overlap}); "
            "use a larger --tile or a smaller --tile-overlap"
        )
    if not isinstance(tile_batch, int) or isinstance(tile_batch, bool) or tile_batch < 1:
        raise ConfigError(f"tile_batch must be an integer >= 1, got {tile_batch!r}")
    if alpha_upsampler not in ("model", "bicubic"):
        raise ConfigError(f"alpha_upsampler must be 'model' or 'bicubic', got {alpha_upsampler!r}")
    if outscale is not None and not (
        isinstance(outscale, int | float) and math.isfinite(outscale) and outscale > 0
    ):
        raise ConfigError(f"outscale must be a positive number, got {outscale!r}")
    if not isinstance(back_projection, int) or isinstance(back_projection, bool) or back_projection < 0:
        raise ConfigError(f"back_projection must be an integer >= 0 (iterations), got {back_projection!r}")


def _precision_setting(half: bool, precision: str | None) -> str:
    """The precision asked for by ``half`` / ``precision`` ("auto" when neither says)."""
    if precision is None:
        precision = "fp16" if half else "auto"
    elif half and precision != "fp16":
        raise ConfigError(f"half=True means precision 'fp16', but precision={precision!r} was given")
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    return precision


def _default_device(described: ModelDescriptor) -> torch.device:
    """The model's preferred device if it names one (e.g. "cpu" for an onnxruntime model), else CUDA if
    available, else the CPU."""
    if described.preferred_device is not None:
        return torch.device(described.preferred_device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _TileProgress:
    """tqdm bar over the tiles of one image, created only when there is more than one tile."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 1:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="tiles", unit="tile", leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
