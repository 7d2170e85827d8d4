"""Tile size and overlap for each precision: seconds per output megapixel, and the seams' cost in fidelity.

    python benchmarks/bench_tiles.py                  # 320×240 DIV2K input, full-size RRDBNet ×4
    python benchmarks/bench_tiles.py --write          # also docs/benchmarks/tiles.md

Each (precision, tile, overlap) upscales the same image with `Upscaler` (the weights of bench_inference.py,
random full-size RRDBNet ×4), median of `--repeat` after a warm-up, all in this process one after the
other. "vs whole" is the PSNR of the tiled output against the same precision's whole-image output: what the
tiles' seams cost. "recomputed" is the share of extra input pixels the overlapping tiles run (the overlap's
cost in work). The automatic tile (``tile="auto"``) is the `MemoryPolicy` choice for the precision.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_inference import input_image, weights_file
from PIL import Image as PILImage
from results_doc import write_results

from esrgan.inference.tiling import plan_tiles
from esrgan.inference.upscaler import Upscaler
from esrgan.precision import cpu_flags, cpu_native_bf16
from esrgan.weights import load_model

DOC_NAME = "tiles.md"


def _psnr(a: np.ndarray, b: np.ndarray) -> str:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return "∞" if mse == 0 else f"{10 * np.log10(255**2 / mse):.1f} dB"


def _recomputed(height: int, width: int, tile: int, overlap: int) -> float:
    if tile == 0 or tile >= max(height, width):
        return 0.0
    tiles = plan_tiles(height, width, tile, overlap)
    return sum(t.height * t.width for t in tiles) / (height * width) - 1


def main() -> None:
    from pathlib import Path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="320x240", help="LR WxH (default: 320x240)")
    parser.add_argument("--tiles", default="auto,128,192,0", help="tile sizes; 0 = whole image")
    parser.add_argument("--overlaps", default="8,16")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    img = np.asarray(PILImage.open(input_image(height, width)).convert("RGB"))
    model = load_model(str(weights_file()), device="cpu")
    precisions = ["fp32", "bf16"] if cpu_native_bf16() else ["fp32"]
    out_mp = height * width * 16 / 1e6
    lines = [
        f"{width}×{height} → {width * 4}×{height * 4}, RRDBNet ×4 (nf 64, nb 23), median of {args.repeat}.",
        "",
        "| precision | tile | overlap | s / output MP | recomputed | vs whole |",
        "|---|---|---:|---:|---:|---|",
    ]
    for precision in precisions:
        whole = None
        results = []
        for tile_text in args.tiles.split(","):
            tile: int | str = tile_text if tile_text == "auto" else int(tile_text)
            for overlap in [int(v) for v in args.overlaps.split(",")] if tile != 0 else [0]:
                up = Upscaler(model, tile=tile, tile_overlap=overlap, device="cpu", precision=precision)
                out = up.upscale(img)  # warm-up
                seconds = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    out = up.upscale(img)
                    seconds.append(time.perf_counter() - start)
                chosen = up.memory.first_tile(height, width) if tile == "auto" else tile
                if tile == 0:
                    whole = out
                results.append((tile, chosen, overlap, statistics.median(seconds) / out_mp, out))
                print(precision, tile, chosen, overlap, f"{results[-1][3]:.2f} s/MP", flush=True)
        for tile, chosen, overlap, s_per_mp, out in results:
            label = f"auto ({chosen})" if tile == "auto" else ("whole" if tile == 0 else str(tile))
            extra = _recomputed(height, width, int(chosen), overlap)
            fidelity = _psnr(out, whole) if whole is not None and tile != 0 else ""
            lines.append(f"| {precision} | {label} | {overlap} | {s_per_mp:.2f} | {extra:.0%} | {fidelity} |")
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    lines += ["", f"Machine: CPU flags {', '.join(isa)}, torch threads {torch.get_num_threads()}."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_results(
            Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / DOC_NAME, "bench_tiles.py", text
        )


if __name__ == "__main__":
    main()
