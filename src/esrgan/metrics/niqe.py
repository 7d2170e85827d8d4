"""NIQE (Mittal et al. 2013), as the official MATLAB ``niqe_release`` computes it (SPEC §7.4).

Steps (``computequality.m``), all blocks of a scale processed at once:

1. Y: MATLAB ``rgb2ycbcr`` on the uint8 RGB image, Y rounded to an integer (the uint8 result); gray images
   are used as they are. Remove ``crop_border``; cut (top-left anchored) to a multiple of 96 in each axis.
2. Two scales: the image, then ``imresize(image, 0.5)`` (MATLAB bicubic with antialiasing, not rounded).
3. MSCN coefficients: μ = w∗I, σ = sqrt(|w∗I² − μ²|), Î = (I − μ)/(σ + 1), with the release's 7×7 Gaussian
   (σ = 7/6) and replicated borders (``imfilter(…, 'replicate')``; the window is separable and, like
   MATLAB's ``imfilter`` for double images, it is applied as two 1-D passes). Where ``|I − μ|`` is below
   1e-9 grey levels — float rounding noise of a value that is exactly 0 — Î is set to exactly 0 (see below).
4. Non-overlapping blocks of 96/scale pixels; per block 18 features: the AGGD fit of Î (α, mean of βl and
   βr), and for each of 4 neighbour products Î·circshift(Î) with shifts (0,1), (1,0), (1,1), (−1,1) *within
   the block* the AGGD fit (α, η = (βr − βl)·Γ(2/α)/Γ(1/α), βl, βr). α is a grid search over 0.2:0.001:10.
5. Fit a Gaussian to the 36-dimensional block features (``nanmean``; covariance over the NaN-free blocks) and
   return ``sqrt((μp − μd)ᵀ pinv((Σp + Σd)/2) (μp − μd))`` against the pristine model.

Exact zeros. Î is exactly 0 wherever the 7×7 window is constant (and for some symmetric patterns, e.g. a
linear ramp), but float64 ``I − w∗I`` leaves ~1e-13 of rounding noise of either sign there (the window sums
to 1 − 1e-16), and the AGGD fit *counts* the negative and positive samples, so the noise changes the score —
by up to 1e-3 between two correct filter implementations (2-D vs separable) on smooth images, and by much more
on images with flat areas (Set14 ``face.png`` 8.790 → 8.493, Set5 ``head.png`` 8.716 → 8.351). Set14
``baboon.png`` (13 flat-window pixels) reads 5.72996 with the noise left in, 5.72971 / 5.72996 with all of
it forced positive / negative, and 5.729574 with exact zeros; MATLAB R2021a gives 5.72957338, so MATLAB gets
exact zeros there too. BasicSR's float32 pipeline gets them by accident of precision (5.7295763). Snapping
``|I − μ| ≤ 1e-9`` to 0 makes the score independent of the filter's rounding (tested: 2-D and separable
filtering agree to 1e-12).

The pristine model (``niqe_pris_params.npz``: ``mu_pris_param`` 1×36, ``cov_pris_param`` 36×36,
``gaussian_window`` 7×7) is the official release's ``modelparameters.mat`` as redistributed by BasicSR
(Apache-2.0); see docs/third_party.md. Lower is better.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.ndimage import correlate, correlate1d
from scipy.special import gamma

from esrgan.ops.color import rgb_to_y
from esrgan.ops.matlab_resize import imresize

__all__ = [
    "niqe",
    "niqe_blocks",
    "niqe_features",
    "NiqeUndefinedError",
    "BLOCK_SIZE",
    "MIN_BLOCKS",
    "ZERO_TOLERANCE",
]

BLOCK_SIZE = 96
#: Blocks with finite features needed to fit the image's Gaussian (a covariance needs two samples).
MIN_BLOCKS = 2


class NiqeUndefinedError(ValueError):
    """The image has fewer than :data:`MIN_BLOCKS` scorable 96×96 blocks (too small, or flat blocks only)."""


_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))  # MATLAB circshift offsets (rows, cols)


@lru_cache(maxsize=1)
def _pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with resources.files("esrgan.metrics").joinpath("niqe_pris_params.npz").open("rb") as f:
        params = np.load(f)
        return (
            params["mu_pris_param"].reshape(-1).astype(np.float64),
            params["cov_pris_param"].astype(np.float64),
            params["gaussian_window"].astype(np.float64),
        )


@lru_cache(maxsize=1)
def _aggd_grid() -> tuple[np.ndarray, np.ndarray]:
    """α grid 0.2:0.001:10 and ρ(α) = Γ(2/α)² / (Γ(1/α)·Γ(3/α)), as in ``estimateaggdparam.m``."""
    alphas = 0.2 + 0.001 * np.arange(9801)  # MATLAB colon: start + k·step, 9801 values up to 10
    rho = gamma(2.0 / alphas) ** 2 / (gamma(1.0 / alphas) * gamma(3.0 / alphas))
    return alphas, rho


def _aggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD parameters (α, βl, βr) of every row of ``samples`` (blocks × pixels), ``estimateaggdparam.m``.

    Rows without negative (or positive) samples give NaN spreads, like MATLAB's mean of an empty vector.
    """
    alphas, rho = _aggd_grid()
    sq = samples * samples
    neg, pos = samples < 0, samples > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        gamma_hat = left_std / right_std
        r_hat = np.abs(samples).mean(axis=1) ** 2 / sq.mean(axis=1)
        r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    # MATLAB's min over an all-NaN vector returns the first index; np.argmin does the same.
    alpha = alphas[np.argmin((rho[None, :] - r_hat_norm[:, None]) ** 2, axis=1)]
    scale = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, left_std * scale, right_std * scale


