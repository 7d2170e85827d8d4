"""The benchmark protocol's pieces (SPEC §7): pairing LR/SR files with HR files, reading 8-bit images,
cropping HR to the SR size, the bicubic and nearest baselines, and scoring one image.

`esrgan.eval.benchmark` runs models through this protocol; `esrgan.eval.evaluate` scores existing SR
folders with it; the MOS study reuses the pairing.
"""

from __future__ import annotations

import logging
import math
import platform
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from esrgan import __version__, metrics
from esrgan.errors import EsrganError, ImageError
from esrgan.io.images import read_image
from esrgan.ops.matlab_resize import imresize, round_half_away

logger = logging.getLogger(__name__)

__all__ = [
    "GRAY_MODES",
    "MAX_MODCROP",
    "conventions",
    "crop_to",
    "match_by_stem",
    "match_channels",
    "name_list",
    "read_uint8",
    "score_image",
    "software_versions",
    "upscale_bicubic",
    "upscale_nearest",
]

#: An HR image is cropped (bottom/right) to the LR×scale or SR size only if it is larger by less than this
#: many pixels per axis: a mod-crop by any modulus up to 24 (BasicSR's GTmod12 included), never a wrong-scale
#: pairing.
MAX_MODCROP = 24


# --------------------------------------------------------------------------------------------------
# files


# Tags that name the role of a file rather than the image ("img_001_SRF_4_HR" / "..._LR").
_ROLE_TAG = re.compile(r"[_\-.](hr|gt|lr|sr)$", re.IGNORECASE)
# What may follow an image's stem in another folder: a separator and anything ("_out", "_rlt", "_ESRGAN",
# "_x4_SR"), or a scale tag glued on ("babyx4", "baby_x4").
_SUFFIX = re.compile(r"^(?:[_\-. ].*|[xX]\d+.*)$")


def _normalise_stem(stem: str) -> str:
    return _ROLE_TAG.sub("", stem).lower()


def match_by_stem(keys: Sequence[str], paths: Sequence[Path]) -> tuple[dict[str, Path], list[Path]]:
    """Match files to image names (stems of the reference folder) by stem.

    A file matches the key with the same stem (ignoring case and a role tag ``_HR``/``_GT``/``_LR``/``_SR``);
    otherwise the *longest* key that its stem starts with, followed by a separator (``baby_out``,
    ``baby_rlt``, ``baby_ESRGAN``, ``baby_x4_SR``) or a scale tag (``babyx4``). ``img_1`` never matches
    ``img_10``.

    Returns:
        ``({key: path}, unmatched_paths)``.

    Raises:
        EsrganError: two files match the same key (the message names both).
    """
    norm_keys: dict[str, str] = {}
    for k in keys:
        norm_keys.setdefault(_normalise_stem(k), k)
    by_length = sorted(norm_keys, key=len, reverse=True)
    matched: dict[str, Path] = {}
    unmatched: list[Path] = []
    for path in paths:
        stem = _normalise_stem(path.stem)
        key = norm_keys.get(stem)
        if key is None:
            for nk in by_length:
                if stem.startswith(nk) and _SUFFIX.match(path.stem[len(nk) :]):
                    key = norm_keys[nk]
                    break
        if key is None:
            unmatched.append(path)
        elif key in matched:
            raise EsrganError(
                f"two files match the image {key!r}: {matched[key].name} and {path.name}; "
                "remove one or rename it so that each image has exactly one match"
            )
        else:
            matched[key] = path
    return matched, unmatched


def name_list(paths: Iterable[Path | str], limit: int = 8) -> str:
    items = [p.name if isinstance(p, Path) else str(p) for p in paths]
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


GRAY_MODES = ("replicate", "keep")


def read_uint8(path: Path, *, gray_mode: str = "replicate") -> tuple[np.ndarray, bool]:
    """Read an 8-bit image, alpha dropped; returns ``(pixels, was_gray)``.

    ``pixels`` is ``H×W×3`` uint8 RGB, or ``H×W`` for a gray file with ``gray_mode="keep"``.
    """
    img = read_image(path)
    pixels = img.pixels
    if pixels.dtype != np.uint8:
        raise ImageError(
            f"{path}: {img.bit_depth}-bit image; the benchmark protocol is 8-bit "
            "(convert the file to 8-bit PNG)"
        )
    if img.alpha is not None:
        logger.info("%s: alpha channel ignored", path)
    if pixels.ndim == 2:
        return (pixels if gray_mode == "keep" else np.repeat(pixels[:, :, None], 3, axis=2)), True
    return pixels, False


