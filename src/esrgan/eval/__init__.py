"""Evaluation: benchmark runner, evaluation of SR folders, result tables and HTML reports.

* :func:`run_benchmark` (:mod:`esrgan.eval.benchmark`) — models and baselines on benchmark sets, MATLAB
  protocol.
* :func:`evaluate_folders` (:mod:`esrgan.eval.evaluate`) — SR images computed elsewhere against HR images.
* :func:`write_tables` (:mod:`esrgan.eval.tables`) — Markdown, CSV and JSON; :func:`read_json` reads JSON
  back.
* :func:`write_html_report` (:mod:`esrgan.eval.report`) — side-by-side zoomed crops.
* :func:`run_sweep` / :func:`write_sweep` (:mod:`esrgan.eval.sweep`) — the ESRGAN interpolation study:
  network vs image interpolation across α, tables, perception–distortion plot, crop grid.

Both runners return a :class:`BenchmarkResult` (per-image :class:`ImageScore` rows, per-(dataset, method)
:class:`MethodSummary` means, a JSON-ready settings record).
"""

from __future__ import annotations

from esrgan.eval.benchmark import BenchmarkSettings, run_benchmark
from esrgan.eval.evaluate import evaluate_folders
from esrgan.eval.report import Comparison, ReportImage, write_html_report
from esrgan.eval.results import BenchmarkResult, DatasetSpec, ImageScore, MethodSummary
from esrgan.eval.sweep import SweepResult, SweepSettings, read_sweep, run_sweep, write_sweep
from esrgan.eval.tables import read_json, write_tables

__all__ = [
    "BenchmarkResult",
    "BenchmarkSettings",
    "Comparison",
    "DatasetSpec",
    "ImageScore",
    "MethodSummary",
    "ReportImage",
    "SweepResult",
    "SweepSettings",
    "evaluate_folders",
    "read_json",
    "read_sweep",
    "run_benchmark",
    "run_sweep",
    "write_html_report",
    "write_sweep",
    "write_tables",
]
