"""esrgan: ESRGAN and SRGAN super-resolution.

Public API (imported lazily so that `esrgan --help` does not pay for importing torch):

    esrgan.load_model(name_or_path)      -> torch.nn.Module (eval mode)
    esrgan.Upscaler(model, tile=...)     .upscale(numpy array | PIL image)
    esrgan.read_image / esrgan.write_image
    esrgan.metrics.psnr / ssim / niqe, esrgan.ops.matlab_resize.imresize
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "esrgan.weights",
    "inspect_weights": "esrgan.weights",
    "convert_weights": "esrgan.weights",
    "save_model": "esrgan.weights",
    "Upscaler": "esrgan.inference.upscaler",
    "read_image": "esrgan.io.images",
    "write_image": "esrgan.io.images",
    "EsrganError": "esrgan.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from esrgan.errors import EsrganError  # noqa: F401
    from esrgan.inference.upscaler import Upscaler  # noqa: F401
    from esrgan.io.images import read_image, write_image  # noqa: F401
    from esrgan.weights import convert_weights, inspect_weights, load_model, save_model  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in {"archs", "weights", "ops", "metrics", "inference", "eval", "data", "losses", "train", "mos"}:
        return importlib.import_module(f"esrgan.{name}")
    raise AttributeError(f"module 'esrgan' has no attribute {name!r}")
