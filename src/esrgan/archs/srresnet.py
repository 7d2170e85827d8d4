"""SRResNet as in the SRGAN paper (SPEC §3.1) and BasicSR's BN-free MSRResNet (SPEC §3.2).

Both take NCHW float RGB in [0, 1] and give a linear output in the same range (no tanh): the paper trains
against targets in [−1, 1]; we keep one range for every generator in the toolkit so that losses, metrics and
the Upscaler treat all models alike.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from esrgan.archs.blocks import conv3x3, log2_int, scaled_kaiming_init
from esrgan.archs.spec import GeneratorSpec, StateDict, module_count


def _upsample_factors(scale: int) -> list[int]:
    """Sub-pixel stages: ×2 repeated for powers of two, one ×3 stage for scale 3."""
    if scale == 3:
        return [3]
    return [2] * log2_int(scale, "scale (2^n or 3)")


class SRResBlock(nn.Module):
    """conv-BN-PReLU-conv-BN plus identity (SRGAN paper); without BN when `use_bn` is False."""

    def __init__(self, num_feat: int, use_bn: bool) -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.bn1 = nn.BatchNorm2d(num_feat) if use_bn else nn.Identity()
        self.act = nn.PReLU(num_feat, init=0.25)  # Lasagne's default: one slope per channel
        self.conv2 = conv3x3(num_feat, num_feat)
        self.bn2 = nn.BatchNorm2d(num_feat) if use_bn else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SubPixelUpsample(nn.Module):
    """conv 3×3 to r²·C channels, pixel shuffle ×r, PReLU (SRGAN paper)."""

    def __init__(self, num_feat: int, factor: int) -> None:
        super().__init__()
        self.conv = conv3x3(num_feat, num_feat * factor * factor)
        self.shuffle = nn.PixelShuffle(factor)
        self.act = nn.PReLU(num_feat, init=0.25)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """The SRGAN generator (Ledig et al. 2017, Fig. 4): 9×9 end convs, B residual blocks, sub-pixel ×2 stages.

    `use_bn=False` removes every BatchNorm (ESRGAN's "remove BN" ablation) and keeps the rest.
    1,550,659 parameters with the defaults (per-channel PReLU, BN counted as 2·C).
    """

    arch_name = "SRResNet"

    def __init__(
        self,
        *,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        use_bn: bool = True,
    ) -> None:
        super().__init__()
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_block, self.scale, self.use_bn = num_block, scale, use_bn
        self.size_multiple = 1
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, 1, 4)
        self.act_first = nn.PReLU(num_feat, init=0.25)
        self.body = nn.Sequential(*(SRResBlock(num_feat, use_bn) for _ in range(num_block)))
        self.conv_body = conv3x3(num_feat, num_feat)
        self.bn_body = nn.BatchNorm2d(num_feat) if use_bn else nn.Identity()
        self.upsample = nn.Sequential(*(SubPixelUpsample(num_feat, r) for r in _upsample_factors(scale)))
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)
        if not use_bn:
            # Without BN the residual branches need ESRGAN's small init to train stably.
            scaled_kaiming_init(self.body, 0.1)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "scale": self.scale,
            "use_bn": self.use_bn,
        }

    def forward(self, x: Tensor) -> Tensor:
        f0 = self.act_first(self.conv_first(x))
        h = self.bn_body(self.conv_body(self.body(f0))) + f0
        return self.conv_last(self.upsample(h))


class ResidualBlockNoBN(nn.Module):
    """x + conv2(ReLU(conv1(x))) (BasicSR)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.conv2 = conv3x3(num_feat, num_feat)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet: no BN, 3×3 end convs, LeakyReLU(0.1), bilinear global residual.

    1,517,571 parameters at ×4 with the defaults.
    """

    arch_name = "MSRResNet"

    def __init__(
        self,
        *,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"MSRResNet supports scale 2, 3 or 4, got {scale}")
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_block, self.scale = num_block, scale
        self.size_multiple = 1
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.body = nn.Sequential(*(ResidualBlockNoBN(num_feat) for _ in range(num_block)))
        factor = 2 if scale == 4 else scale
        self.upconv1 = conv3x3(num_feat, num_feat * factor * factor)
        self.upconv2 = conv3x3(num_feat, num_feat * 4) if scale == 4 else None
        self.shuffle1 = nn.PixelShuffle(factor)
        self.shuffle2 = nn.PixelShuffle(2)
        self.conv_hr = conv3x3(num_feat, num_feat)
        self.conv_last = conv3x3(num_feat, num_out_ch)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        scaled_kaiming_init(self, 0.1)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "scale": self.scale,
        }

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.shuffle1(self.upconv1(out)))
        if self.upconv2 is not None:
            out = self.lrelu(self.shuffle2(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        if base.shape[1] != out.shape[1]:
            raise ValueError("MSRResNet's global residual needs num_in_ch == num_out_ch")
        return out + base


# ---- weight files: key layouts and hyperparameters (esrgan.archs.spec) ------------------------------------
#
# MSRResNet basicsr      `conv_first`, `body.{i}.conv{1,2}`, `upconv{1,2}`, `conv_hr`, `conv_last`
#           basicsr2019  `recon_trunk.{i}` and `HRconv` instead of `body.{i}` and `conv_hr`
# SRResNet  native       this toolkit's names (there is no community file format for the paper's SRResNet)


def _msrresnet_identify(keys: set[str]) -> str | None:
    if "upconv1.weight" in keys and "body.0.conv1.weight" in keys:
        return "basicsr"
    if "upconv1.weight" in keys and "recon_trunk.0.conv1.weight" in keys:
        return "basicsr2019"
    return None


def _msrresnet_to_ours(sd: StateDict, layout: str) -> dict[str, Tensor]:
    out = {}
    for key, value in sd.items():
        module, _, param = key.rpartition(".")
        module = re.sub(r"^recon_trunk\.", "body.", module)
        out[f"{'conv_hr' if module == 'HRconv' else module}.{param}"] = value
    return out


def _msrresnet_from_ours(sd: StateDict, layout: str) -> dict[str, Tensor]:
    if layout == "basicsr":
        return dict(sd)
    out = {}
    for key, value in sd.items():
        module, _, param = key.rpartition(".")
        module = re.sub(r"^body\.", "recon_trunk.", module)
        out[f"{'HRconv' if module == 'conv_hr' else module}.{param}"] = value
    return out


def _msrresnet_hparams(sd: StateDict) -> dict[str, Any]:
    num_feat, num_in_ch = sd["conv_first.weight"].shape[:2]
    if "upconv2.weight" in sd:
        scale = 4
    else:
        scale = {4: 2, 9: 3}[sd["upconv1.weight"].shape[0] // num_feat]
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": sd["conv_last.weight"].shape[0],
        "num_feat": num_feat,
        "num_block": module_count(sd, "body."),
        "scale": scale,
    }


def _srresnet_identify(keys: set[str]) -> str | None:
    return "native" if "act_first.weight" in keys and "conv_first.weight" in keys else None


def _srresnet_hparams(sd: StateDict) -> dict[str, Any]:
    num_feat, num_in_ch = sd["conv_first.weight"].shape[:2]
    scale = 1
    for j in range(module_count(sd, "upsample.")):
        scale *= math.isqrt(sd[f"upsample.{j}.conv.weight"].shape[0] // num_feat)
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": sd["conv_last.weight"].shape[0],
        "num_feat": num_feat,
        "num_block": module_count(sd, "body."),
        "scale": scale,
        "use_bn": "bn_body.weight" in sd,
    }


GENERATOR_SPECS = (
    GeneratorSpec(
        name="MSRResNet",
        model=MSRResNet,
        layouts=("basicsr", "basicsr2019"),
        identify=_msrresnet_identify,
        hparams=_msrresnet_hparams,
        to_ours=_msrresnet_to_ours,
        from_ours=_msrresnet_from_ours,
    ),
    GeneratorSpec(
        name="SRResNet",
        model=SRResNet,
        layouts=("native",),
        identify=_srresnet_identify,
        hparams=_srresnet_hparams,
        config_fields=("use_bn",),
    ),
)
