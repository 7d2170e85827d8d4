"""Interpolation sweep (network vs image interpolation) on tiny RRDBNets and tiny synthetic images."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter

from esrgan.archs import RRDBNet
from esrgan.cli import EXIT_ERROR, EXIT_OK, main
from esrgan.errors import ConfigError, EsrganError, WeightsError
from esrgan.eval import BenchmarkSettings, run_benchmark
from esrgan.eval import sweep as sw
from esrgan.eval.protocol import score_image
from esrgan.inference.upscaler import Upscaler
from esrgan.ops.matlab_resize import downscale_uint8, modcrop
from esrgan.weights import interpolate_models, load_model, save_model

SCALE = 4
ALPHAS = (0.0, 0.5, 1.0)


def _photo(h: int, w: int, seed: int, gray: bool = False) -> np.ndarray:
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


def _load(path: Path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im)


def _tiny_rrdbnet(seed: int, num_feat: int = 8) -> RRDBNet:
    """A 1-block RRDBNet with weights large enough to give textured, mid-gray outputs (NIQE defined)."""
    torch.manual_seed(seed)
    model = RRDBNet(num_feat=num_feat, num_block=1, num_grow_ch=4, scale=SCALE)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.15)
        model.conv_last.bias.fill_(0.5)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> object:
    """Tiny models: one thread is fastest, and immune to oversubscription when other work shares the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sweep")
    hr = root / "hr"
    # Two 96×96 NIQE blocks after the 4-pixel crop; cat is not a multiple of 4 (mod-crop).
    _save(hr / "baboon.png", _photo(104, 200, seed=1))
    _save(hr / "cat.png", _photo(202, 106, seed=2))
    a = _tiny_rrdbnet(0)
    b = _tiny_rrdbnet(0)
    with torch.no_grad():  # "fine-tuned from A": A's weights, perturbed
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path_a = save_model(a, root / "psnr.safetensors")
    path_b = save_model(b, root / "gan.safetensors")
    path_c = save_model(_tiny_rrdbnet(1, num_feat=12), root / "other.safetensors")

    # Count forward calls per module instance (the network interpolations are copies: other ids).
    calls: dict[int, int] = {}

    def count(module: torch.nn.Module, inputs: object, output: object) -> None:
        calls[id(module)] = calls.get(id(module), 0) + 1

    model_a, model_b = load_model(path_a), load_model(path_b)
    model_a.register_forward_hook(count)
    model_b.register_forward_hook(count)
    cat_hr = modcrop(_load(hr / "cat.png"), SCALE)
    settings = sw.SweepSettings(
        progress=False, crop_image="cat", crop_box=(0, 0, cat_hr.shape[1], cat_hr.shape[0])
    )
    result = sw.run_sweep(model_a, model_b, ALPHAS, {"tiny": hr}, settings)
    return {
        "root": root,
        "hr": hr,
        "path_a": path_a,
        "path_b": path_b,
        "path_c": path_c,
        "result": result,
        "calls": (calls.get(id(model_a), 0), calls.get(id(model_b), 0)),
    }


def _per_image(scores: list, method: str | None = None) -> dict[str, tuple]:
    return {s.image: (s.psnr, s.ssim, s.niqe) for s in scores if method is None or s.method == method}


# --------------------------------------------------------------------------------------------------
# the sweep's numbers


def test_ends_equal_the_benchmarks_of_the_two_models(setup: dict) -> None:
    result = setup["result"]
    bench = run_benchmark(
        {"tiny": setup["hr"]},
        models={
            "A": setup["path_a"],
            "B": setup["path_b"],
            "mid": interpolate_models(setup["path_a"], setup["path_b"], 0.5),
        },
        baselines=(),
        settings=BenchmarkSettings(progress=False, comparisons=False),
    )
    ref_a, ref_b = _per_image(bench.scores, "A"), _per_image(bench.scores, "B")
    assert set(ref_a) == {"baboon", "cat"} and all(v[2] is not None for v in ref_a.values())
    for kind in sw.INTERPOLATIONS:
        assert _per_image(result.image_scores(kind, 0.0)) == ref_a  # exactly, NIQE included
        assert _per_image(result.image_scores(kind, 1.0)) == ref_b
    assert _per_image(result.image_scores("network", 0.5)) == _per_image(bench.scores, "mid")
    # Dataset rows are the benchmark's means.
    for kind in sw.INTERPOLATIONS:
        row, summary = result.row(kind, 0.0, "tiny"), bench.summary("tiny", "A")
        assert (row.psnr, row.ssim, row.niqe, row.images) == (
            summary.psnr,
            summary.ssim,
            summary.niqe,
            2,
        )
    # The two interpolations differ in between (they are not the same method).
    assert result.row("network", 0.5, "tiny").psnr != result.row("image", 0.5, "tiny").psnr
    assert [(r.interpolation, r.alpha) for r in result.rows()] == [
        (k, a) for k in sw.INTERPOLATIONS for a in ALPHAS
    ]


