"""`precision="auto"`: bf16 only where the CPU computes it natively, and bf16 training as good as fp32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from esrgan import precision as P
from esrgan.config import load_config
from esrgan.train import train

ROOT = Path(__file__).resolve().parents[1]

AVX2_ONLY = "fpu vme sse sse2 avx avx2 fma bmi2"  # AMD Zen3, older Xeons: bf16 is emulated, ~100x slower
AVX512_BF16 = AVX2_ONLY + " avx512f avx512bw avx512_bf16"
AMX = AVX2_ONLY + " avx512f amx_tile amx_bf16 amx_int8"


def _cpu(monkeypatch: pytest.MonkeyPatch, flags: str | None, torch_bf16: bool | None) -> None:
    """Pretend to be a CPU with these /proc/cpuinfo flags and this answer from torch's own query."""
    P.cpu_native_bf16.cache_clear()
    monkeypatch.setattr(P, "cpu_flags", lambda: set(flags.split()) if flags is not None else set())
    if torch_bf16 is None:
        monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
        monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: torch_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


@pytest.fixture(autouse=True)
def _fresh_cache():
    P.cpu_native_bf16.cache_clear()
    yield
    P.cpu_native_bf16.cache_clear()


@pytest.mark.parametrize(
    ("flags", "torch_says", "native"),
    [
        (AVX2_ONLY, False, False),
        (AVX2_ONLY, None, False),  # an older torch without the query: the flags decide
        (AVX2_ONLY, True, False),  # the witnesses disagree: never risk the emulated path
        (AVX512_BF16, False, False),
        (AVX512_BF16, True, True),
        (AVX512_BF16, None, True),
        (AMX, True, True),
        (None, None, False),  # nothing known (no /proc/cpuinfo, old torch): fp32
        (None, True, True),  # no /proc/cpuinfo (macOS, Windows): torch's query decides
    ],
)
def test_native_bf16_detection(monkeypatch: pytest.MonkeyPatch, flags, torch_says, native) -> None:
    _cpu(monkeypatch, flags, torch_says)
    assert P.cpu_native_bf16() is native
    assert P.resolve_precision("auto", "cpu", "training") == ("bf16" if native else "fp32")
    assert P.resolve_precision("auto", "cpu", "inference") == ("bf16" if native else "fp32")


def test_auto_on_cuda_and_fixed_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, AVX2_ONLY, False)
    assert P.resolve_precision("auto", "cuda:0", "inference") == "fp16"
    assert P.resolve_precision("auto", "cuda", "training") == "bf16"
    assert P.resolve_precision("auto", "mps", "inference") == "fp32"
    for fixed in ("fp32", "bf16", "fp16"):
        assert P.resolve_precision(fixed, "cpu") == fixed  # a fixed choice is never second-guessed
    with pytest.raises(ValueError, match="precision"):
        P.resolve_precision("int8", "cpu")


def test_training_defaults_to_auto_with_channels_last() -> None:
    cfg = load_config(ROOT / "configs" / "tiny_psnr.yaml")
    assert cfg.train.precision == "auto" and cfg.train.channels_last


def test_avx2_only_cpu_trains_in_fp32(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_data: Path):
    _cpu(monkeypatch, AVX2_ONLY, False)
    seen = []
    real = P.resolve_precision

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr("esrgan.train.loop.resolve_precision", spy)
    _tiny_run(tmp_path / "run", shared_data, "auto", iters=2)
    assert seen == ["fp32"]


def _tiny_run(run_dir: Path, data: Path, precision: str, iters: int) -> float:
    overrides = [
        f"data.hr_dirs=[{data / 'DIV2K-tiny-HR'}]",
        f"data.val_hr_dirs=[{data / 'Set5'}]",
        "data.num_workers=0",
        "data.cache_mb=256",
        f"train.total_iters={iters}",
        f"train.val_every={iters}",
        f"train.checkpoint_every={iters}",
        f"train.precision={precision}",
        "train.device=cpu",
        "train.ema_decay=0",
    ]
    train(ROOT / "configs" / "tiny_psnr.yaml", run_dir, overrides=overrides)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == "val"][-1]["psnr_y"]


@pytest.mark.slow
def test_bf16_training_reaches_the_fp32_quality(tmp_path: Path, shared_data: Path) -> None:
    """Same seed, same data order: bf16 autocast ends within noise of fp32 (both far above the start)."""
    if not P.cpu_native_bf16():
        pytest.skip("bf16 is emulated on this CPU (~100x slower): the comparison would take too long")
    fp32 = _tiny_run(tmp_path / "fp32", shared_data, "fp32", iters=150)
    bf16 = _tiny_run(tmp_path / "bf16", shared_data, "bf16", iters=150)
    start = _tiny_run(tmp_path / "start", shared_data, "fp32", iters=1)
    print(f"Set5 PSNR-Y after 150 steps: fp32 {fp32:.3f} dB, bf16 {bf16:.3f} dB (start {start:.3f} dB)")
    assert fp32 - start > 3.0  # the runs learned something, so equality is not trivially true
    assert abs(bf16 - fp32) < 0.25, (fp32, bf16)


def test_upscaler_and_upscale_default_to_auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from esrgan.archs import RRDBNet
    from esrgan.cli import main
    from esrgan.inference.upscaler import Upscaler
    from esrgan.jobs.manifest import read_manifest
    from esrgan.weights import save_model

    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    _cpu(monkeypatch, AVX2_ONLY, False)
    assert Upscaler(net, device="cpu").requested_precision == "fp32"
    _cpu(monkeypatch, AVX512_BF16, True)
    assert Upscaler(net, device="cpu").requested_precision == "bf16"
    assert Upscaler(net, device="cpu", precision="fp32").requested_precision == "fp32"

    class Weightless(torch.nn.Module):  # e.g. an onnxruntime wrapper: PyTorch's autocast cannot reach it
        scale = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.interpolate(x, scale_factor=2)

    assert Upscaler(Weightless(), device="cpu").requested_precision == "fp32"

    model = save_model(net, tmp_path / "tiny.safetensors")
    src = tmp_path / "in.png"
    PILImage.new("RGB", (8, 8), (90, 120, 200)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", str(model), "-q"]) == 0
    (record,) = read_manifest(tmp_path / "out").values()
    assert record.recipe.precision == "bf16"  # what auto chose on this (pretended) CPU
