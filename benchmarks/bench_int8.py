"""int8 on the CPU: quality loss and speed-up of the onnxruntime backend for the bundled model.

    python benchmarks/bench_int8.py                      # quality and timing, printed
    python benchmarks/bench_int8.py --no-timing          # quality only (a minute or two)
    python benchmarks/bench_int8.py --write              # also write docs/benchmarks/int8.md (whole document)

Needs the ONNX extra (``pip install -e ".[onnx]"``) and ``../shared/data`` (Set5, DIV2K-tiny-HR).

Models: the bundled default (``esrgan.weights.DEFAULT_MODEL``) run by torch (fp32), and by onnxruntime from
one fp32 export
(`esrgan.inference.onnx.export_onnx`): fp32, int8 "static" (QDQ, MinMax calibration) and int8
"dynamic" (`quantize_onnx_int8`). Calibration: MATLAB bicubic ×1/4 LR of 32 of the 100 DIV2K-tiny-HR images
(the training images, never Set5), one 128² patch each — the LR images are 120², so whole images.

Quality: `esrgan.eval.run_benchmark` on Set5 ×4 — the `esrgan benchmark` protocol: HR mod-4 cropped, LR by
MATLAB bicubic, PSNR/SSIM on MATLAB uint8 Y with 4 border pixels removed, means over the 5 images; every model
through an `Upscaler` (whole image, no tiles). Against the onnxruntime fp32 output: PSNR with the same
convention (mean over images) and the largest difference of any RGB value. With ``--alternatives`` (default),
static variants that were tried and rejected are measured too.

Timing (not with ``--no-timing``): seconds per output megapixel of ``Upscaler.upscale`` on a 256×256 RGB
uint8 crop of a DIV2K image (1024×1024 output, whole image), after one untimed run; the median of
``--repeats`` runs, with 1 thread and with one thread per physical core (torch.set_num_threads /
onnxruntime intra-op threads). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esrgan import metrics
from esrgan.eval import BenchmarkSettings, run_benchmark
from esrgan.inference.onnx import (
    OnnxModel,
    _CalibrationReader,
    calibration_batches,
    export_onnx,
    onnx_metadata,
    quantize_onnx_int8,
)
from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import read_image
from esrgan.ops.matlab_resize import downscale_uint8
from esrgan.weights import DEFAULT_MODEL, load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "benchmarks" / "int8.md"
SCALE = 4
CALIBRATION_IMAGES = 32
TIMING_SIDE = 256
REFERENCE = "ORT fp32"  # the int8 outputs are compared with this one


@dataclass(frozen=True)
class Quality:
    method: str
    psnr: float  # against HR, dB (Y, crop 4, mean over images)
    ssim: float
    psnr_vs_fp32: float | None  # against the onnxruntime fp32 output
    max_diff: int | None  # largest |difference| of an RGB value (0…255) against it
    note: str = ""


@dataclass(frozen=True)
class Timing:
    method: str
    threads: int
    seconds_per_mp: float


def physical_cores() -> int:
    """Physical cores (distinct (package, core id) pairs in /proc/cpuinfo), else the logical CPU count."""
    try:
        cores, package = set(), "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    package = value.strip()
                elif key == "core id":
                    cores.add((package, value.strip()))
        if cores:
            return len(cores)
    except OSError:
        pass
    return os.cpu_count() or 1


def calibration_lr() -> list[np.ndarray]:
    """MATLAB bicubic ×1/4 LR of a seeded choice of DIV2K-tiny-HR images (the model's training images)."""
    files = sorted((DATA / "DIV2K-tiny-HR").glob("*.png"))
    chosen = np.random.default_rng(0).choice(len(files), size=CALIBRATION_IMAGES, replace=False)
    return [downscale_uint8(read_image(files[i]).pixels, SCALE) for i in sorted(chosen)]


def build_models(folder: Path, lr: list[np.ndarray], alternatives: bool) -> dict[str, Path]:
    """The ONNX files: fp32, the two int8 methods of the library and (optionally) rejected variants."""
    fp32 = export_onnx(DEFAULT_MODEL, folder / "fp32.onnx")
    files = {REFERENCE: fp32}
    for method in ("static", "dynamic"):
        start = time.perf_counter()
        files[f"ORT int8 {method}"] = quantize_onnx_int8(
            fp32, folder / f"int8_{method}.onnx", lr, method=method
        )
        print(f"int8 {method}: quantised in {time.perf_counter() - start:.0f} s", flush=True)
    if alternatives:
        for name, options in ALTERNATIVES.items():
            start = time.perf_counter()
            files[name] = quantize_variant(fp32, folder / f"alt_{len(files)}.onnx", lr, **options)
            print(f"{name}: quantised in {time.perf_counter() - start:.0f} s", flush=True)
    return files


# Static QDQ variants measured against the library's choice (MinMax over whole LR images, everything int8).
ALTERNATIVES: dict[str, dict[str, Any]] = {
    "static, MinMax moving average": {"calibration": "MinMax", "extra": {"CalibMovingAverage": True}},
    "static, int8 activations (symmetric)": {
        "calibration": "MinMax",
        "activation": "QInt8",
        "extra": {"ActivationSymmetric": True},
    },
    "static, output-resolution convs in fp32": {"calibration": "MinMax", "exclude_tail": True},
}


def quantize_variant(
    fp32: Path,
    out: Path,
    lr: list[np.ndarray],
    *,
    calibration: str,
    activation: str = "QUInt8",
    extra: Mapping[str, Any] | None = None,
    exclude_tail: bool = False,
) -> Path:
    """A static QDQ variant, made with onnxruntime.quantization directly (same pre-processing and patches)."""
    import onnx
    from onnxruntime import quantization as q

    source = OnnxModel(fp32, threads=1)
    batches = list(calibration_batches(lr, in_channels=source.num_in_ch, size_multiple=source.size_multiple))
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(fp32), str(pre))
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        # RRDBNet ×4: the last four convs (conv_up2, conv_hr, conv_last at 4×, conv_up1 at 2×) are the tail
        excluded = convs[-4:] if exclude_tail else []
        q.quantize_static(
            str(pre),
            str(out),
            _CalibrationReader(source.input_name, batches),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=getattr(q.QuantType, activation),
            weight_type=q.QuantType.QInt8,
            calibrate_method=getattr(q.CalibrationMethod, calibration),
            nodes_to_exclude=excluded,
            extra_options=dict(extra or {}),
        )
    return out


