"""Benchmark runner and folder evaluation on tiny synthetic datasets (no weights, no network)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter
from torch import nn

from esrgan.errors import ConfigError, EsrganError, ImageError
from esrgan.eval import BenchmarkSettings, evaluate_folders, run_benchmark
from esrgan.eval.protocol import match_by_stem, upscale_bicubic
from esrgan.metrics import mse, psnr, rmse_pirm, ssim
from esrgan.ops.back_projection import back_project
from esrgan.ops.matlab_resize import downscale_uint8, imresize, modcrop

SCALE = 4


def _photo(h: int, w: int, seed: int, gray: bool = False) -> np.ndarray:
    """Smooth shapes plus fine texture, uint8 — enough structure for SSIM and NIQE to mean something."""
    rng = np.random.default_rng(seed)
    c = 1 if gray else 3
    img = 0.7 * gaussian_filter(rng.random((h, w, c)), sigma=(3, 3, 0))
    img += 0.3 * gaussian_filter(rng.random((h, w, c)), sigma=(0.8, 0.8, 0))
    img = (img - img.min()) / (img.max() - img.min())
    out = np.round(255 * img).astype(np.uint8)
    return out[..., 0] if gray else out


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


@pytest.fixture()
def tiny_set(tmp_path: Path) -> Path:
    """Three HR images: RGB not a multiple of 4 (mod-crop needed), gray, RGB; ≥ 2×2 NIQE blocks each."""
    hr = tmp_path / "hr"
    _save(hr / "alpha.png", _photo(202, 207, seed=1))
    _save(hr / "bridge.png", _photo(200, 200, seed=2, gray=True))
    _save(hr / "zebra.png", _photo(200, 212, seed=3))
    return hr


class MatlabBicubicModel(nn.Module):
    """An 'SR model' that is exactly the bicubic baseline: MATLAB bicubic ×scale in float64, then the uint8
    rounding of ``imwrite`` (half away from zero), returned as k/255 — the Upscaler's own clamp/×255/round is
    then the identity, so any difference from the baseline is a bug in the benchmark's model path."""

    def __init__(self, scale: int = SCALE) -> None:
        super().__init__()
        self.scale = scale
        self.dummy = nn.Parameter(torch.zeros(1))  # so .to(device) has something to move

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = imresize(x.double(), float(self.scale)).clamp(0, 1) * 255.0
        y = torch.sign(y) * torch.floor(torch.abs(y) + 0.5)
        return (y / 255.0).to(x.dtype)


def _quiet(**kwargs: object) -> BenchmarkSettings:
    return BenchmarkSettings(progress=False, comparisons=False, **kwargs)  # type: ignore[arg-type]


def test_identity_model_reproduces_bicubic_baseline_exactly(tiny_set: Path) -> None:
    result = run_benchmark(
        {"tiny": tiny_set},
        models={"bicubic-model": MatlabBicubicModel()},
        baselines=["bicubic"],
        settings=_quiet(niqe=True),
    )
    assert result.settings["scale"] == SCALE and result.settings["crop_border"] == SCALE
    rows = {(s.image, s.method): s for s in result.scores}
    assert len(rows) == 6
    for image in ("alpha", "bridge", "zebra"):
        a, b = rows[(image, "bicubic")], rows[(image, "bicubic-model")]
        assert (a.psnr, a.ssim, a.niqe, a.rmse) == (b.psnr, b.ssim, b.niqe, b.rmse)
        assert a.niqe is not None and math.isfinite(a.niqe)
        assert 20 < a.psnr < 40 and 0.3 < a.ssim < 1
    assert rows[("alpha", "bicubic")].height == 200 and rows[("alpha", "bicubic")].width == 204  # mod-cropped
    s_base, s_model = result.summary("tiny", "bicubic"), result.summary("tiny", "bicubic-model")
    assert (s_base.psnr, s_base.ssim, s_base.niqe) == (s_model.psnr, s_model.ssim, s_model.niqe)


def test_scores_and_means_match_hand_computation(tiny_set: Path) -> None:
    result = run_benchmark({"tiny": tiny_set}, baselines=["bicubic"], settings=_quiet(niqe=False))
    psnrs, ssims, srs, hrs = [], [], [], []
    for name in ("alpha", "bridge", "zebra"):
        hr = np.asarray(PILImage.open(tiny_set / f"{name}.png"))
        if hr.ndim == 2:
            hr = np.stack([hr] * 3, axis=-1)  # gray → 3 identical channels (documented convention)
        hr = modcrop(hr, SCALE)
        # Bicubic by hand, from the documented protocol: im2double → imresize → clip → round half away.
        up = imresize(downscale_uint8(hr, SCALE) / 255.0, SCALE)
        sr = np.floor(np.clip(up, 0, 1) * 255 + 0.5).astype(np.uint8)
        psnrs.append(psnr(sr, hr, crop_border=SCALE))
        ssims.append(ssim(sr, hr, crop_border=SCALE))
        srs.append(sr)
        hrs.append(hr)
    rows = [s for s in result.scores if s.method == "bicubic"]
    assert [r.image for r in rows] == ["alpha", "bridge", "zebra"]
    assert [r.psnr for r in rows] == psnrs
    assert [r.ssim for r in rows] == ssims
    summary = result.summary("tiny", "bicubic")
    assert summary.images == 3
    assert summary.psnr == pytest.approx((psnrs[0] + psnrs[1] + psnrs[2]) / 3, abs=1e-12)
    assert summary.ssim == pytest.approx(sum(ssims) / 3, abs=1e-12)
    # PIRM RMSE: sqrt of the mean MSE (not the mean RMSE) — the metrics module's own implementation agrees.
    assert summary.rmse == pytest.approx(rmse_pirm(srs, hrs, crop_border=SCALE), rel=1e-12)
    mean_rmse = np.mean([math.sqrt(mse(a, b, crop_border=SCALE)) for a, b in zip(srs, hrs, strict=True)])
    assert abs(summary.rmse - mean_rmse) > 1e-6  # the two definitions really differ here
    assert summary.niqe is None and rows[0].niqe is None


