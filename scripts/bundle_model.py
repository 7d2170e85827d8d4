"""Copy a trained generator into the package as a bundled model, with its provenance in the metadata.

    python scripts/bundle_model.py runs/small_psnr_x4 small_psnr_x4 --losses "L1" --train-seconds 2460
    python scripts/bundle_model.py runs/gan NAME --raw --interpolate-with esrgan_lite_psnr_x4 --alpha 0.9 ...

The run's exported generator (models/net_g_final.safetensors, EMA weights when EMA was on) already carries
the training config and step; this adds what the run itself cannot know: the losses used in words, the wall
time, the data, and the commit of the code (when the export lacks it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from esrgan.train.checkpoint import source_commit
from esrgan.weights import BUNDLED_DIR, build_model, interpolate_models, read_generator_weights, save_model
from esrgan.weights.io import provenance_metadata


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name", help="bundled model name (file stem)")
    parser.add_argument("--losses", required=True, help="the losses used, in words, e.g. 'L1'")
    parser.add_argument("--train-seconds", type=float, required=True, help="wall time of the training run")
    parser.add_argument("--data", default="../shared/data/DIV2K-tiny-HR (100 DIV2K sub-images)")
    parser.add_argument("--hardware", default="2-core x86-64 CPU")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="ship the raw generator of the last checkpoint instead of the exported (EMA) one",
    )
    parser.add_argument(
        "--interpolate-with",
        metavar="MODEL",
        help="ship a network interpolation (ESRGAN §3.4): (1 - alpha)·MODEL + alpha·the run's generator",
    )
    parser.add_argument("--alpha", type=float, help="weight of the run's generator, with --interpolate-with")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()

    weights = read_generator_weights(args.run_dir / "models" / "net_g_final.safetensors")
    state_dict = weights.state_dict
    provenance = provenance_metadata(weights.metadata)
    if args.raw:
        last = sorted((args.run_dir / "checkpoints").glob("step_*.pt"))[-1]
        checkpoint = torch.load(last, map_location="cpu", weights_only=True)
        state_dict = checkpoint["generator"]
        provenance.update({"esrgan.weights": "raw", "esrgan.step": str(checkpoint["step"])})
    model = build_model(weights.arch, weights.hparams, state_dict, str(weights.path))
    if args.interpolate_with:
        if args.alpha is None:
            parser.error("--interpolate-with needs --alpha")
        model = interpolate_models(args.interpolate_with, model, args.alpha)
        provenance["esrgan.interpolation"] = (
            f"network interpolation: {1 - args.alpha:g} x {args.interpolate_with} + {args.alpha:g} x this run"
        )
    provenance.setdefault("esrgan.commit", source_commit())
    provenance.update(
        {
            "esrgan.losses": args.losses,
            "esrgan.train_seconds": f"{args.train_seconds:.0f}",
            "esrgan.data": args.data,
            "esrgan.hardware": args.hardware,
        }
    )
    out = save_model(
        model, BUNDLED_DIR / f"{args.name}.safetensors", metadata=provenance, overwrite=args.overwrite
    )
    print(out)


if __name__ == "__main__":
    main()
