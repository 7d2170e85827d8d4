"""Inference: upscaling one image with a model (the `Upscaler`), its tiles, precision and memory.

    tiling     plan_tiles / tiled_forward / tiled_forward_bands / Tile
    upscaler   Upscaler
    pixels     array and Pillow conversions to and from the model's float tensors
    runner     how one tile runs (channels_last, strips, half precision with fp32 fall back)
    streaming  needs_streaming / upscale_to_png     (outputs too large for memory, band by band into PNG)
    onnx       OnnxModel / export_onnx / quantize_onnx_int8   (optional extra "onnx"; docs/onnx.md)

Image files are `esrgan.io`, and jobs over many files (`esrgan upscale`) are `esrgan.jobs`.

Names are imported lazily so that reading an image does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Image": "esrgan.io.images",
    "read_image": "esrgan.io.images",
    "write_image": "esrgan.io.images",
    "Tile": "esrgan.inference.tiling",
    "plan_tiles": "esrgan.inference.tiling",
    "tiled_forward": "esrgan.inference.tiling",
    "tiled_forward_bands": "esrgan.inference.tiling",
    "PngStreamWriter": "esrgan.io.png_stream",
    "STREAM_THRESHOLD_PIXELS": "esrgan.io.limits",
    "needs_streaming": "esrgan.inference.streaming",
    "upscale_to_png": "esrgan.inference.streaming",
    "Upscaler": "esrgan.inference.upscaler",
    "OnnxModel": "esrgan.inference.onnx",
    "export_onnx": "esrgan.inference.onnx",
    "quantize_onnx_int8": "esrgan.inference.onnx",
}

__all__ = [
    "STREAM_THRESHOLD_PIXELS",
    "Image",
    "OnnxModel",
    "PngStreamWriter",
    "Tile",
    "Upscaler",
    "export_onnx",
    "needs_streaming",
    "plan_tiles",
    "quantize_onnx_int8",
    "read_image",
    "tiled_forward",
    "tiled_forward_bands",
    "upscale_to_png",
    "write_image",
]

if TYPE_CHECKING:
    from esrgan.inference.onnx import OnnxModel, export_onnx, quantize_onnx_int8
    from esrgan.inference.streaming import needs_streaming, upscale_to_png
    from esrgan.inference.tiling import Tile, plan_tiles, tiled_forward, tiled_forward_bands
    from esrgan.inference.upscaler import Upscaler
    from esrgan.io.images import Image, read_image, write_image
    from esrgan.io.limits import STREAM_THRESHOLD_PIXELS
    from esrgan.io.png_stream import PngStreamWriter


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'esrgan.inference' has no attribute {name!r}")