def measure_quality(files: Mapping[str, Path]) -> list[Quality]:
    models: dict[str, torch.nn.Module] = {"torch fp32": load_model(DEFAULT_MODEL)}
    # one onnxruntime thread: the outputs do not depend on it, and quality runs may share a busy machine
    models.update({name: OnnxModel(path, threads=1) for name, path in files.items()})
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in models}

    def keep(dataset: str, image: str, hr: np.ndarray, lr: np.ndarray, out: Mapping[str, np.ndarray]) -> None:
        for name in models:
            outputs[name].append(out[name])

    settings = BenchmarkSettings(
        scale=SCALE, niqe=False, tile=0, device="cpu", progress=False, comparisons=False
    )
    result = run_benchmark(
        {"Set5": DATA / "Set5"}, models, baselines=["bicubic"], settings=settings, on_image=keep
    )
    rows = [
        Quality(
            "bicubic",
            result.summary("Set5", "bicubic").psnr,
            result.summary("Set5", "bicubic").ssim,
            None,
            None,
        )
    ]
    for name in models:
        s = result.summary("Set5", name)
        vs, diff = None, None
        if name != REFERENCE:
            pairs = list(zip(outputs[name], outputs[REFERENCE], strict=True))
            vs = float(np.mean([metrics.psnr(a, b, crop_border=SCALE) for a, b in pairs]))
            diff = max(int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max()) for a, b in pairs)
        note = "rejected alternative" if name in ALTERNATIVES else ""
        rows.append(Quality(name, s.psnr, s.ssim, vs, diff, note))
    return rows


