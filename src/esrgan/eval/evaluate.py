"""Score SR images computed elsewhere against their HR images: PSNR/SSIM (Y), NIQE, PIRM RMSE.

Files are matched by stem (:func:`esrgan.eval.benchmark.match_by_stem`): ``baby_out.png``, ``baby_rlt.png``,
``baby_ESRGAN.png`` or ``babyx4.png`` in the SR folder all pair with ``baby.png`` in the HR folder. Every SR
file must have an HR partner and every HR image an SR result (a partial set would silently change the means);
sizes must agree, or — with ``modcrop=True`` — the HR may be larger by a mod-crop (less than 24 pixels per
axis, cropped bottom/right, as MATLAB ``modcrop``). Metric conventions are those of
:mod:`esrgan.eval.benchmark`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from esrgan.errors import EsrganError, ImageError
from esrgan.eval.protocol import (
    GRAY_MODES,
    MAX_MODCROP,
    conventions,
    match_by_stem,
    match_channels,
    name_list,
    read_uint8,
    score_image,
    software_versions,
)
from esrgan.eval.report import make_comparison
from esrgan.eval.results import BenchmarkResult, ImageScore
from esrgan.io.folders import list_images

logger = logging.getLogger(__name__)

__all__ = ["evaluate_folders", "pair_folders"]


def pair_folders(sr_dir: str | Path, hr_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(name, sr_path, hr_path)`` for every HR image, in HR file-name order.

    Raises:
        EsrganError: SR files without an HR image, HR images without an SR file, or two SR files for one image
            — each message lists the file names.
    """
    sr_dir, hr_dir = Path(sr_dir), Path(hr_dir)
    hr_files = list_images(hr_dir)
    stems = [p.stem for p in hr_files]
    matched, unmatched = match_by_stem(stems, list_images(sr_dir))
    if unmatched:
        raise EsrganError(
            f"{sr_dir}: {len(unmatched)} SR file(s) match no HR image in {hr_dir}: {name_list(unmatched)} "
            "(files pair by name: baby.png ↔ baby.png, baby_out.png, baby_rlt.png, babyx4.png; "
            "move unrelated files out of the folder)"
        )
    missing = [s for s in stems if s not in matched]
    if missing:
        raise EsrganError(
            f"{sr_dir}: no SR result for {len(missing)} HR image(s) of {hr_dir}: {name_list(missing)} "
            "(every HR image needs one, or the means would cover a different set)"
        )
    return [(p.stem, matched[p.stem], p) for p in hr_files]


def evaluate_folders(
    sr_dir: str | Path,
    hr_dir: str | Path,
    *,
    crop_border: int = 4,
    y_rounding: bool = True,
    niqe: bool = True,
    modcrop: bool = False,
    dataset: str | None = None,
    method: str | None = None,
    progress: bool = True,
    comparisons: bool = True,
    gray_mode: str = "replicate",
) -> BenchmarkResult:
    """Score every SR image of ``sr_dir`` against its HR image in ``hr_dir``.

    Args:
        sr_dir, hr_dir: folders of images (8-bit).
        crop_border: pixels removed from each side for every metric (the scale in the published protocol).
        y_rounding: MATLAB uint8 Y (default) or BasicSR float Y for PSNR/SSIM.
        niqe: compute NIQE of each SR image.
        modcrop: allow an HR larger than its SR by a mod-crop; it is cropped bottom/right to the SR size.
        dataset, method: names in the result (default: the HR and SR folder names).
        progress: tqdm progress bar.
        comparisons: keep SR/HR crops for :func:`esrgan.eval.report.write_html_report`.
        gray_mode: gray HR images: ``"replicate"`` to RGB (BasicSR), or ``"keep"`` gray and score the gray
            plane (MATLAB scripts; an RGB SR is then turned to gray, see
            :func:`~esrgan.eval.benchmark.match_channels`). See :mod:`esrgan.eval.benchmark`.

    Returns:
        A :class:`~esrgan.eval.benchmark.BenchmarkResult` with one dataset and one method; its summary holds
        the means and PIRM's RMSE (``sqrt`` of the mean per-image MSE).
    """

    sr_dir, hr_dir = Path(sr_dir), Path(hr_dir)
    if crop_border < 0:
        raise EsrganError(f"crop_border must be >= 0, got {crop_border}")
    if gray_mode not in GRAY_MODES:
        raise EsrganError(f"unknown gray_mode {gray_mode!r}; use one of {', '.join(GRAY_MODES)}")
    dataset = dataset or hr_dir.resolve().name
    method = method or sr_dir.resolve().name
    pairs = pair_folders(sr_dir, hr_dir)
    scores: list[ImageScore] = []
    comps = []
    cropped: list[str] = []
    for name, sr_path, hr_path in tqdm(pairs, desc=method, unit="img", disable=not progress, leave=False):
        hr, _ = read_uint8(hr_path, gray_mode=gray_mode)
        sr = match_channels(read_uint8(sr_path, gray_mode=gray_mode)[0], hr, sr_path)
        if sr.shape != hr.shape:
            (h, w), (sh, sw) = hr.shape[:2], sr.shape[:2]
            fits = 0 <= h - sh < MAX_MODCROP and 0 <= w - sw < MAX_MODCROP
            if not modcrop or not fits:
                hint = (
                    "pass modcrop=True (--modcrop) to crop the HR to the SR size"
                    if fits
                    else "the sizes differ by more than a mod-crop: is this the right HR image and scale?"
                )
                raise ImageError(f"{sr_path}: SR is {sw}×{sh} but HR {hr_path} is {w}×{h}; {hint}")
            hr = hr[:sh, :sw]
            cropped.append(name)
        p, s, n, rmse = score_image(sr, hr, crop_border=crop_border, y_rounding=y_rounding, niqe=niqe)
        scores.append(
            ImageScore(
                dataset=dataset,
                image=name,
                method=method,
                psnr=p,
                ssim=s,
                niqe=n,
                rmse=rmse,
                seconds=None,
                height=int(sr.shape[0]),
                width=int(sr.shape[1]),
            )
        )
        if comparisons:
            comps.append(
                make_comparison(
                    dataset, name, hr, {method: sr}, crop_border=crop_border, metrics={method: (p, s)}
                )
            )
    if cropped:
        logger.info("HR cropped to the SR size for %d image(s): %s", len(cropped), name_list(cropped))
    record = {
        "kind": "evaluate",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": None,
        "crop_border": crop_border,
        "y_rounding": bool(y_rounding),
        "niqe": bool(niqe),
        "sr_dir": str(sr_dir),
        "hr_dir": str(hr_dir),
        "hr_modcropped_to_sr": cropped,
        "gray_mode": gray_mode,
        "conventions": conventions(y_rounding=y_rounding, gray_mode=gray_mode),
        "versions": software_versions(),
    }
    return BenchmarkResult(scores=scores, settings=record, comparisons=comps)
