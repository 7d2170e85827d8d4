"""Image files in and out: every mode and bit depth we meet, metadata kept, atomic writes.

Contract of `Image` (see docs/architecture.md):

- `pixels`: ``H×W`` (gray) or ``H×W×3`` (RGB, never BGR), ``uint8`` or ``uint16``.
- `alpha`: ``H×W`` with the dtype of `pixels`, or ``None``.
- The bit depth comes from the file header (PNG IHDR, TIFF BitsPerSample), never from pixel values: a dark
  16-bit image stays 16-bit (SPEC §13.17 is the bug this avoids).
- EXIF orientation is applied to the pixels on reading and the orientation tag of the carried EXIF is reset to
  1, so the pixels are always upright and a viewer will not rotate them a second time.
- `exif` is stored the way Pillow writes it: a TIFF-structured block that starts with ``b"Exif\\0\\0"``.

Decisions (documented here because users will ask):

- Palette images (with or without tRNS transparency) become RGB/RGBA; 1/2/4-bit images become 8-bit; CMYK and
  YCbCr become RGB (a CMYK ICC profile is dropped because it no longer describes the pixels).
- Multi-frame files (animated GIF/WebP/APNG, multi-page TIFF): the first frame only.
- 16-bit PNG and TIFF: Pillow cannot hold 16-bit colour, so their pixels come from OpenCV (PNG) or tifffile
  (TIFF, with OpenCV for codecs tifffile lacks without `imagecodecs`, e.g. LZW) while Pillow/tifffile give the
  metadata. 8-bit TIFFs go through Pillow (tifffile if Pillow cannot open them). 16-bit PNG is written by a
  small encoder in this module; all TIFFs are written by tifffile (Deflate-compressed).
- Metadata in outputs: PNG (iCCP + eXIf), JPEG and WebP keep ICC and EXIF; TIFF keeps ICC only (TIFF keeps
  camera metadata as tags of the image's own IFD, which we neither read as EXIF nor write); BMP keeps neither.
- Formats that cannot hold the image are refused with an `ImageError` instead of silently losing data: alpha
  into JPEG/BMP, 16-bit into JPEG/WebP/BMP. Gray into WebP is stored as RGB (WebP has no gray mode).
- Writes never leave a partial file: the file is encoded in memory, written to a temporary file in the target
  folder and moved into place with `os.replace` (or `os.link` when an existing file must not be replaced).
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image as PILImage

from esrgan._fs import atomic_write_bytes
from esrgan.errors import ImageError

logger = logging.getLogger(__name__)

# Decompression-bomb guard. Pillow's default (~89 Mpx) is too small for super-resolution users, who feed
# scans and panoramas; 2**28 px (e.g. 16384×16384) still refuses files whose header promises absurd sizes.
MAX_PIXELS = 1 << 28
_PILLOW_DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)
if PILImage.MAX_IMAGE_PIXELS == _PILLOW_DEFAULT_MAX_PIXELS:  # leave a value the user chose alone
    PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS

EXIF_PREFIX = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ORIENTATION_TAG = 0x0112
_ICC_TIFF_TAG = 34675

# Output formats by file extension.
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_HAS_ALPHA = {"PNG", "WEBP", "TIFF"}
_HAS_16_BIT = {"PNG", "TIFF"}


@dataclass
class Image:
    """An image with the metadata worth carrying from input file to output file.

    `pixels` is ``H×W`` (gray) or ``H×W×3`` (RGB), ``uint8`` or ``uint16``; `alpha` is ``H×W`` of the same
    dtype or ``None``. `icc_profile` is the raw ICC profile, `exif` a TIFF-structured EXIF block starting with
    ``b"Exif\\0\\0"`` (orientation already applied to the pixels and reset to 1). `source_format` is Pillow's
    format name of the file it was read from ("PNG", "JPEG", "TIFF", "WEBP", ...), ``None`` otherwise.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None

    def __post_init__(self) -> None:
        p = self.pixels
        if not isinstance(p, np.ndarray) or p.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"Image.pixels must be a uint8 or uint16 array, got {getattr(p, 'dtype', type(p))}"
            )
        if not (p.ndim == 2 or (p.ndim == 3 and p.shape[2] == 3)) or p.shape[0] < 1 or p.shape[1] < 1:
            raise ValueError(f"Image.pixels must be H×W or H×W×3, got shape {p.shape}")
        a = self.alpha
        if a is not None and (not isinstance(a, np.ndarray) or a.shape != p.shape[:2] or a.dtype != p.dtype):
            raise ValueError(
                f"Image.alpha must be H×W {p.dtype} like the pixels {p.shape[:2]}, "
                f"got {getattr(a, 'shape', None)} {getattr(a, 'dtype', type(a))}"
            )

    @property
    def bit_depth(self) -> int:
        """8 or 16, from the dtype (which came from the file header)."""
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def mode(self) -> str:
        """Pillow-style mode name: "L", "LA", "RGB" or "RGBA" (bit depth separate)."""
        base = "L" if self.pixels.ndim == 2 else "RGB"
        return base + ("A" if self.alpha is not None else "")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


