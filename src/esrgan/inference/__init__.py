"""Inference: image files, tiling and the `Upscaler`.

    image_io   read_image / write_image / Image     (no torch import)
    tiling     plan_tiles / tiled_forward / Tile
    upscaler   Upscaler
    files      collect_inputs / output_path / upscale_files / UpscaleSummary

Names are imported lazily so that reading an image does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Image": "esrgan.inference.image_io",
    "read_image": "esrgan.inference.image_io",
    "write_image": "esrgan.inference.image_io",
    "Tile": "esrgan.inference.tiling",
    "plan_tiles": "esrgan.inference.tiling",
    "tiled_forward": "esrgan.inference.tiling",
    "Upscaler": "esrgan.inference.upscaler",
    "UpscaleSummary": "esrgan.inference.files",
    "collect_inputs": "esrgan.inference.files",
    "output_path": "esrgan.inference.files",
    "upscale_files": "esrgan.inference.files",
}

__all__ = [
    "Image",
    "Tile",
    "UpscaleSummary",
    "Upscaler",
    "collect_inputs",
    "output_path",
    "plan_tiles",
    "read_image",
    "tiled_forward",
    "upscale_files",
    "write_image",
]

if TYPE_CHECKING:
    from esrgan.inference.files import UpscaleSummary, collect_inputs, output_path, upscale_files
    from esrgan.inference.image_io import Image, read_image, write_image
    from esrgan.inference.tiling import Tile, plan_tiles, tiled_forward
    from esrgan.inference.upscaler import Upscaler


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'esrgan.inference' has no attribute {name!r}")
