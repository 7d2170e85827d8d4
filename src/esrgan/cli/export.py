"""`esrgan export onnx`: ONNX files, optionally int8."""

from __future__ import annotations

import argparse

from esrgan.cli._common import (
    EXIT_OK,
)
from esrgan.errors import EsrganError

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
    from esrgan.inference.onnx import export_onnx, export_onnx_int8, onnx_metadata

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


def register(sub: argparse._SubParsersAction) -> None:
    _add_export(sub)
