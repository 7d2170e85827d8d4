"""Key layouts ("dialects") of community weight files and conversion to and from our names (SPEC §2).

Which layouts exist and how they rename is declared by each architecture (`esrgan.archs.spec`; the layouts
are listed in the architecture's file); this module only dispatches. Our names are BasicSR ≥ 1.0's where
such files exist.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from esrgan.archs import GENERATOR_SPECS
from esrgan.archs.spec import GeneratorSpec
from esrgan.errors import WeightsError

__all__ = ["CANONICAL_LAYOUT", "LAYOUTS", "from_canonical", "identify", "to_canonical"]

LAYOUTS: dict[str, tuple[str, ...]] = {name: spec.layouts for name, spec in GENERATOR_SPECS.items()}
CANONICAL_LAYOUT: dict[str, str] = {name: spec.our_layout for name, spec in GENERATOR_SPECS.items()}


def _spec(arch: str) -> GeneratorSpec:
    try:
        return GENERATOR_SPECS[arch]
    except KeyError:
        raise WeightsError(f"{arch} is not a generator this toolkit knows") from None


def identify(keys: set[str], source: str = "the file") -> tuple[str, str]:
    """(architecture, layout) of a state dict from its key names; WeightsError for anything else."""
    for name, spec in GENERATOR_SPECS.items():
        layout = spec.identify(keys)
        if layout is not None:
            return name, layout
    raise WeightsError(f"{source} is not a generator this toolkit knows: {_describe_unknown(keys)}")


def _describe_unknown(keys: set[str]) -> str:
    sample = ", ".join(sorted(keys)[:5])
    if any(".conv1x1." in k for k in keys):
        return "it looks like an ESRGAN+ (nESRGAN+) model with extra 1×1 convs, which is not supported"
    if "conv0_0.weight" in keys and "linear1.weight" in keys:
        return "it holds discriminator weights (VGG-style discriminator); pass the generator file instead"
    if any(k.endswith("weight_orig") for k in keys) or {"conv0.weight", "conv9.weight"} <= keys:
        return "it holds discriminator weights (Real-ESRGAN U-Net discriminator); pass the generator file"
    if "classifier.6.weight" in keys and "features.34.weight" in keys:
        return (
            "it holds VGG19 ImageNet classifier weights (used by the perceptual loss), not an upscaling model"
        )
    if "classifier.0.weight" in keys and "features.0.weight" in keys:
        return "it holds discriminator weights (features/classifier layout); pass the generator file instead"
    return f"no known key layout matches ({len(keys)} tensors, e.g. {sample})"


def to_canonical(
    sd: Mapping[str, Tensor], arch: str, layout: str, source: str = "the file"
) -> dict[str, Tensor]:
    """Rename a state dict in `layout` to our names. Unexpected or missing keys raise WeightsError."""
    spec = _spec(arch)
    if layout == spec.our_layout:
        return dict(sd)
    try:
        return spec.to_ours(sd, layout)
    except (KeyError, ValueError, IndexError) as exc:
        detail = exc.args[0] if exc.args else repr(exc)
        raise WeightsError(
            f"{source} looks like {arch} in the '{layout}' layout but does not fit it: {detail}"
        ) from None


def from_canonical(sd: Mapping[str, Tensor], arch: str, layout: str) -> dict[str, Tensor]:
    """Rename a state dict with our names into `layout`."""
    spec = _spec(arch)
    if layout not in spec.layouts:
        raise WeightsError(f"{arch} has no '{layout}' layout; choose one of {', '.join(spec.layouts)}")
    return dict(sd) if layout == spec.our_layout else spec.from_ours(sd, layout)
