"""The GAN-stage study's table (issue 11) from runs/gan_study: one row per arm with its losses, wall time and
Set5/Set14 PSNR, SSIM and NIQE, against bicubic and the PSNR model it started from.

    python scripts/gan_study_table.py > docs/results/gan_study/study.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

RUNS = Path("runs/gan_study")
START = Path("docs/results/esrgan_lite_psnr_x4/results.json")  # the PSNR model, same protocol
ARMS = {
    "base": "L1 (1) + RaGAN (1e-3), VGG-style D",
    "ldl": "base + LDL artifact loss (1)",
    "rvgg": "base + random-VGG19 perceptual (1; conv1_2 … conv5_4)",
    "unet": "base with Real-ESRGAN's U-Net D (spectral norm)",
    "fm": "base + feature matching on D's features (1)",
    "paper_rvgg": "paper weights: L1 (1e-2) + RaGAN (5e-3) + random-VGG perceptual (1) + LDL (1)",
    "resr_ldl": "Real-ESRGAN weights: L1 (1) + random-VGG perceptual (1) + RaGAN (0.1), U-Net D, + LDL (1)",
    "resr_ldl_g03": "resr_ldl with RaGAN 0.3",
    "resr_ldl_style": "resr_ldl + Gram (style) loss on the random VGG's layers (400)",
}


def _scores(path: Path, method: str) -> dict[str, dict[str, float]]:
    summary = json.loads(path.read_text())["summary"]
    return {r["dataset"]: r for r in summary if r["method"] == method}


def _cells(scores: dict[str, dict[str, float]]) -> str:
    return " | ".join(
        f"{scores[d]['psnr']:.2f} / {scores[d]['ssim']:.4f} / {scores[d]['niqe']:.3f}"
        for d in ("Set5", "Set14")
    )


def main() -> None:
    walls = dict(re.findall(r"^(\w+): (\d+) s", (RUNS / "wall.txt").read_text(), re.M))
    first = next(RUNS.glob("*-bench/results.json"))
    lines = [
        "| arm | losses | wall (s) | Set5 PSNR / SSIM / NIQE | Set14 PSNR / SSIM / NIQE |",
        "|---|---|---:|---:|---:|",
        f"| bicubic | | | {_cells(_scores(first, 'bicubic'))} |",
        f"| esrgan_lite_psnr_x4 (start) | L1 only | | {_cells(_scores(START, 'esrgan_lite_psnr_x4'))} |",
    ]
    copies = (("EMA", "{}-bench", "net_g_final"), ("raw", "{}-raw-bench", "net_g_raw"))
    for arm, losses in ARMS.items():
        for copy, folder, method in copies:
            results = RUNS / folder.format(arm) / "results.json"
            if results.exists():
                cells = _cells(_scores(results, method))
                lines.append(f"| {arm} ({copy}) | {losses} | {walls.get(arm, '')} | {cells} |")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
