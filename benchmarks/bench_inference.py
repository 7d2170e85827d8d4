"""Inference speed and memory: the original ESRGAN `test.py` procedure against `esrgan upscale`'s paths.

    python benchmarks/bench_inference.py                      # print the table
    python benchmarks/bench_inference.py --write              # also write docs/benchmarks/inference.md
    python benchmarks/bench_inference.py --sizes 128x128 --methods reference,esrgan --repeat 3

Every method upscales the same image with the same weights: the paper's RRDBNet ×4 (nf 64, nb 23, gc 32;
random weights with the paper's init, seed 0 — speed does not depend on what the weights learned, and the
real ones cannot be downloaded here), saved once to a safetensors file that every method loads. Inputs are
real photographs: crops of ../shared/data (DIV2K sub-images, Set14) at the given LR sizes.

Methods:
- ``reference``: the original ESRGAN `test.py` (xinntao/ESRGAN, 2018): the whole image as one NCHW float32
  tensor through the eager model under `torch.no_grad()`, then clamp, ×255, round.
- ``esrgan``: `esrgan.Upscaler` with the defaults of `esrgan upscale` (tile "auto" within the CPU memory
  budget, overlap 16, channels_last, tail in strips) — the default CPU path.
- ``onnxruntime`` / ``onnxruntime-int8``: the same Upscaler over `OnnxModel` (needs ``pip install
  "esrgan[onnx]"``); the ONNX files are exported from the same weights (int8: static QDQ calibrated on Set5).

Each (method, size) runs in a fresh subprocess: one warm-up upscale, then `--repeat` timed ones; reported are
the median seconds per output megapixel, the achieved GFLOP/s from the exact multiply-add count of the
network (counted here from the convolutions' shapes: 17,926,848 MAC per input pixel for RRDBNet ×4, SPEC) and
the peak resident memory of the process (``ru_maxrss``, model and image included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from torch import nn

from esrgan.archs import RRDBNet
from esrgan.weights import load_model, save_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "benchmarks" / "inference.md"
CACHE = Path(tempfile.gettempdir()) / "esrgan-bench-inference"
METHODS = ("reference", "esrgan", "onnxruntime", "onnxruntime-int8")
# This machine's fp32 FMA peak (2 cores × AVX2 2 FMA units × 8 lanes × 2 flops × clock), from the issue.
PEAK_GFLOPS = 204.0
MACS_PER_INPUT_PIXEL = 17_926_848  # RRDBNet ×4, nf 64, nb 23, gc 32 (SPEC)


# ---------------------------------------------------------------------------------------------------------
# inputs


def weights_file() -> Path:
    path = CACHE / "rrdbnet_x4_paper_init.safetensors"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        save_model(RRDBNet(), path)
    return path


def input_image(height: int, width: int) -> Path:
    """A crop (tiled if needed) of real photographs, `height × width` RGB uint8, as a PNG."""
    path = CACHE / f"input_{width}x{height}.png"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sources = sorted((DATA / "DIV2K-tiny-HR").glob("*.png"))[:16]
        if not sources:
            raise SystemExit(f"no images in {DATA}; see ../shared/data/README.md")
        canvas = np.zeros((height, width, 3), np.uint8)
        k = 0
        for y in range(0, height, 480):
            for x in range(0, width, 480):
                img = np.asarray(PILImage.open(sources[k % len(sources)]).convert("RGB"))
                h, w = min(480, height - y, img.shape[0]), min(480, width - x, img.shape[1])
                canvas[y : y + h, x : x + w] = img[:h, :w]
                k += 1
        PILImage.fromarray(canvas).save(path)
    return path


def onnx_file(int8: bool) -> Path:
    from esrgan.inference.onnx_backend import export_onnx, export_onnx_int8

    path = CACHE / ("rrdbnet_x4_int8.onnx" if int8 else "rrdbnet_x4.onnx")
    if not path.exists():
        if int8:
            export_onnx_int8(str(weights_file()), path, sorted((DATA / "Set5").glob("*.png")))
        else:
            export_onnx(str(weights_file()), path)
    return path


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of every convolution for one `height × width` input (from output shapes)."""
    total = 0

    def hook(module: nn.Conv2d, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    for h in handles:
        h.remove()
    return total


# ---------------------------------------------------------------------------------------------------------
# one measurement (runs in its own process)


def reference_upscale(model: nn.Module, img: np.ndarray) -> np.ndarray:
    """xinntao/ESRGAN test.py, minus file reading and writing (its arrays are BGR; RGB here)."""
    x = img * 1.0 / 255
    x = torch.from_numpy(np.transpose(x, (2, 0, 1))).float()
    x = x.unsqueeze(0)
    with torch.no_grad():
        out = model(x).data.squeeze().float().cpu().clamp_(0, 1).numpy()
    out = np.transpose(out, (1, 2, 0))
    return (out * 255.0).round().astype(np.uint8)


def worker(method: str, image_path: Path, repeat: int) -> dict[str, object]:
    img = np.asarray(PILImage.open(image_path).convert("RGB"))
    if method == "reference":
        model = load_model(str(weights_file()), device="cpu").eval()

        def run() -> np.ndarray:
            return reference_upscale(model, img)

    else:
        from esrgan.inference.upscaler import Upscaler

        if method == "esrgan":
            upscaler = Upscaler(load_model(str(weights_file()), device="cpu"), tile="auto", device="cpu")
        else:
            from esrgan.inference.onnx_backend import OnnxModel

            upscaler = Upscaler(OnnxModel(onnx_file(method.endswith("int8"))), tile="auto", device="cpu")

        def run() -> np.ndarray:
            return upscaler.upscale(img)

    out = run()  # warm-up: oneDNN primitive creation, allocator
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - start)
    return {
        "seconds": seconds,
        "out_shape": list(out.shape),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------------------------------------------
# driver


def measure(method: str, height: int, width: int, repeat: int) -> dict[str, object]:
    image = input_image(height, width)
    if method.startswith("onnxruntime"):
        onnx_file(method.endswith("int8"))  # export outside the timed process
    cmd = [sys.executable, __file__, "--worker", method, str(image), "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    median = statistics.median(result["seconds"])
    out_mp = height * width * 16 / 1e6
    result.update(
        {
            "median_s": median,
            "s_per_mp": median / out_mp,
            "gflops": 2 * MACS_PER_INPUT_PIXEL * height * width / median / 1e9,
        }
    )
    return result


def table(rows: list[tuple[str, str, dict[str, object]]]) -> str:
    lines = [
        "| output | method | s / output MP | GFLOP/s | % of FMA peak | peak RSS | speed-up vs reference |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    reference = {size: r.get("s_per_mp") for size, method, r in rows if method == "reference"}
    for size, method, r in rows:
        if "error" in r:
            lines.append(f"| {size} | {method} | failed: {r['error']} | | | | |")
            continue
        ref = reference.get(size)
        speedup = f"{ref / r['s_per_mp']:.2f}×" if isinstance(ref, float) else "–"
        lines.append(
            f"| {size} | {method} | {r['s_per_mp']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['gflops'] / PEAK_GFLOPS:.0f}% | {r['max_rss_mb']:.0f} MB | {speedup} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="128x128,480x320", help="LR sizes WxH, comma separated")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "IMAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), args.repeat)))
        return

    macs = count_macs(RRDBNet(), 32, 32) // (32 * 32)
    if macs != MACS_PER_INPUT_PIXEL:
        raise SystemExit(f"MAC count {macs} per input pixel differs from the SPEC's {MACS_PER_INPUT_PIXEL}")
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        for method in args.methods.split(","):
            result = measure(method, height, width, args.repeat)
            label = f"{width * 4}×{height * 4}"
            rows.append((label, method, result))
            print(label, method, json.dumps(result), flush=True)
    load = os.getloadavg()[0]
    cpu = platform.processor() or platform.machine()
    text = (
        "# Inference speed and memory\n\n"
        f"Generated by `python benchmarks/bench_inference.py --sizes {args.sizes} --methods {args.methods} "
        f"--repeat {args.repeat} --write`; rerun it to refresh this page.\n\n"
        f"Machine: {cpu}, {os.cpu_count()} CPU cores visible, torch threads {torch.get_num_threads()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}. RRDBNet ×4 (nf 64, nb 23), "
        f"{MACS_PER_INPUT_PIXEL:,} multiply-adds per input pixel (counted from the convolutions); "
        f"FMA peak taken as {PEAK_GFLOPS:.0f} GFLOP/s. Median of {args.repeat} runs after a warm-up, each "
        f"method in its own process; peak RSS includes Python, torch and the model. Load average when the "
        f"measurement ended: {load:.1f}.\n\n" + table(rows) + "\n"
    )
    print(text)
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
