"""Where every random number of the training data comes from: an infinite, resumable, sharded sample order.

The training stream of one process (rank) is an endless sequence of `SampleKey(item, epoch)`: epoch ``e`` is
a permutation of the dataset drawn from ``(seed, e)``, padded and dealt out across ranks like
`torch.utils.data.DistributedSampler`; the random crop and augmentation of a sample are drawn from
``(seed, epoch, index)`` by `sample_rng`. Nothing depends on worker processes, global RNG state or what
happened before, so position ``p`` of the stream is a pure function of ``(seed, rank, world_size, p)``. That
is what makes resuming exact: start the stream at ``start_step · batch_size`` and the batches from there on
are bit-identical to those of an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from torch.utils.data import Sampler

__all__ = ["SampleKey", "ResumableRandomSampler", "epoch_order", "sample_rng"]

# Domain tags keep the epoch-order and per-sample seed sequences apart even where their other words coincide.
_ORDER_TAG = 0x0D0E
_SAMPLE_TAG = 0x5A3E


class SampleKey(NamedTuple):
    """What the sampler hands to the dataset: which item, and in which epoch (for its random draws).

    (The field is ``item``, not ``index``, which would shadow ``tuple.index``.)
    """

    item: int
    epoch: int


def _check_seed(seed: int) -> int:
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Independent generator for the random crop and augmentation of item ``index`` in epoch ``epoch``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([_check_seed(seed), epoch, index, _SAMPLE_TAG]))
    )


def epoch_order(dataset_len: int, seed: int, epoch: int, *, shuffle: bool = True) -> np.ndarray:
    """The order in which epoch ``epoch`` visits all ``dataset_len`` items (before sharding across ranks)."""
    if not shuffle:
        return np.arange(dataset_len)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([_check_seed(seed), epoch, _ORDER_TAG])))
    return rng.permutation(dataset_len)


class ResumableRandomSampler(Sampler[SampleKey]):
    """Endless, epoch-seeded, rank-sharded stream of `SampleKey`s that can start at any position.

    Each epoch every rank gets ``ceil(dataset_len / world_size)`` keys: the epoch's permutation is padded to a
    multiple of ``world_size`` by repeating its first items (as `DistributedSampler` does, so every rank sees
    the same number of samples) and rank ``r`` takes positions ``r, r + world_size, …``. When ``dataset_len``
    is a multiple of ``world_size`` the ranks partition each epoch exactly.

    Batches simply cut this per-rank stream into consecutive chunks (they may straddle an epoch boundary), so
    batch ``k`` is stream positions ``[k·batch_size, (k+1)·batch_size)``; the stream starts at position
    ``start_step · batch_size + start_index``.

    Resume from the trainer's own count of consumed batches, not from any state of this object: a DataLoader
    with workers draws keys ahead of the batches it has delivered.

    Args:
        dataset_len: number of items in the dataset (> 0).
        seed: non-negative seed of the sample order (the dataset draws its crops from the same seed).
        start_step: first batch to produce, 0-based (the number of batches already consumed).
        batch_size: samples per batch on this rank; only used to turn ``start_step`` into a position.
        start_index: extra offset in samples, added to ``start_step · batch_size``.
        rank, world_size: this process's shard.
        shuffle: ``False`` visits the items in order every epoch (for debugging).
    """

    def __init__(
        self,
        dataset_len: int,
        *,
        seed: int = 0,
        start_step: int = 0,
        batch_size: int = 1,
        start_index: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if dataset_len < 1:
            raise ValueError(f"the dataset is empty (dataset_len={dataset_len})")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if start_step < 0 or start_index < 0:
            raise ValueError(f"start_step and start_index must be >= 0, got {start_step}, {start_index}")
        self.dataset_len = int(dataset_len)
        self.seed = _check_seed(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.samples_per_epoch = math.ceil(self.dataset_len / self.world_size)  # per rank
        self.start_position = int(start_step) * self.batch_size + int(start_index)

    def rank_indices(self, epoch: int) -> np.ndarray:
        """The dataset indices this rank visits in epoch ``epoch``, in order."""
        order = epoch_order(self.dataset_len, self.seed, epoch, shuffle=self.shuffle)
        total = self.samples_per_epoch * self.world_size
        if total > self.dataset_len:
            order = np.resize(order, total)  # repeats from the start, like DistributedSampler's padding
        return order[self.rank : total : self.world_size]

    def key_at(self, position: int) -> SampleKey:
        """The key at ``position`` of this rank's stream (what `__iter__` yields there)."""
        epoch, offset = divmod(position, self.samples_per_epoch)
        return SampleKey(int(self.rank_indices(epoch)[offset]), epoch)

    def __iter__(self) -> Iterator[SampleKey]:
        epoch, offset = divmod(self.start_position, self.samples_per_epoch)
        while True:
            for index in self.rank_indices(epoch)[offset:].tolist():
                yield SampleKey(index, epoch)
            epoch += 1
            offset = 0
