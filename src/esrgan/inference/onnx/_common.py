"""What the ONNX modules share: the optional dependency check, metadata keys and defaults."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from esrgan.errors import EsrganError

logger = logging.getLogger(__name__)


DEFAULT_OPSET = 18  # the lowest opset the dynamo exporter targets natively; onnxruntime ≥ 1.14 runs it
INT8_METHODS = ("static", "dynamic")
INSTALL_HINT = 'install the ONNX extra: pip install "esrgan[onnx]"'

# metadata_props keys (values are strings; JSON where structured)
SCALE_KEY = "esrgan.scale"
IN_CHANNELS_KEY = "esrgan.num_in_ch"
SIZE_MULTIPLE_KEY = "esrgan.size_multiple"
PRECISION_KEY = "esrgan.precision"  # "fp32", "int8-static" or "int8-dynamic"
SOURCE_KEY = "esrgan.source"
SOURCE_SHA_KEY = "esrgan.source_sha256"
WEIGHTS_SHA_KEY = "esrgan.weights_sha256"
QUANTIZATION_KEY = "esrgan.quantization"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
# Cache file names change with this when the export itself changes (opset, graph, metadata).
CACHE_FORMAT = 1


def require(module: str, purpose: str) -> Any:
    """Import an optional dependency, or an EsrganError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EsrganError(
            f"{purpose} needs the '{module}' package, which is not installed; {INSTALL_HINT}"
        ) from exc