def measure_timing(files: Mapping[str, Path], repeats: int, thread_counts: list[int]) -> list[Timing]:
    hr = read_image(sorted((DATA / "DIV2K-tiny-HR").glob("*.png"))[0]).pixels
    image = np.ascontiguousarray(hr[:TIMING_SIDE, :TIMING_SIDE, :3])
    megapixels = (TIMING_SIDE * SCALE) ** 2 / 1e6
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        makers: dict[str, Callable[[], torch.nn.Module]] = {"torch fp32": lambda: load_model(DEFAULT_MODEL)}
        for name, path in files.items():
            if name not in ALTERNATIVES:
                makers[name] = lambda path=path, threads=threads: OnnxModel(path, threads=threads)
        for name, make in makers.items():
            upscaler = Upscaler(make(), tile=0, device="cpu")
            upscaler.upscale(image)  # warm-up: allocations, oneDNN/onnxruntime kernel selection
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                upscaler.upscale(image)
                seconds.append(time.perf_counter() - start)
            rows.append(Timing(name, threads, statistics.median(seconds) / megapixels))
            print(f"{name}, {threads} thread(s): {rows[-1].seconds_per_mp:.3f} s/MP", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# report


def quality_table(rows: list[Quality]) -> str:
    fp32 = next(r for r in rows if r.method == REFERENCE)
    lines = [
        f"| method | PSNR (dB) | SSIM | ΔPSNR vs {REFERENCE} | PSNR vs {REFERENCE} output (dB) "
        "| max \\|Δ\\| (levels) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        delta = "" if r.method in ("bicubic", REFERENCE) else f"{r.psnr - fp32.psnr:+.3f}"
        vs = "" if r.psnr_vs_fp32 is None else f"{r.psnr_vs_fp32:.2f}"
        diff = "" if r.max_diff is None else str(r.max_diff)
        name = f"{r.method} *({r.note})*" if r.note else r.method
        lines.append(f"| {name} | {r.psnr:.3f} | {r.ssim:.4f} | {delta} | {vs} | {diff} |")
    return "\n".join(lines)


def timing_table(rows: list[Timing]) -> str:
    lines = [
        "| method | threads | s / output MP | speed-up vs torch fp32 | speed-up vs ORT fp32 |",
        "|---|---:|---:|---:|---:|",
    ]
    base = {(r.method, r.threads): r.seconds_per_mp for r in rows}
    for r in rows:
        torch_s, ort_s = base[("torch fp32", r.threads)], base[(REFERENCE, r.threads)]
        lines.append(
            f"| {r.method} | {r.threads} | {r.seconds_per_mp:.3f} | ×{torch_s / r.seconds_per_mp:.2f} | "
            f"×{ort_s / r.seconds_per_mp:.2f} |"
        )
    return "\n".join(lines)


def environment(files: Mapping[str, Path]) -> str:
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    static = onnx_metadata(files["ORT int8 static"]).get("esrgan.quantization", "")
    return (
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"Python {platform.python_version()}, {cpu} ({physical_cores()} physical cores, {os.cpu_count()} "
        f"logical); static int8 settings: `{static}`"
    )


def document(quality: list[Quality], timing: list[Timing] | None, env: str, command: str) -> str:
    static = next(r for r in quality if r.method == "ORT int8 static")
    dynamic = next(r for r in quality if r.method == "ORT int8 dynamic")
    fp32 = next(r for r in quality if r.method == REFERENCE)
    torch_row = next(r for r in quality if r.method == "torch fp32")
    bicubic = next(r for r in quality if r.method == "bicubic")
    gain = max(1e-9, fp32.psnr - bicubic.psnr)
    side, out = TIMING_SIDE, TIMING_SIDE * SCALE
    if timing:
        timing_part = (
            f"Seconds per output megapixel of `Upscaler.upscale` on a {side}×{side} RGB input ({out}×{out} "
            "output, whole image), median of the timed runs after one untimed run:\n\n" + timing_table(timing)
        )
    else:
        timing_part = (
            "Not measured in this run (`--no-timing`: the machine was busy, so timings would have meant "
            "nothing). `python benchmarks/bench_int8.py --write` on an idle machine measures them and "
            "rewrites this whole page."
        )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""# int8 on the CPU: quality and speed of the onnxruntime backend

Generated by `{command}` (repository root, venv with the `onnx` extra) on {stamp}; {env}.

The bundled default model `{DEFAULT_MODEL}` (RRDBNet ×4, 32 features, 6 blocks) run by torch, and by
onnxruntime (`esrgan upscale --backend onnxruntime`, or `-m model.onnx` from `esrgan export onnx [--int8]`)
from one fp32 ONNX export: fp32, int8 *static* (QDQ: int8 per-channel weights, uint8 activations with MinMax
ranges calibrated on images; every convolution, activation, concatenation and addition in int8) and int8
*dynamic* (int8 weights; each convolution's input quantised at run time with its own range; no
calibration). Calibration: MATLAB bicubic ×1/4 LR images of {CALIBRATION_IMAGES} DIV2K-tiny-HR images (the
model's training images; never Set5), whole (120×120).

## Quality (Set5 ×4)

The `esrgan benchmark` protocol: HR mod-4 cropped, LR by MATLAB bicubic, PSNR/SSIM on MATLAB uint8 Y with 4
border pixels removed, means over the 5 images; every model through an `Upscaler` (whole image). The last
two columns compare each output with the onnxruntime fp32 output: PSNR (same convention) and the largest
difference of any RGB value.

{quality_table(quality)}

- onnxruntime fp32 gives the torch pixels: {torch_row.max_diff} level at most.
- **int8 static loses {fp32.psnr - static.psnr:.3f} dB** against HR ({static.psnr_vs_fp32:.1f} dB against
  the fp32 output, at most {static.max_diff} levels); **int8 dynamic loses {fp32.psnr - dynamic.psnr:.3f}
  dB** ({dynamic.psnr_vs_fp32:.1f} dB, at most {dynamic.max_diff} levels). Static int8 gives back
  {(fp32.psnr - static.psnr) / gain * 100:.0f} % of the model's {gain:.2f} dB gain over bicubic, dynamic
  {(fp32.psnr - dynamic.psnr) / gain * 100:.0f} %.
- Why static loses more: with one range per tensor fixed in advance, the trunk's residual stream and the
  dense-block concatenations (whose channels have very different ranges) are stored in 256 levels over the
  widest range any calibration image reached, after every block; dynamic quantisation keeps all of that in
  float and quantises only each convolution's input, with that image's own range.
- Rejected static variants (the rows marked so, when measured): moving-average calibration narrows the
  ranges, which clips the activations of bright regions (look at the largest differences: tens of levels,
  in white areas); symmetric int8 activations waste half the levels on the mostly positive activations;
  keeping the output-resolution convolutions (a tenth of the work) in fp32 barely helps, because the loss
  comes from the trunk. Percentile calibration (99.999 %) was tried once by hand, on 16 of these images: it
  narrows the ranges too, −0.07 dB on average but errors of up to 52 levels in white areas; it is not in the
  script because onnxruntime keeps every activation of every calibration image in memory for it (~0.7 GB
  per image for this model; 32 images need more than 23 GB).
- Tests (`tests/test_onnx_backend.py`) hold the backends to this: fp32 within one level of torch; on a Set5
  image, int8 static ≥ 40 dB and dynamic ≥ 45 dB against the fp32 output, static at most 0.4 dB below fp32
  against HR.

## Speed

{timing_part}

Which int8 method to use: static is the one that runs int8 end to end (onnxruntime fuses the QDQ pairs into
QLinearConv and friends, using VNNI/AMX int8 instructions where the CPU has them); dynamic adds a quantise
step and float rescaling around every convolution. Take the faster one on your CPU from the table above if
its quality loss is acceptable; dynamic when no calibration images are at hand.

## Reproduce

```bash
pip install -e ".[onnx]"
python benchmarks/bench_int8.py --write            # quality + timing (idle machine), rewrites this page
esrgan export onnx -o small.int8.onnx --int8 --calibration DIR_OF_LR_IMAGES
esrgan upscale photo.png -m small.int8.onnx
```
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-timing", action="store_true", help="quality only")
    parser.add_argument("--no-alternatives", action="store_true", help="skip the rejected static variants")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per backend (default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        action="append",
        default=None,
        help="thread count(s) for timing; repeat for several (default: 1 and the physical cores)",
    )
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()

    lr = calibration_lr()
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        files = build_models(Path(tmp), lr, alternatives=not args.no_alternatives)
        quality = measure_quality(files)
        print(quality_table(quality), flush=True)
        timing = None
        if not args.no_timing:
            counts = args.threads or sorted({1, physical_cores()})
            timing = measure_timing(files, args.repeats, counts)
            print(timing_table(timing))
        env = environment(files)
    if args.write:
        flags = " ".join(
            f
            for f, on in (("--no-timing", args.no_timing), ("--no-alternatives", args.no_alternatives))
            if on
        )
        command = f"python benchmarks/bench_int8.py --write {flags}".strip()
        DOC.write_text(document(quality, timing, env, command), encoding="utf-8")
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
