"""Image files: every kind round-trips exactly with its metadata; bad files and unsafe writes fail cleanly."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import ExifTags, ImageCms, ImageOps
from PIL import Image as PILImage

from esrgan.errors import ImageError
from esrgan.io import images as image_io
from esrgan.io.images import Image, read_image, write_image

RNG = np.random.default_rng(1234)


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int = 1) -> bytes:
    exif = PILImage.Exif()
    exif[ExifTags.Base.Make] = "esrgan-test"
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def _random(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def _make(mode: str, dtype: type, h: int = 9, w: int = 13) -> Image:
    color = _random((h, w) if mode.startswith("L") else (h, w, 3), dtype)
    alpha = _random((h, w), dtype) if mode.endswith("A") else None
    return Image(pixels=color, alpha=alpha)


def _no_stray_files(folder: Path, expected: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == expected


# --------------------------------------------------------------------------------------------------
# round trips


LOSSLESS_KINDS = [
    ("png", "L", np.uint8),
    ("png", "LA", np.uint8),
    ("png", "RGB", np.uint8),
    ("png", "RGBA", np.uint8),
    ("png", "L", np.uint16),
    ("png", "LA", np.uint16),
    ("png", "RGB", np.uint16),
    ("png", "RGBA", np.uint16),
    ("tif", "L", np.uint8),
    ("tif", "RGB", np.uint8),
    ("tif", "RGBA", np.uint8),
    ("tif", "L", np.uint16),
    ("tif", "LA", np.uint16),
    ("tif", "RGB", np.uint16),
    ("tif", "RGBA", np.uint16),
    ("webp", "RGB", np.uint8),
    ("webp", "RGBA", np.uint8),
    ("bmp", "RGB", np.uint8),
    ("bmp", "L", np.uint8),
]


@pytest.mark.parametrize(("ext", "mode", "dtype"), LOSSLESS_KINDS)
def test_lossless_round_trip_keeps_mode_depth_pixels_and_metadata(
    tmp_path: Path, ext: str, mode: str, dtype: type
) -> None:
    icc, exif = _icc(), _exif()
    original = _make(mode, dtype)
    original.icc_profile, original.exif = icc, exif
    first = tmp_path / f"a.{ext}"
    write_image(first, original, webp_lossless=True)
    got = read_image(first)

    assert got.mode == mode
    assert got.bit_depth == (16 if dtype == np.uint16 else 8)
    assert got.pixels.dtype == dtype
    np.testing.assert_array_equal(got.pixels, original.pixels)
    if original.alpha is None:
        assert got.alpha is None
    else:
        np.testing.assert_array_equal(got.alpha, original.alpha)
    assert got.icc_profile == (None if ext == "bmp" else icc)
    assert got.exif == (exif if ext in ("png", "webp") else None)
    assert got.source_format == {"png": "PNG", "tif": "TIFF", "webp": "WEBP", "bmp": "BMP"}[ext]

    # read → write → read gives the same again
    second = tmp_path / f"b.{ext}"
    write_image(second, got, webp_lossless=True)
    again = read_image(second)
    np.testing.assert_array_equal(again.pixels, got.pixels)
    assert (again.alpha is None) == (got.alpha is None)
    assert (again.icc_profile, again.exif) == (got.icc_profile, got.exif)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_16_bit_png_is_read_correctly_by_other_decoders(tmp_path: Path, mode: str) -> None:
    """Our own 16-bit PNG encoder, checked with OpenCV's libpng (BGR order) and Pillow."""
    image = _make(mode, np.uint16, 40, 31)
    image.icc_profile = _icc()
    path = tmp_path / "x.png"
    write_image(path, image)
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16
    if mode == "L":
        np.testing.assert_array_equal(decoded, image.pixels)
        np.testing.assert_array_equal(np.asarray(PILImage.open(path)), image.pixels)
    elif mode == "LA":  # OpenCV expands gray+alpha to BGRA
        np.testing.assert_array_equal(decoded[:, :, 1], image.pixels)
        np.testing.assert_array_equal(decoded[:, :, 3], image.alpha)
    else:
        np.testing.assert_array_equal(decoded[:, :, 2::-1], image.pixels)
        if mode == "RGBA":
            np.testing.assert_array_equal(decoded[:, :, 3], image.alpha)
    assert PILImage.open(path).info["icc_profile"] == image.icc_profile


def test_16_bit_tiff_is_read_correctly_by_tifffile(tmp_path: Path) -> None:
    image = _make("RGBA", np.uint16)
    image.icc_profile = _icc()
    path = tmp_path / "x.tif"
    write_image(path, image)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), np.dstack([image.pixels, image.alpha]))
        assert bytes(page.tags[34675].value) == image.icc_profile


