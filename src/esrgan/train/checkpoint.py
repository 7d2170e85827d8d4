"""Training checkpoints: everything a run needs to continue bit for bit, written atomically.

Layout of a run folder:

    RUN_DIR/config.yaml                          the resolved config of the run
    RUN_DIR/checkpoints/step_00005000.pt         full training state (the last `train.keep_last` are kept)
    RUN_DIR/models/net_g_00005000.safetensors    the generator (EMA copy if enabled), self-describing
    RUN_DIR/models/net_g_final.safetensors       the same for the last step, written when training ends

A checkpoint is a dict saved with `torch.save` and read with `torch.load(weights_only=True)` (no code runs on
load): ``step``, ``config`` (plain dict), ``generator``, ``discriminator``, ``ema``, ``opt_g``, ``opt_d``,
``scaler`` (state dicts or None), ``rng`` (python, numpy, torch, cuda generator states) and ``data`` (the
sampler position: batches consumed, with the batch size, world size and seed it counts in).

Files are written to a temporary name in the same folder, flushed to disk and renamed with `os.replace`, so a
run killed at any moment leaves either the previous checkpoint or the new one, never half a file.

The exported generator is loadable by `esrgan.load_model` and `esrgan upscale`; its safetensors metadata holds
the architecture, hyperparameters, the training step, which weights they are (EMA or raw) and the whole
training config (key ``esrgan.training_config``, JSON).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from esrgan import __version__
from esrgan._fs import atomic_writer
from esrgan.config import config_to_dict
from esrgan.errors import EsrganError
from esrgan.weights import save_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "checkpoint_dir",
    "list_checkpoints",
    "latest_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "export_generator",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "esrgan-train-checkpoint-v1"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def checkpoint_dir(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's checkpoints, oldest first (temporary files are ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_file()]
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint with the highest step in `run_dir`, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_writer(path, overwrite=True) as f:
        torch.save(obj, f)


def save_checkpoint(state: Mapping[str, Any], run_dir: str | os.PathLike[str], *, keep_last: int) -> Path:
    """Write `state` (holding ``step``) as ``checkpoints/step_XXXXXXXX.pt``; keep the last `keep_last`.

    Also removes temporary files that a killed run may have left behind.
    """
    step = int(state["step"])
    path = checkpoint_dir(run_dir) / f"step_{step:08d}.pt"
    _atomic_torch_save({"format": CHECKPOINT_FORMAT, **state}, path)
    for _, old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    for stale in path.parent.glob(".step_*.tmp"):
        stale.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (safe unpickling); EsrganError if it is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or a pickle that needs code to load
        raise EsrganError(f"cannot read training checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise EsrganError(f"{path} is not a training checkpoint of this toolkit ({CHECKPOINT_FORMAT})")
    return state


# ---------------------------------------------------------------------------------------------------------
# random number generators


def rng_state() -> dict[str, Any]:
    """States of Python's, NumPy's, torch's CPU and every CUDA generator (safe-to-unpickle types only)."""
    legacy = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = legacy
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generators saved by `rng_state` (CUDA states only where the device count matches)."""
    random.setstate(_as_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _as_tuples(value: Any) -> Any:
    """random.setstate wants nested tuples; a round trip through some serialisers yields lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


# ---------------------------------------------------------------------------------------------------------
# generator export


def source_commit() -> str:
    """The git commit of the code that is running ("unknown" outside a git checkout), for provenance."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def export_generator(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    config: Any,
    step: int,
    weights: str,
) -> Path:
    """Write the generator as self-describing safetensors with the training config in the metadata.

    `weights` says which copy it is ("ema" or "raw"); an existing file at `path` is replaced.
    """

    metadata = {
        "esrgan.training_config": json.dumps(config_to_dict(config), sort_keys=False),
        "esrgan.step": str(int(step)),
        "esrgan.weights": weights,
        "esrgan.version": __version__,
        "esrgan.commit": source_commit(),
    }
    return save_model(model, path, metadata=metadata, overwrite=True)
