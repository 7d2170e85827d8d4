"""Training checkpoints: atomic writes, pruning, safe loading, RNG round trips and the generator export."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan.config import ExperimentConfig, ModelConfig
from esrgan.errors import EsrganError
from esrgan.train import build_generator
from esrgan.train.checkpoint import (
    export_generator,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from esrgan.weights import load_model, read_generator_weights


def test_keep_last_and_latest(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    for step in (5, 10, 15, 20):
        save_checkpoint({"step": step, "x": torch.tensor([step])}, tmp_path, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [15, 20]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step_00000020.pt"
    assert load_checkpoint(latest)["x"].item() == 20


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint({"step": 7, "x": torch.tensor([1.0])}, tmp_path, keep_last=3)
    before = path.read_bytes()

    def half_written(obj: object, f) -> None:  # type: ignore[no-untyped-def]
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 7, "x": torch.tensor([2.0])}, tmp_path, keep_last=3)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["step_00000007.pt"]


def test_load_rejects_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    other = tmp_path / "weights.pt"
    torch.save({"params": {"w": torch.zeros(1)}}, other)
    with pytest.raises(EsrganError, match="not a training checkpoint"):
        load_checkpoint(other)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(EsrganError, match="cannot read training checkpoint"):
        load_checkpoint(broken)


def test_rng_state_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = save_checkpoint({"step": 1, "rng": rng_state()}, tmp_path, keep_last=1)
    expected = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(path)["rng"])
    again = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3))
    assert again[:3] == expected[:3] and torch.equal(again[3], expected[3])


def test_exported_generator_is_self_describing(tmp_path: Path) -> None:
    cfg = ExperimentConfig(model=ModelConfig(num_feat=8, num_block=1, num_grow_ch=4))
    model = build_generator(cfg.model)
    path = export_generator(model, tmp_path / "g.safetensors", config=cfg, step=42, weights="raw")
    weights = read_generator_weights(path)
    assert (weights.arch, weights.hparams["num_feat"], weights.metadata["esrgan.step"]) == (
        "RRDBNet",
        8,
        "42",
    )
    assert '"num_block": 1' in weights.metadata["esrgan.training_config"]
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(load_model(path)(x), model.eval()(x))
    export_generator(model, path, config=cfg, step=43, weights="raw")  # replaces the file
    assert read_generator_weights(path).metadata["esrgan.step"] == "43"
