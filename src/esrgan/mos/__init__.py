"""Human evaluation: a Mean Opinion Score (MOS) study, as in SRGAN §3.6 (docs/mos.md).

* :func:`create_study` (:mod:`esrgan.mos.study`) — a study folder from SR result folders: images under opaque
  ids, calibration examples (nearest = 1, HR = 5), ``study.json`` and the votes database.
* :func:`create_app` / :func:`make_study_server` (:mod:`esrgan.mos.server`) — the blind rating web app
  (Flask, ``pip install 'esrgan[mos]'``); votes go to SQLite (:mod:`esrgan.mos.db`), one transaction each.
* :func:`write_report` (:mod:`esrgan.mos.report`) — MOS with 95 % t intervals, score distributions,
  pairwise Wilcoxon signed-rank tests, Krippendorff's alpha, a calibration check per rater.

Flask is imported only by the server functions, so studies can be created and analysed without it.
"""

from __future__ import annotations

from typing import Any

from esrgan.mos.report import MosReport, analyse_study, krippendorff_alpha, write_report
from esrgan.mos.study import Study, StudyItem, create_study, load_study

__all__ = [
    "MosReport",
    "Study",
    "StudyItem",
    "analyse_study",
    "create_app",
    "create_study",
    "krippendorff_alpha",
    "load_study",
    "make_study_server",
    "write_report",
]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`esrgan.mos.server.create_app` (imported on use: it needs Flask)."""
    from esrgan.mos.server import create_app as _create_app

    return _create_app(*args, **kwargs)


def make_study_server(*args: Any, **kwargs: Any) -> Any:
    """See :func:`esrgan.mos.server.make_study_server` (imported on use: it needs Flask)."""
    from esrgan.mos.server import make_study_server as _make

    return _make(*args, **kwargs)
