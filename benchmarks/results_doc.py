"""Writing a benchmark's table into its Markdown page, between the page's results markers."""

from __future__ import annotations

from pathlib import Path


def write_results(doc: Path, script: str, text: str) -> None:
    """Replace what lies between ``<!-- results: written by benchmarks/SCRIPT --write -->`` and
    ``<!-- /results -->`` in `doc` with `text`; the rest of the page (how to run it, notes) stays."""
    begin, end = f"<!-- results: written by benchmarks/{script} --write -->", "<!-- /results -->"
    page = doc.read_text()
    if begin not in page or end not in page:
        raise SystemExit(f"{doc}: the results markers are missing")
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{text}\n{end}{tail}")
