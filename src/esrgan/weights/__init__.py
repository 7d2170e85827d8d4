"""Loading, saving, inspecting, converting and interpolating model weights.

One loading path for every file (spandrel's recipe): read safely → unwrap the container → identify the key
layout → rename to our keys → infer hyperparameters from tensor shapes (or read them from our own metadata)
→ build the model → strict load.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from esrgan.archs import ARCHITECTURES, GENERATORS
from esrgan.archs.descriptor import describe
from esrgan.errors import WeightsError
from esrgan.weights.convert import CANONICAL_LAYOUT, LAYOUTS, from_canonical, identify, to_canonical
from esrgan.weights.detect import infer_hparams
from esrgan.weights.io import (
    ARCH_KEY,
    HPARAMS_KEY,
    SAFETENSORS_SUFFIXES,
    model_metadata,
    provenance_metadata,
    read_weights,
    write_pth,
    write_safetensors,
)
from esrgan.weights.zoo import MODEL_ZOO, fetch, sha256_of

__all__ = [
    "LAYOUTS",
    "MODEL_ZOO",
    "LoadedWeights",
    "ModelInfo",
    "build_model",
    "convert_weights",
    "inspect_weights",
    "nonfinite_tensors",
    "interpolate_models",
    "load_model",
    "read_generator_weights",
    "resolve_weights",
    "save_model",
    "weights_sha256",
]

BUNDLED_DIR = Path(__file__).parent / "bundled"
DEFAULT_MODEL = (
    "esrgan_lite_psnr_x4"  # the bundled model `esrgan upscale` uses without --model (docs/models.md)
)

ModelSource = str | os.PathLike[str] | nn.Module


@dataclass(frozen=True)
class LoadedWeights:
    """A generator's weights with our key names, its architecture and hyperparameters."""

    path: Path
    arch: str
    hparams: dict[str, Any]
    state_dict: dict[str, Tensor]
    layout: str
    container: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """What `esrgan inspect` shows about a weights file."""

    path: Path
    arch: str
    hparams: dict[str, Any]
    scale: int
    num_params: int
    layout: str
    container: str
    metadata: dict[str, str]
    nonfinite: dict[str, str] = field(default_factory=dict)  # tensors with NaN/Inf: the file is unusable


def bundled_models() -> dict[str, Path]:
    """Models shipped inside the package, by name."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.safetensors"))}


def resolve_weights(name_or_path: str | os.PathLike[str] | None, *, progress: bool = True) -> Path:
    """The local file for a path, a bundled model name or a zoo name (downloaded if needed)."""
    if name_or_path is None:
        if DEFAULT_MODEL not in bundled_models():
            raise WeightsError(
                f"no model given and the bundled default model '{DEFAULT_MODEL}' is missing from this "
                "installation; pass one with --model NAME or --model PATH (`esrgan models` lists the names)"
            )
        name_or_path = DEFAULT_MODEL
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if name in bundled_models():
        return bundled_models()[name]
    if name in MODEL_ZOO:
        return fetch(name, progress=progress)
    known = ", ".join([*bundled_models(), *MODEL_ZOO])
    raise WeightsError(f"no file and no known model named '{name}'; known models: {known}")


def weights_sha256(name_or_path: str | os.PathLike[str] | None = None, *, progress: bool = True) -> str:
    """SHA-256 (hex) of the file that `load_model(name_or_path)` reads: names a model's exact weights, e.g. in
    the manifest of `esrgan upscale`. None is the bundled default model."""
    return sha256_of(resolve_weights(name_or_path, progress=progress))


def nonfinite_tensors(state_dict: Mapping[str, Tensor]) -> dict[str, str]:
    """``{key: "3 NaN, 1 Inf of 1,728 values"}`` for every floating-point tensor with NaN or ±Inf in it."""
    found = {}
    for key, t in state_dict.items():
        if not t.is_floating_point() or bool(torch.isfinite(t).all()):
            continue
        nan = int(torch.isnan(t).sum())
        inf = int(torch.isinf(t).sum())
        found[key] = f"{nan:,} NaN, {inf:,} Inf of {t.numel():,} values"
    return found


def read_generator_weights(path: str | os.PathLike[str], *, allow_nonfinite: bool = False) -> LoadedWeights:
    """Read a generator's weights file into our key names, with architecture and hyperparameters.

    Weights with NaN or Inf would make every output black or garbage, so they raise `WeightsError` naming
    the first bad tensor, unless `allow_nonfinite` (used by `inspect_weights`, which reports them).
    """
    raw = read_weights(path)
    if not allow_nonfinite and (bad := nonfinite_tensors(raw.state_dict)):
        key, what = next(iter(bad.items()))
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise WeightsError(
            f"{raw.path}: tensor '{key}' holds {what}{more}; the file is damaged or came from a diverged "
            "training run, and was not loaded"
        )
    source = str(raw.path)
    if ARCH_KEY in raw.metadata:  # a file we wrote: it says what it is
        arch = raw.metadata[ARCH_KEY]

        if arch not in GENERATORS:
            raise WeightsError(f"{source} holds a {arch}, not an upscaling generator")
        try:
            hparams = json.loads(raw.metadata.get(HPARAMS_KEY, "{}"))
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{source}: unreadable '{HPARAMS_KEY}' metadata ({exc})") from exc
        layout = CANONICAL_LAYOUT.get(arch, "native")
        sd = raw.state_dict
    else:
        arch, layout = identify(set(raw.state_dict), source)
        sd = to_canonical(raw.state_dict, arch, layout, source)
        hparams = infer_hparams(arch, sd, source)
    return LoadedWeights(raw.path, arch, hparams, sd, layout, raw.container, raw.metadata)


def build_model(
    arch: str,
    hparams: Mapping[str, Any],
    state_dict: Mapping[str, Tensor] | None = None,
    source: str = "weights",
) -> nn.Module:
    """Instantiate `arch` with `hparams` and strictly load `state_dict` into it."""

    try:
        model = ARCHITECTURES[arch](**hparams)
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{source}: cannot build {arch} with {dict(hparams)} ({exc})") from exc
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0:4]
            raise WeightsError(f"{source} does not fit {arch}{dict(hparams)}: {' '.join(first)}") from exc
    return model


def load_model(
    name_or_path: ModelSource | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> nn.Module:
    """A generator in eval mode from a file (any supported layout), a bundled or zoo model name, or a
    module."""
    if isinstance(name_or_path, nn.Module):
        return name_or_path.to(device).eval()
    weights = read_generator_weights(resolve_weights(name_or_path, progress=progress))
    model = build_model(weights.arch, weights.hparams, weights.state_dict, str(weights.path))
    return model.to(device).eval()


def inspect_weights(name_or_path: str | os.PathLike[str]) -> ModelInfo:
    w = read_generator_weights(resolve_weights(name_or_path), allow_nonfinite=True)
    model = build_model(w.arch, w.hparams, w.state_dict, str(w.path))  # proves the file fits the arch
    return ModelInfo(
        path=w.path,
        arch=w.arch,
        hparams=dict(w.hparams),
        scale=int(w.hparams["scale"]),
        num_params=sum(p.numel() for p in model.parameters()),
        layout=w.layout,
        container=w.container,
        metadata=w.metadata,
        nonfinite=nonfinite_tensors(w.state_dict),
    )


def save_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a generator as self-describing safetensors (architecture + hyperparameters in the metadata)."""
    described = describe(model)
    if not described.named or described.hparams is None:
        raise WeightsError(f"{type(model).__name__} is not a model of this toolkit (no arch_name/hparams)")
    arch, hparams = described.arch, described.hparams
    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise WeightsError(f"save_model writes safetensors; use a .safetensors name, not {path.name}")
    return write_safetensors(
        path, model.state_dict(), model_metadata(arch, hparams, metadata), overwrite=overwrite
    )


