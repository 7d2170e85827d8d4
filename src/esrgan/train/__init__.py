"""Training: the step functions, the loop, checkpoints, learning-rate schedules and the EMA generator.

* :func:`train` (:mod:`esrgan.train.loop`) — config → trained, exported generator; resumable, distributed.
* :func:`psnr_step`, :func:`gan_step` (:mod:`esrgan.train.steps`) — one optimisation step each.
* :mod:`esrgan.train.checkpoint` — atomic checkpoints and the safetensors export.
* :func:`learning_rate` (:mod:`esrgan.train.schedules`), :class:`ModelEMA` (:mod:`esrgan.train.ema`).
"""

from __future__ import annotations

from esrgan.train.ema import ModelEMA
from esrgan.train.loop import TrainResult, build_discriminator, build_generator, train, validate
from esrgan.train.schedules import learning_rate
from esrgan.train.steps import GeneratorLosses, Precision, gan_step, psnr_step

__all__ = [
    "GeneratorLosses",
    "ModelEMA",
    "Precision",
    "TrainResult",
    "build_discriminator",
    "build_generator",
    "gan_step",
    "learning_rate",
    "psnr_step",
    "train",
    "validate",
]
