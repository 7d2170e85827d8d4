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
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from tqdm import tqdm

from esrgan.archs.descriptor import describe
from esrgan.errors import ConfigError, EsrganError
from esrgan.eval.protocol import (
    GRAY_MODES,
    conventions,
    crop_to,
    match_by_stem,
    match_channels,
    name_list,
    read_uint8,
    score_image,
    software_versions,
    upscale_bicubic,
    upscale_nearest,
)
from esrgan.eval.report import make_comparison
from esrgan.eval.results import BenchmarkResult, DatasetSpec, ImageScore
from esrgan.inference.upscaler import Upscaler
from esrgan.io.folders import list_images
from esrgan.io.images import Image, write_image
from esrgan.ops.back_projection import VARIANTS, back_project
from esrgan.ops.matlab_resize import downscale_uint8, modcrop
from esrgan.weights import load_model

logger = logging.getLogger(__name__)

__all__ = ["BASELINES", "BenchmarkSettings", "ImageCallback", "run_benchmark"]

BASELINES = ("bicubic", "nearest", "hr")
#: ``on_image(dataset, image, hr, lr, outputs)`` of :func:`run_benchmark`.
ImageCallback = Callable[[str, str, np.ndarray, np.ndarray, Mapping[str, np.ndarray]], None]


# --------------------------------------------------------------------------------------------------
# settings


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
    described = describe(model).scale
    if scale is not None and described is None:
        raise ConfigError(f"model {name!r} reports an invalid scale {scale!r}")
    return described


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
            loaded[name] = load_model(os.fspath(spec), device=device or "cpu")
            described[name] = os.fspath(spec)
        else:
            loaded[name] = spec
            described[name] = f"nn.Module {type(spec).__name__}"
        hparams = describe(loaded[name]).hparams
        if hparams is not None:
            described[name] += f" {type(loaded[name]).__name__}({_short_hparams(hparams)})"
    return loaded, described


def _short_hparams(hparams: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in hparams.items())


