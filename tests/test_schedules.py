"""Learning-rate schedules: hand-computed values and BasicSR's iteration convention."""

from __future__ import annotations

import math

import pytest
import torch

from esrgan.config import ScheduleConfig
from esrgan.train.schedules import learning_rate


def test_multistep_around_milestones() -> None:
    cfg = ScheduleConfig(kind="multistep", milestones=(3, 6), gamma=0.1)
    expected = {0: 1.0, 2: 1.0, 3: 0.1, 4: 0.1, 5: 0.1, 6: 0.01, 7: 0.01, 1000: 0.01}
    for step, lr in expected.items():
        assert learning_rate(step, 1.0, cfg) == pytest.approx(lr, rel=1e-12), step


def test_multistep_esrgan_gan_stage_defaults() -> None:
    cfg = ScheduleConfig()  # [50k, 100k, 200k, 300k] × 0.5
    assert learning_rate(49_999, 1e-4, cfg) == pytest.approx(1e-4)
    assert learning_rate(50_000, 1e-4, cfg) == pytest.approx(5e-5)
    assert learning_rate(299_999, 1e-4, cfg) == pytest.approx(1.25e-5)
    assert learning_rate(300_000, 1e-4, cfg) == pytest.approx(6.25e-6)


def test_multistep_equals_basicsr_driving_torch_multisteplr() -> None:
    """BasicSR: iterations t = 1, 2, ...; `scheduler.step()` when t > 1, before the update of iteration t.

    Our step for iteration t is t − 1, so the rate of every update must agree.
    """
    cfg = ScheduleConfig(kind="multistep", milestones=(2, 5, 6), gamma=0.5)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.8)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    seen = []
    for t in range(1, 11):
        if t > 1:
            scheduler.step()
        seen.append(opt.param_groups[0]["lr"])
        assert learning_rate(t - 1, 0.8, cfg) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), t
        opt.step()
    # Milestone m takes effect at BasicSR iteration m + 1: iterations 1..2 at 0.8, 3..5 at 0.4, 6 at 0.2.
    assert seen[:7] == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.1])


def test_cosine_restart_by_hand() -> None:
    base, eta_min = 1.0, 0.1
    cfg = ScheduleConfig(kind="cosine_restart", periods=(4, 6), restart_weights=(1.0, 0.5), eta_min=eta_min)

    def by_hand(weight: float, offset: int, period: int) -> float:
        return eta_min + weight * 0.5 * (base - eta_min) * (1 + math.cos(math.pi * offset / period))

    expected = {
        0: base,  # start of cycle 0: the peak
        1: by_hand(1.0, 1, 4),
        2: eta_min + 0.5 * (base - eta_min),  # half way: cos(π/2) = 0
        3: by_hand(1.0, 3, 4),
        4: eta_min,  # the boundary step ends cycle 0 (BasicSR: iteration <= cumulative period)
        5: by_hand(0.5, 1, 6),  # restart, weight 0.5, one step into cycle 1 (just below its peak)
        7: eta_min + 0.5 * 0.5 * (base - eta_min) * (1 + math.cos(math.pi / 2)),
        10: eta_min,  # end of the last cycle
    }
    for step, lr in expected.items():
        assert learning_rate(step, base, cfg) == pytest.approx(lr, rel=1e-12), step
    assert learning_rate(5, base, cfg) == pytest.approx(0.1 + 0.225 * (1 + math.cos(math.pi / 6)), rel=1e-12)
    with pytest.raises(ValueError, match="past the end"):
        learning_rate(11, base, cfg)


def test_cosine_restart_basicsr_psnr_defaults_with_eta_min() -> None:
    cfg = ScheduleConfig(kind="cosine_restart")  # 4 × 250k, weights 1, eta_min 1e-7
    assert learning_rate(0, 2e-4, cfg) == pytest.approx(2e-4)
    assert learning_rate(125_000, 2e-4, cfg) == pytest.approx(1e-7 + 0.5 * (2e-4 - 1e-7))
    assert learning_rate(250_000, 2e-4, cfg) == pytest.approx(1e-7)
    assert learning_rate(250_001, 2e-4, cfg) == pytest.approx(2e-4, rel=1e-9)
    assert learning_rate(999_999, 2e-4, cfg) > 1e-7


def test_negative_step_is_rejected() -> None:
    with pytest.raises(ValueError):
        learning_rate(-1, 1.0, ScheduleConfig())
