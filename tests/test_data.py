"""Training data: LR/GT alignment, identical augmentation, determinism, exact resume, sharding, errors."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from esrgan.config import DataConfig
from esrgan.data import (
    DIHEDRAL,
    Dihedral,
    PairedImageDataset,
    ResumableRandomSampler,
    SampleKey,
    ValidationDataset,
    augment,
    build_train_loader,
    epoch_order,
    matlab_downscale,
    matlab_downscale_crop,
)
from esrgan.data.transforms import draw_dihedral
from esrgan.errors import ConfigError, EsrganError, ImageError
from esrgan.ops.matlab_resize import downscale_uint8, imresize, modcrop

RNG = np.random.default_rng(7)


def _noise(h: int, w: int, dtype: type = np.uint8, channels: int = 3) -> np.ndarray:
    """Random pixels: no symmetry, so every crop position and dihedral map is identifiable."""
    top = int(np.iinfo(dtype).max) + 1
    shape = (h, w, channels) if channels > 1 else (h, w)
    return RNG.integers(0, top, shape, dtype=np.int64).astype(dtype)


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    return path


@pytest.fixture
def hr_folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Three HR images, one not a multiple of 4 (mod-crop needed)."""
    images = {"a": _noise(64, 80), "b": _noise(48, 56), "c": _noise(67, 73)}
    for name, img in images.items():
        _write_png(tmp_path / "hr" / f"{name}.png", img)
    return tmp_path / "hr", images


def _cfg(hr_dir: Path, **kw: object) -> DataConfig:
    defaults: dict[str, object] = {
        "hr_dirs": (str(hr_dir),),
        "scale": 4,
        "gt_size": 32,
        "batch_size": 4,
        "num_workers": 0,
    }
    defaults.update(kw)
    return DataConfig(**defaults)  # type: ignore[arg-type]


def _undo(img: np.ndarray, d: Dihedral) -> np.ndarray:
    """Inverse of `augment(img, d)` (transpose, then vflip, then hflip)."""
    if d.transpose:
        img = img.swapaxes(0, 1)
    if d.vflip:
        img = img[::-1]
    if d.hflip:
        img = img[:, ::-1]
    return img


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.numpy().transpose(1, 2, 0)


