"""Tile planning and blended (feathered) tiled inference.

A big image is cut into overlapping windows of ``tile × tile`` input pixels (smaller only where the image
itself is smaller), each window goes through the model on its own, and the outputs are blended with weights
that sum to 1 at every output pixel. Along each axis a window's weight is

- 0 in the outermost `overlap` pixels next to a neighbouring window: the network saw zero padding there
  instead of the neighbour's pixels, so those outputs are not trusted (they only give context);
- rising linearly over the next `overlap` pixels (the cross-fade with the neighbour, so no seams);
- 1 elsewhere, including right up to the image border (tiles are clipped to the image, never zero-padded
  beyond it, so at the border a tile sees exactly what the whole-image forward sees).

Neighbouring windows therefore share at least ``3 × overlap`` input pixels, and the window spacing is spread
evenly so that every window but those of an image smaller than `tile` has the same size (which suits compiled
backends). Consequence: if `overlap` ≥ the model's receptive-field radius in input pixels (SPEC §1.5: ≈ 18 for
a 1-block RRDBNet, ≈ 348 for the 23-block one), every output pixel with non-zero weight is exactly the
whole-image value and the tiled result equals the untiled one up to float rounding. With a smaller overlap
(the usual case for big models) results differ slightly from whole-image inference but the cross-fade keeps
tile borders invisible — unlike Real-ESRGAN's `tile_process` (SPEC §10.3), which pastes tiles edge to edge.

Weights are separable: ``w(y, x) = wy(y) · wx(x)``, each normalised per axis, so the 2-D weights sum to 1 too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Tile:
    """One input window: rows ``[y0, y1)`` × columns ``[x0, x1)`` of the (low-resolution) input."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def plan_axis(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Windows ``[start, stop)`` along one axis: all of one size ≤ `tile` (one window of size `length` if the
    axis is not longer than `tile`), first at 0, last ending at `length`, consecutive ones sharing ≥ 3·overlap
    pixels.

    The size is the smallest that covers the axis with as few windows as `tile` allows, so that no more
    pixels are computed twice than the overlap needs (a 480-pixel axis with tile 384 and overlap 8 gets two
    252-pixel windows, not two 384-pixel ones). With `multiple` (a model that needs sizes divisible by it;
    `tile` and `length` must then be multiples too) the size is rounded up to a multiple."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if tile < 1 or overlap < 0:
        raise ValueError(f"need tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [(0, length)]
    max_step = tile - 3 * overlap
    if max_step < 1:
        raise ValueError(
            f"tile ({tile}) must be larger than 3 × overlap ({3 * overlap}): neighbouring tiles share "
            f"{overlap} context pixels each plus a {overlap}-pixel cross-fade"
        )
    count = 1 + -(-(length - tile) // max_step)  # ceil division
    # Smallest equal size with count·size ≥ length + (count - 1)·3·overlap, so steps fit size - 3·overlap.
    size = -(-(length + (count - 1) * 3 * overlap) // count)
    size = min(tile, -(-size // multiple) * multiple)  # still ≤ tile when tile is a multiple
    travel = length - size
    # Evenly spread integer starts; consecutive steps differ by at most 1 and never exceed size - 3·overlap.
    starts = [(i * travel + (count - 1) // 2) // (count - 1) for i in range(count)]
    return [(s, s + size) for s in starts]


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> list[Tile]:
    """Overlapping windows covering a ``height × width`` input, row-major (see the module docstring)."""
    rows = plan_axis(height, tile, overlap, multiple)
    cols = plan_axis(width, tile, overlap, multiple)
    return [Tile(y0, y1, x0, x1) for (y0, y1) in rows for (x0, x1) in cols]


def axis_weights(spans: list[tuple[int, int]], length: int, overlap: int, scale: int) -> list[np.ndarray]:
    """Blend weights at output resolution for windows `spans` along an axis of `length` input pixels.

    Returns one float64 array of length ``(stop - start) · scale`` per span; placed at ``start · scale`` they
    sum to exactly 1 at every output position (up to rounding).
    """
    margin = overlap * scale  # untrusted output pixels next to an interior window edge
    ramp = overlap * scale  # cross-fade length after the margin
    raw = []
    for start, stop in spans:
        n = (stop - start) * scale
        d = np.arange(n, dtype=np.float64)
        w = np.ones(n)
        if start > 0:  # neighbour before: fade in
            w = np.minimum(w, np.clip((d - margin + 1) / (ramp + 1), 0.0, 1.0))
        if stop < length:  # neighbour after: fade out
            w = np.minimum(w, np.clip((n - d - margin) / (ramp + 1), 0.0, 1.0))
        raw.append(w)
    total = np.zeros(length * scale)
    for (start, _), w in zip(spans, raw, strict=True):
        total[start * scale : start * scale + len(w)] += w
    if not np.all(total > 0):  # cannot happen for spans from plan_axis; guards hand-made spans
        raise ValueError(
            "windows leave output pixels without any trusted tile; increase the tile spacing overlap"
        )
    return [
        w / total[start * scale : start * scale + len(w)] for (start, _), w in zip(spans, raw, strict=True)
    ]


def blend_weights(
    tiles: list[Tile], height: int, width: int, overlap: int, scale: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per tile, its normalised row and column weights ``(wy, wx)`` at output resolution; the tile's 2-D
    weight is ``wy[:, None] * wx[None, :]`` and these sum to 1 over all tiles at every output pixel."""
    rows = sorted({(t.y0, t.y1) for t in tiles})
    cols = sorted({(t.x0, t.x1) for t in tiles})
    wy = dict(zip(rows, axis_weights(rows, height, overlap, scale), strict=True))
    wx = dict(zip(cols, axis_weights(cols, width, overlap, scale), strict=True))
    return [(wy[(t.y0, t.y1)], wx[(t.x0, t.x1)]) for t in tiles]


def tiled_forward(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 1,
    multiple: int = 1,
) -> torch.Tensor:
    """Run `model_fn` over overlapping tiles of `x` (NCHW) and blend the outputs.

    `model_fn` maps an ``N×C×h×w`` slice of `x` to ``N×C'×(h·scale)×(w·scale)`` (any device/dtype). The result
    is float32 ``N×C'×(H·scale)×(W·scale)`` on `x`'s device, so only one tile at a time lives on the model's
    device. `progress(done, total)` is called after each tile. Output is not clamped.

    The result is assembled from `tiled_forward_bands`, so it is identical to the streamed bands.
    """
    out: torch.Tensor | None = None
    for row0, band in tiled_forward_bands(
        model_fn,
        x,
        scale=scale,
        tile=tile,
        overlap=overlap,
        progress=progress,
        batch=batch,
        multiple=multiple,
    ):
        if out is None:
            n, _, height, width = x.shape
            out = torch.empty(
                n, band.shape[1], height * scale, width * scale, dtype=torch.float32, device=x.device
            )
        out[:, :, row0 : row0 + band.shape[2]] = band
    assert out is not None  # plan_tiles always returns at least one tile
    return out


def tiled_forward_bands(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 1,
    multiple: int = 1,
) -> Iterator[tuple[int, torch.Tensor]]:
    """`tiled_forward`, yielding the output in horizontal bands as soon as they are final.

    `multiple`: window sizes are multiples of it (pixel-unshuffle models; `tile` and `x`'s size must be).
    `batch` > 1 runs up to that many same-sized tiles of one tile row through `model_fn` at once (stacked
    along N; for GPUs, where one small tile does not fill the device). Results are accumulated one tile at a
    time in the same order either way.

    Yields ``(row0, band)``: `band` is float32 ``N×C'×rows×(W·scale)`` on `x`'s device holding output rows
    ``[row0, row0 + rows)``; bands come top to bottom, cover every output row once and are never modified
    afterwards. Tiles run in the same row-major order with the same weights and the same accumulation as a
    whole-output buffer would get, so concatenated bands are bit-identical to that buffer.

    Memory: only the band of output rows under the current row of tiles (at most ``tile · scale`` rows, full
    width) is accumulated; the rows above the next tile row's first row are final (tile rows start top to
    bottom), so they are yielded and their part of the accumulator is dropped.
    """
    if x.ndim != 4:
        raise ValueError(f"expected an NCHW tensor, got shape {tuple(x.shape)}")
    n, _, height, width = x.shape
    tiles = plan_tiles(height, width, tile, overlap, multiple)
    weights = blend_weights(tiles, height, width, overlap, scale)
    # Tile rows start strictly top to bottom (plan_axis), so once a tile row is done, the output rows above
    # the next tile row's first row are final.
    row_spans = sorted({(t.y0, t.y1) for t in tiles})
    final_end = {span: nxt[0] for span, nxt in zip(row_spans, row_spans[1:], strict=False)}
    final_end[row_spans[-1]] = height
    band: torch.Tensor | None = None  # accumulator for output rows [band0, band0 + band.shape[2])
    band0 = 0
    for i, (t, y) in enumerate(_batched_outputs(model_fn, x, tiles, batch)):
        wy, wx = weights[i]
        expected = (n, t.height * scale, t.width * scale)
        if y.ndim != 4 or (y.shape[0], y.shape[2], y.shape[3]) != expected:
            raise ValueError(
                f"model output {tuple(y.shape)} for a {t.height}×{t.width} tile does not match scale {scale}"
            )
        y = y.to(device=x.device, dtype=torch.float32)
        first_in_row = i == 0 or (tiles[i - 1].y0, tiles[i - 1].y1) != (t.y0, t.y1)
        if first_in_row:  # grow the accumulator down to this tile row's last output row
            rows = t.y1 * scale - band0
            grown = _new_band(n, y.shape[1], rows, width * scale, x.device)
            if band is not None:
                grown[:, :, : band.shape[2]] = band  # rows shared with the previous tile row
            band = grown
        assert band is not None
        w = torch.from_numpy(np.outer(wy, wx).astype(np.float32)).to(x.device)
        rows_in_band = slice(t.y0 * scale - band0, t.y1 * scale - band0)
        band[:, :, rows_in_band, t.x0 * scale : t.x1 * scale].addcmul_(y, w)
        if progress is not None:
            progress(i + 1, len(tiles))
        last_in_row = i + 1 == len(tiles) or (tiles[i + 1].y0, tiles[i + 1].y1) != (t.y0, t.y1)
        if last_in_row:
            final = final_end[(t.y0, t.y1)] * scale - band0
            yield band0, band[:, :, :final]
            # The next tile row gets a new accumulator, so the yielded rows are never written again.
            band, band0 = band[:, :, final:], band0 + final


def _batched_outputs(
    model_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tiles: list[Tile], batch: int
) -> Iterator[tuple[Tile, torch.Tensor]]:
    """``(tile, model output)`` in tile order; up to `batch` consecutive same-row, same-size tiles a call."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    n = x.shape[0]
    i = 0
    while i < len(tiles):
        group = [tiles[i]]
        while (
            len(group) < batch
            and i + len(group) < len(tiles)
            and (nxt := tiles[i + len(group)]).y0 == group[0].y0
            and (nxt.height, nxt.width) == (group[0].height, group[0].width)
        ):
            group.append(nxt)
        i += len(group)
        if len(group) == 1:
            t = group[0]
            yield t, model_fn(x[:, :, t.y0 : t.y1, t.x0 : t.x1])
            continue
        stacked = torch.cat([x[:, :, t.y0 : t.y1, t.x0 : t.x1] for t in group])
        out = model_fn(stacked)
        if out.ndim != 4 or out.shape[0] != n * len(group):
            raise ValueError(f"model output {tuple(out.shape)} for a batch of {n * len(group)} tiles")
        for k, t in enumerate(group):
            yield t, out[k * n : (k + 1) * n]


def _new_band(n: int, channels: int, rows: int, width: int, device: torch.device) -> torch.Tensor:
    """A zeroed float32 band accumulator (a function of its own so that tests can watch its size)."""
    return torch.zeros(n, channels, rows, width, dtype=torch.float32, device=device)