def _block_features(mscn: np.ndarray, block: int) -> np.ndarray:
    """18 features of every ``block × block`` tile of an MSCN image (``computefeature.m``): blocks × 18."""
    rows, cols = mscn.shape[0] // block, mscn.shape[1] // block
    tiles = mscn[: rows * block, : cols * block].reshape(rows, block, cols, block).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(rows * cols, block, block)
    flat = tiles.reshape(len(tiles), -1)

    alpha, beta_l, beta_r = _aggd_fit(flat)
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        pair = flat * np.roll(tiles, shift, axis=(1, 2)).reshape(len(tiles), -1)  # circshift within the block
        alpha, beta_l, beta_r = _aggd_fit(pair)
        eta = (beta_r - beta_l) * (gamma(2.0 / alpha) / gamma(1.0 / alpha))
        feats += [alpha, eta, beta_l, beta_r]
    return np.stack(feats, axis=1)


@lru_cache(maxsize=1)
def _separable_window() -> np.ndarray | None:
    """1-D factor ``u`` of the release's window (``w = u·uᵀ``, a normalised Gaussian); None if not rank 1."""
    window = _pristine_model()[2]
    c = window.shape[0] // 2
    u = window[:, c] / np.sqrt(window[c, c])
    return u if np.allclose(np.outer(u, u), window, rtol=0, atol=1e-15) else None


