"""What every command shares: exit statuses and argument types."""

from __future__ import annotations

import argparse
from pathlib import Path

from esrgan.errors import EsrganError

__all__ = [
    "add_data_option",
    "datasets_from",
    "add_scoring_run_options",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "named_path",
    "positive_float",
    "split_data_arg",
    "tile_arg",
]

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2


def tile_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("tile size must be >= 0 (0 = whole image)")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def named_path(text: str) -> tuple[str, str]:
    """`NAME=PATH` → (NAME, PATH); a bare PATH is named after its last component."""
    name, sep, path = text.partition("=")
    if not sep:
        path = text
        name = Path(text.rstrip("/")).stem or text
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def split_data_arg(name: str, value: str) -> tuple[str, str | None]:
    """``HR_DIR[:LR_DIR]`` → (HR_DIR, LR_DIR or None)."""
    hr, sep, lr = value.partition(":")
    if not hr or (sep and not lr):
        raise EsrganError(f"--data {name}={value}: expected HR_DIR or HR_DIR:LR_DIR")
    return hr, (lr if sep else None)


def add_scoring_run_options(p: argparse.ArgumentParser) -> None:
    """How `benchmark` and `sweep` run their models: whole images in fp32 by default, so that tables are the
    same on every machine."""
    p.add_argument(
        "-t", "--tile", type=tile_arg, default=0, help="tile size for the models (default 0: whole image)"
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


def add_data_option(p: argparse.ArgumentParser, help: str) -> None:
    """``-d/--data [NAME=]HR_DIR[:LR_DIR]``, repeatable: the benchmark sets of `benchmark` and `sweep`."""
    p.add_argument(
        "-d",
        "--data",
        action="append",
        required=True,
        type=named_path,
        metavar="[NAME=]HR_DIR[:LR_DIR]",
        help=help,
    )


def datasets_from(data: list[tuple[str, str]]) -> dict[str, tuple[str, str | None]]:
    """``{name: (hr_dir, lr_dir or None)}`` from the ``--data`` values; a name given twice is an error."""
    datasets: dict[str, tuple[str, str | None]] = {}
    for name, value in data:
        if name in datasets:
            raise EsrganError(f"--data: the set name {name!r} is used twice; name the sets NAME=HR_DIR")
        datasets[name] = split_data_arg(name, value)
    return datasets
