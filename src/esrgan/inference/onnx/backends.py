"""Choosing the backend of `esrgan upscale`, and the cache of ONNX files exported from weights files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

from esrgan.errors import ConfigError, EsrganError
from esrgan.inference.onnx._common import (
    CACHE_FORMAT,
    DEFAULT_OPSET,
)
from esrgan.inference.onnx.export import export_onnx
from esrgan.inference.onnx.runtime import OnnxModel
from esrgan.weights import load_model, resolve_weights
from esrgan.weights.zoo import cache_dir, sha256_of

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# cache


def cached_onnx_path(weights_file: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> Path:
    """Where `onnx_model_for` keeps the export of a weights file: ``<cache>/onnx/<sha256>-opset<N>-v<K>.onnx``
    (``<cache>`` as for downloads: $ESRGAN_CACHE, else $XDG_CACHE_HOME/esrgan, else ~/.cache/esrgan), keyed
    by the file's content, so a renamed or re-downloaded file finds its export and a changed one does not."""

    digest = sha256_of(Path(weights_file))
    return cache_dir() / "onnx" / f"{digest}-opset{opset}-v{CACHE_FORMAT}.onnx"


def onnx_model_for(
    source: str | os.PathLike[str] | None,
    *,
    threads: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> OnnxModel:
    """An `OnnxModel` for a ``.onnx`` file, or for any weights `load_model` accepts (None = the bundled
    default), exported on first use into the cache (`cached_onnx_path`) and reused afterwards."""
    if source is not None and Path(source).suffix.lower() == ".onnx":
        return OnnxModel(source, threads=threads)

    weights = resolve_weights(source)
    cached = cached_onnx_path(weights, opset=opset)
    if not cached.is_file():
        logger.info("exporting %s to ONNX (once) at %s", weights, cached)
        try:
            export_onnx(source, cached, opset=opset, overwrite=True)
        except OSError as exc:
            raise EsrganError(
                f"cannot write the ONNX cache {cached.parent} ({exc}); set ESRGAN_CACHE to a writable folder "
                "or export the model yourself (esrgan export onnx MODEL -o FILE.onnx) and pass the .onnx file"
            ) from exc
    return OnnxModel(cached, threads=threads)


# --------------------------------------------------------------------------------------------------
# backends

BACKENDS = ("torch", "onnxruntime")


def choose_backend(source: str | os.PathLike[str] | None, backend: str | None = None) -> str:
    """The backend for `source`: `backend` if given, else "onnxruntime" for a ``.onnx`` file and "torch"
    otherwise; an error for a ``.onnx`` file with the torch backend."""
    is_onnx = source is not None and Path(source).suffix.lower() == ".onnx"
    if backend is None:
        return "onnxruntime" if is_onnx else "torch"
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "torch" and is_onnx:
        raise ConfigError(
            f"{source} is an ONNX model; run it with the onnxruntime backend (--backend onnxruntime)"
        )
    return backend


def load_backend_model(
    source: str | os.PathLike[str] | None,
    backend: str | None = None,
    *,
    threads: int | None = None,
) -> nn.Module:
    """The model to give an `Upscaler`: `esrgan.weights.load_model(source)` for the torch backend,
    `onnx_model_for(source)` (a ``.onnx`` file, or weights exported once into the cache) for onnxruntime."""
    if choose_backend(source, backend) == "onnxruntime":
        return onnx_model_for(source, threads=threads)

    return load_model(source, device="cpu")
