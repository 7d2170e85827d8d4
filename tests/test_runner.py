"""ModelRunner: channels_last, the upsampling tail in strips and the half-precision fall back change how a
tile is computed, never what comes out (beyond float rounding)."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

from esrgan.archs import RRDBNet
from esrgan.inference import runner as runner_module
from esrgan.inference.runner import ModelRunner, supports_strips

CPU = torch.device("cpu")


def _rrdbnet(**kwargs: int) -> RRDBNet:
    torch.manual_seed(0)
    model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, **kwargs).eval()
    for p in model.parameters():  # larger weights than the 0.1-scaled init: differences would show
        p.data.normal_(0, 0.2)
    return model


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x.contiguous())


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        ({"scale": 4}, (37, 22)),
        ({"scale": 2}, (20, 14)),  # pixel-unshuffle: features at half resolution
        ({"scale": 2, "num_upsample": 1}, (19, 23)),  # old-architecture ×2
        ({"scale": 8}, (9, 11)),
    ],
)
@pytest.mark.parametrize("strip_bytes", [1, 20_000, 1 << 30])  # one feature row per strip … one strip
def test_tail_in_strips_equals_the_whole_tail(
    kwargs: dict[str, int], size: tuple[int, int], strip_bytes: int
) -> None:
    model = _rrdbnet(**kwargs)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    expected = _reference(model, x)
    runner = ModelRunner(model, CPU, strip_bytes=strip_bytes)
    assert runner.strips and runner.channels_last
    got = runner(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    # float rounding only (channels_last kernels sum in another order): relative to the output's magnitude
    torch.testing.assert_close(got, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_tail_strips_stay_under_the_kept_heap_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where glibc keeps freed blocks, each strip's tail maps stay under its mmap threshold (a larger block
    is mapped, and page-faulted, afresh on every pass), however large `strip_bytes` allows."""
    threshold = 300_000
    monkeypatch.setattr(runner_module, "_MMAP_THRESHOLD", threshold)
    monkeypatch.setattr(runner_module, "_MALLOC_SLACK", 10_000)
    model = _rrdbnet(scale=4)
    x = torch.rand(1, 3, 40, 30, generator=torch.Generator().manual_seed(5))
    expected = _reference(model, x)
    map_bytes: list[int] = []
    model.conv_hr.register_forward_hook(lambda _m, _i, y: map_bytes.append(y.numel() * y.element_size()))
    got = ModelRunner(model, CPU, strip_bytes=1 << 30)(x)
    whole_map = 8 * 160 * 120 * 4  # conv_hr's output for the whole tile: nf 8, 160 × 120, fp32
    assert whole_map > threshold and len(map_bytes) > 1 and max(map_bytes) <= threshold - 10_000
    torch.testing.assert_close(got, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)


def test_strip_halo_is_needed_and_enough() -> None:
    """With a halo one row short the strips differ from the whole tail: the halo is not oversized."""
    model = _rrdbnet(scale=4)
    x = torch.rand(1, 3, 16, 12, generator=torch.Generator().manual_seed(2))
    expected = _reference(model, x)
    halo = model.upsample_halo

    class ShortHalo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.scale, self.upsample_factor, self.upsample_halo = 4, 4, halo - 1
            self.forward_features, self.forward_upsample = model.forward_features, model.forward_upsample

    short = ModelRunner(ShortHalo(), CPU, strip_bytes=1)
    assert (short(x) - expected).abs().max() > 1e-3 * expected.abs().max()


def test_as_written_turns_the_inference_rewrites_off_for_its_calls_only() -> None:
    from esrgan.archs.blocks import rewrites_allowed

    seen: list[bool] = []

    class Probe(nn.Module):
        scale = 1

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(rewrites_allowed())
            return self.conv(x)

    x = torch.rand(1, 3, 4, 4)
    ModelRunner(Probe(), CPU)(x)
    ModelRunner(Probe(), CPU, as_written=True)(x)
    assert seen == [True, False] and rewrites_allowed()


def test_rrdbnet_as_written_skips_the_phase_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    from esrgan.archs import rrdbnet
    from esrgan.archs.blocks import as_written

    def no_rewrite(*_: object) -> None:
        raise AssertionError("rewrite taken")

    monkeypatch.setattr(rrdbnet, "upsample_conv_lrelu", no_rewrite)
    model = _rrdbnet(scale=4).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 6, 5).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), as_written():
        model(x)
    with torch.no_grad(), pytest.raises(AssertionError, match="rewrite taken"):
        model(x)


