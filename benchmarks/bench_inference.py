"""Inference speed and memory: the original ESRGAN `test.py` procedure against `esrgan upscale`'s paths.

    python benchmarks/bench_inference.py                      # print the table
    python benchmarks/bench_inference.py --write              # also write docs/benchmarks/inference.md
    python benchmarks/bench_inference.py --sizes 128x128 --methods reference,esrgan --repeat 3

Every method upscales the same image with the same weights: the paper's RRDBNet ×4 (nf 64, nb 23, gc 32;
random weights, seed 0, with BasicSR's init and an output bias so that the picture is not flat — speed does
not depend on what the weights learned, and the real ones cannot be downloaded here), saved once to a
safetensors file that every method loads. Inputs are real photographs: DIV2K sub-images from ../shared/data,
cropped or tiled to the given LR sizes.

Methods:
- ``reference``: the original ESRGAN `test.py` (xinntao/ESRGAN, 2018): the whole image as one NCHW float32
  tensor through the eager model under `torch.no_grad()`, then clamp, ×255, round.
- ``esrgan``: `esrgan.Upscaler` with the defaults of `esrgan upscale` (tile "auto" within the CPU memory
  budget, overlap 16, channels_last, tail in strips) — the default CPU path.
- ``esrgan-bf16``: the same with ``precision="bf16"`` (CPU autocast; fast where the CPU has AMX or
  AVX512-BF16, slow elsewhere). Its quality cost is reported as the PSNR of its output against the fp32 one.
- ``esrgan-auto``: the default of `esrgan upscale` and `Upscaler`, ``precision="auto"`` (bf16 where the CPU
  has native bf16, else fp32).
- ``onnxruntime`` / ``onnxruntime-int8``: the same Upscaler over `OnnxModel` (needs ``pip install
  "esrgan[onnx]"``); the ONNX files are exported from the same weights (int8: static QDQ calibrated on Set5).
- ``openvino`` / ``openvino-bf16``: the peer to beat on CPUs (``pip install openvino``): the fp32 ONNX file
  compiled by OpenVINO for the CPU, the whole image in one call, with ``INFERENCE_PRECISION_HINT`` f32, or
  OpenVINO's own default (bf16 on CPUs with native bf16).

``--process`` adds the whole-process comparison: the time from starting a process to the output file on disk,
for the original procedure (a script doing what `test.py` does: import torch, build and load the model, read
with cv2, run the whole image, write with cv2) against ``esrgan upscale`` with its defaults and with
``--precision fp32``, and the default path's split into start-up and model load, reading, compute and
encoding (measured in a process that takes the same steps as the command).

Each (method, size) runs in its own worker process, which loads the model and does one warm-up upscale (one
worker at a time). Then the timed upscales interleave: `--repeat` rounds, each asking every worker in turn
for one upscale (the order rotating from round to round) while the others wait idle, so that a change in the
machine's speed during the run (shared cores, clock) falls on every method alike instead of on whichever
ran then. Reported are the median seconds per output megapixel, the achieved GFLOP/s from the exact
multiply-add count of the network (counted here from the convolutions' shapes: 17,926,848 MAC per input
pixel for RRDBNet ×4, SPEC) and the peak resident memory of the process (VmHWM, model and image included).
The machine's attainable fp32 rate is measured in the same run as a 4096² matmul (torch, all threads), and
every method's GFLOP/s is also given as a share of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from peak_memory import peak_rss_bytes
from PIL import Image as PILImage
from torch import nn

from esrgan.archs import RRDBNet
from esrgan.archs.rrdbnet import basicsr_init
from esrgan.precision import cpu_flags
from esrgan.weights import load_model, save_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "benchmarks" / "inference.md"
CACHE = Path(tempfile.gettempdir()) / "esrgan-bench-inference"
METHODS = (
    "reference",
    "esrgan",
    "esrgan-bf16",
    "esrgan-auto",
    "onnxruntime",
    "onnxruntime-int8",
    "openvino",
    "openvino-bf16",
)
MACS_PER_INPUT_PIXEL = 17_926_848  # RRDBNet ×4, nf 64, nb 23, gc 32 (SPEC)


# ---------------------------------------------------------------------------------------------------------
# inputs


def weights_file() -> Path:
    path = CACHE / "rrdbnet_x4_random.safetensors"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        # BasicSR's init (PyTorch's default outside the dense blocks) and a bias that centres the output: the
        # paper's ×0.1 init everywhere gives an all-black image, which would hide precision differences.
        model = basicsr_init(RRDBNet())
        with torch.no_grad():
            model.conv_last.bias += 0.9
        save_model(model, path)
    return path


def input_image(height: int, width: int) -> Path:
    """A crop (tiled if needed) of real photographs, `height × width` RGB uint8, as a PNG."""
    path = CACHE / f"input_{width}x{height}.png"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sources = sorted((DATA / "DIV2K-tiny-HR").glob("*.png"))[:16]
        if not sources:
            raise SystemExit(f"no images in {DATA}; see ../shared/data/README.md")
        canvas = np.zeros((height, width, 3), np.uint8)
        k = 0
        for y in range(0, height, 480):
            for x in range(0, width, 480):
                img = np.asarray(PILImage.open(sources[k % len(sources)]).convert("RGB"))
                h, w = min(480, height - y, img.shape[0]), min(480, width - x, img.shape[1])
                canvas[y : y + h, x : x + w] = img[:h, :w]
                k += 1
        PILImage.fromarray(canvas).save(path)
    return path


def onnx_file(int8: bool) -> Path:
    from esrgan.inference.onnx import export_onnx, export_onnx_int8

    path = CACHE / ("rrdbnet_x4_int8.onnx" if int8 else "rrdbnet_x4.onnx")
    if not path.exists():
        if int8:
            export_onnx_int8(str(weights_file()), path, sorted((DATA / "Set5").glob("*.png")))
        else:
            export_onnx(str(weights_file()), path)
    return path


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of every convolution for one `height × width` input (from output shapes)."""
    total = 0

    def hook(module: nn.Conv2d, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    for h in handles:
        h.remove()
    return total


# ---------------------------------------------------------------------------------------------------------
# one measurement (runs in its own process)


def reference_upscale(model: nn.Module, img: np.ndarray) -> np.ndarray:
    """xinntao/ESRGAN test.py, minus file reading and writing (its arrays are BGR; RGB here)."""
    x = img * 1.0 / 255
    x = torch.from_numpy(np.transpose(x, (2, 0, 1))).float()
    x = x.unsqueeze(0)
    with torch.no_grad():
        out = model(x).data.squeeze().float().cpu().clamp_(0, 1).numpy()
    out = np.transpose(out, (1, 2, 0))
    return (out * 255.0).round().astype(np.uint8)


def peak_rss_mb() -> float:
    return peak_rss_bytes() / 2**20


def upscale_function(method: str, img: np.ndarray) -> Callable[[], np.ndarray]:
    """One upscale of `img` by `method`, ready to call (model loaded, session compiled)."""
    if method == "reference":
        model = load_model(str(weights_file()), device="cpu").eval()
        return lambda: reference_upscale(model, img)
    if method.startswith("openvino"):
        return _openvino_runner(img, bf16=method.endswith("bf16"))
    from esrgan.inference.upscaler import Upscaler

    if method.startswith("esrgan"):
        precision = {"esrgan-bf16": "bf16", "esrgan-auto": None}.get(method, "fp32")
        model = load_model(str(weights_file()), device="cpu")
        upscaler = Upscaler(model, tile="auto", device="cpu", precision=precision)  # type: ignore[arg-type]
    else:
        from esrgan.inference.onnx import OnnxModel

        upscaler = Upscaler(OnnxModel(onnx_file(method.endswith("int8"))), tile="auto", device="cpu")
    return lambda: upscaler.upscale(img)


def serve(method: str, image_path: Path) -> None:
    """The worker process: warm up, then one timed upscale per "run" line on stdin until "done"."""
    img = np.asarray(PILImage.open(image_path).convert("RGB"))
    run = upscale_function(method, img)
    out = run()  # warm-up: oneDNN primitive creation, allocator
    _reply({"ready": True})
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        out = run()
        _reply({"seconds": time.perf_counter() - start})
    np.save(CACHE / f"out_{method}_{image_path.stem}.npy", out)
    _reply({"out_shape": list(out.shape), "max_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()})


_REPLY = "@bench "  # marks the worker's replies among whatever the libraries print


def _reply(message: dict[str, object]) -> None:
    print(_REPLY + json.dumps(message), flush=True)


class Worker:
    """A `serve` process for one method and image, driven line by line."""

    def __init__(self, method: str, image: Path) -> None:
        self.stderr = tempfile.TemporaryFile("w+")
        command = [sys.executable, __file__, "--worker", method, str(image)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )

    def reply(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_REPLY):
                return json.loads(line[len(_REPLY) :])
        self.proc.wait()
        self.stderr.seek(0)
        raise RuntimeError((self.stderr.read().strip().splitlines() or ["failed"])[-1])

    def ask(self, command: str) -> dict[str, object]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.reply()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def _openvino_runner(img: np.ndarray, *, bf16: bool) -> object:
    """OpenVINO's CPU plugin on the fp32 ONNX file: f32 inference, or its default precision (bf16 where the
    CPU has it). The whole image in one call, converted as `reference_upscale` does."""
    import openvino as ov

    core = ov.Core()
    config = {} if bf16 else {"INFERENCE_PRECISION_HINT": "f32"}
    model = core.read_model(str(onnx_file(False)))
    model.reshape([1, 3, img.shape[0], img.shape[1]])
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    x = np.ascontiguousarray(np.transpose(img, (2, 0, 1))[None].astype(np.float32) / 255)

    def run() -> np.ndarray:
        out = request.infer([x])[compiled.output(0)][0]
        return (np.transpose(np.clip(out, 0, 1), (1, 2, 0)) * 255.0).round().astype(np.uint8)

    return run


# ---------------------------------------------------------------------------------------------------------
# whole processes

REFERENCE_SCRIPT = """
import sys, cv2, numpy as np, torch
from esrgan.archs import RRDBNet
from safetensors.torch import load_file
model = RRDBNet()
model.load_state_dict(load_file(sys.argv[1]))
model.eval()
img = cv2.imread(sys.argv[2], cv2.IMREAD_COLOR) * 1.0 / 255
img = torch.from_numpy(np.transpose(img[:, :, [2, 1, 0]], (2, 0, 1))).float().unsqueeze(0)
with torch.no_grad():
    out = model(img).data.squeeze().float().cpu().clamp_(0, 1).numpy()
out = np.transpose(out[[2, 1, 0], :, :], (1, 2, 0))
cv2.imwrite(sys.argv[3], (out * 255.0).round())
"""

SPLIT_SCRIPT = """
import json, sys, time
start = time.perf_counter()
from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import read_image, write_image
from esrgan.weights import load_model
upscaler = Upscaler(load_model(sys.argv[1]))
loaded = time.perf_counter()
image = read_image(sys.argv[2])
read = time.perf_counter()
out = upscaler.upscale_image(image)
computed = time.perf_counter()
write_image(sys.argv[3], out)
written = time.perf_counter()
print(json.dumps({"start-up and model load": loaded - start, "read": read - loaded,
                  "compute": computed - read, "encode and write": written - computed,
                  "precision": str(upscaler.precision)}))
"""


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def process_rows(width: int, height: int, repeat: int) -> str:
    """The whole-process table (see the module docstring) for an input of `width × height`."""
    image, weights = input_image(height, width), weights_file()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        upscale = [sys.executable, "-m", "esrgan", "upscale", str(image), "-m", str(weights), "-q"]
        upscale += ["--no-manifest", "--overwrite", "-o"]
        reference = [sys.executable, "-c", REFERENCE_SCRIPT, str(weights), str(image), str(out / "ref.png")]
        commands = {
            "reference procedure (test.py)": reference,
            "esrgan upscale (default)": [*upscale, str(out / "auto")],
            "esrgan upscale --precision fp32": [*upscale, str(out / "fp32"), "--precision", "fp32"],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeat):  # interleaved, like the methods above
            for name, command in commands.items():
                walls[name].append(_timed(command))
        times = {name: statistics.median(values) for name, values in walls.items()}
        split = json.loads(
            subprocess.run(
                [sys.executable, "-c", SPLIT_SCRIPT, str(weights), str(image), str(out / "split.png")],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        ref = np.asarray(PILImage.open(out / "ref.png").convert("RGB")).astype(np.float64)
        name = f"{image.stem}_out.png"
        fidelity_of = {}
        for label, folder in (
            ("esrgan upscale (default)", "auto"),
            ("esrgan upscale --precision fp32", "fp32"),
        ):
            got = np.asarray(PILImage.open(out / folder / name).convert("RGB")).astype(np.float64)
            mse = float(np.mean((got - ref) ** 2))
            db = "∞" if mse == 0 else f"{10 * np.log10(255**2 / mse):.1f} dB"
            fidelity_of[label] = f"{db}, max {int(np.abs(got - ref).max())}"
    base = times["reference procedure (test.py)"]
    lines = [
        f"Whole process, {width}×{height} → {width * 4}×{height * 4} PNG (median of {repeat}; the default "
        f"ran in {split.pop('precision')}):",
        "",
        "| process | wall (s) | speed-up | output vs the reference procedure (PSNR, max levels) |",
        "|---|---:|---:|---|",
    ]
    for label, seconds in times.items():
        lines.append(f"| {label} | {seconds:.2f} | {base / seconds:.2f}× | {fidelity_of.get(label, '')} |")
    lines += ["", "Split of the default path (one run, in-process steps as the command takes them):", ""]
    lines += ["| step | seconds |", "|---|---:|"] + [f"| {k} | {v:.2f} |" for k, v in split.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# driver


def measure(methods: list[str], height: int, width: int, repeat: int) -> dict[str, dict[str, object]]:
    """Every method's result at one size, their timed upscales interleaved (see the module docstring)."""
    image = input_image(height, width)
    results: dict[str, dict[str, object]] = {}
    workers: dict[str, Worker] = {}
    try:
        for method in methods:
            if method.startswith("onnxruntime") or method.startswith("openvino"):
                onnx_file(method.endswith("int8"))  # export outside the workers
            worker = Worker(method, image)
            try:
                worker.reply()  # loaded and warmed up, before the next worker starts
                workers[method] = worker
            except RuntimeError as err:
                worker.close()
                results[method] = {"error": str(err)}
        seconds: dict[str, list[float]] = {method: [] for method in workers}
        for round_ in range(repeat):
            order = list(workers)
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for method in order:
                seconds[method].append(float(workers[method].ask("run")["seconds"]))  # type: ignore[arg-type]
        out_mp = height * width * 16 / 1e6
        for method, worker in workers.items():
            median = statistics.median(seconds[method])
            results[method] = {
                **worker.ask("done"),
                "seconds": seconds[method],
                "median_s": median,
                "s_per_mp": median / out_mp,
                "gflops": 2 * MACS_PER_INPUT_PIXEL * height * width / median / 1e9,
            }
    finally:
        for worker in workers.values():
            worker.close()
    return {method: results[method] for method in methods}


def bf16_units() -> str:
    """The CPU's native bf16 instructions, as the machine line names them (the precision "auto" follows)."""
    flags = cpu_flags()
    return "".join(
        name for flag, name in (("avx512_bf16", ", AVX512-BF16"), ("amx_bf16", ", AMX")) if flag in flags
    )


def matmul_gflops() -> float:
    """fp32 GFLOP/s of a 4096² matmul: what this CPU attains on the easiest dense work."""
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    return 2 * 4096**3 * 5 / (time.perf_counter() - start) / 1e9


def fidelity(method: str, width: int, height: int) -> str:
    """PSNR (RGB, dB) of a method's output against the fp32 torch reference output, and the largest
    difference in levels."""
    stem = f"input_{width}x{height}"
    ref, out = CACHE / f"out_reference_{stem}.npy", CACHE / f"out_{method}_{stem}.npy"
    if method == "reference" or not ref.exists() or not out.exists():
        return ""
    a, b = np.load(ref).astype(np.float64), np.load(out).astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    psnr = "∞" if mse == 0 else f"{10 * np.log10(255**2 / mse):.1f} dB"
    return f"{psnr}, max {int(np.abs(a - b).max())}"


def table(rows: list[tuple[str, str, dict[str, object]]], peak: float) -> str:
    lines = [
        "| output | method | s / output MP | GFLOP/s | % of matmul rate | peak RSS | speed-up vs reference "
        "| output vs reference (PSNR, max levels) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    reference = {size: r.get("s_per_mp") for size, method, r in rows if method == "reference"}
    for size, method, r in rows:
        if "error" in r:
            lines.append(f"| {size} | {method} | failed: {r['error']} | | | | | |")
            continue
        ref = reference.get(size)
        speedup = f"{ref / r['s_per_mp']:.2f}×" if isinstance(ref, float) else "–"
        lines.append(
            f"| {size} | {method} | {r['s_per_mp']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['gflops'] / peak:.0f}% | {r['max_rss_mb']:.0f} MB | {speedup} | {r['fidelity']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="128x128,480x320", help="LR sizes WxH, comma separated")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    parser.add_argument(
        "--process", default=None, metavar="WxH", help="also the whole-process comparison at this LR size"
    )
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "IMAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(args.worker[0], Path(args.worker[1]))
        return

    unknown = sorted(set(args.methods.split(",")) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    macs = count_macs(RRDBNet(), 32, 32) // (32 * 32)
    if macs != MACS_PER_INPUT_PIXEL:
        raise SystemExit(f"MAC count {macs} per input pixel differs from the SPEC's {MACS_PER_INPUT_PIXEL}")
    peak = matmul_gflops()
    print(f"4096² matmul: {peak:.0f} GFLOP/s", flush=True)
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        for method, result in measure(args.methods.split(","), height, width, args.repeat).items():
            result["fidelity"] = fidelity(method, width, height)
            label = f"{width * 4}×{height * 4}"
            rows.append((label, method, result))
            print(label, method, json.dumps(result), flush=True)
    load = os.getloadavg()[0]
    capability = torch.backends.cpu.get_cpu_capability()
    cpu = f"{platform.processor() or platform.machine()} ({capability}{bf16_units()})"
    text = (
        "# Inference speed and memory\n\n"
        f"Generated by `python benchmarks/bench_inference.py --sizes {args.sizes} --methods {args.methods} "
        f"--repeat {args.repeat}{f' --process {args.process}' if args.process else ''} --write`; rerun it to "
        "refresh this page.\n\n"
        f"Machine: {cpu}, {os.cpu_count()} CPU cores visible, torch threads {torch.get_num_threads()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}. RRDBNet ×4 (nf 64, nb 23), "
        f"{MACS_PER_INPUT_PIXEL:,} multiply-adds per input pixel (counted from the convolutions); "
        f"a 4096² fp32 matmul ran at {peak:.0f} GFLOP/s in this run. Median of {args.repeat} runs after a "
        "warm-up, each method in its own process, the methods' runs interleaved round by round; peak RSS "
        "includes Python, torch and the model. Load average when the "
        f"measurement ended: {load:.1f}.\n\n" + table(rows, peak) + "\n"
    )
    if args.process:
        width, height = (int(v) for v in args.process.lower().split("x"))
        text += "\n" + process_rows(width, height, args.repeat) + "\n"
    print(text)
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
