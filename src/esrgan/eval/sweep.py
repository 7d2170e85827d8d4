"""The ESRGAN interpolation study (paper §3.4 and Fig. 10): network interpolation vs image interpolation.

For every α of a sweep (the paper: 0, 0.2, …, 1) two ways of trading distortion for perceptual quality are
scored on benchmark sets, between a PSNR-oriented model (α = 0) and a GAN model fine-tuned from it (α = 1):

* **network interpolation** — one model with the blended weights θ = (1 − α)·θ_PSNR + α·θ_GAN
  (:func:`esrgan.weights.interpolate_models`), run like any model;
* **image interpolation** — the blend of the two models' outputs, I = (1 − α)·I_PSNR + α·I_GAN, computed on
  their float outputs (the :class:`~esrgan.inference.upscaler.Upscaler`'s, clamped to [0, 1]) and quantised
  only after blending (clamp, ×255, round half to even — the Upscaler's own output conversion), so α = 0 and
  α = 1 give exactly the two models' images. Each model runs once per image; its output is shared by all α.

Both run through :func:`esrgan.eval.benchmark.run_benchmark` (one pass over the data), so the protocol is the
benchmark's: HR mod-cropped, LR by MATLAB bicubic (or read from an LR folder), PSNR/SSIM on MATLAB BT.601 Y
with ``scale`` border pixels removed, NIQE of the SR with the same crop. The α = 0 rows therefore equal a
benchmark of the PSNR model, and the α = 1 rows a benchmark of the GAN model.

:func:`write_sweep` writes the tables (Markdown, CSV, JSON: one row per interpolation × α × dataset), a
perception–distortion plot (NIQE vs PSNR, one curve per interpolation, one panel per dataset; needs the
``plots`` extra, matplotlib) and a crop grid of one image across α (PIL). See docs/interpolation.md.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from esrgan.archs.descriptor import describe
from esrgan.errors import ConfigError, EsrganError
from esrgan.eval.benchmark import BenchmarkSettings, normalise_datasets, run_benchmark
from esrgan.eval.protocol import upscale_bicubic
from esrgan.eval.report import choose_crop
from esrgan.eval.results import BenchmarkResult, ImageScore, summarize
from esrgan.eval.tables import (
    check_outputs_free,
    csv_value,
    fmt_number,
    json_number,
    json_record,
    markdown_table,
    md_escape,
    protocol_line,
    score_from_strings,
    write_output,
)
from esrgan.inference.pixels import from_float
from esrgan.inference.upscaler import Upscaler
from esrgan.io.folders import list_images
from esrgan.ops.interpolation import blend
from esrgan.weights import interpolate_models, load_model

if TYPE_CHECKING:
    import torch
    from torch import nn


logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ALPHAS",
    "INTERPOLATIONS",
    "SWEEP_FILES",
    "SweepCrop",
    "SweepResult",
    "SweepRow",
    "SweepSettings",
    "blend_outputs",
    "check_alphas",
    "check_sweep_writable",
    "method_name",
    "parse_alphas",
    "parse_box",
    "read_sweep",
    "render_crop_grid",
    "render_plot",
    "run_sweep",
    "write_sweep",
]

DEFAULT_ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
INTERPOLATIONS = ("network", "image")
JSON_FORMAT = "esrgan-sweep/1"
#: Files written by :func:`write_sweep` (the plot and the grid only when made).
SWEEP_FILES = {
    "md": "sweep.md",
    "csv": "sweep.csv",
    "json": "sweep.json",
    "plot": "perception_distortion.png",
    "grid": "crops.png",
}
CSV_FIELDS = ("dataset", "interpolation", "alpha", "images", "psnr", "ssim", "niqe")
#: The image shown in the crop grid when none is named (if a dataset has it): Set14's baboon, as in the
#: paper's figures.
DEFAULT_CROP_IMAGE = "baboon"
#: Side of the automatically chosen crop window, in HR pixels (smaller if the image is).
DEFAULT_CROP_SIZE = 128

# Crop grid layout, in output pixels (see render_crop_grid).
GRID_CELL = 192  # crops are enlarged by an integer factor to at most about this size (at least ×1)
GRID_PAD = 6  # space between cells and around the grid
GRID_LABEL_H = 22  # label strip above each cell
GRID_ROW_LABEL_W = 112  # row names on the left
GRID_TITLE_H = 26  # title line at the top


# --------------------------------------------------------------------------------------------------
# settings and results


@dataclass(frozen=True)
class SweepSettings:
    """Options of :func:`run_sweep` (all optional).

    Attributes:
        crop_border, y_rounding, gray_mode, tile, tile_overlap, device, half, precision, progress: as in
            :class:`~esrgan.eval.benchmark.BenchmarkSettings` (NIQE is always computed: it is the
            perceptual axis of the study).
        crop_image: the image of the crop grid, ``"NAME"`` or ``"DATASET/NAME"`` (file stem); default
            ``baboon`` if a dataset has it, else the first image of the first dataset.
        crop_box: ``(x, y, width, height)`` of the grid's window in (mod-cropped) HR pixels; default: a
            window of up to 128×128 pixels where the network-interpolated outputs differ most from each
            other and the HR (:func:`esrgan.eval.report.choose_crop`).
    """

    crop_border: int | None = None
    y_rounding: bool = True
    gray_mode: str = "replicate"
    tile: int | str = 0
    tile_overlap: int = 16
    device: str | None = None
    half: bool = False
    precision: str = "fp32"
    progress: bool = True
    crop_image: str | None = None
    crop_box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class SweepRow:
    """Means over a dataset's images for one interpolation (``"network"``/``"image"``) at one α."""

    dataset: str
    interpolation: str
    alpha: float
    images: int
    psnr: float
    ssim: float
    niqe: float | None