def test_models_without_the_split_run_whole() -> None:
    model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
    assert not supports_strips(model)
    x = torch.rand(1, 3, 9, 7)
    torch.testing.assert_close(ModelRunner(model, CPU)(x), _reference(model, x), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        ModelRunner(model, CPU, channels_last=False)(x), _reference(model, x), atol=1e-6, rtol=0
    )


class BrokenInHalf(nn.Module):
    """A ×1 model whose output is NaN (or black) under autocast, like fp16 overflow in some models."""

    scale = 1

    def __init__(self, failure: str) -> None:
        super().__init__()
        self.failure = failure
        self.calls: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = torch.is_autocast_enabled(x.device.type)
        self.calls.append(half)
        if half:
            return torch.full_like(x, float("nan")) if self.failure == "nan" else torch.zeros_like(x)
        return x * 0.5 + 0.25


@pytest.mark.parametrize("failure", ["nan", "black"])
def test_unusable_half_precision_output_falls_back_to_fp32(failure: str, caplog) -> None:
    model = BrokenInHalf(failure)
    runner = ModelRunner(model, CPU, precision="bf16")
    x = torch.rand(1, 3, 8, 8) * 0.5 + 0.5
    with caplog.at_level(logging.WARNING):
        y = runner(x)
        y2 = runner(x)
    torch.testing.assert_close(y, x * 0.5 + 0.25)
    torch.testing.assert_close(y2, y)
    assert model.calls == [True, False, False]  # redone in fp32 once, then fp32 for good
    assert runner.precision == "fp32" and ("non-finite" if failure == "nan" else "black") in caplog.text


def test_black_input_may_give_black_output_in_half_precision() -> None:
    model = BrokenInHalf("black")
    runner = ModelRunner(model, CPU, precision="bf16")
    runner(torch.zeros(1, 3, 8, 8))
    assert runner.precision == "bf16" and model.calls == [True]


def test_bf16_is_close_to_fp32_on_cpu() -> None:
    model = _rrdbnet(scale=4)
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(3))
    fp32 = ModelRunner(model, CPU)(x)
    bf16 = ModelRunner(model, CPU, precision="bf16")(x)
    assert bf16.dtype == torch.float32
    err = (bf16 - fp32).abs()
    assert 0 < err.max() < 0.1 * fp32.abs().max()  # bf16 really ran (not bit-equal), and stays close


def test_fp16_needs_cuda(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        runner = ModelRunner(_rrdbnet(), CPU, precision="fp16")
    assert runner.precision == "fp32" and "CUDA" in caplog.text
    with pytest.raises(ValueError, match="precision"):
        ModelRunner(_rrdbnet(), CPU, precision="int4")  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cuda_matches_fp32(precision: str) -> None:
    model = _rrdbnet(scale=4)
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(4))
    fp32 = ModelRunner(model, torch.device("cuda"))(x).cpu()
    half = ModelRunner(model, torch.device("cuda"), precision=precision)(x).cpu()  # type: ignore[arg-type]
    assert (half - fp32).abs().max() < 0.05


_FAULTS_SCRIPT = """
import resource, sys, torch
from esrgan.archs import RRDBNet
from esrgan.inference import runner
if sys.argv[1] == "keep":
    assert runner.keep_freed_memory()
torch.set_num_threads(1)
model = RRDBNet(num_feat=32, num_block=1).eval().to(memory_format=torch.channels_last)
x = torch.rand(1, 3, 96, 96).contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    model(x), model(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_keeping_freed_memory_saves_page_faults_on_later_passes() -> None:
    """After `keep_freed_memory`, a repeated forward pass reuses the heap blocks of the previous one instead
    of faulting fresh pages in (each case in its own process: mallopt is process-wide).

    Both processes start from glibc's default mmap threshold (128 KiB) pinned by GLIBC_TUNABLES: left free,
    glibc raises it by itself as mapped blocks are freed, and whether the baseline's later pass then faults
    depends on the heap layout of the run (0 faults in about one run of five)."""
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")

    def faults(mode: str) -> int:
        command = [sys.executable, "-c", _FAULTS_SCRIPT, mode]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert faults("keep") < 0.6 * faults("default")


def test_cpu_runners_keep_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr("esrgan.inference.runner.keep_freed_memory", lambda: calls.append(1))
    ModelRunner(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), torch.device("cpu"))
    assert calls == [1]
