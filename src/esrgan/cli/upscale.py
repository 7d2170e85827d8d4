"""`esrgan upscale`: images, folders and globs into an output folder."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from esrgan.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    positive_float,
    tile_arg,
)
from esrgan.errors import EsrganError

# --------------------------------------------------------------------------------------------------
# upscale


_UPSCALE_EPILOG = """\
many files, many processes:
  Reading and writing run in background threads while the model computes.
  Each output is recorded in OUTPUT_DIR/.esrgan-manifest/ with the model that
  made it; rerunning the same command skips what is done, so a killed run
  continues where it stopped.

  Split a folder over processes (one per GPU, or CPU processes), all writing
  into one output folder:
    torchrun --nproc-per-node 2 -m esrgan upscale IN_DIR -o OUT_DIR
  Over machines that share the folders: torchrun --nnodes M --node-rank K
  --master-addr HOST ... the same; or, without torchrun, run
    esrgan upscale IN_DIR -o OUT_DIR --shard I/N
  for I = 0 .. N-1, wherever you like.
"""


def _shard_arg(text: str) -> object:
    from esrgan.jobs.plan import Shard

    try:
        return Shard.parse(text)
    except EsrganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images and videos with an ESRGAN-family model",
        description="Upscale images and videos (files, folders, globs) to OUTPUT_DIR/{name}_{suffix}.{ext}",
        epilog=_UPSCALE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", help="image or video files, folders or glob patterns")
    p.add_argument("-o", "--output", default="results", help="output folder (default: %(default)s)")
    p.add_argument(
        "-m",
        "--model",
        default=None,
        help="model name from `esrgan models` or a weights file (.pth/.safetensors), or an .onnx file "
        "(from `esrgan export onnx`); default: the bundled model",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default=None,
        help="torch, or onnxruntime on the CPU (a weights file is exported to ONNX once and cached under "
        "~/.cache/esrgan/onnx, keyed by its SHA-256; an .onnx model, e.g. an int8 one, is run as it is). "
        "Default: onnxruntime for an .onnx model, else torch",
    )
    p.add_argument("--model-b", default=None, help="second model for network interpolation with --alpha")
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="network interpolation weight of --model-b: theta = (1-alpha)*A + alpha*B",
    )
    p.add_argument(
        "-s",
        "--outscale",
        type=positive_float,
        default=None,
        help="final scale (any number; resized after the network). Default: the model's scale",
    )
    p.add_argument(
        "-t",
        "--tile",
        type=tile_arg,
        default="auto",
        help="tile size in input pixels; 0 = whole image; 'auto' = from available memory (default)",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=8,
        help="overlap between tiles in input pixels; tiles must be larger than 3x the overlap (default: 8)",
    )
    p.add_argument("--suffix", default="out", help="output name suffix (default: %(default)s)")
    p.add_argument("--ext", default=None, help="output format: png, jpg, webp, tif (default: same as input)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--half", action="store_true", help="fp16 inference on CUDA (= --precision fp16)")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "fp16", "bf16"],
        default=None,
        help="auto (default): fp16 on CUDA, bf16 on CPUs with native bf16 (AMX, AVX512-BF16), else fp32; "
        "a tile whose half-precision output is NaN or black is redone in fp32 and the job continues in fp32. "
        "fp32 gives the reference pixels (within 1 level of the original ESRGAN code)",
    )
    p.add_argument(
        "--tile-batch",
        type=int,
        default=1,
        metavar="N",
        help="run up to N tiles through the model at once (GPUs; default: 1)",
    )
    p.add_argument(
        "--alpha-upsampler",
        choices=["model", "bicubic"],
        default="model",
        help="how the alpha channel is upscaled (default: %(default)s)",
    )
    p.add_argument(
        "--back-projection",
        type=int,
        default=0,
        metavar="N",
        help="N iterations of back-projection post-processing (ESRGAN PIRM submission used 20)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files, except those the manifest shows were made by the same model "
        "and settings (--no-manifest to redo those too)",
    )
    p.add_argument(
        "--shard",
        type=_shard_arg,
        default=None,
        metavar="I/N",
        help="upscale only inputs I, I+N, I+2N, ... (from 0); default: from torchrun's RANK/WORLD_SIZE, "
        "else all",
    )
    p.add_argument(
        "--no-manifest",
        action="store_true",
        help="neither read nor write OUTPUT_DIR/.esrgan-manifest (no resume, no record of the model)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    v = p.add_argument_group(
        "videos (.mp4 .mkv .mov .webm .avi; needs the extra: pip install 'esrgan[video]')",
        "Every frame is upscaled; timestamps, audio, subtitles, rotation and colour tags are kept. A killed "
        "job resumes from its last finished segment.",
    )
    v.add_argument("--codec", default=None, help="video encoder (default: libx264; libvpx-vp9 for .webm)")
    v.add_argument(
        "--crf", type=float, default=None, help="constant quality (default: 18 for libx264, 24 for VP9)"
    )
    v.add_argument("--bitrate", default=None, help="target bitrate instead of --crf, e.g. 8M or 2500k")
    v.add_argument("--preset", default=None, help="encoder speed preset (default: medium for x264/x265)")
    v.add_argument(
        "--pix-fmt",
        default=None,
        help="output pixel format (default: yuv420p; yuv420p10le for 10-bit sources where the codec has it)",
    )
    v.add_argument(
        "--segment-seconds",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="resume and split the work in keyframe-aligned segments of at least S seconds (default: 10)",
    )
    p.set_defaults(run=_run_upscale)


def _bitrate(text: str | None) -> int | None:
    """``8M``, ``2500k`` or ``800000`` → bits per second."""
    if text is None:
        return None
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    try:
        value = float(text[:-1] if factor > 1 else text) * factor
    except ValueError:
        value = -1
    if not value > 0:
        raise EsrganError(f"--bitrate {text!r}: give bits per second, e.g. 8M, 2500k or 800000")
    return int(value)


def _naming(path: Path, message: str) -> str:
    """`message`, prefixed with `path` unless it already names it (no path twice in one line)."""
    return message if str(path) in message else f"{path}: {message}"


def _run_upscale(args: argparse.Namespace) -> int:

    from esrgan.jobs.plan import check_outscale, collect_inputs, shard_device, shard_from_env

    if (args.model_b is None) != (args.alpha is None):
        raise EsrganError("--model-b and --alpha go together: both for network interpolation, or neither")
    shard = args.shard if args.shard is not None else shard_from_env()
    # torchrun's workers share one terminal: progress bars from the first worker of each machine only
    bars = not args.quiet and (args.shard is not None or os.environ.get("LOCAL_RANK", "0") == "0")
    inputs = collect_inputs(args.inputs)
    if args.outscale is not None:  # from the image headers, before torch is imported or a model loaded
        check_outscale(
            inputs,
            Path(args.output),
            args.outscale,
            suffix=args.suffix,
            ext=args.ext,
            streamable=args.back_projection == 0,
        )

    from esrgan.inference.onnx import choose_backend, load_backend_model
    from esrgan.inference.upscaler import Upscaler
    from esrgan.io.video import VideoEncoding, is_video_name
    from esrgan.jobs.manifest import recipe_for
    from esrgan.jobs.upscale import UpscaleSummary, upscale_files
    from esrgan.jobs.video import upscale_videos
    from esrgan.weights import interpolate_models, load_model

    backend = choose_backend(args.model, args.backend)
    if args.half and args.precision not in (None, "fp16"):
        raise EsrganError(f"--half means --precision fp16; it cannot go with --precision {args.precision}")
    half_precision = args.half or args.precision in ("fp16", "bf16")  # asked for explicitly
    if backend == "onnxruntime" and (args.model_b is not None or half_precision):
        raise EsrganError(
            "--model-b/--alpha and --half/--precision need --backend torch (for a blend with onnxruntime: "
            "save it with "
            "`esrgan interpolate`, then export it with `esrgan export onnx`)"
        )
    if backend == "onnxruntime" and args.device is None:
        args.device = "cpu"  # onnxruntime computes on the CPU: keep the tensors there
    model = load_backend_model(args.model, backend)
    if args.model_b is not None:
        model = interpolate_models(model, load_model(args.model_b, device="cpu"), args.alpha)
    upscaler = Upscaler(
        model,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        device=args.device if args.device is not None else shard_device(),
        half=args.half,
        precision=args.precision,
        tile_batch=args.tile_batch,
        alpha_upsampler=args.alpha_upsampler,
        outscale=args.outscale,
        back_projection=args.back_projection,
        progress=bars,
    )
    recipe = None
    if not args.no_manifest:
        # onnxruntime: the recipe names the .onnx file actually run (its pixels differ slightly from torch's)
        recipe_model = model.path if backend == "onnxruntime" else args.model  # type: ignore[union-attr]
        recipe = recipe_for(upscaler, recipe_model, model_b=args.model_b, interpolation_alpha=args.alpha)
    videos = [p for p in inputs if is_video_name(p)]
    images = [p for p in inputs if not is_video_name(p)]
    job = dict(
        suffix=args.suffix, ext=args.ext, overwrite=args.overwrite, progress=bars, shard=shard, recipe=recipe
    )
    summary = upscale_files(upscaler, images, Path(args.output), **job) if images else UpscaleSummary()
    if videos:
        encoding = VideoEncoding(
            codec=args.codec,
            crf=args.crf,
            bitrate=_bitrate(args.bitrate),
            preset=args.preset,
            pix_fmt=args.pix_fmt,
        )
        done = upscale_videos(
            upscaler,
            videos,
            Path(args.output),
            encoding=encoding,
            segment_seconds=args.segment_seconds,
            **job,
        )
        for name in ("done", "skipped", "failed", "earlier"):
            getattr(summary, name).extend(getattr(done, name))
    tag = f"[shard {shard}] " if shard is not None else ""
    for path, reason in summary.skipped:
        print(f"{tag}skipped {_naming(path, reason)}", file=sys.stderr)
    for path, message in summary.failed:
        print(f"{tag}failed  {_naming(path, message)}", file=sys.stderr)
    earlier = f"{len(summary.earlier)} done earlier, " if recipe is not None else ""
    print(
        f"{tag}{len(summary.done)} upscaled, {earlier}{len(summary.skipped)} skipped, "
        f"{len(summary.failed)} failed -> {args.output}"
    )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    _add_upscale(sub)
