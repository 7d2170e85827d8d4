"""Training throughput and where the time of one iteration goes (data, forward, backward, optimizer).

    python benchmarks/bench_train.py                                  # tiny_psnr + tiny_gan, print
    python benchmarks/bench_train.py --write                          # also write docs/benchmarks/training.md
    python benchmarks/bench_train.py --config configs/tiny_psnr.yaml model.num_block=23 --iters 20

Each configuration is measured three ways:

1. *phases*: one iteration split by hand into the phases of `psnr_step` / `gan_step` (same models, losses and
   optimizers as `esrgan.train`, the same order of operations), each timed with `time.perf_counter`
   (synchronised on CUDA). Data is timed separately: one batch made in this process (``num_workers=0``),
   i.e. the CPU cost of decoding, cropping, MATLAB-bicubic LR and augmentation.
2. *step*: the real `psnr_step` / `gan_step` on a fixed batch (no data loading): compute throughput.
3. *end to end*: `esrgan.train.train` for ``--iters`` iterations with the config's loader (``num_workers``
   background processes), no validation or checkpoints in the timed window — the it/s a user sees.

The GAN stage needs VGG19 weights for the perceptual loss; without torchvision's ImageNet file this script
creates a randomly initialised one (same shapes, so the same cost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from esrgan.config import ExperimentConfig, apply_overrides, load_config
from esrgan.data import PairedImageDataset, build_train_loader
from esrgan.losses import discriminator_gan_losses, generator_gan_loss, pixel_loss
from esrgan.train import build_discriminator, build_generator, gan_step, psnr_step, train
from esrgan.train.loop import build_generator_losses

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks" / "training.md"
DEFAULT_CONFIGS = ("configs/tiny_psnr.yaml", "configs/tiny_gan.yaml")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Accumulates seconds per phase name."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        _sync(self.device)
        t0 = time.perf_counter()
        out = fn()
        _sync(self.device)
        self.seconds[name].append(time.perf_counter() - t0)
        return out


def _vgg_file(cfg: ExperimentConfig, tmp: Path) -> ExperimentConfig:
    """Point the perceptual loss at a random-init VGG19 file when the ImageNet one is not available."""
    from esrgan.archs.vgg import VGG19FeatureExtractor, find_vgg19_weights
    from esrgan.errors import WeightsError

    if cfg.train.stage != "gan" or cfg.loss.perceptual.weight == 0:
        return cfg
    try:
        find_vgg19_weights(cfg.loss.perceptual.vgg_weights)
        return cfg
    except WeightsError:
        path = tmp / "vgg19-random.pth"
        if not path.exists():
            vgg = VGG19FeatureExtractor(layers=["conv5_4"], weights=None)
            torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, path)
        print(f"  (no ImageNet VGG19 file: timing with random weights, {path})", file=sys.stderr)
        return apply_overrides(cfg, [f"loss.perceptual.vgg_weights={path}"])


def measure_phases(cfg: ExperimentConfig, device: torch.device, warmup: int, iters: int) -> dict[str, float]:
    """Median seconds per phase of one iteration, plus the real step function's median."""
    torch.manual_seed(0)
    G = build_generator(cfg.model).to(device).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.lr_g, betas=cfg.optim.betas)
    gan = cfg.train.stage == "gan"
    D = build_discriminator(cfg.discriminator).to(device).train() if gan else None
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.lr_d, betas=cfg.optim.betas) if D else None
    losses = build_generator_losses(cfg.loss) if gan else None
    if losses is not None and losses.perceptual is not None:
        losses.perceptual.to(device)

    dataset = PairedImageDataset(cfg.data, seed=0)
    loader = build_train_loader(
        apply_overrides(cfg, ["data.num_workers=0"]).data, dataset=dataset, pin_memory=False
    )
    batches = iter(loader)
    timer = Timer(device)

    def one_iteration() -> None:
        batch = timer("data (1 batch, in process)", lambda: next(batches))
        lq, gt = batch["lq"].to(device), batch["gt"].to(device)
        if not gan:
            opt_g.zero_grad(set_to_none=True)
            loss = timer("G forward + loss", lambda: pixel_loss(G(lq), gt, cfg.loss.pixel))
            timer("G backward", loss.backward)
            timer("G optimizer", opt_g.step)
            return
        assert D is not None and opt_d is not None and losses is not None
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        sr = timer("G forward", lambda: G(lq))

        def g_losses() -> torch.Tensor:
            real = D(gt).detach() if cfg.loss.gan.type == "ragan" else sr.new_empty(0)
            total = generator_gan_loss(real, D(sr), cfg.loss.gan)
            return total + pixel_loss(sr, gt, cfg.loss.pixel) if cfg.loss.pixel.weight else total

        loss = timer("D forward (G step) + pixel/GAN loss", g_losses)
        if losses.perceptual is not None:
            loss = loss + timer("VGG19 forward (perceptual)", lambda: losses.perceptual(sr, gt))
        timer("G step backward (through D, VGG, G)", loss.backward)
        timer("G optimizer", opt_g.step)
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)

        def d_losses() -> torch.Tensor:
            return sum(discriminator_gan_losses(D(gt), D(sr.detach()), cfg.loss.gan))  # type: ignore[return-value]

        d_loss = timer("D forward (D step)", d_losses)
        timer("D backward", d_loss.backward)
        timer("D optimizer", opt_d.step)

    for _ in range(warmup):
        one_iteration()
    timer.seconds.clear()
    for _ in range(iters):
        one_iteration()
    phases = {name: statistics.median(v) for name, v in timer.seconds.items()}

    batch = next(batches)
    fixed = {"lq": batch["lq"].to(device), "gt": batch["gt"].to(device)}
    step_times = []
    for i in range(warmup + iters):
        _sync(device)
        t0 = time.perf_counter()
        if gan:
            assert D is not None and opt_d is not None and losses is not None
            gan_step(fixed, G, D, opt_g, opt_d, losses)
        else:
            psnr_step(fixed, G, opt_g, cfg.loss.pixel)
        _sync(device)
        if i >= warmup:
            step_times.append(time.perf_counter() - t0)
    phases["step function (fixed batch)"] = statistics.median(step_times)
    return phases


