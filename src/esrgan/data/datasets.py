"""Training and validation datasets: HR folders, LR from paired folders or MATLAB bicubic on the fly.

Sample contract (both datasets): ``{"lq": Tensor, "gt": Tensor, "path": str}`` with ``lq`` and ``gt`` float32
``3×h×w`` / ``3×(h·scale)×(w·scale)`` RGB in [0, 1] and ``path`` the HR file. Files are read by
`esrgan.io.images.read_image` (bit depth from the file header): 8-bit pixels are divided by 255,
16-bit by 65535; gray images get three identical channels; alpha is dropped.

LR made on the fly is exactly the evaluation protocol (SPEC §6.4): the HR image is mod-cropped to the scale
and downscaled with `esrgan.ops.matlab_resize` (float64, MATLAB bicubic with antialiasing); with
``quantize_lr`` (the default) it is then rounded to the HR's integer levels as ``imwrite`` would, which for
8-bit images *is* `downscale_uint8`, so an LR folder written by ``esrgan prepare`` and the on-the-fly LR give
identical samples.

Training patches do not downscale the whole image: `matlab_downscale_crop` resizes only a window a few LR
pixels larger than the patch, which gives the same pixels as cropping the whole-image LR (the bicubic kernel
at ×1/s reaches less than 2 LR pixels beyond a pixel's own s×s block; tested at every position). Measured with
one thread, as in a worker (docs/benchmarks/data.md): 0.3 ms for a 32×32 ×4 patch against 2.5 ms for a whole
480×480 sub-image and ~50 ms for a 2040×1356 DIV2K image, while decoding the 480×480 PNG takes ~7 ms. So there
is no LR cache: it would save nothing measurable and cost memory in every worker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from torch.utils.data import Dataset

from esrgan.config import DataConfig
from esrgan.data.sampler import SampleKey, sample_rng
from esrgan.data.transforms import augment, draw_dihedral, to_tensor
from esrgan.errors import ConfigError, EsrganError, ImageError
from esrgan.io.folders import list_images
from esrgan.io.images import read_image  # also sets Pillow's pixel limit used by _header_size
from esrgan.ops.matlab_resize import downscale_uint8, imresize, modcrop, round_half_away

__all__ = [
    "PairedImageDataset",
    "ValidationDataset",
    "pair_images",
    "load_rgb",
    "as_float",
    "matlab_downscale",
    "matlab_downscale_crop",
]

logger = logging.getLogger(__name__)

# LR pixels of context around a patch when downscaling only a window (see the module docstring): the kernel
# reaches < 2 LR pixels past a pixel's block; 3 leaves slack.
_WINDOW_MARGIN = 3

Sample = dict[str, torch.Tensor | str]


# --------------------------------------------------------------------------------------------------
# files


def _lr_key(stem: str, scale: int) -> str:
    """Stem an LR file is matched by: BasicSR/DIV2K's ``0001x4`` matches the HR ``0001``."""
    return re.sub(rf"x{scale}$", "", stem)


def pair_images(
    hr_dirs: Sequence[str | Path], lr_dirs: Sequence[str | Path] | None, scale: int, *, what: str = "data"
) -> list[tuple[Path, Path | None]]:
    """``(hr_path, lr_path)`` for every HR image; ``lr_path`` is ``None`` without LR folders.

    LR files are matched to HR files by stem, with a trailing ``x{scale}`` on the LR stem allowed. Every HR
    file must have exactly one LR match; unmatched LR files are ignored (logged).
    """
    if not hr_dirs:
        raise ConfigError(f"{what}: no HR folders given (hr_dirs is empty)")
    if lr_dirs is not None and len(lr_dirs) != len(hr_dirs):
        raise ConfigError(
            f"{what}: {len(hr_dirs)} HR folders but {len(lr_dirs)} LR folders; give one per HR folder"
        )
    pairs: list[tuple[Path, Path | None]] = []
    for k, hr_dir in enumerate(hr_dirs):
        hr_files = list_images(hr_dir)
        if lr_dirs is None:
            pairs.extend((p, None) for p in hr_files)
            continue
        lr_dir = Path(lr_dirs[k])
        by_key: dict[str, Path] = {}
        for p in list_images(lr_dir):
            key = _lr_key(p.stem, scale)
            if key in by_key:
                raise EsrganError(
                    f"{lr_dir}: {by_key[key].name} and {p.name} both match the HR image {key!r}; keep one"
                )
            by_key[key] = p
        missing = [p.name for p in hr_files if p.stem not in by_key]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise EsrganError(
                f"{lr_dir}: no LR image for {', '.join(missing[:5])}{more} from {hr_dir} "
                f"(LR files are matched by name: NAME.ext or NAMEx{scale}.ext)"
            )
        extra = len(by_key) - len(hr_files)
        if extra > 0:
            logger.info("%s: %d LR images without an HR image are ignored", lr_dir, extra)
        pairs.extend((p, by_key[p.stem]) for p in hr_files)
    return pairs


