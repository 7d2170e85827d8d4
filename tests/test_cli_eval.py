"""`esrgan benchmark` and `esrgan evaluate` via `esrgan.cli.main`: files written, numbers, clear errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter

from esrgan.archs import RRDBNet
from esrgan.cli import EXIT_ERROR, EXIT_OK, main
from esrgan.eval import BenchmarkSettings, run_benchmark
from esrgan.eval.protocol import upscale_bicubic, upscale_nearest
from esrgan.inference.upscaler import Upscaler
from esrgan.metrics import niqe, psnr, ssim
from esrgan.ops.matlab_resize import downscale_uint8, modcrop

SCALE = 4


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = 0.7 * gaussian_filter(rng.random((h, w, 3)), sigma=(3, 3, 0))
    img += 0.3 * gaussian_filter(rng.random((h, w, 3)), sigma=(0.8, 0.8, 0))
    img = (img - img.min()) / (img.max() - img.min())
    return np.round(255 * img).astype(np.uint8)


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)


def _load(path: Path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im)


@pytest.fixture()
def hr_dir(tmp_path: Path) -> Path:
    """Two HR images, one not a multiple of 4; two 96×96 blocks after the 4-pixel crop, so NIQE is defined."""
    d = tmp_path / "hr"
    _save(d / "cat.png", _photo(110, 207, seed=1))
    _save(d / "dog.png", _photo(204, 104, seed=2))
    return d


def _expected(hr_path: Path, method: str) -> tuple[np.ndarray, np.ndarray]:
    hr = modcrop(_load(hr_path), SCALE)
    lr = downscale_uint8(hr, SCALE)
    sr = upscale_bicubic(lr, SCALE) if method == "bicubic" else upscale_nearest(lr, SCALE)
    return sr, hr


def _csv_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["image"], r["method"]): r for r in csv.DictReader(f)}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------------ benchmark


def test_benchmark_bicubic_and_nearest_write_tables_images_and_report(
    hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, _ = _run(
        ["benchmark", "--model", "bicubic", "-m", "nearest", "--data", f"tiny={hr_dir}", "-o", str(out)]
        + ["--save-images", "--report", str(tmp_path / "report"), "-q"],
        capsys,
    )
    assert code == EXIT_OK
    assert {p.name for p in out.iterdir()} == {"results.md", "results.csv", "results.json", "images"}
    assert "| bicubic |" in stdout and "| nearest |" in stdout  # the summary table is printed

    rows = _csv_rows(out / "results.csv")
    assert set(rows) == {(i, m) for i in ("cat", "dog") for m in ("bicubic", "nearest")}
    for (image, method), row in rows.items():
        sr, hr = _expected(hr_dir / f"{image}.png", method)
        assert (int(row["height"]), int(row["width"])) == hr.shape[:2]  # mod-cropped
        assert float(row["psnr"]) == psnr(sr, hr, crop_border=SCALE)  # CSV keeps full precision
        assert float(row["ssim"]) == ssim(sr, hr, crop_border=SCALE)
        assert float(row["niqe"]) == niqe(sr, crop_border=SCALE)
        assert float(row["seconds"]) >= 0
        np.testing.assert_array_equal(_load(out / "images" / "tiny" / method / f"{image}.png"), sr)

    doc = json.loads((out / "results.json").read_text())
    settings = doc["settings"]
    assert settings["scale"] == SCALE and settings["crop_border"] == SCALE and settings["y_rounding"] is True
    assert list(settings["methods"]) == ["bicubic", "nearest"]
    bicubic = next(s for s in doc["summary"] if s["method"] == "bicubic")
    mean = (float(rows[("cat", "bicubic")]["psnr"]) + float(rows[("dog", "bicubic")]["psnr"])) / 2
    assert bicubic["psnr"] == pytest.approx(mean, abs=1e-12) and bicubic["images"] == 2
    assert "| bicubic |" in (out / "results.md").read_text()

    page = (tmp_path / "report" / "index.html").read_text()
    assert "tiny / cat" in page and "tiny / dog" in page
    assert len(list((tmp_path / "report" / "images").glob("*.png"))) == 2 * 4  # thumbnail, 2 methods, HR


def test_benchmark_defaults_to_bicubic_and_options_reach_the_runner(
    hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["benchmark", "-d", str(hr_dir), "-o", str(out), "-q", "--no-niqe", "--float-y"]
    code, _, _ = _run([*argv, "--crop-border", "6", "--back-projection", "2", "--bp-variant", "ibp"], capsys)
    assert code == EXIT_OK
    doc = json.loads((out / "results.json").read_text())
    assert [s["method"] for s in doc["summary"]] == ["bicubic", "bicubic+BP2"]
    assert doc["summary"][0]["dataset"] == "hr"  # a bare folder is named after itself
    assert doc["settings"]["back_projection"] == {"iterations": 2, "variant": "ibp"}
    assert doc["settings"]["y_rounding"] is False and doc["settings"]["crop_border"] == 6
    sr, hr = _expected(hr_dir / "cat.png", "bicubic")
    cat = next(r for r in doc["images"] if r["image"] == "cat" and r["method"] == "bicubic")
    assert cat["psnr"] == psnr(sr, hr, crop_border=6, y_rounding=False) and cat["niqe"] is None

    # A second run refuses to replace the tables — before doing any work — unless --overwrite is given.
    code, _, err = _run(argv, capsys)
    assert code == EXIT_ERROR and "already exists" in err and "--overwrite" in err
    assert _run([*argv, "--overwrite"], capsys)[0] == EXIT_OK


def test_benchmark_with_lr_folder(hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lr_dir = tmp_path / "lr"
    for name in ("cat", "dog"):
        _save(lr_dir / f"{name}x4.png", downscale_uint8(modcrop(_load(hr_dir / f"{name}.png"), SCALE), SCALE))
    generated, given = tmp_path / "a", tmp_path / "b"
    assert _run(["benchmark", "-d", f"t={hr_dir}", "-o", str(generated), "-q"], capsys)[0] == EXIT_OK
    assert _run(["benchmark", "-d", f"t={hr_dir}:{lr_dir}", "-o", str(given), "-q"], capsys)[0] == EXIT_OK
    a = json.loads((generated / "results.json").read_text())
    b = json.loads((given / "results.json").read_text())
    assert [(r["psnr"], r["ssim"], r["niqe"]) for r in a["images"]] == [
        (r["psnr"], r["ssim"], r["niqe"]) for r in b["images"]
    ]
    assert "read from" in b["settings"]["lr_generation"]["t"]


def test_benchmark_reproduces_the_published_set5_bicubic_numbers(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "set5"
    code, _, _ = _run(
        [
            "benchmark",
            "-m",
            "bicubic",
            "-d",
            f"Set5={shared_data / 'Set5'}",
            "-o",
            str(out),
            "-q",
            "--no-niqe",
        ],
        capsys,
    )
    assert code == EXIT_OK
    (summary,) = json.loads((out / "results.json").read_text())["summary"]
    assert summary["psnr"] == pytest.approx(28.42, abs=0.01)  # ESRGAN supp. Table 2: 28.42 / 0.8104
    assert summary["ssim"] == pytest.approx(0.8104, abs=0.001)


def test_a_real_network_through_the_python_api(hr_dir: Path) -> None:
    # The CLI loads models by path with esrgan.weights.load_model; the runner itself takes any nn.Module.
    torch.manual_seed(0)
    model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=SCALE).eval()
    settings = BenchmarkSettings(progress=False, comparisons=False, niqe=False, device="cpu")
    result = run_benchmark({"tiny": hr_dir}, models={"rrdb": model}, baselines=(), settings=settings)
    assert result.methods() == ["rrdb"] and result.settings["scale"] == SCALE
    for row in result.scores:
        hr = modcrop(_load(hr_dir / f"{row.image}.png"), SCALE)
        sr = Upscaler(model, device="cpu", precision="fp32").upscale(downscale_uint8(hr, SCALE))
        assert row.psnr == psnr(sr, hr, crop_border=SCALE) and row.ssim == ssim(sr, hr, crop_border=SCALE)
        assert row.seconds is not None and row.seconds > 0


# ------------------------------------------------------------------------------------------------- evaluate


def test_evaluate_matches_the_benchmark(
    hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = tmp_path / "bench"
    argv = ["benchmark", "-d", f"tiny={hr_dir}", "-o", str(bench), "--save-images", "-q"]
    assert _run(argv, capsys)[0] == EXIT_OK
    sr_dir = tmp_path / "sr"
    sr_dir.mkdir()
    for name in ("cat", "dog"):  # SR files named the way other tools name them
        (sr_dir / f"{name}_rlt.png").write_bytes(
            (bench / "images" / "tiny" / "bicubic" / f"{name}.png").read_bytes()
        )

    out = tmp_path / "eval"
    code, stdout, _ = _run(
        ["evaluate", str(sr_dir), str(hr_dir), "--modcrop", "-o", str(out), "--name", "mine", "-q"]
        + ["--report", str(tmp_path / "report")],
        capsys,
    )
    assert code == EXIT_OK
    assert "| mine |" in stdout and "PIRM RMSE" in stdout
    assert (tmp_path / "report" / "index.html").is_file()
    ev = _csv_rows(out / "results.csv")
    be = _csv_rows(bench / "results.csv")
    for name in ("cat", "dog"):
        for key in ("psnr", "ssim", "niqe", "rmse", "height", "width"):
            assert ev[(name, "mine")][key] == be[(name, "bicubic")][key]
    doc = json.loads((out / "results.json").read_text())
    assert doc["settings"]["kind"] == "evaluate" and doc["settings"]["hr_modcropped_to_sr"] == ["cat"]
    rmse = doc["summary"][0]["rmse"]
    assert rmse == pytest.approx(
        math.sqrt(np.mean([float(ev[(n, "mine")]["rmse"]) ** 2 for n in ("cat", "dog")]))
    )


# --------------------------------------------------------------------------------------------------- errors


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, _, err = _run(argv, capsys)
    assert code == EXIT_ERROR, err
    assert "Traceback" not in err
    assert err.startswith(f"esrgan {argv[0]}: error: ")
    for needle in needles:
        assert needle in err, err
    return err


def test_benchmark_errors_are_clear(hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["-o", str(tmp_path / "out"), "-q"]
    missing = tmp_path / "nowhere"
    _fails(["benchmark", "-d", f"x={missing}", *out], capsys, str(missing), "not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    _fails(["benchmark", "-d", f"x={empty}", *out], capsys, str(empty), "no image files")
    lr_dir = tmp_path / "lr"
    _save(lr_dir / "cat.png", np.zeros((27, 51, 3), np.uint8))
    _fails(["benchmark", "-d", f"x={hr_dir}:{lr_dir}", *out], capsys, "no LR image", "dog")
    _fails(
        ["benchmark", "-d", f"x={hr_dir}", "-m", "mine=bicubic", *out], capsys, "baselines keep their name"
    )
    _fails(["benchmark", "-d", f"x={hr_dir}", "-d", f"x={hr_dir}", *out], capsys, "'x' is used twice")
    _fails(["benchmark", "-d", f"x={hr_dir}", "--scale", "0", *out], capsys, "scale")
    weights = tmp_path / "model.pth"
    _fails(["benchmark", "-d", f"x={hr_dir}", "-m", str(weights), *out], capsys, str(weights))
    assert not (tmp_path / "out").exists()  # nothing written by failed runs


def test_evaluate_errors_are_clear(hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sr_dir = tmp_path / "sr"
    _fails(["evaluate", str(sr_dir), str(hr_dir), "-q"], capsys, str(sr_dir), "not a folder")
    sr_dir.mkdir()
    _fails(["evaluate", str(sr_dir), str(hr_dir), "-q"], capsys, str(sr_dir), "no image files")
    cat_sr = upscale_bicubic(downscale_uint8(modcrop(_load(hr_dir / "cat.png"), SCALE), SCALE), SCALE)
    _save(sr_dir / "cat_out.png", cat_sr)
    _save(sr_dir / "cow_out.png", cat_sr)
    _fails(["evaluate", str(sr_dir), str(hr_dir), "-q"], capsys, "cow_out.png", "match no HR image")
    (sr_dir / "cow_out.png").unlink()
    _fails(["evaluate", str(sr_dir), str(hr_dir), "-q"], capsys, "no SR result", "dog")
    _save(sr_dir / "dog_out.png", np.zeros((51, 26, 3), np.uint8))  # ×4 too small: a wrong pairing
    _fails(["evaluate", str(sr_dir), str(hr_dir), "-q", "--modcrop"], capsys, "more than a mod-crop")
    _save(sr_dir / "dog_out.png", modcrop(_load(hr_dir / "dog.png"), SCALE))
    _fails(["evaluate", str(sr_dir), str(hr_dir), "-q"], capsys, "cat_out.png", "--modcrop")
