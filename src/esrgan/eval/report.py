"""HTML comparison report: side-by-side zoomed crops per image, the way SR papers show results.

For each image the page shows a thumbnail of the whole HR image with a red rectangle, then the same window
from every method — LR (nearest-upscaled to the HR size; left out when a ``"nearest"`` method is shown
anyway), the baselines and models in run order, and HR — enlarged with nearest neighbour so that pixels stay
visible, with the image's PSNR / SSIM (whole image, the benchmark's crop and Y convention) under each crop.

The window is chosen automatically (:func:`choose_crop`): among windows aligned to the scale, the one where
the methods' outputs and the HR disagree most (largest sum over the window of the per-pixel variance of Y
across {HR, outputs}); with no output to compare, the window with the most HR detail (largest Y variance).
Border pixels that the metrics ignore are never chosen.

Everything is written next to ``index.html`` (PNGs under ``images/``, relative links, inline CSS, no external
resources, no scripts); file names are generated (``NNN_<slug>_...png``) and all text is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from esrgan.errors import EsrganError
from esrgan.eval.protocol import score_image, upscale_nearest
from esrgan.eval.results import BenchmarkResult
from esrgan.eval.tables import atomic_write_text, fmt_number
from esrgan.io.images import Image, write_image
from esrgan.ops.color import rgb_to_y

logger = logging.getLogger(__name__)

__all__ = [
    "Panel",
    "Comparison",
    "ReportImage",
    "check_report_writable",
    "choose_crop",
    "make_comparison",
    "write_html_report",
]

THUMB_SIZE = 320  # longest side of the full-image thumbnail, in pixels
ZOOM_TO = 192  # crops are enlarged by an integer factor to about this size


@dataclass(frozen=True)
class Panel:
    """One crop in a comparison row: ``crop`` is ``h×w×3`` uint8 at HR resolution (not yet enlarged)."""

    label: str
    crop: np.ndarray
    psnr: float | None = None
    ssim: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Everything the report needs for one image (small: a thumbnail and one crop per method).

    ``box`` is ``(top, left, height, width)`` of the window in HR pixels; ``thumbnail`` is the whole HR image
    scaled to fit ``THUMB_SIZE`` with the window drawn on it.
    """

    dataset: str
    image: str
    hr_size: tuple[int, int]
    box: tuple[int, int, int, int]
    thumbnail: np.ndarray
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class ReportImage:
    """Full images of one example, for :func:`write_html_report` without a benchmark run.

    ``hr`` and every output are ``H×W×3`` (or ``H×W``) uint8 of the same size; ``lr`` (optional) is
    ``H/scale × W/scale``. Metrics use ``crop_border`` (default: ``scale``, or 0 without one) and MATLAB uint8
    Y.
    """

    name: str
    hr: np.ndarray
    outputs: Mapping[str, np.ndarray]
    lr: np.ndarray | None = None
    scale: int | None = None
    dataset: str = ""
    crop_border: int | None = None


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"report images must be uint8, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ValueError(f"expected an H×W×3 RGB or H×W gray image, got shape {img.shape}")


