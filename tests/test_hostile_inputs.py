"""Hostile and careless inputs (issue 12): output-path escapes, unbounded outscale, broken weights, worker
errors, and the smaller reporting defects. Each test failed before the fix it guards."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from esrgan.archs import RRDBNet
from esrgan.cli import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, main
from esrgan.errors import EsrganError, ImageError, WeightsError
from esrgan.inference.streaming import check_output_size, upscale_to_png
from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import Image, read_image
from esrgan.jobs.plan import check_name_part, check_outscale, collect_inputs, output_path
from esrgan.weights import inspect_weights, load_model, save_model

RNG = np.random.default_rng(12)


def _model_file(tmp_path: Path, scale: int = 2) -> Path:
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=scale)
    return save_model(net, tmp_path / f"tiny_x{scale}.safetensors")


def _png(path: Path, size: tuple[int, int] = (12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Path → content hash of every file under `root` except those under `skip`."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and skip not in p.parents:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------------------------------
# 1. nothing is ever written outside -o


ESCAPING_SUFFIXES = [
    "x/../../escaped",
    "../escaped",
    "..",
    "a\\..\\..\\escaped",
    "x\0y",
    "/abs/escaped",
    "x%2F..%2F..%2Fescaped",  # URL-encoded: harmless to the file system, but '..' is refused anyway
]
# Encoded look-alikes of separators are ordinary characters to the file system: allowed, and stay inside -o.
ENCODED_SUFFIXES = ["x%2Fescaped", "x\uff0f\u2025\uff0fescaped", "x%00y", "x%5C%2E%2Eescaped"]


@pytest.mark.parametrize("suffix", ESCAPING_SUFFIXES)
def test_a_suffix_that_leaves_the_folder_is_refused(suffix: str) -> None:
    with pytest.raises(EsrganError, match="--suffix"):
        output_path(Path("in/photo.png"), Path("out"), suffix)
    with pytest.raises(EsrganError):
        check_name_part(suffix, "--suffix")


@pytest.mark.parametrize("overwrite", [False, True])
def test_nothing_is_written_outside_the_output_folder(tmp_path: Path, overwrite: bool) -> None:
    root = tmp_path / "root"
    src = _png(root / "in" / "good.png")
    _png(root / "escaped.png")  # the file the escape replaced
    _png(root / "elsewhere" / "good_out.png")
    model = _model_file(tmp_path)
    out = root / "work" / "out"
    out.mkdir(parents=True)
    # symlinks inside -o: to a folder outside and, under an output's own name, to a file outside
    (out / "link").symlink_to(root / "elsewhere", target_is_directory=True)
    (out / "good_link.png").symlink_to(root / "elsewhere" / "good_out.png")
    before = _snapshot(root, out)
    extra = ["--overwrite"] if overwrite else []

    for suffix in ESCAPING_SUFFIXES:
        code = main(["upscale", str(src), "-o", str(out), "-m", str(model), "-q", "--suffix", suffix, *extra])
        assert code == EXIT_ERROR, suffix
    for suffix in ENCODED_SUFFIXES:
        assert (
            main(["upscale", str(src), "-o", str(out), "-m", str(model), "-q", "--suffix", suffix, *extra])
            == 0
        )
    # an output whose name is a symlink to a file outside: skipped, never written through
    code = main(["upscale", str(src), "-o", str(out), "-m", str(model), "-q", "--suffix", "link", *extra])
    assert code == EXIT_OK
    assert (out / "good_link.png").is_symlink()

    assert _snapshot(root, out) == before  # not one byte outside -o changed
    made = sorted(p.name for p in out.iterdir() if p.is_file() and not p.is_symlink())
    assert len(made) == len(ENCODED_SUFFIXES)
    assert all(p.parent == out for p in out.iterdir())


def test_a_symlinked_output_folder_is_used_as_the_folder(tmp_path: Path) -> None:
    src = _png(tmp_path / "in" / "good.png")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real, target_is_directory=True)
    model = _model_file(tmp_path)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", str(model), "-q"]) == 0
    assert (real / "good_out.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "real", "tiny_x2.safetensors"]


def test_a_symlinked_manifest_is_refused(tmp_path: Path) -> None:
    src = _png(tmp_path / "in" / "good.png")
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / ".esrgan-manifest").symlink_to(elsewhere, target_is_directory=True)
    model = _model_file(tmp_path)
    assert main(["upscale", str(src), "-o", str(out), "-m", str(model), "-q"]) == EXIT_ERROR
    assert list(elsewhere.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# 2. --outscale: streamed, and bounded


def test_outscale_streams_to_png_with_the_in_memory_pixels(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    pixels = RNG.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (37, 29), dtype=np.uint8)
    for outscale in (3.3, 1.5, 5.0):
        for image in (Image(pixels), Image(pixels, alpha)):
            up = Upscaler(net, tile=16, tile_overlap=2, device="cpu", outscale=outscale)
            assert up.can_stream
            want = up.upscale_image(image)
            dst = tmp_path / f"s{outscale}_{image.alpha is not None}.png"
            upscale_to_png(up, image, dst)
            got = read_image(dst)
            assert got.pixels.shape == want.pixels.shape == (round(37 * outscale), round(29 * outscale), 3)
            # same resize, blocked differently: float rounding may move a pixel by one level at most
            assert np.abs(got.pixels.astype(int) - want.pixels.astype(int)).max() <= 1
            assert np.mean(got.pixels != want.pixels) < 0.01
            if image.alpha is not None:
                assert np.abs(got.alpha.astype(int) - want.alpha.astype(int)).max() <= 1


def test_outscale_resize_is_matlab_bicubic(tmp_path: Path) -> None:
    """At an integer outscale/scale ratio the resize equals MATLAB imresize of the network output."""
    from esrgan.ops.matlab_resize import imresize

    torch.manual_seed(2)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2).eval()
    x = torch.rand(1, 3, 10, 8)
    up = Upscaler(net, tile=0, device="cpu", outscale=4)
    with torch.no_grad():
        want = imresize(net(x).clamp(0, 1).double(), 2.0).clamp(0, 1).float()
    assert torch.allclose(up.upscale_tensor(x), want, atol=1e-5)


def test_impossible_outscale_is_refused_before_the_model_runs(tmp_path: Path) -> None:
    src = _png(tmp_path / "one.png", (8, 6))
    model = _model_file(tmp_path)
    out = tmp_path / "out"
    code = main(["upscale", str(src), "-o", str(out), "-m", str(model), "-q", "--outscale", "100000"])
    assert code == EXIT_ERROR
    assert not out.exists()  # refused before anything was made

    class Exploding(torch.nn.Module):
        scale = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the model must not run")

    image = Image(np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(ImageError, match="800,000×600,000"):
        check_output_size(Upscaler(Exploding(), outscale=100000, device="cpu"), image, "x.png")
    with pytest.raises(ImageError, match="JPEG files hold at most 65,535"):
        check_output_size(Upscaler(Exploding(), outscale=10000, device="cpu"), image, "x.jpg")
    with pytest.raises(EsrganError, match="megapixels"):
        Upscaler(Exploding(), outscale=100000, device="cpu").upscale(image.pixels)


def test_impossible_outscale_is_refused_from_the_headers_without_importing_torch(tmp_path: Path) -> None:
    """The refusal must be quick (issue 12: under a second), so it may not wait for torch or a model."""
    src = _png(tmp_path / "one.png", (8, 6))
    script = (
        "import sys\n"
        "from esrgan.cli import main\n"
        f"code = main(['upscale', {str(src)!r}, '-o', {str(tmp_path / 'out')!r}, '--outscale', '100000'])\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == [str(EXIT_ERROR), "False"], done.stderr
    assert "800,000×600,000 pixels" in done.stderr and "lower --outscale" in done.stderr


def test_check_outscale_applies_the_limits_of_each_output_format(tmp_path: Path) -> None:
    small, big = _png(tmp_path / "small.png", (8, 6)), _png(tmp_path / "big.png", (300, 200))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "out"
    check_outscale(
        [small, big, broken], out, 100
    )  # 30000×20000 PNG: streamed, allowed; broken: left to the job
    with pytest.raises(EsrganError, match="big.png.*90,000×60,000.*JPEG files hold at most 65,535"):
        check_outscale([small, big], out, 300, ext="jpg")
    with pytest.raises(EsrganError, match="big.png.*268 megapixels in memory"):
        check_outscale([small, big], out, 100, streamable=False)  # back-projection: made in memory
    with pytest.raises(EsrganError, match="WEBP files hold at most 16,383"):
        check_outscale([small], out, 3000, ext="webp")


# --------------------------------------------------------------------------------------------------
# 3. weights with NaN or Inf


def test_nonfinite_weights_are_refused_and_inspect_shows_them(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    with torch.no_grad():
        net.conv_body.weight[0, 0, 0, 0] = float("nan")
        net.conv_up1.bias[1] = float("inf")
    bad = save_model(net, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match="conv_body.weight.*1 NaN"):
        load_model(bad)
    info = inspect_weights(bad)
    assert set(info.nonfinite) == {"conv_body.weight", "conv_up1.bias"}
    assert main(["inspect", str(bad)]) == EXIT_ERROR
    printed = capsys.readouterr().out
    assert "NOT USABLE" in printed and "conv_up1.bias: 0 NaN, 1 Inf" in printed
    src = _png(tmp_path / "in.png")
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", str(bad), "-q"]) == EXIT_ERROR
    assert not (tmp_path / "out" / "in_out.png").exists()


# --------------------------------------------------------------------------------------------------
# 4. a pickle that would run code


class _RunsCode:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo this should never run",))


def test_a_pickle_that_would_run_code_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        torch.save({"params": {"conv_first.weight": torch.zeros(1)}, "x": _RunsCode()}, f)
    with pytest.raises(WeightsError, match="could execute code") as info:
        load_model(path)
    assert "corrupt" not in str(info.value)
    plain = tmp_path / "plain.pkl.pth"
    plain.write_bytes(pickle.dumps(_RunsCode(), protocol=2))  # a legacy (non-zip) pickle, same payload
    with pytest.raises(WeightsError, match="could execute code"):
        load_model(plain)


# --------------------------------------------------------------------------------------------------
# 5. a corrupt training image, with loader workers


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_training_image_is_one_line_naming_it(
    tmp_path: Path, workers: int, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "hr"
    for k in range(3):
        _png(data / f"{k}.png", (32, 32))
    (data / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # header only: fails on decode
    run = tmp_path / "run"
    args = [
        "train", "configs/tiny_psnr.yaml", "--run-dir", str(run),
        f"data.hr_dirs=[{data}]", "data.val_hr_dirs=[]", f"data.num_workers={workers}", "data.gt_size=16",
        "data.batch_size=3", "train.total_iters=2", "train.device=cpu",
    ]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(args) == EXIT_ERROR
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip().splitlines()
    error_lines = [line for line in err if "error:" in line]
    assert len(error_lines) == 1 and "1.png" in error_lines[0]
    assert "Traceback" not in "\n".join(err)
    assert not run.exists()  # a failed run leaves no folder behind


# --------------------------------------------------------------------------------------------------
# 6. smaller ones


def test_animated_gif_warns_that_frames_are_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = [PILImage.new("RGB", (8, 8), (k * 40, 0, 0)) for k in range(3)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with caplog.at_level("WARNING"):
        read_image(path)
    assert "3 frames" in caplog.text and "only the first frame" in caplog.text


def test_error_messages_carry_no_object_reprs(tmp_path: Path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(b"this is not an image at all" * 4)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert " object at 0x" not in str(info.value) and str(path) in str(info.value)


def test_each_failure_is_printed_once_naming_the_path_once(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "in" / "bad.png"
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    good = _png(tmp_path / "in" / "good.png")
    model = _model_file(tmp_path)
    code = main(["upscale", str(bad), str(good), "-o", str(tmp_path / "out"), "-m", str(model), "-q"])
    assert code == EXIT_SOME_FAILED
    captured = capsys.readouterr()
    text = captured.out + captured.err
    lines = [line for line in text.splitlines() if "bad.png" in line]
    assert len(lines) == 1, text
    assert lines[0].count(str(bad)) == 1


def test_a_fifo_is_not_reported_as_missing(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(EsrganError, match="FIFO") as info:
        collect_inputs([str(fifo)])
    assert "no such file" not in str(info.value)
    with pytest.raises(EsrganError, match="character device"):
        collect_inputs(["/dev/null"])


def test_a_run_where_every_file_failed_leaves_no_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    out = tmp_path / "out"
    model = _model_file(tmp_path)
    assert main(["upscale", str(bad), "-o", str(out), "-m", str(model), "-q"]) == EXIT_SOME_FAILED
    assert list(out.iterdir()) == []


def test_sizes_are_width_by_height_everywhere(tmp_path: Path) -> None:
    from esrgan.eval.protocol import crop_to  # the benchmark's HR/SR size check

    hr = np.zeros((60, 100, 3), np.uint8)  # 100 wide, 60 high
    with pytest.raises(EsrganError, match=r"HR is 100×60 but .* needs 40×20"):
        crop_to(hr, 20, 40, Path("hr.png"), "SR")


def test_a_failed_train_with_a_bad_config_leaves_an_existing_run_folder_alone(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "mine.txt").write_text("keep me")
    root = Path(__file__).resolve().parents[1]
    args = ["train", str(root / "configs/tiny_psnr.yaml"), "--run-dir", str(run),
            f"data.hr_dirs=[{tmp_path / 'missing'}]", "train.device=cpu"]  # fmt: skip
    assert main(args) == EXIT_ERROR
    assert (run / "mine.txt").read_text() == "keep me"
