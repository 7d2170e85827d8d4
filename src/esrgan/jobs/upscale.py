"""The `esrgan upscale` job: many input files → upscaled output files, one bad file never stops the rest.

Decisions:

- Inputs: files (any extension; `read_image` decides), folders (non-recursive; files with an image extension,
  hidden files skipped) and glob patterns (image extensions only). A path that does not exist, or a list that
  yields no image at all, is an error before any work.
- Output name: ``{stem}_{suffix}.{ext}`` in the output folder (``{stem}.{ext}`` for an empty suffix). The
  default extension is the input's; inputs whose format we cannot write (e.g. ``.gif``) get ``.png``.
- An image that the chosen format cannot hold (16-bit into JPEG/WebP/BMP, alpha into JPEG/BMP) fails with a
  clear message suggesting ``--ext png`` — we do not silently drop bits or transparency. This is checked right
  after reading, before the model runs.
- Two inputs that would write the same output, or an output that would replace its own input, are an error
  before any work. Existing outputs are skipped (with the reason) unless `overwrite`.
- Pipeline: a background thread reads and decodes the next images (at most `READ_AHEAD` waiting) and another
  encodes and writes finished ones (at most `WRITE_BEHIND` waiting) while the model runs in the calling
  thread. PyTorch, the image codecs and zlib release the GIL, so the three overlap; the queues bound the
  memory. Results are reported in input order whatever the timing. Ctrl-C stops reading, lets the writer
  finish the images already upscaled and re-raises. Writes are atomic, so no partial output ever exists; a
  killed process may leave a hidden temporary file, which the next run over the same outputs deletes.
- Sharding: `Shard` i/n takes positions i, i+n, i+2n, … of the whole input list, so n processes — torchrun
  workers (RANK / WORLD_SIZE), or runs started by hand with ``--shard i/n`` on machines that share the output
  folder — split one job without talking to each other. Every process checks the whole plan (duplicate
  output names, outputs replacing inputs) so they all agree, and shards are cut from the whole list, not from
  the work left, for the same reason.
- Manifest (`esrgan.jobs.manifest`): given a `Recipe`, every finished output is recorded. An existing
  output recorded with the same recipe, from an input with the same name and size, is "done earlier" and not
  made again, even with `overwrite` — rerunning the same command resumes it. An existing output recorded with
  another recipe or input, or not recorded at all, is skipped with the reason unless `overwrite`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from esrgan.errors import EsrganError
from esrgan.inference.streaming import check_output_size, needs_streaming, upscale_to_png
from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import (
    Image,
    check_writable,
    read_image,
    write_image,
)
from esrgan.jobs.manifest import ManifestWriter, Recipe, read_manifest
from esrgan.jobs.plan import (
    Outcome,
    Shard,
    check_plan,
    file_size,
    make_output_folder,
    output_path,
    output_verdict,
    remove_leftover_temporary_files,
    shard_positions,
)

logger = logging.getLogger(__name__)

# Decoded images waiting for the model, and upscaled images waiting to be encoded (they are scale² larger).
READ_AHEAD = 2
WRITE_BEHIND = 1
_POLL_SECONDS = 0.1


@dataclass
class UpscaleSummary:
    """What `upscale_files` did, in input order: ``done`` (input, output) pairs made now, ``skipped`` and
    ``failed`` (input, reason), and ``earlier`` (input, output) pairs that the manifest shows were made
    before with the same recipe."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    earlier: list[tuple[Path, Path]] = field(default_factory=list)

    def add(self, outcome: Outcome, reason: str, src: Path, dst: Path) -> None:
        """Record one input's outcome: done and earlier keep the output, skipped and failed the reason."""
        if outcome in ("done", "earlier"):
            getattr(self, outcome).append((src, dst))
        else:
            getattr(self, outcome).append((src, reason))


# --------------------------------------------------------------------------------------------------
# the job


