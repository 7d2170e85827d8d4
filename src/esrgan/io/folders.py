"""Which files are images: the one list of extensions, and the folder listing every command uses."""

from __future__ import annotations

from pathlib import Path

from esrgan.errors import EsrganError

__all__ = ["IMAGE_EXTENSIONS", "is_image_name", "list_images"]

# Extensions picked up from folders and glob patterns (an explicitly named file is read whatever its name).
# GIF is read (its first frame, with a warning for animations) but never written.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})


def is_image_name(path: Path) -> bool:
    """An image by its extension, and not hidden."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (by extension; hidden files skipped), sorted by name.

    Raises `EsrganError` when ``folder`` is not a folder or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EsrganError(f"{folder}: not a folder (expected a folder of images)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p))
    if not files:
        raise EsrganError(f"{folder}: no image files ({' '.join(sorted(IMAGE_EXTENSIONS))}) in this folder")
    return files
