"""Sub-image extraction for fast training I/O, as BasicSR's ``extract_subimages.py`` (SPEC §6.5).

Each image is cut with a sliding window of ``crop_size`` moved by ``step``: top-left corners at
``0, step, 2·step, … ≤ H − crop_size`` (``np.arange(0, H − crop_size + 1, step)``), plus one window flush with
the bottom edge if the rows left over, ``H − (last + crop_size)``, are more than ``thresh_size``; the same
for the width. Windows are numbered row by row from 1 and written as ``{name}_s{idx:03d}.png`` with PNG
compression level 3 (BasicSR's value). ``name`` is the file stem with a trailing ``x2``/``x3``/``x4``/``x8``
after a digit removed, so sub-images cut from DIV2K's ``0001x4.png`` share their names with the HR ones
(BasicSR removes those letters anywhere in the name, so "box4" became "bo"; here only such a suffix goes).

With ``scale`` and ``lr_dst_dir``, the HR image is first mod-cropped to ``scale``, its whole-image LR is made
by MATLAB bicubic (`esrgan.data.datasets.matlab_downscale`, the evaluation protocol) and LR sub-images of
``crop_size/scale`` are cut at ``position/scale`` — the same pixels BasicSR gets by cutting DIV2K's official
bicubic LR with crop 120 / step 60, and what ``PairedImageDataset`` computes on the fly.

Differences from BasicSR, on purpose: output is always PNG (BasicSR keeps the input extension, which would
recompress JPEGs); images smaller than ``crop_size`` are skipped and reported (BasicSR crashes on them);
existing outputs are never replaced without ``overwrite``; each file is written to a temporary name and
moved into place, so an interrupted run leaves no truncated PNG; alpha channels are dropped.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from esrgan.data.datasets import matlab_downscale
from esrgan.errors import EsrganError, ImageError
from esrgan.io.folders import list_images
from esrgan.io.images import read_image, write_encoded
from esrgan.ops.matlab_resize import modcrop

__all__ = ["PrepareSummary", "extract_subimages", "subimage_positions", "subimage_name"]

logger = logging.getLogger(__name__)

_SCALE_SUFFIX = re.compile(r"(?<=\d)x(2|3|4|8)$")  # DIV2K/Flickr2K LR names: 0001x4


def subimage_positions(length: int, crop_size: int, step: int, thresh_size: int = 0) -> list[int]:
    """Window starts along one axis, exactly as BasicSR: ``[]`` if ``length < crop_size``."""
    if length < crop_size:
        return []
    positions = list(range(0, length - crop_size + 1, step))
    if length - (positions[-1] + crop_size) > thresh_size:
        positions.append(length - crop_size)
    return positions


def subimage_name(stem: str, index: int) -> str:
    """``{stem}_s{index:03d}.png``, a trailing DIV2K scale suffix (``x2``/``x3``/``x4``/``x8``) removed."""
    return f"{_SCALE_SUFFIX.sub('', stem)}_s{index:03d}.png"


@dataclass
class PrepareSummary:
    """What `extract_subimages` did."""

    images: int = 0  # images cut into sub-images
    subimages: int = 0  # HR sub-images written
    lr_subimages: int = 0  # LR sub-images written
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (image, why): too small
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (image, error message): unreadable


@dataclass(frozen=True)
class _Job:
    dst_dir: Path
    lr_dst_dir: Path | None
    crop_size: int
    step: int
    thresh_size: int
    scale: int | None
    compression_level: int
    overwrite: bool


def _write_png(path: Path, pixels: np.ndarray, job: _Job) -> None:
    bgr = pixels[..., ::-1] if pixels.ndim == 3 else pixels  # OpenCV encodes BGR
    ok, data = cv2.imencode(
        ".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, job.compression_level]
    )
    if not ok:
        raise ImageError(f"{path}: OpenCV could not encode the sub-image as PNG")
    write_encoded(path, data.tobytes(), overwrite=job.overwrite)


def _extract_one(path: Path, job: _Job) -> tuple[int, int, str | None]:
    """Cut one image; returns ``(hr_written, lr_written, skip_reason)``."""
    image = read_image(path)
    if image.alpha is not None:
        logger.info("%s: alpha channel dropped", path)
    pixels = image.pixels if job.scale is None else modcrop(image.pixels, job.scale)
    h, w = pixels.shape[:2]
    rows = subimage_positions(h, job.crop_size, job.step, job.thresh_size)
    cols = subimage_positions(w, job.crop_size, job.step, job.thresh_size)
    if not rows or not cols:
        cropped = " after cropping to a multiple of the scale" if job.scale is not None else ""
        return 0, 0, f"{w}×{h}{cropped} is smaller than the crop size {job.crop_size}"
    lr = None
    if job.lr_dst_dir is not None and job.scale is not None:
        lr = matlab_downscale(pixels, job.scale)
    c = job.crop_size
    index = hr_written = lr_written = 0
    for top in rows:
        for left in cols:
            index += 1
            name = subimage_name(path.stem, index)
            _write_png(job.dst_dir / name, pixels[top : top + c, left : left + c], job)
            hr_written += 1
            if lr is not None and job.lr_dst_dir is not None and job.scale is not None:
                s = job.scale
                _write_png(
                    job.lr_dst_dir / name, lr[top // s : (top + c) // s, left // s : (left + c) // s], job
                )
                lr_written += 1
    return hr_written, lr_written, None


def _existing_outputs(folder: Path, names: set[str]) -> list[str]:
    if not folder.is_dir():
        return []
    pattern = re.compile(r"(.*)_s\d{3,}\.png")
    found = []
    for entry in os.scandir(folder):
        m = pattern.fullmatch(entry.name)
        if m and m.group(1) in names:
            found.append(entry.name)
    return sorted(found)


def extract_subimages(
    src_dir: str | os.PathLike[str],
    dst_dir: str | os.PathLike[str],
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    *,
    scale: int | None = None,
    lr_dst_dir: str | os.PathLike[str] | None = None,
    compression_level: int = 3,
    overwrite: bool = False,
    num_workers: int = 1,
    progress: bool = True,
) -> PrepareSummary:
    """Cut every image directly in ``src_dir`` into ``crop_size`` sub-images in ``dst_dir`` (see module doc).

    Args:
        src_dir: folder of images (not recursive).
        dst_dir: output folder (created); must differ from ``src_dir``.
        crop_size, step, thresh_size: BasicSR's sliding window (HR defaults 480 / 240 / 0; BasicSR 2019 used
            ``thresh_size`` 48).
        scale, lr_dst_dir: give both to also write MATLAB-bicubic LR sub-images (``crop_size/scale`` pixels,
            same names) to ``lr_dst_dir``; ``crop_size`` and ``step`` must then be multiples of ``scale``.
        compression_level: PNG compression 0–9 (BasicSR: 3).
        overwrite: replace existing sub-images; without it, any existing ``{name}_s*.png`` for an input image
            is an error raised before anything is written.
        num_workers: processes cutting images in parallel (1 = in this process).
        progress: show a tqdm progress bar.

    Returns:
        a `PrepareSummary`; unreadable images are listed in ``failed`` and too-small ones in ``skipped``, the
        others are still processed.

    Raises:
        EsrganError: bad arguments, missing/empty ``src_dir``, name clashes, existing outputs.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    lr_dst = Path(lr_dst_dir) if lr_dst_dir is not None else None
    for name, value, low in (("crop_size", crop_size, 1), ("step", step, 1), ("thresh_size", thresh_size, 0)):
        if int(value) != value or value < low:
            raise EsrganError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0 <= compression_level <= 9:
        raise EsrganError(f"compression_level must be between 0 and 9, got {compression_level}")
    if num_workers < 1:
        raise EsrganError(f"num_workers must be >= 1, got {num_workers}")
    if (scale is None) != (lr_dst is None):
        raise EsrganError("scale and lr_dst_dir go together: give both to write LR sub-images, or neither")
    if scale is not None:
        if int(scale) != scale or scale < 1:
            raise EsrganError(f"scale must be a positive integer, got {scale!r}")
        if crop_size % scale or step % scale:
            raise EsrganError(
                f"crop_size ({crop_size}) and step ({step}) must be multiples of the scale ({scale}) so that "
                "LR sub-images line up with HR pixels"
            )
    files = list_images(src)
    outputs = [dst] + ([lr_dst] if lr_dst is not None else [])
    if len({p.resolve() for p in [src, *outputs]}) != len(outputs) + 1:
        raise EsrganError(
            f"the source and output folders must all differ: {src}, {', '.join(map(str, outputs))}"
        )

    names: dict[str, Path] = {}
    for path in files:
        base = _SCALE_SUFFIX.sub("", path.stem)
        if base in names:
            raise EsrganError(
                f"{names[base].name} and {path.name} would both write {base}_s*.png; rename one of them"
            )
        names[base] = path
    if not overwrite:
        for folder in outputs:
            clash = _existing_outputs(folder, set(names))
            if clash:
                more = f" and {len(clash) - 5} more" if len(clash) > 5 else ""
                raise EsrganError(
                    f"{folder}: sub-images already exist ({', '.join(clash[:5])}{more}); "
                    "use --overwrite (overwrite=True) to replace them, or another output folder"
                )
    for folder in outputs:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EsrganError(f"{folder}: cannot create the output folder ({e.strerror or e})") from e

    job = _Job(dst, lr_dst, int(crop_size), int(step), int(thresh_size), scale, compression_level, overwrite)
    summary = PrepareSummary()

    def record(path: Path, result: tuple[int, int, str | None]) -> None:
        hr_n, lr_n, skipped = result
        if skipped is not None:
            summary.skipped.append((path, skipped))
        else:
            summary.images += 1
        summary.subimages += hr_n
        summary.lr_subimages += lr_n

    with tqdm(total=len(files), unit="image", desc="extract", disable=not progress) as bar:
        if num_workers == 1:
            for path in files:
                try:
                    record(path, _extract_one(path, job))
                except ImageError as e:
                    summary.failed.append((path, str(e)))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=num_workers) as pool:
                futures = {pool.submit(_extract_one, path, job): path for path in files}
                for future in as_completed(futures):
                    path = futures[future]
                    try:
                        record(path, future.result())
                    except ImageError as e:
                        summary.failed.append((path, str(e)))
                    bar.update(1)
    summary.skipped.sort()
    summary.failed.sort()
    return summary
