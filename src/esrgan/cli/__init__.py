"""Command line: `esrgan SUBCOMMAND ...`, one module per group of commands.

Only argument parsing and printing live here; every subcommand calls library functions that are also
reachable from Python. Expected failures (`EsrganError`) are printed as one clear line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from esrgan.cli import evaluation, export, mos, training, upscale, weights
from esrgan.cli._common import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED
from esrgan.errors import EsrganError

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_SOME_FAILED", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from esrgan import __version__

    parser = argparse.ArgumentParser(
        prog="esrgan",
        description="ESRGAN / SRGAN super-resolution: upscale images, inspect and convert weights, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"esrgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upscale.register(sub)
    weights.register(sub)
    evaluation.register(sub)
    training.register(sub)
    mos.register(sub)
    export.register(sub)
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
