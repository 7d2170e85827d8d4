"""One optimisation step of each training stage, as plain functions returning a dict of floats.

    psnr_step: the PSNR-oriented stage (RRDB_PSNR, SRResNet-MSE): pixel loss only.
    gan_step:  one generator update, then one discriminator update (ESRGAN, SRGAN; SPEC §5.5, §5.6).

A batch is ``{"lq": N×3×h×w, "gt": N×3×(h·s)×(w·s)}`` float tensors in [0, 1] on the models' device. The
models may be wrapped in DistributedDataParallel; the caller owns cadence (logging, EMA, validation,
checkpoints) and the learning rate. Losses are computed in float32; only the network forward passes run under
autocast when `Precision` asks for bf16/fp16.

The GAN step follows BasicSR v1.x `ESRGANModel.optimize_parameters` (SPEC §5.5), with two simplifications that
change neither values nor gradients:

* BasicSR runs D three times in its D step (one extra ``D(sr).detach()`` forward); with D in train mode its BN
  uses batch statistics, so that forward equals ``D(sr.detach())`` and we reuse the latter. (BN running
  statistics of D, never used because D never runs in eval mode, get two updates per step instead of three.)
* BasicSR calls ``backward`` separately on the real and the fake half of the D loss; with each half
  detaching the other set's mean (the "basicsr" variant in `esrgan.losses.gan`) one backward of their sum
  accumulates the same gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from esrgan.config import ArtifactLossConfig, FeatureMatchingLossConfig, GanLossConfig, PixelLossConfig
from esrgan.errors import ConfigError
from esrgan.losses import (
    artifact_loss,
    discriminator_gan_losses,
    feature_matching_loss,
    generator_gan_loss,
    pixel_loss,
)

__all__ = ["Precision", "GeneratorLosses", "psnr_step", "gan_step"]

Batch = dict[str, Any]


@dataclass
class Precision:
    """Autocast for the forward passes and, for fp16, the GradScaler (one for G and D, updated once a step).

    `Precision()` is plain float32. Build one with `Precision.create("bf16", device)`.
    """

    device_type: str = "cpu"
    dtype: torch.dtype | None = None  # None: float32, no autocast
    scaler: torch.amp.GradScaler | None = None

    @classmethod
    def create(cls, precision: str, device: torch.device) -> Precision:
        """ "fp32", "bf16" (CPU or CUDA) or "fp16" (CUDA only, with loss scaling)."""
        if precision == "fp32":
            return cls(device.type)
        if precision == "bf16":
            return cls(device.type, torch.bfloat16)
        if precision == "fp16":
            if device.type != "cuda":
                raise ConfigError(
                    f"train.precision=fp16 needs a CUDA device (this run uses {device}); use bf16 or fp32"
                )
            return cls(device.type, torch.float16, torch.amp.GradScaler("cuda"))
        raise ConfigError(f"train.precision must be fp32, bf16 or fp16, got {precision!r}")

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)  # skips the update if the scaled gradients overflowed
        else:
            optimizer.step()

    def update(self) -> None:
        """End of an iteration: adapt the loss scale (fp16 only)."""
        if self.scaler is not None:
            self.scaler.update()


@dataclass
class GeneratorLosses:
    """The generator's loss terms for the GAN stage: pixel + perceptual + gan + feature matching + artifact,
    each weighted by its config.

    `perceptual` is an `esrgan.losses.PerceptualLoss` (which applies its own weight), or None (weight 0).
    """

    pixel: PixelLossConfig
    perceptual: nn.Module | None
    gan: GanLossConfig
    feature_matching: FeatureMatchingLossConfig = field(default_factory=FeatureMatchingLossConfig)
    artifact: ArtifactLossConfig = field(default_factory=ArtifactLossConfig)


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of `module` do not require gradients inside the block (so G's backward leaves D alone)."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def psnr_step(
    batch: Batch,
    G: nn.Module,
    opt_g: torch.optim.Optimizer,
    pixel: PixelLossConfig,
    *,
    precision: Precision | None = None,
) -> dict[str, float]:
    """One update of G on the pixel loss ``pixel.weight · criterion(G(lq), gt)``. Returns ``{"l_pix": …}``."""
    precision = precision or Precision()
    lq, gt = batch["lq"], batch["gt"]
    G.train()
    opt_g.zero_grad(set_to_none=True)
    with precision.autocast():
        sr = G(lq)
    l_pix = pixel_loss(sr.float(), gt, pixel)
    precision.backward(l_pix)
    precision.step(opt_g)
    precision.update()
    return {"l_pix": l_pix.item()}


def gan_step(
    batch: Batch,
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    losses: GeneratorLosses,
    *,
    precision: Precision | None = None,
    ema: nn.Module | None = None,
) -> dict[str, float]:
    """One G update (D frozen), then one D update; ESRGAN's RaGAN or SRGAN's standard GAN per `losses.gan`.

    Logged as BasicSR does: l_g_pix, l_g_percep, l_g_gan, l_g_total, l_d_real, l_d_fake, out_d_real,
    out_d_fake (mean logits in the D step); l_g_fm and l_g_artifact when those terms are on. The artifact
    (LDL) term needs `ema`, the EMA copy of G.
    """
    precision = precision or Precision()
    lq, gt = batch["lq"], batch["gt"]
    ragan = losses.gan.type == "ragan"
    matching = losses.feature_matching.weight != 0
    if losses.artifact.weight != 0 and ema is None:
        raise ConfigError("the artifact loss (LDL) needs the EMA generator: set train.ema_decay > 0")
    # D stays in train mode for the G step too: its BN normalises with batch statistics in both steps, as in
    # BasicSR (SPEC §13.21). Switching it to eval mode here would change the generator's adversarial loss.
    G.train()
    D.train()
    log: dict[str, float] = {}

    # ---- generator: L = pixel + perceptual + λ·adversarial, gradients into G only
    opt_g.zero_grad(set_to_none=True)
    with _frozen(D):
        with precision.autocast():
            sr = G(lq)
            # RaGAN also compares with D(gt), a constant for G (as are its features for feature matching);
            # the standard GAN alone does not need it.
            real_g, real_features = None, None
            if ragan or matching:
                with torch.no_grad():
                    real_g, real_features = D(gt, return_features=True)
            fake_g, fake_features = D(sr, return_features=True)
            l_percep = losses.perceptual(sr, gt).float() if losses.perceptual is not None else None
            sr_ema = None
            if losses.artifact.weight != 0:
                with torch.no_grad():
                    sr_ema = ema(lq)  # type: ignore[misc]
        l_total = fake_g.new_zeros((), dtype=torch.float32)  # summed in BasicSR's order: pix, percep, gan
        if losses.pixel.weight != 0:
            l_pix = pixel_loss(sr.float(), gt, losses.pixel)
            l_total = l_total + l_pix
            log["l_g_pix"] = l_pix.item()
        if l_percep is not None:
            l_total = l_total + l_percep
            log["l_g_percep"] = l_percep.item()
        real_g = real_g.float() if real_g is not None else fake_g.new_empty(0)  # unused by the standard GAN
        l_gan = generator_gan_loss(real_g, fake_g.float(), losses.gan)
        l_total = l_total + l_gan
        log["l_g_gan"] = l_gan.item()
        if matching:
            fm = losses.feature_matching
            l_fm = fm.weight * feature_matching_loss(fake_features, real_features, fm.criterion)  # type: ignore[arg-type]
            l_total = l_total + l_fm
            log["l_g_fm"] = l_fm.item()
        if sr_ema is not None:
            art = losses.artifact
            l_art = artifact_loss(gt, sr, sr_ema, weight=art.weight, kernel_size=art.kernel_size)
            l_total = l_total + l_art
            log["l_g_artifact"] = l_art.item()
        log["l_g_total"] = l_total.item()
        precision.backward(l_total)
        precision.step(opt_g)

    # ---- discriminator: real vs fake, on sr detached from G's graph
    opt_d.zero_grad(set_to_none=True)
    with precision.autocast():
        real_d = D(gt)
        fake_d = D(sr.detach())
    l_d_real, l_d_fake = discriminator_gan_losses(real_d.float(), fake_d.float(), losses.gan)
    precision.backward(l_d_real + l_d_fake)
    precision.step(opt_d)
    precision.update()
    log.update(
        l_d_real=l_d_real.item(),
        l_d_fake=l_d_fake.item(),
        out_d_real=real_d.detach().float().mean().item(),
        out_d_fake=fake_d.detach().float().mean().item(),
    )
    return log
