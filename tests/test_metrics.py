"""PSNR / SSIM / MSE / RMSE / NIQE on hand-computed cases and against direct implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate, gaussian_filter
from scipy.special import gamma

from esrgan.metrics import NiqeUndefinedError, mse, niqe, psnr, psnr_torch, rmse_pirm, ssim, ssim_torch
from esrgan.metrics.niqe import _aggd_fit, _pristine_model, niqe_features
from esrgan.ops.color import rgb_to_y
from esrgan.ops.matlab_resize import imresize_reference


def _image(seed: int, shape: tuple[int, ...] = (40, 36, 3), low: int = 0, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=shape, dtype=np.uint8)


def _smooth_image(seed: int, h: int, w: int) -> np.ndarray:
    """A natural-looking uint8 RGB image: smoothed noise plus a little texture."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 8 + 2, w // 8 + 2, 3))
    big = imresize_reference(base, 8)[:h, :w]
    img = 255 * (0.8 * big + 0.2 * rng.random((h, w, 3)))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------- PSNR / MSE


def test_psnr_of_a_constant_offset_by_hand() -> None:
    hr = _image(0, low=10, high=240)
    sr = hr + np.uint8(5)
    assert mse(sr, hr, y_channel=False) == 25.0
    assert psnr(sr, hr, y_channel=False) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    # On float Y the offset becomes 5·(65.481 + 128.553 + 24.966)/255 = 5·219/255
    dy = 5 * 219 / 255
    assert psnr(sr, hr, y_rounding=False) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)


def test_identical_images() -> None:
    img = _image(1)
    assert psnr(img, img) == math.inf
    assert mse(img, img) == 0.0
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, y_channel=False) == pytest.approx(1.0, abs=1e-12)


def test_y_rounding_uses_matlab_uint8_y() -> None:
    sr, hr = _image(2), _image(3)
    ys = np.floor(rgb_to_y(sr) + 0.5)
    yh = np.floor(rgb_to_y(hr) + 0.5)
    assert mse(sr, hr) == pytest.approx(np.mean((ys - yh) ** 2), rel=1e-12)
    assert mse(sr, hr, y_rounding=False) == pytest.approx(
        np.mean((rgb_to_y(sr) - rgb_to_y(hr)) ** 2), rel=1e-12
    )


def test_crop_border_ignores_the_border() -> None:
    hr = _image(4)
    sr = hr.copy()
    sr[:4] = 0
    sr[:, -4:] = 255
    assert psnr(sr, hr, crop_border=4) == math.inf
    assert psnr(sr, hr, crop_border=3) < 40
    with pytest.raises(ValueError, match="crop_border"):
        psnr(sr, hr, crop_border=20)


def test_gray_images_are_used_as_they_are() -> None:
    hr = _image(5, shape=(20, 24))
    sr = np.clip(hr.astype(int) + 3, 0, 255).astype(np.uint8)
    expected = np.mean((sr.astype(float) - hr) ** 2)
    assert mse(sr, hr) == pytest.approx(expected)
    assert psnr(sr[..., None], hr[..., None]) == pytest.approx(psnr(sr, hr))


def test_uint16_needs_an_explicit_max_value() -> None:
    hr8 = _image(6, low=10, high=240)
    sr8 = hr8 + np.uint8(5)
    hr16, sr16 = hr8.astype(np.uint16) * 257, sr8.astype(np.uint16) * 257
    with pytest.raises(ValueError, match="max_value"):
        psnr(sr16, hr16)
    # 16-bit data with the same relative error gives the same PSNR, on RGB and on float Y
    assert psnr(sr16, hr16, max_value=65535, y_channel=False) == pytest.approx(
        psnr(sr8, hr8, y_channel=False)
    )
    assert psnr(sr16, hr16, max_value=65535, y_rounding=False) == pytest.approx(
        psnr(sr8, hr8, y_rounding=False), abs=1e-9
    )
    assert ssim(sr16, hr16, max_value=65535, y_channel=False) == pytest.approx(
        ssim(sr8, hr8, y_channel=False), abs=1e-12
    )


