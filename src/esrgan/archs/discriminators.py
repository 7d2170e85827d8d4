"""Discriminators (SPEC §4): BasicSR's VGG-style one used by ESRGAN, the SRGAN paper's, and Real-ESRGAN's
U-Net with spectral norm.

The first two return a raw logit per image (N×1), the U-Net one a logit per pixel (N×1×H×W); the losses apply
the sigmoid (BCE with logits), which is what the relativistic formulation needs. ``forward(x,
return_features=True)`` also returns the intermediate feature maps (for feature matching), as
``(logits, [feature maps])``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from esrgan.archs.blocks import log2_int


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator (BasicSR `VGGStyleDiscriminator`), input exactly `input_size`² (128 or 256).

    Stage s: conv{s}_0 3×3 stride 1, conv{s}_1 4×4 stride 2, BN after every conv but the first, LeakyReLU 0.2;
    stages until the map is 4×4, then linear 8192→100 → LeakyReLU → linear 100→1.
    14,499,401 parameters at 128 px.
    """

    arch_name = "VGGStyleDiscriminator"

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"input_size must be 128 or 256, got {input_size}")
        self.num_in_ch, self.num_feat, self.input_size = num_in_ch, num_feat, input_size
        self.num_stages = log2_int(input_size // 4, "input_size / 4")  # 5 at 128 px, 6 at 256 px
        widths = [num_feat * min(2**s, 8) for s in range(self.num_stages)]  # 64, 128, 256, 512, 512(, 512)
        in_ch = num_in_ch
        for s, width in enumerate(widths):
            setattr(self, f"conv{s}_0", nn.Conv2d(in_ch, width, 3, 1, 1, bias=s == 0))
            if s > 0:
                setattr(self, f"bn{s}_0", nn.BatchNorm2d(width, affine=True))
            setattr(self, f"conv{s}_1", nn.Conv2d(width, width, 4, 2, 1, bias=False))
            setattr(self, f"bn{s}_1", nn.BatchNorm2d(width, affine=True))
            in_ch = width
        self.linear1 = nn.Linear(in_ch * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    @property
    def hparams(self) -> dict[str, Any]:
        return {"num_in_ch": self.num_in_ch, "num_feat": self.num_feat, "input_size": self.input_size}

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"discriminator input must be {self.input_size}², got {tuple(x.shape[-2:])}")
        feat = x
        features = []
        for s in range(self.num_stages):
            feat = getattr(self, f"conv{s}_0")(feat)
            if s > 0:
                feat = getattr(self, f"bn{s}_0")(feat)
            feat = self.lrelu(feat)
            feat = self.lrelu(getattr(self, f"bn{s}_1")(getattr(self, f"conv{s}_1")(feat)))
            features.append(feat)
        logits = self.linear2(self.lrelu(self.linear1(feat.flatten(1))))
        return (logits, features) if return_features else logits


class SRGANDiscriminator(nn.Module):
    """The SRGAN paper's discriminator (Fig. 4): 8 convs 64→512, stride 2 when the width is about to double,
    BN after all but the first, LeakyReLU 0.2, Dense 1024 → LeakyReLU → Dense 1 (the logit; no sigmoid).

    `input_size` must be a multiple of 16 (96 in the paper: 23,565,505 parameters).
    """

    arch_name = "SRGANDiscriminator"

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 96) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        self.num_in_ch, self.num_feat, self.input_size = num_in_ch, num_feat, input_size
        layers: list[nn.Module] = []
        in_ch = num_in_ch
        for k in range(8):
            width = num_feat * 2 ** (k // 2)
            stride = 2 if k % 2 else 1
            layers.append(nn.Conv2d(in_ch, width, 3, stride, 1))
            if k > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = width
        self.features = nn.Sequential(*layers)
        side = input_size // 16
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * side * side, 1024), nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1)
        )

    @property
    def hparams(self) -> dict[str, Any]:
        return {"num_in_ch": self.num_in_ch, "num_feat": self.num_feat, "input_size": self.input_size}

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"discriminator input must be {self.input_size}², got {tuple(x.shape[-2:])}")
        features = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        logits = self.classifier(x.flatten(1))
        return (logits, features) if return_features else logits


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's discriminator: a U-Net with spectral norm that gives a logit per pixel (N×1×H×W).

    Encoder conv0 3×3, conv1-3 4×4 stride 2 (widths nf, 2nf, 4nf, 8nf); decoder ×2 bilinear upsampling then
    conv4-6 3×3 back to nf, each added to the encoder map of its size (`skip_connection`); conv7, conv8 3×3;
    conv9 to one channel. Spectral norm on conv1-8, LeakyReLU 0.2. Keys match Real-ESRGAN's state dicts
    (``convN.weight_orig``, ``weight_u``, ``weight_v``). Any input whose sides are multiples of 8.
    """

    arch_name = "UNetDiscriminatorSN"

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.num_in_ch, self.num_feat, self.skip_connection = num_in_ch, num_feat, skip_connection
        sn = nn.utils.spectral_norm
        nf = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "num_in_ch": self.num_in_ch,
            "num_feat": self.num_feat,
            "skip_connection": self.skip_connection,
        }

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"discriminator input sides must be multiples of 8, got {tuple(x.shape[-2:])}")

        def act(t: Tensor) -> Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: Tensor) -> Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv8(act(self.conv7(x6))))
        logits = self.conv9(out)
        return (logits, [x1, x2, x3, x4, x5, x6, out]) if return_features else logits
