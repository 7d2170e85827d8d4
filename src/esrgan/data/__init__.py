"""Training data: paired LR/HR datasets, the resumable sampler, loaders and sub-image preparation.

* :mod:`esrgan.data.datasets` — `PairedImageDataset` (random aligned patches), `ValidationDataset`,
  MATLAB-bicubic LR (`matlab_downscale`, `matlab_downscale_crop`).
* :mod:`esrgan.data.transforms` — dihedral augmentation shared by LR and HR.
* :mod:`esrgan.data.sampler` — `ResumableRandomSampler`, `sample_rng`: every random number of the data.
* :mod:`esrgan.data.loader` — `build_train_loader` (endless, sharded, exactly resumable), `build_val_loader`.
* :mod:`esrgan.data.prepare` — `extract_subimages` (BasicSR's 480/240 sliding window, SPEC §6.5).
"""

from __future__ import annotations

from esrgan.data.datasets import (
    PairedImageDataset,
    ValidationDataset,
    load_rgb,
    matlab_downscale,
    matlab_downscale_crop,
    pair_images,
)
from esrgan.data.loader import build_train_loader, build_val_loader, next_batch
from esrgan.data.prepare import PrepareSummary, extract_subimages, subimage_positions
from esrgan.data.sampler import ResumableRandomSampler, SampleKey, epoch_order, sample_rng
from esrgan.data.transforms import DIHEDRAL, Dihedral, augment

__all__ = [
    "next_batch",
    "DIHEDRAL",
    "Dihedral",
    "PairedImageDataset",
    "PrepareSummary",
    "ResumableRandomSampler",
    "SampleKey",
    "ValidationDataset",
    "augment",
    "build_train_loader",
    "build_val_loader",
    "epoch_order",
    "extract_subimages",
    "load_rgb",
    "matlab_downscale",
    "matlab_downscale_crop",
    "pair_images",
    "sample_rng",
    "subimage_positions",
]
