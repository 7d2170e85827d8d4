"""`Upscaler`: exact results with a nearest-neighbour "model" for every image kind, tiling, outscale, OOM."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn

from esrgan.errors import ConfigError, EsrganError
from esrgan.inference import memory as memory_module
from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import Image

RNG = np.random.default_rng(7)


class Nearest(nn.Module):
    """A 'model' whose output is exactly known: nearest-neighbour ×scale (plus a dummy conv for a device)."""

    def __init__(self, scale: int = 2, channels: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.num_in_ch = channels
        self.dummy = nn.Conv2d(channels, channels, 1)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == self.num_in_ch
        self.sizes.append((x.shape[2], x.shape[3]))
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


class SmallReceptiveFieldNet(nn.Module):
    """Radius 3 input pixels (see tests/test_tiling.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = 2
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 3, 3, padding=1)
        self.conv3 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(F.leaky_relu(self.conv1(x), 0.2))
        return torch.sigmoid(self.conv3(F.interpolate(x, scale_factor=2, mode="nearest")))


def _repeat(a: np.ndarray, s: int) -> np.ndarray:
    return np.repeat(np.repeat(a, s, axis=0), s, axis=1)


def _random(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return RNG.random(shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


# --------------------------------------------------------------------------------------------------
# exact results with a nearest-neighbour model


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 2), (5, 7, 3), (5, 7, 4)])
@pytest.mark.parametrize("tile", [0, 4])
def test_arrays_are_repeated_exactly(dtype: type, shape: tuple[int, ...], tile: int) -> None:
    array = _random(shape, dtype)
    up = Upscaler(Nearest(2), tile=tile, tile_overlap=1, precision="fp32")
    out = up.upscale(array)
    assert out.dtype == array.dtype and out.ndim == array.ndim
    if dtype == np.float32:
        np.testing.assert_allclose(out, _repeat(array, 2), atol=1e-6)
    else:
        np.testing.assert_array_equal(out, _repeat(array, 2))


def test_16_bit_precision_is_kept() -> None:
    values = np.array([[0, 1, 2, 257], [32767, 32768, 65534, 65535]], np.uint16)
    out = Upscaler(Nearest(3), precision="fp32").upscale(values)
    np.testing.assert_array_equal(out, _repeat(values, 3))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16"])
def test_pil_images_keep_mode_and_metadata(mode: str) -> None:
    if mode == "I;16":
        array = _random((6, 5), np.uint16)
        image = PILImage.frombytes("I;16", (5, 6), array.astype("<u2").tobytes())
    else:
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        array = (
            _random((6, 5, channels), np.uint8).squeeze(-1)
            if channels == 1
            else _random((6, 5, channels), np.uint8)
        )
        image = PILImage.frombytes(mode, (5, 6), array.tobytes())
    image.info["icc_profile"] = b"fake icc"
    out = Upscaler(Nearest(2), precision="fp32").upscale(image)
    assert isinstance(out, PILImage.Image)
    assert out.mode == mode and out.size == (10, 12)
    np.testing.assert_array_equal(np.asarray(out), _repeat(np.asarray(image), 2))
    assert out.info["icc_profile"] == b"fake icc"


def test_pil_palette_with_transparency_comes_back_rgba() -> None:
    image = PILImage.frombytes("P", (2, 1), bytes([0, 1]))
    image.putpalette([10, 20, 30, 40, 50, 60])
    image.info["transparency"] = bytes([0, 255])
    out = Upscaler(Nearest(2), precision="fp32").upscale(image)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out), _repeat(np.asarray(image.convert("RGBA")), 2))


