"""`describe(model)`: what code that runs a model needs to know about it, read in one place.

Any `nn.Module` can be upscaled with, as long as it has an integer `scale`: the toolkit's own generators,
user modules, and wrappers such as the onnxruntime `OnnxModel`. What they may also say about themselves is
read here once, instead of being probed attribute by attribute across the code:

- ``arch_name`` and ``hparams`` (the constructor arguments): the toolkit's generators have both;
- ``num_in_ch`` (or ``in_channels``, ``in_nc``, also inside ``hparams``): input channels, default 3;
- ``size_multiple`` (or ``multiple_of``): input sides must be multiples of it (pixel-unshuffle models);
- ``preferred_device``: where the model computes (``"cpu"`` for onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["ModelDescriptor", "describe"]


@dataclass(frozen=True)
class ModelDescriptor:
    arch: str  # arch_name, else the class name
    scale: int | None  # None when the model does not say (it cannot be upscaled with then)
    in_channels: int = 3
    size_multiple: int = 1
    hparams: dict[str, Any] | None = field(default=None, compare=False)
    has_weights: bool = True  # False for wrappers that compute outside PyTorch (onnxruntime)
    preferred_device: str | None = None
    named: bool = False  # it has an `arch_name`: a toolkit architecture, rebuildable from hparams

    @property
    def identity(self) -> tuple[str, Any]:
        """Architecture and hyperparameters: two models with equal identities have the same tensors."""
        return self.arch, self.hparams


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def describe(model: nn.Module) -> ModelDescriptor:
    """The `ModelDescriptor` of `model` (see the module docstring for what is read)."""
    hparams = getattr(model, "hparams", None)
    hparams = dict(hparams) if isinstance(hparams, dict) else None
    in_channels = 3
    for name in ("num_in_ch", "in_channels", "in_nc"):
        value = getattr(model, name, None)
        if value is None and hparams is not None:
            value = hparams.get(name)
        if (found := _positive_int(value)) is not None:
            in_channels = found
            break
    size_multiple = 1
    for name in ("size_multiple", "multiple_of"):
        if (found := _positive_int(getattr(model, name, None))) is not None:
            size_multiple = found
            break
    preferred = getattr(model, "preferred_device", None)
    return ModelDescriptor(
        arch=str(getattr(model, "arch_name", None) or type(model).__name__),
        scale=_positive_int(getattr(model, "scale", None)),
        in_channels=in_channels,
        size_multiple=size_multiple,
        hparams=hparams,
        has_weights=any(True for _ in model.parameters()),
        preferred_device=preferred if isinstance(preferred, str) else None,
        named=isinstance(getattr(model, "arch_name", None), str),
    )