# --------------------------------------------------------------------------------------------------
# reading

# Exceptions that decoders raise for files that are corrupt, truncated or not images. Anything else is a bug
# in this module and keeps its traceback.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, cv2.error, IndexError)


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def read_image(path: str | os.PathLike[str]) -> Image:
    """Read an image file as upright RGB/gray pixels plus alpha, ICC profile and EXIF.

    Raises `ImageError` (naming the file) for missing, empty, truncated, corrupt or unsupported files.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read the file ({e.strerror or e})") from e
    if not data:
        raise ImageError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            if data[:4] in _TIFF_MAGICS:
                return _read_tiff(data, path)
            return _read_with_pillow(data, path)
    except ImageError:
        raise
    except PILImage.DecompressionBombError as e:
        raise ImageError(f"{path}: {e}") from e
    except PILImage.UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image, or a format this tool cannot read") from e
    except _DECODE_ERRORS as e:
        detail = _OBJECT_REPR.sub("the data", str(e))  # e.g. "<_io.BytesIO object at 0x7f…>" means nothing
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {detail})") from e


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{path}: {width}×{height} = {width * height} pixels is more than the limit of {MAX_PIXELS} "
            "(a guard against decompression bombs); if you trust the file, raise "
            "esrgan.io.images.MAX_PIXELS"
        )


def _read_with_pillow(data: bytes, path: Path) -> Image:
    im = PILImage.open(io.BytesIO(data))
    fmt = im.format or "unknown"
    _check_size(path, *im.size)
    if getattr(im, "n_frames", 1) > 1:
        logger.warning(
            "%s: an animation of %d frames; only the first frame is upscaled (for all of them, extract the "
            "frames to image files first)",
            path,
            im.n_frames,
        )
    im.load()  # decode now: truncated or corrupt data fails here, inside read_image's error handling
    icc = im.info.get("icc_profile") or None
    exif = _normalise_exif(im.info.get("exif"))

    png_header = _png_header(data) if data[:8] == _PNG_SIGNATURE else None
    if png_header is not None and png_header[0] == 16:
        pixels, alpha = _png16_pixels(data, png_header[1], im.info.get("transparency"), path)
    else:
        pixels, alpha, icc = _pillow_pixels(im, icc, path)

    orientation = _exif_orientation(exif) if exif else 1
    pixels, alpha = _apply_orientation(pixels, orientation), _apply_orientation(alpha, orientation)
    if orientation != 1 and exif is not None:
        exif = _exif_reset_orientation(exif)
    return Image(pixels=pixels, alpha=alpha, icc_profile=icc, exif=exif, source_format=fmt)


def _pillow_pixels(
    im: PILImage.Image, icc: bytes | None, path: Path
) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Pixels of an ≤8-bit image, or of a 16-bit gray image, that Pillow decoded."""
    mode = im.mode
    transparency = im.info.get("transparency")
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if (mode == "PA" or transparency is not None) else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("L", "RGB") and transparency is not None:
        im = im.convert(mode[0] + "A" if mode == "L" else "RGBA")
    elif mode in ("RGBa", "La"):
        im = im.convert(mode.upper())
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        if mode == "CMYK" and icc:
            logger.warning("%s: CMYK image converted to RGB; its CMYK ICC profile is dropped", path)
            icc = None
        im = im.convert("RGB")
    elif mode.startswith("I;16") or mode == "I":
        # 16-bit gray (Pillow opens it as I;16, or I on old versions); the header said 16 bits.
        if mode == "I" and im.format not in ("PNG", "TIFF"):
            raise ImageError(f"{path}: 32-bit integer images are not supported")
        arr = np.asarray(im)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise ImageError(f"{path}: 32-bit integer images are not supported")
        gray = arr.astype(np.uint16)
        alpha = None
        if isinstance(transparency, int):
            alpha = np.where(gray == transparency, 0, 65535).astype(np.uint16)
        return gray, alpha, icc
    elif mode == "F":
        raise ImageError(f"{path}: floating-point images are not supported (convert to 8 or 16-bit first)")

    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(f"{path}: unsupported image mode {im.mode!r}")
    arr = np.asarray(im)
    if im.mode == "L":
        return arr.copy(), None, icc
    if im.mode == "RGB":
        return arr.copy(), None, icc
    if im.mode == "LA":
        return arr[:, :, 0].copy(), arr[:, :, 1].copy(), icc
    return arr[:, :, :3].copy(), arr[:, :, 3].copy(), icc


