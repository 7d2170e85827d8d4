"""Hyperparameters of a generator from the shapes of its tensors (our key names), as its architecture's
spec reads them (`esrgan.archs.spec`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from esrgan.archs import GENERATOR_SPECS
from esrgan.errors import WeightsError

__all__ = ["infer_hparams"]


def infer_hparams(arch: str, sd: Mapping[str, Tensor], source: str = "the file") -> dict[str, Any]:
    """Constructor arguments of `arch` that produce exactly these tensor shapes."""
    spec = GENERATOR_SPECS.get(arch)
    if spec is None:
        raise WeightsError(f"{source}: cannot infer hyperparameters for {arch}")
    try:
        return spec.hparams(sd)
    except (KeyError, IndexError, ValueError) as exc:
        raise WeightsError(f"{source}: {arch} weights are incomplete or malformed ({exc!r})") from exc
