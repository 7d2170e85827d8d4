"""Result tables (Markdown / CSV / JSON round trips, atomic no-overwrite writes) and the HTML report."""

from __future__ import annotations

import csv
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter

from esrgan.errors import EsrganError
from esrgan.eval import (
    BenchmarkSettings,
    ReportImage,
    read_json,
    run_benchmark,
    write_html_report,
    write_tables,
)
from esrgan.eval.report import choose_crop, make_comparison
from esrgan.eval.results import BenchmarkResult, ImageScore
from esrgan.eval.tables import read_csv, summary_markdown, to_markdown

SCALE = 4
ODD_NAME = "a<b>&\"c'd"  # a legal file name on Linux that breaks naive HTML


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = 0.7 * gaussian_filter(rng.random((h, w, 3)), sigma=(3, 3, 0))
    img += 0.3 * gaussian_filter(rng.random((h, w, 3)), sigma=(0.8, 0.8, 0))
    img = (img - img.min()) / (img.max() - img.min())
    return np.round(255 * img).astype(np.uint8)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkResult:
    root = tmp_path_factory.mktemp("data")
    for ds, names in (("SetA", ["one", ODD_NAME]), ("Set|B", ["two"])):
        (root / ds).mkdir()
        for k, name in enumerate(names):
            PILImage.fromarray(_photo(48, 64, seed=k + len(ds))).save(root / ds / f"{name}.png")
    return run_benchmark(
        {"SetA": root / "SetA", "Set|B": root / "Set|B"},
        baselines=["nearest", "bicubic", "hr"],
        settings=BenchmarkSettings(niqe=False, progress=False, back_projection=2),
    )


def _same_score(a: ImageScore, b: ImageScore) -> None:
    assert a == b, (a, b)


