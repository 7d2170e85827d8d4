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


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images with an ESRGAN-family model",
        description="Upscale image files, folders or globs. Outputs go to OUTPUT_DIR as {name}_{suffix}.{ext}.",
    )
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", default="results", help="output folder (default: %(default)s)")
    p.add_argument(
        "-m",
        "--model",
        default=None,
        help="model name from `esrgan models` or a weights file (.pth/.safetensors); "
        "default: the bundled model",
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
    p.add_argument("--tile-overlap", type=int, default=16, help="tile overlap in input pixels (default: 16)")
    p.add_argument("--suffix", default="out", help="output name suffix (default: %(default)s)")
    p.add_argument("--ext", default=None, help="output format: png, jpg, webp, tif (default: same as input)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--half", action="store_true", help="fp16 inference on CUDA")
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
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_upscale)


def _run_upscale(args: argparse.Namespace) -> int:
    from esrgan.inference.files import collect_inputs, upscale_files
    from esrgan.inference.upscaler import Upscaler
    from esrgan.weights import interpolate_models, load_model

    if (args.model_b is None) != (args.alpha is None):
        raise EsrganError("--model-b and --alpha go together: give both for network interpolation, or neither")
    inputs = collect_inputs(args.inputs)
    model = load_model(args.model, device="cpu")
    if args.model_b is not None:
        model = interpolate_models(model, load_model(args.model_b, device="cpu"), args.alpha)
    upscaler = Upscaler(
        model,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        device=args.device,
        half=args.half,
        alpha=args.alpha_upsampler,
        outscale=args.outscale,
        back_projection=args.back_projection,
        progress=not args.quiet,
    )
    summary = upscale_files(
        upscaler,
        inputs,
        Path(args.output),
        suffix=args.suffix,
        ext=args.ext,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, message in summary.failed:
        print(f"failed  {path}: {message}", file=sys.stderr)
    print(
        f"{len(summary.done)} upscaled, {len(summary.skipped)} skipped, {len(summary.failed)} failed"
        f" -> {args.output}"
    )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


# --------------------------------------------------------------------------------------------------
# models / inspect / convert


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the named models (downloaded on first use)")
    p.set_defaults(run=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from esrgan.weights.zoo import MODEL_ZOO, cached_path

    for name, entry in MODEL_ZOO.items():
        where = cached_path(name)
        state = f"cached at {where}" if where.is_file() else "not downloaded"
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
        choices=["basicsr", "esrgan", "old"],
        default="basicsr",
        help="key names: basicsr (BasicSR/Real-ESRGAN), esrgan (ESRGAN repo), old (2018 model.N)",
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
        help="PSNR/SSIM (Y) and NIQE of models and baselines on benchmark sets",
        description="HR images are mod-cropped to the scale and downscaled with MATLAB bicubic "
        "(unless an LR folder is given as NAME=HR_DIR:LR_DIR).",
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        type=_named_path,
        metavar="[NAME=]MODEL",
        help="model name or weights file; repeat for several",
    )
    p.add_argument(
        "-d",
        "--data",
        action="append",
        required=True,
        type=_named_path,
        metavar="NAME=HR_DIR[:LR_DIR]",
        help="benchmark set; repeat for several",
    )
    p.add_argument(
        "--baseline",
        action="append",
        choices=["bicubic", "nearest"],
        default=None,
        help="baselines to include (default: bicubic)",
    )
    p.add_argument("--scale", type=int, default=None, help="scale when only baselines run (default 4)")
    p.add_argument("-o", "--output", default="benchmark", help="folder for tables (default: %(default)s)")
    p.add_argument("--save-images", action="store_true", help="also save the SR images")
    p.add_argument("--report", default=None, metavar="DIR", help="write an HTML report with zoomed crops")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE (faster)")
    p.add_argument(
        "--float-y",
        action="store_true",
        help="unrounded Y (BasicSR convention) instead of MATLAB uint8 rounding",
    )
    p.add_argument("--back-projection", type=int, default=0, metavar="N", help="post-process SR with N iterations")
    p.add_argument("--tile", type=_tile_arg, default=0, help="tile size for the models (default: whole image)")
    p.add_argument("--device", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.set_defaults(run=_run_benchmark)


def _split_data_arg(path: str) -> tuple[str, str | None]:
    hr, sep, lr = path.partition(":")
    return hr, (lr if sep else None)


def _run_benchmark(args: argparse.Namespace) -> int:
    from esrgan.eval import BenchmarkSettings, run_benchmark, write_html_report, write_tables

    datasets = {name: _split_data_arg(path) for name, path in args.data}
    settings = BenchmarkSettings(
        scale=args.scale,
        y_rounding=not args.float_y,
        niqe=not args.no_niqe,
        back_projection=args.back_projection,
        tile=args.tile,
        device=args.device,
        save_images_dir=Path(args.output) / "images" if args.save_images else None,
    )
    result = run_benchmark(
        datasets=datasets,
        models=dict(args.model),
        baselines=args.baseline if args.baseline is not None else ["bicubic"],
        settings=settings,
    )
    written = write_tables(result, Path(args.output), overwrite=args.overwrite)
    print(result.summary_markdown())
    for path in written:
        print(f"wrote {path}")
    if args.report:
        index = write_html_report(result, Path(args.report), overwrite=args.overwrite)
        print(f"wrote {index}")
    return EXIT_OK


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="PSNR/SSIM (Y), NIQE and PIRM RMSE of SR images computed elsewhere")
    p.add_argument("sr_dir", help="folder of super-resolved images")
    p.add_argument("hr_dir", help="folder of ground-truth images (matched by file name)")
    p.add_argument("--crop-border", type=int, default=4, help="pixels removed at each border (default: 4)")
    p.add_argument("--float-y", action="store_true", help="unrounded Y (BasicSR convention)")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE")
    p.add_argument("--modcrop", action="store_true", help="crop HR to the SR size when they differ")
    p.add_argument("-o", "--output", default=None, help="folder for tables (default: print only)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from esrgan.eval import evaluate_folders, write_tables

    result = evaluate_folders(
        Path(args.sr_dir),
        Path(args.hr_dir),
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        niqe=not args.no_niqe,
        modcrop=args.modcrop,
    )
    print(result.summary_markdown())
    if args.output:
        for path in write_tables(result, Path(args.output), overwrite=args.overwrite):
            print(f"wrote {path}")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
