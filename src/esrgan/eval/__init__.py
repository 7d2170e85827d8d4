"""Evaluation: benchmark runner, evaluation of SR folders, result tables and HTML reports.

* :func:`run_benchmark` (:mod:`esrgan.eval.benchmark`) — models and baselines on benchmark sets, MATLAB
  protocol.
* :func:`evaluate_folders` (:mod:`esrgan.eval.evaluate`) — SR images computed elsewhere against HR images.
* :func:`write_tables` (:mod:`esrgan.eval.tables`) — Markdown, CSV and JSON; :func:`read_json` reads JSON
  back.
* :func:`write_html_report` (:mod:`esrgan.eval.report`) — side-by-side zoomed crops.

Both runners return a :class:`BenchmarkResult` (per-image :class:`ImageScore` rows, per-(dataset, method)
:class:`MethodSummary` means, a JSON-ready settings record).
"""

from __future__ import annotations

from esrgan.eval.benchmark import (
    BenchmarkResult,
    BenchmarkSettings,
    DatasetSpec,
    ImageScore,
    MethodSummary,
    run_benchmark,
)
from esrgan.eval.evaluate import evaluate_folders
from esrgan.eval.report import Comparison, ReportImage, write_html_report
from esrgan.eval.tables import read_json, write_tables

__all__ = [
    "BenchmarkResult",
    "BenchmarkSettings",
    "Comparison",
    "DatasetSpec",
    "ImageScore",
    "MethodSummary",
    "ReportImage",
    "evaluate_folders",
    "read_json",
    "run_benchmark",
    "write_html_report",
    "write_tables",
]