def _model_method(name: str, model: nn.Module, settings: BenchmarkSettings, description: str) -> _Method:

    model.eval()
    upscaler = Upscaler(
        model,
        tile=settings.tile,
        tile_overlap=settings.tile_overlap,
        device=settings.device,
        precision="fp16" if settings.half else settings.precision,  # type: ignore[arg-type]
        as_written=True,  # no inference rewrites: tables reproduce bit for bit
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


def normalise_datasets(
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
            f"{spec.lr_dir}: no LR image for {len(missing)} HR image(s) of {spec.hr_dir}: "
            f"{name_list(missing)} (LR files are matched by name, e.g. baby.png, babyx4.png, baby_x4.png)"
        )
    if extra:
        logger.info(
            "%s: %d LR file(s) without an HR image ignored: %s", spec.lr_dir, len(extra), name_list(extra)
        )
    return [(p.stem, p, matched[p.stem]) for p in hr_files]


def _method_dir_name(method: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", method) or "method"


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
    settings = settings or BenchmarkSettings()
    _check_settings(settings, baselines)
    specs = normalise_datasets(datasets)
    loaded, described = _load_models(models or {}, settings.device)
    methods = dict(methods or {})
    for name in methods:
        if name in BASELINES or name in loaded:
            raise ConfigError(f"method name {name!r} is taken by a baseline or a model; name it differently")
    baselines = list(dict.fromkeys(baselines))
    if not baselines and not loaded and not methods:
        raise ConfigError("nothing to benchmark: give at least one model or baseline")
    scale = _resolve_scale(settings.scale, loaded)
    crop = scale if settings.crop_border is None else int(settings.crop_border)
    if crop < 0:
        raise ConfigError(f"crop_border must be >= 0, got {crop}")

    runs = [_baseline_method(b, scale) for b in baselines]
    runs += [_model_method(name, model, settings, described[name]) for name, model in loaded.items()]
    runs += [
        _Method(name, str(getattr(fn, "description", "custom method")), fn) for name, fn in methods.items()
    ]
    files = {spec.name: _dataset_files(spec) for spec in specs}
    plan = _Plan(settings, scale, crop, runs)
    _refuse_existing_images(plan, specs, files)

    result = BenchmarkResult(scores=[], settings={})
    gray_images: dict[str, list[str]] = {}
    for spec in specs:
        logger.info("benchmark %s: %d images, ×%d", spec.name, len(files[spec.name]), scale)
        for stem, hr_path, lr_path in tqdm(
            files[spec.name], desc=spec.name, unit="img", disable=not settings.progress, leave=False
        ):
            hr, lr, gray = _prepare_pair(hr_path, lr_path, scale, settings.gray_mode)
            if gray:
                gray_images.setdefault(spec.name, []).append(stem)
            outputs, seconds = _run_methods(plan, lr, hr, hr_path)
            _score_outputs(plan, result, spec.name, stem, hr, lr, outputs, seconds)
            if on_image is not None:
                on_image(spec.name, stem, hr, lr, outputs)
    result.settings = _settings_record(plan, specs, files, gray_images)
    return result


def _check_settings(settings: BenchmarkSettings, baselines: Sequence[str]) -> None:
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


@dataclass
class _Plan:
    """What one benchmark run does to every image: the methods, their +BP rows, the protocol numbers."""

    settings: BenchmarkSettings
    scale: int
    crop: int
    runs: list[_Method]

    @property
    def bp(self) -> int:
        return int(self.settings.back_projection)

    def bp_name(self, method: str) -> str:
        return f"{method}+BP{self.bp}"

    @property
    def row_names(self) -> list[str]:
        """Every table row: each method, then its +BP row (none for the HR reference)."""
        return [
            n
            for m in self.runs
            for n in ([m.name, self.bp_name(m.name)] if self.bp and m.name != "hr" else [m.name])
        ]

    def image_path(self, dataset: str, method: str, stem: str) -> Path | None:
        save_dir = self.settings.save_images_dir
        return (
            None if save_dir is None else Path(save_dir) / dataset / _method_dir_name(method) / f"{stem}.png"
        )


def _refuse_existing_images(plan: _Plan, specs: Sequence[DatasetSpec], files: Mapping[str, Any]) -> None:
    if plan.settings.save_images_dir is None or plan.settings.overwrite:
        return
    existing = [
        p
        for spec in specs
        for stem, _, _ in files[spec.name]
        for n in plan.row_names
        if (p := plan.image_path(spec.name, n, stem)) is not None and p.exists()
    ]
    if existing:
        raise EsrganError(
            f"{len(existing)} SR image(s) already exist under {plan.settings.save_images_dir} (e.g. "
            f"{existing[0]}); choose another folder or pass overwrite=True (--overwrite)"
        )


def _prepare_pair(
    hr_path: Path, lr_path: Path | None, scale: int, gray_mode: str
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(hr, lr, was_gray)`` by the protocol: mod-cropped HR and its MATLAB-bicubic LR, or a given LR."""
    hr, gray = read_uint8(hr_path, gray_mode=gray_mode)
    if lr_path is None:
        hr = np.ascontiguousarray(modcrop(hr, scale))
        return hr, downscale_uint8(hr, scale), gray
    lr = match_channels(read_uint8(lr_path, gray_mode=gray_mode)[0], hr, lr_path)
    hr = np.ascontiguousarray(crop_to(hr, lr.shape[0] * scale, lr.shape[1] * scale, hr_path, "LR×scale"))
    return hr, lr, gray


def _run_methods(
    plan: _Plan, lr: np.ndarray, hr: np.ndarray, hr_path: Path
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every method's SR of `lr` (and its back-projected version) with the seconds each took."""
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for method in plan.runs:
        if method.warm_up:
            method.run(lr, hr)
            method.warm_up = False
        start = time.perf_counter()
        sr = method.run(lr, hr)
        seconds[method.name] = time.perf_counter() - start
        _check_sr(sr, hr, method.name, hr_path)
        outputs[method.name] = sr
        if plan.bp and method.name != "hr":
            start = time.perf_counter()
            variant = plan.settings.back_projection_variant
            name = plan.bp_name(method.name)
            outputs[name] = back_project(sr, lr, scale=plan.scale, iterations=plan.bp, variant=variant)  # type: ignore[arg-type]
            seconds[name] = seconds[method.name] + time.perf_counter() - start
    return outputs, seconds


def _score_outputs(
    plan: _Plan,
    result: BenchmarkResult,
    dataset: str,
    stem: str,
    hr: np.ndarray,
    lr: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    seconds: Mapping[str, float],
) -> None:
    """Score one image's outputs into `result` (rows, saved images, the report's comparison)."""
    settings = plan.settings
    metric_pairs: dict[str, tuple[float, float]] = {}
    for name in plan.row_names:
        sr = outputs[name]
        p, s, n, rmse = score_image(
            sr, hr, crop_border=plan.crop, y_rounding=settings.y_rounding, niqe=settings.niqe
        )
        metric_pairs[name] = (p, s)
        result.scores.append(
            ImageScore(
                dataset=dataset,
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
        if (path := plan.image_path(dataset, name, stem)) is not None:
            _save_png(path, sr, settings)
    if settings.comparisons:
        result.comparisons.append(
            make_comparison(
                dataset,
                stem,
                hr,
                {k: v for k, v in outputs.items() if k != "hr"},
                lr=lr,
                scale=plan.scale,
                crop_border=plan.crop,
                y_rounding=settings.y_rounding,
                metrics={k: v for k, v in metric_pairs.items() if k != "hr"},
            )
        )


def _settings_record(
    plan: _Plan, specs: Sequence[DatasetSpec], files: Mapping[str, Any], gray_images: Mapping[str, list[str]]
) -> dict[str, Any]:
    """The JSON-ready record of the protocol and software a result was made with."""
    settings, scale, bp = plan.settings, plan.scale, plan.bp
    return {
        "kind": "benchmark",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": scale,
        "crop_border": plan.crop,
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
        "methods": {m.name: m.description for m in plan.runs},
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
        "versions": software_versions(),
    }


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

    write_image(path, Image(pixels=np.ascontiguousarray(pixels)), overwrite=settings.overwrite)
