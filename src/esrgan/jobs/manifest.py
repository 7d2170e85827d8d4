"""The resumable record of an `esrgan upscale` job: which output was made from which input, by which model.

Layout: ``OUT/.esrgan-manifest/shard-{i}-of-{n}.jsonl``, one file per process of a (possibly sharded) job, so
processes on different machines never append to the same file. Each line is one finished output (see
`ManifestRecord`), written after the output's atomic rename and flushed to disk with ``fsync``; a rerun reads
every ``*.jsonl`` in the folder, and the latest record of an output name wins.

Decisions:

- An output is identified by its file name in the output folder, an input by its file name and size, so a job
  moved to another machine (other mount points) still recognises its work. Hashing every input on each
  resume would read the whole data set again.
- A `Recipe` is everything that decides the pixels: the SHA-256 of the weight file(s), the interpolation
  weight, and the `Upscaler` settings (tile, overlap, alpha upsampler, outscale, back-projection, precision);
  for videos also the encoding (codec, quality, pixel format) and the segment length.
  Model names and the device are kept for people reading the manifest but not compared: the same file under
  another name gives the same pixels.
- A line that cannot be parsed (a process killed in the middle of writing it) is ignored with a warning; the
  output it described is then treated as not recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from esrgan.errors import EsrganError
from esrgan.weights import DEFAULT_MODEL, weights_sha256

if TYPE_CHECKING:
    from esrgan.inference.upscaler import Upscaler

logger = logging.getLogger(__name__)

MANIFEST_DIR = ".esrgan-manifest"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """What decides an output's pixels (compared) and names for the reader (``compare=False``)."""

    model_sha256: str
    tile: int | str = 0
    tile_overlap: int = 8
    alpha_upsampler: str = "model"
    outscale: float | None = None
    back_projection: int = 0
    precision: str = "fp32"
    model_b_sha256: str | None = None
    interpolation_alpha: float | None = None
    video: str | None = None  # videos: the encoding and segment length (`esrgan.jobs.video`)
    model: str = field(default="", compare=False)
    model_b: str | None = field(default=None, compare=False)
    device: str = field(default="", compare=False)

    @classmethod
    def for_upscaler(
        cls,
        upscaler: Upscaler,
        model_sha256: str,
        *,
        model: str = "",
        model_b_sha256: str | None = None,
        model_b: str | None = None,
        interpolation_alpha: float | None = None,
    ) -> Recipe:
        """The recipe of `upscaler`'s settings with the given weights (SHA-256 of the file(s))."""
        return cls(
            model_sha256=model_sha256,
            tile=upscaler.tile,
            tile_overlap=upscaler.tile_overlap,
            alpha_upsampler=upscaler.alpha_upsampler,
            outscale=upscaler.outscale,
            back_projection=upscaler.back_projection,
            precision=upscaler.requested_precision,  # "fp32", "fp16", "bf16": what the job asked for
            model_b_sha256=model_b_sha256,
            interpolation_alpha=interpolation_alpha,
            model=model,
            model_b=model_b,
            device=str(upscaler.device),
        )

    def differences(self, other: Recipe) -> list[str]:
        """Human-readable ``name: other → self`` for every compared field that differs."""
        changes = []
        for f in fields(self):
            if not f.compare:
                continue
            before, now = getattr(other, f.name), getattr(self, f.name)
            if before == now:
                continue
            if f.name.endswith("sha256"):
                name_field = f.name.removesuffix("_sha256")
                before = f"{getattr(other, name_field) or '?'} (sha256 {str(before)[:12]})"
                now = f"{getattr(self, name_field) or '?'} (sha256 {str(now)[:12]})"
                changes.append(f"{name_field.replace('_', ' ')}: {before} → {now}")
            else:
                changes.append(f"{f.name.replace('_', ' ')}: {before} → {now}")
        return changes

    def describe(self) -> str:
        """One line for people: the model(s) and their digests."""
        text = f"{self.model or '?'} (sha256 {self.model_sha256[:12]})"
        if self.model_b_sha256 is not None:
            text += f" blended with {self.model_b or '?'} (sha256 {self.model_b_sha256[:12]})"
            text += f" at alpha {self.interpolation_alpha}"
        return text


