"""The upscale job over many files: inputs, output names, failures and skips, metadata carried."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from PIL import ImageCms
from torch import nn

from esrgan.errors import EsrganError
from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import Image, read_image, write_image
from esrgan.jobs.plan import collect_inputs, output_path
from esrgan.jobs.upscale import UpscaleSummary, upscale_files

RNG = np.random.default_rng(3)


class Nearest(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = 2
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return F.interpolate(x, scale_factor=2, mode="nearest")


def _repeat(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


def _write(path: Path, mode: str = "RGB", dtype: type = np.uint8, **meta: bytes) -> Image:
    top = np.iinfo(dtype).max + 1
    color = RNG.integers(0, top, (6, 5) if mode.startswith("L") else (6, 5, 3), dtype=dtype)
    alpha = RNG.integers(0, top, (6, 5), dtype=dtype) if mode.endswith("A") else None
    image = Image(color, alpha, **meta)
    write_image(path, image)
    return image


# --------------------------------------------------------------------------------------------------
# inputs and names


def test_collect_inputs_from_folders_globs_and_files(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.png", "a.JPG", "c.tif", ".hidden.png", "notes.txt", "sub/deep.png"):
        (folder / name).write_bytes(b"x")
    other = tmp_path / "other.webp"
    other.write_bytes(b"x")
    odd = tmp_path / "image.data"
    odd.write_bytes(b"x")

    assert collect_inputs([str(folder)]) == [folder / "a.JPG", folder / "b.png", folder / "c.tif"]
    assert collect_inputs([str(tmp_path / "in" / "*.p*")]) == [folder / "b.png"]
    # explicit files are taken whatever their extension; duplicates are dropped, order kept
    got = collect_inputs([str(odd), str(folder / "b.png"), str(folder), str(other)])
    assert got == [odd, folder / "b.png", folder / "a.JPG", folder / "c.tif", other]


def test_collect_inputs_errors(tmp_path: Path) -> None:
    with pytest.raises(EsrganError, match="missing.png"):
        collect_inputs([str(tmp_path / "missing.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EsrganError, match="no images or videos found"):
        collect_inputs([str(tmp_path / "empty"), str(tmp_path / "*.png")])


def test_output_path_names() -> None:
    out = Path("results")
    assert output_path(Path("in/photo.jpg"), out, "out") == Path("results/photo_out.jpg")
    assert output_path(Path("in/photo.JPG"), out, "x4", "png") == Path("results/photo_x4.png")
    assert output_path(Path("in/photo.jpg"), out, "", ".tif") == Path("results/photo.tif")
    assert output_path(Path("in/anim.gif"), out, "out") == Path("results/anim_out.png")
    with pytest.raises(EsrganError, match="gif"):
        output_path(Path("in/photo.jpg"), out, "out", "gif")


# --------------------------------------------------------------------------------------------------
# the job


def test_bad_file_is_reported_and_the_rest_continue(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good_png = _write(src / "a.png", "RGBA")
    (src / "b.png").write_bytes(b"definitely not a png")
    good_tif = _write(src / "c.tif", "RGB", np.uint16)
    out = tmp_path / "out"

    summary = upscale_files(
        Upscaler(Nearest(), precision="fp32"), collect_inputs([str(src)]), out, progress=False
    )

    assert isinstance(summary, UpscaleSummary)
    assert [p.name for p, _ in summary.done] == ["a.png", "c.tif"]
    assert summary.skipped == []
    assert len(summary.failed) == 1 and summary.failed[0][0] == src / "b.png"
    assert "b.png" in summary.failed[0][1]
    assert sorted(p.name for p in out.iterdir()) == ["a_out.png", "c_out.tif"]

    a = read_image(out / "a_out.png")
    np.testing.assert_array_equal(a.pixels, _repeat(good_png.pixels))
    np.testing.assert_array_equal(a.alpha, _repeat(good_png.alpha))
    c = read_image(out / "c_out.tif")
    assert c.bit_depth == 16
    np.testing.assert_array_equal(c.pixels, _repeat(good_tif.pixels))


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    image = _write(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_out.png").write_bytes(b"keep me")
    model = Nearest()

    summary = upscale_files(Upscaler(model, precision="fp32"), [src], out, progress=False)
    assert summary.done == [] and len(summary.skipped) == 1
    assert "--overwrite" in summary.skipped[0][1]
    assert (out / "a_out.png").read_bytes() == b"keep me" and model.calls == 0

    summary = upscale_files(Upscaler(model, precision="fp32"), [src], out, overwrite=True, progress=False)
    assert summary.done == [(src, out / "a_out.png")]
    np.testing.assert_array_equal(read_image(out / "a_out.png").pixels, _repeat(image.pixels))


def test_same_output_name_is_an_error_before_any_work(tmp_path: Path) -> None:
    _write(tmp_path / "a.png")
    _write(tmp_path / "a.tif")
    model = Nearest()
    with pytest.raises(EsrganError, match="both"):
        upscale_files(
            Upscaler(model, precision="fp32"),
            [tmp_path / "a.png", tmp_path / "a.tif"],
            tmp_path / "out",
            ext="png",
        )
    assert model.calls == 0 and not (tmp_path / "out").exists()


def test_output_replacing_its_input_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "a.png")
    with pytest.raises(EsrganError, match="replace an input"):
        upscale_files(
            Upscaler(Nearest(), precision="fp32"), [tmp_path / "a.png"], tmp_path, suffix="", overwrite=True
        )


@pytest.mark.parametrize(("mode", "dtype"), [("RGB", np.uint16), ("RGBA", np.uint8)])
def test_image_the_format_cannot_hold_fails_before_the_model_runs(
    tmp_path: Path, mode: str, dtype: type
) -> None:
    _write(tmp_path / "a.png", mode, dtype)
    model = Nearest()
    summary = upscale_files(
        Upscaler(model, precision="fp32"), [tmp_path / "a.png"], tmp_path / "out", ext="jpg", progress=False
    )
    assert summary.done == [] and len(summary.failed) == 1
    assert "--ext png" in summary.failed[0][1]
    assert model.calls == 0
    assert list((tmp_path / "out").iterdir()) == []


def test_jpeg_metadata_is_carried(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = PILImage.Exif()
    exif[0x010F] = "camera"
    src = tmp_path / "photo.jpg"
    PILImage.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(src, icc_profile=icc, exif=exif.tobytes())
    summary = upscale_files(Upscaler(Nearest(), precision="fp32"), [src], tmp_path / "out", progress=False)
    assert summary.failed == []
    got = read_image(tmp_path / "out" / "photo_out.jpg")
    assert got.pixels.shape == (16, 16, 3)
    assert got.icc_profile == icc
    assert got.exif == read_image(src).exif


def test_unexpected_errors_are_recorded_too(tmp_path: Path) -> None:
    class Broken(Nearest):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("kaboom")

    _write(tmp_path / "a.png")
    summary = upscale_files(
        Upscaler(Broken(), precision="fp32"), [tmp_path / "a.png"], tmp_path / "out", progress=False
    )
    assert summary.failed == [(tmp_path / "a.png", "unexpected error: RuntimeError: kaboom")]
