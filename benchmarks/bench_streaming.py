"""Streaming outputs too large for memory: wall time and peak memory of `upscale_to_png` versus in memory.

    python benchmarks/bench_streaming.py                         # 4096² → 16384², cheap stand-in model
    python benchmarks/bench_streaming.py --model esrgan_lite_psnr_x4   # a real model (name or weights file)
    python benchmarks/bench_streaming.py --sizes 1024 2048 4096 --in-memory-up-to 2048 --write
    python benchmarks/bench_streaming.py --sizes 4096 --outscale 8 --modes stream --write    # 32768² output

Each case runs in a fresh subprocess, so that its peak resident memory (VmHWM) is its own: the
process builds a synthetic ``size × size`` RGB uint8 image (smooth colour gradients plus noise, so the PNG
does not compress to nothing), loads the model, notes its resident memory ("RSS before"), then times either

- ``stream``: ``upscale_to_png(upscaler, image, out.png)`` (band by band, bounded memory), or
- ``memory``: ``write_image(out.png, upscaler.upscale_image(image))`` (the whole output in memory; only up to
  ``--in-memory-up-to``, as a 16384² output needs several GiB).

"wall" covers the model, the conversion to uint8 and the PNG encoding and write (not the image synthesis or
model loading). The default model is a stand-in (one 3×3 convolution to 48 channels and a ×4 pixel shuffle)
that costs little next to the PNG encoding, so the numbers show the streaming machinery itself; with
``--model`` the model dominates the time. Output files go to a temporary folder and are deleted.

``--outscale`` resizes the model's output to that final scale (MATLAB bicubic), band by band when streaming.
Every run also times the refusal of an impossible size: the whole ``esrgan upscale one.png --outscale 100000``
command (process start, model load, reading, the size check) in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_rss_bytes
from results_doc import write_results

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks" / "streaming.md"


def _stand_in_model() -> object:
    """A cheap ×4 'model': 3×3 conv to 3·16 channels + pixel shuffle (fixed random weights)."""
    import torch
    from torch import nn

    class StandIn(nn.Module):
        scale = 4

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3 * 16, 3, padding=1)
            self.shuffle = nn.PixelShuffle(4)
            g = torch.Generator().manual_seed(0)
            with torch.no_grad():
                self.conv.weight.normal_(0, 0.1, generator=g)
                self.conv.bias.fill_(0.0)
                self.conv.weight[:, :, 1, 1] += torch.eye(3).repeat_interleave(16, dim=0)  # ≈ nearest ×4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.shuffle(self.conv(x))

    return StandIn().eval()


def _synthetic_image(size: int) -> object:
    """Smooth colour gradients plus noise, made 256 rows at a time: float temporaries of the whole image
    (~1 GiB at 4096²) would set the case's peak memory instead of the upscaling being measured."""
    import numpy as np

    from esrgan.io.images import Image

    rng = np.random.default_rng(0)
    t = np.linspace(0, 6 * np.pi, size, dtype=np.float32)
    columns = np.cos(t[None, :, None] / 3)
    pixels = np.empty((size, size, 3), np.uint8)
    for y0 in range(0, size, 256):
        rows = t[y0 : y0 + 256, None, None]
        base = 0.5 + 0.35 * np.sin(rows + np.arange(3, dtype=np.float32)) * columns
        noisy = base + rng.normal(0, 0.03, base.shape).astype(np.float32)
        pixels[y0 : y0 + 256] = np.clip(np.rint(noisy * 255), 0, 255)
    return Image(pixels=pixels)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(args: argparse.Namespace) -> None:
    """One case in this process; prints one JSON line."""
    import torch

    from esrgan.inference.streaming import upscale_to_png
    from esrgan.inference.upscaler import Upscaler
    from esrgan.io.images import write_image

    if args.threads:
        torch.set_num_threads(args.threads)
    image = _synthetic_image(args.size)
    if args.model:
        from esrgan.weights import load_model

        model = load_model(args.model, progress=False)
    else:
        model = _stand_in_model()
    tile: int | str = args.tile if args.tile == "auto" else int(args.tile)
    upscaler = Upscaler(
        model, tile=tile, tile_overlap=args.tile_overlap, device=args.device, outscale=args.outscale
    )
    rss_before = _rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.png"
        start = time.perf_counter()
        if args.mode == "stream":
            upscale_to_png(upscaler, image, out)
        else:
            write_image(out, upscaler.upscale_image(image))
        wall = time.perf_counter() - start
        file_bytes = out.stat().st_size
    peak = peak_rss_bytes()
    height, width = upscaler.output_size(args.size, args.size)
    print(
        json.dumps(
            {
                "size": args.size,
                "output": f"{width}×{height}",
                "mode": args.mode,
                "tile": str(args.tile),
                "device": str(upscaler.device),
                "wall_s": wall,
                "rss_before_mib": rss_before / 2**20,
                "peak_rss_mib": peak / 2**20,
                "file_mib": file_bytes / 2**20,
            }
        )
    )


