"""Reading and writing images (`images`), streaming huge PNGs (`png_stream`) and listing image folders
(`folders`). Depends only on `esrgan.errors` and `esrgan._fs`."""

from __future__ import annotations

from esrgan.io.folders import IMAGE_EXTENSIONS, is_image_name, list_images
from esrgan.io.images import WRITE_FORMATS, Image, read_image, write_image
from esrgan.io.png_stream import PngStreamWriter

__all__ = [
    "IMAGE_EXTENSIONS",
    "WRITE_FORMATS",
    "Image",
    "PngStreamWriter",
    "is_image_name",
    "list_images",
    "read_image",
    "write_image",
]