def _box_sum(a: np.ndarray, size: int) -> np.ndarray:
    """Sum of ``a`` over every ``size × size`` window (valid positions), via an integral image."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.float64)
    c[1:, 1:] = a.cumsum(0).cumsum(1)
    return c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]


def choose_crop(
    hr: np.ndarray,
    outputs: Sequence[np.ndarray] = (),
    *,
    size: int,
    align: int = 1,
    border: int = 0,
) -> tuple[int, int]:
    """Top-left corner of the ``size × size`` window to show (module docstring for the criterion).

    Args:
        hr: ``H×W×3`` uint8 RGB (or ``H×W``).
        outputs: SR images of the same size; the window maximises their disagreement with HR and each other.
        size: window side in pixels (≤ the image minus the borders).
        align: the corner is a multiple of ``align`` (the scale, so LR pixels are not cut).
        border: pixels at each side that the window must avoid.
    """

    h, w = hr.shape[:2]
    if size < 1 or size + 2 * border > min(h, w):
        raise ValueError(f"a {size}×{size} window with a {border}-pixel border does not fit a {w}×{h} image")
    ys = np.stack([rgb_to_y(_rgb(x)) for x in (hr, *outputs)])
    if len(ys) >= 2:
        score = _box_sum(ys.var(axis=0), size)
    else:  # HR detail: local variance of Y
        score = _box_sum(ys[0] ** 2, size) - _box_sum(ys[0], size) ** 2 / (size * size)
    align = max(1, int(align))
    first = -(-border // align) * align  # first aligned position ≥ border
    tops = np.arange(first, h - border - size + 1, align)
    lefts = np.arange(first, w - border - size + 1, align)
    if len(tops) == 0 or len(lefts) == 0:  # alignment leaves no room: drop it
        tops = np.arange(border, h - border - size + 1)
        lefts = np.arange(border, w - border - size + 1)
    grid = score[np.ix_(tops, lefts)]
    i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(tops[i]), int(lefts[j])


def _default_crop_size(h: int, w: int, align: int, border: int) -> int:
    room = min(h, w) - 2 * border
    size = int(np.clip(min(h, w) // 4, 16, 64))
    size = min(size, room)
    if size >= align:
        size -= size % align
    return max(1, size)


def _thumbnail(hr: np.ndarray, box: tuple[int, int, int, int], max_side: int = THUMB_SIZE) -> np.ndarray:
    from PIL import Image as PILImage
    from PIL import ImageDraw

    h, w = hr.shape[:2]
    f = min(1.0, max_side / max(h, w))
    im = PILImage.fromarray(hr)
    if f < 1.0:
        im = im.resize((max(1, round(w * f)), max(1, round(h * f))), PILImage.Resampling.LANCZOS)
    top, left, bh, bw = box
    x0, y0 = int(left * f), int(top * f)
    x1, y1 = max(x0 + 2, int(round((left + bw) * f)) - 1), max(y0 + 2, int(round((top + bh) * f)) - 1)
    ImageDraw.Draw(im).rectangle([x0, y0, x1, y1], outline=(255, 0, 0), width=2)
    return np.asarray(im)


def make_comparison(
    dataset: str,
    image: str,
    hr: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    *,
    lr: np.ndarray | None = None,
    scale: int | None = None,
    crop_border: int | None = None,
    y_rounding: bool = True,
    metrics: Mapping[str, tuple[float, float]] | None = None,
    crop_size: int | None = None,
) -> Comparison:
    """Pick the window and cut the crops for one image.

    Args:
        dataset, image: names shown in the report.
        hr: ``H×W×3`` (or ``H×W``) uint8 ground truth.
        outputs: ``{method: SR}``, uint8 of the HR size, in display order.
        lr: the LR input (shown nearest-upscaled); needs ``scale``.
        scale: SR factor (window alignment, LR panel, default ``crop_border``).
        crop_border: border ignored by the metrics and by the window choice (default ``scale`` or 0).
        y_rounding: Y convention of PSNR/SSIM computed here (for methods missing from ``metrics`` and LR).
        metrics: ``{method: (psnr, ssim)}`` already computed (whole image); others are computed.
        crop_size: window side in HR pixels (default: a quarter of the short side, 16–64, multiple of scale).
    """

    hr = _rgb(hr)
    outs = {k: _rgb(v) for k, v in outputs.items()}
    for k, v in outs.items():
        if v.shape != hr.shape:
            raise ValueError(f"output {k!r} has shape {v.shape}, HR has {hr.shape}")
    border = (scale or 0) if crop_border is None else int(crop_border)
    align = scale or 1
    h, w = hr.shape[:2]
    if 2 * border >= min(h, w):
        border = 0
    size = crop_size or _default_crop_size(h, w, align, border)
    top, left = choose_crop(hr, list(outs.values()), size=size, align=align, border=border)
    sl = (slice(top, top + size), slice(left, left + size))

    known = dict(metrics or {})

    def scored(label: str, img: np.ndarray) -> Panel:
        if label in known:
            p, s = known[label]
        else:
            p, s, _, _ = score_image(img, hr, crop_border=border, y_rounding=y_rounding, niqe=False)
        return Panel(label, np.ascontiguousarray(img[sl]), p, s)

    panels: list[Panel] = []
    if lr is not None and "nearest" not in outs:
        if scale is None:
            raise ValueError("make_comparison needs the scale to show the LR image")
        lr_up = upscale_nearest(_rgb(lr), scale)
        if lr_up.shape != hr.shape:
            raise ValueError(f"LR ×{scale} has shape {lr_up.shape}, HR has {hr.shape}")
        panels.append(scored(f"LR (×{scale} nearest)", lr_up))
    panels.extend(scored(k, v) for k, v in outs.items())
    panels.append(Panel("HR", np.ascontiguousarray(hr[sl]), None, None))
    box = (top, left, size, size)
    return Comparison(dataset, image, (h, w), box, _thumbnail(hr, box), tuple(panels))


# --------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.row { display: flex; flex-wrap: wrap; gap: 0.6em; align-items: flex-start; }
figure { margin: 0; text-align: center; font-size: 0.85em; }
figure img { display: block; image-rendering: pixelated; border: 1px solid #999; }
figcaption { margin-top: 0.2em; line-height: 1.3; }
.name { font-weight: 600; }
.settings { font-size: 0.85em; color: #555; }
"""


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:limit] or "x"


