"""Result tables: Markdown (for people and docs), CSV (one row per image and method), JSON (everything).

* Markdown: a header with the protocol, the summary table (method × dataset, ``PSNR / SSIM [/ NIQE]``, the
  layout of the papers' tables), then per dataset a table of per-method means and a per-image PSNR / SSIM
  table. Rounded for reading: PSNR 2 decimals in the summary (as published), 4 elsewhere; SSIM 4; NIQE 3/4.
* CSV: ``dataset,image,method,height,width,psnr,ssim,niqe,rmse,seconds`` with full float precision (``repr``);
  empty cells for values not computed, ``inf`` for identical images.
* JSON: ``{"format": "esrgan-results/1", "settings": …, "summary": [...], "images": [...]}`` — the settings
  record holds scale, crop, Y convention, LR source, metric conventions and versions. Non-finite numbers are
  written as the strings ``"inf"``/``"-inf"``/``"nan"`` (JSON has no infinity); :func:`read_json` restores
  them.

All files are written atomically (temporary file in the same folder + ``os.replace``) and existing files are
never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from esrgan import _fs as fs
from esrgan.errors import EsrganError
from esrgan.eval.results import BenchmarkResult, ImageScore, MethodSummary

__all__ = [
    "CSV_FIELDS",
    "JSON_FORMAT",
    "atomic_write_text",
    "check_outputs_free",
    "check_tables_writable",
    "read_csv",
    "read_json",
    "summary_markdown",
    "to_csv",
    "to_json",
    "to_markdown",
    "write_tables",
]

CSV_FIELDS = ("dataset", "image", "method", "height", "width", "psnr", "ssim", "niqe", "rmse", "seconds")
JSON_FORMAT = "esrgan-results/1"
_FLOAT_FIELDS = ("psnr", "ssim", "niqe", "rmse", "seconds")


# --------------------------------------------------------------------------------------------------
# atomic writes


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (`esrgan._fs`); never a partial file.

    Raises:
        EsrganError: ``path`` exists and ``overwrite`` is false, or the file cannot be written.
    """
    write_output(path, text.encode("utf-8"), overwrite=overwrite)


