"""EMA generator: update formula, buffer copying, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from esrgan.train.ema import ModelEMA


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))


def test_ema_update_formula_and_buffers_copied() -> None:
    model = _net()
    ema = ModelEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(v, start[k]) for k, v in ema.module.state_dict().items())
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())

    # Change the model: new parameter values and new BN running statistics.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.train()(torch.randn(2, 3, 5, 5))
    ema.update(model)

    current = model.state_dict()
    for name, _ in model.named_parameters():
        expected = 0.9 * start[name] + 0.1 * current[name]
        torch.testing.assert_close(ema.module.state_dict()[name], expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(ema.module.state_dict()[name], current[name])
    for name, buffer in model.named_buffers():
        assert torch.equal(ema.module.state_dict()[name], buffer), name  # copied, not averaged
    assert ema.module.state_dict()["1.num_batches_tracked"].item() == 1

    # A second update compounds: θ₂ = 0.9·θ₁ + 0.1·θ.
    first = {k: v.clone() for k, v in ema.module.state_dict().items()}
    ema.update(model)
    weight = "0.weight"
    torch.testing.assert_close(ema.module.state_dict()[weight], 0.9 * first[weight] + 0.1 * current[weight])
    assert ema.num_updates == 2


def test_ema_is_independent_of_the_live_model() -> None:
    model = _net()
    ema = ModelEMA(model)
    with torch.no_grad():
        model[0].weight.zero_()
    assert ema.module[0].weight.abs().sum() > 0


def test_ema_state_dict_round_trip_for_resume() -> None:
    model = _net()
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    state = ema.state_dict()

    resumed = ModelEMA(_net(), decay=0.5)
    resumed.load_state_dict(state)
    assert resumed.num_updates == 1
    for k, v in ema.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[k], v)


def test_ema_rejects_a_different_architecture_and_bad_decay() -> None:
    ema = ModelEMA(_net())
    with pytest.raises(ValueError, match="parameters"):
        ema.update(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError):
        ModelEMA(_net(), decay=1.0)