def _zoom(crop: np.ndarray, target: int = ZOOM_TO) -> np.ndarray:
    z = max(1, target // max(crop.shape[:2]))
    return np.repeat(np.repeat(crop, z, axis=0), z, axis=1)


def _summary_html(result: BenchmarkResult) -> str:
    summaries = result.summaries()
    datasets = result.datasets()
    with_niqe = any(s.niqe is not None for s in summaries)
    cells = {(s.method, s.dataset): s for s in summaries}
    head = "".join(f"<th>{html.escape(d)}</th>" for d in datasets)
    rows = []
    for m in result.methods():
        tds = []
        for d in datasets:
            s = cells.get((m, d))
            if s is None:
                tds.append("<td>–</td>")
                continue
            text = f"{fmt_number(s.psnr, 2)} / {fmt_number(s.ssim, 4)}"
            if with_niqe:
                text += f" / {fmt_number(s.niqe, 3)}"
            tds.append(f"<td>{html.escape(text)}</td>")
        rows.append(f"<tr><td>{html.escape(m)}</td>{''.join(tds)}</tr>")
    what = "PSNR / SSIM" + (" / NIQE" if with_niqe else "")
    return f"<table><tr><th>{html.escape(what)}</th>{head}</tr>{''.join(rows)}</table>"


def _settings_html(settings: Mapping[str, Any]) -> str:
    parts = []
    for key in ("scale", "crop_border", "y_rounding"):
        if key in settings:
            parts.append(f"{key} = {settings[key]}")
    conv = settings.get("conventions", {})
    if isinstance(conv, Mapping) and "y_rounding" in conv:
        parts.append(f"Y: {conv['y_rounding']}")
    return f'<p class="settings">{html.escape("; ".join(parts))}</p>' if parts else ""


def _as_comparisons(items: Iterable[Comparison | ReportImage]) -> list[Comparison]:
    out = []
    for item in items:
        if isinstance(item, Comparison):
            out.append(item)
        elif isinstance(item, ReportImage):
            out.append(
                make_comparison(
                    item.dataset,
                    item.name,
                    item.hr,
                    item.outputs,
                    lr=item.lr,
                    scale=item.scale,
                    crop_border=item.crop_border,
                )
            )
        else:
            raise TypeError(f"expected Comparison or ReportImage items, got {type(item).__name__}")
    return out


def check_report_writable(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Path of ``out_dir/index.html``; raises if an earlier report is there (and not ``overwrite``).

    Call it before a long run; :func:`write_html_report` checks every file again before writing.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EsrganError(f"{out_dir}: exists and is not a folder; choose another report folder")
    index = out_dir / "index.html"
    if index.exists() and not overwrite:
        raise EsrganError(
            f"{index}: already exists (an earlier report); choose another folder or pass overwrite=True "
            "(--overwrite)"
        )
    return index


def write_html_report(
    result_or_images: BenchmarkResult | Iterable[Comparison | ReportImage],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    title: str = "Super-resolution comparison",
) -> Path:
    """Write ``out_dir/index.html`` and its PNGs (``out_dir/images/``); return the path of ``index.html``.

    Args:
        result_or_images: a :class:`~esrgan.eval.benchmark.BenchmarkResult` (its ``comparisons``, kept by
            default, plus a summary table), or :class:`Comparison` / :class:`ReportImage` items.
        out_dir: folder to write into (created).
        overwrite: replace files of an earlier report; otherwise existing files are an error and nothing is
            written.
        title: page title.
    """

    out_dir = Path(out_dir)
    result = result_or_images if hasattr(result_or_images, "comparisons") else None
    comparisons = (
        list(result.comparisons) if result is not None else _as_comparisons(result_or_images)  # type: ignore[arg-type,union-attr]
    )
    if result is not None and not comparisons:
        logger.warning(
            "the result holds no comparisons (BenchmarkSettings.comparisons=False): report has tables only"
        )

    # Plan every file first, so that an existing report is detected before anything is written.
    files: dict[Path, np.ndarray] = {}
    sections = []
    for n, comp in enumerate(comparisons):
        stem = (
            f"{n:03d}_{_slug(comp.dataset)}_{_slug(comp.image)}"
            if comp.dataset
            else f"{n:03d}_{_slug(comp.image)}"
        )
        thumb_rel = f"images/{stem}_full.png"
        files[out_dir / thumb_rel] = comp.thumbnail
        top, left, bh, bw = comp.box
        figures = [
            f'<figure><img src="{quote(thumb_rel)}" width="{comp.thumbnail.shape[1]}" '
            f'height="{comp.thumbnail.shape[0]}" alt="{html.escape(comp.image, quote=True)} (full)">'
            f"<figcaption>{comp.hr_size[1]}×{comp.hr_size[0]}, crop {bw}×{bh} at x={left}, y={top}"
            "</figcaption></figure>"
        ]
        for k, panel in enumerate(comp.panels):
            rel = f"images/{stem}_{k:02d}_{_slug(panel.label, 24)}.png"
            zoomed = _zoom(panel.crop)
            files[out_dir / rel] = zoomed
            if panel.psnr is None and panel.label == "HR":
                metric = "PSNR / SSIM"
            else:
                metric = f"{fmt_number(panel.psnr, 2)} dB / {fmt_number(panel.ssim, 4)}"
            figures.append(
                f'<figure><img src="{quote(rel)}" width="{zoomed.shape[1]}" height="{zoomed.shape[0]}" '
                f'alt="{html.escape(panel.label, quote=True)}">'
                f'<figcaption><span class="name">{html.escape(panel.label)}</span><br>'
                f"{html.escape(metric)}</figcaption></figure>"
            )
        heading = f"{comp.dataset} / {comp.image}" if comp.dataset else comp.image
        sections.append(f'<h2>{html.escape(heading)}</h2>\n<div class="row">{"".join(figures)}</div>')

    index = out_dir / "index.html"
    if not overwrite:
        existing = [p for p in [index, *files] if p.exists()]
        if existing:
            raise EsrganError(
                f"{existing[0]}: already exists ({len(existing)} file(s) of an earlier report in {out_dir}); "
                "choose another folder or pass overwrite=True (--overwrite)"
            )

    body = [f"<h1>{html.escape(title)}</h1>"]
    if result is not None:
        body.append(_settings_html(result.settings))  # type: ignore[union-attr]
        if result.scores:  # type: ignore[union-attr]
            body.append(_summary_html(result))  # type: ignore[arg-type]
    body.append(
        '<p class="settings">Crops are enlarged with nearest neighbour; numbers under each crop are the PSNR '
        "(dB) / SSIM of the whole image.</p>"
    )
    body.extend(sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    for path, pixels in files.items():  # images first: index.html never points at a missing file
        write_image(path, Image(pixels=np.ascontiguousarray(pixels)), overwrite=overwrite)
    atomic_write_text(index, page, overwrite=overwrite)
    return index
