"""Small result folders and studies for the MOS tests (imported by tests/test_mos_*.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_NAMES = ("baby", "bird", "butterfly")
METHOD_NAMES = ("ESRGAN", "SRGAN")


def hr_pixels(index: int, height: int = 32, width: int = 24) -> np.ndarray:
    """A structured RGB test image (gradients and a checkerboard, so nearest-neighbour ×4 shows blocks)."""
    y, x = np.mgrid[0:height, 0:width]
    checker = ((y // 3 + x // 3) % 2) * 60
    r = (x * 255 // max(width - 1, 1) + 40 * index) % 256
    g = (y * 255 // max(height - 1, 1)) % 256
    b = (checker + 30 * index) % 256
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def make_folders(root: Path, names: tuple[str, ...] = IMAGE_NAMES) -> dict[str, Path]:
    """``hr/`` (``NAME.png``), ``lr/`` (``NAMEx4.png``), ``ESRGAN/`` (``NAME_out.png``), ``SRGAN/``
    (``NAME_rlt.png``) under ``root``; the SR "results" are HR variants of the same size."""
    folders = {key: root / key for key in ("hr", "lr", *METHOD_NAMES)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        hr = hr_pixels(i)
        Image.fromarray(hr).save(folders["hr"] / f"{name}.png")
        lr = hr[::4, ::4]
        Image.fromarray(np.ascontiguousarray(lr)).save(folders["lr"] / f"{name}x4.png")
        Image.fromarray(np.clip(hr.astype(int) + 7, 0, 255).astype(np.uint8)).save(
            folders["ESRGAN"] / f"{name}_out.png"
        )
        Image.fromarray((hr // 2 + 40).astype(np.uint8)).save(folders["SRGAN"] / f"{name}_rlt.png")
    return folders


def make_study(root: Path, **kwargs):
    """A study of 3 images × (ESRGAN, SRGAN, nearest, hr) = 12 items, 2 calibration examples."""
    from esrgan.mos import create_study

    folders = make_folders(root / "data")
    kwargs.setdefault("calibration_count", 2)
    kwargs.setdefault("seed", 1234)
    return create_study(
        root / "study",
        {name: folders[name] for name in METHOD_NAMES},
        folders["hr"],
        **kwargs,
    )
