"""`esrgan benchmark`, `evaluate` and `sweep`: scores, tables and the interpolation study."""

from __future__ import annotations

import argparse
from pathlib import Path

from esrgan.cli._common import (
    EXIT_OK,
    add_data_option,
    add_scoring_run_options,
    datasets_from,
    named_path,
)
from esrgan.errors import EsrganError

# --------------------------------------------------------------------------------------------------
# benchmark / evaluate


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="PSNR/SSIM (Y), NIQE and timing of models and baselines on benchmark sets",
        description="Score models and baselines on benchmark sets with the protocol of the published "
        "tables: HR mod-cropped to the scale, LR by MATLAB bicubic imresize (or read from LR_DIR), "
        "PSNR/SSIM on MATLAB BT.601 Y (rounded to uint8), `scale` border pixels removed, NIQE of the SR. "
        "Writes results.md, results.csv and results.json to --output.",
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        type=named_path,
        metavar="[NAME=]MODEL",
        help="a model name from `esrgan models`, a weights file, or a baseline: bicubic, nearest, hr "
        "(the HR image itself). Repeat for several. Unless a baseline is given, bicubic is added as the "
        "reference row",
    )
    add_data_option(
        p,
        "benchmark set: a folder of HR images, optionally with a folder of ready-made LR images "
        "(matched by name: baby.png, babyx4.png, baby_LR.png); repeat for several",
    )
    p.add_argument(
        "--scale", type=int, default=None, help="SR factor (default: the models' scale; 4 for baselines only)"
    )
    p.add_argument(
        "--crop-border", type=int, default=None, help="pixels removed at each border (default: the scale)"
    )
    p.add_argument(
        "--float-y",
        action="store_true",
        help="unrounded Y (BasicSR's convention) instead of MATLAB's uint8 Y for PSNR/SSIM",
    )
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE (the slowest metric)")
    p.add_argument(
        "--gray",
        choices=["replicate", "keep"],
        default="replicate",
        help="gray images: replicate to RGB (BasicSR, default) or keep gray and score the gray plane "
        "(MATLAB scripts; the published Set14 numbers)",
    )
    p.add_argument(
        "--back-projection",
        type=int,
        default=0,
        metavar="N",
        help="also score every method after N iterations of back-projection (rows named METHOD+BP<N>)",
    )
    p.add_argument(
        "--bp-variant",
        choices=["reverse_filter", "ibp"],
        default="reverse_filter",
        help="back-projection variant: MATLAB main_reverse_filter.m (ESRGAN PIRM; default) or "
        "backprojection.m (classic IBP)",
    )
    add_scoring_run_options(p)
    p.add_argument(
        "-o", "--output", default="benchmark", help="folder for the result tables (default: %(default)s)"
    )
    p.add_argument(
        "--save-images",
        action="store_true",
        help="also save every SR image as OUTPUT/images/<set>/<method>/<name>.png",
    )
    p.add_argument(
        "--report", default=None, metavar="DIR", help="write an HTML page with side-by-side zoomed crops"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_benchmark)


