"""Jobs over many files, above `esrgan.inference` (which upscales one image):

    plan      collect_inputs / Shard / output_path / check_outscale   (no torch: runs before a model loads)
    upscale   upscale_files / UpscaleSummary   (the threaded read/compute/write pipeline of `esrgan upscale`)
    manifest  Recipe / ManifestWriter / read_manifest / recipe_for   (what made each output; resuming)

Names are imported lazily so that planning a job does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "ManifestRecord": "esrgan.jobs.manifest",
    "ManifestWriter": "esrgan.jobs.manifest",
    "Recipe": "esrgan.jobs.manifest",
    "read_manifest": "esrgan.jobs.manifest",
    "recipe_for": "esrgan.jobs.manifest",
    "Shard": "esrgan.jobs.plan",
    "check_outscale": "esrgan.jobs.plan",
    "collect_inputs": "esrgan.jobs.plan",
    "output_path": "esrgan.jobs.plan",
    "UpscaleSummary": "esrgan.jobs.upscale",
    "upscale_files": "esrgan.jobs.upscale",
}

__all__ = [
    "ManifestRecord",
    "ManifestWriter",
    "Recipe",
    "Shard",
    "UpscaleSummary",
    "check_outscale",
    "collect_inputs",
    "output_path",
    "read_manifest",
    "recipe_for",
    "upscale_files",
]

if TYPE_CHECKING:
    from esrgan.jobs.manifest import ManifestRecord, ManifestWriter, Recipe, read_manifest, recipe_for
    from esrgan.jobs.plan import Shard, check_outscale, collect_inputs, output_path
    from esrgan.jobs.upscale import UpscaleSummary, upscale_files


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'esrgan.jobs' has no attribute {name!r}")
