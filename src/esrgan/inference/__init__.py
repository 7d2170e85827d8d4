"""Inference: image files, tiling and the `Upscaler`.

    image_io   read_image / write_image / Image     (no torch import)
    tiling     plan_tiles / tiled_forward / tiled_forward_bands / Tile
    upscaler   Upscaler
    png_stream PngStreamWriter                      (no torch import)
    streaming  needs_streaming / upscale_to_png     (outputs too large for memory, band by band into PNG)
    files      collect_inputs / output_path / upscale_files / UpscaleSummary / Shard
    manifest   Recipe / recipe_for / read_manifest      (the resumable record of `esrgan upscale`)
    onnx_backend  OnnxModel / export_onnx / quantize_onnx_int8   (optional extra "onnx"; docs/onnx.md)

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
    "STREAM_THRESHOLD_PIXELS": "esrgan.inference.streaming",
    "needs_streaming": "esrgan.inference.streaming",
    "upscale_to_png": "esrgan.inference.streaming",
    "Upscaler": "esrgan.inference.upscaler",
    "UpscaleSummary": "esrgan.inference.files",
    "collect_inputs": "esrgan.inference.files",
    "output_path": "esrgan.inference.files",
    "upscale_files": "esrgan.inference.files",
    "Shard": "esrgan.inference.files",
    "Recipe": "esrgan.inference.manifest",
    "recipe_for": "esrgan.inference.manifest",
    "read_manifest": "esrgan.inference.manifest",
    "OnnxModel": "esrgan.inference.onnx_backend",
    "export_onnx": "esrgan.inference.onnx_backend",
    "quantize_onnx_int8": "esrgan.inference.onnx_backend",
}

__all__ = [
    "STREAM_THRESHOLD_PIXELS",
    "Image",
    "OnnxModel",
    "PngStreamWriter",
    "Recipe",
    "Shard",
    "Tile",
    "UpscaleSummary",
    "Upscaler",
    "collect_inputs",
    "export_onnx",
    "needs_streaming",
    "output_path",
    "plan_tiles",
    "quantize_onnx_int8",
    "read_image",
    "read_manifest",
    "recipe_for",
    "tiled_forward",
    "tiled_forward_bands",
    "upscale_files",
    "upscale_to_png",
    "write_image",
]

if TYPE_CHECKING:
    from esrgan.inference.files import Shard, UpscaleSummary, collect_inputs, output_path, upscale_files
    from esrgan.inference.manifest import Recipe, read_manifest, recipe_for
    from esrgan.inference.onnx_backend import OnnxModel, export_onnx, quantize_onnx_int8
    from esrgan.inference.streaming import STREAM_THRESHOLD_PIXELS, needs_streaming, upscale_to_png
    from esrgan.inference.tiling import Tile, plan_tiles, tiled_forward, tiled_forward_bands
    from esrgan.inference.upscaler import Upscaler
    from esrgan.io.images import Image, read_image, write_image
    from esrgan.io.png_stream import PngStreamWriter


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'esrgan.inference' has no attribute {name!r}")