def recipe_for(
    upscaler: Upscaler,
    model: str | os.PathLike[str] | None = None,
    *,
    model_b: str | os.PathLike[str] | None = None,
    interpolation_alpha: float | None = None,
) -> Recipe:
    """The `Recipe` of `upscaler` running the weights that `load_model(model)` reads (None = the bundled
    default), interpolated with `model_b` at `interpolation_alpha` when given."""

    return Recipe.for_upscaler(
        upscaler,
        weights_sha256(model),
        model=str(model) if model is not None else DEFAULT_MODEL,
        model_b_sha256=weights_sha256(model_b) if model_b is not None else None,
        model_b=str(model_b) if model_b is not None else None,
        interpolation_alpha=interpolation_alpha if model_b is not None else None,
    )


@dataclass(frozen=True)
class ManifestRecord:
    """One finished output. `output` is its name in the output folder; `input` the path as given."""

    output: str
    input: str
    input_bytes: int
    output_bytes: int
    output_sha256: str
    recipe: Recipe
    finished: str  # UTC, ISO 8601 with milliseconds: sorts in time order as text
    seconds: float  # read + upscale + write of this file
    shard: str  # "i/n" of the process that made it

    def to_json(self) -> str:
        return json.dumps({"version": MANIFEST_VERSION, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> ManifestRecord:
        """Parse one manifest line; raises ValueError (or a subclass) for anything else."""
        data: dict[str, Any] = json.loads(line)
        if not isinstance(data, dict) or data.pop("version", None) != MANIFEST_VERSION:
            raise ValueError("not a manifest record of this version")
        recipe = data.pop("recipe")
        if not isinstance(recipe, dict):
            raise ValueError("recipe is not an object")
        try:
            return cls(recipe=Recipe(**recipe), **data)
        except TypeError as e:  # missing or unknown keys
            raise ValueError(str(e)) from e


def manifest_dir(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / MANIFEST_DIR


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, ManifestRecord]:
    """The latest record of each output name in every manifest file of `out_dir` ({} when there is none)."""
    folder = manifest_dir(out_dir)
    latest: dict[str, ManifestRecord] = {}
    if not folder.is_dir():
        return latest
    for path in sorted(folder.glob("*.jsonl")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise EsrganError(f"{path}: cannot read the manifest ({e.strerror or e})") from e
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = ManifestRecord.from_json(line)
            except ValueError as e:
                logger.warning("%s line %d: not a manifest record, ignored (%s)", path, number, e)
                continue
            earlier = latest.get(record.output)
            if earlier is None or record.finished >= earlier.finished:
                latest[record.output] = record
    return latest


class ManifestWriter:
    """Appends records to this process's manifest file, each flushed and fsynced before `append` returns.

    Use from one thread at a time; close it (or use it as a context manager) when done.
    """

    def __init__(self, out_dir: str | os.PathLike[str], shard_index: int = 0, shard_count: int = 1) -> None:
        self.shard = f"{shard_index}/{shard_count}"
        folder = manifest_dir(out_dir)
        self.path = folder / f"shard-{shard_index}-of-{shard_count}.jsonl"
        self.records = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if folder.is_symlink() or self.path.is_symlink():  # never append through a link out of the folder
                raise EsrganError(
                    f"{folder}: the manifest is a symbolic link; remove it or use --no-manifest"
                )
            self._file: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 - closed in close()
            # A process killed in the middle of a line leaves it unfinished: start on a fresh line.
            if self._file.tell() > 0 and not _ends_with_newline(self.path):
                self._write(b"\n")
        except OSError as e:
            raise EsrganError(f"{self.path}: cannot write the manifest ({e.strerror or e})") from e

    def record(
        self, src: Path, dst: Path, recipe: Recipe, *, input_bytes: int, seconds: float
    ) -> ManifestRecord:
        """Append the record of `dst` (already in place, and hashed here) made from `src`; raises OSError if
        it fails."""
        digest = hashlib.sha256()
        size = 0
        with open(dst, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        record = ManifestRecord(
            output=dst.name,
            input=str(src),
            input_bytes=input_bytes,
            output_bytes=size,
            output_sha256=digest.hexdigest(),
            recipe=recipe,
            finished=_utc_now(),
            seconds=round(seconds, 3),
            shard=self.shard,
        )
        self._write(record.to_json().encode() + b"\n")
        self.records += 1
        return record

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file; a manifest file (and folder) left empty, as when every file failed, is removed."""
        self._file.close()
        if self.records == 0:
            with contextlib.suppress(OSError):
                if self.path.stat().st_size == 0:
                    self.path.unlink()
                    self.path.parent.rmdir()  # only if no other shard's file is in it

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _utc_now() -> str:
    now = time.time()
    return datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