def test_inputs_are_validated() -> None:
    img = _image(7)
    with pytest.raises(TypeError, match="quantise"):
        psnr(img / 255.0, img / 255.0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(img, img[:-1])
    with pytest.raises(TypeError, match="same dtype"):
        psnr(img, img.astype(np.uint16))


def test_rmse_pirm_is_the_root_of_the_mean_mse() -> None:
    black = np.zeros((16, 16, 3), dtype=np.uint8)
    white = np.full((16, 16, 3), 255, dtype=np.uint8)
    # pair 1 identical (MSE 0), pair 2 Y = 16 vs 235 (MSE 219²): sqrt(219²/2), not the mean RMSE 109.5
    assert rmse_pirm([black, black], [black, white]) == pytest.approx(219 / math.sqrt(2), abs=1e-12)
    sr, hr = _image(8), _image(9)
    assert rmse_pirm([sr], [hr]) == pytest.approx(math.sqrt(mse(sr, hr, crop_border=4)))
    with pytest.raises(ValueError):
        rmse_pirm([sr], [])


# --------------------------------------------------------------------------------------------- SSIM


def _ssim_double_loop(x: np.ndarray, y: np.ndarray, peak: float = 255.0) -> float:
    """Wang's SSIM written out pixel by pixel: weighted statistics of every fully-inside 11×11 window."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()  # fspecial('gaussian', 11, 1.5)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = np.sum(w * px), np.sum(w * py)
            vx = np.sum(w * (px - mx) ** 2)
            vy = np.sum(w * (py - my) ** 2)
            cxy = np.sum(w * (px - mx) * (py - my))
            values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_double_loop() -> None:
    hr = _smooth_image(10, 19, 23)
    sr = np.clip(hr.astype(int) + np.random.default_rng(11).integers(-20, 21, hr.shape), 0, 255).astype(
        np.uint8
    )
    y_sr = np.floor(rgb_to_y(sr) + 0.5)
    y_hr = np.floor(rgb_to_y(hr) + 0.5)
    assert ssim(sr, hr) == pytest.approx(_ssim_double_loop(y_sr, y_hr), abs=1e-12)
    per_channel = [_ssim_double_loop(sr[..., c].astype(float), hr[..., c].astype(float)) for c in range(3)]
    assert ssim(sr, hr, y_channel=False) == pytest.approx(np.mean(per_channel), abs=1e-12)
    assert ssim(sr, hr, crop_border=2, y_channel=False) == pytest.approx(
        np.mean([_ssim_double_loop(sr[2:-2, 2:-2, c] * 1.0, hr[2:-2, 2:-2, c] * 1.0) for c in range(3)]),
        abs=1e-12,
    )


def test_ssim_needs_an_11_pixel_window() -> None:
    img = _image(12, shape=(10, 30, 3))
    with pytest.raises(ValueError, match="11×11"):
        ssim(img, img)


# ----------------------------------------------------------------------------------- torch versions


def _as_tensor(imgs: list[np.ndarray], dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs) / 255.0).permute(0, 3, 1, 2).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("y_channel", "y_rounding"), [(True, False), (True, True), (False, False)])
def test_torch_metrics_equal_numpy_on_quantised_inputs(
    dtype: torch.dtype, y_channel: bool, y_rounding: bool
) -> None:
    hrs = [_smooth_image(20 + i, 48, 40) for i in range(2)]
    srs = [
        np.clip(h.astype(int) + np.random.default_rng(30 + i).integers(-12, 13, h.shape), 0, 255).astype(
            np.uint8
        )
        for i, h in enumerate(hrs)
    ]
    kw = {"crop_border": 4, "y_channel": y_channel, "y_rounding": y_rounding}
    p = psnr_torch(_as_tensor(srs, dtype), _as_tensor(hrs, dtype), **kw)
    s = ssim_torch(_as_tensor(srs, dtype), _as_tensor(hrs, dtype), **kw)
    assert p.shape == (2,) and s.shape == (2,) and p.dtype == dtype
    for i in range(2):
        assert p[i].item() == pytest.approx(psnr(srs[i], hrs[i], **kw), abs=1e-4)
        assert s[i].item() == pytest.approx(ssim(srs[i], hrs[i], **kw), abs=1e-5)


def test_torch_psnr_identical_is_inf() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert torch.isinf(psnr_torch(x, x)).all()
    torch.testing.assert_close(ssim_torch(x, x), torch.ones(2))


# --------------------------------------------------------------------------------------------- NIQE


def test_aggd_fit_of_a_gaussian() -> None:
    # A zero-mean Gaussian is an AGGD with α = 2 and βl = βr = σ·sqrt(Γ(1/2)/Γ(3/2)) = σ·√2.
    samples = np.random.default_rng(40).normal(0.0, 0.7, size=(3, 200_000))
    alpha, beta_l, beta_r = _aggd_fit(samples)
    np.testing.assert_allclose(alpha, 2.0, atol=0.03)
    np.testing.assert_allclose(beta_l, 0.7 * math.sqrt(2), rtol=0.01)
    np.testing.assert_allclose(beta_r, 0.7 * math.sqrt(2), rtol=0.01)


def _niqe_block_loop(luma: np.ndarray) -> np.ndarray:
    """NIQE block features computed one block and one fit at a time, straight from SPEC §7.4."""
    _, _, window = _pristine_model()
    alphas = np.arange(9801) * 0.001 + 0.2
    rho = gamma(2 / alphas) ** 2 / (gamma(1 / alphas) * gamma(3 / alphas))

    def fit(v: np.ndarray) -> tuple[float, float, float]:
        v = v.ravel()
        ls, rs = np.sqrt(np.mean(v[v < 0] ** 2)), np.sqrt(np.mean(v[v > 0] ** 2))
        g = ls / rs
        r = np.mean(np.abs(v)) ** 2 / np.mean(v**2) * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
        a = alphas[np.argmin((rho - r) ** 2)]
        k = np.sqrt(gamma(1 / a) / gamma(3 / a))
        return a, ls * k, rs * k

    img = luma[: luma.shape[0] // 96 * 96, : luma.shape[1] // 96 * 96]
    rows = []
    for scale in (1, 2):
        mu = correlate(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(correlate(img * img, window, mode="nearest") - mu * mu))
        centred = img - mu
        centred[np.abs(centred) <= 1e-9] = 0.0  # rounding noise of an exact zero (flat window, ramp, …)
        mscn = centred / (sigma + 1)
        b = 96 // scale
        feats = []
        for i in range(img.shape[0] // b):
            for j in range(img.shape[1] // b):
                blk = mscn[i * b : (i + 1) * b, j * b : (j + 1) * b]
                a, bl, br = fit(blk)
                f = [a, (bl + br) / 2]
                for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
                    a, bl, br = fit(blk * np.roll(blk, shift, axis=(0, 1)))
                    f += [a, (br - bl) * gamma(2 / a) / gamma(1 / a), bl, br]
                feats.append(f)
        rows.append(np.array(feats))
        img = imresize_reference(img, 0.5)
    return np.concatenate(rows, axis=1)


def test_niqe_features_match_a_block_by_block_loop() -> None:
    luma = np.floor(rgb_to_y(_smooth_image(50, 200, 300)) + 0.5)
    fast = niqe_features(luma)
    assert fast.shape == (2 * 3, 36)
    np.testing.assert_allclose(fast, _niqe_block_loop(luma), rtol=1e-9, atol=1e-12)


def _flat_and_textured(seed: int) -> np.ndarray:
    """Gray uint8 image with large flat areas (like Set5 head.png's background) next to texture."""
    img = _smooth_image(seed, 192, 288)[..., 0].astype(np.int64)
    img[:80, :150] = 117  # flat area: MSCN is exactly 0 inside, whatever float rounding says
    img[120:, 200:] = 64
    img[100:110] = 200
    return np.clip(img, 20, 220).astype(np.uint8)


def test_niqe_separable_and_2d_filtering_agree_on_smooth_images() -> None:
    # A bicubic ×4 upscale of a smooth image: integer values full of ramps and flat patches where I − μ is
    # exactly 0 and float rounding leaves ~1e-13 of either sign, depending on the filter's order of
    # operations. Without the snap to 0, the separable filter (package) and the 2-D one (reference loop)
    # differ by 1e-3 in some features here (an α grid step).
    lr = gaussian_filter(np.random.default_rng(2).random((48, 72)), 4)
    lr = np.round(40 + 120 * (lr - lr.min()) / (lr.max() - lr.min())) / 255.0
    luma = np.floor(np.clip(imresize_reference(lr, 4), 0, 1) * 255 + 0.5)
    np.testing.assert_allclose(niqe_features(luma), _niqe_block_loop(luma), rtol=1e-9, atol=1e-12)


def test_niqe_flat_windows_are_exact_zeros() -> None:
    # NIQE is invariant to adding a constant (μ shifts with the image, σ does not, imresize preserves it) —
    # but only if flat windows give exactly 0 rather than rounding noise whose sign depends on the grey level.
    img = _flat_and_textured(52)
    luma = img.astype(np.float64)
    feats = niqe_features(luma)
    np.testing.assert_allclose(feats, _niqe_block_loop(luma), rtol=1e-9, atol=1e-12)
    base = niqe(img)
    for offset in (-17, 9, 31):
        assert niqe((img.astype(np.int64) + offset).astype(np.uint8)) == pytest.approx(base, abs=1e-9)


def test_niqe_contract() -> None:
    img = _smooth_image(51, 200, 220)
    score = niqe(img)
    assert isinstance(score, float) and np.isfinite(score) and score > 0
    assert niqe(img, crop_border=4) != score
    gray = np.floor(rgb_to_y(img) + 0.5).astype(np.uint8)
    assert niqe(gray) == pytest.approx(score, abs=1e-12)  # gray input = its own luma
    with pytest.raises(ValueError, match="96"):
        niqe(img[:90])
    # One block: MATLAB's nancov would return a scalar variance; a covariance needs two samples.
    with pytest.raises(NiqeUndefinedError, match="2 blocks"):
        niqe(img[:100, :191])
    assert np.isfinite(niqe(img[:100, :192]))
    assert niqe(img[:100, :192]) == pytest.approx(niqe(img[:96, :192]), abs=1e-12)  # only whole blocks count
    with pytest.raises(NiqeUndefinedError, match="2 blocks"):
        niqe(img[:100, :196], crop_border=3)
    flat = np.full((200, 200, 3), 90, np.uint8)
    flat[150:, 150:] = _smooth_image(53, 50, 50)  # texture in one block only: the other three are NaN
    with pytest.raises(NiqeUndefinedError, match="only 1 of 4 blocks"):
        niqe(flat)
    with pytest.raises(TypeError, match="uint8"):
        niqe(img / 255.0)
