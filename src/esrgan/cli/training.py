"""`esrgan prepare`, `train`, `interpolate` and `interpolate-images`."""

from __future__ import annotations

import argparse
import logging
import sys

from esrgan.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
)
from esrgan.errors import EsrganError

# --------------------------------------------------------------------------------------------------
# prepare


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="cut training images into sub-images (BasicSR extract_subimages), optionally with bicubic LR",
        description="Cut every image in SRC into CROP_SIZE sub-images with a sliding window (positions 0, "
        "STEP, ... plus one flush with the far edge when more than THRESH_SIZE pixels are left) and write "
        "them to DST as {name}_s{idx:03d}.png. With --scale and --lr-dst, also write MATLAB-bicubic LR "
        "sub-images with the same names.",
    )
    p.add_argument("src", help="folder of training images (e.g. DIV2K_train_HR)")
    p.add_argument("dst", help="output folder for the sub-images")
    p.add_argument("--crop-size", type=int, default=480, help="sub-image size (default: %(default)s)")
    p.add_argument("--step", type=int, default=240, help="sliding-window step (default: %(default)s)")
    p.add_argument(
        "--thresh-size",
        type=int,
        default=0,
        help="add a window flush with the edge if more pixels than this are left (default: %(default)s)",
    )
    p.add_argument("--scale", type=int, default=None, help="also write LR sub-images downscaled by N")
    p.add_argument("--lr-dst", default=None, metavar="DIR", help="output folder for the LR sub-images")
    p.add_argument("--compression", type=int, default=3, help="PNG compression 0-9 (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing sub-images")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from esrgan.data.prepare import extract_subimages

    summary = extract_subimages(
        args.src,
        args.dst,
        crop_size=args.crop_size,
        step=args.step,
        thresh_size=args.thresh_size,
        scale=args.scale,
        lr_dst_dir=args.lr_dst,
        compression_level=args.compression,
        overwrite=args.overwrite,
        num_workers=args.workers,
        progress=not args.quiet,
    )
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, message in summary.failed:
        print(f"failed  {path}: {message}", file=sys.stderr)
    lr = f", {summary.lr_subimages} LR sub-images -> {args.lr_dst}" if args.lr_dst else ""
    print(
        f"{summary.images} images -> {summary.subimages} sub-images in {args.dst}{lr}; "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed"
    )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


# --------------------------------------------------------------------------------------------------
# train, interpolate, interpolate-images


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train ESRGAN / SRGAN / SRResNet from a YAML config (resumes automatically)",
        description="Train per CONFIG with dotted KEY=VALUE overrides (e.g. optim.lr_g=1e-4 "
        "train.total_iters=5000). A run folder that already holds checkpoints is resumed from the latest "
        "one. For several processes: torchrun --nproc-per-node N -m esrgan train CONFIG ...",
    )
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. data.batch_size=8")
    p.add_argument("--run-dir", default=None, help="run folder (default: runs/NAME from the config)")
    p.add_argument("--no-resume", action="store_true", help="start over; earlier checkpoints are moved aside")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from esrgan.config import load_config
    from esrgan.train.loop import TRAIN_LOGGER, train

    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise EsrganError(f"overrides must be KEY=VALUE, got {' '.join(bad)} (for example optim.lr_g=1e-4)")
    cfg = load_config(args.config, args.overrides)
    progress = logging.getLogger(TRAIN_LOGGER)  # progress lines go to stdout, not through the root logger
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    progress.addHandler(handler)
    progress.propagate = False
    progress.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        result = train(cfg, args.run_dir, resume=not args.no_resume)
    finally:
        progress.removeHandler(handler)
        progress.propagate = True
        progress.setLevel(logging.NOTSET)
    if result.rank == 0:
        print(f"generator: {result.model_path}")
    return EXIT_OK


def _add_interpolate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate",
        help="network interpolation: blend the weights of a PSNR and a GAN model",
        description="theta = (1 - alpha) * PSNR_MODEL + alpha * GAN_MODEL, parameter by parameter "
        "(ESRGAN §3.4). Both must share architecture and hyperparameters. Writes self-describing "
        "safetensors.",
    )
    p.add_argument("psnr_model", help="model A (alpha = 0), e.g. the PSNR-oriented model")
    p.add_argument("gan_model", help="model B (alpha = 1), e.g. the ESRGAN model fine-tuned from A")
    p.add_argument("--alpha", type=float, required=True, help="weight of GAN_MODEL in [0, 1] (ESRGAN: 0.8)")
    p.add_argument("-o", "--output", required=True, help="output .safetensors file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(run=_run_interpolate)


def _run_interpolate(args: argparse.Namespace) -> int:
    from esrgan.weights import interpolate_models, save_model

    model = interpolate_models(args.psnr_model, args.gan_model, args.alpha)
    metadata = {"esrgan.interpolation": {"a": args.psnr_model, "b": args.gan_model, "alpha": args.alpha}}
    path = save_model(model, args.output, metadata=metadata, overwrite=args.overwrite)
    print(f"wrote {path}")
    return EXIT_OK


def _add_interpolate_images(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate-images",
        help="image interpolation: blend same-named images of two folders pixel by pixel",
        description="OUT = (1 - alpha) * A + alpha * B for every image of A_DIR and the file of the same "
        "name in B_DIR (the baseline ESRGAN compares network interpolation with).",
    )
    p.add_argument("a_dir", help="folder A (alpha = 0), e.g. outputs of the PSNR model")
    p.add_argument("b_dir", help="folder B (alpha = 1), e.g. outputs of the GAN model")
    p.add_argument("--alpha", type=float, required=True, help="weight of B in [0, 1]")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(run=_run_interpolate_images)


def _run_interpolate_images(args: argparse.Namespace) -> int:
    from esrgan.ops.interpolation import interpolate_image_folders

    summary = interpolate_image_folders(
        args.a_dir, args.b_dir, args.alpha, args.output, overwrite=args.overwrite
    )
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{len(summary.written)} images written to {args.output}, {len(summary.skipped)} skipped")
    return EXIT_SOME_FAILED if summary.skipped else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    _add_prepare(sub)
    _add_train(sub)
    _add_interpolate(sub)
    _add_interpolate_images(sub)
