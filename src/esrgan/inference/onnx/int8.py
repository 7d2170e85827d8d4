"""int8 quantisation of ONNX generators for onnxruntime on the CPU (static QDQ or dynamic)."""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from esrgan.errors import ConfigError, WeightsError
from esrgan.inference.onnx._common import (
    DEFAULT_OPSET,
    IN_CHANNELS_KEY,
    INT8_METHODS,
    PRECISION_KEY,
    QUANTIZATION_KEY,
    SCALE_KEY,
    SIZE_MULTIPLE_KEY,
    require,
)
from esrgan.inference.onnx.export import export_onnx, set_metadata, write_proto
from esrgan.inference.onnx.runtime import OnnxModel
from esrgan.io.folders import list_images
from esrgan.io.images import read_image

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# int8


def quantize_onnx_int8(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    calibration_images: str | os.PathLike[str] | Sequence[str | os.PathLike[str] | np.ndarray] | None = None,
    *,
    method: Literal["static", "dynamic"] = "static",
    max_images: int = 32,
    patch_size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Quantise an fp32 ONNX generator to int8 for CPU inference with onnxruntime.

    Args:
        fp32_path: an ONNX file written by `export_onnx` (or any NCHW → NCHW super-resolution graph).
        int8_path: the file to write (atomically).
        calibration_images: for ``method="static"``: images like the ones that will be upscaled (the
            network's *inputs*, i.e. LR images): a folder, a list of files, or a list of ``H×W[×C]`` uint8,
            uint16 or float ([0, 1]) RGB arrays. One random `patch_size` square (the whole image if smaller)
            of each of at most `max_images` images (a seeded random choice) calibrates the activation ranges.
        method: ``"static"`` (calibrated QDQ, int8 throughout) or ``"dynamic"`` (int8 weights, run-time
            activation ranges, no calibration). Module docstring and docs/benchmarks/int8.md.
        max_images, patch_size, seed: calibration sample (static only).
        overwrite: replace `int8_path` if it exists.

    Returns:
        `int8_path`, with the fp32 file's metadata plus ``esrgan.precision = "int8-<method>"`` and the
        settings under ``esrgan.quantization``.
    """
    ort = require("onnxruntime", "int8 quantisation")
    require("onnx", "int8 quantisation")
    from onnxruntime import quantization as q  # type: ignore[import-untyped]

    if method not in INT8_METHODS:
        raise ConfigError(f"unknown int8 method {method!r}; use one of {', '.join(INT8_METHODS)}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    if int8_path.exists() and not overwrite:
        raise WeightsError(
            f"{int8_path} already exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    if int8_path.resolve() == fp32_path.resolve():
        raise WeightsError(f"refusing to quantise {fp32_path} onto itself; choose another output name")
    source = OnnxModel(fp32_path, threads=1)  # validates the file and reads its description
    if source.precision.startswith("int8"):
        raise WeightsError(f"{fp32_path} is already quantised ({source.precision}); quantise the fp32 export")
    if method == "static" and calibration_images is None:
        raise ConfigError(
            "static int8 quantisation needs calibration images (a folder of images like those you will "
            "upscale; CLI: --calibration DIR), or use method='dynamic'"
        )
    settings: dict[str, Any] = {"method": method, "onnxruntime": ort.__version__}
    with tempfile.TemporaryDirectory(prefix="esrgan-int8-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        out = Path(tmp) / "int8.onnx"
        # Shape inference and graph optimisation first (onnxruntime's recommended pre-processing).
        q.quant_pre_process(str(fp32_path), str(pre))
        if method == "static":
            batches = list(
                calibration_batches(
                    calibration_images,  # type: ignore[arg-type]
                    in_channels=source.num_in_ch,
                    size_multiple=source.size_multiple,
                    max_images=max_images,
                    patch_size=patch_size,
                    seed=seed,
                )
            )
            settings.update(
                format="QDQ",
                calibration="MinMax",
                calibration_patches=len(batches),
                patch_size=patch_size,
                weights="int8 per channel",
                activations="uint8 per tensor",
            )
            q.quantize_static(
                str(pre),
                str(out),
                _CalibrationReader(source.input_name, batches),
                quant_format=q.QuantFormat.QDQ,
                per_channel=True,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                calibrate_method=q.CalibrationMethod.MinMax,
            )
        else:
            settings.update(weights="int8 per channel", activations="uint8, range per call")
            q.quantize_dynamic(str(pre), str(out), per_channel=True, weight_type=q.QuantType.QInt8)
        onnx = importlib.import_module("onnx")
        proto = onnx.load(str(out))
        meta = dict(source.metadata)
        # what the source's metadata or probe said, so that the int8 file describes itself too
        meta[SCALE_KEY], meta[IN_CHANNELS_KEY] = str(source.scale), str(source.num_in_ch)
        meta[SIZE_MULTIPLE_KEY] = str(source.size_multiple)
        meta[PRECISION_KEY] = f"int8-{method}"
        meta[QUANTIZATION_KEY] = json.dumps(settings, sort_keys=True)
        set_metadata(proto, meta)
        return write_proto(proto, int8_path, overwrite=overwrite)


def export_onnx_int8(
    model: nn.Module | str | os.PathLike[str] | None,
    path: str | os.PathLike[str],
    calibration_images: str | os.PathLike[str] | Sequence[str | os.PathLike[str] | np.ndarray] | None = None,
    *,
    method: Literal["static", "dynamic"] = "static",
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    **calibration: Any,
) -> Path:
    """`export_onnx` to a temporary fp32 file, then `quantize_onnx_int8` into `path`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise WeightsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if method == "static" and calibration_images is None:
        raise ConfigError(
            "static int8 quantisation needs calibration images (CLI: --calibration DIR), or use "
            "method='dynamic' (CLI: --int8-method dynamic)"
        )
    with tempfile.TemporaryDirectory(prefix="esrgan-onnx-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", opset=opset)
        return quantize_onnx_int8(
            fp32, path, calibration_images, method=method, overwrite=overwrite, **calibration
        )


class _CalibrationReader:
    """onnxruntime `CalibrationDataReader` over prepared NCHW float32 batches."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = list(batches)
        self._iter = iter(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._iter = iter(self.batches)


def calibration_batches(
    images: str | os.PathLike[str] | Sequence[str | os.PathLike[str] | np.ndarray],
    *,
    in_channels: int,
    size_multiple: int = 1,
    max_images: int = 32,
    patch_size: int = 128,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """NCHW float32 [0, 1] calibration inputs: one random ``patch_size²`` crop per image (sides rounded
    down to `size_multiple`; the whole image if smaller). RGB images for a 1-channel model give one sample
    per channel (the `Upscaler` feeds such a model each channel separately); gray images for a 3-channel
    model are replicated; alpha is dropped."""
    if max_images < 1 or patch_size < 1:
        raise ConfigError(f"max_images and patch_size must be >= 1, got {max_images} and {patch_size}")
    if isinstance(images, str | os.PathLike):
        folder = Path(images)
        items: list[Any] = [folder] if folder.is_file() else list(list_images(folder))
    else:
        items = list(images)
    if not items:
        raise ConfigError("no calibration images given")
    rng = np.random.default_rng(seed)
    if len(items) > max_images:
        chosen = sorted(rng.choice(len(items), size=max_images, replace=False))
        items = [items[i] for i in chosen]
    for item in items:
        pixels = _calibration_pixels(item)
        h, w = pixels.shape[:2]
        ph = min(patch_size, h) // size_multiple * size_multiple
        pw = min(patch_size, w) // size_multiple * size_multiple
        if ph == 0 or pw == 0:
            logger.warning(
                "calibration image %s is smaller than %d pixels; skipped", _name(item), size_multiple
            )
            continue
        top = int(rng.integers(0, h - ph + 1))
        left = int(rng.integers(0, w - pw + 1))
        patch = pixels[top : top + ph, left : left + pw]
        chw = np.ascontiguousarray(patch.transpose(2, 0, 1), dtype=np.float32)
        c = chw.shape[0]
        if c == in_channels:
            yield chw[None]
        elif c == 1:
            yield np.repeat(chw[None], in_channels, axis=1)
        elif in_channels == 1:
            yield chw[:, None]
        else:
            raise ConfigError(
                f"{_name(item)}: a {c}-channel image cannot calibrate a {in_channels}-channel model"
            )


def _calibration_pixels(item: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
    """``H×W×C`` float32 [0, 1] colour pixels (alpha dropped) of a file or an array."""
    if isinstance(item, np.ndarray):
        array = item
        if array.ndim == 3 and array.shape[2] in (2, 4):
            array = array[:, :, :-1]
    else:
        array = read_image(item).pixels
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ConfigError(f"{_name(item)}: expected an H×W or H×W×C image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(array, 0.0, 1.0).astype(np.float32)
    raise ConfigError(f"{_name(item)}: expected uint8, uint16 or float pixels, got {array.dtype}")


def _name(item: object) -> str:
    return f"array {item.shape}" if isinstance(item, np.ndarray) else str(item)
