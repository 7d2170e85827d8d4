"""Image interpolation (1 − α)·A + α·B (SPEC §9), as a function and as `esrgan interpolate-images`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esrgan.cli import main
from esrgan.errors import EsrganError
from esrgan.io.images import Image, read_image, write_image
from esrgan.ops.interpolation import interpolate_image_folders, interpolate_images


def test_blend_values_rounding_and_end_points() -> None:
    a = np.array([[0, 10, 255, 100]], dtype=np.uint8)
    b = np.array([[255, 11, 0, 100]], dtype=np.uint8)
    # ties round half to even, as the Upscaler's output and the sweep's blend: 127.5 → 128, 10.5 → 10
    assert interpolate_images(a, b, 0.5).tolist() == [[128, 10, 128, 100]]
    assert interpolate_images(a, b, 0.8).tolist() == [[204, 11, 51, 100]]  # 0.2·a + 0.8·b
    assert np.array_equal(interpolate_images(a, b, 0.0), a) and np.array_equal(
        interpolate_images(a, b, 1.0), b
    )
    wide = interpolate_images(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257, 0.5)
    assert wide.dtype == np.uint16 and wide.tolist() == [[32768, 2698, 32768, 25700]]  # 2698.5 → 2698
    floats = interpolate_images(np.zeros(2, np.float32), np.ones(2, np.float32), 0.25)
    assert floats.dtype == np.float32 and floats.tolist() == [0.25, 0.25]


@pytest.mark.parametrize(
    ("b", "alpha", "message"),
    [
        (np.zeros((2, 3), np.uint8), 0.5, "different shapes"),
        (np.zeros((2, 2), np.uint16), 0.5, "different types"),
        (np.zeros((2, 2), np.uint8), 1.5, "between 0 and 1"),
    ],
)
def test_blend_errors(b: np.ndarray, alpha: float, message: str) -> None:
    with pytest.raises(EsrganError, match=message):
        interpolate_images(np.zeros((2, 2), np.uint8), b, alpha)


def test_folders_blend_same_named_images_with_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a_dir, b_dir, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    a_dir.mkdir(), b_dir.mkdir()
    pix_a, pix_b = rng.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    mask_a, mask_b = rng.integers(0, 256, (2, 6, 5), dtype=np.uint8)
    write_image(a_dir / "x.png", Image(pix_a, alpha=mask_a))
    write_image(b_dir / "x.png", Image(pix_b, alpha=mask_b))
    write_image(a_dir / "only_a.png", Image(pix_a))
    write_image(a_dir / "small.png", Image(pix_a))
    write_image(b_dir / "small.png", Image(pix_b[:3]))
    summary = interpolate_image_folders(a_dir, b_dir, 0.8, out)
    assert [p.name for p in summary.written] == ["x.png"]
    assert sorted(p.name for p, _ in summary.skipped) == ["only_a.png", "small.png"]
    blended = read_image(out / "x.png")
    assert np.array_equal(blended.pixels, interpolate_images(pix_a, pix_b, 0.8))
    assert blended.alpha is not None and np.array_equal(
        blended.alpha, interpolate_images(mask_a, mask_b, 0.8)
    )
    with pytest.raises(EsrganError, match="must differ"):
        interpolate_image_folders(a_dir, b_dir, 0.5, a_dir)


def test_cli_interpolate_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_dir, b_dir, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    a_dir.mkdir(), b_dir.mkdir()
    write_image(a_dir / "img.png", Image(np.zeros((4, 4, 3), np.uint8)))
    write_image(b_dir / "img.png", Image(np.full((4, 4, 3), 200, np.uint8)))
    assert main(["interpolate-images", str(a_dir), str(b_dir), "--alpha", "0.25", "-o", str(out)]) == 0
    assert read_image(out / "img.png").pixels.max() == 50
    assert "1 images written" in capsys.readouterr().out
    assert (
        main(["interpolate-images", str(a_dir), str(b_dir), "--alpha", "0.25", "-o", str(out)]) == 2
    )  # exists
    assert "already exists" in capsys.readouterr().err
