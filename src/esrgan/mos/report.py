"""Statistics and the report of a MOS study: MOS with confidence intervals, score distributions (as SRGAN
Fig. 5), pairwise Wilcoxon signed-rank tests, rater agreement and a calibration check per rater.

The statistics, as the report states them:

* **MOS** of a method: the mean of all its scores (every rater × image vote). **95 % confidence interval**:
  Student's t interval, ``mean ± t(0.975, n−1) · s / √n`` with the sample standard deviation ``s`` of the
  ``n`` votes (:func:`mean_ci`). It treats votes as independent; votes of one rater or one image are not, so
  the interval is a lower bound on the uncertainty when there are few raters or images.
* **Significance**: for every pair of methods, the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``,
  two-sided) on paired scores (:func:`paired_scores`). Default pairing ``"rating"``: one pair per (rater,
  image) that the rater scored in both methods — the same person judging the same picture. ``"image"``: one
  pair per image, each the mean over raters. Zero differences are dropped (Wilcoxon's convention); the exact
  null distribution is used for up to 25 non-zero differences without ties, otherwise the normal
  approximation with the tie correction and no continuity correction (:func:`wilcoxon_test`). p-values are
  reported as they are and Holm-adjusted over all pairs (:func:`holm_adjust`).
* **Rater agreement**: Krippendorff's alpha (:func:`krippendorff_alpha`), ordinal metric (the scale is
  ordered, its steps need not be equal) and interval metric; units are the rated images (image × method),
  coders the raters; missing votes are allowed. 1 = perfect agreement, 0 = agreement at chance level.
* **Calibration check** per rater: their mean score of the ``nearest`` and ``hr`` reference versions; "ok"
  when each is within 1.5 of its calibration anchor (nearest ≤ 2.5, HR ≥ 3.5).
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np

from esrgan._fs import atomic_write_bytes, atomic_write_text
from esrgan.errors import EsrganError
from esrgan.eval.tables import fmt_number
from esrgan.mos import db
from esrgan.mos.study import HR, NEAREST, REFERENCE_METHODS, Study, load_study

__all__ = [
    "MethodMos",
    "MosReport",
    "PairTest",
    "RaterCalibration",
    "ScoredVote",
    "analyse_study",
    "analyse_votes",
    "calibration_check",
    "holm_adjust",
    "krippendorff_alpha",
    "mean_ci",
    "method_mos",
    "paired_scores",
    "plot_distribution",
    "wilcoxon_test",
    "write_report",
]

SCORES = (1, 2, 3, 4, 5)
Pairing = Literal["rating", "image"]
#: Calibration check: a rater's mean score of the references must be within this of the anchors 1 and 5.
CALIBRATION_TOLERANCE = 1.5
EXACT_WILCOXON_MAX_N = 25


@dataclass(frozen=True)
class ScoredVote:
    """A vote joined with what it was a vote for (only the report knows the method and image)."""

    rater: str
    image: str
    method: str
    score: int


@dataclass(frozen=True)
class MethodMos:
    """MOS of one method: ``n`` votes, mean, sample std, 95 % t interval (NaN for n < 2), votes per score."""

    method: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    counts: tuple[int, int, int, int, int]


@dataclass(frozen=True)
class PairTest:
    """Wilcoxon signed-rank test of ``a`` against ``b``; ``mean_diff`` is mean(a − b) over the pairs.

    ``statistic`` is scipy's (the smaller of the signed-rank sums); ``p_value``/``p_holm`` are ``None`` when
    there is no non-zero difference to test; ``test`` is ``"exact"``, ``"normal approx."`` or ``"none"``.
    """

    a: str
    b: str
    n_pairs: int
    n_nonzero: int
    mean_diff: float
    statistic: float | None
    p_value: float | None
    p_holm: float | None
    test: str


@dataclass(frozen=True)
class RaterCalibration:
    rater: str
    votes: int
    total: int
    nearest_mean: float | None
    hr_mean: float | None
    ok: bool | None  # None: no reference votes yet


@dataclass(frozen=True)
class MosReport:
    methods: tuple[str, ...]
    images: int
    raters: int
    votes: int
    mos: tuple[MethodMos, ...]
    tests: tuple[PairTest, ...]
    pairing: str
    alpha_ordinal: float
    alpha_interval: float
    calibration: tuple[RaterCalibration, ...]


# --------------------------------------------------------------------------------------------------
# statistics


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student's t interval ``mean ± t((1+level)/2, n−1) · s/√n``.

    The bounds are NaN for fewer than two values (no spread to estimate).
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def method_mos(votes: Iterable[ScoredVote], methods: Sequence[str]) -> list[MethodMos]:
    """MOS, std, 95 % t interval and score counts per method, in the order of ``methods``."""
    by_method: dict[str, list[int]] = {m: [] for m in methods}
    for v in votes:
        by_method.setdefault(v.method, []).append(v.score)
    out = []
    for m, scores in by_method.items():
        mean, low, high = mean_ci(scores)
        std = float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan
        counts = tuple(scores.count(s) for s in SCORES)
        out.append(MethodMos(m, len(scores), mean, std, low, high, counts))  # type: ignore[arg-type]
    return out


def paired_scores(
    votes: Iterable[ScoredVote], a: str, b: str, pairing: Pairing = "rating"
) -> tuple[np.ndarray, np.ndarray]:
    """Paired scores ``(x_a, x_b)`` of two methods.

    ``"rating"``: one pair per (rater, image) with a vote for both methods. ``"image"``: one pair per image
    with votes for both, each value the mean of that image's votes for the method. Pairs are sorted by key.
    """
    if pairing not in ("rating", "image"):
        raise ValueError(f"pairing must be 'rating' or 'image', got {pairing!r}")
    cells: dict[tuple[str, Hashable], list[int]] = {}
    for v in votes:
        if v.method in (a, b):
            key = (v.rater, v.image) if pairing == "rating" else v.image
            cells.setdefault((v.method, key), []).append(v.score)
    keys = sorted({k for (m, k) in cells if m == a} & {k for (m, k) in cells if m == b}, key=str)
    xa = np.array([np.mean(cells[(a, k)]) for k in keys], dtype=np.float64)
    xb = np.array([np.mean(cells[(b, k)]) for k in keys], dtype=np.float64)
    return xa, xb


def wilcoxon_test(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
) -> tuple[float | None, float | None, str]:
    """Two-sided Wilcoxon signed-rank test of paired ``x``, ``y``: ``(statistic, p_value, test)``.

    Zero differences are dropped first. ``test`` is ``"exact"`` (at most 25 non-zero differences, no tied
    magnitudes), ``"normal approx."`` (tie-corrected, no continuity correction) or ``"none"`` (no non-zero
    difference: statistic and p are ``None``).
    """
    from scipy import stats

    d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return None, None, "none"
    magnitudes = np.abs(d)
    exact = d.size <= EXACT_WILCOXON_MAX_N and np.unique(magnitudes).size == d.size
    method = "exact" if exact else "approx"
    res = stats.wilcoxon(d, zero_method="wilcox", correction=False, alternative="two-sided", method=method)
    return float(res.statistic), float(res.pvalue), "exact" if exact else "normal approx."


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (``None`` entries are skipped and stay ``None``)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def _delta2(values: np.ndarray, totals: np.ndarray, metric: str) -> np.ndarray:
    k = values.size
    if metric == "nominal":
        return 1.0 - np.eye(k)
    if metric == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if metric == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(totals)])
        d = np.zeros((k, k))
        for c in range(k):
            for e in range(c, k):
                d[c, e] = d[e, c] = (cum[e + 1] - cum[c] - (totals[c] + totals[e]) / 2) ** 2
        return d
    raise ValueError(f"metric must be 'nominal', 'ordinal' or 'interval', got {metric!r}")


def krippendorff_alpha(units: Iterable[Sequence[float]], metric: str = "ordinal") -> float:
    """Krippendorff's alpha of a reliability table given by units (Krippendorff 2011, "Computing
    Krippendorff's Alpha-Reliability").

    Args:
        units: for every unit (a rated image), the values the coders gave it (missing ones left out); units
            with fewer than two values are not pairable and are ignored.
        metric: ``"ordinal"`` (``δ²(c,k) = (Σ_{g=c..k} n_g − (n_c+n_k)/2)²``), ``"interval"`` (``(c−k)²``) or
            ``"nominal"``.

    Returns:
        ``1 − D_o/D_e``; NaN when there are no pairable values or no variation at all.
    """
    pairable = [np.asarray(u, dtype=np.float64) for u in units if len(u) >= 2]
    if not pairable:
        return math.nan
    values = np.unique(np.concatenate(pairable))
    k = values.size
    coincidence = np.zeros((k, k))
    for u in pairable:
        counts = np.bincount(np.searchsorted(values, u), minlength=k).astype(np.float64)
        coincidence += (np.outer(counts, counts) - np.diag(counts)) / (u.size - 1)
    totals = coincidence.sum(axis=1)
    n = totals.sum()
    delta2 = _delta2(values, totals, metric)
    observed = (coincidence * delta2).sum() / n
    expected = (np.outer(totals, totals) * delta2).sum() / (n * (n - 1))
    if expected == 0:
        return math.nan
    return float(1.0 - observed / expected)


def calibration_check(votes: Iterable[ScoredVote], totals: Mapping[str, int]) -> list[RaterCalibration]:
    """Per rater (``totals``: rater → number of items to score): mean score of the two reference versions."""
    per_rater: dict[str, list[ScoredVote]] = {r: [] for r in totals}
    for v in votes:
        per_rater.setdefault(v.rater, []).append(v)
    out = []
    for rater, vs in per_rater.items():
        nn = [v.score for v in vs if v.method == NEAREST]
        hr = [v.score for v in vs if v.method == HR]
        nn_mean = float(np.mean(nn)) if nn else None
        hr_mean = float(np.mean(hr)) if hr else None
        checks = []
        if nn_mean is not None:
            checks.append(nn_mean <= 1 + CALIBRATION_TOLERANCE)
        if hr_mean is not None:
            checks.append(hr_mean >= 5 - CALIBRATION_TOLERANCE)
        ok = all(checks) if checks else None
        out.append(RaterCalibration(rater, len(vs), totals.get(rater, 0), nn_mean, hr_mean, ok))
    return out


def analyse_votes(
    votes: Sequence[ScoredVote],
    methods: Sequence[str],
    *,
    images: int,
    totals: Mapping[str, int],
    pairing: Pairing = "rating",
) -> MosReport:
    """All statistics of the module docstring for ``votes`` (any source: a study, a CSV, a test table)."""
    mos = method_mos(votes, methods)
    pairs = []
    for a, b in itertools.combinations(methods, 2):
        xa, xb = paired_scores(votes, a, b, pairing)
        stat, p, test = wilcoxon_test(xa, xb)
        diff = float(np.mean(xa - xb)) if xa.size else math.nan
        pairs.append((a, b, xa.size, int(np.count_nonzero(xa - xb)), diff, stat, p, test))
    adjusted = holm_adjust([p[6] for p in pairs])
    tests = tuple(
        PairTest(a, b, n, nz, diff, stat, p, adj, test)
        for (a, b, n, nz, diff, stat, p, test), adj in zip(pairs, adjusted, strict=True)
    )
    by_unit: dict[tuple[str, str], list[int]] = {}
    for v in votes:
        by_unit.setdefault((v.image, v.method), []).append(v.score)
    return MosReport(
        methods=tuple(methods),
        images=images,
        raters=len({v.rater for v in votes} | set(totals)),
        votes=len(votes),
        mos=tuple(mos),
        tests=tests,
        pairing=pairing,
        alpha_ordinal=krippendorff_alpha(by_unit.values(), "ordinal"),
        alpha_interval=krippendorff_alpha(by_unit.values(), "interval"),
        calibration=tuple(calibration_check(votes, totals)),
    )


def study_votes(study: Study) -> tuple[list[ScoredVote], dict[str, int]]:
    """The study's votes joined with the manifest, and every rater's number of items (rater name → total)."""
    conn = db.connect(study.db_path)
    try:
        raw = db.all_votes(conn)
        totals = {r.name: len(r.order) for r in db.list_raters(conn)}
    finally:
        conn.close()
    items = {it.id: it for it in study.items}
    votes = []
    for v in raw:
        item = items.get(v.item_id)
        if item is None:
            raise EsrganError(f"{study.db_path}: a vote for {v.item_id}, which is not in the manifest")
        votes.append(ScoredVote(v.rater_name, item.image, item.method, v.score))
    return votes, totals


def analyse_study(
    study: Study | str | Path, *, pairing: Pairing = "rating"
) -> tuple[MosReport, list[ScoredVote]]:
    """Read a study's votes and compute its report."""
    if not isinstance(study, Study):
        study = load_study(study)
    votes, totals = study_votes(study)
    if not votes:
        raise EsrganError(f"{study.root}: no votes yet; run `esrgan mos serve` and let raters score first")
    report = analyse_votes(votes, study.methods, images=len(study.images), totals=totals, pairing=pairing)
    return report, votes


