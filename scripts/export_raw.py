"""Export the raw generator (not the EMA copy) of a run's last checkpoint as RUN/models/net_g_raw.safetensors.

    python scripts/export_raw.py runs/gan_study/rvgg

A run exports its EMA weights as net_g_final.safetensors. For short GAN fine-tunes the EMA lags far behind:
with decay 0.999, 1,200 iterations leave 0.999^1200 ≈ 30 % of the starting (PSNR) model in it, which damps
the very textures the GAN stage adds; the study scores both copies.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from esrgan.config import ExperimentConfig, config_from_dict
from esrgan.train.checkpoint import export_generator
from esrgan.weights import build_model, read_generator_weights


def main() -> None:
    run = Path(sys.argv[1])
    exported = read_generator_weights(run / "models" / "net_g_final.safetensors")
    last = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    model = build_model(exported.arch, exported.hparams, checkpoint["generator"], str(last))
    config = config_from_dict(ExperimentConfig, checkpoint["config"])
    path = export_generator(
        model, run / "models" / "net_g_raw.safetensors", config=config, step=checkpoint["step"], weights="raw"
    )
    print(f"{path} (step {checkpoint['step']})")


if __name__ == "__main__":
    main()
