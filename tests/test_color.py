"""BT.601 colour conversion (MATLAB rgb2ycbcr) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan.ops.color import (
    rgb_to_y,
    rgb_to_y_torch,
    rgb_to_ycbcr,
    rgb_to_ycbcr_torch,
    ycbcr_to_rgb,
    ycbcr_to_rgb_torch,
)


def _pixels(*rgb: tuple[int, int, int]) -> np.ndarray:
    return np.array([list(rgb)], dtype=np.uint8)  # 1×N×3


def test_y_of_primaries_by_hand() -> None:
    img = _pixels((255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    # Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1]
    np.testing.assert_allclose(rgb_to_y(img)[0], [235.0, 16.0, 81.481, 144.553, 40.966], atol=1e-12)
    np.testing.assert_array_equal(rgb_to_y(img, round_uint8=True)[0], [235, 16, 81, 145, 41])


def test_ycbcr_of_primaries_by_hand() -> None:
    img = _pixels((255, 255, 255), (255, 0, 0), (0, 0, 255))
    expected = [
        [235.0, 128.0, 128.0],
        [81.481, 128 - 37.797, 240.0],
        [40.966, 240.0, 128 - 18.214],
    ]
    np.testing.assert_allclose(rgb_to_ycbcr(img)[0], expected, atol=1e-12)


def test_gray_level_by_hand() -> None:
    # R = G = B = v → Y = 16 + 219·v/255; v = 128 → 125.929…, rounds to 126
    img = _pixels((128, 128, 128))
    assert rgb_to_y(img)[0, 0] == pytest.approx(16 + 219 * 128 / 255, abs=1e-12)
    assert rgb_to_y(img, round_uint8=True)[0, 0] == 126


def test_input_dtypes_share_one_output_scale() -> None:
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(8, 9, 3), dtype=np.uint8)
    y = rgb_to_y(u8)
    np.testing.assert_allclose(rgb_to_y(u8 / 255.0), y, atol=1e-12)  # float [0, 1]
    np.testing.assert_allclose(rgb_to_y((u8 / 255.0).astype(np.float32)), y, atol=1e-4)
    np.testing.assert_allclose(rgb_to_y(u8.astype(np.uint16) * 257), y, atol=1e-12)  # uint16 0…65535
    assert y.dtype == np.float64 and y.shape == (8, 9)
    assert y.min() >= 16 and y.max() <= 235


def test_rounding_matches_rounding_the_float_y() -> None:
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_y(u8, round_uint8=True), np.floor(rgb_to_y(u8) + 0.5))


def test_round_trip() -> None:
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(u8)), u8, atol=1e-10)


def test_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_y(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(TypeError):
        rgb_to_y(np.zeros((4, 4, 3), dtype=np.int32))


def test_torch_versions_match_numpy() -> None:
    rng = np.random.default_rng(3)
    u8 = rng.integers(0, 256, size=(2, 6, 5, 3), dtype=np.uint8)
    x = torch.from_numpy(u8 / 255.0).permute(0, 3, 1, 2)  # N×3×H×W float64 in [0, 1]
    y = rgb_to_y_torch(x)
    assert y.shape == (2, 1, 6, 5)
    ycc = rgb_to_ycbcr_torch(x)
    for i in range(2):
        np.testing.assert_allclose(y[i, 0].numpy() * 255, rgb_to_y(u8[i]), atol=1e-10)
        np.testing.assert_allclose(ycc[i].permute(1, 2, 0).numpy() * 255, rgb_to_ycbcr(u8[i]), atol=1e-10)
    torch.testing.assert_close(ycbcr_to_rgb_torch(ycc), x, atol=1e-12, rtol=0)
    y32 = rgb_to_y_torch(x.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y, atol=1e-6, rtol=0)