def _filter(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``imfilter(img, window, 'replicate')``; two 1-D passes for the release's (separable) window."""
    u = _separable_window()
    if u is not None and window is _pristine_model()[2]:
        return correlate1d(correlate1d(img, u, axis=0, mode="nearest"), u, axis=1, mode="nearest")
    return correlate(img, window, mode="nearest")


#: ``|I − μ|`` at or below this (grey levels, 0…255 scale) is rounding noise of an exact 0 (module docstring).
ZERO_TOLERANCE = 1e-9


def _mscn(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients, with exact zeros where ``I − μ`` is only noise."""
    mu = _filter(img, window)
    sigma = np.sqrt(np.abs(_filter(img * img, window) - mu * mu))
    centred = img - mu
    centred[np.abs(centred) <= ZERO_TOLERANCE] = 0.0
    return centred / (sigma + 1)


def niqe_features(luma: np.ndarray, *, block_size: int = BLOCK_SIZE) -> np.ndarray:
    """Per-block NIQE features (blocks × 36: 18 at full, 18 at half resolution) of a float luma image.

    ``luma`` is ``H×W`` on the 0…255 scale (already rounded if you want MATLAB's uint8 behaviour).
    """
    _, _, window = _pristine_model()
    h, w = luma.shape
    rows, cols = h // block_size, w // block_size
    if rows == 0 or cols == 0:
        raise ValueError(
            f"NIQE needs at least {block_size}×{block_size} pixels (after cropping), got {w}×{h}"
        )
    img = np.asarray(luma, dtype=np.float64)[: rows * block_size, : cols * block_size]
    per_scale = []
    for scale in (1, 2):
        per_scale.append(_block_features(_mscn(img, window), block_size // scale))
        if scale == 1:
            img = imresize(img, 0.5)  # MATLAB resizes the 0…255 double image directly
    return np.concatenate(per_scale, axis=1)


def niqe_blocks(height: int, width: int, *, crop_border: int = 0) -> int:
    """Number of 96×96 NIQE blocks of an ``height × width`` image after removing ``crop_border`` pixels."""
    h, w = height - 2 * crop_border, width - 2 * crop_border
    return max(0, h // BLOCK_SIZE) * max(0, w // BLOCK_SIZE)


def niqe(img: np.ndarray, *, crop_border: int = 0) -> float:
    """Natural Image Quality Evaluator score of one image (lower is better), MATLAB ``niqe_release``.

    Args:
        img: ``H×W×3`` uint8 RGB (converted to MATLAB's rounded uint8 Y) or ``H×W`` / ``H×W×1`` uint8 gray
            with at least two 96×96 blocks after cropping (e.g. 96×192). Only the top-left multiple of 96
            pixels in each axis is scored.
        crop_border: pixels removed from each side first (PIRM: 4; BasicSR's NIQE test: 0).

    Returns:
        The score as a Python float (Set14 ``baboon.png``: 5.729574; MATLAB R2021a 5.72957338; tested).

    Raises:
        NiqeUndefinedError: fewer than two blocks with finite features — the image is too small, or its blocks
            are flat (a flat block has no negative or positive MSCN samples, so its AGGD fit is NaN and it is
            left out, as MATLAB's ``nanmean``/``nancov`` do). MATLAB itself would fail on zero such blocks
            and, on one, silently use the *scalar* variance of its 36 features as the covariance (``nancov``
            of a vector); neither is a meaningful score.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"NIQE takes uint8 images (its pristine model is for 8-bit data), got {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 3:
        luma = rgb_to_y(img, round_uint8=True)
    elif img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 1):
        luma = img.reshape(img.shape[:2]).astype(np.float64)
    else:
        raise ValueError(f"expected an H×W×3 RGB or H×W gray image, got shape {img.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]

    blocks = niqe_blocks(*luma.shape)
    if blocks < MIN_BLOCKS:
        raise NiqeUndefinedError(
            f"NIQE needs at least {MIN_BLOCKS} blocks of {BLOCK_SIZE}×{BLOCK_SIZE} pixels (e.g. 96×192) "
            f"after the {crop_border}-pixel border crop; this {luma.shape[1]}×{luma.shape[0]} image has "
            f"{blocks}"
        )
    mu_pris, cov_pris, _ = _pristine_model()
    feats = niqe_features(luma)
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < MIN_BLOCKS:
        raise NiqeUndefinedError(
            f"NIQE is undefined here: only {len(complete)} of {len(feats)} blocks have texture (flat blocks "
            f"have no MSCN statistics); it needs at least {MIN_BLOCKS}"
        )
    mu_dist = np.nanmean(feats, axis=0)
    cov_dist = np.cov(complete, rowvar=False)
    diff = mu_pris - mu_dist
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff))
