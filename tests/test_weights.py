"""Weights: every key layout and container loads to the same model, conversions round-trip, bad files give
clear errors (never code execution), downloads verify and clean up, network interpolation, and the CLI.

The community key layouts are written here by hand from SPEC §2.1, not with `esrgan.weights.convert`, so a
renaming bug there cannot hide behind the same bug in the test.
"""

from __future__ import annotations

import json
import math
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

import esrgan.weights as weights_module
from esrgan.archs import MSRResNet, RRDBNet, SRGANDiscriminator, SRResNet, VGGStyleDiscriminator
from esrgan.archs.blocks import count_parameters
from esrgan.cli import main
from esrgan.errors import DownloadError, EsrganError, WeightsError
from esrgan.weights import (
    MODEL_ZOO,
    convert_weights,
    inspect_weights,
    interpolate_models,
    load_model,
    resolve_weights,
    save_model,
)
from esrgan.weights.detect import infer_hparams
from esrgan.weights.zoo import ZooEntry, cache_dir, download, sha256_of

NF, GC = 8, 4


def randomize_(model: nn.Module, seed: int = 0, gain: float = 0.6) -> nn.Module:
    """Random parameters large enough that every layer visibly changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * gain * math.sqrt(2.0 / p[0].numel()))
            else:
                p.copy_(torch.rand(p.shape, generator=g) * 0.3)
    return model.eval()


def tiny_rrdb(seed: int = 0, **kw) -> RRDBNet:
    args = {"num_feat": NF, "num_grow_ch": GC, "num_block": 2, **kw}
    return randomize_(RRDBNet(**args), seed)  # type: ignore[return-value]


def run(model: nn.Module, size: int = 8, channels: int = 3) -> Tensor:
    x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(42))
    with torch.no_grad():
        return model(x)


# ---- hand-written key tables (SPEC §2.1) --------------------------------------------------------------


def rrdb_layout(model: RRDBNet, layout: str) -> dict[str, Tensor]:
    """The model's tensors under the names `layout` uses, written out role by role."""
    nb, n = model.num_block, model.num_upsample
    modules: list[tuple[str, nn.Conv2d]] = []
    if layout == "basicsr":
        modules.append(("conv_first", model.conv_first))
        for i in range(nb):
            for k in (1, 2, 3):
                for m in range(1, 6):
                    modules.append(
                        (f"body.{i}.rdb{k}.conv{m}", getattr(getattr(model.body[i], f"rdb{k}"), f"conv{m}"))
                    )
        modules.append(("conv_body", model.conv_body))
        modules += [(f"conv_up{j}", getattr(model, f"conv_up{j}")) for j in range(1, n + 1)]
        modules += [("conv_hr", model.conv_hr), ("conv_last", model.conv_last)]
    elif layout == "esrgan":
        modules.append(("conv_first", model.conv_first))
        for i in range(nb):
            for k in (1, 2, 3):
                for m in range(1, 6):
                    rdb = getattr(model.body[i], f"rdb{k}")
                    modules.append((f"RRDB_trunk.{i}.RDB{k}.conv{m}", getattr(rdb, f"conv{m}")))
        modules.append(("trunk_conv", model.conv_body))
        modules += [(f"upconv{j}", getattr(model, f"conv_up{j}")) for j in range(1, n + 1)]
        modules += [("HRconv", model.conv_hr), ("conv_last", model.conv_last)]
    elif layout == "old":
        # Sequential(conv, Shortcut(Sequential(nb RRDB, LR conv)), n × (Upsample, conv, LReLU),
        #            conv, LReLU, conv)
        modules.append(("model.0", model.conv_first))
        for i in range(nb):
            for k in (1, 2, 3):
                for m in range(1, 6):
                    rdb = getattr(model.body[i], f"rdb{k}")
                    modules.append((f"model.1.sub.{i}.RDB{k}.conv{m}.0", getattr(rdb, f"conv{m}")))
        modules.append((f"model.1.sub.{nb}", model.conv_body))
        modules += [(f"model.{3 * j}", getattr(model, f"conv_up{j}")) for j in range(1, n + 1)]
        modules += [(f"model.{3 * n + 2}", model.conv_hr), (f"model.{3 * n + 4}", model.conv_last)]
    else:
        raise AssertionError(layout)
    sd = {}
    for name, conv in modules:
        sd[f"{name}.weight"] = conv.weight.detach().clone()
        sd[f"{name}.bias"] = conv.bias.detach().clone()
    return sd


