"""The training loop: `train(cfg, run_dir)`, from a config to an exported generator, in one function.

It builds what the config asks for (generator, discriminator and losses of the stage, Adam optimizers, EMA,
data), resumes from the run folder's latest checkpoint when there is one, and then runs

    for each step:  lr from the schedule → next batch → psnr_step or gan_step → EMA update
                    → every log_every: console/JSONL/TensorBoard   → every val_every: PSNR/SSIM (Y) + samples
                    → every checkpoint_every: checkpoint + exported generator

Resuming is exact: the checkpoint holds the models, EMA, optimizers, loss scaler, RNG states and the number of
batches consumed, and the data stream (`esrgan.data.build_train_loader`) is a pure function of that number;
a run killed at any moment and resumed ends with the same weights, bit for bit, as an uninterrupted one (on
CPU; on CUDA with ``train.deterministic=true``).

Distributed training: start with ``torchrun --nproc-per-node N -m esrgan train ...``. Every process takes its
shard of each batch position (``data.batch_size`` per process; global batch = N × batch_size), gradients are
averaged by DistributedDataParallel (NCCL on CUDA, Gloo on CPU), and only rank 0 logs, validates and writes
files. The PSNR stage then equals a single process with the global batch (up to float summation order). The
GAN stage does not: as in BasicSR, the discriminator's batch norm and RaGAN's batch means see each process's
own samples.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from esrgan._fs import atomic_write_text
from esrgan.config import (
    DiscriminatorConfig,
    ExperimentConfig,
    LossConfig,
    ModelConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    save_config,
)
from esrgan.errors import ConfigError, EsrganError, WeightsError
from esrgan.precision import resolve_precision
from esrgan.train.checkpoint import (
    export_generator,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from esrgan.train.ema import ModelEMA
from esrgan.train.schedules import learning_rate
from esrgan.train.steps import GeneratorLosses, Precision, gan_step, psnr_step

__all__ = [
    "DistributedContext",
    "TrainResult",
    "build_discriminator",
    "build_generator",
    "build_generator_losses",
    "load_pretrained_generator",
    "setup_distributed",
    "train",
    "validate",
]

logger = logging.getLogger(__name__)
TRAIN_LOGGER = "esrgan.train"  # parent of this module's logger; the CLI and train.log attach here


@dataclass(frozen=True)
class DistributedContext:
    """Where this process runs: its rank among `world_size` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    model_path: Path  # the exported generator (EMA weights if enabled) after the last step
    step: int
    val: dict[str, float]  # the last validation's metrics (empty without validation data)
    rank: int = 0  # this process's rank (files are written by rank 0 only)


