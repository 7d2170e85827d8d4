"""SRVGGNetCompact, Real-ESRGAN's fast model (``realesr-general-x4v3``, ``realesr-animevideov3``).

A plain VGG-style body at input resolution, a sub-pixel tail, and the nearest-neighbour upsampled input added
to the output (the network learns a residual over pixel replication):

    body = conv(in→nf), act, num_conv × [conv(nf→nf), act], conv(nf→out·s²)
    out  = pixel_shuffle_s(body(x)) + nearest_s(x)

Keys are Real-ESRGAN's (``body.{i}.weight`` for every layer of the one ModuleList, PReLU slopes included), so
its files load as they are. Any input size works (no size multiple).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from esrgan.archs.spec import GeneratorSpec, StateDict

ActType = Literal["prelu", "relu", "leakyrelu"]


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact generator (its ``upscale`` is ``scale`` here, as in every generator of the
    toolkit); ``act_type`` prelu (the released models: one slope per channel), relu, or leakyrelu (0.1)."""

    arch_name = "SRVGGNetCompact"

    def __init__(
        self,
        *,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        scale: int = 4,
        act_type: ActType = "prelu",
    ) -> None:
        super().__init__()
        if scale < 1 or num_conv < 0 or act_type not in ("prelu", "relu", "leakyrelu"):
            raise ValueError(f"bad SRVGGNetCompact settings: scale {scale}, num_conv {num_conv}, {act_type}")
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_conv, self.scale, self.act_type = num_conv, scale, act_type
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), self._activation()]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), self._activation()]
        layers.append(nn.Conv2d(num_feat, num_out_ch * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def _activation(self) -> nn.Module:
        if self.act_type == "prelu":
            return nn.PReLU(num_parameters=self.num_feat)
        if self.act_type == "relu":
            return nn.ReLU(inplace=True)
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_conv": self.num_conv,
            "scale": self.scale,
            "act_type": self.act_type,
        }

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        base = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return self.upsampler(out) + base


# ---- weight files (esrgan.archs.spec): one layout, Real-ESRGAN's ------------------------------------------


def _convs(sd: StateDict) -> list[int]:
    """Indices of the body's convolutions (4-D weights), in order."""
    found = []
    for key, value in sd.items():
        head, _, tail = key.partition(".")
        index, _, param = tail.partition(".")
        if head == "body" and param == "weight" and index.isdigit() and value.ndim == 4:
            found.append(int(index))
    return sorted(found)


def _identify(keys: set[str]) -> str | None:
    # body.0 is a conv, body.1 its activation; nothing else of ours names a bare `body.N.weight`.
    if {"body.0.weight", "body.0.bias"} <= keys and not any(
        k.startswith(("conv_first", "upsampler")) for k in keys
    ):
        if all(k.startswith("body.") and k.count(".") == 2 for k in keys):
            return "realesrgan"
    return None


def _hparams(sd: StateDict) -> dict[str, Any]:
    convs = _convs(sd)
    first, last = sd[f"body.{convs[0]}.weight"], sd[f"body.{convs[-1]}.weight"]
    num_feat, num_in_ch = int(first.shape[0]), int(first.shape[1])
    out_total = int(last.shape[0])
    num_out_ch = num_in_ch  # the released models map RGB to RGB; the tail holds out · scale² channels
    scale = round((out_total / num_out_ch) ** 0.5)
    if scale * scale * num_out_ch != out_total:
        raise ValueError(f"the last conv has {out_total} channels, not {num_out_ch} × a square")
    # PReLU slopes are stored (body.1.weight, one per channel); ReLU / LeakyReLU leave nothing to see.
    act_type = "prelu" if "body.1.weight" in sd else "relu"
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": num_out_ch,
        "num_feat": num_feat,
        "num_conv": len(convs) - 2,
        "scale": scale,
        "act_type": act_type,
    }


def _from_config(settings: Mapping[str, Any]) -> SRVGGNetCompact:
    """Training's SRVGGNetCompact: ``num_block`` (the config's depth) is the number of feature convs."""
    return SRVGGNetCompact(
        num_in_ch=settings["num_in_ch"],
        num_out_ch=settings["num_out_ch"],
        num_feat=settings["num_feat"],
        num_conv=settings["num_block"],
        scale=settings["scale"],
    )


GENERATOR_SPECS = (
    GeneratorSpec(
        name="SRVGGNetCompact",
        model=SRVGGNetCompact,
        layouts=("realesrgan",),
        identify=_identify,
        hparams=_hparams,
        build=_from_config,
    ),
)