def msrresnet_layout(model: MSRResNet, layout: str) -> dict[str, Tensor]:
    sd = {}
    for key, value in model.state_dict().items():
        if layout == "basicsr2019":
            key = key.replace("body.", "recon_trunk.", 1) if key.startswith("body.") else key
            key = key.replace("conv_hr.", "HRconv.") if key.startswith("conv_hr.") else key
        sd[key] = value.clone()
    return sd


def wrap(sd: dict[str, Tensor], container: str, other: dict[str, Tensor] | None = None) -> object:
    if container == "bare":
        return sd
    if container == "module":
        return {f"module.{k}": v for k, v in sd.items()}
    if container == "params":
        return {"params": sd}
    if container == "params_ema":
        assert other is not None
        return {"params": other, "params_ema": sd}  # EMA must win
    if container == "state_dict":
        return {"state_dict": sd, "epoch": 7}
    raise AssertionError(container)


# ---- every layout and container ----------------------------------------------------------------------

RRDB_CONFIGS = {
    "x4": {"scale": 4},
    "x2_unshuffle": {"scale": 2},
    "x1_unshuffle": {"scale": 1},
    "x8_three_stages": {"scale": 8},
    "x2_one_stage": {"scale": 2, "num_upsample": 1},
}


@pytest.mark.parametrize("config", list(RRDB_CONFIGS))
def test_every_rrdbnet_layout_and_container_loads_identically(tmp_path: Path, config: str) -> None:
    model = tiny_rrdb(seed=1, **RRDB_CONFIGS[config])
    other = tiny_rrdb(seed=2, **RRDB_CONFIGS[config])
    expected = run(model)
    assert not torch.allclose(expected, run(other))
    for layout in ("basicsr", "esrgan", "old"):
        sd = rrdb_layout(model, layout)
        for container in ("bare", "module", "params", "params_ema", "state_dict"):
            path = tmp_path / f"{layout}_{container}.pth"
            torch.save(wrap(sd, container, rrdb_layout(other, layout)), path)
            loaded = load_model(path)
            assert isinstance(loaded, RRDBNet) and not loaded.training
            assert loaded.hparams == model.hparams, (layout, container)
            assert torch.equal(run(loaded), expected), (layout, container)
        # community safetensors (no metadata of ours) are recognised by their keys too
        path = tmp_path / f"{layout}.safetensors"
        save_file(sd, str(path))
        assert torch.equal(run(load_model(path)), expected), layout


def test_old_layout_x4_has_the_published_indices() -> None:
    keys = set(rrdb_layout(tiny_rrdb(num_block=23, num_feat=4, num_grow_ch=2), "old"))
    for key in ("model.0", "model.1.sub.0.RDB1.conv1.0", "model.1.sub.22.RDB3.conv5.0", "model.1.sub.23"):
        assert f"{key}.weight" in keys
    for key in ("model.3", "model.6", "model.8", "model.10"):
        assert f"{key}.weight" in keys and f"{key}.bias" in keys
    assert "model.1.sub.24.weight" not in keys and "model.11.weight" not in keys


def test_hand_written_old_layout_file_loads(tmp_path: Path) -> None:
    """Written name by name from SPEC §2.1 (×4, nb=1): model.0, sub.0.RDBk.convm.0, sub.1, 3, 6, 8, 10."""
    g = torch.Generator().manual_seed(3)

    def conv(cin: int, cout: int) -> tuple[Tensor, Tensor]:
        return torch.randn(cout, cin, 3, 3, generator=g) * 0.3, torch.randn(cout, generator=g) * 0.1

    sd: dict[str, Tensor] = {}
    sd["model.0.weight"], sd["model.0.bias"] = conv(3, NF)
    for k in (1, 2, 3):
        for m in range(1, 6):
            w, b = conv(NF + (m - 1) * 6, 6 if m < 5 else NF)
            sd[f"model.1.sub.0.RDB{k}.conv{m}.0.weight"], sd[f"model.1.sub.0.RDB{k}.conv{m}.0.bias"] = w, b
    for idx in ("1.sub.1", "3", "6", "8"):
        sd[f"model.{idx}.weight"], sd[f"model.{idx}.bias"] = conv(NF, NF)
    sd["model.10.weight"], sd["model.10.bias"] = conv(NF, 3)
    path = tmp_path / "old_x4.pth"
    torch.save(sd, path)
    model = load_model(path)
    assert model.hparams == {
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": NF,
        "num_block": 1,
        "num_grow_ch": 6,  # not 32: inferred from the first dense conv
        "scale": 4,
        "num_upsample": 2,
    }
    assert torch.equal(model.conv_up2.weight, sd["model.6.weight"])
    assert torch.equal(model.conv_hr.bias, sd["model.8.bias"])
    assert torch.equal(model.conv_last.weight, sd["model.10.weight"])
    assert torch.equal(model.conv_body.weight, sd["model.1.sub.1.weight"])
    assert torch.equal(model.body[0].rdb2.conv4.weight, sd["model.1.sub.0.RDB2.conv4.0.weight"])


