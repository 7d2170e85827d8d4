"""Adversarial losses: relativistic average GAN (ESRGAN, SPEC §5.5) and standard GAN (SRGAN, SPEC §5.6).

All functions take raw discriminator logits C(x) (any shape, e.g. N×1, or N×1×H×W for per-pixel
discriminators) for a batch of real (GT) and fake (SR) images, and return scalar tensors. Notation:

    BCE(z, y) = mean(−[y·log σ(z) + (1 − y)·log(1 − σ(z))])     (binary_cross_entropy_with_logits, mean)
    r = C(gt), f = C(sr), mean(·) = mean over all logits of the batch

Relativistic average GAN, paper vs code (SPEC §5.5, §13.1). The ESRGAN paper (Eq. 1, 2) *sums* two terms:

    L_D^Ra = −E_r[log σ(r − E[f])] − E_f[log(1 − σ(f − E[r]))]
    L_G^Ra = −E_r[log(1 − σ(r − E[f]))] − E_f[log σ(f − E[r])]

The code (2018 and BasicSR v1.x) *averages* them, i.e. returns ½ × the paper's loss; so ESRGAN's λ = 5e-3 in
code units is 2.5e-3 in paper units. These functions follow the code (½ factors included), and the generator
loss weight λ is applied by the caller (`generator_gan_loss` does it from a `GanLossConfig`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from esrgan.config import GanLossConfig

__all__ = [
    "relativistic_generator_loss",
    "relativistic_discriminator_losses",
    "standard_generator_loss",
    "standard_discriminator_losses",
    "generator_gan_loss",
    "discriminator_gan_losses",
]


def _bce_to_real(logits: Tensor) -> Tensor:
    """BCE(z, 1) = mean(−log σ(z)), numerically stable."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def _bce_to_fake(logits: Tensor) -> Tensor:
    """BCE(z, 0) = mean(−log(1 − σ(z))), numerically stable."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def relativistic_generator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """RaGAN generator loss  ½·[BCE(r − mean(f), 0) + BCE(f − mean(r), 1)]  (= ½ × paper Eq. 2).

    `real_logits` are treated as constants (detached here), as in both reference codes: the generator's
    gradient flows only through `fake_logits`, including through mean(f) in the first ("real") term, so G
    learns both to look real and to make real images look less real. Not weighted by λ.
    """
    real_logits = real_logits.detach()
    loss_real = _bce_to_fake(real_logits - fake_logits.mean())
    loss_fake = _bce_to_real(fake_logits - real_logits.mean())
    return 0.5 * (loss_real + loss_fake)


def relativistic_discriminator_losses(
    real_logits: Tensor, fake_logits: Tensor, *, variant: Literal["basicsr", "paper2018"]
) -> tuple[Tensor, Tensor]:
    """RaGAN discriminator losses `(loss_real, loss_fake)`; their sum is ½ × paper Eq. 1.

        loss_real = ½·BCE(r − mean(f), 1)        loss_fake = ½·BCE(f − mean(r), 0)

    `fake_logits` must come from `D(sr.detach())` so no gradient reaches the generator. Both variants have
    the same values; they differ in the gradient D receives through the opposite set's mean (SPEC §13.2):

    - "basicsr" (BasicSR v1.x): each half detaches the other set's mean, i.e. mean(f) in loss_real and
      mean(r) in loss_fake are constants. This is what v1.x's two separate backward passes compute; call
      `(loss_real + loss_fake).backward()` once for the same accumulated gradient.
    - "paper2018" (the 2018 code behind the paper): one graph, nothing detached, so D is also trained
      through mean(f) in loss_real and mean(r) in loss_fake — the exact gradient of Eq. 1 (× ½).
    """
    if variant == "basicsr":
        fake_mean, real_mean = fake_logits.mean().detach(), real_logits.mean().detach()
    elif variant == "paper2018":
        fake_mean, real_mean = fake_logits.mean(), real_logits.mean()
    else:
        raise ValueError(f"unknown RaGAN variant {variant!r}; expected 'basicsr' or 'paper2018'")
    loss_real = 0.5 * _bce_to_real(real_logits - fake_mean)
    loss_fake = 0.5 * _bce_to_fake(fake_logits - real_mean)
    return loss_real, loss_fake


def standard_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss BCE(f, 1) = mean(−log σ(C(sr))) (SRGAN's l_Gen; the paper sums over the
    batch, BasicSR and we average). Not weighted (SRGAN: 1e-3, BasicSR MSRGAN: 5e-3)."""
    return _bce_to_real(fake_logits)


def standard_discriminator_losses(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Standard discriminator losses `(BCE(r, 1), BCE(f, 0))`, no ½ factor (BasicSR `srgan_model.py`).

    `fake_logits` must come from `D(sr.detach())`.
    """
    return _bce_to_real(real_logits), _bce_to_fake(fake_logits)


def generator_gan_loss(real_logits: Tensor, fake_logits: Tensor, cfg: GanLossConfig) -> Tensor:
    """The generator's weighted adversarial term `cfg.weight · L_G` for `cfg.type` ("ragan" or "vanilla").

    `real_logits` = D(gt) (unused by "vanilla"), `fake_logits` = D(sr) with the graph to G.
    """
    if cfg.type == "ragan":
        return cfg.weight * relativistic_generator_loss(real_logits, fake_logits)
    return cfg.weight * standard_generator_loss(fake_logits)


def discriminator_gan_losses(
    real_logits: Tensor, fake_logits: Tensor, cfg: GanLossConfig
) -> tuple[Tensor, Tensor]:
    """The discriminator's unweighted `(loss_real, loss_fake)` for `cfg.type` (and `cfg.ragan_variant`)."""
    if cfg.type == "ragan":
        return relativistic_discriminator_losses(real_logits, fake_logits, variant=cfg.ragan_variant)
    return standard_discriminator_losses(real_logits, fake_logits)


def feature_matching_loss(
    fake_features: list[Tensor], real_features: list[Tensor], criterion: str = "l1"
) -> Tensor:
    """Mean over the discriminator's feature maps of ``criterion(D_l(sr), D_l(gt))`` (unweighted).

    `real_features` are targets (detached here); gradients flow to G through `fake_features`.
    """
    if not fake_features or len(fake_features) != len(real_features):
        raise ValueError(f"need matching feature lists, got {len(fake_features)} and {len(real_features)}")
    total = fake_features[0].new_zeros((), dtype=torch.float32)
    for fake, real in zip(fake_features, real_features, strict=True):
        diff = fake.float() - real.detach().float()
        total = total + (diff.abs().mean() if criterion == "l1" else diff.square().mean())
    return total / len(fake_features)