def _png_header(data: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from the PNG IHDR chunk, or None if the header is malformed."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    return data[24], data[25]


def _png16_pixels(
    data: bytes, color_type: int, transparency: object, path: Path
) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit PNG pixels via OpenCV (Pillow reduces 16-bit colour to 8 bits)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ImageError(f"{path}: cannot decode this 16-bit PNG")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if color_type == 0 and channels == 1:  # gray, maybe with a tRNS colour (OpenCV ignores it)
        alpha = None
        if isinstance(transparency, int):
            alpha = np.where(arr == transparency, 0, 65535).astype(np.uint16)
        return arr, alpha
    if color_type == 4 and channels == 4:  # gray + alpha: OpenCV expands the gray to BGR
        return arr[:, :, 0].copy(), arr[:, :, 3].copy()
    if color_type in (2, 6) and channels == 3:
        return np.ascontiguousarray(arr[:, :, ::-1]), None
    if color_type in (2, 6) and channels == 4:  # RGBA, or RGB whose tRNS colour OpenCV turned into alpha
        return np.ascontiguousarray(arr[:, :, 2::-1]), arr[:, :, 3].copy()
    raise ImageError(f"{path}: unexpected 16-bit PNG layout (colour type {color_type}, {channels} channels)")


def _read_tiff(data: bytes, path: Path) -> Image:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if not tif.pages:
            raise ImageError(f"{path}: TIFF file without images")
        if len(tif.pages) > 1:
            logger.warning("%s: %d pages; only the first page is upscaled", path, len(tif.pages))
        page = tif.pages[0]
        height, width = int(page.imagelength), int(page.imagewidth)
        _check_size(path, width, height)
        bits = page.bitspersample
        icc_tag = page.tags.get(_ICC_TIFF_TAG)
        icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None
        orient_tag = page.tags.get(274)
        orientation = int(orient_tag.value) if orient_tag is not None else 1
        if bits in (8, 16) and page.sampleformat != 1:  # 1 = unsigned integer
            raise ImageError(f"{path}: signed or floating-point TIFF is not supported")
        if bits <= 8:
            try:  # Pillow + libtiff: palettes, 1-bit, YCbCr/JPEG, CMYK, LZW, ...
                pixels, alpha, icc = _pillow_pixels(_open_pillow_tiff(data), icc, path)
            except (OSError, ValueError):
                if bits != 8:
                    raise
                pixels, alpha = _tiff_pixels(page, data, path)
        elif bits == 16:
            pixels, alpha = _tiff_pixels(page, data, path)
        else:
            raise ImageError(
                f"{path}: {bits}-bit TIFF is not supported (8 and 16 bits per sample are; "
                "convert float/32-bit images first)"
            )
    pixels, alpha = _apply_orientation(pixels, orientation), _apply_orientation(alpha, orientation)
    return Image(pixels=pixels, alpha=alpha, icc_profile=icc, exif=None, source_format="TIFF")


def _open_pillow_tiff(data: bytes) -> PILImage.Image:
    im = PILImage.open(io.BytesIO(data))
    im.load()
    return im


def _tiff_pixels(page: tifffile.TiffPage, data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """8/16-bit gray, gray+alpha, RGB or RGBA pixels of a TIFF page via tifffile (OpenCV as fallback)."""
    dtype = np.uint16 if page.bitspersample == 16 else np.uint8
    top = int(np.iinfo(dtype).max)
    photometric = int(page.photometric)  # 0 min-is-white, 1 min-is-black, 2 RGB
    samples = int(page.samplesperpixel)
    if photometric not in (0, 1, 2) or samples - (3 if photometric == 2 else 1) not in (0, 1):
        raise ImageError(
            f"{path}: unsupported TIFF layout (photometric {photometric}, {samples} samples per pixel)"
        )
    try:
        arr = page.asarray()
        if page.axes.startswith("S"):  # planar configuration: samples first
            arr = np.moveaxis(arr, 0, -1)
    except ValueError as e:
        # tifffile needs the optional `imagecodecs` package for LZW, JPEG, ... compressed data; OpenCV's
        # libtiff reads those (chunky RGB/RGBA/gray only, which we check below).
        logger.debug("%s: tifffile cannot decode (%s); using OpenCV", path, e)
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None or arr.dtype != dtype or (1 if arr.ndim == 2 else arr.shape[2]) != samples:
            raise ImageError(f"{path}: cannot decode this TIFF ({e})") from e
        if arr.ndim == 3:
            arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    color_n = 3 if photometric == 2 else 1
    color = arr[:, :, :color_n]
    alpha = arr[:, :, color_n] if arr.shape[2] > color_n else None
    if photometric == 0:
        color = top - color
    extra = tuple(int(v) for v in (page.extrasamples or ()))
    if alpha is not None and extra[:1] == (1,):  # associated (premultiplied) alpha → straight alpha
        a = alpha.astype(np.float64)[:, :, None]
        straight = np.where(a > 0, color.astype(np.float64) * top / np.maximum(a, 1), 0)
        color = np.clip(np.rint(straight), 0, top).astype(dtype)
    pixels = color[:, :, 0] if color_n == 1 else color
    return np.ascontiguousarray(pixels), (None if alpha is None else np.ascontiguousarray(alpha))


# --------------------------------------------------------------------------------------------------
# EXIF orientation


def _normalise_exif(blob: object) -> bytes | None:
    if not isinstance(blob, bytes | bytearray) or not blob:
        return None
    blob = bytes(blob)
    return blob if blob.startswith(EXIF_PREFIX) else EXIF_PREFIX + blob


def _orientation_offset(exif: bytes) -> tuple[int, str] | None:
    """Offset of the orientation value (a SHORT in IFD0) in `exif`, and the byte order; None if absent."""
    base = len(EXIF_PREFIX) if exif.startswith(EXIF_PREFIX) else 0
    try:
        order = {b"II": "<", b"MM": ">"}[exif[base : base + 2]]
        magic, ifd = struct.unpack(order + "HI", exif[base + 2 : base + 8])
        if magic != 42:
            return None
        (count,) = struct.unpack(order + "H", exif[base + ifd : base + ifd + 2])
        for i in range(count):
            entry = base + ifd + 2 + 12 * i
            tag, kind, n = struct.unpack(order + "HHI", exif[entry : entry + 8])
            if tag == _ORIENTATION_TAG and kind == 3 and n >= 1:  # 3 = SHORT, stored inline
                return entry + 8, order
    except (KeyError, struct.error):
        return None
    return None


def _exif_orientation(exif: bytes) -> int:
    found = _orientation_offset(exif)
    if found is None:
        return 1
    offset, order = found
    (value,) = struct.unpack(order + "H", exif[offset : offset + 2])
    return value if 1 <= value <= 8 else 1


def _exif_reset_orientation(exif: bytes) -> bytes:
    """The same EXIF bytes with orientation 1, patched in place so that nothing else changes."""
    found = _orientation_offset(exif)
    if found is None:
        return exif
    offset, order = found
    return exif[:offset] + struct.pack(order + "H", 1) + exif[offset + 2 :]


def _apply_orientation(arr: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """Turn stored pixels upright for EXIF/TIFF orientation 1–8 (same result as Pillow's exif_transpose)."""
    if arr is None or orientation == 1:
        return arr
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(arr, -1)
    elif orientation == 7:
        out = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(arr, 1)
    else:
        return arr
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------------
# writing


def output_format(path: str | os.PathLike[str]) -> str:
    """Format name ("PNG", "JPEG", "WEBP", "TIFF", "BMP") for an output path, from its extension."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        choices = " ".join(sorted({ext for ext in WRITE_FORMATS if ext not in (".jpeg", ".tiff")}))
        raise ImageError(f"{path}: unknown output format {path.suffix!r}; use one of {choices}")
    return fmt


def check_writable(path: str | os.PathLike[str], image: Image) -> str:
    """Return `path`'s format, or raise `ImageError` if that format cannot hold `image` without loss.

    Cheap: call it before spending time on a model to fail early.
    """
    fmt = output_format(path)
    if image.alpha is not None and fmt not in _HAS_ALPHA:
        raise ImageError(
            f"{path}: {fmt} has no alpha channel but the image is transparent; use --ext png (or webp, tif)"
        )
    if image.bit_depth == 16 and fmt not in _HAS_16_BIT:
        raise ImageError(
            f"{path}: {fmt} holds only 8-bit pixels but the image is 16-bit; use --ext png or tif"
        )
    return fmt


def write_image(
    path: str | os.PathLike[str],
    image: Image,
    *,
    overwrite: bool = False,
    quality: int = 95,
    webp_lossless: bool = False,
) -> None:
    """Write `image` to `path` (format from the extension), atomically; keep ICC/EXIF where the format can.

    Refuses to replace an existing file unless `overwrite`. `quality` applies to JPEG and lossy WebP (JPEG is
    written with 4:4:4 chroma). On any error no file is created or changed at `path` and `ImageError` is
    raised.
    """
    path = Path(path)
    fmt = check_writable(path, image)
    if not overwrite and path.exists():
        raise ImageError(f"{path}: already exists; use --overwrite (overwrite=True) to replace it")
    try:
        data = _encode(image, fmt, quality=quality, webp_lossless=webp_lossless)
    except (OSError, ValueError, struct.error, zlib.error) as e:
        raise ImageError(f"{path}: cannot encode the image as {fmt} ({e})") from e
    write_encoded(path, data, overwrite=overwrite)


# A JPEG APP1 segment holds at most 65533 bytes after its length field.
_JPEG_MAX_EXIF = 65533


def _encode(image: Image, fmt: str, *, quality: int, webp_lossless: bool) -> bytes:
    exif = image.exif
    if exif and fmt in ("TIFF", "BMP"):
        logger.info("%s files do not get the EXIF block; it is not written", fmt)
    if image.icc_profile and fmt == "BMP":
        logger.info("BMP files do not get the ICC profile; it is not written")
    if exif and fmt == "JPEG" and len(exif) > _JPEG_MAX_EXIF:
        logger.warning("EXIF block of %d bytes does not fit in a JPEG; it is not written", len(exif))
        exif = None
    if fmt == "PNG" and image.bit_depth == 16:
        return _encode_png16(image)
    if fmt == "TIFF":
        return _encode_tiff(image)
    pil = _to_pillow(image)
    kwargs: dict[str, object] = {}
    if fmt in ("PNG", "JPEG", "WEBP"):
        if image.icc_profile:
            kwargs["icc_profile"] = image.icc_profile
        if exif:
            kwargs["exif"] = exif
    if fmt == "JPEG":
        kwargs.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        kwargs.update(quality=quality, lossless=webp_lossless, method=4, exact=True)  # keep RGB under alpha 0
        if pil.mode in ("L", "LA"):  # WebP has no gray mode
            pil = pil.convert("RGBA" if pil.mode == "LA" else "RGB")
    elif fmt == "PNG":
        kwargs.update(compress_level=6)
    buf = io.BytesIO()
    pil.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _to_pillow(image: Image) -> PILImage.Image:
    """8-bit image as a Pillow image of mode L, LA, RGB or RGBA."""
    if image.alpha is None:
        return PILImage.fromarray(image.pixels, "L" if image.pixels.ndim == 2 else "RGB")
    return PILImage.fromarray(_interleave(image), image.mode)


def _interleave(image: Image) -> np.ndarray:
    """H×W×C array: colour channels then alpha (C = 1..4)."""
    color = image.pixels[:, :, None] if image.pixels.ndim == 2 else image.pixels
    if image.alpha is None:
        return np.ascontiguousarray(color)
    return np.concatenate([color, image.alpha[:, :, None]], axis=2)


def _encode_tiff(image: Image) -> bytes:
    arr = _interleave(image)
    extratags = []
    if image.icc_profile:
        extratags.append((_ICC_TIFF_TAG, 7, len(image.icc_profile), image.icc_profile, True))  # 7 = UNDEFINED
    buf = io.BytesIO()
    tifffile.imwrite(
        buf,
        arr if arr.shape[2] > 1 else arr[:, :, 0],
        photometric="rgb" if image.pixels.ndim == 3 else "minisblack",
        planarconfig="contig",
        extrasamples=["unassalpha"] if image.alpha is not None else None,
        compression="zlib",  # Adobe Deflate: readable everywhere, and needs no optional codec package
        extratags=extratags,
        metadata=None,
    )
    return buf.getvalue()


# 16-bit PNG encoder. Pillow cannot write 16-bit colour, and OpenCV cannot write 16-bit gray+alpha or ICC/EXIF
# chunks, so we write the PNG ourselves: IHDR, iCCP, eXIf, IDAT with per-row adaptive filtering, IEND.

_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → PNG colour type (gray, gray+alpha, RGB, RGBA)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _encode_png16(image: Image) -> bytes:
    arr = _interleave(image)
    height, width, channels = arr.shape
    raw = arr.astype(">u2").view(np.uint8).reshape(height, width * channels * 2)
    filtered = _png_filter(raw, bytes_per_pixel=channels * 2)
    parts = [
        _PNG_SIGNATURE,
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOR_TYPE[channels], 0, 0, 0)),
    ]
    if image.icc_profile:
        parts.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(image.icc_profile)))
    if image.exif:
        exif = image.exif[len(EXIF_PREFIX) :] if image.exif.startswith(EXIF_PREFIX) else image.exif
        parts.append(_png_chunk(b"eXIf", exif))
    compressed = zlib.compress(filtered.tobytes(), 6)
    step = 1 << 30
    parts += [_png_chunk(b"IDAT", compressed[i : i + step]) for i in range(0, max(len(compressed), 1), step)]
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def _png_filter(raw: np.ndarray, bytes_per_pixel: int) -> np.ndarray:
    """PNG filtering of byte rows: each row gets the filter (None, Sub, Up, Average, Paeth) whose output has
    the smallest sum of absolute values as signed bytes (libpng's heuristic). Returns rows with the filter
    type byte in front. Every filter depends only on the unfiltered bytes, so rows are done in blocks."""
    height, n = raw.shape
    bpp = bytes_per_pixel
    out = np.empty((height, n + 1), np.uint8)
    block = max(1, (1 << 21) // max(n, 1))
    for r0 in range(0, height, block):
        r1 = min(height, r0 + block)
        x = raw[r0:r1].astype(np.int16)
        up = np.zeros_like(x)
        up[1:] = x[:-1]
        if r0 > 0:
            up[0] = raw[r0 - 1]
        left = np.zeros_like(x)
        left[:, bpp:] = x[:, :-bpp]
        upleft = np.zeros_like(x)
        upleft[:, bpp:] = up[:, :-bpp]
        pa, pb, pc = np.abs(up - upleft), np.abs(left - upleft), np.abs(left + up - 2 * upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        candidates = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth]) & 0xFF
        signed = np.minimum(candidates, 256 - candidates)
        best = signed.sum(axis=2, dtype=np.int64).argmin(axis=0)
        rows = np.arange(r1 - r0)
        out[r0:r1, 0] = best
        out[r0:r1, 1:] = candidates[best, rows].astype(np.uint8)
    return out


def write_encoded(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write encoded image bytes to `path` atomically (`esrgan._fs`); `ImageError` when `path` exists (without
    `overwrite`) or cannot be written."""
    try:
        atomic_write_bytes(path, data, overwrite=overwrite)
    except FileExistsError:
        raise ImageError(f"{path}: already exists; use --overwrite (overwrite=True) to replace it") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot write the file ({e.strerror or e})") from e