# ---------------------------------------------------------------------------------------------------------
# building blocks


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The generator of `cfg` (RRDBNet, SRResNet with or without BN, MSRResNet), freshly initialised."""
    from esrgan.archs import MSRResNet, RRDBNet, SRResNet
    from esrgan.archs.rrdbnet import basicsr_init

    common = dict(
        num_in_ch=cfg.num_in_ch,
        num_out_ch=cfg.num_out_ch,
        num_feat=cfg.num_feat,
        num_block=cfg.num_block,
        scale=cfg.scale,
    )
    if cfg.arch == "RRDBNet":
        model = RRDBNet(**common, num_grow_ch=cfg.num_grow_ch)
        return basicsr_init(model) if cfg.init == "basicsr" else model
    if cfg.arch == "SRResNet":
        return SRResNet(**common, use_bn=cfg.use_bn)
    if cfg.arch == "MSRResNet":
        return MSRResNet(**common)
    raise ConfigError(f"unknown model.arch {cfg.arch!r}; valid: RRDBNet, SRResNet, MSRResNet")


def build_discriminator(cfg: DiscriminatorConfig) -> nn.Module:
    from esrgan.archs import DISCRIMINATORS

    sized = {} if cfg.arch == "UNetDiscriminatorSN" else {"input_size": cfg.input_size}  # any size
    try:
        arch = DISCRIMINATORS[cfg.arch]
        return arch(num_in_ch=cfg.num_in_ch, num_feat=cfg.num_feat, **sized)
    except ValueError as exc:
        raise ConfigError(f"discriminator: {exc}") from None


def build_generator_losses(cfg: LossConfig) -> GeneratorLosses:
    """The GAN stage's loss terms; the VGG19 file is looked up only if the perceptual weight is not 0.

    A missing VGG19 file raises `WeightsError` naming the file and its download URL.
    """
    from esrgan.archs.vgg import find_vgg19_weights
    from esrgan.losses import build_perceptual_loss

    perceptual = None
    if cfg.perceptual.weight != 0 and cfg.perceptual.vgg_init == "random":
        perceptual = build_perceptual_loss(cfg.perceptual)
    elif cfg.perceptual.weight != 0:
        try:
            vgg_path = find_vgg19_weights(cfg.perceptual.vgg_weights)
        except WeightsError as exc:
            raise WeightsError(
                f"{exc} In the config: loss.perceptual.vgg_weights=PATH, or loss.perceptual.weight=0 to "
                "train without the perceptual loss."
            ) from None
        perceptual = build_perceptual_loss(dataclasses.replace(cfg.perceptual, vgg_weights=str(vgg_path)))
    return GeneratorLosses(
        pixel=cfg.pixel,
        perceptual=perceptual,
        gan=cfg.gan,
        feature_matching=cfg.feature_matching,
        artifact=cfg.artifact,
    )


def load_pretrained_generator(model: nn.Module, name_or_path: str) -> None:
    """Load generator weights (any supported file or a model name) into `model`; they must fit exactly."""
    from esrgan.weights import build_model, read_generator_weights, resolve_weights

    try:
        weights = read_generator_weights(resolve_weights(name_or_path))
    except EsrganError as exc:
        raise EsrganError(f"train.pretrained: {exc} (train the previous stage first?)") from None
    found = build_model(weights.arch, weights.hparams, weights.state_dict, str(weights.path))
    mine = (getattr(model, "arch_name", type(model).__name__), getattr(model, "hparams", None))
    theirs = (found.arch_name, found.hparams)  # type: ignore[attr-defined]
    if mine != theirs:
        raise EsrganError(
            f"train.pretrained {weights.path} is a {theirs[0]}{theirs[1]}, but the config builds a "
            f"{mine[0]}{mine[1]}; set model.* to match the pretrained network"
        )
    model.load_state_dict(found.state_dict(), strict=True)


def _resolve_device(name: str, local_rank: int, world_size: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name} but CUDA is not available; use train.device=cpu")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank if world_size > 1 else 0}")
    return device


def setup_distributed(device: str = "auto") -> tuple[DistributedContext, bool]:
    """Read torchrun's environment and join the process group; returns (context, whether we created it)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _resolve_device(device, local_rank, world_size)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    created = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        created = True
    return DistributedContext(rank, world_size, local_rank, dev), created


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: Any,
    *,
    scale: int,
    device: torch.device,
    sample_dir: Path | None = None,
    num_samples: int = 0,
) -> dict[str, float]:
    """Mean PSNR and SSIM on Y (BT.601, float Y), border `scale` removed, of the model's 8-bit outputs.

    The output is clamped and rounded to 8 bits first (what a saved image holds). The first `num_samples`
    outputs are written to `sample_dir` as PNG.
    """
    from esrgan.io.images import Image, write_image
    from esrgan.metrics import psnr_torch, ssim_torch

    was_training = model.training
    model.eval()
    psnrs, ssims = [], []
    multiple = int(getattr(model, "size_multiple", 1))
    for i, batch in enumerate(loader):
        lq, gt = batch["lq"].to(device), batch["gt"].to(device)
        h, w = lq.shape[-2:]
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
        if pad_h or pad_w:
            lq = F.pad(lq, (0, pad_w, 0, pad_h), mode="reflect")
        sr = model(lq)[..., : h * scale, : w * scale].float()
        sr = sr.clamp(0, 1).mul(255).round().div(255)
        psnrs.append(psnr_torch(sr, gt, crop_border=scale).item())
        ssims.append(ssim_torch(sr, gt, crop_border=scale).item())
        if sample_dir is not None and i < num_samples:
            pixels = sr[0].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
            name = Path(batch["path"][0]).stem
            sample_dir.mkdir(parents=True, exist_ok=True)
            write_image(sample_dir / f"{name}.png", Image(pixels=pixels), overwrite=True)
    model.train(was_training)
    if not psnrs:
        return {}
    return {"psnr_y": sum(psnrs) / len(psnrs), "ssim_y": sum(ssims) / len(ssims)}


# ---------------------------------------------------------------------------------------------------------
# logging helpers


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{days}d {h:02d}:{m:02d}:{s:02d}" if days else f"{h:02d}:{m:02d}:{s:02d}"


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records after `last_step` (logged by a run that died before its next checkpoint)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= last_step
    ]
    atomic_write_text(path, "".join(line + "\n" for line in kept), overwrite=True)