def convert_weights(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    layout: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a generator file between key layouts and formats (by `dst`'s suffix).

    `.safetensors` output is self-describing and uses our (BasicSR) names unless `layout` says otherwise;
    `.pth` output is a bare state dict in `layout` (default: the layout of `src`), wrapped in {"params": …}
    for the BasicSR layout as BasicSR and Real-ESRGAN write it.
    """
    w = read_generator_weights(resolve_weights(src))
    build_model(
        w.arch, w.hparams, w.state_dict, str(w.path)
    )  # refuse to convert something that does not load
    dst = Path(dst)
    if dst.resolve() == w.path.resolve():
        raise WeightsError(f"refusing to convert {w.path} onto itself; choose another output name")
    target = layout or (CANONICAL_LAYOUT[w.arch] if dst.suffix.lower() in SAFETENSORS_SUFFIXES else w.layout)
    sd = from_canonical(w.state_dict, w.arch, target)
    if dst.suffix.lower() in SAFETENSORS_SUFFIXES:
        # Keep the source's provenance (training config, step, commit) next to the architecture description.
        provenance = provenance_metadata(w.metadata)
        if target == CANONICAL_LAYOUT[w.arch]:
            meta = model_metadata(w.arch, w.hparams, provenance)
        else:
            meta = {"format": "pt", **provenance}
        return write_safetensors(dst, sd, meta, overwrite=overwrite)
    if dst.suffix.lower() in (".pth", ".pt"):
        return write_pth(dst, {"params": sd} if target == "basicsr" else sd, overwrite=overwrite)
    raise WeightsError(f"unknown output format '{dst.suffix}'; use .safetensors or .pth")


def interpolate_models(a: ModelSource, b: ModelSource, alpha: float) -> nn.Module:
    """Network interpolation (SPEC §9): θ = (1 − α)·θ_a + α·θ_b, e.g. a = PSNR model, b = GAN model.

    Both models must have the same architecture and hyperparameters. Integer buffers (BN's
    num_batches_tracked) are copied from `a`, not blended.
    """
    if not 0.0 <= alpha <= 1.0:
        raise WeightsError(f"alpha must be between 0 and 1, got {alpha}")
    # Blend into a copy: a module passed in by the caller is left untouched.
    model_a = load_model(copy.deepcopy(a) if isinstance(a, nn.Module) else a)
    model_b = b if isinstance(b, nn.Module) else load_model(b)
    desc_a, desc_b = describe(model_a).identity, describe(model_b).identity
    if desc_a != desc_b:
        raise WeightsError(
            f"cannot interpolate {desc_a[0]}{desc_a[1]} with {desc_b[0]}{desc_b[1]}: the two models must "
            "share architecture and hyperparameters (the GAN model fine-tuned from the PSNR model)"
        )
    sd_a, sd_b = model_a.state_dict(), model_b.state_dict()
    if {k: v.shape for k, v in sd_a.items()} != {k: v.shape for k, v in sd_b.items()}:
        raise WeightsError("cannot interpolate: the two models have different parameter names or shapes")
    blended = {
        k: (1 - alpha) * v + alpha * sd_b[k].to(v) if v.is_floating_point() else v.clone()
        for k, v in sd_a.items()
    }
    model_a.load_state_dict(blended)
    return model_a.eval()
