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
from esrgan.archs import DISCRIMINATORS, GENERATOR_SPECS
from esrgan.archs.descriptor import describe
from esrgan.archs.vgg import find_vgg19_weights
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
from esrgan.data import build_train_loader, build_val_loader, next_batch
from esrgan.errors import ConfigError, EsrganError, WeightsError
from esrgan.io.images import Image, write_image
from esrgan.losses import build_perceptual_loss
from esrgan.metrics import psnr_torch, ssim_torch
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
from esrgan.weights import build_model, read_generator_weights, resolve_weights

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
    """The generator of `cfg`, freshly initialised, built by its architecture's spec (`esrgan.archs`)."""
    try:
        return GENERATOR_SPECS[cfg.arch].from_config(cfg.settings)
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from None


def build_discriminator(cfg: DiscriminatorConfig) -> nn.Module:

    sized = {} if cfg.arch == "UNetDiscriminatorSN" else {"input_size": cfg.input_size}  # any size
    try:
        arch = DISCRIMINATORS[cfg.arch]
        return arch(num_in_ch=cfg.num_in_ch, num_feat=cfg.num_feat, **sized)
    except ValueError as exc:
        raise ConfigError(f"discriminator: {exc}") from None


def build_generator_losses(cfg: LossConfig) -> GeneratorLosses:
    """The GAN stage's loss terms; the VGG19 file is looked up only if a perceptual or style weight is not 0.

    A missing VGG19 file raises `WeightsError` naming the file and its download URL.
    """

    perceptual = None
    if cfg.perceptual.active and cfg.perceptual.vgg_init == "random":
        perceptual = build_perceptual_loss(cfg.perceptual)
    elif cfg.perceptual.active:
        try:
            vgg_path = find_vgg19_weights(cfg.perceptual.vgg_weights)
        except WeightsError as exc:
            raise WeightsError(
                f"{exc} In the config: loss.perceptual.vgg_weights=PATH, or loss.perceptual.weight=0 (and "
                "style_weight=0) to train without the perceptual loss."
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

    try:
        weights = read_generator_weights(resolve_weights(name_or_path))
    except EsrganError as exc:
        raise EsrganError(f"train.pretrained: {exc} (train the previous stage first?)") from None
    found = build_model(weights.arch, weights.hparams, weights.state_dict, str(weights.path))
    mine, theirs = describe(model).identity, describe(found).identity
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

    was_training = model.training
    model.eval()
    psnrs, ssims = [], []
    multiple = describe(model).size_multiple
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


@dataclass
class _Models:
    """A run's trainable state: networks, optimizers, EMA, precision. Saved and restored as one
    (`checkpoint` / `restore`), so the checkpoint format has one home."""

    G: nn.Module
    D: nn.Module | None
    losses: GeneratorLosses | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    ema: ModelEMA | None
    precision: Precision
    precision_name: str
    memory_format: torch.memory_format

    @property
    def exported(self) -> nn.Module:
        """The generator a run exports and validates: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.G

    def set_learning_rates(self, step: int, cfg: ExperimentConfig) -> float:
        """Set the schedule's rates for update `step + 1`; returns G's."""
        lr_g = learning_rate(step, cfg.optim.lr_g, cfg.schedule)
        for group in self.opt_g.param_groups:
            group["lr"] = lr_g
        if self.opt_d is not None:
            for group in self.opt_d.param_groups:
                group["lr"] = learning_rate(step, cfg.optim.lr_d, cfg.schedule)
        return lr_g

    def checkpoint(self, step: int, cfg: ExperimentConfig, world_size: int) -> dict[str, Any]:
        return {
            "step": step,
            "config": config_to_dict(cfg),
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict() if self.D is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "scaler": self.precision.scaler.state_dict() if self.precision.scaler is not None else None,
            "rng": rng_state(),
            "data": {
                "position": step,
                "batch_size": cfg.data.batch_size,
                "world_size": world_size,
                "seed": cfg.train.seed,
            },
        }

    def restore(self, checkpoint: dict[str, Any], run_dir: Path) -> int:
        """Load everything `checkpoint` wrote (the RNG states included); returns its step."""
        try:
            self.G.load_state_dict(checkpoint["generator"])
            if self.D is not None:
                self.D.load_state_dict(checkpoint["discriminator"])
            if self.ema is not None:
                self.ema.load_state_dict(checkpoint["ema"])
            self.opt_g.load_state_dict(checkpoint["opt_g"])
            if self.opt_d is not None:
                self.opt_d.load_state_dict(checkpoint["opt_d"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise EsrganError(
                f"the checkpoint in {run_dir} does not fit this config ({str(exc).splitlines()[0]}); "
                "use the original config, another --run-dir, or --no-resume"
            ) from None
        if self.precision.scaler is not None and checkpoint.get("scaler"):
            self.precision.scaler.load_state_dict(checkpoint["scaler"])
        set_rng_state(checkpoint["rng"])
        return int(checkpoint["step"])


def _build_models(cfg: ExperimentConfig, device: torch.device, *, fresh: bool) -> _Models:
    """Networks, losses and optimizers of `cfg`, seeded alike in every process; a `fresh` run starts G from
    `train.pretrained` (a resumed one gets its weights from the checkpoint)."""
    tc = cfg.train
    gan = tc.stage == "gan"
    random.seed(tc.seed)
    np.random.seed(tc.seed)
    torch.manual_seed(tc.seed)
    G = build_generator(cfg.model)
    if fresh and tc.pretrained:
        load_pretrained_generator(G, tc.pretrained)
        logger.info("generator initialised from %s", tc.pretrained)
    elif fresh and gan:
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
    return _Models(G, D, losses, opt_g, opt_d, ema, precision, precision_name, memory_format)


def _checkpoint_to_resume(run_dir: Path, resume: bool, ctx: DistributedContext) -> dict[str, Any] | None:
    """The latest checkpoint with `resume`; without it, the previous run's files are moved aside."""
    if resume:
        path = latest_checkpoint(run_dir)
        if path is None:
            return None
        checkpoint = load_checkpoint(path)
        logger.info("resuming from %s (step %d)", path, checkpoint["step"])
        return checkpoint
    if ctx.is_main and (list_checkpoints(run_dir) or (run_dir / "models").is_dir()):
        aside = run_dir / time.strftime("discarded-%Y%m%d-%H%M%S")
        aside.mkdir()
        for name in ("checkpoints", "models", "metrics.jsonl", "samples", "tensorboard"):
            if (run_dir / name).exists():
                os.replace(run_dir / name, aside / name)
        logger.warning("--no-resume: moved the previous run's files to %s", aside)
    return None


def _warn_about_changes(checkpoint: dict[str, Any], cfg: ExperimentConfig, ctx: DistributedContext) -> None:
    if differences := _config_differences(checkpoint["config"], config_to_dict(cfg)):
        logger.warning("config changed since the checkpoint: %s", "; ".join(differences))
    data = checkpoint["data"]
    if (data["batch_size"], data["world_size"], data["seed"]) != (
        cfg.data.batch_size,
        ctx.world_size,
        cfg.train.seed,
    ):
        logger.warning(
            "batch size / process count / seed changed since the checkpoint (%s); the data order differs "
            "from an uninterrupted run",
            data,
        )


def _distributed(models: _Models, ctx: DistributedContext) -> tuple[nn.Module, nn.Module | None]:
    """G and D as the training steps call them: wrapped for gradient averaging when several processes run."""
    if ctx.world_size == 1:
        return models.G, models.D
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    G_train = DistributedDataParallel(models.G, device_ids=ids)
    D_train = None
    if models.D is not None:
        # D's BN running statistics are never used (D is always in train mode); not broadcasting them also
        # avoids in-place buffer writes between D's forward passes and their backward.
        D_train = DistributedDataParallel(models.D, device_ids=ids, broadcast_buffers=False)
    return G_train, D_train


class _Progress:
    """Loss means over a window of steps, logged (text, metrics.jsonl, TensorBoard) every `log_every`."""

    def __init__(self, ctx: DistributedContext, metrics_path: Path, tb: Any, total: int) -> None:
        self.ctx, self.metrics_path, self.tb, self.total = ctx, metrics_path, tb, total
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.steps, self.data_seconds, self.start = 0, 0.0, time.perf_counter()

    def add(self, out: dict[str, float], data_seconds: float) -> None:
        for k, v in out.items():
            self.sums[k] += v
        self.steps += 1
        self.data_seconds += data_seconds

    def report(self, step: int, lr_g: float) -> None:
        elapsed = time.perf_counter() - self.start
        means = _mean_across_ranks({k: v / self.steps for k, v in self.sums.items()}, self.ctx)
        if self.ctx.is_main:
            rate = self.steps / elapsed
            logger.info(
                "iter %s/%s  lr %.2e  %s  %.2f it/s  data %.0f%%  ETA %s",
                f"{step:,}",
                f"{self.total:,}",
                lr_g,
                "  ".join(f"{k} {v:.4g}" for k, v in means.items()),
                rate,
                100 * self.data_seconds / elapsed,
                _format_duration((self.total - step) / rate),
            )
            record = {"step": step, "kind": "train", "lr_g": lr_g, **means, "it_per_s": rate}
            _append_jsonl(self.metrics_path, {**record, "data_frac": self.data_seconds / elapsed})
            if self.tb is not None:
                for k, v in {"lr_g": lr_g, **means, "it_per_s": rate}.items():
                    self.tb.add_scalar(f"train/{k}", v, step)
        self._reset()


def _save(models: _Models, step: int, cfg: ExperimentConfig, ctx: DistributedContext, run_dir: Path) -> None:
    """A checkpoint and the generator exported beside it (rank 0); old exports go with old checkpoints."""
    if ctx.is_main:
        path = save_checkpoint(
            models.checkpoint(step, cfg, ctx.world_size), run_dir, keep_last=cfg.train.keep_last
        )
        export = export_generator(
            models.exported,
            run_dir / "models" / f"net_g_{step:08d}.safetensors",
            config=cfg,
            step=step,
            weights="ema" if models.ema is not None else "raw",
        )
        kept = {f"net_g_{s:08d}.safetensors" for s, _ in list_checkpoints(run_dir)}
        for old in export.parent.glob("net_g_[0-9]*.safetensors"):
            if old.name not in kept:
                old.unlink(missing_ok=True)
        logger.info("saved %s", path)
    _barrier(ctx)


def _validate(
    models: _Models, val_loader: Any, step: int, cfg: ExperimentConfig, run_dir: Path, progress: _Progress
) -> dict[str, float]:
    """Score the exported generator on the validation set (rank 0) and record it."""
    val = validate(
        models.exported,
        val_loader,
        scale=cfg.model.scale,
        device=progress.ctx.device,
        sample_dir=run_dir / "samples" / f"step_{step:08d}",
        num_samples=cfg.train.val_samples,
    )
    logger.info(
        "validation at iter %s: PSNR-Y %.3f dB  SSIM-Y %.4f",
        f"{step:,}",
        val.get("psnr_y", float("nan")),
        val.get("ssim_y", float("nan")),
    )
    _append_jsonl(progress.metrics_path, {"step": step, "kind": "val", **val})
    if progress.tb is not None:
        for k, v in val.items():
            progress.tb.add_scalar(f"val/{k}", v, step)
    return val


def _open_run_log(run_dir: Path, ctx: DistributedContext) -> tuple[logging.Handler | None, int]:
    """Rank 0 logs progress to the terminal and RUN_DIR/train.log; the others only warnings."""
    train_logger = logging.getLogger(TRAIN_LOGGER)
    previous_level = train_logger.level
    if not ctx.is_main:
        train_logger.setLevel(logging.WARNING)
        return None, previous_level
    run_dir.mkdir(parents=True, exist_ok=True)
    if train_logger.level == logging.NOTSET:
        train_logger.setLevel(logging.INFO)
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    train_logger.addHandler(handler)
    return handler, previous_level


def _set_determinism(deterministic: bool, device: torch.device) -> None:
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch sizes: let cuDNN pick the fastest kernels


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
    ctx, owns_process_group = setup_distributed(cfg.train.device)
    created_run_dir = ctx.is_main and not run_dir.exists()
    file_handler, previous_level = _open_run_log(run_dir, ctx)
    succeeded = False
    try:
        _set_determinism(cfg.train.deterministic, ctx.device)
        result = _run(cfg, run_dir, resume, ctx)
        succeeded = True
        return result
    finally:
        train_logger = logging.getLogger(TRAIN_LOGGER)
        if file_handler is not None:
            train_logger.removeHandler(file_handler)
            file_handler.close()
        train_logger.setLevel(previous_level)
        if created_run_dir and not succeeded:
            _remove_run_without_results(run_dir)
        if owns_process_group:
            dist.destroy_process_group()


def _run(cfg: ExperimentConfig, run_dir: Path, resume: bool, ctx: DistributedContext) -> TrainResult:
    """`train` once the run folder and its log are set up."""

    tc = cfg.train
    checkpoint = _checkpoint_to_resume(run_dir, resume, ctx)
    _barrier(ctx)
    if ctx.is_main:
        save_config(cfg, run_dir / "config.yaml")
    models = _build_models(cfg, ctx.device, fresh=checkpoint is None)
    step = 0
    if checkpoint is not None:
        _warn_about_changes(checkpoint, cfg, ctx)
        step = models.restore(checkpoint, run_dir)

    loader = build_train_loader(
        cfg.data, rank=ctx.rank, world_size=ctx.world_size, start_step=step, seed=tc.seed
    )
    val_loader = build_val_loader(cfg.data) if ctx.is_main and cfg.data.val_hr_dirs else None
    metrics_path = run_dir / "metrics.jsonl"
    tb = None
    if ctx.is_main:
        _truncate_jsonl(metrics_path, step)
        tb = _tensorboard(run_dir, step)
        _log_start(cfg, models, ctx, step)
    try:
        return _loop(
            cfg,
            run_dir,
            ctx,
            models,
            step,
            loader,
            val_loader,
            _Progress(ctx, metrics_path, tb, tc.total_iters),
        )
    finally:
        if tb is not None:
            tb.close()


def _loop(
    cfg: ExperimentConfig,
    run_dir: Path,
    ctx: DistributedContext,
    models: _Models,
    step: int,
    loader: Any,
    val_loader: Any,
    progress: _Progress,
) -> TrainResult:
    """The training iterations from `step` to the end, then the final export."""

    tc = cfg.train
    G_train, D_train = _distributed(models, ctx)
    batches = iter(loader)
    val: dict[str, float] = {}
    while step < tc.total_iters:
        lr_g = models.set_learning_rates(step, cfg)
        t0 = time.perf_counter()
        batch = next_batch(batches)
        batch = {
            k: batch[k].to(ctx.device, non_blocking=True, memory_format=models.memory_format)
            for k in ("lq", "gt")
        }
        data_seconds = time.perf_counter() - t0
        if models.D is not None:
            assert D_train is not None and models.opt_d is not None and models.losses is not None
            ema = models.ema.module if models.ema is not None else None
            out = gan_step(
                batch,
                G_train,
                D_train,
                models.opt_g,
                models.opt_d,
                models.losses,
                precision=models.precision,
                ema=ema,
            )
        else:
            out = psnr_step(batch, G_train, models.opt_g, cfg.loss.pixel, precision=models.precision)
        if models.ema is not None:
            models.ema.update(models.G)
        step += 1
        progress.add(out, data_seconds)

        last = step == tc.total_iters
        if step % tc.log_every == 0 or last:
            progress.report(step, lr_g)
        if cfg.data.val_hr_dirs and (step % tc.val_every == 0 or last):
            if ctx.is_main:
                val = _validate(models, val_loader, step, cfg, run_dir, progress)
            _barrier(ctx)  # the other processes wait for rank 0's validation
        if step % tc.checkpoint_every == 0 or last:
            _save(models, step, cfg, ctx, run_dir)

    del batches  # stops the loader's worker processes
    model_path = run_dir / "models" / "net_g_final.safetensors"
    if ctx.is_main:
        weights = "ema" if models.ema is not None else "raw"
        export_generator(models.exported, model_path, config=cfg, step=step, weights=weights)
        logger.info("finished %s steps; generator written to %s", f"{step:,}", model_path)
    _barrier(ctx)
    return TrainResult(run_dir=run_dir, model_path=model_path, step=step, val=val, rank=ctx.rank)


def _log_start(cfg: ExperimentConfig, models: _Models, ctx: DistributedContext, step: int) -> None:
    tc = cfg.train
    n_g = sum(p.numel() for p in models.G.parameters())
    n_d = sum(p.numel() for p in models.D.parameters()) if models.D is not None else 0
    precision = models.precision_name
    logger.info(
        "%s: %s stage, %s (%s params)%s, %d process(es) on %s, global batch %d, %s, steps %d→%d",
        cfg.name,
        tc.stage,
        cfg.model.arch,
        f"{n_g:,}",
        f" + {cfg.discriminator.arch} ({n_d:,} params)" if models.D is not None else "",
        ctx.world_size,
        ctx.device,
        cfg.data.batch_size * ctx.world_size,
        precision if tc.precision == precision else f"{precision} (auto)",
        step,
        tc.total_iters,
    )
