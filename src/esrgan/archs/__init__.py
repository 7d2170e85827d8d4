"""Network architectures. `ARCHITECTURES[name](**model.hparams)` rebuilds any model of the toolkit."""

from __future__ import annotations

from torch import nn

from esrgan.archs.discriminators import SRGANDiscriminator, UNetDiscriminatorSN, VGGStyleDiscriminator
from esrgan.archs.rrdbnet import RRDBNet
from esrgan.archs.srresnet import MSRResNet, SRResNet
from esrgan.archs.vgg import VGG19FeatureExtractor

GENERATORS: dict[str, type[nn.Module]] = {"RRDBNet": RRDBNet, "SRResNet": SRResNet, "MSRResNet": MSRResNet}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "VGGStyleDiscriminator": VGGStyleDiscriminator,
    "SRGANDiscriminator": SRGANDiscriminator,
    "UNetDiscriminatorSN": UNetDiscriminatorSN,
}
ARCHITECTURES: dict[str, type[nn.Module]] = {**GENERATORS, **DISCRIMINATORS}

__all__ = [
    "ARCHITECTURES",
    "DISCRIMINATORS",
    "GENERATORS",
    "MSRResNet",
    "RRDBNet",
    "SRGANDiscriminator",
    "SRResNet",
    "UNetDiscriminatorSN",
    "VGG19FeatureExtractor",
    "VGGStyleDiscriminator",
]
