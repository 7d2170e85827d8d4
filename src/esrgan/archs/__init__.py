"""Network architectures. `ARCHITECTURES[name](**model.hparams)` rebuilds any model of the toolkit.

Generators declare what the weight loader needs in their own file (`esrgan.archs.spec.GeneratorSpec`, in a
module-level ``GENERATOR_SPECS``); every module of this package is scanned for them, so a new generator
architecture is one new file here.
"""

from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from esrgan.archs.discriminators import SRGANDiscriminator, UNetDiscriminatorSN, VGGStyleDiscriminator
from esrgan.archs.rrdbnet import RRDBNet
from esrgan.archs.spec import GeneratorSpec
from esrgan.archs.srresnet import MSRResNet, SRResNet
from esrgan.archs.srvgg import SRVGGNetCompact
from esrgan.archs.vgg import VGG19FeatureExtractor


def _collect_generator_specs() -> dict[str, GeneratorSpec]:
    specs: dict[str, GeneratorSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for spec in getattr(module, "GENERATOR_SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"two generator specs named {spec.name!r}")
            specs[spec.name] = spec
    return specs


GENERATOR_SPECS: dict[str, GeneratorSpec] = _collect_generator_specs()
GENERATORS: dict[str, type[nn.Module]] = {name: spec.model for name, spec in GENERATOR_SPECS.items()}
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
    "GENERATOR_SPECS",
    "GeneratorSpec",
    "MSRResNet",
    "RRDBNet",
    "SRGANDiscriminator",
    "SRResNet",
    "SRVGGNetCompact",
    "UNetDiscriminatorSN",
    "VGG19FeatureExtractor",
    "VGGStyleDiscriminator",
]