def _header_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from the file header (cheap); full decode for files Pillow cannot open."""
    try:
        with PILImage.open(path) as im:
            width, height = im.size
        return height, width
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as e:  # e.g. TIFF via tifffile
        logger.debug("%s: Pillow cannot read the header (%s); decoding the file", path, e)
        pixels = load_rgb(path)
        return int(pixels.shape[0]), int(pixels.shape[1])


def load_rgb(path: str | Path) -> np.ndarray:
    """``H×W×3`` RGB ``uint8``/``uint16`` pixels of an image file (gray → 3 channels, alpha dropped).

    Raises `ImageError` naming the file if it cannot be read.
    """
    pixels = read_image(path).pixels
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels


def as_float(img: np.ndarray) -> np.ndarray:
    """Integer pixels → float32 in [0, 1] (÷255 for uint8, ÷65535 for uint16); float32 is passed through."""
    if img.dtype == np.uint8 or img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(np.iinfo(img.dtype).max)
    if img.dtype == np.float32:
        return img
    raise TypeError(f"expected uint8, uint16 or float32 pixels, got {img.dtype}")


# --------------------------------------------------------------------------------------------------
# MATLAB bicubic LR


def matlab_downscale(hr: np.ndarray, scale: int, *, quantize: bool = True) -> np.ndarray:
    """LR of an ``H×W×C`` uint8/uint16 image by MATLAB ``imresize(im2double(hr), 1/scale, 'bicubic')``.

    H and W must be multiples of ``scale`` (`modcrop` first). With ``quantize`` the result is clipped and
    rounded to the input's integer levels (``imwrite``; for uint8 this is `downscale_uint8`, the evaluation
    protocol) and keeps the input dtype; otherwise it is float32 in [0, 1] (clipped, not rounded).
    """
    if quantize and hr.dtype == np.uint8:
        return downscale_uint8(hr, scale)
    if hr.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"matlab_downscale expects uint8 or uint16 pixels, got {hr.dtype}")
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"image size {w}×{h} is not a multiple of {scale}; modcrop(hr, {scale}) first")
    top = float(np.iinfo(hr.dtype).max)
    lr = np.clip(imresize(hr.astype(np.float64) / top, 1.0 / scale), 0.0, 1.0)
    if quantize:
        return round_half_away(lr * top).astype(hr.dtype)
    return lr.astype(np.float32)


def matlab_downscale_crop(
    hr: np.ndarray, scale: int, top: int, left: int, size: int, *, quantize: bool = True
) -> np.ndarray:
    """``matlab_downscale(hr, scale)[top:top+size, left:left+size]``, computed from a window around the crop.

    ``hr`` must be mod-cropped to ``scale``; ``top``/``left``/``size`` are in LR pixels.
    """
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    if hr.shape[0] != h * scale or hr.shape[1] != w * scale:
        raise ValueError(
            f"image size {hr.shape[1]}×{hr.shape[0]} is not a multiple of {scale}; modcrop first"
        )
    if not (0 <= top and top + size <= h and 0 <= left and left + size <= w):
        raise ValueError(f"LR crop {size}×{size} at ({top}, {left}) is outside the {w}×{h} LR image")
    t0, l0 = max(top - _WINDOW_MARGIN, 0), max(left - _WINDOW_MARGIN, 0)
    t1, l1 = min(top + size + _WINDOW_MARGIN, h), min(left + size + _WINDOW_MARGIN, w)
    window = np.ascontiguousarray(hr[t0 * scale : t1 * scale, l0 * scale : l1 * scale])
    lr = matlab_downscale(window, scale, quantize=quantize)
    return lr[top - t0 : top - t0 + size, left - l0 : left - l0 + size]


def _crop_hr_to_lr(hr: np.ndarray, lq: np.ndarray, scale: int, hr_path: Path, lr_path: Path) -> np.ndarray:
    """Crop ``hr`` bottom/right to exactly ``scale ×`` the LR size (a mod-crop); else a clear error."""
    h, w = lq.shape[0] * scale, lq.shape[1] * scale
    if 0 <= hr.shape[0] - h < scale and 0 <= hr.shape[1] - w < scale:
        return hr[:h, :w]
    raise ImageError(
        f"{hr_path}: HR is {hr.shape[1]}×{hr.shape[0]} but its LR {lr_path} is {lq.shape[1]}×{lq.shape[0]}; "
        f"at scale {scale} the HR must be {w}×{h} (up to {scale - 1} px more) — wrong scale or wrong pairing?"
    )


# --------------------------------------------------------------------------------------------------
# datasets


def _check_patch_sizes(cfg: DataConfig) -> None:
    if cfg.scale < 1 or cfg.gt_size < cfg.scale or cfg.gt_size % cfg.scale:
        raise ConfigError(
            f"data.gt_size ({cfg.gt_size}) must be a positive multiple of data.scale ({cfg.scale})"
        )


class PairedImageDataset(Dataset[Sample]):
    """Random aligned LR/HR training patches (BasicSR ``PairedImageDataset`` semantics, SPEC §6.6).

    Item ``SampleKey(item, epoch)`` (a plain ``int`` means epoch 0) is image ``item``: an LR patch of
    ``gt_size/scale`` pixels at a uniformly random position of the LR image, the HR patch of ``gt_size`` at
    ``scale ×`` that position, then the same random flips/transpose on both (8 dihedral maps with
    ``use_hflip`` and ``use_rot``). All random numbers come from `sample_rng(seed, epoch, index)`, so an item
    is a pure function of its key — in any worker, after any restart.

    LR comes from ``cfg.lr_dirs`` (matched by file stem, ``NAMEx{scale}`` allowed), or, with
    ``cfg.lr_dirs=None``, from the mod-cropped HR by MATLAB bicubic (see the module docstring).

    Args:
        cfg: ``hr_dirs``, ``lr_dirs``, ``scale``, ``gt_size``, ``use_hflip``, ``use_rot`` are used.
        seed: seed of the crops and flips (use the sampler's seed).
        quantize_lr: round on-the-fly LR to the image's integer levels, as a saved LR file would be.
        verify: read every file header now and fail early (naming the file) for unreadable images and
            images smaller than the patch, instead of hours into training.
    """

    def __init__(
        self, cfg: DataConfig, *, seed: int = 0, quantize_lr: bool = True, verify: bool = True
    ) -> None:
        _check_patch_sizes(cfg)
        if int(seed) != seed or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        self.scale = cfg.scale
        self.gt_size = cfg.gt_size
        self.lq_size = cfg.gt_size // cfg.scale
        self.use_hflip = cfg.use_hflip
        self.use_rot = cfg.use_rot
        self.seed = int(seed)
        self.quantize_lr = quantize_lr
        self.pairs = pair_images(cfg.hr_dirs, cfg.lr_dirs, cfg.scale, what="data.hr_dirs")
        self._cache: dict[Path, np.ndarray] = {}
        self._cache_budget = cfg.cache_mb * 2**20
        if verify:
            self.verify()

    def __len__(self) -> int:
        return len(self.pairs)

    def verify(self) -> None:
        """Check every file's header: readable, and large enough for one patch (rotation-invariant check)."""
        s, p = self.scale, self.lq_size
        for hr_path, lr_path in self.pairs:
            hr_size = _header_size(hr_path)
            if lr_path is None:
                if min(hr_size) // s < p:
                    raise EsrganError(
                        f"{hr_path}: {hr_size[1]}×{hr_size[0]} is smaller than the training patch "
                        f"data.gt_size={self.gt_size} (after cropping to a multiple of {s}); "
                        "remove the image or lower data.gt_size"
                    )
                continue
            lr_size = _header_size(lr_path)
            if min(lr_size) < p:
                raise EsrganError(
                    f"{lr_path}: LR {lr_size[1]}×{lr_size[0]} is smaller than the LR patch {p}×{p} "
                    f"(data.gt_size={self.gt_size} / scale {s}); remove the pair or lower data.gt_size"
                )
            if not all(0 <= a - s * b < s for a, b in zip(sorted(hr_size), sorted(lr_size), strict=True)):
                raise EsrganError(
                    f"{hr_path}: HR {hr_size[1]}×{hr_size[0]} does not match its LR {lr_path} "
                    f"({lr_size[1]}×{lr_size[0]}) at scale {s}; wrong scale or wrong pairing?"
                )

    def __getitem__(self, key: SampleKey | tuple[int, int] | int) -> Sample:
        index, epoch = (int(key), 0) if isinstance(key, (int, np.integer)) else (int(key[0]), int(key[1]))
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} images")
        rng = sample_rng(self.seed, epoch, index)
        hr_path, lr_path = self.pairs[index]
        s, p = self.scale, self.lq_size

        hr = self._load(hr_path)
        if lr_path is None:
            hr = modcrop(hr, s)
            h_lq, w_lq = hr.shape[0] // s, hr.shape[1] // s
            self._check_lr_size(h_lq, w_lq, hr_path)
            top = int(rng.integers(0, h_lq - p, endpoint=True))
            left = int(rng.integers(0, w_lq - p, endpoint=True))
            lq = matlab_downscale_crop(hr, s, top, left, p, quantize=self.quantize_lr)
        else:
            lq_full = self._load(lr_path)
            hr = _crop_hr_to_lr(hr, lq_full, s, hr_path, lr_path)
            self._check_lr_size(lq_full.shape[0], lq_full.shape[1], lr_path)
            top = int(rng.integers(0, lq_full.shape[0] - p, endpoint=True))
            left = int(rng.integers(0, lq_full.shape[1] - p, endpoint=True))
            lq = lq_full[top : top + p, left : left + p]
        gt = hr[top * s : top * s + self.gt_size, left * s : left * s + self.gt_size]

        transform = draw_dihedral(rng, use_hflip=self.use_hflip, use_rot=self.use_rot)
        return {
            "lq": to_tensor(augment(as_float(lq), transform)),
            "gt": to_tensor(augment(as_float(gt), transform)),
            "path": str(hr_path),
        }

    def _load(self, path: Path) -> np.ndarray:
        """`load_rgb`, through the in-memory cache while it is under ``data.cache_mb`` (read-only arrays)."""
        pixels = self._cache.get(path)
        if pixels is None:
            pixels = load_rgb(path)
            if pixels.nbytes <= self._cache_budget:
                pixels.setflags(write=False)  # a cached image must never be changed in place
                self._cache[path] = pixels
                self._cache_budget -= pixels.nbytes
        return pixels

    def _check_lr_size(self, h_lq: int, w_lq: int, path: Path) -> None:
        if h_lq < self.lq_size or w_lq < self.lq_size:
            raise ImageError(
                f"{path}: LR size {w_lq}×{h_lq} is smaller than the LR patch {self.lq_size}×{self.lq_size} "
                f"(data.gt_size={self.gt_size} / scale {self.scale}); remove it or lower data.gt_size"
            )


