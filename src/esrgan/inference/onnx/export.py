"""`export_onnx`: a torch generator to a self-describing fp32 ONNX file, checked against torch."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from esrgan import __version__
from esrgan.archs.descriptor import describe
from esrgan.errors import ConfigError, EsrganError, WeightsError
from esrgan.inference.onnx._common import (
    DEFAULT_OPSET,
    IN_CHANNELS_KEY,
    INPUT_NAME,
    OUTPUT_NAME,
    PRECISION_KEY,
    SCALE_KEY,
    SIZE_MULTIPLE_KEY,
    SOURCE_KEY,
    SOURCE_SHA_KEY,
    WEIGHTS_SHA_KEY,
    require,
)
from esrgan.inference.onnx.runtime import OnnxModel
from esrgan.weights import load_model, resolve_weights
from esrgan.weights.io import ARCH_KEY, HPARAMS_KEY, write_atomically
from esrgan.weights.zoo import sha256_of

logger = logging.getLogger(__name__)

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
    require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")  # the torch dynamo exporter builds the graph with it
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
    set_metadata(proto, metadata)
    written = write_proto(proto, path, overwrite=overwrite)
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
        file = resolve_weights(model)
        module = load_model(file)
        source = str(model) if model is not None else file.stem
        sha = sha256_of(file)
    if describe(module).scale is None:
        scale = getattr(module, "scale", None)
        raise ConfigError(f"the model needs an integer attribute `scale` >= 1 to be exported, got {scale!r}")
    return module.to(device="cpu", dtype=torch.float32).eval(), source, sha


def _export_metadata(module: nn.Module, source: str, source_sha: str | None) -> dict[str, str]:

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


def set_metadata(proto: Any, metadata: Mapping[str, str]) -> None:
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for p in kept:
        proto.metadata_props.add(key=p.key, value=p.value)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)


def write_proto(proto: Any, path: Path, *, overwrite: bool) -> Path:
    onnx = require("onnx", "ONNX export")
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