# --------------------------------------------------------------------------------------------------
# output


def _label(method: str) -> str:
    return {NEAREST: "nearest (ref.)", HR: "HR (ref.)"}.get(method, method)


def plot_distribution(report: MosReport, path: Path) -> bool:
    """SRGAN Fig. 5 style: per method, the share of votes per score as coloured cells, the MOS as a red
    marker. Returns ``False`` (nothing written) when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    shares = np.array([[c / m.n if m.n else 0.0 for c in m.counts] for m in report.mos]).T  # 5 × methods
    fig = Figure(figsize=(1.3 * len(report.mos) + 2.2, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(shares, origin="lower", cmap="Blues", vmin=0, vmax=1, aspect="auto", extent=None)
    for j, m in enumerate(report.mos):
        for i in range(5):
            ax.text(j, i, f"{100 * shares[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.55 else "black")  # fmt: skip
        if m.n:
            ax.plot([j], [m.mean - 1], marker="D", color="red", markersize=7)
    ax.set_xticks(range(len(report.mos)), [f"{_label(m.method)}\n(n={m.n})" for m in report.mos], fontsize=8)
    ax.set_yticks(range(5), [str(s) for s in SCORES])
    ax.set_ylabel("score")
    ax.set_title("Score distribution per method (red: MOS)", fontsize=10)
    fig.colorbar(im, ax=ax, label="share of votes")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue(), overwrite=True)
    return True


def _p(x: float | None) -> str:
    if x is None:
        return "–"
    return "< 0.0001" if x < 1e-4 else f"{x:.4f}"


def _tables(report: MosReport) -> list[tuple[str, list[str], list[list[str]]]]:
    mos_rows = [
        [
            _label(m.method),
            fmt_number(m.mean),
            f"[{fmt_number(m.ci_low)}, {fmt_number(m.ci_high)}]",
            str(m.n),
            fmt_number(m.std),
        ]
        + [f"{100 * c / m.n:.0f}%" if m.n else "–" for c in m.counts]
        for m in report.mos
    ]
    test_rows = [
        [
            _label(t.a),
            _label(t.b),
            str(t.n_pairs),
            str(t.n_nonzero),
            fmt_number(t.mean_diff),
            fmt_number(t.statistic, 1),
            _p(t.p_value),
            _p(t.p_holm),
            t.test,
        ]
        for t in report.tests
    ]
    calib_rows = [
        [
            c.rater,
            f"{c.votes} / {c.total}",
            fmt_number(c.nearest_mean, 2),
            fmt_number(c.hr_mean, 2),
            {True: "ok", False: "check", None: "–"}[c.ok],
        ]
        for c in report.calibration
    ]
    return [
        (
            "Mean opinion score",
            ["method", "MOS", "95% CI", "votes", "std", "1", "2", "3", "4", "5"],
            mos_rows,
        ),
        (
            "Wilcoxon signed-rank tests",
            ["A", "B", "pairs", "non-zero", "mean A−B", "W", "p", "p (Holm)", "test"],
            test_rows,
        ),
        (
            "Calibration check per rater",
            ["rater", "votes", "nearest mean", "HR mean", "check"],
            calib_rows,
        ),
    ]


def _method_notes(report: MosReport) -> list[str]:
    pairing = (
        "one pair per (rater, image) scored in both methods"
        if report.pairing == "rating"
        else "one pair per image, each the mean over raters"
    )
    return [
        "MOS: mean of all votes of a method. 95% CI: Student's t interval over the individual votes "
        "(mean ± t(0.975, n−1)·s/√n; treats votes as independent).",
        f"Wilcoxon signed-rank tests (scipy.stats.wilcoxon, two-sided), pairing: {pairing}. Zero differences "
        f"dropped; exact null distribution for ≤ {EXACT_WILCOXON_MAX_N} non-zero differences without ties, "
        "else the normal approximation with tie correction, no continuity correction. Holm-adjusted p-values "
        "over all pairs. W is the smaller signed-rank sum.",
        "Rater agreement: Krippendorff's alpha over units = rated images (image × method), coders = raters, "
        "missing votes allowed. 1 = perfect, 0 = chance.",
        f"Calibration check: a rater's mean score of the nearest-neighbour and HR versions must be within "
        f"{CALIBRATION_TOLERANCE} of the calibration anchors (1 and 5).",
    ]


def _markdown(report: MosReport, study: Study, plot: str | None) -> str:
    lines = [
        f"# MOS study report: {study.root.name}",
        "",
        f"{report.images} images × {len(report.methods)} methods "
        f"({', '.join(_label(m) for m in report.methods)}); {report.raters} raters, {report.votes} votes.",
        "",
    ]
    tables = _tables(report)
    for i, (title, header, rows) in enumerate(tables):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        lines.append("")
        if i == 0 and plot:
            lines += [f"![Score distribution per method]({plot})", ""]
        if i == 1:
            lines += [
                "## Rater agreement",
                "",
                f"Krippendorff's alpha: ordinal {fmt_number(report.alpha_ordinal)}, interval "
                f"{fmt_number(report.alpha_interval)}.",
                "",
            ]
    lines += ["## Statistics used", ""] + [f"- {note}" for note in _method_notes(report)] + [""]
    return "\n".join(lines)


def _html(report: MosReport, study: Study, plot: str | None) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>MOS study report: {e(study.root.name)}</title>",
        "<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem;max-width:1100px}"
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
        "td,th{border:1px solid #bbb;padding:.25rem .6rem;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>MOS study report: {e(study.root.name)}</h1>",
        f"<p>{report.images} images × {len(report.methods)} methods; {report.raters} raters, "
        f"{report.votes} votes.</p>",
    ]
    for i, (title, header, rows) in enumerate(_tables(report)):
        parts.append(
            f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
        )
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
        if i == 0 and plot:
            parts.append(f"<p><img src='{e(plot)}' alt='score distribution per method'></p>")
        if i == 1:
            parts.append(
                "<h2>Rater agreement</h2><p>Krippendorff's alpha: "
                f"ordinal {fmt_number(report.alpha_ordinal)}, "
                f"interval {fmt_number(report.alpha_interval)}.</p>"
            )
    parts.append("<h2>Statistics used</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in _method_notes(report)))
    parts.append("</ul></body></html>\n")
    return "\n".join(parts)


def _json_ready(x: object) -> object:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_ready(v) for v in x]
    return x


REPORT_FILES = ("report.md", "report.html", "summary.json", "votes.csv", "mos_distribution.png")


def write_report(
    study: Study | str | Path, out_dir: str | Path, *, pairing: Pairing = "rating", overwrite: bool = False
) -> list[Path]:
    """Analyse the study and write ``report.md``, ``report.html``, ``summary.json``, ``votes.csv`` and (with
    matplotlib) ``mos_distribution.png`` to ``out_dir``; returns the paths written."""
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out_dir)
    if not overwrite:
        existing = [name for name in REPORT_FILES if (out / name).exists()]
        if existing:
            raise EsrganError(f"{out}: {', '.join(existing)} exist(s); pass --overwrite to replace")
    report, votes = analyse_study(study, pairing=pairing)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    plot_path = out / "mos_distribution.png"
    plot = plot_path.name if plot_distribution(report, plot_path) else None
    if plot:
        written.append(plot_path)
    for name, text in (
        ("report.md", _markdown(report, study, plot)),
        ("report.html", _html(report, study, plot)),
    ):
        atomic_write_text(out / name, text, overwrite=True)
        written.append(out / name)
    summary = {
        "study": str(study.root),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reference_methods": list(REFERENCE_METHODS),
        **asdict(report),
    }
    summary_text = json.dumps(_json_ready(summary), indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(out / "summary.json", summary_text, overwrite=True)
    written.append(out / "summary.json")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rater", "image", "method", "score"])
    w.writerows([v.rater, v.image, v.method, v.score] for v in votes)
    atomic_write_text(out / "votes.csv", buf.getvalue(), overwrite=True)
    written.append(out / "votes.csv")
    return written
