"""Sub-image extraction (BasicSR extract_subimages, SPEC §6.5) and the `esrgan prepare` command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from esrgan.cli import main
from esrgan.data.prepare import extract_subimages, subimage_name, subimage_positions
from esrgan.errors import EsrganError
from esrgan.io.images import read_image
from esrgan.ops.matlab_resize import downscale_uint8, modcrop

RNG = np.random.default_rng(11)


def _noise(h: int, w: int, dtype: type = np.uint8, channels: int = 3) -> np.ndarray:
    top = int(np.iinfo(dtype).max) + 1
    shape = (h, w, channels) if channels > 1 else (h, w)
    return RNG.integers(0, top, shape, dtype=np.int64).astype(dtype)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1] if rgb.ndim == 3 else rgb))


def _basicsr_positions(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """BasicSR scripts/data_preparation/extract_subimages.py, verbatim logic."""
    space = np.arange(0, length - crop + 1, step)
    if length - (space[-1] + crop) > thresh:
        space = np.append(space, length - crop)
    return [int(v) for v in space]


def test_positions_follow_basicsr() -> None:
    assert subimage_positions(1000, 480, 240, 0) == [0, 240, 480, 520]
    assert subimage_positions(1000, 480, 240, 48) == [0, 240, 480]  # 40 px left over, not more than 48
    assert subimage_positions(960, 480, 240, 0) == [0, 240, 480]
    assert subimage_positions(480, 480, 240, 0) == [0]
    assert subimage_positions(479, 480, 240, 0) == []
    for length in range(30, 120, 7):
        for crop in (16, 30):
            for step in (8, 15, 30):
                for thresh in (0, 5, 48):
                    expected = _basicsr_positions(length, crop, step, thresh)
                    assert subimage_positions(length, crop, step, thresh) == expected


def test_names_drop_a_div2k_scale_suffix_only_at_the_end() -> None:
    assert subimage_name("0001", 1) == "0001_s001.png"
    assert subimage_name("0001x4", 12) == "0001_s012.png"
    assert subimage_name("box4", 3) == "box4_s003.png"
    assert subimage_name("img", 1234) == "img_s1234.png"


def test_subimages_round_trip_pixels(tmp_path: Path) -> None:
    img = _noise(100, 70)
    _write_png(tmp_path / "src" / "pic.png", img)
    summary = extract_subimages(tmp_path / "src", tmp_path / "dst", 40, 25, 0, progress=False)
    rows, cols = [0, 25, 50, 60], [0, 25, 30]
    assert subimage_positions(100, 40, 25) == rows and subimage_positions(70, 40, 25) == cols
    assert summary.images == 1 and summary.subimages == 12 and not summary.skipped and not summary.failed
    files = sorted(p.name for p in (tmp_path / "dst").iterdir())
    assert files == [f"pic_s{i:03d}.png" for i in range(1, 13)]  # no temporary files left behind
    index = 0
    for top in rows:
        for left in cols:
            index += 1
            got = read_image(tmp_path / "dst" / f"pic_s{index:03d}.png").pixels
            np.testing.assert_array_equal(got, img[top : top + 40, left : left + 40])


def test_16_bit_and_gray_keep_their_format(tmp_path: Path) -> None:
    deep, gray = _noise(50, 50, np.uint16), _noise(50, 50, channels=1)
    _write_png(tmp_path / "src" / "deep.png", deep)
    _write_png(tmp_path / "src" / "gray.png", gray)
    extract_subimages(tmp_path / "src", tmp_path / "dst", 32, 16, progress=False)
    d = read_image(tmp_path / "dst" / "deep_s009.png").pixels  # rows/cols 0, 16, 18
    g = read_image(tmp_path / "dst" / "gray_s003.png").pixels
    assert d.dtype == np.uint16 and g.ndim == 2
    np.testing.assert_array_equal(d, deep[18:50, 18:50])
    np.testing.assert_array_equal(g, gray[0:32, 18:50])


def test_lr_subimages_are_crops_of_the_whole_image_matlab_lr(tmp_path: Path) -> None:
    img = _noise(103, 90)  # not a multiple of 4: HR is mod-cropped to 100×88 first
    _write_png(tmp_path / "src" / "0007.png", img)
    summary = extract_subimages(
        tmp_path / "src", tmp_path / "hr", 48, 24, scale=4, lr_dst_dir=tmp_path / "lr", progress=False
    )
    hr = modcrop(img, 4)
    lr = downscale_uint8(hr, 4)
    rows, cols = subimage_positions(100, 48, 24), subimage_positions(88, 48, 24)
    assert summary.subimages == summary.lr_subimages == len(rows) * len(cols)
    index = 0
    for top in rows:
        for left in cols:
            index += 1
            name = f"0007_s{index:03d}.png"
            np.testing.assert_array_equal(
                read_image(tmp_path / "hr" / name).pixels, hr[top : top + 48, left : left + 48]
            )
            expected = lr[top // 4 : top // 4 + 12, left // 4 : left // 4 + 12]
            np.testing.assert_array_equal(read_image(tmp_path / "lr" / name).pixels, expected)


def test_never_overwrites_without_permission(tmp_path: Path) -> None:
    _write_png(tmp_path / "src" / "a.png", _noise(40, 40))
    extract_subimages(tmp_path / "src", tmp_path / "dst", 32, 8, progress=False)
    target = tmp_path / "dst" / "a_s001.png"
    before = target.read_bytes()
    _write_png(tmp_path / "src" / "a.png", _noise(40, 40))  # new content, same names
    with pytest.raises(EsrganError, match=r"a_s001\.png.*overwrite"):
        extract_subimages(tmp_path / "src", tmp_path / "dst", 32, 8, progress=False)
    assert target.read_bytes() == before
    extract_subimages(tmp_path / "src", tmp_path / "dst", 32, 8, overwrite=True, progress=False)
    assert target.read_bytes() != before
    np.testing.assert_array_equal(
        read_image(target).pixels, read_image(tmp_path / "src" / "a.png").pixels[:32, :32]
    )


def test_small_and_unreadable_images_are_reported_not_fatal(tmp_path: Path) -> None:
    _write_png(tmp_path / "src" / "big.png", _noise(40, 40))
    _write_png(tmp_path / "src" / "small.png", _noise(20, 60))
    (tmp_path / "src" / "broken.png").write_bytes(b"not an image")
    summary = extract_subimages(tmp_path / "src", tmp_path / "dst", 32, 16, progress=False)
    assert summary.images == 1 and summary.subimages == 4
    assert [p.name for p, _ in summary.skipped] == ["small.png"] and "smaller than" in summary.skipped[0][1]
    assert [p.name for p, _ in summary.failed] == ["broken.png"] and "broken.png" in summary.failed[0][1]


def test_argument_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EsrganError, match="no image files"):
        extract_subimages(tmp_path / "empty", tmp_path / "dst", progress=False)
    _write_png(tmp_path / "src" / "a.png", _noise(40, 40))
    with pytest.raises(EsrganError, match="multiples of the scale"):
        extract_subimages(tmp_path / "src", tmp_path / "d", 30, 10, scale=4, lr_dst_dir=tmp_path / "l")
    with pytest.raises(EsrganError, match="go together"):
        extract_subimages(tmp_path / "src", tmp_path / "d", 32, 16, scale=4)
    with pytest.raises(EsrganError, match="must all differ"):
        extract_subimages(tmp_path / "src", tmp_path / "src", 32, 16)
    _write_png(tmp_path / "src" / "7.png", _noise(40, 40))
    _write_png(tmp_path / "src" / "7x4.png", _noise(40, 40))
    with pytest.raises(EsrganError, match="would both write"):
        extract_subimages(tmp_path / "src", tmp_path / "d", 32, 16)


def test_parallel_workers_write_the_same_files(tmp_path: Path) -> None:
    for i in range(3):
        _write_png(tmp_path / "src" / f"{i}.png", _noise(48, 40))
    extract_subimages(tmp_path / "src", tmp_path / "one", 32, 8, progress=False)
    summary = extract_subimages(tmp_path / "src", tmp_path / "two", 32, 8, num_workers=2, progress=False)
    assert summary.images == 3
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_cli_prepare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_png(tmp_path / "src" / "0001x4.png", _noise(64, 48))
    src, dst, lr = str(tmp_path / "src"), str(tmp_path / "dst"), str(tmp_path / "lr")
    argv = ["prepare", src, dst, "--crop-size", "32", "--step", "16", "--scale", "4", "--lr-dst", lr, "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 images -> 6 sub-images" in out and "6 LR sub-images" in out
    assert sorted(p.name for p in (tmp_path / "lr").iterdir()) == [f"0001_s{i:03d}.png" for i in range(1, 7)]
    assert read_image(tmp_path / "lr" / "0001_s001.png").pixels.shape == (8, 8, 3)

    assert main(argv) == 2  # outputs exist: a one-line error, no traceback
    err = capsys.readouterr().err
    assert err.startswith("esrgan prepare: error:") and "--overwrite" in err
    assert main([*argv, "--overwrite"]) == 0
    assert main(["prepare", src, str(tmp_path / "x"), "--scale", "4", "-q"]) == 2
    assert "go together" in capsys.readouterr().err