def measure_end_to_end(cfg: ExperimentConfig, iters: int, warmup: int, tmp: Path) -> dict[str, float]:
    """it/s of `esrgan.train.train` over its last `iters` of `warmup + iters` iterations (JSONL log)."""
    total = warmup + iters
    run_cfg = apply_overrides(
        cfg,
        [
            f"train.total_iters={total}",
            "train.log_every=1",
            f"train.checkpoint_every={total}",
            "data.val_hr_dirs=[]",
            "train.pretrained=none",
        ],
    )
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    train(run_cfg, run_dir, resume=False)
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if r["kind"] == "train"][-iters:]
    seconds = [1 / r["it_per_s"] for r in timed]
    data = [r["data_frac"] * s for r, s in zip(timed, seconds, strict=True)]
    return {"it_per_s": len(seconds) / sum(seconds), "data_frac": sum(data) / sum(seconds), "iters": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", action="append", help="config YAML (repeatable; default: the tiny presets)"
    )
    parser.add_argument("overrides", nargs="*", help="dotted overrides applied to every config")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--iters", type=int, default=20, help="timed iterations (phases, step and end to end)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.chdir(ROOT)  # the presets' data paths are relative to the repository root
    device = torch.device(args.device)
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for path in args.config or DEFAULT_CONFIGS:
            cfg = load_config(path, [*args.overrides, f"train.device={args.device}"])
            cfg = _vgg_file(cfg, tmp)
            print(f"{path}: phases …", file=sys.stderr)
            phases = measure_phases(cfg, device, args.warmup, args.iters)
            print(f"{path}: end to end …", file=sys.stderr)
            e2e = measure_end_to_end(cfg, args.iters, args.warmup, tmp)
            results.append((path, cfg, phases, e2e))
    text = render(results, args)
    print(text)
    if args.write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


def render(results: list[tuple[str, ExperimentConfig, dict[str, float], dict[str, float]]], args: Any) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        "# Training throughput",
        "",
        "Generated by `python benchmarks/bench_train.py "
        + " ".join(sys.argv[1:])
        + "` (from the repository root, venv active); rerun it to refresh this page.",
        "",
        f"Machine: {cpu}, {os.cpu_count()} CPU cores visible, torch threads {torch.get_num_threads()}, "
        f"device {args.device}; Python {platform.python_version()}, torch {torch.__version__}. "
        f"Medians over {args.iters} iterations after {args.warmup} warm-up iterations. "
        f"Load average when the measurement ended: {os.getloadavg()[0]:.1f} (1 min); on a shared machine "
        "single numbers are noisy: medians are robust to short bursts of load, not to sustained load.",
        "",
    ]
    for path, cfg, phases, e2e in results:
        m, d = cfg.model, cfg.data
        step = phases["step function (fixed batch)"]
        data = phases["data (1 batch, in process)"]
        compute = sum(v for k, v in phases.items() if not k.startswith(("data", "step function")))
        lines += [
            f"## `{path}` ({cfg.train.stage} stage)",
            "",
            f"{m.arch} {m.num_block}×{m.num_feat}"
            + (f" (growth {m.num_grow_ch})" if m.arch == "RRDBNet" else "")
            + f", batch {d.batch_size}, GT patch {d.gt_size} (LR {d.gt_size // d.scale}), "
            + f"{d.num_workers} loader worker(s)"
            + (
                f"; {cfg.discriminator.arch} ({cfg.discriminator.num_feat} features, "
                f"{cfg.discriminator.input_size} px)"
                f", perceptual {cfg.loss.perceptual.layer} (weight {cfg.loss.perceptual.weight:g})"
                if cfg.train.stage == "gan"
                else ""
            )
            + ".",
            "",
            "| phase | ms / iteration | share of compute |",
            "|---|---:|---:|",
        ]
        for name, sec in phases.items():
            if name.startswith(("data", "step function")):
                continue
            lines.append(f"| {name} | {sec * 1e3:.1f} | {100 * sec / compute:.0f}% |")
        lines += [
            f"| **sum of compute phases** | **{compute * 1e3:.1f}** | 100% |",
            "",
            "| measurement | value |",
            "|---|---:|",
            "| data: one batch made in process (decode + crop + MATLAB-bicubic LR + flips) | "
            f"{data * 1e3:.1f} ms |",
            f"| `{'gan_step' if cfg.train.stage == 'gan' else 'psnr_step'}` on a fixed batch | "
            f"{step * 1e3:.1f} ms = {1 / step:.2f} it/s |",
            f"| `esrgan train` end to end ({e2e['iters']} iterations, last {args.iters} timed) | "
            f"**{e2e['it_per_s']:.2f} it/s** (waiting for data {100 * e2e['data_frac']:.0f}% of the time) |",
            f"| images per second (end to end) | {e2e['it_per_s'] * d.batch_size:.1f} |",
            "",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
