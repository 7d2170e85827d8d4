"""Jobs over many files: the `esrgan upscale` job (inputs, output names, the threaded read/compute/write
pipeline, sharding over processes) and its resumable manifest. Above `esrgan.inference`, which upscales one
image."""

from __future__ import annotations

from esrgan.jobs.manifest import ManifestRecord, ManifestWriter, Recipe, read_manifest, recipe_for
from esrgan.jobs.upscale import Shard, UpscaleSummary, collect_inputs, output_path, upscale_files

__all__ = [
    "ManifestRecord",
    "ManifestWriter",
    "Recipe",
    "Shard",
    "UpscaleSummary",
    "collect_inputs",
    "output_path",
    "read_manifest",
    "recipe_for",
    "upscale_files",
]
