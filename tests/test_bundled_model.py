"""The model shipped inside the package: `esrgan upscale photo.png` with no other argument, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esrgan.cli import main
from esrgan.io.images import read_image
from esrgan.metrics import psnr
from esrgan.ops.matlab_resize import imresize
from esrgan.weights import DEFAULT_MODEL, bundled_models, inspect_weights

GAN_MODEL = "esrgan_lite_gan_x4"
# its model card (docs/models.md), fp32
GAN_SET14_PSNR = 26.608
GAN_SET14_NIQE = 4.335


def test_the_default_model_is_bundled_and_describes_its_training() -> None:
    assert DEFAULT_MODEL in bundled_models()
    info = inspect_weights(DEFAULT_MODEL)
    assert (info.arch, info.scale) == ("RRDBNet", 4)
    for key in ("esrgan.training_config", "esrgan.step", "esrgan.commit", "esrgan.losses"):
        assert info.metadata.get(key), f"bundled model lacks {key} in its metadata"


def test_upscale_with_no_model_argument_beats_bicubic(tmp_path: Path, shared_data: Path) -> None:
    hr = read_image(shared_data / "Set5" / "bird.png").pixels  # 288 x 288 RGB
    lr = np.clip(np.round(imresize(hr.astype(np.float64), 0.25)), 0, 255).astype(np.uint8)
    src = tmp_path / "bird_lr.png"
    from PIL import Image

    Image.fromarray(lr).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-q"]) == 0
    sr = read_image(tmp_path / "out" / "bird_lr_out.png").pixels
    bicubic = np.clip(np.round(imresize(lr.astype(np.float64), 4.0)), 0, 255).astype(np.uint8)

    def psnr_y(img: np.ndarray) -> float:
        return psnr(img, hr, crop_border=4)  # MATLAB uint8 Y, as the published tables

    assert sr.shape == hr.shape
    assert psnr_y(sr) > psnr_y(bicubic) + 1.0, (psnr_y(sr), psnr_y(bicubic))


def test_the_gan_model_trades_psnr_for_texture(shared_data: Path) -> None:
    """ESRGAN's finding at small scale: the GAN model (stage 2 from the PSNR model) scores a lower (more
    natural) NIQE and a lower PSNR than the PSNR-oriented model it was fine-tuned from, and its metadata names
    its losses."""
    from esrgan.inference.upscaler import Upscaler
    from esrgan.metrics import niqe
    from esrgan.weights import load_model

    assert GAN_MODEL in bundled_models()
    meta = inspect_weights(GAN_MODEL).metadata
    assert "RaGAN" in meta["esrgan.losses"] and "random" in meta["esrgan.losses"]
    assert meta["esrgan.training_config"] and meta["esrgan.weights"] == "raw"
    assert "Gram" in meta["esrgan.losses"] and "0.1 x esrgan_lite_psnr_x4" in meta["esrgan.interpolation"]
    hr = read_image(shared_data / "Set14" / "baboon.png").pixels[:480, :496]
    lr = np.clip(np.round(imresize(hr.astype(np.float64), 0.25)), 0, 255).astype(np.uint8)
    psnr_sr = Upscaler(load_model(DEFAULT_MODEL), device="cpu", precision="fp32").upscale(lr)
    gan_sr = Upscaler(load_model(GAN_MODEL), device="cpu", precision="fp32").upscale(lr)
    assert niqe(gan_sr, crop_border=4) < niqe(psnr_sr, crop_border=4) - 0.5
    assert psnr(gan_sr, hr, crop_border=4) < psnr(psnr_sr, hr, crop_border=4)


def test_the_gan_model_scores_its_model_card_on_set14(shared_data: Path) -> None:
    """docs/models.md: the GAN model's Set14 PSNR and NIQE (fp32, MATLAB Y, 4-px border; NIQE on the whole
    image), and PSNR at least 0.3 dB above bicubic (issue 11)."""
    from esrgan.eval import BenchmarkSettings, run_benchmark

    result = run_benchmark(
        {"Set14": shared_data / "Set14"},
        models={"gan": GAN_MODEL},
        baselines=("bicubic",),
        settings=BenchmarkSettings(progress=False, comparisons=False),
    )
    gan, bicubic = result.summary("Set14", "gan"), result.summary("Set14", "bicubic")
    assert abs(gan.psnr - GAN_SET14_PSNR) < 0.02 and abs(gan.niqe - GAN_SET14_NIQE) < 0.02
    assert gan.psnr >= bicubic.psnr + 0.3


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The bundled model must never need the network or the download cache.
    monkeypatch.setenv("ESRGAN_CACHE", str(tmp_path / "empty-cache"))


def test_the_default_model_scores_its_model_card_on_set5(shared_data: Path) -> None:
    """docs/models.md: esrgan_lite_psnr_x4 scores 31.41 dB on Set5 (fp32, MATLAB Y, 4-px border), well above
    the earlier default small_psnr_x4 (30.60 dB)."""
    from esrgan.eval import BenchmarkSettings, run_benchmark

    assert DEFAULT_MODEL == "esrgan_lite_psnr_x4"
    result = run_benchmark(
        {"Set5": shared_data / "Set5"},
        models={"default": DEFAULT_MODEL},
        baselines=(),
        settings=BenchmarkSettings(niqe=False, progress=False, comparisons=False),
    )
    assert abs(result.summary("Set5", "default").psnr - 31.41) < 0.02