def test_reads_16_bit_files_written_by_other_libraries(tmp_path: Path) -> None:
    rgb = _random((7, 11, 3), np.uint16)
    alpha = _random((7, 11), np.uint16)
    # OpenCV writes BGR(A): the reader must give RGB back.
    cv2.imwrite(str(tmp_path / "cv.png"), np.dstack([rgb[:, :, ::-1], alpha]))
    got = read_image(tmp_path / "cv.png")
    np.testing.assert_array_equal(got.pixels, rgb)
    np.testing.assert_array_equal(got.alpha, alpha)
    # OpenCV's TIFFs are LZW-compressed, which tifffile cannot decode without imagecodecs: OpenCV fallback.
    cv2.imwrite(str(tmp_path / "cv.tif"), rgb[:, :, ::-1])
    got = read_image(tmp_path / "cv.tif")
    assert got.bit_depth == 16
    np.testing.assert_array_equal(got.pixels, rgb)
    # Planar (channel-first) 16-bit RGBA TIFF.
    tifffile.imwrite(
        tmp_path / "planar.tif",
        np.moveaxis(np.dstack([rgb, alpha]), -1, 0),
        photometric="rgb",
        planarconfig="separate",
        extrasamples=["unassalpha"],
    )
    got = read_image(tmp_path / "planar.tif")
    np.testing.assert_array_equal(got.pixels, rgb)
    np.testing.assert_array_equal(got.alpha, alpha)
    # Pillow's own 16-bit gray PNG.
    gray = _random((5, 6), np.uint16)
    PILImage.fromarray(gray).save(tmp_path / "pil.png")
    got = read_image(tmp_path / "pil.png")
    assert got.mode == "L" and got.bit_depth == 16
    np.testing.assert_array_equal(got.pixels, gray)


def test_tiff_layouts_via_tifffile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gray = _random((5, 6), np.uint16)
    tifffile.imwrite(tmp_path / "white.tif", gray, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "white.tif").pixels, 65535 - gray)

    straight = np.array([[[40000, 20000, 0]]], np.uint16)
    alpha = np.array([[32768]], np.uint16)
    premultiplied = np.rint(straight * (32768 / 65535)).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "assoc.tif",
        np.dstack([premultiplied, alpha]),
        photometric="rgb",
        extrasamples=["assocalpha"],
    )
    got = read_image(tmp_path / "assoc.tif")
    np.testing.assert_allclose(got.pixels.astype(int), straight, atol=2)
    np.testing.assert_array_equal(got.alpha, alpha)

    # 8-bit TIFFs go through Pillow; if Pillow cannot open one, tifffile reads it the same way.
    rgba = _random((5, 6, 4), np.uint8)
    tifffile.imwrite(tmp_path / "rgba8.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    by_pillow = read_image(tmp_path / "rgba8.tif")

    def pillow_fails(data: bytes) -> PILImage.Image:
        raise OSError("cannot identify image file")

    monkeypatch.setattr(image_io, "_open_pillow_tiff", pillow_fails)
    by_tifffile = read_image(tmp_path / "rgba8.tif")
    for got in (by_pillow, by_tifffile):
        np.testing.assert_array_equal(got.pixels, rgba[:, :, :3])
        np.testing.assert_array_equal(got.alpha, rgba[:, :, 3])


def test_float_tiff_is_refused(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((3, 3), np.float32))
    with pytest.raises(ImageError, match="f.tif"):
        read_image(tmp_path / "f.tif")


def test_dark_16_bit_image_stays_16_bit(tmp_path: Path) -> None:
    """SPEC §13.17: the bit depth comes from the header, not from max(pixels) > 256."""
    dark = RNG.integers(0, 200, (6, 8, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "dark.png"), dark)
    got = read_image(tmp_path / "dark.png")
    assert got.bit_depth == 16 and got.pixels.dtype == np.uint16
    np.testing.assert_array_equal(got.pixels, dark[:, :, ::-1])


def test_8_bit_image_with_only_high_values_stays_8_bit(tmp_path: Path) -> None:
    PILImage.fromarray(np.full((4, 4, 3), 255, np.uint8)).save(tmp_path / "white.png")
    assert read_image(tmp_path / "white.png").pixels.dtype == np.uint8


# --------------------------------------------------------------------------------------------------
# palettes and transparency


def test_palette_with_trns_becomes_rgba(tmp_path: Path) -> None:
    index = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint8)
    palette = [10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200]
    im = PILImage.frombytes("P", (4, 2), index.tobytes())
    im.putpalette(palette)
    im.save(tmp_path / "p.png", transparency=bytes([0, 128, 255, 255]))
    got = read_image(tmp_path / "p.png")
    assert got.mode == "RGBA" and got.bit_depth == 8
    lut = np.array(palette, np.uint8).reshape(4, 3)
    np.testing.assert_array_equal(got.pixels, lut[index])
    np.testing.assert_array_equal(got.alpha, np.array([0, 128, 255, 255], np.uint8)[index])


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    im = PILImage.frombytes("P", (2, 1), bytes([0, 1]))
    im.putpalette([1, 2, 3, 4, 5, 6])
    im.save(tmp_path / "p.gif")
    got = read_image(tmp_path / "p.gif")
    assert got.mode == "RGB"
    np.testing.assert_array_equal(got.pixels, [[[1, 2, 3], [4, 5, 6]]])


