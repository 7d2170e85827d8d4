"""ONNX export and an onnxruntime backend, with an int8 quantised CPU path.

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

import copy
import hashlib
import importlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from esrgan.archs.descriptor import describe
from esrgan.errors import ConfigError, EsrganError, WeightsError
from esrgan.io.folders import list_images
from esrgan.weights.io import ARCH_KEY, HPARAMS_KEY, write_atomically

logger = logging.getLogger(__name__)

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
_CACHE_FORMAT = 1


def _require(module: str, purpose: str) -> Any:
    """Import an optional dependency, or an EsrganError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EsrganError(
            f"{purpose} needs the '{module}' package, which is not installed; {INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------------------------------
# export


def export_onnx(
    model: nn.Module | str | os.PathLike[str] | None,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    verify: bool = True,
) -> Path:
    """Export a generator to an fp32 ONNX file with dynamic batch, height and width.

    Args:
        model: an `nn.Module` (NCHW float in [0, 1] → NCHW ``scale×`` larger, with an int `scale`), or
            anything `esrgan.weights.load_model` accepts (a weights file, a bundled or zoo name; None = the
            bundled default model).
        path: the ``.onnx`` file to write (atomically: a temporary file renamed into place).
        opset: ONNX opset of the default domain.
        overwrite: replace `path` if it exists (otherwise a `WeightsError`).
        verify: run the written graph with onnxruntime on an odd-sized input and compare with torch.

    Returns:
        `path`. Its metadata_props describe the model (module docstring).
    """
    _require("onnx", "ONNX export")
    _require("onnxscript", "ONNX export")  # the torch dynamo exporter builds the graph with it
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 6):
        raise EsrganError(
            f"ONNX export needs torch >= 2.6 (its dynamo exporter); this is torch {torch.__version__}"
        )
    path = Path(path)
    if path.exists() and not overwrite:
        raise WeightsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    module, source, source_sha = _module_and_source(model)
    metadata = _export_metadata(module, source, source_sha)
    proto = _export_proto(module, opset)
    _set_metadata(proto, metadata)
    written = _write_proto(proto, path, overwrite=overwrite)
    if verify:
        _verify_export(module, written)
    return written


def _module_and_source(
    model: nn.Module | str | os.PathLike[str] | None,
) -> tuple[nn.Module, str, str | None]:
    """(a float32 CPU eval copy of the module, a description of its source, the source file's SHA-256)."""
    if isinstance(model, nn.Module):
        if isinstance(model, OnnxModel):
            raise ConfigError(f"{model.path} is already an ONNX model; export the torch model it came from")
        module = copy.deepcopy(model)  # the caller's module keeps its device, dtype and mode
        source, sha = f"nn.Module {type(model).__name__}", None
    else:
        from esrgan.weights import load_model, resolve_weights
        from esrgan.weights.zoo import sha256_of

        file = resolve_weights(model)
        module = load_model(file)
        source = str(model) if model is not None else file.stem
        sha = sha256_of(file)
    if describe(module).scale is None:
        scale = getattr(module, "scale", None)
        raise ConfigError(f"the model needs an integer attribute `scale` >= 1 to be exported, got {scale!r}")
    return module.to(device="cpu", dtype=torch.float32).eval(), source, sha


def _export_metadata(module: nn.Module, source: str, source_sha: str | None) -> dict[str, str]:
    from esrgan import __version__

    described = describe(module)  # scale checked by _module_and_source
    meta = {
        SCALE_KEY: str(described.scale),
        IN_CHANNELS_KEY: str(described.in_channels),
        SIZE_MULTIPLE_KEY: str(described.size_multiple),
        PRECISION_KEY: "fp32",
        SOURCE_KEY: source,
        WEIGHTS_SHA_KEY: _state_dict_sha256(module),
        "esrgan.version": __version__,
        "esrgan.torch_version": torch.__version__,
    }
    if described.named:
        meta[ARCH_KEY] = described.arch
    if described.hparams is not None:
        meta[HPARAMS_KEY] = json.dumps(described.hparams, sort_keys=True)
    if source_sha is not None:
        meta[SOURCE_SHA_KEY] = source_sha
    return meta


