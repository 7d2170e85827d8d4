"""Tile planning and blended tiled inference: full coverage, weights summing to 1, tiled == untiled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrgan.inference.tiling import Tile, axis_weights, blend_weights, plan_axis, plan_tiles, tiled_forward


class SmallReceptiveFieldNet(nn.Module):
    """Two 3×3 convs at input resolution, nearest ×2, one 3×3 conv at output resolution.

    Receptive-field radius in input pixels: 1 + 1 (input-resolution convs) + 1 (the output conv reaches one
    output pixel across, which can be the neighbouring input pixel) = 3.
    """

    radius = 3

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        g = torch.Generator().manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 3, 3, padding=1)
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.normal_(conv.weight, std=0.3, generator=g)
            nn.init.normal_(conv.bias, std=0.1, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.conv3(F.interpolate(x, scale_factor=self.scale, mode="nearest"))


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [
        (1, 8, 0),
        (7, 8, 2),
        (8, 8, 2),
        (9, 8, 2),
        (37, 16, 4),
        (100, 32, 5),
        (171, 64, 10),
        (50, 7, 0),
        (31, 10, 3),
    ],
)
def test_plan_axis_covers_with_equal_windows_and_enough_overlap(length: int, tile: int, overlap: int) -> None:
    spans = plan_axis(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    if length <= tile:
        assert spans == [(0, length)]
        return
    sizes = {stop - start for start, stop in spans}
    assert len(sizes) == 1 and sizes.pop() <= tile  # one size (compiled backends), never above `tile`
    # as few windows as `tile` allows, and no bigger than those need
    count, size = len(spans), spans[0][1] - spans[0][0]
    assert count == 1 + -(-(length - tile) // (tile - 3 * overlap))
    assert count * (size - 1) < length + (count - 1) * 3 * overlap
    starts = [start for start, _ in spans]
    assert starts == sorted(set(starts))
    for (_, stop), (start, _) in zip(spans, spans[1:], strict=False):
        assert stop - start >= 3 * overlap  # context on both sides + cross-fade
    steps = np.diff(starts)
    assert steps.max() - steps.min() <= 1  # evenly spread


def test_plan_tiles_covers_every_pixel_inside_the_image() -> None:
    height, width = 45, 70
    tiles = plan_tiles(height, width, 24, 3)
    covered = np.zeros((height, width), int)
    for t in tiles:
        assert 0 <= t.y0 < t.y1 <= height and 0 <= t.x0 < t.x1 <= width
        assert (t.height, t.width) == (tiles[0].height, tiles[0].width) and max(t.height, t.width) <= 24
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert covered.min() >= 1


def test_plan_tiles_small_image_is_one_tile() -> None:
    assert plan_tiles(10, 20, 64, 16) == [Tile(0, 10, 0, 20)]


def test_plan_rejects_tile_not_larger_than_three_overlaps() -> None:
    with pytest.raises(ValueError, match="3 × overlap"):
        plan_tiles(100, 100, 30, 10)


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "scale"), [(45, 70, 24, 3, 2), (33, 33, 16, 2, 4)]
)
def test_blend_weights_sum_to_one_and_ignore_untrusted_margins(
    height: int, width: int, tile: int, overlap: int, scale: int
) -> None:
    tiles = plan_tiles(height, width, tile, overlap)
    total = np.zeros((height * scale, width * scale))
    margin = overlap * scale
    for t, (wy, wx) in zip(tiles, blend_weights(tiles, height, width, overlap, scale), strict=True):
        w = np.outer(wy, wx)
        assert w.min() >= 0
        # Zero weight within `overlap` input pixels of an edge that borders another tile (not the image).
        if t.y0 > 0:
            assert not w[:margin].any()
        if t.x0 > 0:
            assert not w[:, :margin].any()
        if t.y1 < height:
            assert not w[-margin:].any()
        if t.x1 < width:
            assert not w[:, -margin:].any()
        total[t.y0 * scale : t.y1 * scale, t.x0 * scale : t.x1 * scale] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_axis_weights_ramp_is_linear_and_continuous() -> None:
    spans = plan_axis(40, 20, 4)
    weights = axis_weights(spans, 40, 4, 1)
    second = weights[1]
    ramp = second[4:9]  # after the 4-pixel margin, 4 ramp steps up to 1
    assert np.all(second[:4] == 0)
    assert np.all(np.diff(ramp) > 0)
    # Where only two tiles meet, the cross-fade is exactly linear: 1/5, 2/5, ... of the raw ramp.
    total = np.zeros(40)
    for (start, _), w in zip(spans, weights, strict=True):
        total[start : start + len(w)] += w
    assert np.max(np.abs(np.diff(total))) < 1e-12


@pytest.mark.parametrize(("height", "width", "tile"), [(37, 53, 20), (20, 29, 13), (16, 16, 16)])
def test_tiled_equals_untiled_when_overlap_covers_receptive_field(height: int, width: int, tile: int) -> None:
    net = SmallReceptiveFieldNet().eval()
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, scale=2, tile=tile, overlap=net.radius)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiled_differs_when_overlap_is_below_receptive_field() -> None:
    """The equality above is not trivial: one pixel less of overlap and the tiles see their zero padding."""
    net = SmallReceptiveFieldNet().eval()
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, scale=2, tile=16, overlap=net.radius - 1)
    assert (tiled - whole).abs().max() > 1e-3


def test_tiled_forward_reports_progress_and_checks_scale() -> None:
    net = SmallReceptiveFieldNet().eval()
    x = torch.rand(1, 3, 30, 30)
    calls: list[tuple[int, int]] = []
    with torch.no_grad():
        tiled_forward(net, x, scale=2, tile=16, overlap=1, progress=lambda d, t: calls.append((d, t)))
    total = len(plan_tiles(30, 30, 16, 1))
    assert total > 1 and calls == [(i, total) for i in range(1, total + 1)]
    with pytest.raises(ValueError, match="scale 3"), torch.no_grad():
        tiled_forward(net, x, scale=3, tile=16, overlap=1)


def test_tiled_equals_untiled_for_tiny_rrdbnet() -> None:
    archs = pytest.importorskip("esrgan.archs")
    rrdbnet = getattr(archs, "RRDBNet", None)
    if rrdbnet is None:
        pytest.skip("esrgan.archs.RRDBNet is not available yet")
    net = rrdbnet(num_block=1, num_feat=8, num_grow_ch=4).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights large enough that far-away pixels visibly matter
        for p in net.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 * (2.0 / fan_in) ** 0.5 if p.ndim > 1 else 0.01))
    scale = net.scale
    x = torch.rand(1, 3, 70, 66, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = net(x)
        # SPEC §1.5: receptive-field radius ≈ 18 input pixels for one RRDB block → overlap 19.
        tiled = tiled_forward(net, x, scale=scale, tile=64, overlap=19)
        short = tiled_forward(net, x, scale=scale, tile=64, overlap=2)
    assert len(plan_tiles(70, 66, 64, 19)) > 1
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    assert (short - whole).abs().max() > 1e-4


@pytest.mark.parametrize("n", [1, 2])
def test_batched_tiles_equal_tiles_one_at_a_time(n: int) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2)).eval()
    calls: list[int] = []

    def model_fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape[0])
        with torch.no_grad():
            return net(t)

    x = torch.rand(n, 3, 50, 70)
    single = tiled_forward(model_fn, x, scale=2, tile=24, overlap=2)
    tiles = len(calls)
    calls.clear()
    batched = tiled_forward(model_fn, x, scale=2, tile=24, overlap=2, batch=3)
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
    assert sum(calls) == n * tiles and len(calls) < tiles and max(calls) == 3 * n


@pytest.mark.parametrize("multiple", [2, 4])
@pytest.mark.parametrize(("length", "tile", "overlap"), [(48, 24, 4), (88, 32, 4), (400, 64, 8), (36, 32, 1)])
def test_windows_keep_the_size_multiple(multiple: int, length: int, tile: int, overlap: int) -> None:
    spans = plan_axis(length, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all((stop - start) % multiple == 0 and stop - start <= tile for start, stop in spans)
    for (_, stop), (start, _) in zip(spans, spans[1:], strict=False):
        assert stop - start >= 3 * overlap


def test_pixel_unshuffle_model_tiles_odd_images() -> None:
    """RRDBNet ×2 needs even sizes: tiled windows must keep them even (regression: 37×45, tile 24)."""
    from esrgan.archs import RRDBNet
    from esrgan.inference.upscaler import Upscaler

    model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    image = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    for tile in (24, 32):
        assert Upscaler(model, tile=tile, tile_overlap=4, device="cpu", precision="fp32").upscale(
            image
        ).shape == (74, 90, 3)