def test_gray_image_is_scored_as_three_identical_channels(tiny_set: Path) -> None:
    result = run_benchmark({"tiny": tiny_set}, baselines=["bicubic"], settings=_quiet(niqe=False))
    assert result.settings["datasets"]["tiny"]["gray_images"] == ["bridge"]
    gray = np.asarray(PILImage.open(tiny_set / "bridge.png"))
    sr_gray = upscale_bicubic(downscale_uint8(gray, SCALE), SCALE)
    score = next(s for s in result.scores if s.image == "bridge")
    rgb = lambda a: np.stack([a] * 3, axis=-1)  # noqa: E731
    assert score.psnr == psnr(rgb(sr_gray), rgb(gray), crop_border=SCALE)
    # The other convention (score the gray plane directly) gives a different number: the test can tell.
    assert abs(score.psnr - psnr(sr_gray, gray, crop_border=SCALE)) > 0.5


def test_lr_folder_is_matched_by_stem_and_gives_the_same_numbers(tiny_set: Path, tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    for name, lr_name in (("alpha", "alphax4.png"), ("bridge", "bridge_x4.png"), ("zebra", "zebra_LR.png")):
        hr = np.asarray(PILImage.open(tiny_set / f"{name}.png"))
        _save(lr_dir / lr_name, downscale_uint8(modcrop(hr, SCALE), SCALE))
    _save(lr_dir / "unrelated.png", np.zeros((8, 8, 3), np.uint8))  # extra LR files are ignored
    generated = run_benchmark({"t": tiny_set}, baselines=["bicubic"], settings=_quiet(niqe=False))
    given = run_benchmark({"t": (tiny_set, lr_dir)}, baselines=["bicubic"], settings=_quiet(niqe=False))
    assert [(s.image, s.psnr, s.ssim) for s in generated.scores] == [
        (s.image, s.psnr, s.ssim) for s in given.scores
    ]
    assert "read from" in given.settings["lr_generation"]["t"]

    (lr_dir / "zebra_LR.png").unlink()
    with pytest.raises(EsrganError, match="zebra"):
        run_benchmark({"t": (tiny_set, lr_dir)}, baselines=["bicubic"], settings=_quiet(niqe=False))


def test_match_by_stem_rules() -> None:
    keys = ["baby", "img_1", "img_10", "img_001_SRF_4_HR", "a", "a_b"]
    files = [
        Path(n)
        for n in ("babyx4.png", "img_10_out.png", "img_1_rlt.png", "img_001_SRF_4_LR.png", "a_b_ESRGAN.png")
    ]
    matched, unmatched = match_by_stem(keys, [*files, Path("other.png"), Path("img_100.png")])
    assert {k: v.name for k, v in matched.items()} == {
        "baby": "babyx4.png",
        "img_10": "img_10_out.png",
        "img_1": "img_1_rlt.png",
        "img_001_SRF_4_HR": "img_001_SRF_4_LR.png",
        "a_b": "a_b_ESRGAN.png",  # the longest matching name wins
    }
    assert [p.name for p in unmatched] == ["other.png", "img_100.png"]
    with pytest.raises(EsrganError, match="baby_out.png"):
        match_by_stem(["baby"], [Path("baby.png"), Path("baby_out.png")])


def test_scale_must_agree(tiny_set: Path) -> None:
    models = {"x4": MatlabBicubicModel(4), "x2": MatlabBicubicModel(2)}
    with pytest.raises(ConfigError, match="different scales"):
        run_benchmark({"t": tiny_set}, models=models, settings=_quiet())
    with pytest.raises(ConfigError, match="×2 was requested"):
        run_benchmark({"t": tiny_set}, models={"x4": MatlabBicubicModel(4)}, settings=_quiet(scale=2))
    with pytest.raises(ConfigError, match="baseline"):
        run_benchmark({"t": tiny_set}, baselines=["lanczos"], settings=_quiet())


def test_back_projection_rows_and_saved_images(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "sr"
    settings = _quiet(niqe=False, back_projection=3, save_images_dir=out)
    result = run_benchmark({"t": tiny_set}, baselines=["bicubic", "hr"], settings=settings)
    assert result.methods() == ["bicubic", "bicubic+BP3", "hr"]
    hr_row = next(s for s in result.scores if s.method == "hr" and s.image == "zebra")
    assert hr_row.psnr == math.inf and hr_row.ssim == 1.0

    hr = np.asarray(PILImage.open(tiny_set / "zebra.png"))
    lr = downscale_uint8(modcrop(hr, SCALE), SCALE)
    bic = upscale_bicubic(lr, SCALE)
    expected = back_project(bic, lr, scale=SCALE, iterations=3)
    saved = np.asarray(PILImage.open(out / "t" / "bicubic+BP3" / "zebra.png"))
    np.testing.assert_array_equal(saved, expected)
    np.testing.assert_array_equal(np.asarray(PILImage.open(out / "t" / "bicubic" / "zebra.png")), bic)
    row = next(s for s in result.scores if s.method == "bicubic+BP3" and s.image == "zebra")
    assert row.psnr == psnr(expected, modcrop(hr, SCALE), crop_border=SCALE)
    assert row.psnr > next(s.psnr for s in result.scores if s.method == "bicubic" and s.image == "zebra")

    with pytest.raises(EsrganError, match="already exist"):  # refuses before computing anything
        run_benchmark({"t": tiny_set}, baselines=["bicubic"], settings=settings)


def test_evaluate_folders_pairs_suffixes_and_agrees_with_benchmark(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "saved"
    bench = run_benchmark(
        {"t": tiny_set}, baselines=["bicubic"], settings=_quiet(niqe=True, save_images_dir=out)
    )
    sr_dir = tmp_path / "sr"
    for name, new in (("alpha", "alpha_out"), ("bridge", "bridge_rlt"), ("zebra", "zebra_ESRGAN")):
        (sr_dir).mkdir(exist_ok=True)
        (sr_dir / f"{new}.png").write_bytes((out / "t" / "bicubic" / f"{name}.png").read_bytes())

    # alpha.png is 202×207, its SR 200×204: an error without modcrop, scored after cropping with it.
    with pytest.raises(ImageError, match="modcrop"):
        evaluate_folders(sr_dir, tiny_set, niqe=False, progress=False)
    ev = evaluate_folders(sr_dir, tiny_set, crop_border=SCALE, modcrop=True, progress=False)
    assert [s.image for s in ev.scores] == ["alpha", "bridge", "zebra"]
    for a, b in zip(bench.scores, ev.scores, strict=True):
        assert (a.psnr, a.ssim, a.niqe, a.rmse) == (b.psnr, b.ssim, b.niqe, b.rmse)
    assert ev.settings["hr_modcropped_to_sr"] == ["alpha"]
    assert ev.methods() == ["sr"] and ev.datasets() == ["hr"]


def test_evaluate_folders_reports_unmatched_and_missing_files(tiny_set: Path, tmp_path: Path) -> None:
    sr_dir = tmp_path / "sr"
    for name in ("alpha", "bridge", "zebra"):
        _save(sr_dir / f"{name}_out.png", np.zeros((8, 8, 3), np.uint8))
    _save(sr_dir / "giraffe_out.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(EsrganError, match="giraffe_out.png"):
        evaluate_folders(sr_dir, tiny_set, progress=False)
    (sr_dir / "giraffe_out.png").unlink()
    (sr_dir / "zebra_out.png").unlink()
    with pytest.raises(EsrganError, match="no SR result .*zebra"):
        evaluate_folders(sr_dir, tiny_set, progress=False)
    _save(sr_dir / "zebra_out.png", np.zeros((50, 53, 3), np.uint8))  # ×4 vs HR: not a mod-crop
    with pytest.raises(ImageError, match="more than a mod-crop"):
        evaluate_folders(sr_dir, tiny_set, modcrop=True, progress=False)


def test_models_are_warmed_up_once_before_timing(tiny_set: Path) -> None:
    class Counting(MatlabBicubicModel):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Counting.calls += 1
            return super().forward(x)

    result = run_benchmark(
        {"t": tiny_set}, models={"m": Counting()}, baselines=(), settings=_quiet(niqe=False)
    )
    assert Counting.calls == 3 + 1  # one untimed run on the first image, then one per image
    assert "untimed" in result.settings["timing"]


def test_models_run_as_written(tiny_set: Path) -> None:
    """The benchmark computes networks without their inference rewrites, so its tables reproduce bit for bit
    (the rewrites move the 4th decimal)."""
    from esrgan.archs.blocks import rewrites_allowed

    seen: list[bool] = []

    class Probe(MatlabBicubicModel):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(rewrites_allowed())
            return super().forward(x)

    run_benchmark({"t": tiny_set}, models={"m": Probe()}, baselines=(), settings=_quiet(niqe=False))
    assert seen and not any(seen)
    assert rewrites_allowed()  # only inside the model calls
