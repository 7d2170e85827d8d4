"""Command line: `esrgan SUBCOMMAND ...`.

Only argument parsing and printing live here; every subcommand calls library functions that are also
reachable from Python. Expected failures (`EsrganError`) are printed as one clear line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from esrgan.errors import EsrganError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2


def _tile_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("tile size must be >= 0 (0 = whole image)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _named_path(text: str) -> tuple[str, str]:
    """`NAME=PATH` → (NAME, PATH); a bare PATH is named after its last component."""
    name, sep, path = text.partition("=")
    if not sep:
        path = text
        name = Path(text.rstrip("/")).stem or text
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


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
    from esrgan.inference.files import Shard

    try:
        return Shard.parse(text)
    except EsrganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images with an ESRGAN-family model",
        description="Upscale image files, folders or globs into OUTPUT_DIR as {name}_{suffix}.{ext}.",
        epilog=_UPSCALE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
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
        type=_positive_float,
        default=None,
        help="final scale (any number; resized after the network). Default: the model's scale",
    )
    p.add_argument(
        "-t",
        "--tile",
        type=_tile_arg,
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
    p.set_defaults(run=_run_upscale)


def _naming(path: Path, message: str) -> str:
    """`message`, prefixed with `path` unless it already names it (no path twice in one line)."""
    return message if str(path) in message else f"{path}: {message}"


def _run_upscale(args: argparse.Namespace) -> int:
    import os

    from esrgan.inference.files import collect_inputs, shard_device, shard_from_env, upscale_files
    from esrgan.inference.manifest import recipe_for
    from esrgan.inference.onnx_backend import choose_backend, load_backend_model
    from esrgan.inference.upscaler import Upscaler
    from esrgan.weights import interpolate_models, load_model

    if (args.model_b is None) != (args.alpha is None):
        raise EsrganError("--model-b and --alpha go together: both for network interpolation, or neither")
    shard = args.shard if args.shard is not None else shard_from_env()
    # torchrun's workers share one terminal: progress bars from the first worker of each machine only
    bars = not args.quiet and (args.shard is not None or os.environ.get("LOCAL_RANK", "0") == "0")
    inputs = collect_inputs(args.inputs)
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
        alpha=args.alpha_upsampler,
        outscale=args.outscale,
        back_projection=args.back_projection,
        progress=bars,
    )
    recipe = None
    if not args.no_manifest:
        # onnxruntime: the recipe names the .onnx file actually run (its pixels differ slightly from torch's)
        recipe_model = model.path if backend == "onnxruntime" else args.model  # type: ignore[union-attr]
        recipe = recipe_for(upscaler, recipe_model, model_b=args.model_b, interpolation_alpha=args.alpha)
    summary = upscale_files(
        upscaler,
        inputs,
        Path(args.output),
        suffix=args.suffix,
        ext=args.ext,
        overwrite=args.overwrite,
        progress=bars,
        shard=shard,
        recipe=recipe,
    )
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


# --------------------------------------------------------------------------------------------------
# models / inspect / convert


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the named models (downloaded on first use)")
    p.set_defaults(run=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from esrgan.weights import DEFAULT_MODEL, bundled_models
    from esrgan.weights.zoo import MODEL_ZOO, cached_path

    for name, path in bundled_models().items():
        default = ", the default" if name == DEFAULT_MODEL else ""
        print(f"{name:24s} trained by this project, see docs/models.md  [bundled{default}: {path}]")
    for name, entry in MODEL_ZOO.items():
        where = cached_path(name)  # None until downloaded
        state = f"cached at {where}" if where is not None else "not downloaded"
        print(f"{name:24s} {entry.description}  [{state}]")
    return EXIT_OK


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show the architecture and hyperparameters of a weights file")
    p.add_argument("file", help="weights file (.pth, .pt, .safetensors)")
    p.set_defaults(run=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    from esrgan.weights import inspect_weights

    info = inspect_weights(args.file)
    print(f"file:         {info.path}")
    print(f"architecture: {info.arch}")
    print(f"scale:        x{info.scale}")
    print(f"parameters:   {info.num_params:,}")
    print(f"key layout:   {info.layout}")
    print(f"container:    {info.container}")
    for key, value in info.hparams.items():
        print(f"  {key} = {value}")
    if info.nonfinite:
        print(f"NOT USABLE:   {len(info.nonfinite)} tensor(s) hold NaN or Inf (loading refuses this file)")
        for key, what in info.nonfinite.items():
            print(f"  {key}: {what}")
        return EXIT_ERROR
    return EXIT_OK


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a weights file between key layouts and formats",
        description="The output format follows OUT's extension (.safetensors or .pth).",
    )
    p.add_argument("src", help="input weights file")
    p.add_argument("dst", help="output weights file (.safetensors or .pth)")
    p.add_argument(
        "--layout",
        default=None,
        help="key names (each architecture lists its own; `esrgan inspect` shows a file's): basicsr "
        "(BasicSR/Real-ESRGAN), esrgan (ESRGAN repo), old (2018 model.N) for RRDBNet; basicsr or basicsr2019 "
        "for MSRResNet; native for SRResNet; realesrgan for SRVGGNetCompact. Default: ours for .safetensors, "
        "the input's layout for .pth",
    )
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    p.set_defaults(run=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from esrgan.weights import convert_weights

    convert_weights(args.src, args.dst, layout=args.layout, overwrite=args.overwrite)
    print(f"wrote {args.dst}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# benchmark / evaluate


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="PSNR/SSIM (Y), NIQE and timing of models and baselines on benchmark sets",
        description="Score models and baselines on benchmark sets with the protocol of the published "
        "tables: HR mod-cropped to the scale, LR by MATLAB bicubic imresize (or read from LR_DIR), "
        "PSNR/SSIM on MATLAB BT.601 Y (rounded to uint8), `scale` border pixels removed, NIQE of the SR. "
        "Writes results.md, results.csv and results.json to --output.",
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        type=_named_path,
        metavar="[NAME=]MODEL",
        help="a model name from `esrgan models`, a weights file, or a baseline: bicubic, nearest, hr "
        "(the HR image itself). Repeat for several. Unless a baseline is given, bicubic is added as the "
        "reference row",
    )
    p.add_argument(
        "-d",
        "--data",
        action="append",
        required=True,
        type=_named_path,
        metavar="[NAME=]HR_DIR[:LR_DIR]",
        help="benchmark set: a folder of HR images, optionally with a folder of ready-made LR images "
        "(matched by name: baby.png, babyx4.png, baby_LR.png); repeat for several",
    )
    p.add_argument(
        "--scale", type=int, default=None, help="SR factor (default: the models' scale; 4 for baselines only)"
    )
    p.add_argument(
        "--crop-border", type=int, default=None, help="pixels removed at each border (default: the scale)"
    )
    p.add_argument(
        "--float-y",
        action="store_true",
        help="unrounded Y (BasicSR's convention) instead of MATLAB's uint8 Y for PSNR/SSIM",
    )
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE (the slowest metric)")
    p.add_argument(
        "--gray",
        choices=["replicate", "keep"],
        default="replicate",
        help="gray images: replicate to RGB (BasicSR, default) or keep gray and score the gray plane "
        "(MATLAB scripts; the published Set14 numbers)",
    )
    p.add_argument(
        "--back-projection",
        type=int,
        default=0,
        metavar="N",
        help="also score every method after N iterations of back-projection (rows named METHOD+BP<N>)",
    )
    p.add_argument(
        "--bp-variant",
        choices=["reverse_filter", "ibp"],
        default="reverse_filter",
        help="back-projection variant: MATLAB main_reverse_filter.m (ESRGAN PIRM; default) or "
        "backprojection.m (classic IBP)",
    )
    p.add_argument(
        "-t", "--tile", type=_tile_arg, default=0, help="tile size for the models (default 0: whole image)"
    )
    p.add_argument("--tile-overlap", type=int, default=16, help="tile overlap in input pixels (default: 16)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--half", action="store_true", help="fp16 inference on CUDA")
    p.add_argument(
        "--precision",
        choices=["fp32", "auto", "bf16", "fp16"],
        default="fp32",
        help="the models' precision (default fp32: tables reproducible on any machine; recorded in the "
        "results JSON)",
    )
    p.add_argument(
        "-o", "--output", default="benchmark", help="folder for the result tables (default: %(default)s)"
    )
    p.add_argument(
        "--save-images",
        action="store_true",
        help="also save every SR image as OUTPUT/images/<set>/<method>/<name>.png",
    )
    p.add_argument(
        "--report", default=None, metavar="DIR", help="write an HTML page with side-by-side zoomed crops"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_benchmark)


def _split_data_arg(name: str, value: str) -> tuple[str, str | None]:
    """``HR_DIR[:LR_DIR]`` → (HR_DIR, LR_DIR or None)."""
    hr, sep, lr = value.partition(":")
    if not hr or (sep and not lr):
        raise EsrganError(f"--data {name}={value}: expected HR_DIR or HR_DIR:LR_DIR")
    return hr, (lr if sep else None)


def _benchmark_methods(named: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """``--model`` values → ({name: model source}, baselines); bicubic is added if no baseline was named."""
    from esrgan.eval.benchmark import BASELINES

    models: dict[str, str] = {}
    baselines: list[str] = []
    for name, source in named:
        if source in BASELINES:
            if name != source:
                raise EsrganError(f"--model {name}={source}: baselines keep their name; use --model {source}")
            if source not in baselines:
                baselines.append(source)
            continue
        if name in models or name in BASELINES:
            raise EsrganError(f"--model: the name {name!r} is used twice; name the models NAME=MODEL")
        models[name] = source
    return models, baselines or ["bicubic"]


def _run_benchmark(args: argparse.Namespace) -> int:
    from esrgan.eval import BenchmarkSettings, run_benchmark, write_html_report, write_tables
    from esrgan.eval.report import check_report_writable
    from esrgan.eval.tables import check_tables_writable, summary_markdown

    datasets: dict[str, tuple[str, str | None]] = {}
    for name, value in args.data:
        if name in datasets:
            raise EsrganError(f"--data: the set name {name!r} is used twice; name the sets NAME=HR_DIR")
        datasets[name] = _split_data_arg(name, value)
    models, baselines = _benchmark_methods(args.model)
    output = Path(args.output)
    # Refuse before the (long) run, not after it.
    check_tables_writable(output, overwrite=args.overwrite)
    if args.report:
        check_report_writable(Path(args.report), overwrite=args.overwrite)
    settings = BenchmarkSettings(
        scale=args.scale,
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        niqe=not args.no_niqe,
        back_projection=args.back_projection,
        back_projection_variant=args.bp_variant,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        device=args.device,
        half=args.half,
        precision=args.precision,
        save_images_dir=output / "images" if args.save_images else None,
        overwrite=args.overwrite,
        progress=not args.quiet,
        comparisons=bool(args.report),
        gray_mode=args.gray,
    )
    result = run_benchmark(datasets, models=models, baselines=baselines, settings=settings)
    print(summary_markdown(result))
    for path in write_tables(result, output, overwrite=args.overwrite):
        print(f"wrote {path}")
    if args.save_images:
        print(f"wrote SR images under {output / 'images'}")
    if args.report:
        print(f"wrote {write_html_report(result, Path(args.report), overwrite=args.overwrite)}")
    return EXIT_OK


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="PSNR/SSIM (Y), NIQE and PIRM RMSE of SR images computed elsewhere",
        description="Score every image of SR_DIR against the HR image of the same name in HR_DIR "
        "(baby_out.png, baby_rlt.png or babyx4.png pair with baby.png); every HR image needs one SR image.",
    )
    p.add_argument("sr_dir", help="folder of super-resolved images")
    p.add_argument("hr_dir", help="folder of ground-truth images")
    p.add_argument("--crop-border", type=int, default=4, help="pixels removed at each border (default: 4)")
    p.add_argument("--float-y", action="store_true", help="unrounded Y (BasicSR's convention)")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE")
    p.add_argument(
        "--modcrop", action="store_true", help="crop an HR larger than its SR (by a mod-crop) to the SR size"
    )
    p.add_argument(
        "--gray",
        choices=["replicate", "keep"],
        default="replicate",
        help="gray HR images: replicate to RGB (default) or keep gray (MATLAB scripts)",
    )
    p.add_argument("--name", default=None, help="method name in the tables (default: SR_DIR's name)")
    p.add_argument("--dataset", default=None, help="set name in the tables (default: HR_DIR's name)")
    p.add_argument(
        "-o", "--output", default=None, help="folder for results.md/.csv/.json (default: print only)"
    )
    p.add_argument(
        "--report", default=None, metavar="DIR", help="write an HTML page with side-by-side zoomed crops"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from esrgan.eval import evaluate_folders, write_html_report, write_tables
    from esrgan.eval.report import check_report_writable
    from esrgan.eval.tables import check_tables_writable, summary_markdown

    if args.output:
        check_tables_writable(Path(args.output), overwrite=args.overwrite)
    if args.report:
        check_report_writable(Path(args.report), overwrite=args.overwrite)
    result = evaluate_folders(
        Path(args.sr_dir),
        Path(args.hr_dir),
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        niqe=not args.no_niqe,
        modcrop=args.modcrop,
        dataset=args.dataset,
        method=args.name,
        progress=not args.quiet,
        comparisons=bool(args.report),
        gray_mode=args.gray,
    )
    print(summary_markdown(result))
    summary = result.summaries()[0]
    print(f"PIRM RMSE (rounded Y, sqrt of the mean MSE): {summary.rmse:.4f}")
    if args.output:
        for path in write_tables(result, Path(args.output), overwrite=args.overwrite):
            print(f"wrote {path}")
    if args.report:
        print(f"wrote {write_html_report(result, Path(args.report), overwrite=args.overwrite)}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# prepare


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="cut training images into sub-images (BasicSR extract_subimages), optionally with bicubic LR",
        description="Cut every image in SRC into CROP_SIZE sub-images with a sliding window (positions 0, "
        "STEP, ... plus one flush with the far edge when more than THRESH_SIZE pixels are left) and write "
        "them to DST as {name}_s{idx:03d}.png. With --scale and --lr-dst, also write MATLAB-bicubic LR "
        "sub-images with the same names.",
    )
    p.add_argument("src", help="folder of training images (e.g. DIV2K_train_HR)")
    p.add_argument("dst", help="output folder for the sub-images")
    p.add_argument("--crop-size", type=int, default=480, help="sub-image size (default: %(default)s)")
    p.add_argument("--step", type=int, default=240, help="sliding-window step (default: %(default)s)")
    p.add_argument(
        "--thresh-size",
        type=int,
        default=0,
        help="add a window flush with the edge if more pixels than this are left (default: %(default)s)",
    )
    p.add_argument("--scale", type=int, default=None, help="also write LR sub-images downscaled by N")
    p.add_argument("--lr-dst", default=None, metavar="DIR", help="output folder for the LR sub-images")
    p.add_argument("--compression", type=int, default=3, help="PNG compression 0-9 (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing sub-images")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from esrgan.data.prepare import extract_subimages

    summary = extract_subimages(
        args.src,
        args.dst,
        crop_size=args.crop_size,
        step=args.step,
        thresh_size=args.thresh_size,
        scale=args.scale,
        lr_dst_dir=args.lr_dst,
        compression_level=args.compression,
        overwrite=args.overwrite,
        num_workers=args.workers,
        progress=not args.quiet,
    )
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, message in summary.failed:
        print(f"failed  {path}: {message}", file=sys.stderr)
    lr = f", {summary.lr_subimages} LR sub-images -> {args.lr_dst}" if args.lr_dst else ""
    print(
        f"{summary.images} images -> {summary.subimages} sub-images in {args.dst}{lr}; "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed"
    )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


# --------------------------------------------------------------------------------------------------
# train, interpolate, interpolate-images


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train ESRGAN / SRGAN / SRResNet from a YAML config (resumes automatically)",
        description="Train per CONFIG with dotted KEY=VALUE overrides (e.g. optim.lr_g=1e-4 "
        "train.total_iters=5000). A run folder that already holds checkpoints is resumed from the latest "
        "one. For several processes: torchrun --nproc-per-node N -m esrgan train CONFIG ...",
    )
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. data.batch_size=8")
    p.add_argument("--run-dir", default=None, help="run folder (default: runs/NAME from the config)")
    p.add_argument("--no-resume", action="store_true", help="start over; earlier checkpoints are moved aside")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from esrgan.config import load_config
    from esrgan.train.loop import TRAIN_LOGGER, train

    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise EsrganError(f"overrides must be KEY=VALUE, got {' '.join(bad)} (for example optim.lr_g=1e-4)")
    cfg = load_config(args.config, args.overrides)
    progress = logging.getLogger(TRAIN_LOGGER)  # progress lines go to stdout, not through the root logger
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    progress.addHandler(handler)
    progress.propagate = False
    progress.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        result = train(cfg, args.run_dir, resume=not args.no_resume)
    finally:
        progress.removeHandler(handler)
        progress.propagate = True
        progress.setLevel(logging.NOTSET)
    if result.rank == 0:
        print(f"generator: {result.model_path}")
    return EXIT_OK


def _add_interpolate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate",
        help="network interpolation: blend the weights of a PSNR and a GAN model",
        description="theta = (1 - alpha) * PSNR_MODEL + alpha * GAN_MODEL, parameter by parameter "
        "(ESRGAN §3.4). Both must share architecture and hyperparameters. Writes self-describing "
        "safetensors.",
    )
    p.add_argument("psnr_model", help="model A (alpha = 0), e.g. the PSNR-oriented model")
    p.add_argument("gan_model", help="model B (alpha = 1), e.g. the ESRGAN model fine-tuned from A")
    p.add_argument("--alpha", type=float, required=True, help="weight of GAN_MODEL in [0, 1] (ESRGAN: 0.8)")
    p.add_argument("-o", "--output", required=True, help="output .safetensors file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(run=_run_interpolate)


def _run_interpolate(args: argparse.Namespace) -> int:
    from esrgan.weights import interpolate_models, save_model

    model = interpolate_models(args.psnr_model, args.gan_model, args.alpha)
    metadata = {"esrgan.interpolation": {"a": args.psnr_model, "b": args.gan_model, "alpha": args.alpha}}
    path = save_model(model, args.output, metadata=metadata, overwrite=args.overwrite)
    print(f"wrote {path}")
    return EXIT_OK


def _add_interpolate_images(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate-images",
        help="image interpolation: blend same-named images of two folders pixel by pixel",
        description="OUT = (1 - alpha) * A + alpha * B for every image of A_DIR and the file of the same "
        "name in B_DIR (the baseline ESRGAN compares network interpolation with).",
    )
    p.add_argument("a_dir", help="folder A (alpha = 0), e.g. outputs of the PSNR model")
    p.add_argument("b_dir", help="folder B (alpha = 1), e.g. outputs of the GAN model")
    p.add_argument("--alpha", type=float, required=True, help="weight of B in [0, 1]")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(run=_run_interpolate_images)


def _run_interpolate_images(args: argparse.Namespace) -> int:
    from esrgan.ops.interpolation import interpolate_image_folders

    summary = interpolate_image_folders(
        args.a_dir, args.b_dir, args.alpha, args.output, overwrite=args.overwrite
    )
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{len(summary.written)} images written to {args.output}, {len(summary.skipped)} skipped")
    return EXIT_SOME_FAILED if summary.skipped else EXIT_OK


# --------------------------------------------------------------------------------------------------
# sweep (network vs image interpolation study)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="interpolation study: network vs image interpolation between a PSNR and a GAN model",
        description="For every alpha, score network interpolation (blended weights) and image "
        "interpolation (blended outputs) between PSNR_MODEL (alpha = 0) and GAN_MODEL (alpha = 1) on "
        "benchmark sets (PSNR/SSIM on Y, NIQE), as in the ESRGAN paper. Writes sweep.md/.csv/.json, "
        "perception_distortion.png and crops.png to --output. See docs/interpolation.md.",
    )
    p.add_argument("psnr_model", help="model at alpha = 0 (PSNR-oriented): weights file or model name")
    p.add_argument("gan_model", help="model at alpha = 1 (GAN, fine-tuned from PSNR_MODEL)")
    p.add_argument(
        "-d",
        "--data",
        action="append",
        required=True,
        type=_named_path,
        metavar="[NAME=]HR_DIR[:LR_DIR]",
        help="benchmark set: a folder of HR images, optionally with ready-made LR images; repeat for several",
    )
    p.add_argument(
        "--alphas",
        default="0,0.2,0.4,0.6,0.8,1",
        help="comma-separated weights of GAN_MODEL in [0, 1] (default: %(default)s)",
    )
    p.add_argument(
        "--crop-image",
        default=None,
        metavar="[SET/]NAME",
        help="image of the crop grid, by file name without extension (default: baboon if a set has it, "
        "else the first image)",
    )
    p.add_argument(
        "--crop-box",
        default=None,
        metavar="X,Y,W,H",
        help="window of the crop grid in HR pixels (default: up to 128x128 where the results differ most)",
    )
    p.add_argument(
        "--crop-border", type=int, default=None, help="pixels removed at each border (default: the scale)"
    )
    p.add_argument("--float-y", action="store_true", help="unrounded Y (BasicSR) instead of MATLAB uint8 Y")
    p.add_argument(
        "--gray",
        choices=["replicate", "keep"],
        default="replicate",
        help="gray images: replicate to RGB (default) or keep gray (MATLAB scripts)",
    )
    p.add_argument(
        "-t", "--tile", type=_tile_arg, default=0, help="tile size for the models (default 0: whole image)"
    )
    p.add_argument("--tile-overlap", type=int, default=16, help="tile overlap in input pixels (default: 16)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--half", action="store_true", help="fp16 inference on CUDA")
    p.add_argument(
        "--precision",
        choices=["fp32", "auto", "bf16", "fp16"],
        default="fp32",
        help="the models' precision (default fp32: tables reproducible on any machine; recorded in the "
        "results JSON)",
    )
    p.add_argument("-o", "--output", required=True, help="folder for the tables and figures")
    p.add_argument(
        "--no-plot", action="store_true", help="skip perception_distortion.png (no matplotlib needed)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from esrgan.eval.sweep import (
        SweepSettings,
        check_sweep_writable,
        parse_alphas,
        parse_box,
        run_sweep,
        write_sweep,
    )

    alphas = parse_alphas(args.alphas)
    crop_box = parse_box(args.crop_box) if args.crop_box is not None else None
    datasets: dict[str, tuple[str, str | None]] = {}
    for name, value in args.data:
        if name in datasets:
            raise EsrganError(f"--data: the set name {name!r} is used twice; name the sets NAME=HR_DIR")
        datasets[name] = _split_data_arg(name, value)
    # Refuse before the (long) run, not after it.
    check_sweep_writable(Path(args.output), overwrite=args.overwrite, plot=not args.no_plot)
    settings = SweepSettings(
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        gray_mode=args.gray,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        device=args.device,
        half=args.half,
        precision=args.precision,
        progress=not args.quiet,
        crop_image=args.crop_image,
        crop_box=crop_box,
    )
    result = run_sweep(args.psnr_model, args.gan_model, alphas, datasets, settings)
    print(result.markdown())
    for path in write_sweep(result, Path(args.output), overwrite=args.overwrite, plot=not args.no_plot):
        print(f"wrote {path}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# mos (human evaluation)


def _add_mos(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mos",
        help="human evaluation: a blind Mean Opinion Score study (create, serve, report)",
        description="A MOS study as in SRGAN: raters score every image 1 (bad) to 5 (excellent) after "
        "calibration on nearest-neighbour (= 1) and HR (= 5) examples. See docs/mos.md.",
    )
    mos = p.add_subparsers(dest="mos_command", required=True, metavar="ACTION")
    c = mos.add_parser(
        "create",
        help="build a study folder from SR result folders",
        description="Pair every HR image with one result per method (by file name), add the nearest and HR "
        "reference versions and calibration examples, and copy everything into STUDY under random ids.",
    )
    c.add_argument("study", help="new study folder")
    c.add_argument(
        "--method",
        action="append",
        required=True,
        type=_named_path,
        metavar="NAME=DIR",
        help="a folder of SR results and the method's name; repeat for several",
    )
    c.add_argument("--hr", required=True, metavar="DIR", help="folder of the original (HR) images")
    c.add_argument(
        "--nearest-from",
        default=None,
        metavar="LR_DIR",
        help="LR images for the nearest-neighbour reference (default: MATLAB bicubic ×1/scale of the HR)",
    )
    c.add_argument("--scale", type=int, default=4, help="SR factor (default: %(default)s)")
    c.add_argument(
        "--calibration", type=int, default=3, metavar="N", help="calibration examples (default: %(default)s)"
    )
    c.add_argument(
        "--calibration-hr",
        default=None,
        metavar="DIR",
        help="separate HR images for calibration (default: N test images drawn at random)",
    )
    c.add_argument("--seed", type=int, default=None, help="study seed (default: random)")
    c.set_defaults(run=_run_mos_create)
    s = mos.add_parser("serve", help="run the rating web app")
    s.add_argument("study", help="study folder")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    s.set_defaults(run=_run_mos_serve)
    r = mos.add_parser("report", help="MOS, confidence intervals, Wilcoxon tests, agreement, plot")
    r.add_argument("study", help="study folder")
    r.add_argument("-o", "--output", required=True, help="folder for report.md/.html, plot, CSV and JSON")
    r.add_argument(
        "--pairing",
        choices=["rating", "image"],
        default="rating",
        help="Wilcoxon pairs: per (rater, image) or per image mean (default: %(default)s)",
    )
    r.add_argument("--overwrite", action="store_true", help="replace existing report files")
    r.set_defaults(run=_run_mos_report)


def _run_mos_create(args: argparse.Namespace) -> int:
    from esrgan.mos import create_study

    methods: dict[str, str] = {}
    for name, folder in args.method:
        if name in methods:
            raise EsrganError(f"--method: the name {name!r} is used twice")
        methods[name] = folder
    study = create_study(
        args.study,
        methods,
        args.hr,
        nearest_from=args.nearest_from,
        scale=args.scale,
        calibration_count=args.calibration,
        calibration_hr=args.calibration_hr,
        seed=args.seed,
    )
    print(
        f"study {study.root}: {len(study.images)} images × {len(study.methods)} methods "
        f"({', '.join(study.methods)}) = {len(study.items)} to score, {len(study.calibration) // 2} "
        f"calibration example(s); serve it with: esrgan mos serve {args.study}"
    )
    return EXIT_OK


def _run_mos_serve(args: argparse.Namespace) -> int:
    from esrgan.mos import make_study_server

    server = make_study_server(args.study, host=args.host, port=args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"MOS study {args.study}: open http://{shown}:{server.server_port}/ (Ctrl+C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return EXIT_OK


def _run_mos_report(args: argparse.Namespace) -> int:
    from esrgan.mos import write_report

    for path in write_report(args.study, args.output, pairing=args.pairing, overwrite=args.overwrite):
        print(f"wrote {path}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# export


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model for other runtimes (ONNX, optionally int8-quantised)",
        description="Export a generator for another runtime. See docs/onnx.md.",
    )
    formats = p.add_subparsers(dest="export_format", required=True, metavar="FORMAT")
    o = formats.add_parser(
        "onnx",
        help="ONNX with dynamic batch/height/width, for `esrgan upscale --backend onnxruntime`",
        description="Write MODEL as an ONNX file (fp32, opset 18, dynamic batch/height/width) whose "
        "metadata describes it; with --int8, an int8-quantised file for the CPU instead. The export is "
        "checked against torch with onnxruntime before it is kept.",
    )
    o.add_argument(
        "model", nargs="?", default=None, help="weights file or model name (default: the bundled model)"
    )
    o.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    o.add_argument("--opset", type=int, default=18, help="ONNX opset (default: %(default)s)")
    o.add_argument(
        "--int8",
        action="store_true",
        help="quantise to int8 for the CPU (static: calibrated on --calibration; docs/benchmarks/int8.md)",
    )
    o.add_argument(
        "--calibration",
        default=None,
        metavar="DIR",
        help="folder of images like those you will upscale (LR inputs), for --int8 static calibration",
    )
    o.add_argument(
        "--int8-method",
        choices=["static", "dynamic"],
        default="static",
        help="static: calibrated, int8 throughout; dynamic: int8 weights, activation ranges at run time, no "
        "calibration (default: %(default)s)",
    )
    o.add_argument(
        "--calibration-images",
        type=int,
        default=32,
        metavar="N",
        help="use at most N calibration images, one random patch each (default: %(default)s)",
    )
    o.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    o.set_defaults(run=_run_export_onnx)


def _run_export_onnx(args: argparse.Namespace) -> int:
    from esrgan.inference.onnx_backend import export_onnx, export_onnx_int8, onnx_metadata

    if not args.int8 and args.calibration is not None:
        raise EsrganError("--calibration is for --int8 (static quantisation); add --int8 or leave it out")
    if args.int8:
        if args.int8_method == "static" and args.calibration is None:
            raise EsrganError(
                "--int8 needs --calibration DIR (images like those you will upscale) or --int8-method dynamic"
            )
        path = export_onnx_int8(
            args.model,
            args.output,
            args.calibration,
            method=args.int8_method,
            opset=args.opset,
            overwrite=args.overwrite,
            max_images=args.calibration_images,
        )
    else:
        path = export_onnx(args.model, args.output, opset=args.opset, overwrite=args.overwrite)
    meta = onnx_metadata(path)
    print(
        f"wrote {path} ({meta.get('esrgan.precision', '?')}, x{meta.get('esrgan.scale', '?')}, "
        f"{path.stat().st_size / 2**20:.1f} MiB); run it with: esrgan upscale IMAGES -m {path}"
    )
    return EXIT_OK


# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from esrgan import __version__

    parser = argparse.ArgumentParser(
        prog="esrgan",
        description="ESRGAN / SRGAN super-resolution: upscale images, inspect and convert weights, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"esrgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_upscale(sub)
    _add_models(sub)
    _add_inspect(sub)
    _add_convert(sub)
    _add_benchmark(sub)
    _add_evaluate(sub)
    _add_prepare(sub)
    _add_train(sub)
    _add_interpolate(sub)
    _add_interpolate_images(sub)
    _add_sweep(sub)
    _add_mos(sub)
    _add_export(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `esrgan train CONFIG --run-dir D k=v` must work like `esrgan train CONFIG k=v --run-dir D`; argparse
    # alone stops collecting positionals at the first option.
    if extra and hasattr(args, "overrides") and not any(e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except EsrganError as err:
        print(f"esrgan {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
