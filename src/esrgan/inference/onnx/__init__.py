"""ONNX export and an onnxruntime backend, with an int8 quantised CPU path (one module per job: `export`,
`int8`, `runtime`, `backends`).

Optional: needs the ``onnx`` extra (``pip install "esrgan[onnx]"``: onnx, onnxruntime and onnxscript, which
the torch exporter uses); without it every entry point raises `EsrganError` saying so.

    export_onnx(model, "m.onnx")                      torch model → ONNX (fp32, dynamic batch/height/width)
    quantize_onnx_int8("m.onnx", "m.int8.onnx", imgs) fp32 ONNX → int8 ONNX (static QDQ or dynamic)
    export_onnx_int8(model, "m.int8.onnx", imgs)      both in one step (the fp32 file is temporary)
    OnnxModel("m.onnx")                               an nn.Module over an onnxruntime session, so
                                                      ``Upscaler(OnnxModel(path))`` works (tiling, alpha, …)
    onnx_model_for(source)                            OnnxModel for a .onnx file, or for any weights
                                                      `load_model` accepts, exported once into the cache
    load_backend_model(source, "onnxruntime")         what `esrgan upscale --backend` loads

Files are self-describing: the ONNX ``metadata_props`` hold the architecture and hyperparameters (the same
``esrgan.arch`` / ``esrgan.hparams`` keys as our safetensors files), the scale, input channels, size
multiple, precision and where the weights came from (``esrgan.source``, ``esrgan.source_sha256`` of the
weights file when exported from one, and ``esrgan.weights_sha256``, a digest of the tensors themselves).
ONNX files from elsewhere work too: the scale and channels are then found by running a small probe input.

Export uses the torch ``dynamo`` exporter (``torch.export`` + onnxscript; the TorchScript exporter is
deprecated) at opset 18, then checks the file with onnxruntime against torch on an odd-sized input.

int8 (docs/benchmarks/int8.md has the measurements): ``"static"`` is QDQ quantisation with int8 per-channel
weights and uint8 activations whose ranges are calibrated (MinMax) on patches of real images — every
convolution, activation, concatenation and addition then runs in int8 (onnxruntime's QLinear kernels);
``"dynamic"`` quantises only the weights ahead of time and each convolution's input at run time from its own
range (ConvInteger), which needs no calibration and loses less quality, but leaves more of the work in float.
Percentile and entropy calibration were measured too and rejected: their narrower ranges clip the
activations of bright regions (errors of up to 50 levels in white areas).
"""

from __future__ import annotations

from esrgan.inference.onnx._common import DEFAULT_OPSET, INT8_METHODS
from esrgan.inference.onnx.backends import (
    BACKENDS,
    cached_onnx_path,
    choose_backend,
    load_backend_model,
    onnx_model_for,
)
from esrgan.inference.onnx.export import export_onnx
from esrgan.inference.onnx.int8 import calibration_batches, export_onnx_int8, quantize_onnx_int8
from esrgan.inference.onnx.runtime import OnnxModel, onnx_metadata

__all__ = [
    "BACKENDS",
    "DEFAULT_OPSET",
    "INT8_METHODS",
    "OnnxModel",
    "cached_onnx_path",
    "calibration_batches",
    "choose_backend",
    "export_onnx",
    "export_onnx_int8",
    "load_backend_model",
    "onnx_metadata",
    "onnx_model_for",
    "quantize_onnx_int8",
]