def _mean_across_ranks(values: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    if ctx.world_size == 1:
        return values
    keys = list(values)  # the same keys in the same order on every rank (same stage, same step function)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def _tensorboard(run_dir: Path, purge_step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step or None)


def _barrier(ctx: DistributedContext) -> None:
    if ctx.world_size > 1:
        dist.barrier()


def _config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# ---------------------------------------------------------------------------------------------------------
# the loop


def _remove_run_without_results(run_dir: Path) -> None:
    """Delete a run folder this call created, when training failed before any checkpoint or model was saved
    (a config or data error): it holds only the config copy and the log, and would look like a real run."""
    if list_checkpoints(run_dir) or (run_dir / "models").exists():
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    logger.info("removed %s: the run failed before saving anything", run_dir)


def train(
    cfg: ExperimentConfig | str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = True,
    overrides: Sequence[str] = (),
) -> TrainResult:
    """Train per `cfg` (a config or a YAML path, plus dotted `overrides`) in `run_dir` (default runs/NAME).

    With `resume` (the default) a run folder holding checkpoints continues from the latest; without it
    earlier checkpoints and exported models are moved to ``RUN_DIR/discarded-TIMESTAMP/`` and training
    starts over. Returns where the final generator was written.
    """
    if not isinstance(cfg, ExperimentConfig):
        cfg = load_config(cfg, overrides)
    elif overrides:
        cfg = apply_overrides(cfg, overrides)
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / cfg.name
    tc = cfg.train
    ctx, owns_process_group = setup_distributed(tc.device)
    device = ctx.device
    gan = tc.stage == "gan"

    train_logger = logging.getLogger(TRAIN_LOGGER)
    file_handler: logging.Handler | None = None
    previous_level = train_logger.level
    created_run_dir = ctx.is_main and not run_dir.exists()
    succeeded = False
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if train_logger.level == logging.NOTSET:
            train_logger.setLevel(logging.INFO)
        file_handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        train_logger.addHandler(file_handler)
    else:
        train_logger.setLevel(logging.WARNING)  # only rank 0 reports progress
    tb = None
    try:
        # ---- determinism
        if tc.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed patch sizes: let cuDNN pick the fastest kernels

        # ---- resume or start over
        checkpoint = None
        if resume:
            path = latest_checkpoint(run_dir)
            if path is not None:
                checkpoint = load_checkpoint(path)
                logger.info("resuming from %s (step %d)", path, checkpoint["step"])
        elif ctx.is_main and (list_checkpoints(run_dir) or (run_dir / "models").is_dir()):
            aside = run_dir / time.strftime("discarded-%Y%m%d-%H%M%S")
            aside.mkdir()
            for name in ("checkpoints", "models", "metrics.jsonl", "samples", "tensorboard"):
                if (run_dir / name).exists():
                    os.replace(run_dir / name, aside / name)
            logger.warning("--no-resume: moved the previous run's files to %s", aside)
        _barrier(ctx)
        if ctx.is_main:
            save_config(cfg, run_dir / "config.yaml")

        # ---- models, losses, optimizers
        random.seed(tc.seed)  # same initialisation in every process
        np.random.seed(tc.seed)
        torch.manual_seed(tc.seed)
        G = build_generator(cfg.model)
        if checkpoint is None and tc.pretrained:
            load_pretrained_generator(G, tc.pretrained)
            logger.info("generator initialised from %s", tc.pretrained)
        elif checkpoint is None and gan:
            logger.warning("GAN stage without train.pretrained: ESRGAN starts from the PSNR-stage model")
        memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
        G.to(device, memory_format=memory_format)
        D = build_discriminator(cfg.discriminator).to(device, memory_format=memory_format) if gan else None
        losses = build_generator_losses(cfg.loss) if gan else None
        if losses is not None and losses.perceptual is not None:
            losses.perceptual.to(device, memory_format=memory_format)
        adam = dict(betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.lr_g, **adam)  # type: ignore[arg-type]
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.lr_d, **adam) if D else None  # type: ignore[arg-type]
        ema = ModelEMA(G, tc.ema_decay) if tc.ema_decay > 0 else None
        precision_name = resolve_precision(tc.precision, device, "training")
        precision = Precision.create(precision_name, device)

        step = 0
        if checkpoint is not None:
            if differences := _config_differences(checkpoint["config"], config_to_dict(cfg)):
                logger.warning("config changed since the checkpoint: %s", "; ".join(differences))
            try:
                G.load_state_dict(checkpoint["generator"])
                if D is not None:
                    D.load_state_dict(checkpoint["discriminator"])
                if ema is not None:
                    ema.load_state_dict(checkpoint["ema"])
                opt_g.load_state_dict(checkpoint["opt_g"])
                if opt_d is not None:
                    opt_d.load_state_dict(checkpoint["opt_d"])
            except (RuntimeError, KeyError, ValueError, TypeError) as exc:
                raise EsrganError(
                    f"the checkpoint in {run_dir} does not fit this config ({str(exc).splitlines()[0]}); "
                    "use the original config, another --run-dir, or --no-resume"
                ) from None
            if precision.scaler is not None and checkpoint.get("scaler"):
                precision.scaler.load_state_dict(checkpoint["scaler"])
            set_rng_state(checkpoint["rng"])
            step = int(checkpoint["step"])
            data = checkpoint["data"]
            if (data["batch_size"], data["world_size"], data["seed"]) != (
                cfg.data.batch_size,
                ctx.world_size,
                tc.seed,
            ):
                logger.warning(
                    "batch size / process count / seed changed since the checkpoint (%s); the data order "
                    "differs from an uninterrupted run",
                    data,
                )

        # ---- distributed wrappers (gradients averaged across processes)
        G_train: nn.Module = G
        D_train: nn.Module | None = D
        if ctx.world_size > 1:
            ids = [device.index] if device.type == "cuda" else None
            G_train = DistributedDataParallel(G, device_ids=ids)
            if D is not None:
                # D's BN running statistics are never used (D is always in train mode); not broadcasting them
                # also avoids in-place buffer writes between D's forward passes and their backward.
                D_train = DistributedDataParallel(D, device_ids=ids, broadcast_buffers=False)

        # ---- data
        from esrgan.data import build_train_loader, build_val_loader, next_batch

        loader = build_train_loader(
            cfg.data, rank=ctx.rank, world_size=ctx.world_size, start_step=step, seed=tc.seed
        )
        val_loader = build_val_loader(cfg.data) if ctx.is_main and cfg.data.val_hr_dirs else None

        metrics_path = run_dir / "metrics.jsonl"
        if ctx.is_main:
            _truncate_jsonl(metrics_path, step)
            tb = _tensorboard(run_dir, step)
            n_g = sum(p.numel() for p in G.parameters())
            n_d = sum(p.numel() for p in D.parameters()) if D is not None else 0
            logger.info(
                "%s: %s stage, %s (%s params)%s, %d process(es) on %s, global batch %d, %s, steps %d→%d",
                cfg.name,
                tc.stage,
                cfg.model.arch,
                f"{n_g:,}",
                f" + {cfg.discriminator.arch} ({n_d:,} params)" if D is not None else "",
                ctx.world_size,
                device,
                cfg.data.batch_size * ctx.world_size,
                precision_name if tc.precision == precision_name else f"{precision_name} (auto)",
                step,
                tc.total_iters,
            )

        # ---- the loop
        batches = iter(loader)
        window: dict[str, float] = defaultdict(float)
        window_steps, data_seconds, window_start = 0, 0.0, time.perf_counter()
        val: dict[str, float] = {}
        model_path = run_dir / "models" / "net_g_final.safetensors"
        while step < tc.total_iters:
            lr_g = learning_rate(step, cfg.optim.lr_g, cfg.schedule)
            for group in opt_g.param_groups:
                group["lr"] = lr_g
            if opt_d is not None:
                for group in opt_d.param_groups:
                    group["lr"] = learning_rate(step, cfg.optim.lr_d, cfg.schedule)

            t0 = time.perf_counter()
            batch = next_batch(batches)
            batch = {
                k: batch[k].to(device, non_blocking=True, memory_format=memory_format) for k in ("lq", "gt")
            }
            data_seconds += time.perf_counter() - t0

            if gan:
                assert D_train is not None and opt_d is not None and losses is not None
                out = gan_step(
                    batch,
                    G_train,
                    D_train,
                    opt_g,
                    opt_d,
                    losses,
                    precision=precision,
                    ema=ema.module if ema is not None else None,
                )
            else:
                out = psnr_step(batch, G_train, opt_g, cfg.loss.pixel, precision=precision)
            if ema is not None:
                ema.update(G)
            step += 1
            for k, v in out.items():
                window[k] += v
            window_steps += 1

            if step % tc.log_every == 0 or step == tc.total_iters:
                elapsed = time.perf_counter() - window_start
                means = _mean_across_ranks({k: v / window_steps for k, v in window.items()}, ctx)
                if ctx.is_main:
                    rate = window_steps / elapsed
                    losses_text = "  ".join(f"{k} {v:.4g}" for k, v in means.items())
                    logger.info(
                        "iter %s/%s  lr %.2e  %s  %.2f it/s  data %.0f%%  ETA %s",
                        f"{step:,}",
                        f"{tc.total_iters:,}",
                        lr_g,
                        losses_text,
                        rate,
                        100 * data_seconds / elapsed,
                        _format_duration((tc.total_iters - step) / rate),
                    )
                    record = {"step": step, "kind": "train", "lr_g": lr_g, **means, "it_per_s": rate}
                    _append_jsonl(metrics_path, {**record, "data_frac": data_seconds / elapsed})
                    if tb is not None:
                        for k, v in {"lr_g": lr_g, **means, "it_per_s": rate}.items():
                            tb.add_scalar(f"train/{k}", v, step)
                window.clear()
                window_steps, data_seconds, window_start = 0, 0.0, time.perf_counter()

            if cfg.data.val_hr_dirs and (step % tc.val_every == 0 or step == tc.total_iters) and ctx.is_main:
                assert val_loader is not None
                eval_model = ema.module if ema is not None else G
                val = validate(
                    eval_model,
                    val_loader,
                    scale=cfg.model.scale,
                    device=device,
                    sample_dir=run_dir / "samples" / f"step_{step:08d}",
                    num_samples=tc.val_samples,
                )
                logger.info(
                    "validation at iter %s: PSNR-Y %.3f dB  SSIM-Y %.4f",
                    f"{step:,}",
                    val.get("psnr_y", float("nan")),
                    val.get("ssim_y", float("nan")),
                )
                _append_jsonl(metrics_path, {"step": step, "kind": "val", **val})
                if tb is not None:
                    for k, v in val.items():
                        tb.add_scalar(f"val/{k}", v, step)
            if cfg.data.val_hr_dirs and (step % tc.val_every == 0 or step == tc.total_iters):
                _barrier(ctx)  # the other processes wait for rank 0's validation

            if step % tc.checkpoint_every == 0 or step == tc.total_iters:
                if ctx.is_main:
                    state = {
                        "step": step,
                        "config": config_to_dict(cfg),
                        "generator": G.state_dict(),
                        "discriminator": D.state_dict() if D is not None else None,
                        "ema": ema.state_dict() if ema is not None else None,
                        "opt_g": opt_g.state_dict(),
                        "opt_d": opt_d.state_dict() if opt_d is not None else None,
                        "scaler": precision.scaler.state_dict() if precision.scaler is not None else None,
                        "rng": rng_state(),
                        "data": {
                            "position": step,
                            "batch_size": cfg.data.batch_size,
                            "world_size": ctx.world_size,
                            "seed": tc.seed,
                        },
                    }
                    path = save_checkpoint(state, run_dir, keep_last=tc.keep_last)
                    export = export_generator(
                        ema.module if ema is not None else G,
                        run_dir / "models" / f"net_g_{step:08d}.safetensors",
                        config=cfg,
                        step=step,
                        weights="ema" if ema is not None else "raw",
                    )
                    kept = {f"net_g_{s:08d}.safetensors" for s, _ in list_checkpoints(run_dir)}
                    for old in export.parent.glob("net_g_[0-9]*.safetensors"):
                        if old.name not in kept:
                            old.unlink(missing_ok=True)
                    logger.info("saved %s", path)
                _barrier(ctx)

        del batches  # stops the loader's worker processes
        if ctx.is_main:
            export_generator(
                ema.module if ema is not None else G,
                model_path,
                config=cfg,
                step=step,
                weights="ema" if ema is not None else "raw",
            )
            logger.info("finished %s steps; generator written to %s", f"{step:,}", model_path)
        _barrier(ctx)
        succeeded = True
        return TrainResult(run_dir=run_dir, model_path=model_path, step=step, val=val, rank=ctx.rank)
    finally:
        if tb is not None:
            tb.close()
        if file_handler is not None:
            train_logger.removeHandler(file_handler)
            file_handler.close()
        train_logger.setLevel(previous_level)
        if created_run_dir and not succeeded:
            _remove_run_without_results(run_dir)
        if owns_process_group:
            dist.destroy_process_group()
