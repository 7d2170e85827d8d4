"""Reading and writing weight files safely.

Reading never executes code from a pickle (`torch.load(weights_only=True)`); every container format the
community uses is unwrapped to a flat {name: tensor} dict. Files we write are safetensors whose metadata
names the architecture and its hyperparameters, written to a temporary name and renamed (never half a file).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor

from esrgan._fs import atomic_writer
from esrgan.errors import WeightsError

# Wrapper keys, most preferred first: the EMA generator beats the raw one (Real-ESRGAN's inference choice).
WRAPPER_KEYS = (
    "params_ema",
    "params-ema",
    "params",
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "netG",
)
STRIP_PREFIXES = ("module.", "netG.", "generator.", "model_ema.")
ARCH_KEY = "esrgan.arch"
HPARAMS_KEY = "esrgan.hparams"
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


@dataclass(frozen=True)
class RawWeights:
    """A weights file reduced to tensors: `state_dict`, the safetensors `metadata` (empty for pickles) and a
    short description of the `container` found (e.g. "pth: {'params_ema'}", "safetensors")."""

    path: Path
    state_dict: dict[str, Tensor]
    metadata: dict[str, str]
    container: str


def read_weights(path: str | os.PathLike[str]) -> RawWeights:
    """Read any supported weights file; WeightsError (naming the file) when it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); download it again")
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    return _read_pickle(path)


def _read_safetensors(path: Path) -> RawWeights:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc
    sd, found = unwrap_state_dict(tensors, path)
    return RawWeights(path, sd, metadata, "safetensors" + found)


def _read_pickle(path: Path) -> RawWeights:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _is_blocked_global(str(exc)):
            raise WeightsError(
                f"{path} holds Python objects that could execute code when unpickled, so it was not loaded; "
                "if you trust the file, convert it to safetensors with the tool that made it"
            ) from exc
        raise WeightsError(f"{path} is not a PyTorch weights file, or it is corrupt") from exc
    except Exception as exc:
        # The weights-only unpickler runs no code from the file, so any other failure means damaged bytes:
        # RuntimeError/BadZipFile for a cut zip, and EOFError, KeyError, IndexError, struct.error, … from a
        # damaged legacy (pre-1.6, non-zip) pickle.
        raise WeightsError(
            f"{path} could not be read (truncated or corrupt download?): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a dict of tensors")
    sd, found = unwrap_state_dict(obj, path)
    return RawWeights(path, sd, {}, "pth" + found)


def _is_blocked_global(message: str) -> bool:
    """Whether torch's weights-only unpickler refused a global (a class or function the file refers to).

    PyTorch < 2.4 says "Unsupported global: GLOBAL x.y"; later versions "unsupported GLOBAL x.y whose module
    x is blocked" (or "... was not an allowed global").
    """
    return re.search(r"unsupported global", message, re.IGNORECASE) is not None


def unwrap_state_dict(obj: Mapping[str, Any], path: Path | str = "<memory>") -> tuple[dict[str, Tensor], str]:
    """Find the state dict inside a checkpoint dict; strip DataParallel-style prefixes.

    Returns (state dict, description of the wrapper, e.g. " {'params_ema'}" or "").
    """
    found = ""
    for _ in range(3):  # wrappers nest at most a couple of levels deep in practice
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None and len(obj) == 1:
            only = next(iter(obj))
            key = only if isinstance(obj[only], Mapping) else None
        if key is None:
            break
        found += f"['{key}']"
        obj = obj[key]
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if not tensors:
        raise WeightsError(f"{path} holds no tensors (keys found: {list(obj)[:8]})")
    for prefix in STRIP_PREFIXES:
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors, (f" {found}" if found else "")


def write_safetensors(
    path: str | os.PathLike[str],
    state_dict: Mapping[str, Tensor],
    metadata: Mapping[str, str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write tensors + string metadata atomically (`esrgan._fs`)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    data = save(tensors, dict(metadata))
    return write_atomically(Path(path), lambda f: f.write(data), overwrite=overwrite)


def write_pth(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = False) -> Path:
    """torch.save atomically."""
    return write_atomically(Path(path), lambda f: torch.save(obj, f), overwrite=overwrite)


def write_atomically(path: Path, write: Callable[[BinaryIO], object], *, overwrite: bool) -> Path:
    """Call ``write(file)`` on a temporary file that becomes `path` when it returns (`esrgan._fs`);
    `WeightsError` when `path` exists (without `overwrite`) or cannot be written."""
    try:
        with atomic_writer(path, overwrite=overwrite) as f:
            write(f)
    except FileExistsError:
        exists = f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it"
        raise WeightsError(exists) from None
    except OSError as e:
        raise WeightsError(f"{path}: cannot write the file ({e.strerror or e})") from e
    return path


def model_metadata(
    arch: str, hparams: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """safetensors metadata that makes a file self-describing (all values must be strings)."""
    meta = {ARCH_KEY: arch, HPARAMS_KEY: json.dumps(dict(hparams), sort_keys=True), "format": "pt"}
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return meta


def provenance_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata entries that describe where weights came from (training config, step, commit, …), i.e.
    everything but the architecture description that `model_metadata` writes."""
    return {k: v for k, v in metadata.items() if k not in (ARCH_KEY, HPARAMS_KEY, "format")}