def test_esrgan_repo_names_map_to_the_right_modules(tmp_path: Path) -> None:
    model = tiny_rrdb(seed=5)
    sd = rrdb_layout(model, "esrgan")
    path = tmp_path / "esrgan.pth"
    torch.save(sd, path)
    loaded = load_model(path)
    for ours, theirs in [
        ("conv_body", "trunk_conv"),
        ("conv_up1", "upconv1"),
        ("conv_up2", "upconv2"),
        ("conv_hr", "HRconv"),
        ("body.1.rdb3.conv5", "RRDB_trunk.1.RDB3.conv5"),
    ]:
        assert torch.equal(loaded.state_dict()[f"{ours}.weight"], sd[f"{theirs}.weight"])


@pytest.mark.parametrize(
    "model",
    [
        RRDBNet(num_feat=NF, num_grow_ch=6, num_block=3, scale=4),
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=2),
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=1),
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=8),
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=2, num_upsample=1),
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=1, num_upsample=0),
        RRDBNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_grow_ch=GC, num_block=1, scale=2),
        RRDBNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_grow_ch=GC, num_block=1, scale=4),
        MSRResNet(num_feat=NF, num_block=2, scale=2),
        MSRResNet(num_feat=NF, num_block=3, scale=3),
        MSRResNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_block=1, scale=4),
        SRResNet(num_feat=NF, num_block=2, scale=4),
        SRResNet(num_feat=NF, num_block=1, scale=2, use_bn=False),
        SRResNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_block=1, scale=2),
    ],
    ids=lambda m: f"{type(m).__name__}-{'-'.join(str(v) for v in m.hparams.values())}",
)
def test_hparams_inferred_from_shapes(model: nn.Module) -> None:
    assert infer_hparams(model.arch_name, model.state_dict()) == model.hparams


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("layout", ["basicsr", "basicsr2019"])
def test_msrresnet_layouts(tmp_path: Path, scale: int, layout: str) -> None:
    model = randomize_(MSRResNet(num_feat=NF, num_block=2, scale=scale), seed=scale)
    sd = msrresnet_layout(model, layout)
    assert ("recon_trunk.1.conv2.weight" in sd) == (layout == "basicsr2019")
    assert ("HRconv.weight" in sd) == (layout == "basicsr2019")
    path = tmp_path / "msrresnet.pth"
    torch.save({"params": sd}, path)
    loaded = load_model(path)
    assert isinstance(loaded, MSRResNet) and loaded.hparams == model.hparams
    assert torch.equal(run(loaded), run(model))
    assert inspect_weights(path).layout == layout


def test_srresnet_state_dict_file_loads(tmp_path: Path) -> None:
    model = randomize_(SRResNet(num_feat=NF, num_block=2, scale=2), seed=4)
    path = tmp_path / "srresnet.pth"
    torch.save(model.state_dict(), path)
    loaded = load_model(path)
    assert isinstance(loaded, SRResNet) and loaded.hparams == model.hparams
    assert torch.equal(run(loaded), run(model))


# ---- conversion --------------------------------------------------------------------------------------


