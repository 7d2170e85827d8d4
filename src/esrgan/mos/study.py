"""MOS study folders: :func:`create_study` builds one from SR result folders, :func:`load_study` reads it.

A study folder holds::

    study.json        the manifest: which opaque id is which (image, method); never served to raters
    votes.sqlite      raters and their votes (:mod:`esrgan.mos.db`)
    images/<id>.png   every image a rater sees, named by a random 16-hex-digit id

Blindness: every image is decoded and re-encoded as an 8-bit RGB PNG without metadata, so neither the file
name, the file format, an embedded software tag nor an ICC profile can tell a rater which method made it
(images are shown as sRGB). Ids are random, not derived from names.

What is rated (as in SRGAN §3.6): every image of the set in the version of every given method, plus two
reference versions, ``"nearest"`` (the LR enlarged by pixel replication) and ``"hr"`` (the original), so that
the report can check each rater against the ends of the scale. Calibration items are separate copies (their
own ids) of the nearest and HR versions of a few images, shown before the test with their fixed scores
(nearest = 1, HR = 5). SRGAN calibrated on images outside the test set; pass ``calibration_hr`` for that,
otherwise a few test images are drawn at random.

The LR behind ``"nearest"`` is read from ``nearest_from`` (files matched by name, ``babyx4.png`` finds
``baby.png``) or made from the HR the way the benchmark does: mod-crop, MATLAB bicubic ``imresize(1/scale)``,
rounded to uint8 (:func:`esrgan.ops.matlab_resize.downscale_uint8`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np

from esrgan.errors import EsrganError
from esrgan.eval.evaluate import pair_folders
from esrgan.eval.protocol import match_by_stem, name_list, read_uint8, upscale_nearest
from esrgan.io.folders import list_images
from esrgan.mos.db import init_db
from esrgan.ops.matlab_resize import downscale_uint8, modcrop

logger = logging.getLogger(__name__)

__all__ = [
    "HR",
    "NEAREST",
    "REFERENCE_METHODS",
    "Study",
    "StudyItem",
    "create_study",
    "load_study",
    "rater_order",
]

NEAREST = "nearest"
HR = "hr"
REFERENCE_METHODS = (NEAREST, HR)
#: Fixed scores of the calibration versions (SRGAN §3.6: nearest neighbour = 1, HR = 5).
CALIBRATION_SCORES = {NEAREST: 1, HR: 5}

MANIFEST = "study.json"
DATABASE = "votes.sqlite"
IMAGES = "images"
FORMAT = "esrgan-mos-study"
FORMAT_VERSION = 1
ID_HEX_DIGITS = 16
#: An HR image may be larger than the SR results by a mod-crop (cropped bottom/right), never more.
MAX_MODCROP = 24
MAX_METHOD_NAME = 64


@dataclass(frozen=True)
class StudyItem:
    """One image a rater sees: ``image`` (the HR file's stem) in the version of ``method``.

    ``fixed_score`` is set for calibration items only (1 for nearest, 5 for HR).
    """

    id: str
    image: str
    method: str
    fixed_score: int | None = None


@dataclass(frozen=True)
class Study:
    """A study folder read back by :func:`load_study`.

    ``methods`` lists the rated methods: the given ones in command-line order, then ``"nearest"`` and
    ``"hr"``. ``items`` are the rated items (every image × method), ``calibration`` the calibration items.
    """

    root: Path
    scale: int
    seed: int
    methods: tuple[str, ...]
    images: tuple[str, ...]
    items: tuple[StudyItem, ...]
    calibration: tuple[StudyItem, ...]
    created: str

    @property
    def db_path(self) -> Path:
        return self.root / DATABASE

    @property
    def compared_methods(self) -> tuple[str, ...]:
        """The rated methods without the two references."""
        return tuple(m for m in self.methods if m not in REFERENCE_METHODS)

    def image_path(self, item_id: str) -> Path:
        """The file of a (rated or calibration) item; the id must be one of the study's ids."""
        return self.root / IMAGES / f"{item_id}.png"

    def item(self, item_id: str) -> StudyItem | None:
        """The rated or calibration item with this id, or ``None``."""
        return self._by_id.get(item_id)

    @cached_property
    def _by_id(self) -> dict[str, StudyItem]:
        return {it.id: it for it in (*self.items, *self.calibration)}


def rater_order(study: Study, rater_id: str) -> list[str]:
    """The order in which ``rater_id`` sees the rated items: a shuffle seeded by the study seed and the id.

    Deterministic (so it can be recomputed and checked), different for every rater, and stored with the rater
    when they register (:mod:`esrgan.mos.db`), so a resumed session continues in the same order.
    """
    digest = hashlib.sha256(f"{study.seed}:{rater_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    ids = sorted(it.id for it in study.items)
    rng.shuffle(ids)
    return ids


# --------------------------------------------------------------------------------------------------
# creating a study


def _check_methodname_list(methods: Mapping[str, str | Path]) -> None:
    if not methods:
        raise EsrganError("a study needs at least one method (--method NAME=DIR)")
    seen: dict[str, str] = {}
    for name in methods:
        if not name or not name.strip() or len(name) > MAX_METHOD_NAME or not name.isprintable():
            raise EsrganError(f"method name {name!r}: use 1 to {MAX_METHOD_NAME} printable characters")
        if name.lower() in REFERENCE_METHODS:
            raise EsrganError(
                f"method name {name!r} is reserved: the study adds the references 'nearest' and 'hr' itself"
            )
        if name.lower() in seen:
            raise EsrganError(f"method names {seen[name.lower()]!r} and {name!r} clash; name them apart")
        seen[name.lower()] = name


def _pair_method(name: str, folder: Path, hr_dir: Path) -> dict[str, Path]:

    try:
        return {stem: sr for stem, sr, _ in pair_folders(folder, hr_dir)}
    except EsrganError as e:
        raise EsrganError(f"--method {name}={folder}: {e}") from None


def _pair_lr(lr_dir: Path, hr_files: Sequence[Path]) -> dict[str, Path]:

    stems = [p.stem for p in hr_files]
    matched, unmatched = match_by_stem(stems, list_images(lr_dir))
    missing = [s for s in stems if s not in matched]
    if unmatched or missing:
        parts = []
        if unmatched:
            parts.append(f"{len(unmatched)} LR file(s) match no HR image: {name_list(unmatched)}")
        if missing:
            parts.append(f"no LR file for {len(missing)} HR image(s): {name_list(missing)}")
        raise EsrganError(
            f"--nearest-from {lr_dir}: {'; '.join(parts)} (files pair by name: baby.png ↔ babyx4.png)"
        )
    return matched


def _read_rgb(path: Path) -> np.ndarray:

    pixels, _ = read_uint8(path)  # H×W×3 uint8, gray replicated, alpha dropped
    return pixels


def _fit_hr(hr: np.ndarray, shape: tuple[int, int], hr_path: Path, what: str) -> np.ndarray:
    h, w = hr.shape[:2]
    if (h, w) == shape:
        return hr
    if 0 <= h - shape[0] < MAX_MODCROP and 0 <= w - shape[1] < MAX_MODCROP:
        return hr[: shape[0], : shape[1]]
    raise EsrganError(
        f"{hr_path}: HR is {w}×{h} but {what} is {shape[1]}×{shape[0]}; that is not a mod-crop — "
        "are the folders or the scale wrong?"
    )


def _nearest_version(hr: np.ndarray, lr_path: Path | None, scale: int, hr_path: Path) -> np.ndarray:
    """The LR (read, or made from ``hr`` by MATLAB bicubic) enlarged ×scale by pixel replication."""

    h, w = hr.shape[:2]
    if lr_path is None:
        if h % scale or w % scale:
            raise EsrganError(
                f"{hr_path}: the image size {w}×{h} (as the SR results have it) is not a multiple of the "
                f"scale {scale}; is --scale right?"
            )
        lr = downscale_uint8(hr, scale)
    else:
        lr = _read_rgb(lr_path)
    up = upscale_nearest(lr, scale)
    if up.shape[:2] != (h, w):
        raise EsrganError(
            f"{lr_path}: LR {lr.shape[1]}×{lr.shape[0]} ×{scale} is {up.shape[1]}×{up.shape[0]}, but the SR "
            f"results are {w}×{h}; is --scale right?"
        )
    return up


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image as PILImage

    # No pnginfo, no ICC profile, no EXIF: nothing in the file but pixels.
    PILImage.fromarray(np.ascontiguousarray(pixels), mode="RGB").save(path, format="PNG")


def create_study(
    study_dir: str | Path,
    methods: Mapping[str, str | Path],
    hr_dir: str | Path,
    *,
    nearest_from: str | Path | None = None,
    scale: int = 4,
    calibration_count: int = 3,
    calibration_hr: str | Path | None = None,
    seed: int | None = None,
) -> Study:
    """Build a study folder (module docstring) and return it as :func:`load_study` would.

    Args:
        study_dir: the folder to create; it must not exist or be empty.
        methods: ``{name: folder of SR results}``; files pair with the HR images by name (``baby.png``,
            ``baby_out.png``, ``babyx4.png`` ↔ ``baby.png``) and every HR image needs one result per method.
            The names ``nearest`` and ``hr`` are reserved for the references.
        hr_dir: the ground-truth images; their stems name the images.
        nearest_from: a folder of LR images for the nearest-neighbour reference; default: made from the HR.
        scale: the SR factor (for the nearest reference).
        calibration_count: how many images are shown as calibration examples (nearest and HR versions).
        calibration_hr: a separate folder of HR images for calibration (SRGAN used images outside the test);
            their nearest versions are made from them. Default: ``calibration_count`` test images at random.
        seed: the study seed (calibration draw, per-rater orders); default: random.

    Raises:
        EsrganError: unmatched or missing files (listed by name), sizes that disagree, a bad method name, an
            existing non-empty ``study_dir``.
    """

    study_dir = Path(study_dir)
    if study_dir.exists() and (not study_dir.is_dir() or any(study_dir.iterdir())):
        raise EsrganError(f"{study_dir}: exists and is not an empty folder; choose a new study folder")
    if int(scale) != scale or scale < 1:
        raise EsrganError(f"scale must be a positive integer, got {scale!r}")
    if calibration_count < 1:
        raise EsrganError(f"calibration_count must be at least 1, got {calibration_count}")
    _check_methodname_list(methods)
    hr_dir = Path(hr_dir)
    hr_files = list_images(hr_dir)
    pairs = {name: _pair_method(name, Path(folder), hr_dir) for name, folder in methods.items()}
    lr_files = _pair_lr(Path(nearest_from), hr_files) if nearest_from is not None else {}
    seed = secrets.randbits(32) if seed is None else int(seed)
    rng = random.Random(seed)
    if calibration_hr is not None:
        calib_files = list_images(Path(calibration_hr))[:calibration_count]
    else:
        calib_files = sorted(rng.sample(hr_files, min(calibration_count, len(hr_files))))

    used: set[str] = set()

    def new_id() -> str:
        while True:
            item_id = secrets.token_hex(ID_HEX_DIGITS // 2)
            if item_id not in used:
                used.add(item_id)
                return item_id

    # Build in a sibling folder and rename at the end, so a failure (an unreadable image) leaves nothing.
    study_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = study_dir.parent / f".{study_dir.name}.partial-{secrets.token_hex(4)}"
    (tmp / IMAGES).mkdir(parents=True)
    try:
        items: list[StudyItem] = []
        for hr_path in hr_files:
            image = hr_path.stem
            versions: dict[str, np.ndarray] = {}
            shape: tuple[int, int] | None = None
            for name in methods:
                sr = _read_rgb(pairs[name][image])
                if shape is None:
                    shape = sr.shape[:2]
                elif sr.shape[:2] != shape:
                    first = next(iter(methods))
                    raise EsrganError(
                        f"{pairs[name][image]}: {sr.shape[1]}×{sr.shape[0]}, but {first}'s result for "
                        f"{image!r} is {shape[1]}×{shape[0]}; all versions of an image must have one size "
                        "(a different size would tell raters which method made it)"
                    )
                versions[name] = sr
            assert shape is not None
            hr = _fit_hr(_read_rgb(hr_path), shape, hr_path, "the SR results")
            versions[NEAREST] = _nearest_version(hr, lr_files.get(image), scale, hr_path)
            versions[HR] = hr
            for name, pixels in versions.items():
                item = StudyItem(new_id(), image, name)
                _write_png(tmp / IMAGES / f"{item.id}.png", pixels)
                items.append(item)
        calibration: list[StudyItem] = []
        rated_file = {(it.image, it.method): tmp / IMAGES / f"{it.id}.png" for it in items}
        for hr_path in calib_files:
            if calibration_hr is not None:
                hr = np.ascontiguousarray(modcrop(_read_rgb(hr_path), scale))
                nearest = _nearest_version(hr, None, scale, hr_path)
            for name in (NEAREST, HR):
                item = StudyItem(new_id(), hr_path.stem, name, CALIBRATION_SCORES[name])
                target = tmp / IMAGES / f"{item.id}.png"
                if calibration_hr is not None:
                    _write_png(target, nearest if name == NEAREST else hr)
                else:  # the test image's own reference versions, under new ids
                    shutil.copyfile(rated_file[(hr_path.stem, name)], target)
                calibration.append(item)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "scale": int(scale),
            "seed": seed,
            "methods": [*methods, NEAREST, HR],
            "images": [p.stem for p in hr_files],
            "sources": {
                "hr": str(hr_dir.resolve()),
                "nearest_from": str(Path(nearest_from).resolve()) if nearest_from is not None else None,
                "calibration_hr": str(Path(calibration_hr).resolve()) if calibration_hr is not None else None,
                "methods": {name: str(Path(folder).resolve()) for name, folder in methods.items()},
            },
            "items": [{"id": it.id, "image": it.image, "method": it.method} for it in items],
            "calibration": [
                {"id": it.id, "image": it.image, "method": it.method, "score": it.fixed_score}
                for it in calibration
            ],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
        init_db(tmp / DATABASE, study_id=f"{seed}:{manifest['created']}")
        if study_dir.exists():
            study_dir.rmdir()  # empty, checked above
        tmp.rename(study_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("study %s: %d rated items, %d calibration items", study_dir, len(items), len(calibration))
    return load_study(study_dir)


# --------------------------------------------------------------------------------------------------
# reading a study


def load_study(study_dir: str | Path) -> Study:
    """Read ``study_dir/study.json`` and check that every image file and the database are there.

    Raises:
        EsrganError: not a study folder, an unknown format version, or a missing file.
    """
    root = Path(study_dir)
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise EsrganError(
            f"{root}: not a MOS study folder (no {MANIFEST}); make one with `esrgan mos create`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EsrganError(f"{path}: unreadable study manifest ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EsrganError(f"{path}: not an esrgan MOS study manifest")
    if data.get("version") != FORMAT_VERSION:
        raise EsrganError(
            f"{path}: study format version {data.get('version')!r}; this esrgan reads {FORMAT_VERSION}"
        )
    try:
        items = tuple(StudyItem(str(d["id"]), str(d["image"]), str(d["method"])) for d in data["items"])
        calibration = tuple(
            StudyItem(str(d["id"]), str(d["image"]), str(d["method"]), int(d["score"]))
            for d in data["calibration"]
        )
        study = Study(
            root=root.resolve(),
            scale=int(data["scale"]),
            seed=int(data["seed"]),
            methods=tuple(str(m) for m in data["methods"]),
            images=tuple(str(i) for i in data["images"]),
            items=items,
            calibration=calibration,
            created=str(data["created"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EsrganError(f"{path}: damaged study manifest ({type(e).__name__}: {e})") from e
    ids = [it.id for it in (*study.items, *study.calibration)]
    if len(set(ids)) != len(ids) or not all(_is_item_id(i) for i in ids):
        raise EsrganError(f"{path}: damaged study manifest (duplicate or malformed item ids)")
    missing = [i for i in ids if not study.image_path(i).is_file()]
    if missing:
        raise EsrganError(f"{root / IMAGES}: {len(missing)} image file(s) missing, e.g. {missing[0]}.png")
    if not study.db_path.is_file():
        raise EsrganError(f"{study.db_path}: the votes database is missing")
    return study


def _is_item_id(text: str) -> bool:
    return len(text) == ID_HEX_DIGITS and all(c in "0123456789abcdef" for c in text)