def test_image_interpolation_is_the_blend_of_the_float_outputs(setup: dict) -> None:
    result = setup["result"]
    a, b = load_model(setup["path_a"]), load_model(setup["path_b"])
    ups_a, ups_b = Upscaler(a, device="cpu", precision="fp32"), Upscaler(b, device="cpu", precision="fp32")
    scores = {s.image: s for s in result.image_scores("image", 0.5)}
    for name in ("baboon", "cat"):
        hr = modcrop(_load(setup["hr"] / f"{name}.png"), SCALE)
        lr = downscale_uint8(hr, SCALE)
        lr_float = lr.astype(np.float32) / 255.0
        out_a, out_b = ups_a.upscale(lr_float), ups_b.upscale(lr_float)  # float32, clamped to [0, 1]
        assert out_a.dtype == np.float32 and not np.array_equal(out_a, out_b)
        # Blend first (float32, as the sweep), then quantise (×255, round half to even).
        blend = np.float32(0.5) * out_a + np.float32(0.5) * out_b
        expected = np.round(np.clip(blend, 0, 1) * np.float32(255.0)).astype(np.uint8)
        # Not the same as blending the two quantised images.
        quantised_first = (0.5 * ups_a.upscale(lr).astype(float) + 0.5 * ups_b.upscale(lr)).round()
        assert not np.array_equal(expected, quantised_first)
        p, s, n, _ = score_image(expected, hr, crop_border=SCALE)
        assert (scores[name].psnr, scores[name].ssim, scores[name].niqe) == (p, s, n)
        if name == "cat":  # the crop grid holds the whole image (crop box = full image)
            assert result.crop is not None and result.crop.box == (0, 0, hr.shape[1], hr.shape[0])
            np.testing.assert_array_equal(result.crop.panels[("image", 0.5)], expected)
            np.testing.assert_array_equal(result.crop.hr, hr)


def test_each_model_runs_once_per_image_for_image_interpolation(setup: dict) -> None:
    # 2 images, 3 alphas: the two models run once per image each (no tiling), not once per alpha.
    assert setup["calls"] == (2, 2)


def test_gray_kept_and_tiled_ends_still_exact(setup: dict, tmp_path: Path) -> None:
    hr = tmp_path / "gray"
    _save(hr / "bridge.png", _photo(104, 200, seed=5, gray=True))
    settings = sw.SweepSettings(progress=False, gray_mode="keep", tile=24, tile_overlap=4)
    result = sw.run_sweep(setup["path_a"], setup["path_b"], (0, 1), {"g": hr}, settings)
    bench = run_benchmark(
        {"g": hr},
        models={"A": setup["path_a"], "B": setup["path_b"]},
        baselines=(),
        settings=BenchmarkSettings(
            progress=False, comparisons=False, gray_mode="keep", tile=24, tile_overlap=4
        ),
    )
    for kind in sw.INTERPOLATIONS:
        assert _per_image(result.image_scores(kind, 0.0)) == _per_image(bench.scores, "A")
        assert _per_image(result.image_scores(kind, 1.0)) == _per_image(bench.scores, "B")
    assert result.crop is not None and result.crop.hr.shape[2] == 3  # gray shown as RGB in the grid


# --------------------------------------------------------------------------------------------------
# files


