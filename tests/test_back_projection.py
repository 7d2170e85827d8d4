"""Back-projection (SPEC §11): LR consistency, fixed points, clipping, layouts, one step vs the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve, gaussian_filter

from esrgan.ops.back_projection import back_project, ibp_kernel, lr_consistency_rmse
from esrgan.ops.matlab_resize import downscale_uint8, imresize, imresize_reference, resize_weights

SCALE = 4


def _natural(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A smooth-plus-texture float image in [0.05, 0.95] (a stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.random((h, w, channels)), sigma=(2.0, 2.0, 0)) * 0.7
    img += 0.3 * gaussian_filter(rng.random((h, w, channels)), sigma=(0.7, 0.7, 0))
    img = (img - img.min()) / (img.max() - img.min())
    return 0.05 + 0.9 * img


def _down_matrix(n: int) -> np.ndarray:
    """Dense ``n/SCALE × n`` matrix of MATLAB bicubic ×1/SCALE along one axis (from the public tap table)."""
    weights, indices = resize_weights(n, 1 / SCALE)
    m = np.zeros((weights.shape[0], n))
    for i in range(weights.shape[0]):
        np.add.at(m[i], indices[i], weights[i])
    return m


@pytest.mark.parametrize("variant", ["reverse_filter", "ibp"])
def test_lr_consistency_error_falls_steadily_and_strongly(variant: str) -> None:
    hr = (_natural(64, 80, seed=1) * 255).round().astype(np.uint8)
    lr = downscale_uint8(hr, SCALE)
    sr = imresize(lr / 255.0, SCALE)  # bicubic start, as a weak SR
    errors = [lr_consistency_rmse(sr, lr, scale=SCALE)]
    for _ in range(20):
        sr = back_project(sr, lr, scale=SCALE, iterations=1, variant=variant, clip=False)
        errors.append(lr_consistency_rmse(sr, lr, scale=SCALE))
    steps = np.diff(errors)
    assert np.all(steps <= 1e-12), f"error went up: {errors}"
    # Measured on photos: ~2700× (reverse filter) and ~500× (IBP) over 20 iterations; demand a safe margin.
    assert errors[-1] < errors[0] / 50, errors
    # 20 single iterations = one call with iterations=20 (no hidden state, no clipping inside the loop).
    start = imresize(lr / 255.0, SCALE)
    once = back_project(start, lr, scale=SCALE, iterations=20, variant=variant, clip=False)
    np.testing.assert_allclose(once, sr, atol=1e-12)


@pytest.mark.parametrize("variant", ["reverse_filter", "ibp"])
def test_lr_consistent_image_is_a_fixed_point(variant: str) -> None:
    # A fixed point is any SR with down(SR) == LR exactly — not only up(LR). Build one that has detail bicubic
    # up-sampling can never produce: HR plus a component in the null space of the bicubic downscale
    # (X − P·X·Q with P, Q the projections onto the row spaces of the per-axis downscale matrices).
    h, w = 48, 64
    base = _natural(h, w, seed=2)
    dr, dc = _down_matrix(h), _down_matrix(w)
    p = np.linalg.pinv(dr) @ dr
    q = np.linalg.pinv(dc) @ dc
    noise = np.random.default_rng(3).standard_normal((h, w, 3))
    null = np.stack([noise[..., c] - p @ noise[..., c] @ q for c in range(3)], axis=-1)
    sr = base + 0.03 * null / np.abs(null).max()
    assert 0 < sr.min() and sr.max() < 1
    lr = imresize(sr, 1 / SCALE)  # float, not rounded: exactly consistent
    assert lr_consistency_rmse(sr, lr, scale=SCALE) < 1e-12
    assert np.abs(imresize(lr, SCALE) - sr).max() > 0.01  # so "return up(LR)" would fail this test

    out = back_project(sr, lr, scale=SCALE, iterations=20, variant=variant)
    np.testing.assert_allclose(out, sr, atol=1e-10)

    # ...and an inconsistent LR does move it.
    moved = back_project(sr, np.clip(lr + 0.02, 0, 1), scale=SCALE, iterations=5, variant=variant)
    assert np.abs(moved - sr).mean() > 0.005


def test_reverse_filter_one_step_matches_numpy_reference() -> None:
    sr = _natural(32, 40, seed=4)
    lr = _natural(8, 10, seed=5)
    expected = sr + (
        imresize_reference(lr, SCALE) - imresize_reference(imresize_reference(sr, 1 / SCALE), SCALE)
    )
    out = back_project(sr, lr, scale=SCALE, iterations=1, clip=False)
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_ibp_one_step_matches_conv2_same() -> None:
    sr = _natural(32, 40, seed=6)
    lr = _natural(8, 10, seed=7)
    diff = imresize_reference(lr - imresize_reference(sr, 1 / SCALE), SCALE)
    p = ibp_kernel()
    # MATLAB conv2(·, p, 'same') = convolution with zero padding.
    update = np.stack([convolve(diff[..., c], p, mode="constant", cval=0.0) for c in range(3)], axis=-1)
    out = back_project(sr, lr, scale=SCALE, iterations=1, variant="ibp", clip=False)
    np.testing.assert_allclose(out, sr + update, atol=1e-12)


def test_ibp_kernel_is_squared_gaussian() -> None:
    p = ibp_kernel()
    t = np.arange(-2, 3)
    # A Gaussian with σ = 1, squared, is a Gaussian with σ = 1/√2: exp(−r²).
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2))
    np.testing.assert_allclose(p, g / g.sum(), rtol=1e-12)
    assert p.shape == (5, 5) and abs(p.sum() - 1) < 1e-15


def test_output_is_clipped_once_at_the_end() -> None:
    # A textured SR just below white with an all-white LR: each update adds the (smooth) missing brightness
    # on top of the texture, so the unclipped iterate overshoots 1 where the texture peaks. (A *constant* SR
    # would not do: up(down(c)) = c, so one step lands exactly on the LR value and never overshoots.)
    sr = 0.94 + 0.05 * np.random.default_rng(9).random((16, 16, 3))
    lr = np.full((4, 4, 3), 1.0)
    raw = back_project(sr, lr, scale=SCALE, iterations=3, clip=False)
    assert raw.max() > 1.02

    # No clipping inside the loop: the raw result is the plain recursion (numpy reference resize)...
    up = lambda a: imresize_reference(a, SCALE)  # noqa: E731
    down = lambda a: imresize_reference(a, 1 / SCALE)  # noqa: E731
    expected, per_step = sr.copy(), sr.copy()
    for _ in range(3):
        expected = expected + (up(lr) - up(down(expected)))
        per_step = np.clip(per_step + (up(lr) - up(down(per_step))), 0, 1)
    np.testing.assert_allclose(raw, expected, atol=1e-12)

    # ...and clip=True clips that once, at the end — which is not the same as clipping every iteration.
    clipped = back_project(sr, lr, scale=SCALE, iterations=3)
    np.testing.assert_array_equal(clipped, np.clip(raw, 0, 1))
    assert clipped.dtype == np.float64 and clipped.min() >= 0 and clipped.max() <= 1
    assert np.abs(clipped - per_step).max() > 1e-3

    sr8 = np.full((16, 16, 3), 5, np.uint8)
    lr8 = np.zeros((4, 4, 3), np.uint8)
    out8 = back_project(sr8, lr8, scale=SCALE, iterations=5)
    assert out8.dtype == np.uint8 and out8.max() == 0  # pulled to 0 (or below): 0 after the final clip


def test_layouts_and_dtypes_agree() -> None:
    hr = (_natural(32, 48, seed=8) * 255).round().astype(np.uint8)
    lr = downscale_uint8(hr, SCALE)
    sr8 = np.clip(hr.astype(int) + 7, 0, 255).astype(np.uint8)
    out_float = back_project(sr8 / 255.0, lr / 255.0, scale=SCALE, iterations=4)
    out8 = back_project(sr8, lr, scale=SCALE, iterations=4)
    assert out8.dtype == np.uint8
    assert np.abs(out8.astype(float) - out_float * 255).max() <= 0.5 + 1e-9  # uint8 = rounded float result

    t_sr = torch.from_numpy(sr8 / 255.0).permute(2, 0, 1).unsqueeze(0).float()
    t_lr = torch.from_numpy(lr / 255.0).permute(2, 0, 1).unsqueeze(0).float()
    out_t = back_project(t_sr, t_lr, scale=SCALE, iterations=4)
    assert out_t.dtype == torch.float32 and out_t.shape == t_sr.shape
    np.testing.assert_allclose(out_t[0].permute(1, 2, 0).numpy(), out_float, atol=1e-6)

    gray = back_project(sr8[..., 0], lr[..., 0], scale=SCALE, iterations=4)
    np.testing.assert_array_equal(gray, out8[..., 0])  # channels are independent


def test_bad_inputs_are_refused() -> None:
    sr = np.zeros((16, 16, 3))
    with pytest.raises(ValueError, match="lr×4"):
        back_project(sr, np.zeros((5, 4, 3)), scale=SCALE)
    with pytest.raises(ValueError, match="variant"):
        back_project(sr, np.zeros((4, 4, 3)), scale=SCALE, variant="magic")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        back_project(sr.astype(np.int32), np.zeros((4, 4, 3)), scale=SCALE)
