"""Learning-rate schedules as a pure function of the step (SPEC §6.1, §6.2).

Step convention (chosen explicitly, matching BasicSR's behaviour): `step` is 0-based and counts the optimizer
updates already taken, so `learning_rate(step, ...)` is the rate for update number `step + 1`. The training
loop sets every param group's lr to `learning_rate(step, base_lr, cfg)` right before optimizer update
`step + 1`.

BasicSR off-by-one, for the record: its iterations are 1-based and it calls `scheduler.step()` once per
iteration only from iteration 2 on, so at iteration t the PyTorch scheduler's `last_epoch` is t − 1 and a
milestone m takes effect at iteration m + 1 (iterations 1..m run at the old rate: exactly m updates). With our
0-based step = t − 1 this is simply "the rate changes at step m": `learning_rate(step)` equals the rate
BasicSR uses at its iteration `step + 1`, for both schedules, so the two are identical update by update.

multistep:       lr = base_lr · gamma ** (number of milestones m with m <= step)
cosine_restart:  BasicSR CosineAnnealingRestartLR. With cumulative period ends c_0 < c_1 < ..., the step
                 belongs to cycle k, the first with step <= c_k (cycle k starts at s_k = c_{k-1}, s_0 = 0):
                 lr = eta_min + w_k · ½ · (base_lr − eta_min) · (1 + cos(π · (step − s_k) / period_k))
                 The boundary step c_k belongs to the ending cycle (lr = eta_min exactly); the next step
                 restarts at eta_min + w_{k+1}·½·(base_lr − eta_min)·(1 + cos(π / period_{k+1})), just below
                 the peak. Steps past the last period are undefined (BasicSR fails there) and raise.
"""

from __future__ import annotations

import bisect
import math

from esrgan.config import ScheduleConfig

__all__ = ["learning_rate"]


def learning_rate(step: int, base_lr: float, cfg: ScheduleConfig) -> float:
    """The learning rate for 0-based optimizer step `step` (see the module docstring for the convention)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if cfg.kind == "multistep":
        passed = bisect.bisect_right(cfg.milestones, step)  # milestones m <= step
        return base_lr * cfg.gamma**passed
    if cfg.kind == "cosine_restart":
        start = 0
        for period, restart_weight in zip(cfg.periods, cfg.restart_weights, strict=True):
            if step <= start + period:
                cosine = 1.0 + math.cos(math.pi * (step - start) / period)
                return cfg.eta_min + restart_weight * 0.5 * (base_lr - cfg.eta_min) * cosine
            start += period
        raise ValueError(
            f"step {step} is past the end of the cosine-restart schedule (periods sum to {start}); "
            "lengthen schedule.periods or shorten train.total_iters"
        )
    raise ValueError(f"unknown schedule kind {cfg.kind!r}")
