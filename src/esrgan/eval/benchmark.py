"""Benchmark runner: PSNR/SSIM (Y), NIQE, PIRM RMSE and timing of models and baselines on benchmark sets.

Protocol (SPEC §7, §7.6; the one of the published ×4 tables):

1. HR images are mod-cropped to the scale (bottom/right), then downscaled with MATLAB bicubic
   (:func:`esrgan.ops.matlab_resize.downscale_uint8`: ``im2double`` → ``imresize(1/scale)`` → uint8), unless
   an LR folder is given (files matched by stem; ``babyx4.png`` or ``baby_LR.png`` find ``baby.png``), in
   which case the HR is cropped to exactly ``scale ×`` the LR size.
2. Each method turns the uint8 LR into a uint8 SR of the HR size: ``"bicubic"`` = MATLAB bicubic ×scale,
   clipped and rounded like ``imwrite``; ``"nearest"`` = pixel replication (= MATLAB ``imresize(…,
   'nearest')`` for integer scales); ``"hr"`` = the ground truth itself (a reference for NIQE); a model runs
   through :class:`esrgan.inference.upscaler.Upscaler` (clamp, ×255, round).
3. With ``back_projection = N > 0`` every method gets a second row ``"<method>+BP<N>"``: its SR after N
   iterations of :func:`esrgan.ops.back_projection.back_project` (as the PIRM scripts: on the saved uint8 SR,
   result written back to uint8).
4. Metrics per image on the uint8 images, ``crop_border`` (default = scale) pixels removed: PSNR and SSIM on
   MATLAB BT.601 Y (``y_rounding=True``: Y rounded to uint8 as MATLAB does for uint8 images — the published
   tables; ``False``: BasicSR's float Y), NIQE of the SR (MATLAB ``niqe_release``), PIRM RMSE (rounded Y,
   always) and seconds per image (the method itself: model forward incl. tiling, or the resize; a model
   first runs once untimed on the first image, so device start-up is not counted; back-projection time is
   added for ``+BP`` rows). NIQE is left out (``None``) where it is undefined: fewer than two 96×96 blocks
   after the crop, or flat blocks only. Dataset scores are means over images; the dataset RMSE is PIRM's
   ``sqrt(mean MSE)``.

Grayscale images (Set14 ``bridge.png``): with ``gray_mode="replicate"`` (default) they are replicated to 3
identical channels for the model and for the Y computation (what BasicSR does by reading with OpenCV
``IMREAD_COLOR``). With ``gray_mode="keep"`` they stay gray end to end, as in the MATLAB benchmark scripts:
``imresize`` on the gray plane, the model's output turned back to gray by the Upscaler (BT.601 weights), and
PSNR/SSIM/NIQE on the gray values themselves (those scripts skip ``rgb2ycbcr`` for 1-channel images). Y
compresses 0…255 to 16…235, so the gray-plane PSNR is ``20·log10(255/219)`` ≈ 1.32 dB *lower* for the same
error: bicubic ×4 on Set14 reads 26.09 dB / 0.7042 with "replicate" and 25.99 / 0.7024 with "keep" — the
latter is the published 26.00 / 0.7027 (ESRGAN supp. Table 2; SRGAN Table 2 has 25.99). 16-bit images are
refused: the protocol is 8-bit.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from esrgan.errors import ConfigError, EsrganError, ImageError

if TYPE_CHECKING:
    import torch.nn as nn

    from esrgan.eval.report import Comparison

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "IMAGE_EXTENSIONS",
    "BenchmarkSettings",
    "BenchmarkResult",
    "DatasetSpec",
    "ImageScore",
    "MethodSummary",
    "conventions",
    "run_benchmark",
    "list_images",
    "match_by_stem",
    "read_uint8",
    "score_image",
    "summarize",
    "upscale_bicubic",
    "upscale_nearest",
]

BASELINES = ("bicubic", "nearest", "hr")
#: ``on_image(dataset, image, hr, lr, outputs)`` of :func:`run_benchmark`.
ImageCallback = Callable[[str, str, np.ndarray, np.ndarray, Mapping[str, np.ndarray]], None]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: An HR image is cropped (bottom/right) to the LR×scale or SR size only if it is larger by less than this
#: many pixels per axis: a mod-crop by any modulus up to 24 (BasicSR's GTmod12 included), never a wrong-scale
#: pairing.
MAX_MODCROP = 24


# --------------------------------------------------------------------------------------------------
# settings and results


@dataclass(frozen=True)
class BenchmarkSettings:
    """Options of :func:`run_benchmark` (all optional).

    Attributes:
        scale: SR factor. ``None``: the models' common ``scale`` (they must agree), or 4 with baselines only.
        crop_border: pixels removed from each side before PSNR/SSIM/NIQE/RMSE; ``None`` = scale.
        y_rounding: MATLAB uint8 Y (default, published tables) or float Y (BasicSR) for PSNR/SSIM.
        niqe: compute NIQE of every SR (the slowest metric; it needs two 96×96 blocks after the crop, else
            ``None``).
        back_projection: N > 0 adds a ``"<method>+BP<N>"`` row per method (module docstring).
        back_projection_variant: ``"reverse_filter"`` (ESRGAN PIRM) or ``"ibp"``.
        tile, tile_overlap, device, half: passed to the :class:`~esrgan.inference.upscaler.Upscaler` of
            each model.
        precision: the models' precision, "fp32" by default so that tables are reproducible on any machine
            ("auto", "bf16", "fp16" as in the Upscaler; `half` means "fp16").
        save_images_dir: save every SR as ``<dir>/<dataset>/<method>/<stem>.png``.
        overwrite: replace existing saved SR images (otherwise the run refuses to start).
        progress: tqdm progress bar over the images.
        comparisons: keep small zoomed crops per image for :func:`esrgan.eval.report.write_html_report`.
        gray_mode: ``"replicate"`` gray images to RGB (BasicSR) or ``"keep"`` them gray (MATLAB scripts, the
            published Set14 numbers); module docstring.
    """

    scale: int | None = None
    crop_border: int | None = None
    y_rounding: bool = True
    niqe: bool = True
    back_projection: int = 0
    back_projection_variant: str = "reverse_filter"
    tile: int | str = 0
    tile_overlap: int = 16
    device: str | None = None
    half: bool = False
    precision: str = "fp32"
    save_images_dir: Path | None = None
    overwrite: bool = False
    progress: bool = True
    comparisons: bool = True
    gray_mode: str = "replicate"


@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark set: HR folder and, optionally, a folder of ready-made LR images."""

    name: str
    hr_dir: Path
    lr_dir: Path | None = None


