"""Building blocks and initialisation shared by the architectures, and the switch for their inference
rewrites."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

from torch import nn

_REWRITES_ALLOWED = contextvars.ContextVar("esrgan_inference_rewrites", default=True)


@contextlib.contextmanager
def as_written() -> Iterator[None]:
    """Within this context, networks compute their formulas exactly as written: no inference rewrites (such
    as RRDBNet's phase convs and slot layout). Those give the same result up to float rounding, which moves
    the 4th decimal of a PSNR or NIQE table; evaluation runs as written so that its tables reproduce
    exactly from release to release."""
    token = _REWRITES_ALLOWED.set(False)
    try:
        yield
    finally:
        _REWRITES_ALLOWED.reset(token)


def rewrites_allowed() -> bool:
    """False inside `as_written`."""
    return _REWRITES_ALLOWED.get()


def scaled_kaiming_init(modules: list[nn.Module] | nn.Module, scale: float = 0.1) -> None:
    """Kaiming-normal (fan_in, gain √2) weights multiplied by `scale`, zero biases (SPEC §1.6).

    ESRGAN's "MSRA init × 0.1": small initial residuals let a very deep network without batch norm train
    stably. BatchNorm layers get weight 1 and bias 0.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    for root in modules:
        for m in root.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
                m.weight.data.mul_(scale)
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def conv3x3(in_ch: int, out_ch: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias)


def log2_int(value: int, what: str) -> int:
    """log2 of a power of two, or a ValueError naming `what`."""
    if value < 1 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two, got {value}")
    return int(math.log2(value))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
