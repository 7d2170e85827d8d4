"""`OnnxModel`: an ONNX generator run by onnxruntime, usable wherever a torch generator is."""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from esrgan.errors import ConfigError, WeightsError
from esrgan.inference.onnx._common import (
    IN_CHANNELS_KEY,
    PRECISION_KEY,
    SCALE_KEY,
    SIZE_MULTIPLE_KEY,
    require,
)
from esrgan.weights.io import ARCH_KEY, HPARAMS_KEY

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# runtime


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata_props of an ONNX file (without loading its weights into a session)."""
    onnx = require("onnx", "reading ONNX metadata")
    path = _existing_onnx_file(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise WeightsError(f"{path} is not a readable ONNX model (truncated or not ONNX?): {exc}") from exc
    return {p.key: p.value for p in proto.metadata_props}


def _existing_onnx_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"ONNX file not found: {path}")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not an ONNX file")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); export it again (esrgan export onnx)")
    return path


class OnnxModel(nn.Module):
    """A super-resolution ONNX file run by onnxruntime on the CPU, usable wherever a torch generator is.

    ``forward(x)`` takes an NCHW float tensor (any device; computed as float32 on the CPU) and returns the
    output on `x`'s device and dtype. Attributes read by `Upscaler`: `scale`, `num_in_ch`, `size_multiple`
    (from the file's metadata, else found by running a small probe input); also `arch`, `hparams`,
    `precision` ("fp32", "int8-static", "int8-dynamic", or "unknown" for foreign files) and `metadata`.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime intra-op threads; None = onnxruntime's default, one per physical core.
        providers: onnxruntime execution providers; default ``["CPUExecutionProvider"]``.

    The session is not pickled: a copy (``copy.deepcopy``, another process) opens the file again.
    """

    preferred_device = "cpu"  # the Upscaler's default device for this model: inputs are needed on the CPU

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise ConfigError(f"threads must be an integer >= 0 (0 = onnxruntime's default), got {threads!r}")
        self.path = _existing_onnx_file(path)
        self.threads = threads
        self.providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        self._session = self._open()
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1 or len(inputs[0].shape) != 4:
            raise WeightsError(
                f"{self.path} is not a super-resolution model: expected one NCHW input, got "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.arch = self.metadata.get(ARCH_KEY, "onnx")
        self.precision = self.metadata.get(PRECISION_KEY, "unknown")
        try:
            self.hparams: dict[str, Any] = json.loads(self.metadata.get(HPARAMS_KEY, "{}"))
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{self.path}: unreadable '{HPARAMS_KEY}' metadata ({exc})") from exc
        if SCALE_KEY in self.metadata:
            try:
                self.scale = int(self.metadata[SCALE_KEY])
                self.num_in_ch = int(self.metadata.get(IN_CHANNELS_KEY, "3"))
                self.size_multiple = int(self.metadata.get(SIZE_MULTIPLE_KEY, "1"))
            except ValueError as exc:
                raise WeightsError(f"{self.path}: unreadable esrgan metadata ({exc})") from exc
        else:
            self.scale, self.num_in_ch, self.size_multiple = self._probe(inputs[0].shape)

    def _open(self) -> Any:
        ort = require("onnxruntime", "The onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            return ort.InferenceSession(str(self.path), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, …)
            raise WeightsError(
                f"{self.path} could not be loaded by onnxruntime (not an ONNX model, truncated, or an "
                f"operator this onnxruntime lacks): {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from exc

    def _probe(self, input_shape: Sequence[Any]) -> tuple[int, int, int]:
        """(scale, input channels, size multiple) of a file without our metadata, from a probe run."""
        channels = input_shape[1] if isinstance(input_shape[1], int) else 3
        quiet = importlib.import_module("onnxruntime").RunOptions()
        quiet.log_severity_level = 4  # the failed tries are expected: do not print them
        for multiple in (1, 2, 4, 8):  # odd multiples of `multiple`: a model needing more fails to run
            height, width = 7 * multiple, 9 * multiple
            x = np.zeros((1, channels, height, width), dtype=np.float32)
            try:
                y = self._session.run([self.output_name], {self.input_name: x}, quiet)[0]
            except Exception:  # e.g. pixel-unshuffle models need even sizes
                continue
            scale = y.shape[2] // height if y.ndim == 4 else 0
            if scale >= 1 and y.shape[2:] == (height * scale, width * scale):
                return scale, channels, multiple
        raise WeightsError(
            f"{self.path} has no esrgan metadata and its scale could not be found from a test input; "
            "export it with `esrgan export onnx` or check that it is a super-resolution model"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        try:
            (y,) = self._session.run([self.output_name], {self.input_name: array})
        except Exception as exc:
            if "alloc" in str(exc).lower():  # let the Upscaler's out-of-memory handling see it
                raise MemoryError(f"onnxruntime ran out of memory: {exc}") from exc
            raise
        return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, scale={self.scale}, precision={self.precision!r}"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_session", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._session = self._open()

    def __deepcopy__(self, memo: dict[int, Any]) -> OnnxModel:
        clone = OnnxModel.__new__(OnnxModel)
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone
