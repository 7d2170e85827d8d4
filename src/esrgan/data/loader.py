"""DataLoaders for training (endless, sharded, exactly resumable) and validation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from esrgan.config import DataConfig
from esrgan.data.datasets import PairedImageDataset, ValidationDataset
from esrgan.data.sampler import ResumableRandomSampler
from esrgan.errors import EsrganError

__all__ = ["build_train_loader", "build_val_loader", "next_batch"]


def next_batch(batches: Iterator[Any]) -> Any:
    """``next(batches)``, with a data error raised in a loader worker turned back into its one-line message.

    PyTorch re-raises a worker's exception in the main process as the same type with the worker's whole
    traceback as its message ("Caught ImageError in DataLoader worker process 0. Original Traceback ...");
    for our errors (a corrupt image, a too-small image) the last line, which names the file, is what a user
    needs.
    """
    try:
        return next(batches)
    except EsrganError as e:
        text = str(e)
        if "Original Traceback" not in text:
            raise
        marker = f"{type(e).__module__}.{type(e).__qualname__}: "
        _, found, message = text.rpartition(marker)
        raise type(e)(message.strip() if found else text.strip().splitlines()[-1]) from None


def build_train_loader(
    cfg: DataConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    start_step: int = 0,
    seed: int = 0,
    dataset: Dataset | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """Endless DataLoader of training batches ``{"lq": N×3×h×w, "gt": N×3×H×W, "path": [str]*N}``.

    The first batch it yields is batch ``start_step`` (0-based) of this rank's uninterrupted stream, and every
    later batch equals the uninterrupted one bit for bit, whatever ``cfg.num_workers``: after ``k`` optimizer
    steps with one batch each, resume with ``start_step=k``. Iterate it with ``next(iter(loader))`` or zip it
    with the step counter; ``len(loader)`` is undefined (the stream has no end).

    Args:
        cfg: data config; ``batch_size`` is per rank, ``num_workers`` worker processes (persistent).
        rank, world_size: this process's shard of every epoch (like ``DistributedSampler``).
        start_step: batches already consumed.
        seed: seed of the sample order and of the crops/flips (``train.seed``).
        dataset: a map-style dataset taking `SampleKey`s; default ``PairedImageDataset(cfg, seed=seed)``.
        pin_memory: default: only when CUDA is available.
    """
    if dataset is None:
        dataset = PairedImageDataset(cfg, seed=seed)
    sampler = ResumableRandomSampler(
        len(dataset),  # type: ignore[arg-type]
        seed=seed,
        start_step=start_step,
        batch_size=cfg.batch_size,
        rank=rank,
        world_size=world_size,
    )
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=True,
        # Without its own generator the DataLoader draws its workers' base seed from torch's global RNG, which
        # would make the trainer's global RNG state depend on when the loader was created.
        generator=torch.Generator().manual_seed(seed),
    )


def build_val_loader(cfg: DataConfig, *, num_workers: int = 0, pin_memory: bool | None = None) -> DataLoader:
    """DataLoader over `ValidationDataset(cfg)`: whole images, batch size 1, in file order."""
    return DataLoader(
        ValidationDataset(cfg),
        batch_size=1,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        generator=torch.Generator().manual_seed(0),
    )