def test_write_sweep_files(setup: dict, tmp_path: Path) -> None:
    result = setup["result"]
    out = tmp_path / "out"
    paths = sw.write_sweep(result, out)
    assert [p.name for p in paths] == list(sw.SWEEP_FILES.values())

    with open(out / "sweep.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(ALPHAS)
    for got, want in zip(rows, result.rows(), strict=True):
        assert (got["interpolation"], float(got["alpha"])) == (want.interpolation, want.alpha)
        assert (float(got["psnr"]), float(got["ssim"]), float(got["niqe"])) == (
            want.psnr,
            want.ssim,
            want.niqe,
        )

    doc = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert doc["format"] == "esrgan-sweep/1" and doc["alphas"] == list(ALPHAS)
    assert len(doc["images"]) == 2 * len(ALPHAS) * 2
    back = sw.read_sweep(out / "sweep.json")
    assert back.rows() == result.rows() and back.crop is None

    md = (out / "sweep.md").read_text(encoding="utf-8")
    assert "## tiny (2 images)" in md and "| image | 0.5 |" in md

    with PILImage.open(out / "perception_distortion.png") as im:
        assert im.format == "PNG" and im.size == (round(4.6 * 120), round(4.2 * 120))
        plot = np.asarray(im.convert("RGB"))
    assert (plot != 255).any(axis=2).mean() > 0.02  # something is drawn
    with PILImage.open(out / "crops.png") as im:
        h, w = result.crop.hr.shape[:2]
        assert im.size == sw.grid_size(len(ALPHAS), h, w)

    # Never replaced without overwrite; replaced with it.
    before = (out / "sweep.csv").read_bytes()
    with pytest.raises(EsrganError, match="already exists"):
        sw.write_sweep(result, out)
    assert (out / "sweep.csv").read_bytes() == before
    sw.write_sweep(result, out, overwrite=True)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_crop_grid_layout() -> None:
    rng = np.random.default_rng(0)
    h, w = 24, 32
    alphas = (0.0, 0.5, 1.0)

    def img() -> np.ndarray:
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

    crop = sw.SweepCrop(
        dataset="Set14",
        image="baboon",
        box=(10, 20, w, h),
        hr=img(),
        bicubic=img(),
        panels={(k, a): img() for k in sw.INTERPOLATIONS for a in alphas},
    )
    grid = sw.render_crop_grid(crop, alphas)
    zoom = 192 // 32  # the largest integer enlargement within 192 pixels
    cw, ch = w * zoom, h * zoom
    pad, label_h, row_label_w, title_h = 6, 22, 112, 26
    assert grid.shape == (title_h + 2 * (label_h + ch + pad) + pad, row_label_w + 4 * (cw + pad) + pad, 3)
    rows = [[crop.hr] + [crop.panels[("network", a)] for a in alphas]]
    rows += [[crop.bicubic] + [crop.panels[("image", a)] for a in alphas]]
    for r, cells in enumerate(rows):
        for c, pixels in enumerate(cells):
            x = row_label_w + c * (cw + pad)
            y = title_h + r * (label_h + ch + pad) + label_h
            np.testing.assert_array_equal(
                grid[y : y + ch, x : x + cw], np.kron(pixels, np.ones((zoom, zoom, 1)))
            )
    # Labels are drawn in the strips above the cells and on the left.
    assert (grid[title_h : title_h + label_h, row_label_w : row_label_w + cw] < 128).any()
    assert (grid[title_h + label_h :, :row_label_w] < 128).any()


def test_missing_matplotlib_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(EsrganError, match=r"esrgan\[plots\]"):
        sw.check_sweep_writable(tmp_path / "out")
    sw.check_sweep_writable(tmp_path / "out", plot=False)  # tables and grid need no matplotlib


# --------------------------------------------------------------------------------------------------
# argument checks


@pytest.mark.parametrize("text", ["0,1.5", "-0.1,0.5", "0,x", "", "nan", "0,0.5,0.5", "0;0.5"])
def test_bad_alphas(text: str) -> None:
    with pytest.raises(ConfigError, match="alpha"):
        sw.parse_alphas(text)


def test_alphas_parsed_and_sorted() -> None:
    assert sw.parse_alphas("1, 0,0.5") == (0.0, 0.5, 1.0)
    assert sw.check_alphas(sw.DEFAULT_ALPHAS) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    with pytest.raises(ConfigError, match="no alpha"):
        sw.check_alphas([])


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "0,0,0,5", "-1,0,5,5", "1,2,3,4,5"])
def test_bad_crop_box(text: str) -> None:
    with pytest.raises(ConfigError, match="crop box"):
        sw.parse_box(text)