@pytest.mark.parametrize(
    ("mode", "dtype"), [("L", np.uint8), ("LA", np.uint16), ("RGB", np.uint16), ("RGBA", np.uint8)]
)
def test_image_objects_keep_dtype_alpha_and_metadata(mode: str, dtype: type) -> None:
    color = _random((4, 6) if mode.startswith("L") else (4, 6, 3), dtype)
    alpha = _random((4, 6), dtype) if mode.endswith("A") else None
    image = Image(color, alpha, icc_profile=b"icc", exif=b"Exif\x00\x00MM", source_format="PNG")
    out = Upscaler(Nearest(4), tile=4, tile_overlap=1, precision="fp32").upscale_image(image)
    assert (out.mode, out.bit_depth, out.icc_profile, out.exif, out.source_format) == (
        mode,
        image.bit_depth,
        b"icc",
        b"Exif\x00\x00MM",
        "PNG",
    )
    np.testing.assert_array_equal(out.pixels, _repeat(color, 4))
    if alpha is not None:
        np.testing.assert_array_equal(out.alpha, _repeat(alpha, 4))


def test_gray_goes_through_a_three_channel_model_and_back_with_bt601() -> None:
    class SwapChannels(nn.Module):
        scale = 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x[:, :1] * 0.5, x[:, 1:2], x[:, 2:] * 0], dim=1)

    gray = np.full((3, 3), 200, np.uint8)
    out = Upscaler(SwapChannels(), precision="fp32").upscale(gray)
    expected = round((0.299 * 0.5 + 0.587) * 200)  # BT.601 of (100, 200, 0)
    np.testing.assert_array_equal(out, np.full((3, 3), expected, np.uint8))


def test_one_channel_model_gets_each_channel() -> None:
    model = Nearest(2, channels=1)
    rgb = _random((3, 4, 3), np.uint8)
    np.testing.assert_array_equal(Upscaler(model, precision="fp32").upscale(rgb), _repeat(rgb, 2))