def write_output(path: str | Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; `EsrganError` if it exists (without ``overwrite``) or fails."""
    try:
        fs.atomic_write_bytes(path, data, overwrite=overwrite)
    except FileExistsError:
        raise EsrganError(
            f"{path}: already exists; choose another folder or pass overwrite=True (--overwrite)"
        ) from None
    except OSError as e:
        raise EsrganError(f"{path}: cannot write the file ({e.strerror or e})") from e


def check_outputs_free(paths: Iterable[Path], *, overwrite: bool = False) -> None:
    """Raise `EsrganError` before a long run whose `write_output` would fail: a path that is a folder, or
    one that exists (without ``overwrite``)."""
    paths = list(paths)
    for p in paths:
        if p.is_dir():
            raise EsrganError(f"{p}: is a folder; choose another output folder")
    if not overwrite:
        existing = [p for p in paths if p.exists()]
        if existing:
            raise EsrganError(
                f"{existing[0]}: already exists; choose another folder or pass overwrite=True (--overwrite)"
            )


# --------------------------------------------------------------------------------------------------
# Markdown


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A score for a table: `digits` decimals; "–" for a missing value (None or NaN), "inf" / "-inf"."""
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(result: BenchmarkResult) -> str:
    """Method × dataset table, cells ``PSNR / SSIM`` (``/ NIQE`` when computed)."""
    summaries = result.summaries()
    with_niqe = any(s.niqe is not None for s in summaries)
    cells = {(s.method, s.dataset): s for s in summaries}
    datasets = result.datasets()
    rows = []
    for m in result.methods():
        row = [md_escape(m)]
        for d in datasets:
            s = cells.get((m, d))
            if s is None:
                row.append("–")
                continue
            text = f"{fmt_number(s.psnr, 2)} / {fmt_number(s.ssim, 4)}"
            if with_niqe:
                text += f" / {fmt_number(s.niqe, 3)}"
            row.append(text)
        rows.append(row)
    what = "PSNR / SSIM" + (" / NIQE" if with_niqe else "")
    return markdown_table([what, *(md_escape(d) for d in datasets)], rows)


def protocol_line(settings: dict[str, Any]) -> str:
    parts = []
    if settings.get("scale") is not None:
        parts.append(f"×{settings['scale']}")
    if "crop_border" in settings:
        parts.append(f"{settings['crop_border']} border pixels removed")
    if "y_rounding" in settings:
        y = "MATLAB uint8 (rounded) Y" if settings["y_rounding"] else "float Y (not rounded)"
        parts.append(f"PSNR/SSIM on BT.601 {y}")
    return "; ".join(parts)


def to_markdown(result: BenchmarkResult, *, title: str = "Results") -> str:
    """The whole Markdown document (module docstring)."""
    out = [f"# {title}", ""]
    protocol = protocol_line(result.settings)
    if protocol:
        out += [protocol + ". Means over images; RMSE is PIRM's sqrt(mean MSE) on rounded Y.", ""]
    out += ["## Summary", "", summary_markdown(result), ""]
    summaries = result.summaries()
    for d in result.datasets():
        out += [f"## {md_escape(d)}", ""]
        rows = [
            [
                md_escape(s.method),
                str(s.images),
                fmt_number(s.psnr, 4),
                fmt_number(s.ssim, 4),
                fmt_number(s.niqe, 4),
                fmt_number(s.rmse, 4),
                fmt_number(s.seconds, 4),
            ]
            for s in summaries
            if s.dataset == d
        ]
        out += [markdown_table(["method", "images", "PSNR", "SSIM", "NIQE", "RMSE", "s/img"], rows), ""]
        methods = [s.method for s in summaries if s.dataset == d]
        per_image: dict[str, dict[str, ImageScore]] = {}
        for sc in result.scores:
            if sc.dataset == d:
                per_image.setdefault(sc.image, {})[sc.method] = sc
        img_rows = []
        for image, by_method in per_image.items():
            row = [md_escape(image)]
            for m in methods:
                sc = by_method.get(m)
                row.append("–" if sc is None else f"{fmt_number(sc.psnr, 4)} / {fmt_number(sc.ssim, 4)}")
            img_rows.append(row)
        out += [f"Per image (PSNR / SSIM), {md_escape(d)}:", ""]
        out += [markdown_table(["image", *(md_escape(m) for m in methods)], img_rows), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# CSV


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact round-trip: 'inf', 'nan' included
    return str(value)


def to_csv(result: BenchmarkResult) -> str:
    """One row per (dataset, image, method), full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for s in result.scores:
        writer.writerow([csv_value(getattr(s, f)) for f in CSV_FIELDS])
    return buf.getvalue()


def score_from_strings(row: dict[str, Any]) -> ImageScore:
    def num(key: str) -> float | None:
        v = row.get(key)
        if v is None or v == "":
            return None
        return float(v)

    return ImageScore(
        dataset=str(row["dataset"]),
        image=str(row["image"]),
        method=str(row["method"]),
        psnr=float(row["psnr"]),
        ssim=float(row["ssim"]),
        niqe=num("niqe"),
        rmse=float(row["rmse"]),
        seconds=num("seconds"),
        height=int(row["height"]),
        width=int(row["width"]),
    )


def read_csv(path: str | Path) -> list[ImageScore]:
    """Per-image scores back from a CSV written by :func:`to_csv`."""
    with open(path, encoding="utf-8", newline="") as f:
        return [score_from_strings(row) for row in csv.DictReader(f)]


# --------------------------------------------------------------------------------------------------
# JSON


def json_number(value: float | int | None) -> float | int | str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def json_record(obj: ImageScore | MethodSummary) -> dict[str, Any]:
    return {k: json_number(v) for k, v in vars(obj).items()}


def to_json(result: BenchmarkResult) -> str:
    """Settings, per-(dataset, method) summaries and per-image scores as strict JSON."""
    doc = {
        "format": JSON_FORMAT,
        "settings": result.settings,
        "summary": [json_record(s) for s in result.summaries()],
        "images": [json_record(s) for s in result.scores],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def read_json(path: str | Path) -> BenchmarkResult:
    """A :class:`BenchmarkResult` (without comparisons) back from :func:`to_json` output."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise EsrganError(f"{path}: not a readable results file ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise EsrganError(f"{path}: not an esrgan results file (expected format {JSON_FORMAT!r})")
    return BenchmarkResult(scores=[score_from_strings(r) for r in doc["images"]], settings=doc["settings"])


# --------------------------------------------------------------------------------------------------


def write_tables(
    result: BenchmarkResult,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    stem: str = "results",
    formats: Iterable[str] = ("md", "csv", "json"),
) -> list[Path]:
    """Write ``<out_dir>/<stem>.md``, ``.csv`` and ``.json``; return the paths written.

    Nothing is written if any of the files exists and ``overwrite`` is false (checked up front).
    """
    render = {"md": to_markdown, "csv": to_csv, "json": to_json}
    formats = list(formats)
    paths = check_tables_writable(out_dir, overwrite=overwrite, stem=stem, formats=formats)
    for fmt, path in zip(formats, paths, strict=True):
        atomic_write_text(path, render[fmt](result), overwrite=overwrite)
    return paths


def check_tables_writable(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    stem: str = "results",
    formats: Iterable[str] = ("md", "csv", "json"),
) -> list[Path]:
    """The paths :func:`write_tables` would write; raises if one exists (unless ``overwrite``) or is a folder.

    Call it before a long run so that a name clash is reported before the work, not after.
    """
    out_dir = Path(out_dir)
    formats = list(formats)
    unknown = [f for f in formats if f not in ("md", "csv", "json")]
    if unknown:
        raise EsrganError(f"unknown table format(s) {unknown}; choose from md, csv, json")
    if out_dir.exists() and not out_dir.is_dir():
        raise EsrganError(f"{out_dir}: exists and is not a folder; choose another output folder")
    paths = [out_dir / f"{stem}.{fmt}" for fmt in formats]
    check_outputs_free(paths, overwrite=overwrite)
    return paths