def upscale_files(
    upscaler: Upscaler,
    inputs: list[Path],
    out_dir: Path,
    *,
    suffix: str = "out",
    ext: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    shard: Shard | None = None,
    recipe: Recipe | None = None,
    threads: bool = True,
) -> UpscaleSummary:
    """Upscale every input (those of `shard` when given) into `out_dir`; a failing file is recorded and the
    others still run.

    `recipe` (from `esrgan.jobs.manifest.recipe_for`) turns the manifest on: each finished output is
    recorded, and outputs recorded earlier with the same recipe are not made again. ``threads=False`` does
    everything in the calling thread, one file after another (the same results, without the overlap).

    Returns an `UpscaleSummary` of this shard's inputs. Raises `EsrganError` only for problems found before
    any work: an unwritable extension, two inputs with the same output, an output that is its own input, an
    unusable output folder or manifest. Ctrl-C (`KeyboardInterrupt`) is re-raised once the background
    threads have stopped.
    """
    out_dir = Path(out_dir)
    outputs = [output_path(p, out_dir, suffix, ext) for p in inputs]
    check_plan(inputs, outputs)  # the whole list, in every shard: all processes agree
    make_output_folder(out_dir, outputs)

    positions = shard_positions(len(inputs), shard) if shard is not None else range(len(inputs))
    mine = [(inputs[i], outputs[i]) for i in positions]
    remove_leftover_temporary_files(out_dir, {dst.name for _, dst in mine})
    records = read_manifest(out_dir) if recipe is not None else {}

    outcomes: dict[int, tuple[Outcome, str]] = {}
    jobs: list[_Job] = []
    for number, (src, dst) in enumerate(mine):
        verdict, reason = output_verdict(src, dst, records.get(dst.name), recipe, overwrite=overwrite)
        if verdict == "run":
            jobs.append(_Job(number, src, dst))
        else:
            outcomes[number] = (verdict, reason)

    manifest = None
    if recipe is not None and jobs:
        manifest = ManifestWriter(out_dir, *((shard.index, shard.count) if shard else (0, 1)))
    desc = "upscale" if shard is None else f"upscale {shard}"
    bar = tqdm(total=len(mine), initial=len(outcomes), desc=desc, unit="image", disable=not progress)
    lock = threading.Lock()

    def finish(job: _Job, result: tuple[bool, Any]) -> None:
        ok, message = result
        with lock:
            outcomes[job.number] = ("done", "") if ok else ("failed", message)
            bar.update(1)

    def show(job: _Job) -> None:
        bar.set_postfix_str(job.src.name, refresh=False)

    stages = _Stages(upscaler, overwrite=overwrite, recipe=recipe, manifest=manifest)
    try:
        if threads:
            _run_threaded(jobs, stages, finish, show)
        else:
            _run_inline(jobs, stages, finish, show)
    finally:
        bar.close()
        if manifest is not None:
            manifest.close()

    summary = UpscaleSummary()
    for number, (src, dst) in enumerate(mine):
        summary.add(*outcomes[number], src, dst)
    return summary


@dataclass
class _Job:
    number: int  # position among this process's inputs
    src: Path
    dst: Path
    started: float = 0.0
    input_bytes: int = 0


class _Stages:
    """The three steps of one file; each raises on failure (see `_attempt`)."""

    def __init__(
        self,
        upscaler: Upscaler,
        *,
        overwrite: bool,
        recipe: Recipe | None,
        manifest: ManifestWriter | None,
    ) -> None:
        self.upscaler = upscaler
        self.overwrite = overwrite
        self.recipe = recipe
        self.manifest = manifest

    def read(self, job: _Job) -> Image:
        job.started = time.perf_counter()
        image = read_image(job.src)
        check_writable(job.dst, image)  # fail before spending time on the model
        check_output_size(self.upscaler, image, job.dst)
        job.input_bytes = file_size(job.src)
        return image

    def compute(self, job: _Job, image: Image) -> Image | None:
        """The upscaled image, or None when it was too big for memory and went to `job.dst` in bands."""
        if needs_streaming(self.upscaler, image, job.dst):
            upscale_to_png(self.upscaler, image, job.dst, overwrite=self.overwrite)
            return None
        return self.upscaler.upscale_image(image)

    def write(self, job: _Job, image: Image | None) -> None:
        if image is not None:
            write_image(job.dst, image, overwrite=self.overwrite)
        if self.manifest is None or self.recipe is None:
            return
        try:
            self.manifest.record(
                job.src,
                job.dst,
                self.recipe,
                input_bytes=job.input_bytes,
                seconds=time.perf_counter() - job.started,
            )
        except OSError as e:
            raise EsrganError(
                f"{job.dst} was written but {self.manifest.path} could not record it ({e.strerror or e}); "
                "a rerun will treat it as an existing file of unknown origin"
            ) from e