def test_gray_with_trns_colour_gets_alpha(tmp_path: Path) -> None:
    gray8 = np.array([[5, 6], [7, 5]], np.uint8)
    PILImage.fromarray(gray8).save(tmp_path / "g8.png", transparency=5)
    gray16 = np.array([[5, 600], [7, 5]], np.uint16)
    PILImage.fromarray(gray16).save(tmp_path / "g16.png", transparency=5)
    for name, dtype in (("g8.png", np.uint8), ("g16.png", np.uint16)):
        got = read_image(tmp_path / name)
        assert got.mode == "LA" and got.pixels.dtype == dtype
        top = np.iinfo(dtype).max
        np.testing.assert_array_equal(got.alpha, [[0, top], [top, 0]])


# --------------------------------------------------------------------------------------------------
# EXIF orientation, ICC, JPEG


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    stored = _random((5, 8, 3), np.uint8)
    path = tmp_path / "o.png"
    PILImage.fromarray(stored).save(path, exif=_exif(orientation))
    got = read_image(path)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(path)))
    np.testing.assert_array_equal(got.pixels, expected)
    exif = PILImage.Exif()
    exif.load(got.exif)
    assert exif[ExifTags.Base.Orientation] == 1
    assert exif[ExifTags.Base.Make] == "esrgan-test"
    # Nothing but the orientation value changed in the EXIF bytes (same tags, same layout).
    assert got.exif == _exif(1)


def test_jpeg_with_orientation_6_and_icc(tmp_path: Path) -> None:
    icc = _icc()
    upright = np.zeros((16, 24, 3), np.uint8)
    upright[:8, :12] = (250, 20, 20)  # red block top-left, so a wrong rotation is obvious
    stored = np.rot90(upright, 1)  # orientation 6 = "rotate 90° clockwise to display"
    path = tmp_path / "photo.jpg"
    PILImage.fromarray(np.ascontiguousarray(stored)).save(path, quality=95, icc_profile=icc, exif=_exif(6))

    got = read_image(path)
    assert got.source_format == "JPEG" and got.mode == "RGB" and got.bit_depth == 8
    assert got.pixels.shape == upright.shape
    np.testing.assert_array_equal(got.pixels, np.asarray(ImageOps.exif_transpose(PILImage.open(path))))
    assert got.pixels[2, 2, 0] > 200 and got.pixels[-2, -2, 0] < 50
    assert got.icc_profile == icc

    out = tmp_path / "out.jpg"
    write_image(out, got)
    again = read_image(out)
    assert again.pixels.shape == upright.shape  # not rotated a second time
    assert np.abs(again.pixels.astype(int) - got.pixels.astype(int)).mean() < 3
    assert again.icc_profile == icc
    assert again.exif == got.exif
    with PILImage.open(out) as im:
        assert im.getexif()[ExifTags.Base.Orientation] == 1


def test_tiff_orientation_tag_is_applied(tmp_path: Path) -> None:
    stored = _random((4, 6), np.uint16)
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="minisblack", extratags=[(274, 3, 1, 8, True)])
    got = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(got.pixels, np.rot90(stored, 1))


def test_lossy_webp_keeps_metadata(tmp_path: Path) -> None:
    image = Image(pixels=np.full((8, 8, 3), 100, np.uint8), icc_profile=_icc(), exif=_exif())
    write_image(tmp_path / "x.webp", image)
    got = read_image(tmp_path / "x.webp")
    assert (got.icc_profile, got.exif) == (image.icc_profile, image.exif)
    assert np.abs(got.pixels.astype(int) - 100).max() <= 2


def test_gray_into_webp_is_stored_as_rgb(tmp_path: Path) -> None:
    gray = _random((4, 5), np.uint8)
    write_image(tmp_path / "g.webp", Image(gray), webp_lossless=True)
    got = read_image(tmp_path / "g.webp")
    np.testing.assert_array_equal(got.pixels, np.repeat(gray[:, :, None], 3, axis=2))


# --------------------------------------------------------------------------------------------------
# refusals and atomic writes


