"""`esrgan upscale` against the original ESRGAN `test.py` procedure.

The reference here is written independently of `esrgan.archs`: a functional RRDBNet that reads its weights
by the ESRGAN repository's key names (`RRDB_trunk.{i}.RDB{k}.conv{m}`, `trunk_conv`, `upconv1/2`, `HRconv`,
`conv_last`) and follows SPEC §1 formula by formula, driven exactly like ESRGAN's `test.py`: OpenCV BGR read,
/255, BGR→RGB, model, clamp, ×255, round, RGB→BGR write.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from esrgan.cli import main

NF, GC, NB = 8, 4, 2


def _esrgan_repo_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the ESRGAN repository's names (scheme B), scaled so outputs vary visibly."""
    g = torch.Generator().manual_seed(seed)

    def conv(prefix: str, cin: int, cout: int) -> dict[str, torch.Tensor]:
        std = (2.0 / (cin * 9)) ** 0.5
        return {
            f"{prefix}.weight": torch.randn(cout, cin, 3, 3, generator=g) * std * 0.5,
            f"{prefix}.bias": torch.randn(cout, generator=g) * 0.01,
        }

    sd: dict[str, torch.Tensor] = {}
    sd.update(conv("conv_first", 3, NF))
    for i in range(NB):
        for k in range(1, 4):
            for m in range(1, 6):
                cin = NF + (m - 1) * GC
                cout = GC if m < 5 else NF
                sd.update(conv(f"RRDB_trunk.{i}.RDB{k}.conv{m}", cin, cout))
    sd.update(conv("trunk_conv", NF, NF))
    sd.update(conv("upconv1", NF, NF))
    sd.update(conv("upconv2", NF, NF))
    sd.update(conv("HRconv", NF, NF))
    sd.update(conv("conv_last", NF, 3))
    sd["conv_last.weight"] *= 4  # a visible response to the input texture
    sd["conv_last.bias"] += 0.5  # centre the outputs in [0, 1] so that few pixels are clamped
    return sd


def _reference_rrdbnet(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    def rdb(prefix: str, t: torch.Tensor) -> torch.Tensor:
        feats = [t]
        for m in range(1, 5):
            feats.append(lrelu(conv(f"{prefix}.conv{m}", torch.cat(feats, 1))))
        return t + 0.2 * conv(f"{prefix}.conv5", torch.cat(feats, 1))

    fea = conv("conv_first", x)
    trunk = fea
    for i in range(NB):
        block_in = trunk
        for k in range(1, 4):
            trunk = rdb(f"RRDB_trunk.{i}.RDB{k}", trunk)
        trunk = block_in + 0.2 * trunk
    fea = fea + conv("trunk_conv", trunk)
    fea = lrelu(conv("upconv1", F.interpolate(fea, scale_factor=2, mode="nearest")))
    fea = lrelu(conv("upconv2", F.interpolate(fea, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("HRconv", fea)))


def _original_test_py(sd: dict[str, torch.Tensor], path: Path) -> np.ndarray:
    """ESRGAN test.py: returns the BGR uint8 image it would write."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR).astype(np.float32) / 255.0
    img = torch.from_numpy(np.transpose(img[:, :, [2, 1, 0]], (2, 0, 1))).float().unsqueeze(0)
    with torch.no_grad():
        out = _reference_rrdbnet(sd, img).squeeze().float().clamp_(0, 1).numpy()
    out = np.transpose(out[[2, 1, 0], :, :], (1, 2, 0))
    return (out * 255.0).round().astype(np.uint8)


@pytest.mark.parametrize("tile", ["0", "auto"])
def test_cli_matches_original_esrgan_procedure(tmp_path: Path, shared_data: Path, tile: str) -> None:
    sd = _esrgan_repo_state_dict()
    weights = tmp_path / "RRDB_tiny_x4.pth"
    torch.save(sd, weights)  # a bare OrderedDict, as ESRGAN's released .pth files are

    # A real photo crop with texture (baboon), small enough for a quick test.
    src = cv2.imread(str(shared_data / "Set14" / "baboon.png"), cv2.IMREAD_COLOR)[100:148, 200:260]
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), src)

    out_dir = tmp_path / "out"
    args = [
        "upscale",
        str(image),
        "-m",
        str(weights),
        "-o",
        str(out_dir),
        "-t",
        tile,
        "-q",
        "--precision",
        "fp32",
    ]
    status = main(args)
    assert status == 0

    ours = cv2.imread(str(out_dir / "photo_out.png"), cv2.IMREAD_COLOR)
    expected = _original_test_py(sd, image)
    assert ours.shape == expected.shape == (48 * 4, 60 * 4, 3)
    diff = np.abs(ours.astype(int) - expected.astype(int))
    assert diff.max() <= 1, f"max difference {diff.max()} levels"
    # The random model must actually do something, or this comparison proves nothing.
    assert expected.std() > 5