def match_channels(img: np.ndarray, like: np.ndarray, path: Path) -> np.ndarray:
    """``img`` with the channel layout of ``like``: gray → 3 identical channels, or RGB → gray.

    RGB → gray takes the one plane if the three are identical, else BT.601 luma with the Upscaler's weights
    (0.299, 0.587, 0.114), rounded — what ``esrgan upscale`` writes for a gray input.
    """
    if img.ndim == like.ndim:
        return img
    if like.ndim == 3:
        return np.repeat(img[:, :, None], 3, axis=2)
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
        return np.ascontiguousarray(img[..., 0])
    logger.info("%s: RGB image paired with a gray one; converted with BT.601 luma weights", path)
    luma = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.floor(luma + 0.5), 0, 255).astype(np.uint8)


def crop_to(hr: np.ndarray, height: int, width: int, hr_path: Path, other: str) -> np.ndarray:
    """Crop ``hr`` bottom/right to ``height × width`` if that is a mod-crop; else a clear error."""
    h, w = hr.shape[:2]
    if (h, w) == (height, width):
        return hr
    if 0 <= h - height < MAX_MODCROP and 0 <= w - width < MAX_MODCROP:
        return hr[:height, :width]
    raise ImageError(
        f"{hr_path}: HR is {w}×{h} but {other} needs {width}×{height}; that is not a mod-crop "
        f"(at most {MAX_MODCROP - 1} px less per side) — is the scale or the file pairing wrong?"
    )


# --------------------------------------------------------------------------------------------------
# baselines


def upscale_bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(im2double(lr), scale, 'bicubic')`` written as uint8 (clip, round half away)."""
    up = imresize(lr.astype(np.float64) / 255.0, float(scale))
    return round_half_away(np.clip(up, 0.0, 1.0) * 255.0).astype(np.uint8)


def upscale_nearest(lr: np.ndarray, scale: int) -> np.ndarray:
    """Pixel replication (MATLAB ``imresize(lr, scale, 'nearest')`` for an integer scale)."""
    return np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


# --------------------------------------------------------------------------------------------------
# scoring


def score_image(
    sr: np.ndarray,
    hr: np.ndarray,
    *,
    crop_border: int,
    y_rounding: bool = True,
    niqe: bool = True,
) -> tuple[float, float, float | None, float]:
    """``(psnr, ssim, niqe, rmse)`` of one uint8 RGB SR against its HR (module docstring for conventions).

    NIQE is ``None`` (with a warning) when not requested or undefined for the image: fewer than two 96×96
    blocks after the crop, or only flat blocks (:class:`esrgan.metrics.NiqeUndefinedError`).
    """
    p = metrics.psnr(sr, hr, crop_border=crop_border, y_channel=True, y_rounding=y_rounding)
    s = metrics.ssim(sr, hr, crop_border=crop_border, y_channel=True, y_rounding=y_rounding)
    rmse = math.sqrt(metrics.mse(sr, hr, crop_border=crop_border, y_channel=True, y_rounding=True))
    n: float | None = None
    if niqe:
        try:
            n = metrics.niqe(sr, crop_border=crop_border)
        except metrics.NiqeUndefinedError as e:
            logger.warning("NIQE left out: %s", e)
    return p, s, n, rmse


def conventions(*, y_rounding: bool, gray_mode: str = "replicate") -> dict[str, str]:
    """The metric conventions, in words, for the JSON record and the Markdown header."""
    return {
        "psnr": "10*log10(255^2/MSE), float64, on uint8 images, mean over images",
        "ssim": "Wang et al. ssim_index.m: 11x11 Gaussian sigma 1.5, valid filtering, L=255",
        "y_channel": "ITU-R BT.601 Y as MATLAB rgb2ycbcr on RGB",
        "y_rounding": "Y rounded to uint8 (MATLAB on uint8 images)"
        if y_rounding
        else "float Y, not rounded (BasicSR)",
        "niqe": "MATLAB niqe_release on the rounded uint8 Y of the SR, same border crop",
        "rmse": "PIRM 2018: sqrt(mean over images of MSE on the rounded uint8 Y), same border crop",
        "gray_images": "kept gray: resize, model (output to gray, BT.601 weights) and metrics on the gray "
        "plane, no rgb2ycbcr (MATLAB scripts)"
        if gray_mode == "keep"
        else "replicated to 3 identical RGB channels (model input and Y; BasicSR)",
        "sr_quantisation": "model output clamped to [0,1], x255, rounded to uint8 before scoring",
    }


def software_versions() -> dict[str, str]:
    """Versions of the software that computed a result (recorded in the results JSON)."""
    import scipy
    import torch

    return {
        "esrgan": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
    }