@dataclass(frozen=True)
class SweepCrop:
    """The crop grid's pixels: one window of one image, uint8 ``h×w×3`` (gray images are replicated).

    ``box`` is ``(x, y, width, height)`` in HR pixels; ``panels[(interpolation, alpha)]`` are the SR crops.
    """

    dataset: str
    image: str
    box: tuple[int, int, int, int]
    hr: np.ndarray
    bicubic: np.ndarray
    panels: dict[tuple[str, float], np.ndarray] = field(repr=False)


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns (and :func:`read_sweep` reads back, without the crop).

    ``benchmark`` holds the per-image scores, one method per interpolation and α (named by
    :func:`method_name`); ``settings`` is a JSON-ready record of the models, the α values, the formulas and
    the benchmark protocol.
    """

    alphas: tuple[float, ...]
    benchmark: BenchmarkResult
    settings: dict[str, Any]
    crop: SweepCrop | None = None

    def datasets(self) -> list[str]:
        return self.benchmark.datasets()

    def rows(self) -> list[SweepRow]:
        """One row per dataset × interpolation × α, in that order."""
        means = {(s.dataset, s.method): s for s in summarize(self.benchmark.scores)}
        out = []
        for d in self.datasets():
            for kind in INTERPOLATIONS:
                for a in self.alphas:
                    s = means.get((d, method_name(kind, a)))
                    if s is not None:
                        out.append(SweepRow(d, kind, a, s.images, s.psnr, s.ssim, s.niqe))
        return out

    def row(self, interpolation: str, alpha: float, dataset: str) -> SweepRow:
        for r in self.rows():
            if (r.interpolation, r.alpha, r.dataset) == (interpolation, alpha, dataset):
                return r
        raise KeyError(f"no {interpolation} interpolation at alpha={alpha} on {dataset!r}")

    def image_scores(self, interpolation: str, alpha: float) -> list[ImageScore]:
        """Per-image scores of one interpolation at one α (all datasets)."""
        name = method_name(interpolation, alpha)
        return [s for s in self.benchmark.scores if s.method == name]

    def markdown(self) -> str:
        """The Markdown tables (what ``sweep.md`` holds)."""
        return to_markdown(self)


def method_name(interpolation: str, alpha: float) -> str:
    """The benchmark method name of one sweep point, e.g. ``"network alpha=0.2"``."""
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {interpolation!r}; use one of {', '.join(INTERPOLATIONS)}")
    return f"{interpolation} alpha={float(alpha)!r}"


# --------------------------------------------------------------------------------------------------
# argument checks


def check_alphas(alphas: Sequence[float]) -> tuple[float, ...]:
    """The α values as sorted floats; each in [0, 1], no duplicates, at least one."""
    values = []
    for a in alphas:
        try:
            v = float(a)
        except (TypeError, ValueError):
            raise ConfigError(f"alpha {a!r} is not a number; use values between 0 and 1") from None
        if not 0.0 <= v <= 1.0:  # NaN fails this too
            raise ConfigError(f"alpha {a!r} is outside [0, 1] (0 = PSNR model, 1 = GAN model)")
        values.append(v)
    if not values:
        raise ConfigError("no alpha values given; e.g. 0,0.2,0.4,0.6,0.8,1")
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1})
        raise ConfigError(f"alpha values repeat: {', '.join(f'{v:g}' for v in dup)}")
    return tuple(sorted(values))


def parse_alphas(text: str) -> tuple[float, ...]:
    """``"0,0.2,0.4"`` → ``(0.0, 0.2, 0.4)``, checked by :func:`check_alphas`."""
    parts = [p.strip() for p in str(text).split(",")]
    values = []
    for p in parts:
        try:
            values.append(float(p))
        except ValueError:
            raise ConfigError(
                f"cannot read alpha {p!r} in {text!r}; give comma-separated numbers in [0, 1], "
                "e.g. 0,0.2,0.4,0.6,0.8,1"
            ) from None
    return check_alphas(values)


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (HR pixels) → ``(x, y, w, h)``; x, y ≥ 0, w, h ≥ 1."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"cannot read the crop box {text!r}; give x,y,w,h in HR pixels, e.g. 200,150,96,96"
        ) from None
    return _valid_box((x, y, w, h))


def _valid_box(box: Sequence[Any]) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in box)
    except (TypeError, ValueError):
        raise ConfigError(f"crop box must be four integers (x, y, width, height), got {box!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise ConfigError(f"crop box {x},{y},{w},{h}: need x, y >= 0 and width, height >= 1")
    return x, y, w, h


# --------------------------------------------------------------------------------------------------
# image interpolation


def blend_outputs(a: torch.Tensor, b: torch.Tensor, alpha: float) -> np.ndarray:
    """Image interpolation of two float SR images: ``(1 − α)·a + α·b``, then clamp, ×255, round → uint8.

    ``a`` and ``b`` are float32 tensors of one shape in [0, 1] (``N×C×H×W`` with N = 1, as returned by
    :meth:`~esrgan.inference.upscaler.Upscaler.upscale_tensor`); the result is ``H×W×C`` uint8, or ``H×W``
    for C = 1. Blending happens before quantisation (SPEC §9), in float32, and the quantisation is the
    Upscaler's (round half to even), so ``alpha`` 0 and 1 return exactly the Upscaler's uint8 images of
    ``a`` and ``b``.
    """
    if a.shape != b.shape:
        raise EsrganError(f"cannot blend SR images of different shapes {tuple(a.shape)} and {tuple(b.shape)}")
    out = from_float(blend(a, b, alpha)[0].permute(1, 2, 0), np.dtype(np.uint8))
    return out[:, :, 0] if out.shape[2] == 1 else out


class _OutputCache:
    """The two models' float outputs for the image being scored.

    ``run_benchmark`` runs all methods of one image one after the other on the same LR array, so keeping
    the outputs for the last LR seen means each model runs once per image, whatever the number of α.
    """

    def __init__(self, upscaler_a: Upscaler, upscaler_b: Upscaler) -> None:
        self.upscalers = (upscaler_a, upscaler_b)
        self._lr: np.ndarray | None = None
        self._outputs: tuple[torch.Tensor, torch.Tensor] | None = None

    def outputs(self, lr: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self._outputs is None or self._lr is not lr:
            import torch

            hwc = lr[:, :, None] if lr.ndim == 2 else lr
            # The Upscaler's own uint8 → float conversion (k / 255 in float32).
            x = torch.from_numpy(hwc.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
            self._outputs = None  # free the previous image's outputs first
            self._outputs = tuple(u.upscale_tensor(x) for u in self.upscalers)  # type: ignore[assignment]
            self._lr = lr
        assert self._outputs is not None
        return self._outputs

    def clear(self) -> None:
        self._lr, self._outputs = None, None


class _ImageInterpolation:
    """A benchmark method: image interpolation at one α from the shared output cache."""

    def __init__(self, cache: _OutputCache, alpha: float) -> None:
        self.cache = cache
        self.alpha = alpha
        self.description = (
            f"image interpolation: (1 - {alpha!r}) * SR_psnr + {alpha!r} * SR_gan on the models' float "
            "outputs (clamped to [0, 1]), then x255, rounded half to even, uint8"
        )

    def __call__(self, lr: np.ndarray, hr: np.ndarray) -> np.ndarray:
        a, b = self.cache.outputs(lr)
        return blend_outputs(a, b, self.alpha)


# --------------------------------------------------------------------------------------------------
# the crop image


def _find_crop_image(
    requested: str | None, specs: Sequence[Any]
) -> tuple[str, str, Path]:  # (dataset, stem, hr path)

    listing = {spec.name: list_images(spec.hr_dir) for spec in specs}
    if requested is None:
        for name, files in listing.items():
            for p in files:
                if p.stem.lower() == DEFAULT_CROP_IMAGE:
                    return name, p.stem, p
        first = specs[0].name
        return first, listing[first][0].stem, listing[first][0]
    dataset, sep, stem = requested.rpartition("/")
    candidates = [
        (name, p.stem, p)
        for name, files in listing.items()
        if not sep or name == dataset
        for p in files
        if p.stem == stem or p.stem.lower() == stem.lower()
    ]
    exact = [c for c in candidates if c[1] == stem]
    candidates = exact or candidates
    if not candidates:
        names = [f"{n}/{p.stem}" for n, files in listing.items() for p in files]
        more = f" … and {len(names) - 12} more" if len(names) > 12 else ""
        raise ConfigError(
            f"crop image {requested!r} is in none of the datasets; choose one of "
            f"{', '.join(names[:12])}{more} (NAME or DATASET/NAME)"
        )
    if len(candidates) > 1:
        logger.info("crop image %r is in several datasets; using %s", requested, candidates[0][0])
    return candidates[0]


def _check_box(box: tuple[int, int, int, int], height: int, width: int, where: str) -> None:
    x, y, w, h = box
    if x + w > width or y + h > height:
        raise ConfigError(
            f"crop box x={x}, y={y}, w={w}, h={h} does not fit {where} ({width}×{height} HR pixels after the "
            "mod-crop); choose a smaller or shifted box"
        )


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


class _CropCollector:
    """``on_image`` callback of ``run_benchmark``: keeps the crop grid's window of one image."""

    def __init__(
        self,
        dataset: str,
        image: str,
        box: tuple[int, int, int, int] | None,
        alphas: Sequence[float],
        scale: int,
        crop_border: int,
    ) -> None:
        self.dataset, self.image, self.box = dataset, image, box
        self.alphas, self.scale, self.crop_border = tuple(alphas), scale, crop_border
        self.crop: SweepCrop | None = None

    def __call__(
        self, dataset: str, image: str, hr: np.ndarray, lr: np.ndarray, outputs: Mapping[str, np.ndarray]
    ) -> None:
        if (dataset, image) != (self.dataset, self.image):
            return

        height, width = hr.shape[:2]
        box = self.box
        if box is None:
            room = min(height, width) - 2 * self.crop_border
            border = self.crop_border
            if room < 1:  # tiny image: the border leaves nothing, show the whole image
                room, border = min(height, width), 0
            size = min(DEFAULT_CROP_SIZE, room)
            if size >= self.scale:
                size -= size % self.scale
            network = [outputs[method_name("network", a)] for a in self.alphas]
            top, left = choose_crop(hr, network, size=size, align=self.scale, border=border)
            box = (left, top, size, size)
        else:
            _check_box(box, height, width, f"{dataset}/{image}")
        x, y, w, h = box

        def cut(img: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(_rgb(img)[y : y + h, x : x + w])

        self.crop = SweepCrop(
            dataset=dataset,
            image=image,
            box=box,
            hr=cut(hr),
            bicubic=cut(upscale_bicubic(lr, self.scale)),
            panels={(k, a): cut(outputs[method_name(k, a)]) for k in INTERPOLATIONS for a in self.alphas},
        )


# --------------------------------------------------------------------------------------------------
# the sweep


def _describe(source: Any) -> str:
    from torch import nn

    if isinstance(source, nn.Module):
        hparams = describe(source).hparams
        args = ", ".join(f"{k}={v}" for k, v in hparams.items()) if hparams is not None else ""
        return f"nn.Module {type(source).__name__}({args})"
    return os.fspath(source)


def run_sweep(
    psnr_model: nn.Module | str | os.PathLike[str],
    gan_model: nn.Module | str | os.PathLike[str],
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    datasets: Mapping[str, Any] | Sequence[Any] = (),
    settings: SweepSettings | None = None,
) -> SweepResult:
    """Score network and image interpolation between two models at every α (module docstring).

    Args:
        psnr_model: the α = 0 model (PSNR-oriented): ``nn.Module``, weights file or model name.
        gan_model: the α = 1 model (GAN, fine-tuned from ``psnr_model``; same architecture and
            hyperparameters).
        alphas: the sweep, each in [0, 1] (sorted; duplicates are an error).
        datasets: as for :func:`~esrgan.eval.benchmark.run_benchmark`: ``{name: hr_dir}``,
            ``{name: (hr_dir, lr_dir)}`` or :class:`~esrgan.eval.benchmark.DatasetSpec` items.
        settings: :class:`SweepSettings`. The scale is the models'.

    Returns:
        :class:`SweepResult`: per-image scores of both interpolations at every α, and the crop grid's pixels.

    Raises:
        ConfigError: bad α values, crop image or crop box.
        WeightsError: models that cannot be loaded or interpolated (different architecture or
            hyperparameters).
        EsrganError / ImageError: as :func:`~esrgan.eval.benchmark.run_benchmark`.
    """

    settings = settings or SweepSettings()
    alphas = check_alphas(alphas)
    specs = normalise_datasets(datasets)
    crop_box = None if settings.crop_box is None else _valid_box(settings.crop_box)

    # Load on the CPU and blend there; each Upscaler moves its model to the device. The network
    # interpolations are built before the Upscalers of the two models exist (which may convert them to
    # fp16 in place).
    model_a = load_model(psnr_model, device="cpu")
    model_b = load_model(gan_model, device="cpu")
    network = {method_name("network", a): interpolate_models(model_a, model_b, a) for a in alphas}
    scale = describe(model_a).scale
    if scale is None:
        raise ConfigError(f"{_describe(psnr_model)}: the model has no integer `scale` attribute")
    crop_border = scale if settings.crop_border is None else int(settings.crop_border)

    crop_dataset, crop_image, crop_path = _find_crop_image(settings.crop_image, specs)
    if crop_box is not None:
        from PIL import Image as PILImage

        with PILImage.open(crop_path) as im:
            width, height = im.size
        _check_box(crop_box, height - height % scale, width - width % scale, f"{crop_dataset}/{crop_image}")
    collector = _CropCollector(crop_dataset, crop_image, crop_box, alphas, scale, crop_border)

    def upscaler(model: nn.Module) -> Upscaler:
        return Upscaler(
            model,
            tile=settings.tile,  # type: ignore[arg-type]
            tile_overlap=settings.tile_overlap,
            device=settings.device,
            precision="fp16" if settings.half else settings.precision,  # type: ignore[arg-type]
            as_written=True,  # no inference rewrites: tables reproduce bit for bit
        )

    cache = _OutputCache(upscaler(model_a), upscaler(model_b))
    image_methods = {method_name("image", a): _ImageInterpolation(cache, a) for a in alphas}
    bench_settings = BenchmarkSettings(
        scale=scale,
        crop_border=crop_border,
        y_rounding=settings.y_rounding,
        niqe=True,
        tile=settings.tile,
        tile_overlap=settings.tile_overlap,
        device=settings.device,
        half=settings.half,
        precision=settings.precision,
        progress=settings.progress,
        comparisons=False,
        gray_mode=settings.gray_mode,
    )
    try:
        bench = run_benchmark(
            specs,
            models=network,
            baselines=(),
            settings=bench_settings,
            methods=image_methods,
            on_image=collector,
        )
    finally:
        cache.clear()
    record = {
        "kind": "interpolation-sweep",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "psnr_model": _describe(psnr_model),
        "gan_model": _describe(gan_model),
        "alphas": list(alphas),
        "network_interpolation": "theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN, parameter by "
        "parameter (esrgan.weights.interpolate_models)",
        "image_interpolation": "I = (1 - alpha) * I_PSNR + alpha * I_GAN on the two models' float outputs "
        "(clamped to [0, 1]), then x255, rounded half to even to uint8",
        "crop": None
        if collector.crop is None
        else {"dataset": crop_dataset, "image": crop_image, "box_xywh": list(collector.crop.box)},
        "benchmark": bench.settings,
    }
    return SweepResult(alphas=alphas, benchmark=bench, settings=record, crop=collector.crop)


# --------------------------------------------------------------------------------------------------
# tables


def _protocol(settings: Mapping[str, Any]) -> str:

    bench = settings.get("benchmark", {})
    line = protocol_line(dict(bench)) if isinstance(bench, Mapping) else ""
    return (line + "; " if line else "") + "NIQE (MATLAB niqe_release) of the SR, same crop: lower is better"


def to_markdown(result: SweepResult) -> str:
    """Header (models, formulas, protocol) and one table per dataset: interpolation × α → PSNR, SSIM, NIQE."""

    s = result.settings
    out = [
        "# Network interpolation vs image interpolation",
        "",
        f"- PSNR model (α = 0): `{s.get('psnr_model', '?')}`",
        f"- GAN model (α = 1): `{s.get('gan_model', '?')}`",
        "- network interpolation: θ = (1 − α)·θ_PSNR + α·θ_GAN",
        "- image interpolation: I = (1 − α)·I_PSNR + α·I_GAN (float outputs blended, then quantised)",
        f"- protocol: {_protocol(s)}",
        "",
    ]
    rows = result.rows()
    for d in result.datasets():
        mine = [r for r in rows if r.dataset == d]
        n = mine[0].images if mine else 0
        out += [f"## {md_escape(d)} ({n} images)", ""]
        body = [
            [
                r.interpolation,
                f"{r.alpha:g}",
                fmt_number(r.psnr, 4),
                fmt_number(r.ssim, 4),
                fmt_number(r.niqe, 4),
            ]
            for r in mine
        ]
        out += [markdown_table(["interpolation", "α", "PSNR", "SSIM", "NIQE"], body), ""]
    return "\n".join(out)


def to_csv(result: SweepResult) -> str:
    """One row per dataset × interpolation × α, full precision (``repr``), empty NIQE when undefined."""

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in result.rows():
        writer.writerow([csv_value(getattr(r, f)) for f in CSV_FIELDS])
    return buf.getvalue()


def to_json(result: SweepResult) -> str:
    """Settings, the rows and the per-image scores (with their interpolation and α) as strict JSON."""

    by_name = {method_name(k, a): (k, a) for k in INTERPOLATIONS for a in result.alphas}
    images = []
    for sc in result.benchmark.scores:
        kind, alpha = by_name[sc.method]
        images.append({"interpolation": kind, "alpha": alpha, **json_record(sc)})
    doc = {
        "format": JSON_FORMAT,
        "settings": result.settings,
        "alphas": list(result.alphas),
        "rows": [{k: json_number(v) for k, v in vars(r).items()} for r in result.rows()],
        "images": images,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def read_sweep(path: str | os.PathLike[str]) -> SweepResult:
    """A :class:`SweepResult` (without the crop) back from ``sweep.json``, e.g. to redraw the plot."""

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise EsrganError(f"{path}: not a readable sweep file ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise EsrganError(f"{path}: not an esrgan sweep file (expected format {JSON_FORMAT!r})")
    scores = []
    for rec in doc["images"]:
        rec = {k: v for k, v in rec.items() if k not in ("interpolation", "alpha")}
        scores.append(score_from_strings(rec))
    settings = doc["settings"]
    bench = BenchmarkResult(scores=scores, settings=settings.get("benchmark", {}))
    return SweepResult(alphas=tuple(float(a) for a in doc["alphas"]), benchmark=bench, settings=settings)


# --------------------------------------------------------------------------------------------------
# perception–distortion plot


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EsrganError(
            "the perception-distortion plot needs matplotlib: pip install 'esrgan[plots]' "
            "(or skip the plot: --no-plot, write_sweep(..., plot=False))"
        ) from None


def render_plot(result: SweepResult) -> bytes:
    """PNG bytes of the perception–distortion plot: NIQE (x) vs PSNR (y), one panel per dataset.

    Each panel has one curve per interpolation through its α points (labelled with α); points whose NIQE is
    undefined are left out. Drawn with matplotlib's Agg canvas (no pyplot, no global backend change).
    """
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = result.datasets()
    rows = result.rows()
    fig = Figure(figsize=(4.6 * len(datasets), 4.2), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    styles = {
        "network": {"color": "tab:red", "marker": "o", "label": "network interpolation"},
        "image": {"color": "tab:blue", "marker": "s", "label": "image interpolation"},
    }
    scale = result.settings.get("benchmark", {}).get("scale")
    for ax, d in zip(axes, datasets, strict=True):
        plotted = False
        for kind in INTERPOLATIONS:
            pts = [r for r in rows if r.dataset == d and r.interpolation == kind and r.niqe is not None]
            if not pts:
                continue
            plotted = True
            style = styles[kind]
            ax.plot(
                [r.niqe for r in pts],
                [r.psnr for r in pts],
                color=style["color"],
                marker=style["marker"],
                markersize=5,
                linewidth=1.4,
                label=style["label"],
            )
            for r in pts:
                if (
                    r.alpha in (0.0, 1.0)
                    and any(
                        (q.dataset, q.interpolation, q.alpha) == (d, "network", r.alpha)
                        and q.niqe is not None
                        for q in rows
                    )
                    and kind == "image"
                ):
                    continue  # the two curves meet at α = 0 and α = 1: label those points once
                offset = (5, 4) if kind == "network" else (5, -11)
                ax.annotate(
                    f"{r.alpha:g}",
                    (r.niqe, r.psnr),  # type: ignore[arg-type]
                    textcoords="offset points",
                    xytext=offset,
                    fontsize=8,
                    color=style["color"],
                )
        if not plotted:
            ax.text(0.5, 0.5, "NIQE undefined\n(images too small)", ha="center", va="center")
            ax.set_xticks([])
        ax.set_title(f"{d}" + (f" (×{scale})" if scale else ""))
        ax.set_xlabel("NIQE (lower = better perceptual quality)")
        ax.set_ylabel("PSNR-Y [dB] (higher = less distortion)")
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize=8, title="labels: α", title_fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# crop grid


def grid_zoom(crop_height: int, crop_width: int) -> int:
    """Integer enlargement of the crops in the grid: the largest that keeps them within ``GRID_CELL``."""
    return max(1, GRID_CELL // max(crop_height, crop_width))


def grid_size(n_alphas: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """``(width, height)`` of the crop grid in pixels (see :func:`render_crop_grid`)."""
    z = grid_zoom(crop_height, crop_width)
    cw, ch = crop_width * z, crop_height * z
    width = GRID_ROW_LABEL_W + (n_alphas + 1) * (cw + GRID_PAD) + GRID_PAD
    height = GRID_TITLE_H + 2 * (GRID_LABEL_H + ch + GRID_PAD) + GRID_PAD
    return width, height


def grid_cell_origin(row: int, col: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """``(x, y)`` of the top-left pixel of the crop in ``row`` (0, 1) and ``col`` (0 = HR/bicubic)."""
    z = grid_zoom(crop_height, crop_width)
    cw, ch = crop_width * z, crop_height * z
    x = GRID_ROW_LABEL_W + col * (cw + GRID_PAD)
    y = GRID_TITLE_H + row * (GRID_LABEL_H + ch + GRID_PAD) + GRID_LABEL_H
    return x, y


def _fonts() -> tuple[Any, Any, str]:
    """(label font, title font, the α symbol it can draw): DejaVu Sans from matplotlib if installed."""
    from PIL import ImageFont

    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), 14), ImageFont.truetype(str(path), 15), "α"
    except (ImportError, OSError):
        return ImageFont.load_default(), ImageFont.load_default(), "alpha"


def render_crop_grid(crop: SweepCrop, alphas: Sequence[float]) -> np.ndarray:
    """The crop grid as an ``H×W×3`` uint8 array.

    Layout: a title line; row 1 = HR, then network interpolation at each α; row 2 = bicubic, then image
    interpolation at each α. Each crop is enlarged by :func:`grid_zoom` (nearest neighbour, pixels stay
    visible) under a label strip; row names on the left. :func:`grid_size` and :func:`grid_cell_origin` give
    the geometry.
    """
    from PIL import Image as PILImage
    from PIL import ImageDraw

    h, w = crop.hr.shape[:2]
    z = grid_zoom(h, w)
    width, height = grid_size(len(alphas), h, w)
    canvas = PILImage.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, title_font, alpha_sym = _fonts()
    x, y, bw, bh = crop.box
    draw.text(
        (GRID_PAD, 4),
        f"{crop.dataset}/{crop.image}: x={x}, y={y}, {bw}×{bh} HR pixels, shown ×{z}",
        fill=(0, 0, 0),
        font=title_font,
    )
    rows = [
        ("network\ninterpolation", ("HR", crop.hr), "network"),
        ("image\ninterpolation", ("bicubic", crop.bicubic), "image"),
    ]
    for r, (row_name, (ref_name, ref), kind) in enumerate(rows):
        cells = [(ref_name, ref)] + [(f"{alpha_sym} = {a:g}", crop.panels[(kind, a)]) for a in alphas]
        for c, (label, pixels) in enumerate(cells):
            cx, cy = grid_cell_origin(r, c, h, w)
            canvas.paste(PILImage.fromarray(np.kron(pixels, np.ones((z, z, 1), dtype=np.uint8))), (cx, cy))
            draw.text((cx + 2, cy - GRID_LABEL_H + 3), label, fill=(0, 0, 0), font=font)
        _, cy = grid_cell_origin(r, 0, h, w)
        draw.multiline_text((GRID_PAD, cy + 4), row_name, fill=(0, 0, 0), font=font, spacing=3)
    return np.asarray(canvas)


# --------------------------------------------------------------------------------------------------
# writing


def _png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def check_sweep_writable(
    out_dir: str | os.PathLike[str], *, overwrite: bool = False, plot: bool = True, grid: bool = True
) -> list[Path]:
    """The paths :func:`write_sweep` would write; raises if one exists (unless ``overwrite``), if the
    folder is a file, or if the plot is wanted and matplotlib is missing. Call it before a long run."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EsrganError(f"{out_dir}: exists and is not a folder; choose another output folder")
    if plot:
        _require_matplotlib()
    keys = ["md", "csv", "json"] + (["plot"] if plot else []) + (["grid"] if grid else [])
    paths = [out_dir / SWEEP_FILES[k] for k in keys]
    check_outputs_free(paths, overwrite=overwrite)
    return paths


def write_sweep(
    result: SweepResult, out_dir: str | os.PathLike[str], *, overwrite: bool = False, plot: bool = True
) -> list[Path]:
    """Write the sweep's files to ``out_dir``; return their paths.

    ``sweep.md``, ``sweep.csv``, ``sweep.json`` (tables), ``perception_distortion.png`` (with ``plot``;
    needs matplotlib: ``pip install esrgan[plots]``) and ``crops.png`` (if the result has a crop). Every file
    is written atomically; nothing is written if one exists and ``overwrite`` is false (checked up front),
    and everything is rendered before the first file is written.
    """

    grid = result.crop is not None
    paths = check_sweep_writable(out_dir, overwrite=overwrite, plot=plot, grid=grid)
    contents: list[str | bytes] = [to_markdown(result), to_csv(result), to_json(result)]
    if plot:
        contents.append(render_plot(result))
    if grid:
        assert result.crop is not None
        contents.append(_png_bytes(render_crop_grid(result.crop, result.alphas)))
    for path, content in zip(paths, contents, strict=True):
        write_output(
            path, content.encode("utf-8") if isinstance(content, str) else content, overwrite=overwrite
        )
    return paths