def test_csv_and_json_round_trip_exactly(result: BenchmarkResult, tmp_path: Path) -> None:
    paths = write_tables(result, tmp_path)
    assert [p.name for p in paths] == ["results.md", "results.csv", "results.json"]
    assert any(s.psnr == math.inf for s in result.scores)  # the "hr" rows exercise infinity

    back_csv = read_csv(tmp_path / "results.csv")
    assert len(back_csv) == len(result.scores) == 3 * 5
    for a, b in zip(result.scores, back_csv, strict=True):
        _same_score(a, b)
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["niqe"] == "" and rows[0]["method"] == "nearest"

    text = (tmp_path / "results.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["settings"]["scale"] == SCALE and doc["settings"]["y_rounding"] is True
    assert doc["settings"]["crop_border"] == SCALE and "versions" in doc["settings"]
    back = read_json(tmp_path / "results.json")
    for a, b in zip(result.scores, back.scores, strict=True):
        _same_score(a, b)
    assert back.summaries() == result.summaries()
    json_summary = {(s["dataset"], s["method"]): s for s in doc["summary"]}
    for s in result.summaries():
        j = json_summary[(s.dataset, s.method)]
        assert (j["psnr"] == "inf") if s.psnr == math.inf else (j["psnr"] == s.psnr)
        assert j["rmse"] == s.rmse and j["images"] == s.images


def _md_tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as lists of rows of cells (header included, separator dropped)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(set(c) <= set("-:") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _num(cell: str) -> float:
    return math.inf if cell == "inf" else float(cell)


def test_markdown_parses_back_to_the_numbers(result: BenchmarkResult) -> None:
    summaries = {(s.dataset, s.method): s for s in result.summaries()}
    summary_table = _md_tables(summary_markdown(result))[0]
    assert summary_table[0] == ["PSNR / SSIM", "SetA", "Set|B"]
    for row in summary_table[1:]:
        for dataset, cell in zip(["SetA", "Set|B"], row[1:], strict=True):
            p, s = (_num(x) for x in cell.split(" / "))
            ref = summaries[(dataset, row[0])]
            assert p == ref.psnr or abs(p - ref.psnr) <= 0.005 + 1e-12
            assert abs(s - ref.ssim) <= 0.00005 + 1e-12

    tables = _md_tables(to_markdown(result))
    assert tables[0] == summary_table
    per_method = [t for t in tables if t[0][:3] == ["method", "images", "PSNR"]]
    assert len(per_method) == 2
    for dataset, table in zip(["SetA", "Set|B"], per_method, strict=True):
        assert [r[0] for r in table[1:]] == result.methods()
        for row in table[1:]:
            ref = summaries[(dataset, row[0])]
            assert int(row[1]) == ref.images
            assert row[4] == "–"  # NIQE not computed
            for cell, value in ((row[2], ref.psnr), (row[3], ref.ssim), (row[5], ref.rmse)):
                assert _num(cell) == value or abs(_num(cell) - value) <= 0.00005 + 1e-12
    per_image = [t for t in tables if t[0][0] == "image"]
    odd = next(r for r in per_image[0] if r[0] == ODD_NAME)
    score = next(s for s in result.scores if s.image == ODD_NAME and s.method == "bicubic")
    p, s = (_num(x) for x in odd[1 + result.methods().index("bicubic")].split(" / "))
    assert abs(p - score.psnr) <= 0.00005 and abs(s - score.ssim) <= 0.00005


def test_tables_refuse_to_overwrite_and_leave_no_temporary_files(
    result: BenchmarkResult, tmp_path: Path
) -> None:
    (tmp_path / "results.json").write_text("keep me")
    with pytest.raises(EsrganError, match="already exists"):
        write_tables(result, tmp_path)
    assert (tmp_path / "results.json").read_text() == "keep me"
    assert not (tmp_path / "results.md").exists()  # checked up front: nothing written
    write_tables(result, tmp_path, overwrite=True)
    assert read_json(tmp_path / "results.json").scores == result.scores
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json", "results.md"]


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value is not None:
                self.refs.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_links_only_existing_local_files_and_escapes_names(
    result: BenchmarkResult, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    index = write_html_report(result, out)
    assert index == out / "index.html"
    page = index.read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(page)
    # 3 images × (thumbnail, nearest, nearest+BP2, bicubic, bicubic+BP2, HR; no LR panel: "nearest" shows it)
    assert len(parser.refs) == 3 * 6
    for ref in parser.refs:
        assert "://" not in ref and not ref.startswith("/")
        assert (out / ref).is_file(), ref
    assert {p.name for p in (out / "images").iterdir()} == {Path(r).name for r in parser.refs}
    # The odd name appears only escaped in the markup, and reads back intact as text.
    assert ODD_NAME not in page
    assert "a&lt;b&gt;&amp;&quot;c&#x27;d" in page
    assert any(ODD_NAME in t for t in parser.text)
    assert "Set|B / two" in "".join(parser.text)
    with pytest.raises(EsrganError, match="already exists"):
        write_html_report(result, out)
    write_html_report(result, out, overwrite=True)


def test_report_from_images_and_crop_choice(tmp_path: Path) -> None:
    hr = np.full((96, 128, 3), 120, np.uint8)
    good = hr.copy()
    bad = hr.copy()
    bad[40:56, 84:100] = 250  # the only place where a method differs from HR
    top, left = choose_crop(hr, [good, bad], size=24, align=SCALE, border=SCALE)
    assert top % SCALE == 0 and left % SCALE == 0
    assert top <= 40 and top + 24 >= 56 and left <= 84 and left + 24 >= 100  # the window covers the defect

    comp = make_comparison(
        "d", "flat", hr, {"good": good, "bad": bad}, lr=hr[::SCALE, ::SCALE], scale=SCALE, crop_size=24
    )
    assert [p.label for p in comp.panels] == [f"LR (×{SCALE} nearest)", "good", "bad", "HR"]
    assert comp.panels[1].psnr == math.inf and comp.panels[2].psnr < 30
    assert all(p.crop.shape == (24, 24, 3) for p in comp.panels)
    assert comp.thumbnail.shape == (96, 128, 3)
    assert (comp.thumbnail[..., 0] == 255).sum() > 50  # the red rectangle is drawn

    index = write_html_report([ReportImage("photo", _photo(64, 64, 1), {"x": _photo(64, 64, 2)})], tmp_path)
    parser = _Refs()
    parser.feed(index.read_text())
    assert len(parser.refs) == 3 and all((tmp_path / r).is_file() for r in parser.refs)