def run_case(args: argparse.Namespace, size: int, mode: str) -> dict[str, object]:
    command = [sys.executable, __file__, "--worker", "--size", str(size), "--mode", mode, "--tile", args.tile]
    command += ["--tile-overlap", str(args.tile_overlap), "--threads", str(args.threads)]
    if args.outscale:
        command += ["--outscale", str(args.outscale)]
    if args.model:
        command += ["--model", args.model]
    if args.device:
        command += ["--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"case {size} {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_refusal() -> float:
    """Seconds for the whole `esrgan upscale one.png --outscale 100000` command to refuse the output size."""
    import numpy as np
    from PIL import Image as PILImage

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "one.png"
        PILImage.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(src)
        command = [sys.executable, "-m", "esrgan", "upscale", str(src), "-o", str(Path(tmp) / "out"), "-q"]
        start = time.perf_counter()
        done = subprocess.run([*command, "--outscale", "100000"], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 2 or "lower --outscale" not in done.stderr:  # EXIT_ERROR, before any work
        raise SystemExit(f"the impossible size was not refused:\n{done.stderr}")
    return seconds


def table(rows: list[dict[str, object]], model: str) -> str:
    lines = [
        f"Model: {model}.",
        "",
        "| input | output | mode | tile | device | wall (s) | RSS before (MiB) | peak RSS (MiB) "
        "| PNG (MiB) |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']}² | {r['output']} | {r['mode']} | {r['tile']} | {r['device']} "
            f"| {r['wall_s']:.2f} | {r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} "
            f"| {r['file_mib']:.0f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    import numpy
    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores visible; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, torch {torch.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096], help="input sides (default: 4096)")
    parser.add_argument("--modes", nargs="+", choices=["stream", "memory"], default=["stream", "memory"])
    parser.add_argument(
        "--in-memory-up-to", type=int, default=2048, help="largest input side for the in-memory mode"
    )
    parser.add_argument("--model", help="bundled/zoo model name or weights file (default: cheap stand-in)")
    parser.add_argument("--tile", default="auto", help="input tile size or 'auto' (default)")
    parser.add_argument("--tile-overlap", type=int, default=16)
    parser.add_argument("--device", help="default: CUDA if available, else CPU")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--outscale", type=float, default=None, help="final scale (default: the model's)")
    parser.add_argument("--write", action="store_true", help=f"also write the table into {DOC.name}")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["stream", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rows = []
    for size in args.sizes:
        for mode in args.modes:
            if mode == "memory" and size > args.in_memory_up_to:
                continue
            rows.append(run_case(args, size, mode))
            print(f"done: {size}² {mode}", file=sys.stderr, flush=True)
    text = table(rows, args.model or "stand-in (3×3 conv + pixel shuffle ×4)")
    if args.outscale:
        text += f"\n\nFinal scale (--outscale): {args.outscale:g}, resized band by band when streamed."
    text += (
        "\n\nRefusing an impossible size (`esrgan upscale one.png --outscale 100000`, the whole command "
        f"in a new process): {time_refusal():.2f} s."
    )
    text += f"\n\nMachine: {machine()}."
    print(text)
    if args.write:
        write_results(DOC, "bench_streaming.py", text)


if __name__ == "__main__":
    main()
