"""Paired crops and dihedral augmentation for LR/HR training pairs (SPEC §6.6), on HWC numpy arrays.

The transforms are pure functions of their arguments: every random choice is made by the caller (the dataset
draws them from an explicit per-sample generator), so the same choices applied to LR and HR give aligned
pairs, and the same generator state gives the same sample again.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["Dihedral", "DIHEDRAL", "augment", "draw_dihedral", "to_tensor"]


class Dihedral(NamedTuple):
    """One of the 8 symmetries of the square, as BasicSR's ``augment`` composes them.

    Applied in this order: ``hflip`` (mirror left↔right), ``vflip`` (mirror top↔bottom), ``transpose``
    (swap H and W). With each flag drawn with p = 0.5 all 8 maps are equally likely.
    """

    hflip: bool = False
    vflip: bool = False
    transpose: bool = False


DIHEDRAL: tuple[Dihedral, ...] = tuple(
    Dihedral(bool(h), bool(v), bool(t)) for h in (0, 1) for v in (0, 1) for t in (0, 1)
)


def draw_dihedral(rng: np.random.Generator, *, use_hflip: bool, use_rot: bool) -> Dihedral:
    """BasicSR's augmentation flags from ``rng``: hflip if ``use_hflip``, vflip and transpose if ``use_rot``.

    Three numbers are always drawn, whatever the flags, so switching augmentation off does not shift the
    random stream of anything drawn afterwards.
    """
    h, v, t = (rng.random(3) < 0.5).tolist()
    return Dihedral(hflip=h and use_hflip, vflip=v and use_rot, transpose=t and use_rot)


def augment(img: np.ndarray, transform: Dihedral) -> np.ndarray:
    """Apply ``transform`` to an ``H×W`` or ``H×W×C`` array; returns a view (make it contiguous later)."""
    if transform.hflip:
        img = img[:, ::-1]
    if transform.vflip:
        img = img[::-1]
    if transform.transpose:
        img = img.swapaxes(0, 1)
    return img


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``H×W×C`` float32 array → contiguous ``C×H×W`` float32 tensor (a copy; the array may be a view)."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