def test_bicubic_alpha() -> None:
    rgba = _random((6, 6, 4), np.uint8)
    rgba[:, :, 3] = np.arange(6, dtype=np.uint8)[None, :] * 40
    out = Upscaler(Nearest(2), alpha="bicubic", precision="fp32").upscale(rgba)
    np.testing.assert_array_equal(out[:, :, :3], _repeat(rgba[:, :, :3], 2))
    reference = F.interpolate(
        torch.from_numpy(rgba[:, :, 3].astype(np.float32) / 255)[None, None], scale_factor=2, mode="bicubic"
    ).clamp(0, 1)
    expected = (reference[0, 0] * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(out[:, :, 3], expected)
    assert not np.array_equal(expected, _repeat(rgba[:, :, 3], 2))  # really not the model's answer


def test_output_is_clamped() -> None:
    class Overshoot(nn.Module):
        scale = 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 4 - 1.5

    x = torch.tensor([0.0, 0.3, 0.5, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    y = Upscaler(Overshoot(), precision="fp32").upscale_tensor(x)
    np.testing.assert_allclose(y[0, 0, 0].numpy(), [0.0, 0.0, 0.5, 1.0])


# --------------------------------------------------------------------------------------------------
# tiling, size multiples, outscale


def test_tiled_equals_whole_image() -> None:
    image = _random((29, 41, 3), np.uint8)
    whole = Upscaler(SmallReceptiveFieldNet(), precision="fp32").upscale(image)
    tiled = Upscaler(SmallReceptiveFieldNet(), tile=16, tile_overlap=3, precision="fp32").upscale(image)
    np.testing.assert_array_equal(tiled, whole)


def test_models_needing_size_multiples_get_padded_input() -> None:
    model = Nearest(2)
    model.size_multiple = 4
    image = _random((5, 7, 3), np.uint8)
    for tile in (0, 12):
        model.sizes.clear()
        out = Upscaler(model, tile=tile, tile_overlap=1, precision="fp32").upscale(image)
        np.testing.assert_array_equal(out, _repeat(image, 2))
        assert model.sizes and all(h % 4 == 0 and w % 4 == 0 for h, w in model.sizes)


@pytest.mark.parametrize("outscale", [1.5, 2.0, 2.5, 3.3, 0.5])
def test_outscale_gives_exact_size(outscale: float) -> None:
    image = _random((15, 22, 3), np.uint16)
    out = Upscaler(Nearest(2), outscale=outscale, precision="fp32").upscale(image)
    assert out.shape == (round(15 * outscale), round(22 * outscale), 3)
    assert out.dtype == np.uint16


def test_outscale_equal_to_model_scale_changes_nothing_and_constants_stay_exact() -> None:
    image = _random((8, 9, 3), np.uint16)
    np.testing.assert_array_equal(
        Upscaler(Nearest(2), outscale=2, precision="fp32").upscale(image), _repeat(image, 2)
    )
    flat = np.full((8, 9), 12345, np.uint16)
    np.testing.assert_array_equal(
        Upscaler(Nearest(2), outscale=1.7, precision="fp32").upscale(flat), np.full((14, 15), 12345)
    )


def test_back_projection_makes_the_output_consistent_with_the_input() -> None:
    from esrgan.ops.back_projection import back_project, lr_consistency_rmse

    lr = _random((12, 10, 4), np.uint8)
    lr[:, :, 3] = 200
    plain = Upscaler(Nearest(2), precision="fp32").upscale(lr)
    projected = Upscaler(Nearest(2), back_projection=5, precision="fp32").upscale(lr)
    x = torch.from_numpy(lr[:, :, :3].astype(np.float32) / 255).permute(2, 0, 1)[None]
    expected = back_project(F.interpolate(x, scale_factor=2, mode="nearest"), x, scale=2, iterations=5)
    expected = (expected[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(projected[:, :, :3], expected)
    np.testing.assert_array_equal(projected[:, :, 3], 200)  # alpha is not back-projected
    before = lr_consistency_rmse(plain[:, :, :3] / 255, lr[:, :, :3] / 255, scale=2)
    after = lr_consistency_rmse(projected[:, :, :3] / 255, lr[:, :, :3] / 255, scale=2)
    assert after < 0.7 * before


# --------------------------------------------------------------------------------------------------
# out of memory


class OomAbove(Nearest):
    """Raises an out-of-memory error for inputs with more than `limit` pixels."""

    def __init__(self, limit: int, error: type[BaseException] = torch.OutOfMemoryError) -> None:
        super().__init__(2)
        self.limit = limit
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append((x.shape[2], x.shape[3]))
        if x.shape[2] * x.shape[3] > self.limit:
            raise self.error("CUDA out of memory. Tried to allocate 20.00 GiB")
        return F.interpolate(x, scale_factor=2, mode="nearest")


def _unlimited_cpu_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "CPU_ACTIVATION_BUDGET", 1 << 40)
    monkeypatch.setattr(memory_module, "CPU_CACHE_TILES", {"fp32": 1 << 20, "bf16": 1 << 20})


def test_auto_tiles_on_the_cpu_stay_cache_sized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 1 << 40)
    model = OomAbove(limit=10**9)
    Upscaler(model, tile="auto", device="cpu", precision="fp32").upscale(_random((200, 210, 3), np.uint8))
    assert model.sizes == [(200, 210)]  # about one cache-sized tile: whole, no overlap work
    model.sizes.clear()
    Upscaler(model, tile="auto", device="cpu", precision="fp32").upscale(_random((300, 500, 3), np.uint8))
    assert len(model.sizes) > 1 and max(max(s) for s in model.sizes) <= memory_module.CPU_CACHE_TILES["fp32"]


def test_bf16_auto_tiles_on_the_cpu_are_larger(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 feature maps take half the bytes, so its cache-sized tiles are larger: a 300×350 input runs whole
    in bf16 and in tiles in fp32."""
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 1 << 40)
    sizes = {}
    for precision in ("fp32", "bf16"):
        model = OomAbove(limit=10**9)
        Upscaler(model, tile="auto", device="cpu", precision=precision).upscale(
            _random((300, 350, 3), np.uint8)
        )
        sizes[precision] = model.sizes
    assert sizes["bf16"] == [(300, 350)]
    assert (
        len(sizes["fp32"]) > 1 and max(max(s) for s in sizes["fp32"]) <= memory_module.CPU_CACHE_TILES["fp32"]
    )


def test_auto_tile_retries_smaller_after_out_of_memory(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 1 << 40)
    _unlimited_cpu_tiles(monkeypatch)
    model = OomAbove(limit=40 * 40)
    image = _random((100, 90, 3), np.uint8)
    with caplog.at_level(logging.WARNING):
        out = Upscaler(model, tile="auto", tile_overlap=2, precision="fp32").upscale(image)
    np.testing.assert_array_equal(out, _repeat(image, 2))
    assert model.sizes[0] == (100, 90)  # first try: the whole image fits the (fake) free memory
    assert max(h * w for h, w in model.sizes[-4:]) <= 40 * 40
    assert "retrying" in caplog.text


def test_auto_tile_size_follows_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    model = OomAbove(limit=10**9)
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 64 << 20)
    Upscaler(model, tile="auto", tile_overlap=2, precision="fp32").upscale(_random((300, 300, 3), np.uint8))
    small = max(model.sizes)
    model.sizes.clear()
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 1 << 40)
    _unlimited_cpu_tiles(monkeypatch)
    Upscaler(model, tile="auto", tile_overlap=2, precision="fp32").upscale(_random((300, 300, 3), np.uint8))
    assert small[0] < 300 and max(model.sizes) == (300, 300)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError])
def test_auto_tile_gives_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch, error: type) -> None:
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 1 << 40)
    _unlimited_cpu_tiles(monkeypatch)
    with pytest.raises(EsrganError, match="out of memory"):
        Upscaler(OomAbove(limit=4, error=error), tile="auto", tile_overlap=2, precision="fp32").upscale(
            _random((80, 80, 3), np.uint8)
        )


@pytest.mark.parametrize("tile", [0, 32])
def test_fixed_tile_out_of_memory_is_a_clear_error(tile: int) -> None:
    model = OomAbove(limit=4)
    with pytest.raises(EsrganError, match="--tile"):
        Upscaler(model, tile=tile, tile_overlap=2, precision="fp32").upscale(_random((80, 80, 3), np.uint8))
    assert len(model.sizes) == 1  # no silent retries with a size the user chose


def test_other_errors_are_never_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "_free_memory", lambda device: 1 << 40)
    _unlimited_cpu_tiles(monkeypatch)
    model = OomAbove(limit=4, error=ValueError)
    with pytest.raises(ValueError, match="CUDA out of memory"):
        Upscaler(model, tile="auto", precision="fp32").upscale(_random((80, 80, 3), np.uint8))
    assert len(model.sizes) == 1


# --------------------------------------------------------------------------------------------------
# configuration


def test_half_on_cpu_falls_back_to_fp32_with_a_warning(caplog) -> None:
    model = Nearest(2)
    with caplog.at_level(logging.WARNING):
        up = Upscaler(model, device="cpu", half=True)
    assert up.precision == "fp32" and model.dummy.weight.dtype == torch.float32
    assert "fp16" in caplog.text


def test_model_is_put_in_eval_mode() -> None:
    model = Nearest(2).train()
    Upscaler(model, precision="fp32")
    assert not model.training


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tile": 30, "tile_overlap": 10},
        {"tile": -1},
        {"tile": "big"},
        {"alpha": "linear"},
        {"outscale": 0},
        {"outscale": float("nan")},
        {"tile_overlap": -2},
        {"back_projection": -1},
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Upscaler(Nearest(2), **kwargs, precision="fp32")


def test_model_without_scale_is_rejected() -> None:
    with pytest.raises(ConfigError, match="scale"):
        Upscaler(nn.Conv2d(3, 3, 1), precision="fp32")