def _safetensors_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def test_convert_round_trip_through_every_format(tmp_path: Path) -> None:
    model = tiny_rrdb(seed=6, scale=2)
    expected = run(model)
    src = tmp_path / "a_esrgan.pth"
    torch.save(rrdb_layout(model, "esrgan"), src)

    st = convert_weights(src, tmp_path / "b.safetensors")
    meta = _safetensors_metadata(st)
    assert meta["esrgan.arch"] == "RRDBNet"
    assert json.loads(meta["esrgan.hparams"]) == model.hparams
    with safe_open(str(st), framework="pt") as f:
        assert set(f.keys()) == set(rrdb_layout(model, "basicsr"))

    old = convert_weights(st, tmp_path / "c_old.pth", layout="old")
    old_sd = torch.load(old, weights_only=True)
    assert set(old_sd) == set(rrdb_layout(model, "old"))  # a bare dict in the 2018 names

    basicsr = convert_weights(old, tmp_path / "d_basicsr.pth", layout="basicsr")
    basicsr_obj = torch.load(basicsr, weights_only=True)
    assert set(basicsr_obj) == {"params"}  # as BasicSR / Real-ESRGAN write it
    assert set(basicsr_obj["params"]) == set(rrdb_layout(model, "basicsr"))

    esrgan = convert_weights(basicsr, tmp_path / "e_esrgan.pth", layout="esrgan")
    esrgan_sd = torch.load(esrgan, weights_only=True)
    assert set(esrgan_sd) == set(rrdb_layout(model, "esrgan"))

    for path in (src, st, old, basicsr, esrgan):
        assert torch.equal(run(load_model(path)), expected), path.name
    # without a layout, a .pth keeps the layout of its source
    same = convert_weights(old, tmp_path / "f.pth")
    assert set(torch.load(same, weights_only=True)) == set(old_sd)


def test_convert_msrresnet_and_srresnet(tmp_path: Path) -> None:
    msr = randomize_(MSRResNet(num_feat=NF, num_block=1, scale=4), seed=7)
    src = save_model(msr, tmp_path / "msr.safetensors")
    out = convert_weights(src, tmp_path / "msr2019.pth", layout="basicsr2019")
    assert "HRconv.weight" in torch.load(out, weights_only=True)
    assert torch.equal(run(load_model(out)), run(msr))
    with pytest.raises(WeightsError, match="old"):
        convert_weights(src, tmp_path / "msr_old.pth", layout="old")
    srr = randomize_(SRResNet(num_feat=NF, num_block=1, scale=2), seed=8)
    src = save_model(srr, tmp_path / "srr.safetensors")
    out = convert_weights(src, tmp_path / "srr.pth")
    assert torch.equal(run(load_model(out)), run(srr))


def test_convert_refuses_overwrite_and_self(tmp_path: Path) -> None:
    model = tiny_rrdb(seed=9)
    src = tmp_path / "in.pth"
    torch.save(rrdb_layout(model, "esrgan"), src)
    dst = tmp_path / "out.safetensors"
    convert_weights(src, dst)
    before = dst.read_bytes()
    with pytest.raises(WeightsError, match="already exists"):
        convert_weights(src, dst)
    assert dst.read_bytes() == before
    convert_weights(src, dst, overwrite=True)  # allowed when asked

    original = src.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(WeightsError, match="onto itself"):
            convert_weights(src, src, overwrite=overwrite)
        with pytest.raises(WeightsError, match="onto itself"):
            convert_weights(src, tmp_path / "." / "in.pth", layout="old", overwrite=overwrite)
    assert src.read_bytes() == original
    with pytest.raises(WeightsError, match=r"\.bin"):
        convert_weights(src, tmp_path / "out.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pth", "out.safetensors"]  # no temp files left


# ---- save / load / inspect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        RRDBNet(
            num_feat=NF, num_grow_ch=GC, num_block=1, scale=1, num_upsample=3
        ),  # not inferable from names
        SRResNet(num_feat=NF, num_block=2, scale=4),
        MSRResNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_block=1, scale=3),
    ],
    ids=lambda m: type(m).__name__,
)
def test_save_model_is_self_describing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: nn.Module
) -> None:
    randomize_(model, seed=10)
    if isinstance(model, SRResNet):  # BN statistics are buffers and must survive too
        model.body[0].bn1.running_mean.fill_(0.3)
        model.body[0].bn1.num_batches_tracked.fill_(5)
    path = save_model(model, tmp_path / "m.safetensors", metadata={"note": "test", "iter": 3})
    meta = _safetensors_metadata(path)
    assert meta["note"] == "test" and meta["iter"] == "3"

    def no_inference(*args, **kwargs):
        raise AssertionError("our own files must not need shape inference")

    monkeypatch.setattr(weights_module, "infer_hparams", no_inference)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    channels = model.hparams["num_in_ch"]
    assert torch.equal(run(loaded, channels=channels), run(model.eval(), channels=channels))


