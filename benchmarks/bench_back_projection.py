"""What back-projection (SPEC §11) does to PSNR, SSIM and NIQE, measured on Set5 + Set14.

    python benchmarks/bench_back_projection.py            # print the tables
    python benchmarks/bench_back_projection.py --write    # also write docs/benchmarks/back_projection.md

No trained SR network ships with the project (the zoo downloads need a network connection), so the SR images
are the bicubic and nearest-neighbour ×4 baselines — one smooth start and one blocky one. Every number comes
from :func:`esrgan.eval.run_benchmark` with ``back_projection=N`` (= ``esrgan benchmark -m bicubic -m nearest
--back-projection N [--bp-variant ibp]``): back-projection runs on the uint8 SR and the result is written
back to uint8, as the PIRM scripts do. "LR error" is the RMSE (0…255) between ``imresize(SR, 1/4)`` (float,
not rounded) and the LR image — the quantity back-projection drives down.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from esrgan.eval import BenchmarkSettings, run_benchmark
from esrgan.eval.benchmark import upscale_bicubic, upscale_nearest
from esrgan.ops.back_projection import back_project, lr_consistency_rmse
from esrgan.ops.matlab_resize import downscale_uint8, modcrop

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "benchmarks" / "back_projection.md"
SCALE = 4
RUNS = [("reverse_filter", 1), ("reverse_filter", 5), ("reverse_filter", 20), ("ibp", 20)]


def lr_errors(variant: str, iterations: int) -> dict[tuple[str, str], float]:
    """Mean LR error (0…255) per (dataset, row name) — the baseline rows and their back-projected rows."""
    out: dict[tuple[str, str], list[float]] = {}
    for dataset in ("Set5", "Set14"):
        for path in sorted((DATA / dataset).glob("*.png")):
            with Image.open(path) as im:
                hr = modcrop(np.asarray(im.convert("RGB")), SCALE)
            lr = downscale_uint8(hr, SCALE)
            for method, up in (("bicubic", upscale_bicubic), ("nearest", upscale_nearest)):
                sr = up(lr, SCALE)
                bp = back_project(sr, lr, scale=SCALE, iterations=iterations, variant=variant)  # type: ignore[arg-type]
                for name, img in ((method, sr), (f"{method}+BP{iterations}", bp)):
                    err = 255 * lr_consistency_rmse(img, lr, scale=SCALE)
                    out.setdefault((dataset, name), []).append(err)
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = {"Set5": DATA / "Set5", "Set14": DATA / "Set14"}

    header = (
        "| set | SR | BP variant | iterations | PSNR | SSIM | NIQE | LR error | "
        "ΔPSNR | ΔSSIM | ΔNIQE | s/img (SR + BP) |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    baseline_done: set[tuple[str, str]] = set()
    for variant, iterations in RUNS:
        settings = BenchmarkSettings(
            back_projection=iterations,
            back_projection_variant=variant,
            progress=False,
            comparisons=False,
        )
        result = run_benchmark(sets, baselines=["bicubic", "nearest"], settings=settings)
        lr_err = lr_errors(variant, iterations)
        for dataset in ("Set5", "Set14"):
            for method in ("bicubic", "nearest"):
                base = result.summary(dataset, method)
                bp = result.summary(dataset, f"{method}+BP{iterations}")
                assert base.niqe is not None and bp.niqe is not None and bp.seconds is not None
                if (dataset, method) not in baseline_done:
                    baseline_done.add((dataset, method))
                    lines.append(
                        f"| {dataset} | {method} | – | 0 | {base.psnr:.2f} | {base.ssim:.4f} | "
                        f"{base.niqe:.3f} | {lr_err[(dataset, method)]:.3f} | | | | {base.seconds:.4f} |"
                    )
                lines.append(
                    f"| {dataset} | {method} | {variant} | {iterations} | {bp.psnr:.2f} | {bp.ssim:.4f} | "
                    f"{bp.niqe:.3f} | {lr_err[(dataset, f'{method}+BP{iterations}')]:.3f} | "
                    f"{bp.psnr - base.psnr:+.2f} | {bp.ssim - base.ssim:+.4f} | {bp.niqe - base.niqe:+.3f} | "
                    f"{bp.seconds:.4f} |"
                )
        print(f"done: {variant} × {iterations}", flush=True)
    table = "\n".join(sorted(lines[1:], key=_order))
    table = lines[0] + "\n" + table
    print(table)
    if args.write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(_document(table))
        print(f"wrote {DOC.relative_to(ROOT)}")


def _order(line: str) -> tuple[int, int, int, int]:
    cells = [c.strip() for c in line.strip("|").split("|")]
    dataset, method, variant, iterations = cells[0], cells[1], cells[2], int(cells[3])
    return (
        ["Set5", "Set14"].index(dataset),
        ["bicubic", "nearest"].index(method),
        ["–", "reverse_filter", "ibp"].index(variant),
        iterations,
    )


def _document(table: str) -> str:
    return (
        "# Back-projection: effect on PSNR, SSIM and NIQE\n\n"
        "Generated by `python benchmarks/bench_back_projection.py --write` (repository root, venv active). "
        "The same rows come out of\n"
        "`esrgan benchmark -m bicubic -m nearest -d Set5=../shared/data/Set5 -d Set14=../shared/data/Set14 "
        "--back-projection N [--bp-variant ibp]`.\n\n"
        "Back-projection (SPEC §11, `esrgan.ops.back_projection`, `esrgan upscale --back-projection N`) "
        "makes an SR image consistent with its LR input. `reverse_filter` is BasicSR's "
        "`main_reverse_filter.m`, the post-processing of ESRGAN's PIRM submission (20 iterations): "
        "`SR ← SR + (up(LR) − up(down(SR)))`; `ibp` is `backprojection.m`, classic iterative "
        "back-projection with a 5×5 squared-Gaussian kernel.\n\n"
        "Protocol: ×4, HR mod-4 cropped, LR by MATLAB bicubic, PSNR/SSIM on MATLAB uint8 Y with 4 border "
        "pixels removed, NIQE of the SR with the same crop, means over the 5 / 14 images. No trained network "
        "is available offline, so the SR inputs are the bicubic and nearest baselines. *LR error* is the "
        "RMSE (0…255) between the SR's MATLAB bicubic ×1/4 and the LR image. Times: seconds per image on one "
        "CPU thread (baseline + back-projection, float64).\n\n"
        f"{table}\n\n"
        "## What it does\n\n"
        f"{_findings()}\n"
    )


def _findings() -> str:
    # Written from the measured table above (kept in code so that rerunning the script keeps the text).
    return (
        "- **LR consistency**: the LR error falls by orders of magnitude with `reverse_filter` (down to "
        "the uint8 rounding of the written SR), more slowly with `ibp`; both are monotone in the "
        "iterations (tested in `tests/test_back_projection.py`).\n"
        "- **PSNR / SSIM**: both go up for both starting points — back-projection restores the part of "
        "the HR signal that the LR image determines and that bicubic interpolation loses (bicubic "
        "up-sampling is not the inverse of bicubic down-sampling). The gain is large for nearest, which "
        "is far from LR-consistent.\n"
        "- **NIQE** (lower is better) improves too for these blurry/blocky inputs: the corrections add "
        "high-frequency content. This is not a statement about GAN output, which is already sharp: there "
        "the published effect (ESRGAN PIRM) is a lower RMSE at a small cost in perceptual index.\n"
        "- **Cost**: each iteration is one ×1/4 and one ×4 MATLAB resize per image (plus a 5×5 filter for "
        "`ibp`); 20 iterations take tens of milliseconds on a Set14-sized image."
    )


if __name__ == "__main__":
    main()