def _state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over the tensors (name, dtype, shape, bytes in name order): the same weights give the same
    digest whatever file or container they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _export_proto(module: nn.Module, opset: int) -> Any:
    """The ONNX ModelProto of `module` from the dynamo exporter, batch/height/width dynamic."""
    from torch.export import Dim

    described = describe(module)
    q = described.size_multiple
    example = torch.rand(1, described.in_channels, 4 * q, 6 * q)  # unequal sides: no H/W specialisation
    dims = {0: Dim("batch", min=1), 2: Dim("height", min=1), 3: Dim("width", min=1)}
    forward_arg = next(iter(_forward_parameters(module)), "x")
    torch_logger = logging.getLogger("torch.onnx")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" etc.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={forward_arg: dims},
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
    except Exception as exc:
        raise EsrganError(
            f"could not export {type(module).__name__} to ONNX with torch {torch.__version__} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    finally:
        torch_logger.setLevel(level)
    if program is None:  # only when a file name is passed, which is not done here
        raise EsrganError("torch.onnx.export returned no program")
    return program.model_proto


def _forward_parameters(module: nn.Module) -> list[str]:
    import inspect

    return list(inspect.signature(module.forward).parameters)


def _set_metadata(proto: Any, metadata: Mapping[str, str]) -> None:
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for p in kept:
        proto.metadata_props.add(key=p.key, value=p.value)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)


def _write_proto(proto: Any, path: Path, *, overwrite: bool) -> Path:
    onnx = _require("onnx", "ONNX export")
    onnx.checker.check_model(proto)
    return write_atomically(path, lambda f: f.write(proto.SerializeToString()), overwrite=overwrite)


def _verify_export(module: nn.Module, path: Path) -> None:
    """onnxruntime output of the written file equals torch's on an input of another (odd) size."""
    described = describe(module)
    q = described.size_multiple
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, described.in_channels, 5 * q, 7 * q, generator=generator)  # odd when q = 1
    with torch.inference_mode():
        expected = module(x)
    got = OnnxModel(path, threads=1)(x)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-3, atol=1e-4):
        worst = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise EsrganError(
            f"the ONNX export {path} does not reproduce the torch model (shape {tuple(got.shape)} vs "
            f"{tuple(expected.shape)}, largest difference {worst:.3g}); please report this with the model"
        )


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
    ort = _require("onnxruntime", "int8 quantisation")
    _require("onnx", "int8 quantisation")
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
        _set_metadata(proto, meta)
        return _write_proto(proto, int8_path, overwrite=overwrite)


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
        from esrgan.io.images import read_image

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


# --------------------------------------------------------------------------------------------------
# runtime


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata_props of an ONNX file (without loading its weights into a session)."""
    onnx = _require("onnx", "reading ONNX metadata")
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
        ort = _require("onnxruntime", "The onnxruntime backend")
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


# --------------------------------------------------------------------------------------------------
# cache


def cached_onnx_path(weights_file: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> Path:
    """Where `onnx_model_for` keeps the export of a weights file: ``<cache>/onnx/<sha256>-opset<N>-v<K>.onnx``
    (``<cache>`` as for downloads: $ESRGAN_CACHE, else $XDG_CACHE_HOME/esrgan, else ~/.cache/esrgan), keyed
    by the file's content, so a renamed or re-downloaded file finds its export and a changed one does not."""
    from esrgan.weights.zoo import cache_dir, sha256_of

    digest = sha256_of(Path(weights_file))
    return cache_dir() / "onnx" / f"{digest}-opset{opset}-v{_CACHE_FORMAT}.onnx"


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
    from esrgan.weights import resolve_weights

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
    from esrgan.weights import load_model

    return load_model(source, device="cpu")
