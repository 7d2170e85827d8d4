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
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from esrgan.errors import EsrganError
from esrgan.inference.image_io import WRITE_FORMATS, check_writable, read_image, write_image
from esrgan.inference.upscaler import Upscaler

logger = logging.getLogger(__name__)

# Extensions picked up from folders and glob patterns.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
_GLOB_CHARS = frozenset("*?[")


@dataclass
class UpscaleSummary:
    """What `upscale_files` did: ``done`` (input, output) pairs, ``skipped`` and ``failed`` (input,
    reason)."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders (non-recursive) and glob patterns into a sorted-per-spec, de-duplicated file
    list.

    Raises `EsrganError` for a path that does not exist or when nothing at all is found.
    """
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and _is_image_name(p))
            if not matches:
                logger.warning("no images in folder %s", path)
        elif path.is_file():
            matches = [path]
        elif _GLOB_CHARS & set(spec):
            matches = sorted(
                Path(p) for p in glob.glob(spec) if Path(p).is_file() and _is_image_name(Path(p))
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
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise EsrganError(f"no images found in {' '.join(specs)} (looked for {exts})")
    return unique


def output_path(input: Path, out_dir: Path, suffix: str, ext: str | None = None) -> Path:
    """``out_dir / f"{stem}_{suffix}.{ext}"`` (no ``_`` for an empty suffix).

    `ext` (with or without the dot) defaults to the input's extension, or ``png`` if we cannot write that
    format. Raises `EsrganError` for an output extension we cannot write.
    """
    input = Path(input)
    if ext is None:
        ext = input.suffix if input.suffix.lower() in WRITE_FORMATS else ".png"
    ext = ext if ext.startswith(".") else "." + ext
    if ext.lower() not in WRITE_FORMATS:
        choices = ", ".join(sorted(e.lstrip(".") for e in WRITE_FORMATS))
        raise EsrganError(f"cannot write {ext!r} files; choose one of: {choices}")
    name = f"{input.stem}_{suffix}" if suffix else input.stem
    return Path(out_dir) / f"{name}{ext}"


def upscale_files(
    upscaler: Upscaler,
    inputs: list[Path],
    out_dir: Path,
    *,
    suffix: str = "out",
    ext: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> UpscaleSummary:
    """Upscale every input into `out_dir`; a failing file is recorded and the others still run.

    Returns an `UpscaleSummary`. Raises `EsrganError` only for problems found before any work: an unwritable
    extension, two inputs with the same output, an output that is its own input, an unusable output folder.
    """
    out_dir = Path(out_dir)
    outputs = [output_path(p, out_dir, suffix, ext) for p in inputs]
    _check_plan(inputs, outputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise EsrganError(f"{out_dir}: exists and is not a folder; choose another output folder (-o)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EsrganError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from e

    summary = UpscaleSummary()
    bar = tqdm(list(zip(inputs, outputs, strict=True)), desc="upscale", unit="image", disable=not progress)
    for src, dst in bar:
        bar.set_postfix_str(src.name, refresh=False)
        if dst.exists() and not overwrite:
            summary.skipped.append((src, f"{dst} exists (use --overwrite to replace it)"))
            continue
        try:
            image = read_image(src)
            check_writable(dst, image)  # fail before spending time on the model
            write_image(dst, upscaler.upscale_image(image), overwrite=overwrite)
        except EsrganError as e:
            logger.warning("%s", e)
            summary.failed.append((src, str(e)))
            continue
        except Exception as e:  # a bug or an unexpected library error: keep its traceback in the log, go on
            logger.exception("unexpected error while upscaling %s", src)
            summary.failed.append((src, f"unexpected error: {type(e).__name__}: {e}"))
            continue
        summary.done.append((src, dst))
    return summary


def _check_plan(inputs: list[Path], outputs: list[Path]) -> None:
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
