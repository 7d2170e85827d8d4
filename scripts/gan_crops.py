"""Crop grid for judging GAN textures by eye (issue 11's study): textured windows of baboon (Set14) and of
DIV2K-tiny foliage, water and fabric, ×4 from MATLAB-bicubic LR, each enlarged 2× (nearest) so that single
pixels are visible. Rows are windows, columns are HR, bicubic and the given models.

    python scripts/gan_crops.py -o docs/results/gan_study/crops.png \
        psnr=esrgan_lite_psnr_x4 base=runs/gan_study/base/models/net_g_final.safetensors ...

Models run in fp32 (the evaluation precision). Note that the DIV2K-tiny windows come from the training images:
they show texture behaviour, not generalisation (baboon is held out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from esrgan.inference.upscaler import Upscaler
from esrgan.io.images import read_image
from esrgan.ops.matlab_resize import imresize, modcrop
from esrgan.weights import load_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# (label, image, x, y) of 96×96 HR windows
WINDOWS = [
    ("baboon fur", DATA / "Set14" / "baboon.png", 8, 112),
    ("foliage", DATA / "DIV2K-tiny-HR" / "0026_s016.png", 288, 192),
    ("water", DATA / "DIV2K-tiny-HR" / "0066_s029.png", 192, 288),
    ("fabric", DATA / "DIV2K-tiny-HR" / "0093_s022.png", 288, 192),
]
SIZE = 96
ZOOM = 2
LABEL_HEIGHT = 18


def _rgb(path: Path) -> np.ndarray:
    pixels = read_image(path).pixels
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels[:, :, :3]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL", help="model name or weights file")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    models = [m.split("=", 1) for m in args.models]
    upscalers = {label: Upscaler(load_model(spec), tile=0, precision="fp32") for label, spec in models}
    columns = ["HR", "bicubic", *upscalers]
    cell = SIZE * ZOOM
    grid = Image.new("RGB", (len(columns) * (cell + 4), len(WINDOWS) * (cell + LABEL_HEIGHT + 4)), "white")
    draw = ImageDraw.Draw(grid)
    for row, (name, path, x, y) in enumerate(WINDOWS):
        hr = modcrop(_rgb(path), 4)
        lr = np.clip(np.rint(imresize(hr.astype(np.float64) / 255, 0.25) * 255), 0, 255).astype(np.uint8)
        outputs = {
            "HR": hr,
            "bicubic": np.clip(np.rint(imresize(lr / 255.0, 4) * 255), 0, 255).astype(np.uint8),
        }
        outputs.update({label: up.upscale(lr) for label, up in upscalers.items()})
        top = row * (cell + LABEL_HEIGHT + 4)
        for col, label in enumerate(columns):
            window = outputs[label][y : y + SIZE, x : x + SIZE]
            tile = Image.fromarray(window).resize((cell, cell), Image.NEAREST)
            left = col * (cell + 4)
            grid.paste(tile, (left, top + LABEL_HEIGHT))
            draw.text((left + 2, top + 2), f"{name}: {label}" if col == 0 else label, fill="black")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output)
    print(f"wrote {args.output} ({grid.width}×{grid.height})")


if __name__ == "__main__":
    main()
