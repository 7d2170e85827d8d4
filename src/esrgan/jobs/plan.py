"""Planning a job over many files, before any model is loaded (no torch here, so that the command line can
refuse a bad job in a fraction of a second): which inputs, which shard of them this process takes, the
output name of each input, and whether its output size is one esrgan makes.

Used by the image job (`esrgan.jobs.upscale`); the rules are described there.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from esrgan.errors import ConfigError, EsrganError
from esrgan.io.folders import IMAGE_EXTENSIONS, is_image_name
from esrgan.io.images import WRITE_FORMATS
from esrgan.io.limits import output_size_problem, scaled_size

logger = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")


# --------------------------------------------------------------------------------------------------
# sharding


@dataclass(frozen=True)
class Shard:
    """Process `index` (from 0) of `count` that split one job; see `shard_positions`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (isinstance(self.index, int) and isinstance(self.count, int) and 0 <= self.index < self.count):
            raise ConfigError(f"a shard is I/N with 0 <= I < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` → ``Shard(I, N)``; raises `ConfigError` for anything else."""
        index, sep, count = text.partition("/")
        try:
            if not sep:
                raise ValueError(text)
            return cls(int(index), int(count))
        except ValueError:
            raise ConfigError(f"expected a shard as I/N with 0 <= I < N (e.g. 0/4), got {text!r}") from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_positions(n: int, shard: Shard) -> range:
    """Positions in a list of `n` items that `shard` takes: index, index + count, index + 2·count, …

    The shards of a list are disjoint, together cover it, differ in size by at most one, and need nothing
    but `n` to agree.
    """
    return range(shard.index, n, shard.count)


def shard_from_env(environ: Mapping[str, str] | None = None) -> Shard | None:
    """This process's shard when torchrun (or a launcher setting the same variables) started several:
    RANK / WORLD_SIZE, else LOCAL_RANK / LOCAL_WORLD_SIZE. None for a single process."""
    env = os.environ if environ is None else environ
    for rank_key, world_key in (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE")):
        if rank_key in env and world_key in env:
            try:
                shard = Shard(int(env[rank_key]), int(env[world_key]))
            except (ValueError, ConfigError):
                raise ConfigError(
                    f"the environment says {rank_key}={env[rank_key]!r}, {world_key}={env[world_key]!r}, "
                    "which is not a process of a job; unset them or pass --shard I/N"
                ) from None
            return shard if shard.count > 1 else None
    return None


def shard_device(environ: Mapping[str, str] | None = None) -> str | None:
    """``cuda:LOCAL_RANK`` (modulo the number of GPUs) for a torchrun worker on a machine with CUDA, so that
    the workers of a machine use different GPUs; None otherwise (the `Upscaler` default)."""
    import torch  # here, not at the top: planning a job must not pay for importing torch

    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env or not torch.cuda.is_available():
        return None
    try:
        local_rank = int(env["LOCAL_RANK"])
    except ValueError:
        raise ConfigError(f"the environment says LOCAL_RANK={env['LOCAL_RANK']!r}, not a number") from None
    return f"cuda:{local_rank % torch.cuda.device_count()}"


# --------------------------------------------------------------------------------------------------
# inputs and names


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders (non-recursive) and glob patterns into a sorted-per-spec, de-duplicated file
    list.

    Raises `EsrganError` for a path that does not exist or when nothing at all is found.
    """
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and is_image_name(p))
            if not matches:
                logger.warning("no images in folder %s", path)
        elif path.is_file():
            matches = [path]
        elif path.exists():
            raise EsrganError(
                f"{spec}: not a regular file or folder ({_file_kind(path)}); give an image file"
            )
        elif _GLOB_CHARS & set(spec):
            matches = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file() and is_image_name(Path(p)))
            if not matches:
                logger.warning("no images match %s", spec)
        else:
            raise EsrganError(f"{spec}: no such file or folder")
        found.extend(matches)
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise EsrganError(f"no images found in {' '.join(specs)} (looked for {exts})")
    return unique


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def check_name_part(value: str, what: str) -> str:
    """`value` if it can be part of a file name in the output folder; else `EsrganError`.

    A path separator, ``..`` or NUL could make an output land outside the output folder (``--suffix
    x/../../name``), so they are refused outright rather than normalised.
    """
    if "\0" in value:
        problem = "a NUL character"
    elif any(sep in value for sep in ("/", "\\", os.sep, os.altsep or "/")):
        problem = "a path separator"
    elif ".." in value:
        problem = "'..'"
    else:
        return value
    raise EsrganError(f"{what} {value!r} contains {problem}; it must be a plain part of a file name")


def output_path(input: Path, out_dir: Path, suffix: str, ext: str | None = None) -> Path:
    """``out_dir / f"{stem}_{suffix}.{ext}"`` (no ``_`` for an empty suffix).

    `ext` (with or without the dot) defaults to the input's extension, or ``png`` if we cannot write that
    format. Raises `EsrganError` for an output extension we cannot write, or a `suffix` that is not a plain
    part of a file name (`check_name_part`).
    """
    check_name_part(suffix, "--suffix")
    input = Path(input)
    if ext is None:
        ext = input.suffix if input.suffix.lower() in WRITE_FORMATS else ".png"
    ext = ext if ext.startswith(".") else "." + ext
    if ext.lower() not in WRITE_FORMATS:
        choices = ", ".join(sorted(e.lstrip(".") for e in WRITE_FORMATS))
        raise EsrganError(f"cannot write {ext!r} files; choose one of: {choices}")
    name = f"{input.stem}_{suffix}" if suffix else input.stem
    dst = Path(out_dir) / f"{name}{ext}"
    if dst.name != f"{name}{ext}" or dst.name in (".", ".."):  # cannot happen after the checks above
        raise EsrganError(f"{input}: cannot make a safe output name from it")
    return dst


# --------------------------------------------------------------------------------------------------
# output sizes


def check_outscale(
    inputs: list[Path],
    out_dir: Path,
    outscale: float,
    *,
    suffix: str = "out",
    ext: str | None = None,
    streamable: bool = True,
) -> None:
    """Raise `EsrganError` naming the first input whose output at `outscale` is larger than esrgan makes
    (`esrgan.io.limits`). Reads only image headers; an input whose header cannot be read is left to the job,
    which reports it properly. `streamable`: False when the settings cannot stream (back-projection)."""
    for src in inputs:
        try:
            with PILImage.open(src) as im:
                width, height = im.size
        except Exception:  # noqa: BLE001 - unreadable here means: the job will say why
            continue
        out_height, out_width = scaled_size(height, width, outscale)
        dst = output_path(src, out_dir, suffix, ext)
        fmt = WRITE_FORMATS[dst.suffix.lower()]
        problem = output_size_problem(out_height, out_width, fmt, streamable=streamable)
        if problem is not None:
            raise EsrganError(
                f"{src}: --outscale {outscale:g} would make {out_width:,}×{out_height:,} pixels of this "
                f"{width}×{height} image; {problem}; lower --outscale"
            )
