"""Training building blocks: learning-rate schedules and the EMA generator.

The training steps and loop build on these (`esrgan.config` holds the typed configs they take).
"""

from __future__ import annotations

from esrgan.train.ema import ModelEMA
from esrgan.train.schedules import learning_rate

__all__ = ["ModelEMA", "learning_rate"]
