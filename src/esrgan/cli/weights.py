"""`esrgan models`, `inspect` and `convert`: named models and weight files."""

from __future__ import annotations

import argparse

from esrgan.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
)

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


def register(sub: argparse._SubParsersAction) -> None:
    _add_models(sub)
    _add_inspect(sub)
    _add_convert(sub)