def test_save_model_refusals(tmp_path: Path) -> None:
    model = tiny_rrdb()
    with pytest.raises(WeightsError, match="safetensors"):
        save_model(model, tmp_path / "m.pth")
    with pytest.raises(WeightsError, match="Conv2d"):
        save_model(nn.Conv2d(3, 3, 3), tmp_path / "c.safetensors")
    path = save_model(model, tmp_path / "m.safetensors")
    with pytest.raises(WeightsError, match="already exists"):
        save_model(model, path)
    save_model(tiny_rrdb(seed=3), path, overwrite=True)
    assert torch.equal(run(load_model(path)), run(tiny_rrdb(seed=3)))


def test_written_files_get_normal_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = save_model(tiny_rrdb(), tmp_path / "m.safetensors")
        pth = convert_weights(path, tmp_path / "m.pth")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE(pth.stat().st_mode) == 0o644


def test_inspect_weights_fields(tmp_path: Path) -> None:
    model = tiny_rrdb(seed=11, scale=2)
    path = tmp_path / "x2.pth"
    torch.save({"params_ema": rrdb_layout(model, "basicsr"), "params": rrdb_layout(model, "basicsr")}, path)
    info = inspect_weights(path)
    assert info.path == path
    assert info.arch == "RRDBNet"
    assert info.scale == 2
    assert info.hparams == model.hparams
    assert info.num_params == count_parameters(model)
    assert info.layout == "basicsr"
    assert "pth" in info.container and "params_ema" in info.container
    torch.save(rrdb_layout(model, "old"), tmp_path / "old.pth")
    old = inspect_weights(tmp_path / "old.pth")
    assert (old.layout, old.container, old.scale) == ("old", "pth", 2)
    st = inspect_weights(save_model(model, tmp_path / "x2.safetensors"))
    assert st.container == "safetensors" and st.metadata["esrgan.arch"] == "RRDBNet"


# ---- errors ------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates `marker` (it would run arbitrary code the same way)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _expect_weights_error(path: Path, *fragments: str) -> str:
    with pytest.raises(WeightsError) as exc:
        load_model(path)
    message = str(exc.value)
    assert isinstance(exc.value, EsrganError)
    assert path.name in message, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


