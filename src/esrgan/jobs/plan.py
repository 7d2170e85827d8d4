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
from typing import TYPE_CHECKING, Literal

from PIL import Image as PILImage

from esrgan._fs import temporary_file_target
from esrgan.errors import ConfigError, EsrganError
from esrgan.io.folders import IMAGE_EXTENSIONS, is_image_name
from esrgan.io.images import WRITE_FORMATS
from esrgan.io.limits import output_size_problem, scaled_size
from esrgan.io.video import CONTAINER_FORMATS, DEFAULT_VIDEO_EXT, VIDEO_EXTENSIONS, is_video_name

if TYPE_CHECKING:  # the manifest module imports the weights (torch); planning only needs its types
    from esrgan.jobs.manifest import ManifestRecord, Recipe

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
            matches = sorted(p for p in path.iterdir() if p.is_file() and _is_input_name(p))
            if not matches:
                logger.warning("no images in folder %s", path)
        elif path.is_file():
            matches = [path]
        elif path.exists():
            raise EsrganError(
                f"{spec}: not a regular file or folder ({_file_kind(path)}); give an image file"
            )
        elif _GLOB_CHARS & set(spec):
            matches = sorted(
                Path(p) for p in glob.glob(spec) if Path(p).is_file() and _is_input_name(Path(p))
            )
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
        exts = " ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        raise EsrganError(f"no images or videos found in {' '.join(specs)} (looked for {exts})")
    return unique


def _is_input_name(path: Path) -> bool:
    return is_image_name(path) or is_video_name(path)


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

    `ext` (with or without the dot) defaults to the input's extension, or, when we cannot write that format,
    ``png`` for images and ``mkv`` for videos (AVI). Raises `EsrganError` for an output extension we cannot
    write for this kind of input, or a `suffix` that is not a plain part of a file name
    (`check_name_part`).
    """
    check_name_part(suffix, "--suffix")
    input = Path(input)
    video = input.suffix.lower() in VIDEO_EXTENSIONS
    writable, fallback, kind = (
        (CONTAINER_FORMATS, DEFAULT_VIDEO_EXT, "videos") if video else (WRITE_FORMATS, ".png", "images")
    )
    if ext is None:
        ext = input.suffix if input.suffix.lower() in writable else fallback
    ext = ext if ext.startswith(".") else "." + ext
    if ext.lower() not in writable:
        choices = ", ".join(sorted(e.lstrip(".") for e in writable))
        raise EsrganError(f"{input}: cannot write {kind} as {ext!r} files; choose one of: {choices}")
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


# --------------------------------------------------------------------------------------------------
# the output folder


def check_plan(inputs: list[Path], outputs: list[Path]) -> None:
    """`EsrganError` when an output would replace an input, or two inputs would share an output."""
    sources = {p.resolve() for p in inputs}
    claimed: dict[Path, Path] = {}
    for src, dst in zip(inputs, outputs, strict=True):
        key = dst.resolve()
        if key in sources:
            raise EsrganError(
                f"{src}: the output {dst} would replace an input file; "
                "use another output folder (-o) or --suffix"
            )
        if key in claimed:
            raise EsrganError(
                f"{claimed[key]} and {src} would both be written to {dst}; "
                "rename one or upscale them separately"
            )
        claimed[key] = src


def make_output_folder(out_dir: Path, outputs: list[Path]) -> None:
    """Create `out_dir` if needed, and check that every output is an entry of it itself: the last line of
    defence against writing elsewhere."""
    if out_dir.exists() and not out_dir.is_dir():
        raise EsrganError(f"{out_dir}: exists and is not a folder; choose another output folder (-o)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EsrganError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from e
    folder = out_dir.resolve()
    for dst in outputs:
        if dst.parent.resolve() != folder or dst.name in ("", ".", ".."):
            raise EsrganError(f"{dst} is not inside the output folder {out_dir}; refusing to write it")


Outcome = Literal["done", "earlier", "skipped", "failed"]


def output_verdict(
    src: Path, dst: Path, record: ManifestRecord | None, recipe: Recipe | None, *, overwrite: bool
) -> tuple[Outcome | Literal["run"], str]:
    """Whether to make `dst` now ("run"), or why not: an existing output is "earlier" when the manifest
    shows it was made by `recipe` from this input, else "skipped" unless `overwrite`."""
    if dst.is_symlink():  # writing through it could change a file outside the output folder
        return "skipped", f"{dst} is a symbolic link; remove it to write the output there"
    if not dst.exists():
        return "run", ""
    if record is None or recipe is None:
        if overwrite:
            return "run", ""
        return "skipped", f"{dst} exists (use --overwrite to replace it)"
    same_input = Path(record.input).name == src.name and record.input_bytes == file_size(src)
    unchanged = record.output_bytes == file_size(dst)
    if record.recipe == recipe and same_input and unchanged:
        return "earlier", ""
    if overwrite:
        return "run", ""
    if record.recipe != recipe:
        changes = "; ".join(recipe.differences(record.recipe))
        return "skipped", (
            f"{dst} was made by another model or with other settings ({changes}); "
            "use --overwrite to replace it"
        )
    if not same_input:
        return "skipped", (
            f"{dst} was made from another input ({record.input}, {record.input_bytes} bytes); "
            "use --overwrite to replace it"
        )
    return (
        "skipped",
        f"{dst} was changed after it was made on {record.finished}; use --overwrite to replace it",
    )


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def remove_leftover_temporary_files(out_dir: Path, names: set[str]) -> None:
    """Delete the temporary files that killed writes of the outputs called `names` left in `out_dir`."""
    try:
        hidden = [entry.name for entry in os.scandir(out_dir) if entry.name.startswith(".")]
    except OSError as e:
        logger.warning("cannot list %s to remove leftover temporary files (%s)", out_dir, e.strerror or e)
        return
    for name in hidden:
        if temporary_file_target(name) in names:
            try:
                (out_dir / name).unlink()
                logger.info("removed %s, left by an interrupted write", out_dir / name)
            except OSError as e:
                logger.warning("cannot remove the leftover temporary file %s (%s)", out_dir / name, e)
