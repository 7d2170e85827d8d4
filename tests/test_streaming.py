"""Streaming outputs too large for memory: streamed PNG equals the in-memory output, bounded memory, no
partial files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PIL import ImageCms
from torch import nn

from esrgan.archs import RRDBNet
from esrgan.errors import EsrganError, ImageError
from esrgan.inference import streaming, tiling
from esrgan.inference import upscaler as upscaler_module
from esrgan.inference.streaming import needs_streaming, upscale_to_png
from esrgan.inference.tiling import plan_axis, plan_tiles, tiled_forward, tiled_forward_bands
from esrgan.inference.upscaler import Upscaler
from esrgan.io import limits
from esrgan.io.images import Image, read_image, write_image
from esrgan.io.png_stream import PngStreamWriter

RNG = np.random.default_rng(11)


def _tiny_rrdbnet(scale: int = 4, channels: int = 3) -> RRDBNet:
    """A 1-block RRDBNet with weights large enough that the output varies (and tile borders would show)."""
    net = RRDBNet(
        num_in_ch=channels, num_out_ch=channels, num_feat=8, num_block=1, num_grow_ch=4, scale=scale
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.copy_(
                torch.randn(p.shape, generator=g) * (0.75 * (2.0 / fan_in) ** 0.5 if p.ndim > 1 else 0.01)
            )
        net.conv_last.bias.fill_(0.5)  # centre the output in [0, 1] so that little of it is clamped
    return net.eval()


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _image(mode: str, dtype: type, height: int = 40, width: int = 60, icc: bool = False) -> Image:
    top = np.iinfo(dtype).max
    # Smooth content plus noise: realistic enough that the model output is neither flat nor saturated.
    yy, xx = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.3 * np.sin(yy / 5.0)[..., None] * np.cos(xx[..., None] / 7.0 + np.arange(3))
    noisy = np.clip(base + RNG.normal(0, 0.1, base.shape), 0, 1)
    color = np.rint(noisy * top).astype(dtype)
    pixels = color[:, :, 0].copy() if mode.startswith("L") else color
    alpha = RNG.integers(0, top + 1, (height, width), dtype=dtype) if mode.endswith("A") else None
    return Image(pixels=pixels, alpha=alpha, icc_profile=_icc() if icc else None)


def _assert_same_file_content(streamed: Path, in_memory: Path) -> None:
    a, b = read_image(streamed), read_image(in_memory)
    assert a.pixels.dtype == b.pixels.dtype and a.pixels.shape == b.pixels.shape
    np.testing.assert_array_equal(a.pixels, b.pixels)
    if b.alpha is None:
        assert a.alpha is None
    else:
        np.testing.assert_array_equal(a.alpha, b.alpha)
    assert a.icc_profile == b.icc_profile


def _stream_and_compare(up: Upscaler, image: Image, tmp_path: Path) -> Image:
    upscale_to_png(up, image, tmp_path / "streamed.png")
    expected = up.upscale_image(image)
    write_image(tmp_path / "memory.png", expected)
    _assert_same_file_content(tmp_path / "streamed.png", tmp_path / "memory.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.png", "streamed.png"]  # no temporary left
    return expected


# --------------------------------------------------------------------------------------------------
# tiling: bands are the whole output, computed the same way


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"), [(40, 60, 16, 2), (37, 23, 13, 3), (9, 9, 16, 2)]
)
def test_bands_concatenate_to_tiled_forward_and_arrive_early(
    height: int, width: int, tile: int, overlap: int
) -> None:
    net = _tiny_rrdbnet()
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(3))
    calls = 0

    def model_fn(t: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        with torch.no_grad():
            return net(t)

    whole = tiled_forward(model_fn, x, scale=4, tile=tile, overlap=overlap)
    calls = 0
    tiles_per_row = len(plan_axis(width, tile, overlap))
    row_starts, calls_at_yield, bands = [], [], []
    for row0, band in tiled_forward_bands(model_fn, x, scale=4, tile=tile, overlap=overlap):
        row_starts.append(row0)
        calls_at_yield.append(calls)
        bands.append(band.clone())
    assert row_starts[0] == 0 and torch.equal(torch.cat(bands, dim=2), whole)  # bit-identical
    assert np.diff(row_starts).tolist() == [b.shape[2] for b in bands[:-1]]
    # One band per tile row, each yielded as soon as its tile row is done (streaming, not at the end).
    assert calls_at_yield == [tiles_per_row * (i + 1) for i in range(len(plan_axis(height, tile, overlap)))]


def test_band_accumulator_holds_at_most_one_tile_row_of_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory bound: every accumulator the band generator allocates is at most ``tile · scale`` output rows
    (< (tile + 1) · scale) of the full output width, for a whole upscale through the `Upscaler`."""
    allocated: list[tuple[int, int]] = []
    new_band = tiling._new_band

    def spy(n: int, channels: int, rows: int, width: int, device: torch.device) -> torch.Tensor:
        allocated.append((rows, width))
        return new_band(n, channels, rows, width, device)

    def no_whole_output(*args: object, **kwargs: object) -> None:
        raise AssertionError("streaming must not build the whole output")

    monkeypatch.setattr(tiling, "_new_band", spy)
    monkeypatch.setattr(upscaler_module, "tiled_forward", no_whole_output)
    image = _image("RGBA", np.uint8, height=70, width=50)
    up = Upscaler(_tiny_rrdbnet(), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    rows_seen = 0
    for row0, rows in up.upscale_image_bands(image):
        assert row0 == rows_seen and rows.shape[1:] == (200, 4) and rows.dtype == np.uint8
        rows_seen += rows.shape[0]
    assert rows_seen == 280
    tile_rows = len(plan_axis(70, 16, 2))
    assert len(allocated) == 2 * tile_rows  # colour and alpha: one accumulator per tile row each
    assert max(rows for rows, _ in allocated) <= 16 * 4 < (16 + 1) * 4
    assert {width for _, width in allocated} == {50 * 4}


# --------------------------------------------------------------------------------------------------
# streamed PNG == in-memory output


@pytest.mark.parametrize(
    ("mode", "dtype"),
    [
        ("RGB", np.uint8),
        ("RGBA", np.uint8),
        ("L", np.uint8),
        ("LA", np.uint8),
        ("RGB", np.uint16),
        ("LA", np.uint16),
    ],
)
def test_streamed_png_equals_in_memory_output(mode: str, dtype: type, tmp_path: Path) -> None:
    image = _image(mode, dtype, icc=mode == "RGB")
    up = Upscaler(_tiny_rrdbnet(), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    assert len(plan_tiles(40, 60, 16, 2)) >= 12  # several tile rows and columns, 40 and 60 not multiples
    expected = _stream_and_compare(up, image, tmp_path)
    top = np.iinfo(dtype).max
    # The comparison has teeth: the output spans many levels and little of it is clamped.
    assert expected.pixels.std() > 0.05 * top
    assert np.mean((expected.pixels == 0) | (expected.pixels == top)) < 0.1


def test_streamed_png_equals_in_memory_with_bicubic_alpha_padding_and_auto_tile(tmp_path: Path) -> None:
    # ×2 RRDBNet needs inputs divisible by 2 (pixel unshuffle): odd sizes get padded and cropped.
    net = _tiny_rrdbnet(scale=2)
    assert net.size_multiple == 2
    image = _image("RGBA", np.uint8, height=41, width=59)
    _stream_and_compare(
        Upscaler(net, tile=20, tile_overlap=2, alpha="bicubic", device="cpu", precision="fp32"),
        image,
        tmp_path,
    )
    for p in tmp_path.iterdir():
        p.unlink()
    # "auto" on a small image: the same tile as in memory (the whole image here).
    _stream_and_compare(
        Upscaler(net, tile="auto", tile_overlap=2, device="cpu", precision="fp32"), image, tmp_path
    )


def test_one_channel_model_streams_each_channel(tmp_path: Path) -> None:
    up = Upscaler(_tiny_rrdbnet(channels=1), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    _stream_and_compare(up, _image("RGB", np.uint8, height=30, width=34), tmp_path)


def test_whole_image_setting_streams_with_a_tile_bounded_by_the_band_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = _tiny_rrdbnet()
    monkeypatch.setattr(upscaler_module, "STREAM_BAND_BYTES", 1)  # forces the smallest tile
    up = Upscaler(net, tile=0, tile_overlap=2, device="cpu", precision="fp32")
    sizes: list[tuple[int, int]] = []
    run_model = up._run_model

    def spy(x: torch.Tensor) -> torch.Tensor:
        sizes.append(tuple(x.shape[2:]))
        return run_model(x)

    up._run_model = spy  # type: ignore[method-assign]
    image = _image("RGB", np.uint8)
    upscale_to_png(up, image, tmp_path / "streamed.png")
    smallest = up.memory.min_tile
    assert len(sizes) > 1 and max(max(s) for s in sizes) <= smallest
    # The same pixels as in memory with that tile.
    write_image(
        tmp_path / "memory.png",
        Upscaler(net, tile=smallest, tile_overlap=2, device="cpu", precision="fp32").upscale_image(image),
    )
    _assert_same_file_content(tmp_path / "streamed.png", tmp_path / "memory.png")


def test_auto_tile_halves_after_out_of_memory_before_the_first_band(tmp_path: Path) -> None:
    class OomAbove32(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _tiny_rrdbnet()
            self.scale = 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if max(x.shape[2:]) > 32:
                raise RuntimeError("CUDA out of memory (simulated)")
            return self.net(x)

    model = OomAbove32()
    image = _image("RGB", np.uint8)
    upscale_to_png(
        Upscaler(model, tile="auto", tile_overlap=2, device="cpu", precision="fp32"),
        image,
        tmp_path / "streamed.png",
    )
    write_image(
        tmp_path / "memory.png",
        Upscaler(model, tile=32, tile_overlap=2, device="cpu", precision="fp32").upscale_image(image),
    )
    _assert_same_file_content(tmp_path / "streamed.png", tmp_path / "memory.png")


# --------------------------------------------------------------------------------------------------
# the PNG writer


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_writer_output_decodes_with_pillow(mode: str, channels: int, tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, (37, 23, channels), dtype=np.uint8)
    pixels[10:20] = pixels[9]  # repeated rows: the Up filter across a band boundary matters
    path = tmp_path / "out.png"
    icc = _icc()
    with PngStreamWriter(path, width=23, height=37, channels=channels, bit_depth=8, icc_profile=icc) as w:
        for r0, r1 in [(0, 1), (1, 15), (15, 15), (15, 37)]:
            w.write_rows(pixels[r0:r1] if channels > 1 else pixels[r0:r1, :, 0])
    with PILImage.open(path) as im:
        im.verify()
    with PILImage.open(path) as im:
        assert im.mode == mode and im.size == (23, 37) and im.info.get("icc_profile") == icc
        np.testing.assert_array_equal(np.asarray(im).reshape(37, 23, channels), pixels)


def test_writer_16_bit_gray_decodes_with_pillow_and_rgba_with_read_image(tmp_path: Path) -> None:
    gray = RNG.integers(0, 65536, (21, 17), dtype=np.uint16)
    with PngStreamWriter(tmp_path / "g.png", width=17, height=21, channels=1, bit_depth=16) as w:
        w.write_rows(gray[:8])
        w.write_rows(gray[8:])
    with PILImage.open(tmp_path / "g.png") as im:
        np.testing.assert_array_equal(np.asarray(im).astype(np.uint16), gray)
    rgba = RNG.integers(0, 65536, (21, 17, 4), dtype=np.uint16)
    with PngStreamWriter(tmp_path / "c.png", width=17, height=21, channels=4, bit_depth=16) as w:
        for r0 in range(0, 21, 5):
            w.write_rows(rgba[r0 : r0 + 5])
    back = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(back.pixels, rgba[:, :, :3])
    np.testing.assert_array_equal(back.alpha, rgba[:, :, 3])


def test_writer_leaves_nothing_when_rows_are_missing_or_the_block_fails(tmp_path: Path) -> None:
    rows = np.zeros((4, 5, 3), np.uint8)
    with (
        pytest.raises(ImageError, match="only 4 of 6 rows"),
        PngStreamWriter(tmp_path / "a.png", width=5, height=6, channels=3, bit_depth=8) as w,
    ):
        w.write_rows(rows)
    with (
        pytest.raises(ValueError, match="shape"),
        PngStreamWriter(tmp_path / "b.png", width=5, height=6, channels=3, bit_depth=8) as w,
    ):
        w.write_rows(rows.astype(np.uint16))
    with (
        pytest.raises(ValueError, match="7 rows"),
        PngStreamWriter(tmp_path / "c.png", width=5, height=6, channels=3, bit_depth=8) as w,
    ):
        w.write_rows(rows)
        w.write_rows(rows[:3])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# atomic output: no partial file, no replaced file


class FailsOnThirdTile(nn.Module):
    def __init__(self, on_third: str = "raise", path: Path | None = None) -> None:
        super().__init__()
        self.net = _tiny_rrdbnet()
        self.scale = 4
        self.calls = 0
        self.on_third = on_third
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 3:
            if self.on_third == "raise":
                raise ValueError("model failure on the third tile")
            assert self.path is not None
            self.path.write_bytes(b"someone else's file")  # appears while the output is being written
        return self.net(x)


def test_error_mid_stream_leaves_no_file(tmp_path: Path) -> None:
    model = FailsOnThirdTile()
    up = Upscaler(model, tile=16, tile_overlap=2, device="cpu", precision="fp32")
    image = _image("RGB", np.uint8, height=40, width=24)
    assert len(plan_axis(24, 16, 2)) == 2  # 2 tiles per row: the first band is written before tile 3 fails
    with pytest.raises(ValueError, match="third tile"):
        upscale_to_png(up, image, tmp_path / "out.png")
    assert model.calls == 3 and list(tmp_path.iterdir()) == []


def test_existing_file_is_never_replaced(tmp_path: Path) -> None:
    dst = tmp_path / "out.png"
    dst.write_bytes(b"precious")
    up = Upscaler(_tiny_rrdbnet(), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    image = _image("RGB", np.uint8, height=20, width=20)
    with pytest.raises(ImageError, match="already exists"):
        upscale_to_png(up, image, dst)
    assert dst.read_bytes() == b"precious" and list(tmp_path.iterdir()) == [dst]
    # A file that appears while streaming is not replaced either.
    late = tmp_path / "late.png"
    up = Upscaler(FailsOnThirdTile("create", late), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    with pytest.raises(ImageError, match="already exists"):
        upscale_to_png(up, _image("RGB", np.uint8, height=40, width=30), late)
    assert late.read_bytes() == b"someone else's file" and sorted(tmp_path.iterdir()) == [late, dst]
    # overwrite=True replaces it.
    up = Upscaler(_tiny_rrdbnet(), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    upscale_to_png(up, image, dst, overwrite=True)
    assert read_image(dst).pixels.shape == (80, 80, 3)


# --------------------------------------------------------------------------------------------------
# when to stream, and what cannot


def test_settings_that_need_the_whole_output_cannot_stream(tmp_path: Path) -> None:
    image = _image("RGB", np.uint8, height=8, width=8)
    up = Upscaler(_tiny_rrdbnet(), device="cpu", back_projection=2, precision="fp32")
    assert not up.can_stream
    with pytest.raises(EsrganError, match="back-projection"):
        upscale_to_png(up, image, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
    # an outscale resize streams band by band (tests/test_hostile_inputs.py compares the pixels)
    assert Upscaler(_tiny_rrdbnet(), outscale=2, device="cpu", precision="fp32").can_stream
    assert Upscaler(_tiny_rrdbnet(), outscale=4, device="cpu", precision="fp32").can_stream
    with pytest.raises(ImageError, match="only PNG"):
        upscale_to_png(Upscaler(_tiny_rrdbnet(), device="cpu", precision="fp32"), image, tmp_path / "out.jpg")


def test_needs_streaming_for_large_png_outputs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image("RGB", np.uint8, height=8, width=8)  # 32 × 32 = 1024 output pixels at ×4
    up = Upscaler(_tiny_rrdbnet(), device="cpu", precision="fp32")
    assert not needs_streaming(up, image, "out.png")
    monkeypatch.setattr(limits, "STREAM_THRESHOLD_PIXELS", 1023)
    assert needs_streaming(up, image, "out.png") and needs_streaming(up, image, Path("OUT.PNG"))
    assert not needs_streaming(up, image, "out.jpg") and not needs_streaming(up, image, "out.tif")
    assert not needs_streaming(
        Upscaler(_tiny_rrdbnet(), outscale=3, device="cpu", precision="fp32"), image, "out.png"
    )


def test_upscale_files_streams_big_png_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from esrgan.jobs.upscale import upscale_files

    image = _image("RGB", np.uint8, height=24, width=36)
    src = tmp_path / "in.png"
    write_image(src, image)
    up = Upscaler(_tiny_rrdbnet(), tile=16, tile_overlap=2, device="cpu", precision="fp32")
    upscale_files(up, [src], tmp_path / "memory", progress=False)
    streamed_calls: list[Path] = []
    real = streaming.upscale_to_png

    def spy(upscaler: Upscaler, image: Image, dst: Path, *, overwrite: bool = False) -> None:
        streamed_calls.append(Path(dst))
        real(upscaler, image, dst, overwrite=overwrite)

    monkeypatch.setattr(limits, "STREAM_THRESHOLD_PIXELS", 100)
    monkeypatch.setattr("esrgan.jobs.upscale.upscale_to_png", spy)
    summary = upscale_files(up, [src], tmp_path / "streamed", progress=False)
    assert [dst for _, dst in summary.done] == streamed_calls == [tmp_path / "streamed" / "in_out.png"]
    np.testing.assert_array_equal(
        read_image(streamed_calls[0]).pixels, read_image(tmp_path / "memory" / "in_out.png").pixels
    )