def test_incompatible_models(setup: dict) -> None:
    with pytest.raises(WeightsError, match="cannot interpolate"):
        sw.run_sweep(setup["path_a"], setup["path_c"], ALPHAS, {"tiny": setup["hr"]})


def test_crop_image_and_box_checked_before_the_run(setup: dict) -> None:
    with pytest.raises(ConfigError, match="none of the datasets"):
        sw.run_sweep(
            setup["path_a"],
            setup["path_b"],
            ALPHAS,
            {"tiny": setup["hr"]},
            sw.SweepSettings(crop_image="zebra"),
        )
    with pytest.raises(ConfigError, match="does not fit"):
        sw.run_sweep(
            setup["path_a"],
            setup["path_b"],
            ALPHAS,
            {"tiny": setup["hr"]},
            sw.SweepSettings(crop_image="tiny/baboon", crop_box=(150, 0, 60, 60)),
        )


# --------------------------------------------------------------------------------------------------
# CLI


def test_cli_sweep(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = [
        "sweep",
        str(setup["path_a"]),
        str(setup["path_b"]),
        "-d",
        f"tiny={setup['hr']}",
        "--alphas",
        "0,0.5,1",
        "--crop-image",
        "baboon",
        "--crop-box",
        "8,12,40,32",
        "-o",
        str(out),
        "-q",
    ]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "| network | 0.5 |" in printed and "wrote" in printed
    for name in sw.SWEEP_FILES.values():
        assert (out / name).is_file()
    with PILImage.open(out / "crops.png") as im:
        assert im.size == sw.grid_size(3, 32, 40)
    with open(out / "sweep.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    # Same numbers as the library run (model files instead of modules, same protocol).
    lib = {(r.interpolation, r.alpha): r.psnr for r in setup["result"].rows()}
    assert {(r["interpolation"], float(r["alpha"])): float(r["psnr"]) for r in rows} == lib

    assert main(argv) == EXIT_ERROR  # no --overwrite
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alphas", "0,2"], "outside [0, 1]"),
        (["--alphas", "0,half"], "cannot read alpha"),
        (["--crop-box", "1,2,3"], "crop box"),
        (["--crop-image", "nothere"], "none of the datasets"),
    ],
)
def test_cli_errors(
    setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = [
        "sweep",
        str(setup["path_a"]),
        str(setup["path_b"]),
        "-d",
        str(setup["hr"]),
        "-o",
        str(tmp_path / "o"),
    ]
    assert main([*argv, *extra, "-q"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("esrgan sweep: error:")
    assert not (tmp_path / "o").exists()


def test_cli_incompatible_models(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "sweep",
        str(setup["path_a"]),
        str(setup["path_c"]),
        "-d",
        str(setup["hr"]),
        "-o",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "-q"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "cannot interpolate" in err and err.count("\n") == 1


# --------------------------------------------------------------------------------------------------
# the hooks of run_benchmark the sweep is built on


def test_run_benchmark_custom_methods_and_on_image(tmp_path: Path) -> None:
    from esrgan.eval.protocol import upscale_nearest

    hr = tmp_path / "hr"
    _save(hr / "a.png", _photo(40, 48, seed=3))
    _save(hr / "b.png", _photo(44, 40, seed=4))
    seen: list[tuple[str, str, tuple[str, ...]]] = []

    def on_image(dataset: str, image: str, hr_img: np.ndarray, lr: np.ndarray, outputs: dict) -> None:
        assert lr.shape[0] * SCALE == hr_img.shape[0]
        seen.append((dataset, image, tuple(outputs)))

    result = run_benchmark(
        {"s": hr},
        baselines=("nearest",),
        settings=BenchmarkSettings(progress=False, comparisons=False, niqe=False),
        methods={"my-nearest": lambda lr, hr_img: upscale_nearest(lr, SCALE)},
        on_image=on_image,
    )
    assert seen == [("s", "a", ("nearest", "my-nearest")), ("s", "b", ("nearest", "my-nearest"))]
    assert _per_image(result.scores, "my-nearest") == _per_image(result.scores, "nearest")
    assert result.settings["methods"]["my-nearest"] == "custom method"
    with pytest.raises(ConfigError, match="taken"):
        run_benchmark({"s": hr}, baselines=("nearest",), methods={"nearest": lambda lr, hr_img: lr})