@pytest.mark.parametrize(
    ("name", "image", "hint"),
    [
        ("a.jpg", _make("RGBA", np.uint8), "--ext png"),
        ("a.bmp", _make("LA", np.uint8), "--ext png"),
        ("a.jpg", _make("RGB", np.uint16), "--ext png"),
        ("a.webp", _make("RGB", np.uint16), "--ext png"),
        ("a.gif", _make("RGB", np.uint8), ".png"),
    ],
)
def test_refuses_formats_that_cannot_hold_the_image(
    tmp_path: Path, name: str, image: Image, hint: str
) -> None:
    with pytest.raises(ImageError, match=name) as info:
        write_image(tmp_path / name, image)
    assert hint in str(info.value)
    _no_stray_files(tmp_path, set())


def test_never_overwrites_without_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"precious")
    with pytest.raises(ImageError, match="--overwrite") as info:
        write_image(path, _make("RGB", np.uint8))
    assert str(path) in str(info.value)
    assert path.read_bytes() == b"precious"
    write_image(path, _make("RGB", np.uint8), overwrite=True)
    assert read_image(path).mode == "RGB"
    _no_stray_files(tmp_path, {"x.png"})


def test_refuses_a_file_that_appears_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exists() check and the final move are not one step; the move itself must not replace."""
    path = tmp_path / "x.png"
    real_encode = image_io._encode

    def encode_then_race(*args: object, **kwargs: object) -> bytes:
        path.write_bytes(b"someone else")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(image_io, "_encode", encode_then_race)
    with pytest.raises(ImageError, match="already exists"):
        write_image(path, _make("RGB", np.uint8))
    assert path.read_bytes() == b"someone else"
    _no_stray_files(tmp_path, {"x.png"})


@pytest.mark.parametrize("existing", [False, True])
def test_encoder_failure_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    path = tmp_path / "x.png"
    if existing:
        path.write_bytes(b"old")

    def broken(*args: object, **kwargs: object) -> bytes:
        raise OSError("encoder exploded")

    monkeypatch.setattr(image_io, "_encode", broken)
    with pytest.raises(ImageError, match="encoder exploded"):
        write_image(path, _make("RGB", np.uint8), overwrite=True)
    _no_stray_files(tmp_path, {"x.png"} if existing else set())
    if existing:
        assert path.read_bytes() == b"old"


def test_pillow_encoder_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: PILImage.Image, fp: object, *args: object, **kwargs: object) -> None:
        if isinstance(fp, io.BytesIO):
            fp.write(b"\x89PNG half a file")
        raise OSError("disk full while encoding")

    monkeypatch.setattr(PILImage.Image, "save", broken_save)
    with pytest.raises(ImageError, match="disk full"):
        write_image(tmp_path / "x.png", _make("RGB", np.uint8))
    _no_stray_files(tmp_path, set())


def test_failure_while_moving_into_place_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    monkeypatch.setattr(os, "link", broken_replace)
    with pytest.raises(ImageError, match="No space left"):
        write_image(tmp_path / "x.png", _make("RGB", np.uint8))
    _no_stray_files(tmp_path, set())


def test_creates_missing_output_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "b" / "x.png", _make("L", np.uint8))
    assert read_image(tmp_path / "a" / "b" / "x.png").mode == "L"


# --------------------------------------------------------------------------------------------------
# bad inputs


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(_random((32, 32, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(_random((32, 32, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _png16_bytes() -> bytes:
    return cv2.imencode(".png", _random((32, 32, 3), np.uint16))[1].tobytes()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("text.png", b"this is not an image\n"),
        ("truncated.png", _png_bytes()[:200]),
        ("truncated16.png", _png16_bytes()[:300]),
        ("truncated.jpg", _jpeg_bytes()[:400]),
        ("corrupt.tif", b"II*\x00" + b"\xff" * 40),
        ("header_only.png", _png_bytes()[:40]),
    ],
)
def test_bad_files_raise_image_error_naming_the_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        read_image(tmp_path)


def test_decompression_bomb_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    PILImage.fromarray(_random((20, 20), np.uint8)).save(tmp_path / "big.png")
    tifffile.imwrite(tmp_path / "big.tif", _random((20, 20), np.uint16))
    monkeypatch.setattr(image_io, "MAX_PIXELS", 399)
    for name in ("big.png", "big.tif"):
        with pytest.raises(ImageError, match="MAX_PIXELS"):
            read_image(tmp_path / name)
    monkeypatch.setattr(image_io, "MAX_PIXELS", 400)
    assert read_image(tmp_path / "big.png").pixels.shape == (20, 20)


def test_image_validates_its_arrays() -> None:
    with pytest.raises(ValueError):
        Image(pixels=np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError):
        Image(pixels=np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        Image(pixels=np.zeros((2, 2), np.uint8), alpha=np.zeros((2, 2), np.uint16))
