"""Training losses: pixel (L1/MSE), perceptual (VGG features), adversarial (RaGAN, standard GAN) with
discriminator feature matching, and LDL's artifact loss.

Each module is the one home for its loss; see their docstrings for the exact formulas and the
paper-vs-code differences.
"""

from __future__ import annotations

from esrgan.losses.artifact import artifact_loss, artifact_map
from esrgan.losses.gan import (
    discriminator_gan_losses,
    feature_matching_loss,
    generator_gan_loss,
    relativistic_discriminator_losses,
    relativistic_generator_loss,
    standard_discriminator_losses,
    standard_generator_loss,
)
from esrgan.losses.perceptual import (
    SRGAN_FEATURE_SCALE,
    PerceptualLoss,
    build_perceptual_loss,
    gram_matrix,
    random_vgg19,
)
from esrgan.losses.pixel import l1_loss, mse_loss, pixel_loss

__all__ = [
    "artifact_loss",
    "artifact_map",
    "feature_matching_loss",
    "random_vgg19",
    "l1_loss",
    "mse_loss",
    "pixel_loss",
    "PerceptualLoss",
    "SRGAN_FEATURE_SCALE",
    "build_perceptual_loss",
    "gram_matrix",
    "relativistic_generator_loss",
    "relativistic_discriminator_losses",
    "standard_generator_loss",
    "standard_discriminator_losses",
    "generator_gan_loss",
    "discriminator_gan_losses",
]
