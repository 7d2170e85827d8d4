"""SRVGGNetCompact (Real-ESRGAN's fast model): loading a Real-ESRGAN-layout file, the forward pass against a
functional reference, and round trips through convert, ONNX export and tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from esrgan.archs import GENERATORS, SRVGGNetCompact
from esrgan.inference.upscaler import Upscaler
from esrgan.weights import convert_weights, inspect_weights, load_model, read_generator_weights


def _realesrgan_state_dict(
    num_feat: int, num_conv: int, scale: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state dict laid out as Real-ESRGAN's srvgg_arch.py saves it, written out by hand (not by our class):
    body.0 conv, body.1 PReLU, then num_conv × (conv, PReLU), then the tail conv to 3·scale² channels."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    convs = [(num_feat, 3)] + [(num_feat, num_feat)] * num_conv + [(3 * scale * scale, num_feat)]
    index = 0
    for k, (out_ch, in_ch) in enumerate(convs):
        sd[f"body.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * (1.0 / (3 * in_ch**0.5))
        sd[f"body.{index}.bias"] = torch.randn(out_ch, generator=g) * 0.01
        index += 1
        if k < len(convs) - 1:
            sd[f"body.{index}.weight"] = torch.rand(num_feat, generator=g) * 0.3  # PReLU slopes
            index += 1
    return sd


def _reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """Real-ESRGAN's forward written with functional ops only."""
    out = x
    keys = sorted({int(k.split(".")[1]) for k in sd})
    for i in keys:
        w = sd[f"body.{i}.weight"]
        if w.ndim == 4:
            out = F.conv2d(out, w, sd[f"body.{i}.bias"], padding=1)
        else:
            out = F.prelu(out, w)
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


def test_a_realesrgan_file_loads_with_hparams_read_from_shapes(tmp_path: Path) -> None:
    sd = _realesrgan_state_dict(num_feat=16, num_conv=6, scale=4)
    path = tmp_path / "realesr-general-x4v3-like.pth"
    torch.save({"params": sd}, path)  # Real-ESRGAN releases wrap the state dict in "params"
    weights = read_generator_weights(path)
    assert weights.arch == "SRVGGNetCompact" and weights.layout == "realesrgan"
    assert weights.hparams == {
        "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_conv": 6, "scale": 4, "act_type": "prelu"
    }  # fmt: skip
    model = load_model(path)
    assert isinstance(model, SRVGGNetCompact) and model.scale == 4
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        assert torch.allclose(model(x), _reference_forward(sd, x, 4), atol=1e-5)
    info = inspect_weights(path)
    assert (
        info.arch == "SRVGGNetCompact"
        and info.scale == 4
        and info.num_params == sum(t.numel() for t in sd.values())
    )


def test_full_size_models_have_the_published_shapes() -> None:
    # realesr-general-x4v3: 64 features, 32 convs, ×4, PReLU; its .pth file has 4,885,111 bytes
    general = GENERATORS["SRVGGNetCompact"](num_feat=64, num_conv=32, scale=4)
    assert sum(p.numel() for p in general.parameters()) == 1_213_296  # 4.85 MB of fp32
    anime = SRVGGNetCompact(num_feat=64, num_conv=16, scale=4)
    assert len([k for k in anime.state_dict() if k.endswith(".bias")]) == 18


def test_convert_round_trip_and_relu_variant(tmp_path: Path) -> None:
    sd = _realesrgan_state_dict(num_feat=8, num_conv=3, scale=2, seed=1)
    src = tmp_path / "m.pth"
    torch.save(sd, src)
    out = convert_weights(src, tmp_path / "m.safetensors")
    back = convert_weights(out, tmp_path / "back.pth", layout="realesrgan")
    loaded = torch.load(back, weights_only=True)
    loaded = loaded.get("params", loaded)
    assert set(loaded) == set(sd) and all(torch.equal(loaded[k], sd[k]) for k in sd)
    relu = SRVGGNetCompact(num_feat=8, num_conv=2, scale=2, act_type="relu")
    torch.save(relu.state_dict(), tmp_path / "relu.pth")
    assert read_generator_weights(tmp_path / "relu.pth").hparams["act_type"] == "relu"


def test_tiles_match_the_whole_image() -> None:
    torch.manual_seed(3)
    model = load_model(SRVGGNetCompact(num_feat=8, num_conv=2, scale=4))
    image = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    whole = Upscaler(model, tile=0, device="cpu", precision="fp32").upscale(image)
    tiled = Upscaler(model, tile=16, tile_overlap=5, device="cpu", precision="fp32").upscale(image)
    assert whole.shape == tiled.shape == (148, 180, 3)
    # each tile sees the model's whole receptive field (radius 4 < overlap 5): only float rounding differs
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_onnx_export_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from esrgan.inference.onnx import OnnxModel, export_onnx

    sd = _realesrgan_state_dict(num_feat=8, num_conv=2, scale=4, seed=2)
    torch.save(sd, tmp_path / "m.pth")
    path = export_onnx(tmp_path / "m.pth", tmp_path / "m.onnx")
    onnx_model = OnnxModel(path, threads=1)
    assert onnx_model.scale == 4
    x = torch.rand(1, 3, 9, 14)
    with torch.no_grad():
        assert torch.allclose(onnx_model(x), _reference_forward(sd, x, 4), atol=1e-4)
