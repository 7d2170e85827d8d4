"""Key layouts ("dialects") of community weight files and conversion to and from our names (SPEC §2).

Our names are BasicSR ≥ 1.0's. Layouts per architecture:

RRDBNet   basicsr  `conv_first`, `body.{i}.rdb{k}.conv{m}`, `conv_body`, `conv_up{j}`, `conv_hr`, `conv_last`
                   (BasicSR ≥ 1.0, Real-ESRGAN, and files this toolkit writes)
          esrgan   `conv_first`, `RRDB_trunk.{i}.RDB{k}.conv{m}`, `trunk_conv`, `upconv{j}`, `HRconv`,
                   `conv_last` (ESRGAN repo `RRDBNet_arch.py`, the released RRDB_ESRGAN_x4.pth; BasicSR 2019)
          old      `model.0`, `model.1.sub.{i}.RDB{k}.conv{m}.0`, `model.1.sub.{nb}`, `model.{3j}`,
                   `model.{3n+2}`, `model.{3n+4}` (the 2018 release, "old-arch" files)
MSRResNet basicsr  `conv_first`, `body.{i}.conv{1,2}`, `upconv{1,2}`, `conv_hr`, `conv_last`
          basicsr2019  `recon_trunk.{i}` and `HRconv` instead of `body.{i}` and `conv_hr`
SRResNet  native   this toolkit's names (there is no community file format for the paper's SRResNet)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from torch import Tensor

from esrgan.errors import WeightsError

LAYOUTS: dict[str, tuple[str, ...]] = {
    "RRDBNet": ("basicsr", "esrgan", "old"),
    "MSRResNet": ("basicsr", "basicsr2019"),
    "SRResNet": ("native",),
}
CANONICAL_LAYOUT = {"RRDBNet": "basicsr", "MSRResNet": "basicsr", "SRResNet": "native"}

_PARAMS = ("weight", "bias")


def identify(keys: set[str], source: str = "the file") -> tuple[str, str]:
    """(architecture, layout) of a state dict from its key names; WeightsError for anything else."""
    if "body.0.rdb1.conv1.weight" in keys and "conv_first.weight" in keys:
        return "RRDBNet", "basicsr"
    if "RRDB_trunk.0.RDB1.conv1.weight" in keys:
        return "RRDBNet", "esrgan"
    if "model.1.sub.0.RDB1.conv1.0.weight" in keys:
        return "RRDBNet", "old"
    if "upconv1.weight" in keys and "body.0.conv1.weight" in keys:
        return "MSRResNet", "basicsr"
    if "upconv1.weight" in keys and "recon_trunk.0.conv1.weight" in keys:
        return "MSRResNet", "basicsr2019"
    if "act_first.weight" in keys and "conv_first.weight" in keys:
        return "SRResNet", "native"
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
    if "body.0.weight" in keys and "body.1.weight" in keys:
        return "it looks like Real-ESRGAN's SRVGGNetCompact, which is not supported"
    return f"no known key layout matches ({len(keys)} tensors, e.g. {sample})"


# ---- name generators: the canonical keys of a model, given its structure --------------------------------


def _rrdbnet_names(num_block: int, num_upsample: int) -> Iterator[str]:
    yield "conv_first"
    for i in range(num_block):
        for k in (1, 2, 3):
            for m in range(1, 6):
                yield f"body.{i}.rdb{k}.conv{m}"
    yield "conv_body"
    for j in range(1, num_upsample + 1):
        yield f"conv_up{j}"
    yield "conv_hr"
    yield "conv_last"


def _rrdbnet_rename(name: str, layout: str, num_block: int, num_upsample: int) -> str:
    """Our module name → the same module in `layout` (without the .weight/.bias suffix)."""
    if layout == "basicsr":
        return name
    rdb = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", name)
    up = re.fullmatch(r"conv_up(\d+)", name)
    if layout == "esrgan":
        if rdb:
            return f"RRDB_trunk.{rdb[1]}.RDB{rdb[2]}.conv{rdb[3]}"
        if up:
            return f"upconv{up[1]}"
        return {"conv_body": "trunk_conv", "conv_hr": "HRconv"}.get(name, name)
    # old: one flattened nn.Sequential called `model`
    if rdb:
        return f"model.1.sub.{rdb[1]}.RDB{rdb[2]}.conv{rdb[3]}.0"
    if up:
        return f"model.{3 * int(up[1])}"
    n = num_upsample
    return {
        "conv_first": "model.0",
        "conv_body": f"model.1.sub.{num_block}",
        "conv_hr": f"model.{3 * n + 2}",
        "conv_last": f"model.{3 * n + 4}",
    }[name]


def _rrdbnet_structure(keys: set[str], layout: str) -> tuple[int, int]:
    """(num_block, num_upsample) read from the key names of a file in `layout`."""
    if layout == "basicsr":
        blocks = {m[1] for k in keys if (m := re.match(r"body\.(\d+)\.", k))}
        ups = {m[1] for k in keys if (m := re.match(r"conv_up(\d+)\.", k))}
        return len(blocks), len(ups)
    if layout == "esrgan":
        blocks = {m[1] for k in keys if (m := re.match(r"RRDB_trunk\.(\d+)\.", k))}
        ups = {m[1] for k in keys if (m := re.match(r"upconv(\d+)\.", k))}
        return len(blocks), len(ups)
    subs = {m[1] for k in keys if (m := re.match(r"model\.1\.sub\.(\d+)\.", k))}
    top = max(int(m[1]) for k in keys if (m := re.match(r"model\.(\d+)\.", k)))
    # Sequence length 3n + 5: conv, shortcut, n × (upsample, conv, lrelu), conv, lrelu, conv.
    return len(subs) - 1, (top + 1 - 5) // 3


def _msrresnet_rename(name: str, layout: str) -> str:
    if layout == "basicsr2019":
        name = re.sub(r"^body\.", "recon_trunk.", name)
        return "HRconv" if name == "conv_hr" else name
    return name


# ---- public conversion -----------------------------------------------------------------------------------


def to_canonical(
    sd: Mapping[str, Tensor], arch: str, layout: str, source: str = "the file"
) -> dict[str, Tensor]:
    """Rename a state dict in `layout` to our names. Unexpected or missing keys raise WeightsError."""
    if layout == CANONICAL_LAYOUT[arch]:
        return dict(sd)
    mapping = _rename_map(sd.keys(), arch, layout)  # ours → theirs
    theirs_to_ours = {theirs: ours for ours, theirs in mapping.items()}
    unexpected = sorted(set(sd) - set(theirs_to_ours))
    missing = sorted(set(theirs_to_ours) - set(sd))
    if unexpected or missing:
        raise WeightsError(
            f"{source} looks like {arch} in the '{layout}' layout but does not fit it: "
            f"unexpected keys {unexpected[:4]}, missing keys {missing[:4]}"
        )
    return {theirs_to_ours[k]: v for k, v in sd.items()}


def from_canonical(sd: Mapping[str, Tensor], arch: str, layout: str) -> dict[str, Tensor]:
    """Rename a state dict with our names into `layout`."""
    if layout not in LAYOUTS.get(arch, ()):
        raise WeightsError(
            f"{arch} has no '{layout}' layout; choose one of {', '.join(LAYOUTS.get(arch, ()))}"
        )
    if arch == "RRDBNet":
        num_block, num_upsample = _rrdbnet_structure(set(sd), "basicsr")
        rename: Callable[[str], str] = lambda n: _rrdbnet_rename(n, layout, num_block, num_upsample)  # noqa: E731
    elif arch == "MSRResNet":
        rename = lambda n: _msrresnet_rename(n, layout)  # noqa: E731
    else:
        return dict(sd)
    return {_rename_param(k, rename): v for k, v in sd.items()}


def _rename_param(key: str, rename: Callable[[str], str]) -> str:
    module, _, param = key.rpartition(".")
    return f"{rename(module)}.{param}"


def _rename_map(keys: Iterable[str], arch: str, layout: str) -> dict[str, str]:
    """{our key: their key} for a file in `layout` with these keys."""
    keyset = set(keys)
    if arch == "RRDBNet":
        num_block, num_upsample = _rrdbnet_structure(keyset, layout)
        names = _rrdbnet_names(num_block, num_upsample)
        return {
            f"{n}.{p}": f"{_rrdbnet_rename(n, layout, num_block, num_upsample)}.{p}"
            for n in names
            for p in _PARAMS
        }
    if arch == "MSRResNet":
        return {_msrresnet_unrename(k): k for k in keyset}
    raise WeightsError(f"no layout conversion for {arch}")


def _msrresnet_unrename(key: str) -> str:
    module, _, param = key.rpartition(".")
    module = re.sub(r"^recon_trunk\.", "body.", module)
    return f"{'conv_hr' if module == 'HRconv' else module}.{param}"