def _attempt(step: Callable[..., Any], job: _Job, *args: Any) -> tuple[bool, Any]:
    """(True, result) or (False, message): an error in one file is reported, never raised."""
    try:
        return True, step(job, *args)
    except EsrganError as e:
        logger.debug("%s: %s", job.src, e)  # reported once, in the summary at the end
        return False, str(e)
    except Exception as e:  # a bug or an unexpected library error: keep its traceback in the log, go on
        logger.exception("unexpected error while upscaling %s", job.src)
        return False, f"unexpected error: {type(e).__name__}: {e}"


_Finish = Callable[[_Job, tuple[bool, Any]], None]


def _run_inline(jobs: list[_Job], stages: _Stages, finish: _Finish, show: Callable[[_Job], None]) -> None:
    for job in jobs:
        show(job)
        result = _attempt(stages.read, job)
        if result[0]:
            result = _attempt(stages.compute, job, result[1])
        if result[0]:
            result = _attempt(stages.write, job, result[1])
        finish(job, result)


_END = object()


def _run_threaded(jobs: list[_Job], stages: _Stages, finish: _Finish, show: Callable[[_Job], None]) -> None:
    """`_run_inline` with reading in one background thread and writing in another; the model runs here."""
    stop = threading.Event()
    decoded: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    upscaled: queue.Queue[Any] = queue.Queue(maxsize=WRITE_BEHIND)
    crashed: list[BaseException] = []

    def read_all() -> None:
        try:
            for job in jobs:
                if stop.is_set():
                    return
                if not put_unless(decoded, (job, _attempt(stages.read, job)), stop.is_set):
                    return
        except BaseException as e:  # only a bug gets here: hand it to the main thread
            crashed.append(e)
        finally:
            put_unless(decoded, _END, stop.is_set)

    def write_all() -> None:
        try:
            while (item := upscaled.get()) is not _END:
                job, image = item
                finish(job, _attempt(stages.write, job, image))
        except BaseException as e:
            crashed.append(e)

    reader = threading.Thread(target=read_all, name="esrgan-upscale-read", daemon=True)
    writer = threading.Thread(target=write_all, name="esrgan-upscale-write", daemon=True)
    reader.start()
    writer.start()
    try:
        while (item := decoded.get()) is not _END:
            job, result = item
            show(job)
            if result[0]:
                result = _attempt(stages.compute, job, result[1])
            if not result[0]:
                finish(job, result)
                continue
            # From here the writer holds the only references, so each image is freed as soon as it is used.
            del item
            if not put_unless(upscaled, (job, result[1]), lambda: not writer.is_alive()):
                break
            del result
    finally:
        # Normal end or Ctrl-C: the reader stops at its next file; the writer writes what is already upscaled.
        stop.set()
        put_unless(upscaled, _END, lambda: not writer.is_alive())
        writer.join()
        reader.join()
    if crashed:
        raise crashed[0]


def put_unless(q: queue.Queue[Any], item: object, give_up: Callable[[], bool]) -> bool:
    """Put `item` into the bounded queue `q`, waiting for room unless `give_up()` becomes true first."""
    while not give_up():
        try:
            q.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
