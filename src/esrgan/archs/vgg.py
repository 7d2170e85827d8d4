"""VGG19 feature extractor for perceptual losses (SPEC §5.2), with torchvision's parameter names.

torchvision's ImageNet file `vgg19-dcbb9e9d.pth` (keys `features.N.*`, `classifier.*`) loads directly; we
define the network ourselves so that the toolkit does not depend on torchvision.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from esrgan.errors import WeightsError

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 ("E") feature stack: widths per block; every conv is 3×3 pad 1 followed by ReLU.
_VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def _vgg19_layer_names() -> list[str]:
    names = []
    for b, widths in enumerate(_VGG19_BLOCKS, start=1):
        for c in range(1, len(widths) + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


VGG19_LAYERS: tuple[str, ...] = tuple(_vgg19_layer_names())  # index i = torchvision `features.i`


def find_vgg19_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The ImageNet VGG19 weights file: `path` if given, else torch hub's cache (where torchvision puts it).

    Raises WeightsError naming the file and where to get it when it is missing.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_file():
            return candidate
        raise WeightsError(f"VGG19 weights not found at {candidate}. Download {VGG19_URL} and pass its path.")
    hub = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME
    if hub.is_file():
        return hub
    raise WeightsError(
        f"the perceptual loss needs torchvision's ImageNet VGG19 weights ({VGG19_FILENAME}); not found in "
        f"the torch hub cache ({hub}). Download {VGG19_URL} to that folder or pass its path."
    )


class VGG19FeatureExtractor(nn.Module):
    """Frozen VGG19 returning {layer name: feature map} for the requested layers.

    Input: NCHW float RGB in [0, 1]; ImageNet mean/std normalisation is applied inside (`use_input_norm`).
    Layers are named `conv5_4` (before activation, ESRGAN), `relu5_4` (after, SRGAN), `pool4`, … Only the
    layers up to the deepest requested one are built.

    Args:
        layers: layer names to return.
        weights: a torchvision VGG19 state-dict file; "imagenet" looks in the torch hub cache; None keeps the
            random initialisation (tests only).
    """

    def __init__(
        self,
        layers: Iterable[str] = ("conv5_4",),
        weights: str | os.PathLike[str] | None = "imagenet",
        use_input_norm: bool = True,
    ) -> None:
        super().__init__()
        self.layers = list(layers)
        unknown = [name for name in self.layers if name not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; valid: {', '.join(VGG19_LAYERS)}")
        last = max(VGG19_LAYERS.index(name) for name in self.layers)
        modules: list[nn.Module] = []
        in_ch = 3
        for name in VGG19_LAYERS[: last + 1]:
            if name.startswith("conv"):
                block, _ = name[4:].split("_")
                width = _VGG19_BLOCKS[int(block) - 1][0]
                modules.append(nn.Conv2d(in_ch, width, 3, 1, 1))
                in_ch = width
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))  # features before ReLU are returned too
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.use_input_norm = use_input_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is not None:
            self.load_torchvision_weights(find_vgg19_weights(None if weights == "imagenet" else weights))
        self.requires_grad_(False).eval()

    def load_torchvision_weights(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated download, an HTML error page saved as .pth, …
            raise WeightsError(f"cannot read VGG19 weights {path}: {exc}") from exc
        if not isinstance(state, dict):
            raise WeightsError(f"{path} holds a {type(state).__name__}, not torchvision's VGG19 state dict")
        wanted = self.features.state_dict()
        missing = [f"features.{k}" for k in wanted if f"features.{k}" not in state]
        if missing:
            raise WeightsError(f"{path} is not torchvision's VGG19 weights file (missing {missing[:3]})")
        try:
            self.features.load_state_dict({k: state[f"features.{k}"] for k in wanted})
        except RuntimeError as exc:  # the right names with other shapes (another VGG variant)
            first = " ".join(str(exc).splitlines()[:3])
            raise WeightsError(f"{path} is not torchvision's VGG19 weights file: {first}") from exc

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for name, module in zip(VGG19_LAYERS, self.features, strict=False):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out
