"""The video job of `esrgan upscale`: every frame of each video through the `Upscaler`, in resumable segments,
over any number of processes.

Decisions:

- A video is cut at keyframes into segments of at least `segment_seconds` (`esrgan.io.video.plan_segments`).
  Each segment is decoded, upscaled and encoded into its own part file under
  ``OUT/.esrgan-video/{output name}.{key}/``, written under a temporary name and renamed when complete.
  When every part of a video exists, they are joined with the source's audio, subtitle and data streams
  into the output (again a temporary name, then a rename), the job is recorded in the manifest like an
  image, and the parts are deleted.
- `key` is a digest of everything that decides the parts' bytes (input name and size, model and settings,
  encoding, segment length), so a rerun of the same command reuses finished parts (a killed job resumes from
  its last finished segment), and a changed command never mixes old parts with new ones: part folders of the
  same output with another key are deleted.
- Decoding, the model and encoding run in three threads with bounded queues (`READ_AHEAD` decoded frames,
  `WRITE_BEHIND` upscaled ones), so memory does not grow with the video's length.
- Processes split the list of all segments of all videos (`Shard`: positions i, i+n, ...), computed the same
  way in each process whatever is already done, so they agree without talking. The process that finishes a
  video's last part joins it; if two do at once, the second finds the output made (never overwritten
  without `overwrite`).
- A video that fails (corrupt, truncated, an encoder that refuses the settings) is reported and the others
  go on; its finished parts are kept for the rerun, and nothing appears under its output name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from esrgan._fs import atomic_writer
from esrgan.errors import EsrganError
from esrgan.inference.upscaler import Upscaler
from esrgan.io.limits import MAX_IN_MEMORY_OUTPUT_PIXELS
from esrgan.io.video import (
    PartEncoder,
    Segment,
    VideoEncoding,
    VideoError,
    VideoInfo,
    check_container,
    decode_segment,
    join_parts,
    plan_segments,
    probe_video,
)
from esrgan.jobs.manifest import ManifestWriter, Recipe, read_manifest
from esrgan.jobs.plan import (
    Shard,
    check_plan,
    file_size,
    make_output_folder,
    output_path,
    output_verdict,
    shard_positions,
)
from esrgan.jobs.upscale import UpscaleSummary, put_unless

__all__ = ["DEFAULT_SEGMENT_SECONDS", "PARTS_DIR", "upscale_videos"]

logger = logging.getLogger(__name__)

PARTS_DIR = ".esrgan-video"
DEFAULT_SEGMENT_SECONDS = 10.0
READ_AHEAD = 4  # decoded frames waiting for the model
WRITE_BEHIND = 2  # upscaled frames waiting for the encoder (scale² larger)


@dataclass
class _Video:
    src: Path
    dst: Path
    segment_seconds: float
    recipe: Recipe | None = None  # the job's recipe with this video's encoding (None without a manifest)
    info: VideoInfo | None = None
    segments: list[Segment] = field(default_factory=list)
    parts_dir: Path | None = None
    encoding: VideoEncoding | None = None
    size: tuple[int, int] = (0, 0)  # output width, height
    outcome: str = "run"  # run, done, earlier, skipped, failed
    reason: str = ""
    started: float = field(default_factory=time.perf_counter)

    def part(self, segment: Segment) -> Path:
        assert self.parts_dir is not None
        return self.parts_dir / f"part-{segment.index:05d}.bin"


def upscale_videos(
    upscaler: Upscaler,
    inputs: list[Path],
    out_dir: Path,
    *,
    suffix: str = "out",
    ext: str | None = None,
    encoding: VideoEncoding | None = None,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    overwrite: bool = False,
    progress: bool = True,
    shard: Shard | None = None,
    recipe: Recipe | None = None,
) -> UpscaleSummary:
    """Upscale every video in `inputs` into `out_dir` (the segments of `shard` when given); a failing video
    is recorded and the others still run. The arguments are those of `esrgan.jobs.upscale.upscale_files`,
    plus `encoding` (codec, quality, pixel format; None: the defaults) and `segment_seconds`.

    Returns an `UpscaleSummary`: ``done`` holds the videos this process finished (joined), ``skipped`` also
    those whose remaining segments other processes are making. Raises `EsrganError` only for problems found
    before any work (see `upscale_files`).
    """
    if not segment_seconds > 0:
        raise EsrganError(f"the segment length must be positive, got {segment_seconds}")
    out_dir = Path(out_dir)
    outputs = [output_path(p, out_dir, suffix, ext) for p in inputs]
    check_plan(inputs, outputs)
    make_output_folder(out_dir, outputs)
    records = read_manifest(out_dir) if recipe is not None else {}
    videos = [_Video(src, dst, segment_seconds) for src, dst in zip(inputs, outputs, strict=True)]
    settings = _settings(upscaler) if recipe is None else None  # hashes the weights: once per job
    for video in videos:
        _plan(video, upscaler, encoding or VideoEncoding(), recipe, settings, records, overwrite)

    # every process cuts the same list: all segments of all probed videos, whatever is done already
    work = [(v, s) for v in videos if v.info is not None for s in v.segments]
    mine = [work[i] for i in (shard_positions(len(work), shard) if shard is not None else range(len(work)))]
    todo = [(v, s) for v, s in mine if v.outcome == "run" and not v.part(s).exists()]
    for video in {id(v): v for v, _ in mine}.values():
        if video.outcome == "run":
            _remove_stale_parts(video)

    manifest = None
    if recipe is not None and any(v.outcome == "run" for v in videos):
        manifest = ManifestWriter(out_dir, *((shard.index, shard.count) if shard else (0, 1)))
    desc = "upscale video" if shard is None else f"upscale video {shard}"
    bar = tqdm(total=sum(s.frames for _, s in todo), desc=desc, unit="frame", disable=not progress)
    try:
        for video, segment in todo:
            if video.outcome != "run":
                continue  # an earlier segment of it failed
            bar.set_postfix_str(f"{video.src.name} segment {segment.index + 1}/{len(video.segments)}")
            try:
                _make_part(upscaler, video, segment, bar.update)
            except (EsrganError, OSError) as e:
                video.outcome, video.reason = "failed", _message(video, e)
        for video in videos:
            if video.outcome == "run" and any(v is video for v, _ in mine):
                _finish(video, overwrite, manifest)
    finally:
        bar.close()
        if manifest is not None:
            manifest.close()
    return _summary(videos, mine)


def _video_recipe(recipe: Recipe | None, encoding: VideoEncoding | None, seconds: float) -> Recipe | None:
    if recipe is None or encoding is None:
        return recipe
    return replace(recipe, video=f"{encoding.describe()} segments={seconds:g}s")


def _plan(
    video: _Video,
    upscaler: Upscaler,
    encoding: VideoEncoding,
    recipe: Recipe | None,
    settings: dict[str, Any] | None,
    records: dict[str, Any],
    overwrite: bool,
) -> None:
    """Probe `video` and fill in its segments, encoding, recipe, output size, parts folder and verdict.
    `settings` (`_settings`) stands in for the recipe in the parts folder's key when there is none."""
    try:
        info = probe_video(video.src)
        video.encoding = encoding.resolved(info, video.dst.suffix)
        out_height, out_width = upscaler.output_size(info.height, info.width)
        _check_frame_size(video, out_width, out_height)
        check_container(info, video.encoding, (out_width, out_height), video.dst.suffix)
    except EsrganError as e:
        video.outcome, video.reason = "failed", _message(video, e)
        return
    video.info, video.size = info, (out_width, out_height)
    seconds = video.segment_seconds
    video.segments = plan_segments(info, seconds)
    video.recipe = _video_recipe(recipe, video.encoding, seconds)
    video.outcome, video.reason = output_verdict(
        video.src, video.dst, records.get(video.dst.name), video.recipe, overwrite=overwrite
    )
    key = {
        "input": video.src.name,
        "input_bytes": file_size(video.src),
        "recipe": asdict(video.recipe) if video.recipe is not None else settings,
        "encoding": asdict(video.encoding),
        "segment_seconds": seconds,
        "size": video.size,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    video.parts_dir = video.dst.parent / PARTS_DIR / f"{video.dst.name}.{digest}"


def _settings(upscaler: Upscaler) -> dict[str, Any]:
    """What decides the pixels when there is no recipe (no manifest): the settings and the weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(upscaler.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "weights": digest.hexdigest(),
        "tile": upscaler.tile,
        "tile_overlap": upscaler.tile_overlap,
        "outscale": upscaler.outscale,
        "precision": str(upscaler.precision),
    }


def _check_frame_size(video: _Video, width: int, height: int) -> None:
    assert video.encoding is not None
    if width * height > MAX_IN_MEMORY_OUTPUT_PIXELS:
        raise VideoError(f"frames of {width:,}×{height:,} pixels are too large; lower --outscale")
    subsampled = video.encoding.pix_fmt is not None and (
        "420" in video.encoding.pix_fmt or "422" in video.encoding.pix_fmt
    )
    if subsampled and (width % 2 or (height % 2 and "420" in video.encoding.pix_fmt)):
        raise VideoError(
            f"the upscaled frames would be {width}×{height}, but {video.encoding.pix_fmt} needs even sizes; "
            "choose another --outscale, or --pix-fmt yuv444p"
        )


def _remove_stale_parts(video: _Video) -> None:
    """Delete part folders of this output made with other settings or from another input. (Temporary files
    in this video's own folder may belong to another process of the same job; they go with the folder once
    the video is joined.)"""
    assert video.parts_dir is not None
    root = video.parts_dir.parent
    if not root.is_dir():
        return
    for entry in root.iterdir():
        name, _, _ = entry.name.rpartition(".")
        if name == video.dst.name and entry != video.parts_dir:
            shutil.rmtree(entry, ignore_errors=True)
            logger.info("removed %s, parts made with other settings", entry)


def _make_part(upscaler: Upscaler, video: _Video, segment: Segment, advance: Callable[[int], Any]) -> None:
    """Decode, upscale and encode one segment into its part file (which appears only when complete)."""
    assert video.info is not None and video.encoding is not None
    width, height = video.size
    with (
        atomic_writer(video.part(segment), overwrite=True) as f,
        PartEncoder(f, video.info, video.encoding, width, height) as encoder,
        _Background(decode_segment(video.info, segment), READ_AHEAD) as frames,
        _Sink(encoder.encode, WRITE_BEHIND) as sink,
    ):
        for pts, rgb in frames:
            out = upscaler.upscale(rgb)
            if out.shape[:2] != (height, width):  # the plan and the model disagree: cannot happen
                raise RuntimeError(f"upscaled frame {out.shape} is not {width}×{height}")
            sink.put(pts, out)
            advance(1)


def _finish(video: _Video, overwrite: bool, manifest: ManifestWriter | None) -> None:
    """Join `video`'s parts into its output when all exist; else leave it to the process making the rest."""
    assert video.info is not None and video.encoding is not None
    parts = [video.part(s) for s in video.segments]
    missing = sum(not p.exists() for p in parts)
    if missing:
        video.outcome = "skipped"
        video.reason = f"{missing} of its {len(parts)} segments are left to other processes, which join them"
        return
    try:
        with atomic_writer(video.dst, overwrite=overwrite) as f:
            join_parts(parts, video.info, video.encoding, video.size, f, video.dst.suffix)
    except FileExistsError:
        video.outcome, video.reason = "skipped", f"{video.dst} was made meanwhile (by another process)"
        return
    except (EsrganError, OSError) as e:
        if video.dst.exists() and not video.parts_dir.exists():  # type: ignore[union-attr]
            video.outcome, video.reason = "skipped", f"{video.dst} was made meanwhile (by another process)"
        else:
            video.outcome, video.reason = "failed", _message(video, e)
        return
    video.outcome = "done"
    if manifest is not None and video.recipe is not None:
        manifest.record(
            video.src,
            video.dst,
            video.recipe,
            input_bytes=file_size(video.src),
            seconds=time.perf_counter() - video.started,
        )
    shutil.rmtree(video.parts_dir, ignore_errors=True)  # type: ignore[arg-type]
    with contextlib.suppress(OSError):
        video.parts_dir.parent.rmdir()  # type: ignore[union-attr]  # only when no other video's parts remain


def _message(video: _Video, e: BaseException) -> str:
    text = f"{e.strerror or e}" if isinstance(e, OSError) else str(e)
    return text if str(video.src) in text else f"{video.src}: {text}"


def _summary(videos: list[_Video], mine: list[tuple[_Video, Segment]]) -> UpscaleSummary:
    """This process's videos (those with segments in its shard, and those that failed before planning)."""
    summary = UpscaleSummary()
    involved = {id(v) for v, _ in mine} | {id(v) for v in videos if v.info is None}
    for video in videos:
        if id(video) in involved and video.outcome != "run":
            summary.add(video.outcome, video.reason, video.src, video.dst)  # type: ignore[arg-type]
    return summary


# --------------------------------------------------------------------------------------------------
# the pipeline: decoding and encoding in their own threads, with bounded queues


class _Background:
    """Iterate `items` in a background thread, at most `ahead` items in advance; errors are re-raised in
    the consumer. Leaving the ``with`` block stops the thread."""

    _END = object()

    def __init__(self, items: Iterable[Any], ahead: int) -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="esrgan-decode", daemon=True)

    def _run(self) -> None:
        try:
            for item in self._items:
                if not put_unless(self._queue, (item, None), self._stop.is_set):
                    return
            put_unless(self._queue, (self._END, None), self._stop.is_set)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put_unless(self._queue, (self._END, e), self._stop.is_set)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Iterator[Any]:
        self._thread.start()
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            if error is not None:
                raise error
            if item is self._END:
                return
            yield item

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Sink:
    """Call ``consume(*item)`` for each `put` item in a background thread, at most `behind` items waiting;
    a consumer error is re-raised by the next `put` or on leaving the ``with`` block, which waits for the
    queue to drain (and, after an error in the block, drops what is left)."""

    _END = object()

    def __init__(self, consume: Callable[..., Any], behind: int) -> None:
        self._consume = consume
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=behind)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="esrgan-encode", daemon=True)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if self._error is None and not self._stop.is_set():
                try:
                    self._consume(*item)
                except BaseException as e:  # noqa: BLE001 - handed to the producer
                    self._error = e

    def put(self, *item: Any) -> None:
        if self._error is not None:
            raise self._error
        if not put_unless(self._queue, item, self._stop.is_set):
            raise RuntimeError("the encoder stopped")

    def __enter__(self) -> _Sink:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self._stop.set()
        put_unless(self._queue, self._END, lambda: not self._thread.is_alive())  # even when the queue is full
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error
