"""Video upscaling: end-to-end frames per second against the model alone on the same frames.

    python benchmarks/bench_video.py                       # bundled default model, 64 frames of 240×136
    python benchmarks/bench_video.py --frames 128 --size 320x180 --model esrgan_lite_psnr_x4 --write

A synthetic H.264 video (moving gradients and noise, an AAC track) is made once. Then, in this process:

- ``decode``: decoding and converting every frame to RGB (`esrgan.io.video.decode_segment`) alone;
- ``model``: `Upscaler.upscale` on those decoded frames, already in memory (the rate the model allows);
- ``encode``: encoding the upscaled frames (H.264 CRF 18, as the job does) alone;
- ``end to end``: the whole `upscale_videos` job on the file (probe, segments, the decode → model → encode
  pipeline, joining the parts with the audio, the manifest).

The end-to-end rate over the model-only rate shows the pipeline's cost: decoding and encoding run in their
own threads, so they should overlap the model rather than add to it. `--write` puts the table into
docs/video.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from results_doc import write_results

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "video.md"


def make_video(path: Path, frames: int, width: int, height: int) -> None:
    import av

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25, options={"crf": "18", "g": "25"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for i in range(frames):
            phase = ((y - 2 * i) / 23.0)[..., None] + np.arange(3)
            base = 128 + 90 * np.sin((x + 3 * i) / 17.0)[..., None] * np.cos(phase)
            rgb = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = 0
        while samples < frames * 48000 // 25:
            wave = (0.1 * np.sin(np.arange(samples, samples + 1024) / 9.0)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
            chunk.sample_rate, chunk.pts = 48000, samples
            samples += 1024
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))


def measure(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from esrgan._fs import atomic_writer
    from esrgan.inference.upscaler import Upscaler
    from esrgan.io.video import PartEncoder, VideoEncoding, decode_segment, plan_segments, probe_video
    from esrgan.jobs.video import upscale_videos
    from esrgan.weights import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        make_video(src, args.frames, width, height)
        upscaler = Upscaler(load_model(args.model, progress=False), precision=args.precision)
        info = probe_video(src)
        whole = plan_segments(info, 1e9)[0]

        start = time.perf_counter()
        frames = list(decode_segment(info, whole))
        decode = time.perf_counter() - start

        upscaler.upscale(frames[0][1])  # warm-up (first-call allocations, precision check)
        start = time.perf_counter()
        upscaled = [(pts, upscaler.upscale(rgb)) for pts, rgb in frames]
        model = time.perf_counter() - start

        encoding = VideoEncoding().resolved(info, ".mp4")
        out_h, out_w = upscaled[0][1].shape[:2]
        start = time.perf_counter()
        with (
            atomic_writer(Path(tmp) / "part.bin", overwrite=True) as f,
            PartEncoder(f, info, encoding, out_w, out_h) as encoder,
        ):
            for pts, rgb in upscaled:
                encoder.encode(pts, rgb)
        encode = time.perf_counter() - start
        del upscaled

        start = time.perf_counter()
        summary = upscale_videos(upscaler, [src], Path(tmp) / "out", progress=False)
        end_to_end = time.perf_counter() - start
        if not summary.done:
            raise SystemExit(f"the video job failed: {summary.failed}")
    n = len(frames)
    return {
        "frames": n,
        "input": f"{width}×{height}",
        "output": f"{out_w}×{out_h}",
        "precision": str(upscaler.precision),
        "decode_fps": n / decode,
        "model_fps": n / model,
        "encode_fps": n / encode,
        "end_to_end_fps": n / end_to_end,
    }


def table(r: dict[str, float], model: str) -> str:
    ratio = r["end_to_end_fps"] / r["model_fps"]
    return "\n".join(
        [
            f"Model: {model} ({r['precision']}), {r['frames']} frames, {r['input']} → {r['output']}.",
            "",
            "| stage | frames/s |",
            "|---|---:|",
            f"| decode + RGB conversion alone | {r['decode_fps']:.1f} |",
            f"| model alone (frames in memory) | {r['model_fps']:.2f} |",
            f"| encode alone (H.264 CRF 18) | {r['encode_fps']:.1f} |",
            f"| **end to end** (`upscale_videos`) | **{r['end_to_end_fps']:.2f}** |",
            "",
            f"End to end runs at {ratio:.0%} of the model-only rate.",
        ]
    )


def machine() -> str:
    import av
    import torch

    from esrgan.precision import cpu_flags

    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    return (
        f"{platform.machine()}, CPU flags {', '.join(isa) or 'unknown'}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="esrgan_lite_psnr_x4", help="model name or weights file")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", default="240x136", help="input WxH (default: 240x136)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--write", action="store_true", help=f"also write the table into {DOC.name}")
    args = parser.parse_args()
    text = table(measure(args), args.model) + f"\n\nMachine: {machine()}."
    print(text)
    if args.write:
        write_results(DOC, "bench_video.py", text)
    sys.exit(0)


if __name__ == "__main__":
    main()