def test_missing_empty_truncated_and_garbage_files(tmp_path: Path) -> None:
    _expect_weights_error(tmp_path / "missing.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    _expect_weights_error(tmp_path / "empty.pth", "empty")
    good = tmp_path / "good.pth"
    torch.save(rrdb_layout(tiny_rrdb(), "esrgan"), good)
    data = good.read_bytes()
    (tmp_path / "half.pth").write_bytes(data[: len(data) // 2])
    _expect_weights_error(tmp_path / "half.pth", "corrupt")
    (tmp_path / "garbage.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    _expect_weights_error(tmp_path / "garbage.pth")
    (tmp_path / "page.pth").write_bytes(
        b"<!DOCTYPE html><html><body>Google Drive quota exceeded</body></html>"
    )
    _expect_weights_error(tmp_path / "page.pth")
    (tmp_path / "folder.pth").mkdir()
    _expect_weights_error(tmp_path / "folder.pth", "folder")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    _expect_weights_error(tmp_path / "tensor.pth", "Tensor")
    torch.save({"params": {}}, tmp_path / "nothing.pth")
    _expect_weights_error(tmp_path / "nothing.pth", "no tensors")


def test_pickled_code_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv_first.weight": torch.zeros(1), "extra": _Payload(str(marker))}, path)
    _expect_weights_error(path, "Python objects")
    with pytest.raises(WeightsError):
        inspect_weights(path)
    with pytest.raises(WeightsError):
        convert_weights(path, tmp_path / "out.safetensors")
    assert not marker.exists()
    # the payload is live: an unsafe load would have run it
    obj = torch.load(path, weights_only=False)
    obj["extra"].close()
    assert marker.exists()


def test_discriminator_and_vgg_weights_are_refused(tmp_path: Path) -> None:
    torch.save(VGGStyleDiscriminator(num_feat=4).state_dict(), tmp_path / "net_d.pth")
    _expect_weights_error(tmp_path / "net_d.pth", "discriminator")
    torch.save({"params": SRGANDiscriminator(num_feat=4).state_dict()}, tmp_path / "srgan_d.pth")
    _expect_weights_error(tmp_path / "srgan_d.pth", "discriminator")
    save_model(VGGStyleDiscriminator(num_feat=4), tmp_path / "d.safetensors")
    _expect_weights_error(tmp_path / "d.safetensors", "VGGStyleDiscriminator", "not an upscaling generator")
    vgg = {f"features.{i}.weight": torch.zeros(2, 2, 3, 3) for i in (0, 2, 34)}
    vgg |= {f"classifier.{i}.weight": torch.zeros(2, 2) for i in (0, 3, 6)}
    torch.save(vgg, tmp_path / "vgg19-dcbb9e9d.pth")
    _expect_weights_error(tmp_path / "vgg19-dcbb9e9d.pth", "VGG19")


def test_unknown_and_incomplete_generators_are_refused(tmp_path: Path) -> None:
    torch.save({"encoder.layer.0.weight": torch.zeros(2), "decoder.bias": torch.zeros(2)}, tmp_path / "x.pth")
    _expect_weights_error(tmp_path / "x.pth", "no known key layout")

    model = tiny_rrdb()
    for layout, key in [
        ("basicsr", "body.1.rdb2.conv3.bias"),
        ("basicsr", "conv_last.weight"),
        ("esrgan", "RRDB_trunk.0.RDB3.conv5.weight"),
        ("esrgan", "HRconv.bias"),
        ("old", "model.1.sub.1.RDB1.conv2.0.weight"),
        ("old", "model.8.weight"),
    ]:
        sd = rrdb_layout(model, layout)
        del sd[key]
        path = tmp_path / f"missing_{layout}_{key}.pth"
        torch.save(sd, path)
        _expect_weights_error(path)

    sd = rrdb_layout(model, "esrgan")
    sd["RRDB_trunk.0.RDB1.conv1.weight"] = torch.zeros(5, 5, 3, 3)  # wrong shape
    torch.save(sd, tmp_path / "shape.pth")
    _expect_weights_error(tmp_path / "shape.pth")

    path = save_model(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    (tmp_path / "half.safetensors").write_bytes(data[: len(data) // 2])
    _expect_weights_error(tmp_path / "half.safetensors", "safetensors")
    (tmp_path / "short.safetensors").write_bytes(data[:-8])
    _expect_weights_error(tmp_path / "short.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 100)
    _expect_weights_error(tmp_path / "garbage.safetensors")


def test_nesrgan_plus_is_named(tmp_path: Path) -> None:
    sd = {"model.0.weight": torch.zeros(1), "model.1.sub.0.RDB1.conv1x1.weight": torch.zeros(1)}
    torch.save(sd, tmp_path / "plus.pth")
    _expect_weights_error(tmp_path / "plus.pth", "ESRGAN+")


def test_load_model_without_a_bundled_default_says_to_pass_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import esrgan.weights

    monkeypatch.setattr(esrgan.weights, "DEFAULT_MODEL", "no_such_bundled_model")
    with pytest.raises(WeightsError, match="--model"):
        load_model(None)


def test_unknown_model_name_lists_known_ones() -> None:
    with pytest.raises(WeightsError) as exc:
        resolve_weights("RRDB_ESRGAN_x5")
    assert "RRDB_ESRGAN_x5" in str(exc.value) and "RRDB_ESRGAN_x4" in str(exc.value)


# ---- zoo ---------------------------------------------------------------------------------------------


def _entry(url: str, **kw) -> ZooEntry:
    return ZooEntry("TestModel", url, "test_model.pth", "test", **kw)


def test_download_file_url_verifies_sha256(tmp_path: Path) -> None:
    src = tmp_path / "src" / "model.pth"
    src.parent.mkdir()
    torch.save(rrdb_layout(tiny_rrdb(), "esrgan"), src)
    digest = sha256_of(src)
    dest = tmp_path / "cache" / "test_model.pth"
    out = download(_entry(src.as_uri(), sha256=digest, size=src.stat().st_size), dest, progress=False)
    assert out == dest and dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["test_model.pth"]
    assert torch.equal(run(load_model(dest)), run(tiny_rrdb()))


@pytest.mark.parametrize("problem", ["sha256", "size", "html"])
def test_bad_download_leaves_nothing_behind(tmp_path: Path, problem: str) -> None:
    src = tmp_path / "src" / ("page.html" if problem == "html" else "model.pth")
    src.parent.mkdir()
    src.write_bytes(b"<html></html>" if problem == "html" else b"x" * 1000)
    kw = {"sha256": "0" * 64} if problem == "sha256" else {"size": 999} if problem == "size" else {}
    dest = tmp_path / "cache" / "test_model.pth"
    with pytest.raises(DownloadError) as exc:
        download(_entry(src.as_uri(), **kw), dest, progress=False)
    assert "TestModel" in str(exc.value) and "--model PATH" in str(exc.value)
    assert list(dest.parent.iterdir()) == []  # no file, no .part


def test_unreachable_url_explains_how_to_pass_a_local_file(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "test_model.pth"
    with pytest.raises(DownloadError) as exc:
        download(_entry("http://127.0.0.1:9/x.pth"), dest, progress=False)
    message = str(exc.value)
    assert "http://127.0.0.1:9/x.pth" in message
    assert "--model PATH" in message and str(dest) in message
    assert list(dest.parent.iterdir()) == []


def test_cache_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESRGAN_CACHE", str(tmp_path / "esr"))
    assert cache_dir() == tmp_path / "esr"
    monkeypatch.delenv("ESRGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "esrgan"


def test_cached_zoo_model_loads_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESRGAN_CACHE", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("a cached model must not be downloaded")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    model = tiny_rrdb(seed=12)
    torch.save(rrdb_layout(model, "esrgan"), tmp_path / MODEL_ZOO["RRDB_PSNR_x4"].filename)
    assert resolve_weights("RRDB_PSNR_x4") == tmp_path / "RRDB_PSNR_x4.pth"
    assert torch.equal(run(load_model("RRDB_PSNR_x4")), run(model))


def test_zoo_name_offline_is_a_download_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESRGAN_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as exc:
        resolve_weights("RRDB_ESRGAN_x4", progress=False)
    assert "RRDB_ESRGAN_x4" in str(exc.value) and "--model PATH" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_zoo_entries_are_well_formed() -> None:
    for name, entry in MODEL_ZOO.items():
        assert entry.name == name and entry.url.startswith("https://")
        assert entry.filename.endswith(".pth")
        assert entry.sha256 is None or (len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0)


# ---- network interpolation ---------------------------------------------------------------------------


def test_interpolation_endpoints_and_midpoint(tmp_path: Path) -> None:
    a, b = tiny_rrdb(seed=20), tiny_rrdb(seed=21)
    pa, pb = tmp_path / "psnr.pth", tmp_path / "gan.safetensors"
    torch.save(rrdb_layout(a, "esrgan"), pa)
    save_model(b, pb)  # different layouts and formats: interpolation works on our names
    sd_a, sd_b = a.state_dict(), b.state_dict()
    for alpha, expected in [(0.0, sd_a), (1.0, sd_b)]:
        sd = interpolate_models(pa, pb, alpha).state_dict()
        for k in sd_a:
            torch.testing.assert_close(sd[k], expected[k], rtol=0, atol=1e-7)
    mid = interpolate_models(pa, pb, 0.5)
    for k, v in mid.state_dict().items():
        torch.testing.assert_close(v, (sd_a[k] + sd_b[k]) / 2, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(run(mid), run(a)) and not torch.allclose(run(mid), run(b))


def test_interpolation_leaves_input_modules_alone() -> None:
    a, b = tiny_rrdb(seed=22), tiny_rrdb(seed=23)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    mid = interpolate_models(a, b, 0.3)
    assert mid is not a
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(mid.conv_first.weight, 0.7 * a.conv_first.weight + 0.3 * b.conv_first.weight)


def test_interpolation_copies_integer_buffers() -> None:
    a = randomize_(SRResNet(num_feat=NF, num_block=1, scale=2), seed=1)
    b = randomize_(SRResNet(num_feat=NF, num_block=1, scale=2), seed=2)
    a.bn_body.num_batches_tracked.fill_(10)
    b.bn_body.num_batches_tracked.fill_(1000)
    mid = interpolate_models(a, b, 0.5)
    assert mid.bn_body.num_batches_tracked.item() == 10
    assert mid.bn_body.num_batches_tracked.dtype == torch.int64


def test_interpolation_refusals() -> None:
    a = tiny_rrdb(num_block=1)
    with pytest.raises(WeightsError) as exc:
        interpolate_models(a, tiny_rrdb(num_block=2), 0.5)
    assert "num_block" in str(exc.value) and "share" in str(exc.value)
    with pytest.raises(WeightsError):
        interpolate_models(a, randomize_(MSRResNet(num_feat=NF, num_block=1)), 0.5)
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(WeightsError, match="alpha"):
            interpolate_models(a, a, alpha)


# ---- CLI ---------------------------------------------------------------------------------------------


def test_cli_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_rrdb(scale=2)
    path = tmp_path / "m.pth"
    torch.save({"params_ema": rrdb_layout(model, "basicsr")}, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "RRDBNet" in out and "x2" in out and f"{count_parameters(model):,}" in out
    assert "num_grow_ch = 4" in out and "basicsr" in out


def test_cli_convert_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_rrdb(seed=30)
    src, dst = tmp_path / "in.pth", tmp_path / "out.safetensors"
    torch.save(rrdb_layout(model, "esrgan"), src)
    assert main(["convert", str(src), str(dst)]) == 0
    assert torch.equal(run(load_model(dst)), run(model))
    capsys.readouterr()
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert main(["convert", str(src), str(dst), "--overwrite"]) == 0
    assert main(["convert", str(dst), str(tmp_path / "old.pth"), "--layout", "old"]) == 0
    assert set(torch.load(tmp_path / "old.pth", weights_only=True)) == set(rrdb_layout(model, "old"))
    # without --layout a .pth keeps the input's layout
    assert main(["convert", str(src), str(tmp_path / "same.pth")]) == 0
    assert set(torch.load(tmp_path / "same.pth", weights_only=True)) == set(rrdb_layout(model, "esrgan"))


def test_cli_convert_other_generators(tmp_path: Path) -> None:
    srr = save_model(randomize_(SRResNet(num_feat=NF, num_block=1, scale=2)), tmp_path / "srr.safetensors")
    assert main(["convert", str(srr), str(tmp_path / "srr.pth")]) == 0
    msr = save_model(randomize_(MSRResNet(num_feat=NF, num_block=1)), tmp_path / "msr.safetensors")
    assert main(["convert", str(msr), str(tmp_path / "msr.pth"), "--layout", "basicsr2019"]) == 0
    assert "recon_trunk.0.conv1.weight" in torch.load(tmp_path / "msr.pth", weights_only=True)


def test_cli_models_lists_the_zoo(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ESRGAN_CACHE", str(tmp_path))
    (tmp_path / "RealESRGAN_x4plus.pth").write_bytes(b"x")
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in MODEL_ZOO:
        assert any(line.startswith(name) for line in lines), name
    cached = [line for line in lines if "cached at" in line]
    assert len(cached) == 1 and cached[0].startswith("RealESRGAN_x4plus ")
    assert sum("not downloaded" in line for line in lines) == len(MODEL_ZOO) - 1


@pytest.mark.parametrize("kind", ["garbage", "discriminator", "missing"])
def test_cli_upscale_with_bad_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.full((8, 8, 3), 128, np.uint8))
    weights = tmp_path / "bad.pth"
    if kind == "garbage":
        weights.write_bytes(b"\x00\x01garbage" * 10)
    elif kind == "discriminator":
        torch.save(VGGStyleDiscriminator(num_feat=4).state_dict(), weights)
    status = main(["upscale", str(image), "-m", str(weights), "-o", str(tmp_path / "out"), "-q"])
    captured = capsys.readouterr()
    assert status == 2
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "bad.pth" in err
    assert not (tmp_path / "out" / "img_out.png").exists()


def test_damaged_files_are_always_weights_errors(tmp_path: Path) -> None:
    """Cut and bit-flipped files, zip (.pth ≥ 1.6), legacy pickle and safetensors: never another exception."""
    model = RRDBNet(num_feat=4, num_grow_ch=2, num_block=1)
    sources = [tmp_path / "zip.pth", tmp_path / "legacy.pth", tmp_path / "st.safetensors"]
    torch.save(model.state_dict(), sources[0])
    torch.save(model.state_dict(), sources[1], _use_new_zipfile_serialization=False)
    save_model(model, sources[2])
    rng = np.random.default_rng(0)
    for src in sources:
        data = src.read_bytes()
        cases = [data[:n] for n in rng.integers(1, len(data), 15)]
        for pos in rng.integers(0, len(data), 60):
            flipped = bytearray(data)
            flipped[pos] ^= 0xFF
            cases.append(bytes(flipped))
        for i, case in enumerate(cases):
            path = tmp_path / f"damaged{i}{src.suffix}"
            path.write_bytes(case)
            try:
                load_model(path)
            except WeightsError as exc:
                assert path.name in str(exc)


def test_unwritable_cache_is_a_download_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a_file").write_bytes(b"")
    monkeypatch.setenv("ESRGAN_CACHE", str(tmp_path / "a_file" / "cache"))  # works as root too
    with pytest.raises(DownloadError) as exc:
        resolve_weights("RealESRGAN_x4plus", progress=False)
    assert "ESRGAN_CACHE" in str(exc.value) and "--model PATH" in str(exc.value)
