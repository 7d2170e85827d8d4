"""MATLAB bicubic imresize: SPEC §8.3 test vectors, reference ≡ torch fast path, invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan.ops.matlab_resize import (
    cubic,
    downscale_uint8,
    imresize,
    imresize_reference,
    modcrop,
    output_size,
    resize_weights,
    round_half_away,
)

# ---------------------------------------------------------------------------------------- SPEC §8.3


def test_cubic_kernel_values() -> None:
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5])
    # 1.5|x|³ − 2.5|x|² + 1 inside 1; −0.5|x|³ + 2.5|x|² − 4|x| + 2 between 1 and 2; 0 outside
    expected = [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625, -0.0625]
    np.testing.assert_allclose(cubic(x), expected, atol=1e-15)


def test_weights_quarter_scale_interior() -> None:
    weights, _ = resize_weights(64, 0.25)
    assert weights.shape == (16, 16)
    half = [
        -0.00170898,
        -0.01098633,
        -0.01831055,
        -0.01196289,
        0.02270508,
        0.09741211,
        0.18188477,
        0.24096680,
    ]
    np.testing.assert_allclose(weights[8], half + half[::-1], atol=1e-6)


def test_weights_half_scale_interior() -> None:
    weights, _ = resize_weights(64, 0.5)
    assert weights.shape == (32, 8)
    half = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
    np.testing.assert_allclose(weights[8], half + half[::-1], atol=1e-6)


def test_weights_upscale_x4_phases() -> None:
    weights, _ = resize_weights(16, 4)
    assert weights.shape == (64, 4)
    a = [-0.04394531, 0.38964844, 0.72753906, -0.07324219]
    b = [-0.00683594, 0.09082031, 0.96386719, -0.04785156]
    np.testing.assert_allclose(weights[8:12], [a, b, b[::-1], a[::-1]], atol=1e-6)


def test_ramp_half_scale() -> None:
    ramp = (8 * np.arange(8)[:, None] + np.arange(8)[None, :]).astype(np.float64)
    out = imresize_reference(ramp, 0.5)
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out[0], [4.042969, 6.082031, 8.105469, 10.144531], atol=1e-6)
    np.testing.assert_allclose(out[-1], [52.855469, 54.894531, 56.917969, 58.957031], atol=1e-6)
    np.testing.assert_allclose(imresize(ramp, 0.5), out, atol=1e-12)


def test_mirroring_includes_the_edge_sample() -> None:
    # 8 pixels at ×1/2: the first output pixel reads 0-based −3…4; mirroring with the edge repeated maps
    # −1 → 0, −2 → 1, −3 → 2 (MATLAB indexes [1..n, n..1]).
    _, indices = resize_weights(8, 0.5)
    assert indices[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 4]
    assert indices[-1].tolist() == [3, 4, 5, 6, 7, 7, 6, 5]


def test_weight_rows_sum_to_one() -> None:
    for n, s in [(50, 0.25), (51, 1 / 3), (7, 4), (9, 0.75), (5, 1.7)]:
        weights, indices = resize_weights(n, s)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-14)
        assert indices.min() >= 0 and indices.max() < n


# -------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("length", "scale", "expected"),
    [
        (512, 0.25, 128),
        (510, 0.25, 128),
        (100, 1 / 3, 34),
        (99, 1 / 3, 33),
        (17, 2, 34),
        (7, 0.75, 6),
        (5, 3, 15),
    ],
)
def test_output_size_is_ceil(length: int, scale: float, expected: int) -> None:
    assert output_size(length, scale) == expected
    assert imresize_reference(np.zeros((length, 3)), scale).shape == (expected, output_size(3, scale))


# --------------------------------------------------------------------------------------- invariants


def test_identity_at_scale_one() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((13, 17, 3))
    np.testing.assert_array_equal(imresize_reference(img, 1.0), img)
    np.testing.assert_allclose(imresize(img, 1.0), img, atol=1e-15)


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 0.75, 2, 3, 4])
def test_constant_image_stays_constant(scale: float) -> None:
    img = np.full((19, 23, 2), 0.3711)
    np.testing.assert_allclose(imresize_reference(img, scale), 0.3711, atol=1e-14)
    np.testing.assert_allclose(imresize(img, scale), 0.3711, atol=1e-14)


def test_no_antialias_uses_the_plain_kernel_when_shrinking() -> None:
    weights, _ = resize_weights(64, 0.5, antialias=False)
    assert weights.shape[1] == 4  # plain 4-tap cubic instead of the stretched 8-tap one
    np.testing.assert_allclose(weights[8], [-0.0625, 0.5625, 0.5625, -0.0625], atol=1e-15)


# ---------------------------------------------------------------------------- reference ≡ fast path


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2, 3, 4, 0.75, 0.3, 1.7])
@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 48), (9, 11, 1), (131, 97, 2)])
def test_torch_path_matches_reference_float64(scale: float, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    img = rng.random(shape)
    ref = imresize_reference(img, scale)
    out = imresize(img, scale)
    assert out.dtype == np.float64 and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)  # contract: ≤ 1e-6; measured ~1e-15


def test_large_axis_uses_several_bands_and_still_matches() -> None:
    rng = np.random.default_rng(2)
    img = rng.random((700, 9))
    np.testing.assert_allclose(imresize(img, 0.25), imresize_reference(img, 0.25), atol=1e-9)
    np.testing.assert_allclose(imresize(img[:150], 4), imresize_reference(img[:150], 4), atol=1e-9)


def test_tensor_batched_nchw_and_chw() -> None:
    rng = np.random.default_rng(3)
    imgs = rng.random((2, 21, 30, 3))
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()  # N×C×H×W float64
    out = imresize(x, 1 / 3)
    assert out.shape == (2, 3, 7, 10) and out.dtype == torch.float64
    for i in range(2):
        np.testing.assert_allclose(
            out[i].permute(1, 2, 0).numpy(), imresize_reference(imgs[i], 1 / 3), atol=1e-9
        )
        np.testing.assert_allclose(imresize(x[i], 1 / 3).numpy(), out[i].numpy(), atol=1e-12)


def test_tensor_float32_close_to_reference() -> None:
    rng = np.random.default_rng(4)
    img = rng.random((40, 44, 3))
    x = torch.from_numpy(img).permute(2, 0, 1).float()
    for scale in (0.25, 4):
        out = imresize(x, scale)
        assert out.dtype == torch.float32
        np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), imresize_reference(img, scale), atol=2e-6)


def test_tensor_path_is_differentiable() -> None:
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    imresize(x, 0.5).sum().backward()
    assert x.grad is not None
    # every output pixel's weights sum to 1, so d(sum out)/dx sums to the number of output pixels
    assert x.grad.sum().item() == pytest.approx(36.0, abs=1e-10)


def test_rejects_bad_inputs() -> None:
    with pytest.raises(TypeError, match="float array"):
        imresize(np.zeros((8, 8), dtype=np.uint8), 0.5)
    with pytest.raises(ValueError, match="scale"):
        imresize(np.zeros((8, 8)), 0.0)
    with pytest.raises(ValueError, match="C×H×W"):
        imresize(torch.zeros(8, 8), 0.5)


# ----------------------------------------------------------------------------------- uint8 protocol


def test_round_half_away_from_zero() -> None:
    np.testing.assert_array_equal(round_half_away(np.array([0.5, 1.5, 2.5, -0.5, 2.4999])), [1, 2, 3, -1, 2])


def test_modcrop() -> None:
    img = np.zeros((23, 30, 3), dtype=np.uint8)
    assert modcrop(img, 4).shape == (20, 28, 3)
    assert modcrop(img[..., 0], 12).shape == (12, 24)


def test_downscale_uint8_matches_the_matlab_protocol() -> None:
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, size=(24, 36, 3), dtype=np.uint8)
    lr = downscale_uint8(hr, 4)
    assert lr.dtype == np.uint8 and lr.shape == (6, 9, 3)
    expected = np.floor(np.clip(imresize_reference(hr / 255.0, 0.25), 0, 1) * 255 + 0.5)
    np.testing.assert_array_equal(lr, expected)
    flat = np.full((12, 12), 77, dtype=np.uint8)
    np.testing.assert_array_equal(downscale_uint8(flat, 3), np.full((4, 4), 77))


def test_downscale_uint8_requires_a_modcropped_image() -> None:
    with pytest.raises(ValueError, match="modcrop"):
        downscale_uint8(np.zeros((10, 12, 3), dtype=np.uint8), 4)
    with pytest.raises(TypeError):
        downscale_uint8(np.zeros((8, 8)), 4)
