"""End to end in a real browser: Debian's chromium, driven headless by Playwright, against the real server.

Two raters complete a small study (3 images × 4 methods); one stops half-way and resumes in a new browser
context with their resume code, and changes one score; then the report is computed from their votes.

Run it with ``pytest -m browser``. It needs ``apt-get install -y chromium`` (``/usr/bin/chromium``, or set
``ESRGAN_CHROMIUM``) and ``pip install 'esrgan[browser]'`` (Playwright; no browser download is used). Without
them it is skipped. Set ``ESRGAN_MOS_SCREENSHOTS=DIR`` to keep screenshots of each screen.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from mos_support import METHOD_NAMES, make_study
from scipy import stats

CHROMIUM = Path(os.environ.get("ESRGAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")


def _missing() -> str | None:
    if importlib.util.find_spec("flask") is None:
        return "flask is not installed (pip install 'esrgan[mos]')"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install 'esrgan[browser]')"
    if not CHROMIUM.is_file():
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium, or set ESRGAN_CHROMIUM)"
    return None


pytestmark = [pytest.mark.browser, pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]

# Scores each rater gives, by the method the test (not the page) knows an image id stands for.
ALICE = {"ESRGAN": 4, "SRGAN": 3, "nearest": 2, "hr": 5}
BOB = {"ESRGAN": 5, "SRGAN": 2, "nearest": 1, "hr": 4}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def served(tmp_path):
    from esrgan.mos import make_study_server

    study = make_study(tmp_path)
    server = make_study_server(study.root, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield study, f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll ``expression`` in the page until it is truthy. (Playwright's ``wait_for_function`` evaluates a
    string inside the page, which the app's Content-Security-Policy rightly forbids; ``evaluate`` goes
    through the DevTools protocol and is not affected.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.02)


def _shot(page, name: str) -> None:
    folder = os.environ.get("ESRGAN_MOS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _assert_blind(page) -> None:
    html = page.content().lower()
    for word in (*METHOD_NAMES, "nearest", "baby", "bird", "butterfly", "esrgan"):
        assert word.lower() not in html, word


def _start(page, base: str, name: str) -> None:
    page.goto(base)
    page.fill("#name", name)
    page.click("#start-button")


def _calibrate(page) -> None:
    page.wait_for_selector("#calibration:not([hidden])")
    _until(page, "[...document.querySelectorAll('#examples img')].every(i => i.complete && i.naturalWidth)")
    assert page.locator("#examples img").count() == 4  # two pairs
    captions = page.locator("#examples figcaption").all_inner_texts()
    assert captions == ["score 1: bad", "score 5: excellent"] * 2
    _shot(page, "calibration")
    _assert_blind(page)
    page.click("#calibration-done")


def _score(page, study, scores: dict[str, int], count: int, *, keyboard: bool, total: int = 12) -> list[str]:
    """Score ``count`` images; returns their ids. Waits for each image before scoring, like a person."""
    seen = []
    for _ in range(count):
        page.wait_for_selector("#rating:not([hidden])")
        _until(page, "!document.querySelector('#scores button').disabled")
        shown = int(page.inner_text("#progress").split(" / ")[0])
        assert page.inner_text("#progress") == f"{shown} / {total}"
        item = page.get_attribute("#image", "data-item")
        assert page.get_attribute("#image", "src") == f"/images/{item}"
        score = scores[study.item(item).method]
        if keyboard:
            page.keyboard.press(str(score))
        else:
            page.click(f"#scores button[data-score='{score}']")
        moved_on = f"document.getElementById('image').dataset.item !== '{item}'"
        _until(page, f"{moved_on} || !document.getElementById('done').hidden")
        seen.append(item)
    return seen


def test_two_raters_complete_a_study_in_chromium(served, browser, tmp_path):
    study, base = served

    # Alice: all 12 images with the keyboard, in one go.
    alice = browser.new_context()
    page = alice.new_page()
    _start(page, base, "Alice")
    _calibrate(page)
    page.wait_for_selector("#rating:not([hidden])")
    assert page.inner_text("#progress") == "1 / 12"
    _shot(page, "rating")
    _assert_blind(page)
    alice_items = _score(page, study, ALICE, 12, keyboard=True)
    page.wait_for_selector("#done:not([hidden])")
    assert "all 12 images" in page.inner_text("#done")
    alice.close()

    # Bob: 3 images by clicking, a mis-score changed with "Change my last score", 3 more, then stop.
    ctx = browser.new_context()
    page = ctx.new_page()
    _start(page, base, "Bob")
    _calibrate(page)
    bob_items = _score(page, study, BOB, 2, keyboard=False)
    _until(page, "!document.querySelector('#scores button').disabled")
    third = page.get_attribute("#image", "data-item")
    page.click("#scores button[data-score='3']")  # the mis-score
    _until(page, f"document.getElementById('image').dataset.item !== '{third}'")
    page.click("#back")
    _until(page, f"document.getElementById('image').dataset.item === '{third}'")
    assert "changing your last score (was 3)" in page.inner_text("#mode")
    assert page.inner_text("#progress") == "3 / 12"
    _until(page, "!document.querySelector('#scores button').disabled")
    page.click(f"#scores button[data-score='{BOB[study.item(third).method]}']")
    bob_items.append(third)
    bob_items += _score(page, study, BOB, 3, keyboard=False)
    page.wait_for_selector("#rating:not([hidden])")
    assert page.inner_text("#progress") == "7 / 12"
    page.click("#stop")
    page.wait_for_selector("#paused:not([hidden])")
    code = page.inner_text("#who-code")
    _shot(page, "paused")
    ctx.close()

    # Bob again, in a fresh browser context (no stored state): his name asks for the code, then he goes on.
    ctx = browser.new_context()
    page = ctx.new_page()
    _start(page, base, "Bob")
    page.wait_for_selector("#code-row:not([hidden])")
    assert "started already" in page.inner_text("#start-error")
    page.fill("#code", code.lower())
    page.click("#start-button")
    page.wait_for_selector("#rating:not([hidden])")  # calibrated already: straight to scoring
    assert page.inner_text("#progress") == "7 / 12"
    bob_items += _score(page, study, BOB, 6, keyboard=True)
    page.wait_for_selector("#done:not([hidden])")
    ctx.close()

    # Every image once per rater; the votes in the database are exactly what was scored.
    assert sorted(alice_items) == sorted(bob_items) == sorted(it.id for it in study.items)
    assert alice_items != bob_items  # a different random order per rater
    conn = sqlite3.connect(study.db_path)
    rows = conn.execute(
        "SELECT r.name, v.item_id, v.score, v.changes FROM votes v JOIN raters r ON r.id = v.rater_id"
    ).fetchall()
    conn.close()
    expected = {("Alice", i): ALICE[study.item(i).method] for i in alice_items}
    expected |= {("Bob", i): BOB[study.item(i).method] for i in bob_items}
    assert {(name, item): score for name, item, score, _ in rows} == expected
    assert [(name, item) for name, item, _, changes in rows if changes] == [("Bob", third)]

    # The report computes its numbers from these votes.
    from esrgan.mos import write_report

    out = tmp_path / "report"
    write_report(study, out)
    summary = json.loads((out / "summary.json").read_text())
    mos = {m["method"]: m for m in summary["mos"]}
    for method in study.methods:
        assert mos[method]["mean"] == pytest.approx((ALICE[method] + BOB[method]) / 2)
        assert mos[method]["n"] == 6
    tests = {(t["a"], t["b"]): t for t in summary["tests"]}
    # ESRGAN − SRGAN per (rater, image): Alice 4−3 = 1 three times, Bob 5−2 = 3 three times.
    ref = stats.wilcoxon([1, 1, 1, 3, 3, 3], zero_method="wilcox", correction=False, method="approx")
    assert tests[("ESRGAN", "SRGAN")]["p_value"] == pytest.approx(ref.pvalue)
    assert tests[("ESRGAN", "SRGAN")]["n_pairs"] == 6
    assert [c["ok"] for c in summary["calibration"]] == [True, True]
    report_md = (out / "report.md").read_text()
    assert "| ESRGAN | 4.500 |" in report_md and "| SRGAN | 2.500 |" in report_md