def _locate(sample: dict, hr: np.ndarray, scale: int) -> tuple[Dihedral, int, int]:
    """Find the dihedral map and LR position that produced ``sample["gt"]`` from ``hr`` (uint8)."""
    gt = np.round(_hwc(sample["gt"]) * 255).astype(np.uint8)
    size = gt.shape[0]
    hits = []
    for d in DIHEDRAL:
        plain = _undo(gt, d)
        for top in range(0, hr.shape[0] // scale - size // scale + 1):
            for left in range(0, hr.shape[1] // scale - size // scale + 1):
                y, x = top * scale, left * scale
                if np.array_equal(hr[y : y + size, x : x + size], plain):
                    hits.append((d, top, left))
    assert len(hits) == 1, f"GT patch found {len(hits)} times in its HR image"
    return hits[0]


# --------------------------------------------------------------------------------------------------
# MATLAB bicubic LR


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_window_downscale_equals_crop_of_whole_image_lr(scale: int) -> None:
    hr = _noise(scale * 17, scale * 14)
    whole_q = downscale_uint8(hr, scale)
    whole_f = imresize(hr / 255.0, 1 / scale)
    size = 5
    for top in range(17 - size + 1):
        for left in range(14 - size + 1):
            crop = np.s_[top : top + size, left : left + size]
            assert np.array_equal(matlab_downscale_crop(hr, scale, top, left, size), whole_q[crop])
            got = matlab_downscale_crop(hr, scale, top, left, size, quantize=False)
            np.testing.assert_allclose(got, np.clip(whole_f[crop], 0, 1), rtol=0, atol=1e-7)


def test_matlab_downscale_16_bit_rounds_to_16_bit_levels() -> None:
    hr = _noise(16, 24, np.uint16)
    lr = matlab_downscale(hr, 4)
    assert lr.dtype == np.uint16
    expected = np.floor(np.clip(imresize(hr / 65535.0, 0.25), 0, 1) * 65535 + 0.5)
    np.testing.assert_array_equal(lr, expected)


# --------------------------------------------------------------------------------------------------
# PairedImageDataset


def test_lr_is_matlab_bicubic_of_the_hr_crop_region(hr_folder: tuple[Path, dict]) -> None:
    hr_dir, images = hr_folder
    ds = PairedImageDataset(_cfg(hr_dir, use_hflip=False, use_rot=False), seed=3)
    for index in range(len(ds)):
        for epoch in range(4):
            sample = ds[SampleKey(index, epoch)]
            hr = modcrop(images[Path(sample["path"]).stem], 4)
            d, top, left = _locate(sample, hr, 4)
            assert d == Dihedral()
            lr_whole = downscale_uint8(hr, 4)  # the evaluation protocol, whole image
            expected = lr_whole[top : top + 8, left : left + 8].astype(np.float32) / 255
            assert sample["lq"].dtype == torch.float32 and sample["lq"].shape == (3, 8, 8)
            np.testing.assert_array_equal(_hwc(sample["lq"]), expected)


def test_augmentation_is_identical_on_lq_and_gt_and_reaches_all_8_maps(hr_folder: tuple[Path, dict]) -> None:
    hr_dir, images = hr_folder
    ds = PairedImageDataset(_cfg(hr_dir), seed=0)
    seen = set()
    for epoch in range(30):
        for index in range(len(ds)):
            sample = ds[SampleKey(index, epoch)]
            hr = modcrop(images[Path(sample["path"]).stem], 4)
            d, top, left = _locate(sample, hr, 4)
            seen.add(d)
            lq_plain = _undo(_hwc(sample["lq"]), d)  # same inverse map as the GT's
            expected = downscale_uint8(hr, 4)[top : top + 8, left : left + 8].astype(np.float32) / 255
            np.testing.assert_array_equal(lq_plain, expected)
    assert seen == set(DIHEDRAL)


def test_gt_downscaled_matches_lq_after_augmentation(hr_folder: tuple[Path, dict]) -> None:
    """Independent of `_locate`: bicubic of the augmented GT is the augmented LQ away from the border."""
    hr_dir, _ = hr_folder
    ds = PairedImageDataset(_cfg(hr_dir), seed=1, quantize_lr=False)
    mismatched = 0
    for epoch in range(8):
        sample = ds[SampleKey(0, epoch)]
        down = imresize(sample["gt"].double(), 0.25)[:, 2:-2, 2:-2]
        lq = sample["lq"].double()[:, 2:-2, 2:-2]
        torch.testing.assert_close(down, lq, rtol=0, atol=1e-6)
        # Control: flipping only the GT must break the agreement (the check has teeth).
        flipped = imresize(sample["gt"].flip(-1).double(), 0.25)[:, 2:-2, 2:-2]
        mismatched += int((flipped - lq).abs().max() > 1e-3)
    assert mismatched == 8


def test_draw_dihedral_respects_flags() -> None:
    def maps(**flags: bool) -> set[Dihedral]:
        return {draw_dihedral(np.random.default_rng(i), **flags) for i in range(200)}

    assert maps(use_hflip=True, use_rot=True) == set(DIHEDRAL)
    assert maps(use_hflip=True, use_rot=False) == {Dihedral(), Dihedral(hflip=True)}
    assert maps(use_hflip=False, use_rot=False) == {Dihedral()}
    img = _noise(3, 4)
    assert all(np.array_equal(_undo(augment(img, d), d), img) for d in DIHEDRAL)
    assert len({augment(img, d).tobytes() for d in DIHEDRAL}) == 8


def test_samples_are_a_pure_function_of_seed_epoch_index(hr_folder: tuple[Path, dict]) -> None:
    hr_dir, _ = hr_folder
    a = PairedImageDataset(_cfg(hr_dir), seed=5)
    b = PairedImageDataset(_cfg(hr_dir), seed=5)
    c = PairedImageDataset(_cfg(hr_dir), seed=6)
    for key in [SampleKey(0, 0), SampleKey(2, 9), SampleKey(1, 3)]:
        sa, sb = a[key], b[key]
        assert torch.equal(sa["lq"], sb["lq"]) and torch.equal(sa["gt"], sb["gt"])
    assert torch.equal(a[0]["gt"], a[SampleKey(0, 0)]["gt"])  # int key = epoch 0
    assert not all(torch.equal(a[SampleKey(0, e)]["gt"], a[SampleKey(0, 0)]["gt"]) for e in range(1, 4))
    assert not all(torch.equal(a[SampleKey(i, 0)]["gt"], c[SampleKey(i, 0)]["gt"]) for i in range(3))


def test_image_cache_gives_the_same_samples_and_respects_its_budget(
    tmp_path: Path, hr_folder: tuple[Path, dict]
) -> None:
    hr_dir, images = hr_folder
    plain = PairedImageDataset(_cfg(hr_dir), seed=4)
    cached = PairedImageDataset(_cfg(hr_dir, cache_mb=64), seed=4)
    keys = [SampleKey(i, e) for e in range(3) for i in range(3)]
    for key in keys:  # twice: the second pass is served from the cache
        x, y = plain[key], cached[key]
        assert torch.equal(x["lq"], y["lq"]) and torch.equal(x["gt"], y["gt"])
    assert len(cached._cache) == 3
    assert all(not a.flags.writeable for a in cached._cache.values())  # nothing may change a cached image
    one = max(a.nbytes for a in cached._cache.values())
    small = PairedImageDataset(_cfg(hr_dir, cache_mb=0), seed=4)
    for key in keys:
        small[key]
    assert small._cache == {} and one > 0
    with pytest.raises(ConfigError, match="cache_mb"):
        _cfg(hr_dir, cache_mb=-1)


def test_paired_lr_folder_gives_the_same_samples_as_on_the_fly(
    tmp_path: Path, hr_folder: tuple[Path, dict]
) -> None:
    hr_dir, images = hr_folder
    lr_dir = tmp_path / "lr"
    for name, img in images.items():  # DIV2K-style names: the HR "a" matches the LR "ax4"
        _write_png(lr_dir / f"{name}x4.png", downscale_uint8(modcrop(img, 4), 4))
    on_the_fly = PairedImageDataset(_cfg(hr_dir), seed=2)
    paired = PairedImageDataset(_cfg(hr_dir, lr_dirs=(str(lr_dir),)), seed=2)
    assert [p[1].name for p in paired.pairs] == ["ax4.png", "bx4.png", "cx4.png"]
    for key in [SampleKey(i, e) for i in range(3) for e in range(3)]:
        x, y = on_the_fly[key], paired[key]
        assert torch.equal(x["lq"], y["lq"]) and torch.equal(x["gt"], y["gt"]) and x["path"] == y["path"]


def test_16_bit_and_gray_images(tmp_path: Path) -> None:
    hr16 = _noise(40, 44, np.uint16)
    _write_png(tmp_path / "hr16" / "deep.png", hr16)
    ds = PairedImageDataset(_cfg(tmp_path / "hr16", use_hflip=False, use_rot=False), seed=0)
    s = ds[0]
    d, top, left = Dihedral(), None, None
    gt = np.round(_hwc(s["gt"]).astype(np.float64) * 65535).astype(np.uint16)
    hits = [
        (t, le)
        for t in range(3)
        for le in range(4)
        if np.array_equal(hr16[4 * t : 4 * t + 32, 4 * le : 4 * le + 32], gt)
    ]
    assert len(hits) == 1 and d == Dihedral()
    top, left = hits[0]
    expected = matlab_downscale(hr16, 4)[top : top + 8, left : left + 8].astype(np.float32) / 65535
    np.testing.assert_array_equal(_hwc(s["lq"]), expected)

    _write_png(tmp_path / "gray" / "g.png", _noise(36, 36, channels=1))
    g = PairedImageDataset(_cfg(tmp_path / "gray"), seed=0)[0]
    assert g["gt"].shape == (3, 32, 32)
    assert torch.equal(g["gt"][0], g["gt"][1]) and torch.equal(g["lq"][0], g["lq"][2])


# --------------------------------------------------------------------------------------------------
# errors


def test_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EsrganError, match="no image files"):
        PairedImageDataset(_cfg(tmp_path / "empty"))
    with pytest.raises(EsrganError, match="not a folder"):
        PairedImageDataset(_cfg(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no HR folders"):
        PairedImageDataset(DataConfig())

    _write_png(tmp_path / "small" / "tiny.png", _noise(40, 30))
    with pytest.raises(EsrganError, match=r"tiny\.png.*smaller than the training patch"):
        PairedImageDataset(_cfg(tmp_path / "small"))

    bad = tmp_path / "bad"
    _write_png(bad / "ok.png", _noise(32, 32))
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageError, match=r"broken\.png"):
        PairedImageDataset(_cfg(bad))
    unchecked = PairedImageDataset(_cfg(bad), verify=False)
    with pytest.raises(ImageError, match=r"broken\.png"):
        unchecked[0]

    with pytest.raises(ConfigError, match="multiple of data.scale"):
        DataConfig(hr_dirs=(str(bad),), scale=4, gt_size=30)


def test_paired_folder_errors(tmp_path: Path) -> None:
    _write_png(tmp_path / "hr" / "a.png", _noise(64, 64))
    _write_png(tmp_path / "hr" / "b.png", _noise(64, 64))
    _write_png(tmp_path / "lr" / "a.png", _noise(16, 16))
    with pytest.raises(EsrganError, match=r"no LR image for b\.png"):
        PairedImageDataset(_cfg(tmp_path / "hr", lr_dirs=(str(tmp_path / "lr"),)))
    _write_png(tmp_path / "lr" / "b.png", _noise(20, 16))
    with pytest.raises(EsrganError, match=r"b\.png.*does not match its LR"):
        PairedImageDataset(_cfg(tmp_path / "hr", lr_dirs=(str(tmp_path / "lr"),)))
    _write_png(tmp_path / "lr" / "ax4.png", _noise(16, 16))
    with pytest.raises(EsrganError, match="both match"):
        PairedImageDataset(_cfg(tmp_path / "hr", lr_dirs=(str(tmp_path / "lr"),)))


# --------------------------------------------------------------------------------------------------
# sampler and loader


def test_each_epoch_is_a_permutation_and_epochs_differ() -> None:
    sampler = ResumableRandomSampler(10, seed=4)
    stream = list(islice(iter(sampler), 30))
    for e in range(3):
        chunk = stream[10 * e : 10 * e + 10]
        assert sorted(k.item for k in chunk) == list(range(10)) and {k.epoch for k in chunk} == {e}
    assert [k.item for k in stream[:10]] != [k.item for k in stream[10:20]]
    assert list(epoch_order(10, 4, 1)) == [k.item for k in stream[10:20]]


@pytest.mark.parametrize(("n", "batch", "world"), [(10, 3, 1), (7, 2, 2), (12, 4, 3)])
def test_resumed_sampler_equals_the_uninterrupted_stream(n: int, batch: int, world: int) -> None:
    for rank in range(world):
        full = list(islice(iter(ResumableRandomSampler(n, seed=9, rank=rank, world_size=world)), 60))
        for step in (0, 1, 4, 7):
            resumed = ResumableRandomSampler(
                n, seed=9, start_step=step, batch_size=batch, rank=rank, world_size=world
            )
            assert list(islice(iter(resumed), 20)) == full[step * batch : step * batch + 20]
            assert resumed.key_at(step * batch) == full[step * batch]


def test_two_ranks_partition_each_epoch() -> None:
    n = 12
    r0 = list(islice(iter(ResumableRandomSampler(n, seed=1, rank=0, world_size=2)), 3 * n // 2))
    r1 = list(islice(iter(ResumableRandomSampler(n, seed=1, rank=1, world_size=2)), 3 * n // 2))
    for e in range(3):
        a = {k.item for k in r0 if k.epoch == e}
        b = {k.item for k in r1 if k.epoch == e}
        assert len(a) == len(b) == n // 2 and a.isdisjoint(b) and a | b == set(range(n))
    # Odd length: padded like DistributedSampler — equal shares, every item covered, one repeated.
    odd = [ResumableRandomSampler(7, seed=1, rank=r, world_size=2).rank_indices(0) for r in range(2)]
    assert len(odd[0]) == len(odd[1]) == 4 and set(odd[0]) | set(odd[1]) == set(range(7))


def test_sampler_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="empty"):
        ResumableRandomSampler(0)
    with pytest.raises(ValueError, match="rank"):
        ResumableRandomSampler(5, rank=2, world_size=2)
    with pytest.raises(ValueError, match="seed"):
        ResumableRandomSampler(5, seed=-1)


def _batches(loader: torch.utils.data.DataLoader, count: int) -> list[dict]:
    return list(islice(iter(loader), count))


def test_loader_resume_is_bit_identical_with_and_without_workers(hr_folder: tuple[Path, dict]) -> None:
    hr_dir, _ = hr_folder
    cfg = _cfg(hr_dir, batch_size=2)
    rng_before = torch.get_rng_state()
    full = _batches(build_train_loader(cfg, seed=11), 6)  # crosses epoch boundaries (3 images, batch 2)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the loader never touches the global RNG
    resumed = _batches(build_train_loader(cfg, seed=11, start_step=3), 3)
    workers = _batches(
        build_train_loader(_cfg(hr_dir, batch_size=2, num_workers=2), seed=11, start_step=3), 3
    )
    for a, b, c in zip(full[3:], resumed, workers, strict=True):
        assert a["gt"].shape == (2, 3, 32, 32) and a["lq"].shape == (2, 3, 8, 8)
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"]) and a["path"] == b["path"]
        assert torch.equal(a["lq"], c["lq"]) and torch.equal(a["gt"], c["gt"]) and a["path"] == c["path"]
    other_seed = _batches(build_train_loader(cfg, seed=12), 6)
    assert not all(torch.equal(a["gt"], b["gt"]) for a, b in zip(full, other_seed, strict=True))


def test_loader_shards_batches_across_ranks(tmp_path: Path) -> None:
    for i in range(4):
        _write_png(tmp_path / "hr" / f"{i}.png", _noise(32, 32))
    cfg = _cfg(tmp_path / "hr", batch_size=2)
    paths = [
        sorted(
            p
            for batch in _batches(build_train_loader(cfg, rank=r, world_size=2, seed=0), 1)
            for p in batch["path"]
        )
        for r in range(2)
    ]
    assert sorted(paths[0] + paths[1]) == sorted(str(tmp_path / "hr" / f"{i}.png") for i in range(4))


# --------------------------------------------------------------------------------------------------
# validation


def test_validation_dataset_follows_the_benchmark_protocol(
    tmp_path: Path, hr_folder: tuple[Path, dict]
) -> None:
    hr_dir, images = hr_folder
    ds = ValidationDataset(DataConfig(val_hr_dirs=(str(hr_dir),), scale=4))
    s = ds[2]  # c.png, 67×73 → mod-cropped to 64×72
    hr = modcrop(images["c"], 4)
    assert s["gt"].shape == (3, 64, 72) and s["lq"].shape == (3, 16, 18)
    np.testing.assert_array_equal(_hwc(s["gt"]), hr.astype(np.float32) / 255)
    np.testing.assert_array_equal(_hwc(s["lq"]), downscale_uint8(hr, 4).astype(np.float32) / 255)

    lr_dir = tmp_path / "val_lr"
    for name, img in images.items():
        _write_png(lr_dir / f"{name}.png", downscale_uint8(modcrop(img, 4), 4))
    paired = ValidationDataset(DataConfig(val_hr_dirs=(str(hr_dir),), val_lr_dirs=(str(lr_dir),), scale=4))
    for i in range(len(ds)):
        assert torch.equal(paired[i]["lq"], ds[i]["lq"]) and torch.equal(paired[i]["gt"], ds[i]["gt"])


def test_div2k_tiny_samples_are_aligned(shared_data: Path) -> None:
    hr_dir = shared_data / "DIV2K-tiny-HR"
    ds = PairedImageDataset(DataConfig(hr_dirs=(str(hr_dir),), gt_size=128), seed=0, quantize_lr=False)
    assert len(ds) == 100
    for key in [SampleKey(0, 0), SampleKey(57, 3)]:
        s = ds[key]
        assert s["gt"].shape == (3, 128, 128) and s["lq"].shape == (3, 32, 32)
        assert 0 <= float(s["gt"].min()) and float(s["gt"].max()) <= 1
        down = imresize(s["gt"].double(), 0.25)[:, 2:-2, 2:-2]
        torch.testing.assert_close(down, s["lq"].double()[:, 2:-2, 2:-2], rtol=0, atol=1e-6)
