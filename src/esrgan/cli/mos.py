"""`esrgan mos create | serve | report`: the human study."""

from __future__ import annotations

import argparse

from esrgan.cli._common import (
    EXIT_OK,
    named_path,
)
from esrgan.errors import EsrganError

# --------------------------------------------------------------------------------------------------
# mos (human evaluation)


def _add_mos(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mos",
        help="human evaluation: a blind Mean Opinion Score study (create, serve, report)",
        description="A MOS study as in SRGAN: raters score every image 1 (bad) to 5 (excellent) after "
        "calibration on nearest-neighbour (= 1) and HR (= 5) examples. See docs/mos.md.",
    )
    mos = p.add_subparsers(dest="mos_command", required=True, metavar="ACTION")
    c = mos.add_parser(
        "create",
        help="build a study folder from SR result folders",
        description="Pair every HR image with one result per method (by file name), add the nearest and HR "
        "reference versions and calibration examples, and copy everything into STUDY under random ids.",
    )
    c.add_argument("study", help="new study folder")
    c.add_argument(
        "--method",
        action="append",
        required=True,
        type=named_path,
        metavar="NAME=DIR",
        help="a folder of SR results and the method's name; repeat for several",
    )
    c.add_argument("--hr", required=True, metavar="DIR", help="folder of the original (HR) images")
    c.add_argument(
        "--nearest-from",
        default=None,
        metavar="LR_DIR",
        help="LR images for the nearest-neighbour reference (default: MATLAB bicubic ×1/scale of the HR)",
    )
    c.add_argument("--scale", type=int, default=4, help="SR factor (default: %(default)s)")
    c.add_argument(
        "--calibration", type=int, default=3, metavar="N", help="calibration examples (default: %(default)s)"
    )
    c.add_argument(
        "--calibration-hr",
        default=None,
        metavar="DIR",
        help="separate HR images for calibration (default: N test images drawn at random)",
    )
    c.add_argument("--seed", type=int, default=None, help="study seed (default: random)")
    c.set_defaults(run=_run_mos_create)
    s = mos.add_parser("serve", help="run the rating web app")
    s.add_argument("study", help="study folder")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    s.set_defaults(run=_run_mos_serve)
    r = mos.add_parser("report", help="MOS, confidence intervals, Wilcoxon tests, agreement, plot")
    r.add_argument("study", help="study folder")
    r.add_argument("-o", "--output", required=True, help="folder for report.md/.html, plot, CSV and JSON")
    r.add_argument(
        "--pairing",
        choices=["rating", "image"],
        default="rating",
        help="Wilcoxon pairs: per (rater, image) or per image mean (default: %(default)s)",
    )
    r.add_argument("--overwrite", action="store_true", help="replace existing report files")
    r.set_defaults(run=_run_mos_report)


def _run_mos_create(args: argparse.Namespace) -> int:
    from esrgan.mos import create_study

    methods: dict[str, str] = {}
    for name, folder in args.method:
        if name in methods:
            raise EsrganError(f"--method: the name {name!r} is used twice")
        methods[name] = folder
    study = create_study(
        args.study,
        methods,
        args.hr,
        nearest_from=args.nearest_from,
        scale=args.scale,
        calibration_count=args.calibration,
        calibration_hr=args.calibration_hr,
        seed=args.seed,
    )
    print(
        f"study {study.root}: {len(study.images)} images × {len(study.methods)} methods "
        f"({', '.join(study.methods)}) = {len(study.items)} to score, {len(study.calibration) // 2} "
        f"calibration example(s); serve it with: esrgan mos serve {args.study}"
    )
    return EXIT_OK


def _run_mos_serve(args: argparse.Namespace) -> int:
    from esrgan.mos import make_study_server

    server = make_study_server(args.study, host=args.host, port=args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"MOS study {args.study}: open http://{shown}:{server.server_port}/ (Ctrl+C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return EXIT_OK


def _run_mos_report(args: argparse.Namespace) -> int:
    from esrgan.mos import write_report

    for path in write_report(args.study, args.output, pairing=args.pairing, overwrite=args.overwrite):
        print(f"wrote {path}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    _add_mos(sub)