class ValidationDataset(Dataset[Sample]):
    """Whole validation images from ``cfg.val_hr_dirs`` (and ``cfg.val_lr_dirs``), no randomness.

    HR is mod-cropped to the scale and its LR made by MATLAB bicubic, rounded to the image's integer levels —
    the benchmark protocol (SPEC §6.4, §7.6) — or read from the matching LR file, in which case HR is cropped
    to ``scale ×`` the LR size (SPEC §6.6). Items have different sizes: load with batch size 1.
    """

    def __init__(self, cfg: DataConfig) -> None:
        self.scale = cfg.scale
        self.pairs = pair_images(cfg.val_hr_dirs, cfg.val_lr_dirs, cfg.scale, what="data.val_hr_dirs")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} images")
        hr_path, lr_path = self.pairs[index]
        s = self.scale
        hr = load_rgb(hr_path)
        if lr_path is None:
            hr = modcrop(hr, s)
            if hr.shape[0] == 0 or hr.shape[1] == 0:
                raise ImageError(f"{hr_path}: image is smaller than the scale {s}")
            lq = matlab_downscale(hr, s)
        else:
            lq = load_rgb(lr_path)
            hr = _crop_hr_to_lr(hr, lq, s, hr_path, lr_path)
        return {"lq": to_tensor(as_float(lq)), "gt": to_tensor(as_float(hr)), "path": str(hr_path)}
