"""Which floating-point precision a device computes fast: the one place that decides ``precision="auto"``.

bf16 autocast is 2-7x faster than fp32 on CPUs with native bf16 instructions (AMX or AVX512-BF16) and about
100x *slower* on CPUs without them (AVX2-only, where oneDNN emulates it), so "auto" picks bf16 on a CPU only
when the instructions are reported present. On CUDA, inference picks fp16 (as Real-ESRGAN does by default)
and training picks bf16 (no loss scaling needed); elsewhere fp32.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import torch

__all__ = ["PRECISION_CHOICES", "cpu_flags", "cpu_native_bf16", "resolve_precision"]

PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")

Purpose = Literal["inference", "training"]


def cpu_flags() -> set[str]:
    """The CPU feature flags the kernel reports (/proc/cpuinfo), or an empty set where it does not."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@functools.cache
def cpu_native_bf16() -> bool:
    """True when this CPU has bf16 instructions (AMX-BF16 or AVX512-BF16) that PyTorch's kernels use.

    Two independent witnesses must agree where both exist: PyTorch's own cpuinfo query (what its kernels
    dispatch on) and the kernel's ``/proc/cpuinfo`` flags. Either one reporting "no" means no, so a wrong
    answer can only cost speed (fp32), never the 100x slow emulated path.
    """
    torch_says: bool | None = None
    try:
        torch_says = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older PyTorch without the query
        torch_says = None
    flags = cpu_flags()
    flags_say = bool(flags & {"avx512_bf16", "amx_bf16"}) if flags else None
    if torch_says is None and flags_say is None:
        return False
    return all(v for v in (torch_says, flags_say) if v is not None)


def resolve_precision(
    precision: str, device: torch.device | str, purpose: Purpose = "inference"
) -> Literal["fp32", "fp16", "bf16"]:
    """The concrete precision for ``precision`` ("auto" or a fixed one) on ``device``.

    A fixed choice is returned unchanged (the caller validates it against the device). "auto": CUDA gives
    fp16 for inference and bf16 for training; a CPU gives bf16 when `cpu_native_bf16`, else fp32; any other
    device gives fp32.
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    if precision != "auto":
        return precision  # type: ignore[return-value]
    kind = torch.device(device).type
    if kind == "cuda":
        return "fp16" if purpose == "inference" else "bf16"
    if kind == "cpu" and cpu_native_bf16():
        return "bf16"
    return "fp32"