@dataclass(frozen=True)
class ImageScore:
    """Scores of one method on one image. ``niqe``/``seconds`` are ``None`` when not computed."""

    dataset: str
    image: str
    method: str
    psnr: float
    ssim: float
    niqe: float | None
    rmse: float
    seconds: float | None
    height: int
    width: int


@dataclass(frozen=True)
class MethodSummary:
    """Scores of one method on one dataset: means over images; ``rmse`` is PIRM's ``sqrt(mean MSE)``."""

    dataset: str
    method: str
    images: int
    psnr: float
    ssim: float
    niqe: float | None
    rmse: float
    seconds: float | None


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` and :func:`~esrgan.eval.evaluate.evaluate_folders` return.

    ``scores`` has one row per (dataset, image, method) in run order; ``settings`` is a JSON-ready record of
    the protocol (scale, crop, Y convention, LR source, versions, ...); ``comparisons`` holds the zoomed crops
    for the HTML report (not serialised).
    """

    scores: list[ImageScore]
    settings: dict[str, Any]
    comparisons: list[Comparison] = field(default_factory=list, repr=False)

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(s.dataset for s in self.scores))

    def methods(self) -> list[str]:
        return list(dict.fromkeys(s.method for s in self.scores))

    def summaries(self) -> list[MethodSummary]:
        """Per (dataset, method) means, datasets and methods in run order."""
        return summarize(self.scores)

    def summary(self, dataset: str, method: str) -> MethodSummary:
        for s in self.summaries():
            if s.dataset == dataset and s.method == method:
                return s
        raise KeyError(f"no scores for method {method!r} on dataset {dataset!r}")

    def summary_markdown(self) -> str:
        """The method × dataset Markdown table (PSNR / SSIM [/ NIQE]) — what the CLI prints."""
        from esrgan.eval.tables import summary_markdown

        return summary_markdown(self)


def _mean(values: Sequence[float]) -> float:
    # math.fsum: exact sum, so the mean does not depend on the order of the images.
    return math.fsum(values) / len(values)


def summarize(scores: Iterable[ImageScore]) -> list[MethodSummary]:
    """Group per-image scores by (dataset, method) and average them (module docstring for RMSE)."""
    groups: dict[tuple[str, str], list[ImageScore]] = {}
    for s in scores:
        groups.setdefault((s.dataset, s.method), []).append(s)
    out = []
    for (dataset, method), rows in groups.items():
        niqes = [r.niqe for r in rows]
        secs = [r.seconds for r in rows]
        out.append(
            MethodSummary(
                dataset=dataset,
                method=method,
                images=len(rows),
                psnr=_mean([r.psnr for r in rows]),
                ssim=_mean([r.ssim for r in rows]),
                niqe=None if any(v is None for v in niqes) else _mean(niqes),  # type: ignore[arg-type]
                rmse=math.sqrt(_mean([r.rmse**2 for r in rows])),
                seconds=None if any(v is None for v in secs) else _mean(secs),  # type: ignore[arg-type]
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# files


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by extension; hidden files skipped), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EsrganError(f"{folder}: not a folder (expected a folder of images)")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise EsrganError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return files


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


def _names(paths: Iterable[Path | str], limit: int = 8) -> str:
    items = [p.name if isinstance(p, Path) else str(p) for p in paths]
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


GRAY_MODES = ("replicate", "keep")


def read_uint8(path: Path, *, gray_mode: str = "replicate") -> tuple[np.ndarray, bool]:
    """Read an 8-bit image, alpha dropped; returns ``(pixels, was_gray)``.

    ``pixels`` is ``H×W×3`` uint8 RGB, or ``H×W`` for a gray file with ``gray_mode="keep"``.
    """
    from esrgan.inference.image_io import read_image

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


def _crop_to(hr: np.ndarray, height: int, width: int, hr_path: Path, other: str) -> np.ndarray:
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
    from esrgan.ops.matlab_resize import imresize, round_half_away

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
    from esrgan import metrics

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


# --------------------------------------------------------------------------------------------------
# methods


@dataclass
class _Method:
    name: str
    description: str
    run: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (lr, hr) -> sr, uint8 RGB
    warm_up: bool = False  # run once, untimed, before the first timed image (models: device init, kernels)


def _model_scale(name: str, model: nn.Module) -> int | None:
    scale = getattr(model, "scale", None)
    if scale is None:
        return None
    if int(scale) != scale or scale < 1:
        raise ConfigError(f"model {name!r} reports an invalid scale {scale!r}")
    return int(scale)


def _resolve_scale(requested: int | None, models: Mapping[str, nn.Module]) -> int:
    scales = {name: _model_scale(name, m) for name, m in models.items()}
    known = {name: s for name, s in scales.items() if s is not None}
    if len(set(known.values())) > 1:
        listing = ", ".join(f"{n}: ×{s}" for n, s in known.items())
        raise ConfigError(
            f"the models have different scales ({listing}); benchmark models of one scale at a time"
        )
    if requested is not None:
        if int(requested) != requested or requested < 1:
            raise ConfigError(f"scale must be an integer >= 1, got {requested!r}")
        for name, s in known.items():
            if s != requested:
                raise ConfigError(f"scale ×{requested} was requested but model {name!r} is ×{s}")
        return int(requested)
    missing = [n for n, s in scales.items() if s is None]
    if missing:
        raise ConfigError(
            f"cannot tell the scale of model(s) {', '.join(missing)}: give the scale explicitly"
        )
    return next(iter(known.values())) if known else 4


def _load_models(
    models: Mapping[str, nn.Module | str | os.PathLike[str]], device: str | None
) -> tuple[dict[str, nn.Module], dict[str, str]]:
    loaded: dict[str, nn.Module] = {}
    described: dict[str, str] = {}
    for name, spec in models.items():
        if name in BASELINES:
            raise ConfigError(f"model name {name!r} is taken by a baseline; name the model differently")
        if isinstance(spec, str | os.PathLike):
            from esrgan.weights import load_model

            loaded[name] = load_model(os.fspath(spec), device=device or "cpu")
            described[name] = os.fspath(spec)
        else:
            loaded[name] = spec
            described[name] = f"nn.Module {type(spec).__name__}"
        hparams = getattr(loaded[name], "hparams", None)
        if isinstance(hparams, dict):
            described[name] += f" {type(loaded[name]).__name__}({_short_hparams(hparams)})"
    return loaded, described


def _short_hparams(hparams: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in hparams.items())


def _model_method(name: str, model: nn.Module, settings: BenchmarkSettings, description: str) -> _Method:
    from esrgan.inference.upscaler import Upscaler

    model.eval()
    upscaler = Upscaler(
        model,
        tile=settings.tile,
        tile_overlap=settings.tile_overlap,
        device=settings.device,
        precision="fp16" if settings.half else settings.precision,  # type: ignore[arg-type]
    )
    return _Method(name, description, lambda lr, hr: upscaler.upscale(lr), warm_up=True)


def _baseline_method(name: str, scale: int) -> _Method:
    if name == "bicubic":
        return _Method(
            name, "MATLAB bicubic imresize x scale, uint8", lambda lr, hr: upscale_bicubic(lr, scale)
        )
    if name == "nearest":
        return _Method(
            name, "nearest neighbour (pixel replication)", lambda lr, hr: upscale_nearest(lr, scale)
        )
    if name == "hr":
        return _Method(name, "the HR image itself (reference for NIQE)", lambda lr, hr: hr.copy())
    raise ConfigError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")


def _normalise_datasets(
    datasets: Mapping[str, Any] | Sequence[DatasetSpec],
) -> list[DatasetSpec]:
    if isinstance(datasets, Mapping):
        specs = []
        for name, value in datasets.items():
            if isinstance(value, DatasetSpec):
                specs.append(value)
            elif isinstance(value, tuple | list):
                hr, lr = value
                specs.append(DatasetSpec(name, Path(hr), None if lr is None else Path(lr)))
            else:
                specs.append(DatasetSpec(name, Path(value)))
    else:
        specs = list(datasets)
    if not specs:
        raise ConfigError("no datasets given")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset names must be unique, got {names}")
    return specs


def _dataset_files(spec: DatasetSpec) -> list[tuple[str, Path, Path | None]]:
    """``(stem, hr_path, lr_path)`` per HR image of the set."""
    hr_files = list_images(spec.hr_dir)
    stems = [p.stem for p in hr_files]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise EsrganError(f"{spec.hr_dir}: several files share a name ({', '.join(dup)}); keep one per image")
    if spec.lr_dir is None:
        return [(p.stem, p, None) for p in hr_files]
    matched, extra = match_by_stem(stems, list_images(spec.lr_dir))
    missing = [s for s in stems if s not in matched]
    if missing:
        raise EsrganError(
            f"{spec.lr_dir}: no LR image for {len(missing)} HR image(s) of {spec.hr_dir}: {_names(missing)} "
            "(LR files are matched by name, e.g. baby.png, babyx4.png, baby_x4.png)"
        )
    if extra:
        logger.info(
            "%s: %d LR file(s) without an HR image ignored: %s", spec.lr_dir, len(extra), _names(extra)
        )
    return [(p.stem, p, matched[p.stem]) for p in hr_files]


def _method_dir_name(method: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", method) or "method"


def _versions() -> dict[str, str]:
    import numpy
    import scipy
    import torch

    from esrgan import __version__

    return {
        "esrgan": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
    }


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


# --------------------------------------------------------------------------------------------------
# the runner


def run_benchmark(
    datasets: Mapping[str, Any] | Sequence[DatasetSpec],
    models: Mapping[str, nn.Module | str | os.PathLike[str]] | None = None,
    baselines: Sequence[str] = ("bicubic",),
    settings: BenchmarkSettings | None = None,
    *,
    methods: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] | None = None,
    on_image: ImageCallback | None = None,
) -> BenchmarkResult:
    """Score baselines and models on benchmark sets (module docstring for the protocol).

    Args:
        datasets: ``{name: hr_dir}``, ``{name: (hr_dir, lr_dir_or_None)}`` or a sequence of
            :class:`DatasetSpec`.
        models: ``{name: nn.Module | weights path | zoo name}`` (loaded with
            :func:`esrgan.weights.load_model`).
        baselines: any of ``"bicubic"``, ``"nearest"``, ``"hr"``; run before the models, in this order.
        settings: :class:`BenchmarkSettings` (defaults: scale from the models, crop = scale, MATLAB uint8 Y).
        methods: further methods, run after the models: ``{name: f}`` with ``f(lr, hr) -> sr``, ``lr`` and
            ``hr`` uint8 as prepared by the protocol (``H×W×3``, or ``H×W`` for gray images with
            ``gray_mode="keep"``), ``sr`` uint8 of the HR's shape; ``hr`` is for reference methods only (a
            method must not look at it to make its SR). All methods of one image run one after the other
            on the same ``lr`` object, so ``f`` may reuse work done for that ``lr`` (the image interpolation
            of :mod:`esrgan.eval.sweep` does). An optional ``f.description`` string is recorded.
        on_image: called once per image, after its methods ran, as ``on_image(dataset, image, hr, lr,
            outputs)`` with ``outputs = {method name: uint8 SR}`` (e.g. to keep crops for a figure).

    Returns:
        :class:`BenchmarkResult` with one :class:`ImageScore` per (dataset, image, method).

    Raises:
        ConfigError: scales that disagree, unknown baselines, clashing names.
        EsrganError / ImageError: missing folders, unmatched LR files, unreadable images, size mismatches.
    """
    from tqdm import tqdm

    from esrgan.eval.report import make_comparison
    from esrgan.ops.back_projection import VARIANTS, back_project
    from esrgan.ops.matlab_resize import downscale_uint8, modcrop

    settings = settings or BenchmarkSettings()
    specs = _normalise_datasets(datasets)
    baselines = list(dict.fromkeys(baselines))
    for b in baselines:
        if b not in BASELINES:
            raise ConfigError(f"unknown baseline {b!r}; choose from {', '.join(BASELINES)}")
    if settings.gray_mode not in GRAY_MODES:
        raise ConfigError(f"unknown gray_mode {settings.gray_mode!r}; use one of {', '.join(GRAY_MODES)}")
    if settings.back_projection < 0:
        raise ConfigError(f"back_projection must be >= 0 iterations, got {settings.back_projection}")
    if settings.back_projection_variant not in VARIANTS:
        raise ConfigError(
            f"unknown back-projection variant {settings.back_projection_variant!r}; "
            f"use one of {', '.join(VARIANTS)}"
        )
    loaded, described = _load_models(models or {}, settings.device)
    methods = dict(methods or {})
    for name in methods:
        if name in BASELINES or name in loaded:
            raise ConfigError(f"method name {name!r} is taken by a baseline or a model; name it differently")
    if not baselines and not loaded and not methods:
        raise ConfigError("nothing to benchmark: give at least one model or baseline")
    scale = _resolve_scale(settings.scale, loaded)
    crop = scale if settings.crop_border is None else int(settings.crop_border)
    if crop < 0:
        raise ConfigError(f"crop_border must be >= 0, got {crop}")

    runs: list[_Method] = []
    for b in baselines:
        runs.append(_baseline_method(b, scale))
    for name, model in loaded.items():
        runs.append(_model_method(name, model, settings, described[name]))
    for name, fn in methods.items():
        runs.append(_Method(name, str(getattr(fn, "description", "custom method")), fn))
    bp = int(settings.back_projection)
    bp_name = f"+BP{bp}"
    method_names = [m.name for m in runs]
    all_names = [n for m in method_names for n in ([m, m + bp_name] if bp and m != "hr" else [m])]

    files = {spec.name: _dataset_files(spec) for spec in specs}
    save_dir = settings.save_images_dir
    if save_dir is not None and not settings.overwrite:
        existing = [
            p
            for spec in specs
            for stem, _, _ in files[spec.name]
            for n in all_names
            if (p := Path(save_dir) / spec.name / _method_dir_name(n) / f"{stem}.png").exists()
        ]
        if existing:
            raise EsrganError(
                f"{len(existing)} SR image(s) already exist under {save_dir} (e.g. {existing[0]}); "
                "choose another folder or pass overwrite=True (--overwrite)"
            )

    scores: list[ImageScore] = []
    comparisons = []
    gray_images: dict[str, list[str]] = {}
    for spec in specs:
        logger.info("benchmark %s: %d images, ×%d", spec.name, len(files[spec.name]), scale)
        for stem, hr_path, lr_path in tqdm(
            files[spec.name], desc=spec.name, unit="img", disable=not settings.progress, leave=False
        ):
            hr, gray = read_uint8(hr_path, gray_mode=settings.gray_mode)
            if gray:
                gray_images.setdefault(spec.name, []).append(stem)
            if lr_path is None:
                hr = np.ascontiguousarray(modcrop(hr, scale))
                lr = downscale_uint8(hr, scale)
            else:
                lr = match_channels(read_uint8(lr_path, gray_mode=settings.gray_mode)[0], hr, lr_path)
                hr = np.ascontiguousarray(
                    _crop_to(hr, lr.shape[0] * scale, lr.shape[1] * scale, hr_path, "LR×scale")
                )

            outputs: dict[str, np.ndarray] = {}
            seconds: dict[str, float] = {}
            for method in runs:
                if method.warm_up:
                    method.run(lr, hr)
                    method.warm_up = False
                start = time.perf_counter()
                sr = method.run(lr, hr)
                seconds[method.name] = time.perf_counter() - start
                _check_sr(sr, hr, method.name, hr_path)
                outputs[method.name] = sr
                if bp and method.name != "hr":
                    start = time.perf_counter()
                    outputs[method.name + bp_name] = back_project(
                        sr,
                        lr,
                        scale=scale,
                        iterations=bp,
                        variant=settings.back_projection_variant,  # type: ignore[arg-type]
                    )
                    seconds[method.name + bp_name] = seconds[method.name] + time.perf_counter() - start

            metric_pairs: dict[str, tuple[float, float]] = {}
            for name in all_names:
                sr = outputs[name]
                p, s, n, rmse = score_image(
                    sr, hr, crop_border=crop, y_rounding=settings.y_rounding, niqe=settings.niqe
                )
                metric_pairs[name] = (p, s)
                scores.append(
                    ImageScore(
                        dataset=spec.name,
                        image=stem,
                        method=name,
                        psnr=p,
                        ssim=s,
                        niqe=n,
                        rmse=rmse,
                        seconds=seconds[name],
                        height=int(hr.shape[0]),
                        width=int(hr.shape[1]),
                    )
                )
                if save_dir is not None:
                    _save_png(
                        Path(save_dir) / spec.name / _method_dir_name(name) / f"{stem}.png", sr, settings
                    )
            if on_image is not None:
                on_image(spec.name, stem, hr, lr, outputs)
            if settings.comparisons:
                comparisons.append(
                    make_comparison(
                        spec.name,
                        stem,
                        hr,
                        {k: v for k, v in outputs.items() if k != "hr"},
                        lr=lr,
                        scale=scale,
                        crop_border=crop,
                        y_rounding=settings.y_rounding,
                        metrics={k: v for k, v in metric_pairs.items() if k != "hr"},
                    )
                )

    record = {
        "kind": "benchmark",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": scale,
        "crop_border": crop,
        "y_rounding": bool(settings.y_rounding),
        "niqe": bool(settings.niqe),
        "hr_preparation": f"modcrop(HR, {scale}) (bottom/right)",
        "lr_generation": {
            spec.name: (
                f"MATLAB bicubic imresize(im2double(HR), 1/{scale}), clipped, rounded to uint8"
                if spec.lr_dir is None
                else f"read from {spec.lr_dir}; HR cropped to LR size x{scale}"
            )
            for spec in specs
        },
        "datasets": {
            spec.name: {
                "hr_dir": str(spec.hr_dir),
                "lr_dir": None if spec.lr_dir is None else str(spec.lr_dir),
                "images": len(files[spec.name]),
                "gray_images": gray_images.get(spec.name, []),
            }
            for spec in specs
        },
        "methods": {m.name: m.description for m in runs},
        "back_projection": {"iterations": bp, "variant": settings.back_projection_variant} if bp else None,
        "tile": settings.tile,
        "tile_overlap": settings.tile_overlap,
        "device": settings.device,
        "half": settings.half,
        "precision": "fp16" if settings.half else settings.precision,
        "timing": "seconds per image of the method itself (model forward incl. tiling and uint8 conversion, "
        "or the resize; each model runs once untimed on the first image first); +BP rows add the "
        "back-projection time",
        "gray_mode": settings.gray_mode,
        "conventions": conventions(y_rounding=settings.y_rounding, gray_mode=settings.gray_mode),
        "versions": _versions(),
    }
    return BenchmarkResult(scores=scores, settings=record, comparisons=comparisons)


def _check_sr(sr: np.ndarray, hr: np.ndarray, method: str, hr_path: Path) -> None:
    if not isinstance(sr, np.ndarray) or sr.dtype != np.uint8:
        raise EsrganError(
            f"method {method!r} returned {type(sr).__name__} {getattr(sr, 'dtype', '')}, not uint8"
        )
    if sr.shape != hr.shape:
        raise EsrganError(
            f"{hr_path}: method {method!r} produced a {sr.shape[1]}×{sr.shape[0]} image for a "
            f"{hr.shape[1]}×{hr.shape[0]} HR (×scale of the LR); is the model's scale right?"
        )


def _save_png(path: Path, pixels: np.ndarray, settings: BenchmarkSettings) -> None:
    from esrgan.inference.image_io import Image, write_image

    write_image(path, Image(pixels=np.ascontiguousarray(pixels)), overwrite=settings.overwrite)
