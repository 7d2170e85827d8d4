"""Exponential moving average of the generator's parameters (BasicSR v1.x `model_ema`, SPEC §5.5, §13.7).

After every generator update:

    θ_ema ← decay · θ_ema + (1 − decay) · θ        for every parameter (decay 0.999 in BasicSR v1.x)
    b_ema ← b                                       for every buffer (copied, not averaged)

BasicSR averages parameters and leaves the EMA model's buffers untouched, so for generators with batch norm
(the SRGAN paper's SRResNet) its EMA keeps stale running statistics. We copy the buffers from the live model
instead; for BN-free generators (RRDBNet, MSRResNet: no buffers) both behave identically.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEMA"]


def _bare(model: nn.Module) -> nn.Module:
    """The module inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


class ModelEMA:
    """EMA copy of a model, kept in eval mode with gradients off.

    `ModelEMA(model, decay)` starts from a deep copy of `model` (BasicSR initialises with decay 0, i.e. a
    copy). Call `update(model)` after each optimizer step; use `ema.module` for validation and saving.
    `state_dict()` / `load_state_dict()` carry what a resumed run needs.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(_bare(model)).eval().requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """θ_ema ← decay·θ_ema + (1 − decay)·θ for parameters; buffers copied from `model`."""
        model = _bare(model)
        ema_params = dict(self.module.named_parameters())
        params = dict(model.named_parameters())
        if ema_params.keys() != params.keys():
            raise ValueError("the model's parameters do not match the EMA copy's (different architecture?)")
        targets = list(ema_params.values())
        sources = [params[name].detach() for name in ema_params]
        torch._foreach_mul_(targets, self.decay)
        torch._foreach_add_(targets, sources, alpha=1.0 - self.decay)
        ema_buffers, buffers = dict(self.module.named_buffers()), dict(model.named_buffers())
        if ema_buffers.keys() != buffers.keys():
            raise ValueError("the model's buffers do not match the EMA copy's (different architecture?)")
        for name, buffer in ema_buffers.items():
            buffer.copy_(buffers[name])
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the averaged weights and update count (the decay stays the constructor's)."""
        self.module.load_state_dict(state["module"], strict=True)
        self.num_updates = int(state["num_updates"])