def _benchmark_methods(named: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """``--model`` values → ({name: model source}, baselines); bicubic is added if no baseline was named."""
    from esrgan.eval.benchmark import BASELINES

    models: dict[str, str] = {}
    baselines: list[str] = []
    for name, source in named:
        if source in BASELINES:
            if name != source:
                raise EsrganError(f"--model {name}={source}: baselines keep their name; use --model {source}")
            if source not in baselines:
                baselines.append(source)
            continue
        if name in models or name in BASELINES:
            raise EsrganError(f"--model: the name {name!r} is used twice; name the models NAME=MODEL")
        models[name] = source
    return models, baselines or ["bicubic"]


def _run_benchmark(args: argparse.Namespace) -> int:
    from esrgan.eval import BenchmarkSettings, run_benchmark, write_html_report, write_tables
    from esrgan.eval.report import check_report_writable
    from esrgan.eval.tables import check_tables_writable, summary_markdown

    datasets = datasets_from(args.data)
    models, baselines = _benchmark_methods(args.model)
    output = Path(args.output)
    # Refuse before the (long) run, not after it.
    check_tables_writable(output, overwrite=args.overwrite)
    if args.report:
        check_report_writable(Path(args.report), overwrite=args.overwrite)
    settings = BenchmarkSettings(
        scale=args.scale,
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        niqe=not args.no_niqe,
        back_projection=args.back_projection,
        back_projection_variant=args.bp_variant,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        device=args.device,
        half=args.half,
        precision=args.precision,
        save_images_dir=output / "images" if args.save_images else None,
        overwrite=args.overwrite,
        progress=not args.quiet,
        comparisons=bool(args.report),
        gray_mode=args.gray,
    )
    result = run_benchmark(datasets, models=models, baselines=baselines, settings=settings)
    print(summary_markdown(result))
    for path in write_tables(result, output, overwrite=args.overwrite):
        print(f"wrote {path}")
    if args.save_images:
        print(f"wrote SR images under {output / 'images'}")
    if args.report:
        print(f"wrote {write_html_report(result, Path(args.report), overwrite=args.overwrite)}")
    return EXIT_OK


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="PSNR/SSIM (Y), NIQE and PIRM RMSE of SR images computed elsewhere",
        description="Score every image of SR_DIR against the HR image of the same name in HR_DIR "
        "(baby_out.png, baby_rlt.png or babyx4.png pair with baby.png); every HR image needs one SR image.",
    )
    p.add_argument("sr_dir", help="folder of super-resolved images")
    p.add_argument("hr_dir", help="folder of ground-truth images")
    p.add_argument("--crop-border", type=int, default=4, help="pixels removed at each border (default: 4)")
    p.add_argument("--float-y", action="store_true", help="unrounded Y (BasicSR's convention)")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE")
    p.add_argument(
        "--modcrop", action="store_true", help="crop an HR larger than its SR (by a mod-crop) to the SR size"
    )
    p.add_argument(
        "--gray",
        choices=["replicate", "keep"],
        default="replicate",
        help="gray HR images: replicate to RGB (default) or keep gray (MATLAB scripts)",
    )
    p.add_argument("--name", default=None, help="method name in the tables (default: SR_DIR's name)")
    p.add_argument("--dataset", default=None, help="set name in the tables (default: HR_DIR's name)")
    p.add_argument(
        "-o", "--output", default=None, help="folder for results.md/.csv/.json (default: print only)"
    )
    p.add_argument(
        "--report", default=None, metavar="DIR", help="write an HTML page with side-by-side zoomed crops"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from esrgan.eval import evaluate_folders, write_html_report, write_tables
    from esrgan.eval.report import check_report_writable
    from esrgan.eval.tables import check_tables_writable, summary_markdown

    if args.output:
        check_tables_writable(Path(args.output), overwrite=args.overwrite)
    if args.report:
        check_report_writable(Path(args.report), overwrite=args.overwrite)
    result = evaluate_folders(
        Path(args.sr_dir),
        Path(args.hr_dir),
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        niqe=not args.no_niqe,
        modcrop=args.modcrop,
        dataset=args.dataset,
        method=args.name,
        progress=not args.quiet,
        comparisons=bool(args.report),
        gray_mode=args.gray,
    )
    print(summary_markdown(result))
    summary = result.summaries()[0]
    print(f"PIRM RMSE (rounded Y, sqrt of the mean MSE): {summary.rmse:.4f}")
    if args.output:
        for path in write_tables(result, Path(args.output), overwrite=args.overwrite):
            print(f"wrote {path}")
    if args.report:
        print(f"wrote {write_html_report(result, Path(args.report), overwrite=args.overwrite)}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# sweep (network vs image interpolation study)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="interpolation study: network vs image interpolation between a PSNR and a GAN model",
        description="For every alpha, score network interpolation (blended weights) and image "
        "interpolation (blended outputs) between PSNR_MODEL (alpha = 0) and GAN_MODEL (alpha = 1) on "
        "benchmark sets (PSNR/SSIM on Y, NIQE), as in the ESRGAN paper. Writes sweep.md/.csv/.json, "
        "perception_distortion.png and crops.png to --output. See docs/interpolation.md.",
    )
    p.add_argument("psnr_model", help="model at alpha = 0 (PSNR-oriented): weights file or model name")
    p.add_argument("gan_model", help="model at alpha = 1 (GAN, fine-tuned from PSNR_MODEL)")
    add_data_option(
        p, "benchmark set: a folder of HR images, optionally with ready-made LR images; repeat for several"
    )
    p.add_argument(
        "--alphas",
        default="0,0.2,0.4,0.6,0.8,1",
        help="comma-separated weights of GAN_MODEL in [0, 1] (default: %(default)s)",
    )
    p.add_argument(
        "--crop-image",
        default=None,
        metavar="[SET/]NAME",
        help="image of the crop grid, by file name without extension (default: baboon if a set has it, "
        "else the first image)",
    )
    p.add_argument(
        "--crop-box",
        default=None,
        metavar="X,Y,W,H",
        help="window of the crop grid in HR pixels (default: up to 128x128 where the results differ most)",
    )
    p.add_argument(
        "--crop-border", type=int, default=None, help="pixels removed at each border (default: the scale)"
    )
    p.add_argument("--float-y", action="store_true", help="unrounded Y (BasicSR) instead of MATLAB uint8 Y")
    p.add_argument(
        "--gray",
        choices=["replicate", "keep"],
        default="replicate",
        help="gray images: replicate to RGB (default) or keep gray (MATLAB scripts)",
    )
    add_scoring_run_options(p)
    p.add_argument("-o", "--output", required=True, help="folder for the tables and figures")
    p.add_argument(
        "--no-plot", action="store_true", help="skip perception_distortion.png (no matplotlib needed)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from esrgan.eval.sweep import (
        SweepSettings,
        check_sweep_writable,
        parse_alphas,
        parse_box,
        run_sweep,
        write_sweep,
    )

    alphas = parse_alphas(args.alphas)
    crop_box = parse_box(args.crop_box) if args.crop_box is not None else None
    datasets = datasets_from(args.data)
    # Refuse before the (long) run, not after it.
    check_sweep_writable(Path(args.output), overwrite=args.overwrite, plot=not args.no_plot)
    settings = SweepSettings(
        crop_border=args.crop_border,
        y_rounding=not args.float_y,
        gray_mode=args.gray,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        device=args.device,
        half=args.half,
        precision=args.precision,
        progress=not args.quiet,
        crop_image=args.crop_image,
        crop_box=crop_box,
    )
    result = run_sweep(args.psnr_model, args.gan_model, alphas, datasets, settings)
    print(result.markdown())
    for path in write_sweep(result, Path(args.output), overwrite=args.overwrite, plot=not args.no_plot):
        print(f"wrote {path}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    _add_benchmark(sub)
    _add_evaluate(sub)
    _add_sweep(sub)
