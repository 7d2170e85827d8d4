"""The results of a benchmark or evaluation: per-image scores, per-method means and their container.

Plain data, no computation beyond averaging; `tables` writes them, `report` draws them, `benchmark` and
`evaluate` fill them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BenchmarkResult", "DatasetSpec", "ImageScore", "MethodSummary", "summarize"]


@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark set: HR folder and, optionally, a folder of ready-made LR images."""

    name: str
    hr_dir: Path
    lr_dir: Path | None = None


@dataclass(frozen=True)
class ImageScore:
    """Scores of one method on one image. ``niqe``/``seconds`` are ``None`` when not computed."""

    dataset: str
    image: str
    method: str
    psnr: float
    ssim: float
    niqe: float | None
    rmse: float
    seconds: float | None
    height: int
    width: int


@dataclass(frozen=True)
class MethodSummary:
    """Scores of one method on one dataset: means over images; ``rmse`` is PIRM's ``sqrt(mean MSE)``."""

    dataset: str
    method: str
    images: int
    psnr: float
    ssim: float
    niqe: float | None
    rmse: float
    seconds: float | None


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` and :func:`~esrgan.eval.evaluate.evaluate_folders` return.

    ``scores`` has one row per (dataset, image, method) in run order; ``settings`` is a JSON-ready record of
    the protocol (scale, crop, Y convention, LR source, versions, ...); ``comparisons`` holds the zoomed crops
    for the HTML report (not serialised).
    """

    scores: list[ImageScore]
    settings: dict[str, Any]
    comparisons: list[Any] = field(default_factory=list, repr=False)  # esrgan.eval.report.Comparison

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(s.dataset for s in self.scores))

    def methods(self) -> list[str]:
        return list(dict.fromkeys(s.method for s in self.scores))

    def summaries(self) -> list[MethodSummary]:
        """Per (dataset, method) means, datasets and methods in run order."""
        return summarize(self.scores)

    def summary(self, dataset: str, method: str) -> MethodSummary:
        for s in self.summaries():
            if s.dataset == dataset and s.method == method:
                return s
        raise KeyError(f"no scores for method {method!r} on dataset {dataset!r}")


def _mean(values: Sequence[float]) -> float:
    # math.fsum: exact sum, so the mean does not depend on the order of the images.
    return math.fsum(values) / len(values)


def summarize(scores: Iterable[ImageScore]) -> list[MethodSummary]:
    """Group per-image scores by (dataset, method) and average them (module docstring for RMSE)."""
    groups: dict[tuple[str, str], list[ImageScore]] = {}
    for s in scores:
        groups.setdefault((s.dataset, s.method), []).append(s)
    out = []
    for (dataset, method), rows in groups.items():
        niqes = [r.niqe for r in rows]
        secs = [r.seconds for r in rows]
        out.append(
            MethodSummary(
                dataset=dataset,
                method=method,
                images=len(rows),
                psnr=_mean([r.psnr for r in rows]),
                ssim=_mean([r.ssim for r in rows]),
                niqe=None if any(v is None for v in niqes) else _mean(niqes),  # type: ignore[arg-type]
                rmse=math.sqrt(_mean([r.rmse**2 for r in rows])),
                seconds=None if any(v is None for v in secs) else _mean(secs),  # type: ignore[arg-type]
            )
        )
    return out
