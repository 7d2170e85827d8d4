"""GPU inference speed and fidelity by precision and tile batch (for scripts/gpu_check.sh; needs CUDA).

    python benchmarks/bench_gpu_inference.py [--size 512] [--repeat 3]

Full-size RRDBNet (23 blocks, 64 features, ×4) with BasicSR-initialised random weights on a synthetic
``size × size`` image: seconds per output megapixel for fp32, fp16 and bf16 at tile batch 1 and 4 (tiles of
256 px), and each half-precision output's PSNR and largest difference (8-bit levels) against fp32. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from esrgan.archs import RRDBNet
from esrgan.archs.rrdbnet import basicsr_init
from esrgan.inference.upscaler import Upscaler


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    torch.manual_seed(0)
    model = basicsr_init(RRDBNet())
    rng = np.random.default_rng(0)
    t = np.linspace(0, 8 * np.pi, args.size, dtype=np.float32)
    base = 0.5 + 0.4 * np.sin(t[:, None, None] + np.arange(3)) * np.cos(t[None, :, None] / 2)
    image = np.clip((base + rng.normal(0, 0.05, base.shape)) * 255, 0, 255).astype(np.uint8)
    out_mp = (args.size * 4) ** 2 / 1e6
    rows, reference = [], None
    for precision in ("fp32", "fp16", "bf16"):
        for batch in (1, 4):
            up = Upscaler(
                model, tile=256, tile_overlap=8, device="cuda", precision=precision, tile_batch=batch
            )
            up.upscale(image)  # warm-up (cuDNN autotuning, allocations)
            torch.cuda.synchronize()
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                out = up.upscale(image)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            if reference is None:
                reference = out.astype(np.float64)
            diff = out.astype(np.float64) - reference
            mse = float(np.mean(diff**2))
            psnr = "exact" if mse == 0 else f"{10 * math.log10(255**2 / mse):.1f} dB"
            rows.append(
                (precision, up.runner.precision, batch, min(times) / out_mp, psnr, int(np.abs(diff).max()))
            )
    print(
        f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}; RRDBNet 23×64 ×4, "
        f"{args.size}² input, 256-px tiles, best of {args.repeat}\n"
    )
    print("| precision | ran as | tile batch | s / output MP | vs fp32 | max diff (levels) |")
    print("|---|---|---:|---:|---|---:|")
    for precision, ran, batch, s_mp, psnr, worst in rows:
        print(f"| {precision} | {ran} | {batch} | {s_mp:.4f} | {psnr} | {worst} |")


if __name__ == "__main__":
    main()
