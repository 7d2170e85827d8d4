"""Image interpolation, the baseline ESRGAN compares network interpolation with (SPEC §9).

    I = (1 − α)·I_PSNR + α·I_GAN        pixel by pixel, α ∈ [0, 1]

`blend` is the one formula, for numpy arrays and torch tensors alike; integer results are rounded half to
even (`np.rint`, as `torch.round` and the Upscaler's output conversion), so image interpolation of saved
images (`interpolate_images`, in float64) and of float model outputs (`esrgan.eval.sweep`, before
quantisation) round the same way. (Network interpolation, the blend of weights, is
`esrgan.weights.interpolate_models`.)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from esrgan.errors import EsrganError
from esrgan.io.images import WRITE_FORMATS, Image, read_image, write_image

__all__ = ["blend", "interpolate_images", "interpolate_image_folders", "FolderBlendSummary"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise EsrganError(f"alpha must be between 0 and 1, got {alpha}")
    return alpha


def blend(a: T, b: T, alpha: float) -> T:
    """``(1 − alpha)·a + alpha·b``: float arrays or tensors of one shape (image interpolation, SPEC §9)."""
    return (1.0 - _check_alpha(alpha)) * a + alpha * b  # type: ignore[operator]


def interpolate_images(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 − alpha)·a + alpha·b`` for two arrays of the same shape and dtype.

    uint8/uint16 inputs give the same integer type (rounded half to even, exact for alpha 0 and 1); float
    inputs give float64 → the input float dtype. Raises `EsrganError` for mismatched shapes or dtypes.
    """
    alpha = _check_alpha(alpha)
    if a.shape != b.shape:
        raise EsrganError(f"cannot blend images of different shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise EsrganError(f"cannot blend images of different types {a.dtype} and {b.dtype}")
    mixed = blend(a.astype(np.float64), b.astype(np.float64), alpha)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(np.rint(mixed), 0, np.iinfo(a.dtype).max).astype(a.dtype)
    return mixed.astype(a.dtype)


@dataclass
class FolderBlendSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file in A, why)


def interpolate_image_folders(
    a_dir: str | os.PathLike[str],
    b_dir: str | os.PathLike[str],
    alpha: float,
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> FolderBlendSummary:
    """Blend every image of `a_dir` with the file of the same name in `b_dir`; write to `out_dir`, same name.

    Images must agree in size, gray/RGB, bit depth and alpha channel (an alpha channel is blended too). The
    output keeps A's ICC profile and EXIF. A file of A without a partner in B, or one that does not match it,
    is skipped with the reason (the others are still written); no image in A at all is an error.
    """

    alpha = _check_alpha(alpha)
    a_dir, b_dir, out_dir = Path(a_dir), Path(b_dir), Path(out_dir)
    for folder in (a_dir, b_dir):
        if not folder.is_dir():
            raise EsrganError(f"{folder}: not a folder")
    files = sorted(p for p in a_dir.iterdir() if p.is_file() and p.suffix.lower() in WRITE_FORMATS)
    if not files:
        raise EsrganError(f"{a_dir}: no images to blend")
    if out_dir.resolve() in (a_dir.resolve(), b_dir.resolve()):
        raise EsrganError(f"the output folder {out_dir} must differ from the input folders")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = FolderBlendSummary()
    for path_a in files:
        path_b = b_dir / path_a.name
        if not path_b.is_file():
            summary.skipped.append((path_a, f"no {path_a.name} in {b_dir}"))
            continue
        img_a, img_b = read_image(path_a), read_image(path_b)
        if (img_a.alpha is None) != (img_b.alpha is None):
            summary.skipped.append((path_a, f"only one of {path_a} and {path_b} has an alpha channel"))
            continue
        try:
            pixels = interpolate_images(img_a.pixels, img_b.pixels, alpha)
            mask = None
            if img_a.alpha is not None and img_b.alpha is not None:
                mask = interpolate_images(img_a.alpha, img_b.alpha, alpha)
        except EsrganError as exc:
            summary.skipped.append((path_a, f"{path_a} and {path_b}: {exc}"))
            continue
        out = out_dir / path_a.name
        write_image(
            out,
            Image(pixels=pixels, alpha=mask, icc_profile=img_a.icc_profile, exif=img_a.exif),
            overwrite=overwrite,
        )
        summary.written.append(out)
    for path, why in summary.skipped:
        logger.warning("skipped %s: %s", path, why)
    return summary
