"""Hyperparameters of a generator from the shapes of its tensors (our key names, see convert.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from esrgan.errors import WeightsError


def infer_hparams(arch: str, sd: Mapping[str, Tensor], source: str = "the file") -> dict[str, Any]:
    """Constructor arguments of `arch` that produce exactly these tensor shapes."""
    try:
        if arch == "RRDBNet":
            return _rrdbnet(sd)
        if arch == "MSRResNet":
            return _msrresnet(sd)
        if arch == "SRResNet":
            return _srresnet(sd)
    except (KeyError, IndexError, ValueError) as exc:
        raise WeightsError(f"{source}: {arch} weights are incomplete or malformed ({exc!r})") from exc
    raise WeightsError(f"{source}: cannot infer hyperparameters for {arch}")


def _count(sd: Mapping[str, Tensor], pattern: str) -> int:
    return len({m[1] for k in sd if (m := re.match(pattern, k))})


def _rrdbnet(sd: Mapping[str, Tensor]) -> dict[str, Any]:
    num_feat, in_total = sd["conv_first.weight"].shape[:2]
    num_out_ch = sd["conv_last.weight"].shape[0]
    num_upsample = _count(sd, r"conv_up(\d+)\.")
    # Pixel-unshuffle models (Real-ESRGAN ×2/×1) see 4 or 16 × the image channels (SPEC §2.2).
    factor = 1
    for f in (4, 2):
        if in_total == num_out_ch * f * f and num_upsample >= int(math.log2(f)):
            factor = f
            break
    return {
        "num_in_ch": in_total // (factor * factor),
        "num_out_ch": num_out_ch,
        "num_feat": num_feat,
        "num_block": _count(sd, r"body\.(\d+)\."),
        # Growth channels from the first dense conv, not hard-coded 32 (SPEC §2.2, spandrel's shortcut).
        "num_grow_ch": sd["body.0.rdb1.conv1.weight"].shape[0],
        "scale": 2**num_upsample // factor,
        "num_upsample": num_upsample,
    }


def _msrresnet(sd: Mapping[str, Tensor]) -> dict[str, Any]:
    num_feat, num_in_ch = sd["conv_first.weight"].shape[:2]
    if "upconv2.weight" in sd:
        scale = 4
    else:
        scale = {4: 2, 9: 3}[sd["upconv1.weight"].shape[0] // num_feat]
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": sd["conv_last.weight"].shape[0],
        "num_feat": num_feat,
        "num_block": _count(sd, r"body\.(\d+)\."),
        "scale": scale,
    }


def _srresnet(sd: Mapping[str, Tensor]) -> dict[str, Any]:
    num_feat, num_in_ch = sd["conv_first.weight"].shape[:2]
    scale = 1
    for j in range(_count(sd, r"upsample\.(\d+)\.")):
        scale *= math.isqrt(sd[f"upsample.{j}.conv.weight"].shape[0] // num_feat)
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": sd["conv_last.weight"].shape[0],
        "num_feat": num_feat,
        "num_block": _count(sd, r"body\.(\d+)\."),
        "scale": scale,
        "use_bn": "bn_body.weight" in sd,
    }
