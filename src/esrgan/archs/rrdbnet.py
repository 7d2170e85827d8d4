"""RRDBNet, the ESRGAN generator (SPEC §1), with BasicSR ≥ 1.0 parameter names.

    fea = conv_first(x); fea = fea + conv_body(RRDB_nb(...RRDB_1(fea)))
    repeat n_up: fea = lrelu(conv_up_j(nearest×2(fea)))
    out = conv_last(lrelu(conv_hr(fea)))

Scales below the number of up-sampling stages use BasicSR/Real-ESRGAN's pixel-unshuffle trick (SPEC §1.7):
the input is space-to-depth transformed first, so a ×2 model with two up-stages sees 12 input channels.

Inference shortcuts, taken only without autograd and in channels_last (the inference runner's layout; plain
NCHW calls compute the network exactly as written, like the original code):
- the tail's nearest ×2 + 3×3 conv runs as four 2×2 phase convs on the small map (`upsample_conv_lrelu`);
- in bf16 on a CPU with native bf16, the dense blocks run in a *slot layout* instead of concatenating
  (`ResidualDenseBlock.forward_slots`): the same multiply-adds, without copying every earlier feature map
  again for each of the four concatenations;
- the kernels these use are derived once per weight version (`inference_weights`), the slot kernels
  prepacked in oneDNN's layout where the build allows.
All give the same result up to float rounding (tests/test_archs.py); `esrgan.archs.blocks.as_written`
turns them off.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from esrgan.archs.blocks import conv3x3, log2_int, rewrites_allowed, scaled_kaiming_init
from esrgan.archs.spec import COMMON_CONFIG_FIELDS, GeneratorSpec, StateDict, module_count
from esrgan.precision import cpu_native_bf16

RESIDUAL_SCALE = 0.2  # β in the paper: every dense block and every RRDB adds 0.2 × its residual
LRELU_SLOPE = 0.2  # every LeakyReLU of the generator
GROWTH_MAPS = 4  # x1…x4: the maps a dense block adds to its input before conv5
_SLOT_PADDING = (0, 1, 1)  # a 3×3 conv as a conv3d over slots: no padding across slots
# the slot convs' padding, stride, dilation, groups, and no fused post-op, for the prepacked op below
_SLOT_CONV_ARGS = (list(_SLOT_PADDING), [1, 1, 1], [1, 1, 1], 1, "none", [], "")

# PyTorch's private oneDNN ops for prepacked convolutions (the ones torch.compile uses on CPUs); None where
# this build lacks them
_conv_prepacked = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
_prepack_conv3d = getattr(torch._C._nn, "mkldnn_reorder_conv3d_weight", None)
if _prepack_conv3d is None or not torch.backends.mkldnn.is_available():
    _conv_prepacked = None


def _as_slots(x: Tensor, slot_channels: int) -> Tensor:
    """View (N, C, …) as (N, slot_channels, C / slot_channels, …): slot d holds channels [d·s, (d+1)·s)."""
    return x.unflatten(1, (x.shape[1] // slot_channels, slot_channels)).transpose(1, 2)


def _slot_conv(conv: nn.Conv2d, slots: Tensor) -> Tensor:
    """`conv` applied to the channel concatenation of `slots` (N, s, D, H, W): a conv3d whose kernel spans
    all D slots, so it reads them in place. Returns (N, out_channels, 1, H, W)."""
    form = f"slots of {slots.shape[1]}"
    weight, bias = inference_weights(conv, form, slots.dtype, lambda w, b, dtype: _slot_kernel(w, b, slots))
    if weight.is_mkldnn:
        return _conv_prepacked(slots, weight, bias, *_SLOT_CONV_ARGS)  # type: ignore[misc]
    return F.conv3d(slots, weight, bias, padding=_SLOT_PADDING)


def _slot_kernel(weight: Tensor, bias: Tensor | None, slots: Tensor) -> tuple[Tensor, Tensor | None]:
    """A dense-block conv's weight as a conv3d kernel over `slots`, in their dtype; on the CPU prepacked in
    oneDNN's own blocked layout where this PyTorch build can. `F.conv3d` takes plain (strided) weights and
    reorders them into that layout on every call: ~30 µs each, 3 % of a 32² pass, ~1 % of a 128² one. The
    prepacked call gives the same numbers (tests/test_archs.py); the layout is chosen for the first call's
    shape, and oneDNN adapts it itself for other shapes."""
    kernel = (
        _as_slots(weight, slots.shape[1]).to(slots.dtype).contiguous(memory_format=torch.channels_last_3d)
    )
    bias = None if bias is None else bias.to(slots.dtype)
    if slots.device.type == "cpu" and _conv_prepacked is not None:
        try:
            packed = _prepack_conv3d(kernel.to_mkldnn(), *_SLOT_CONV_ARGS[:4], list(slots.shape))
            # a CPU or build that cannot run it fails here, on a 1-pixel corner, not in the middle of a pass
            _conv_prepacked(slots[:, :, :, :1, :1], packed, bias, *_SLOT_CONV_ARGS)
            kernel = packed
        except RuntimeError:  # e.g. bf16 on a CPU without AVX-512: plain weights through F.conv3d
            pass
    return kernel, bias


# conv → {form: (the parameters' identity, the parameters, weight, bias)}; weak: a dropped model frees its
# entries
_Prepared = tuple[tuple[object, ...], tuple[Tensor, "Tensor | None"], Tensor, "Tensor | None"]
_INFERENCE_WEIGHTS: weakref.WeakKeyDictionary[nn.Conv2d, dict[str, _Prepared]] = weakref.WeakKeyDictionary()


def inference_weights(
    conv: nn.Conv2d,
    form: str,
    dtype: torch.dtype,
    make: Callable[[Tensor, Tensor | None, torch.dtype], tuple[Tensor, Tensor | None]],
) -> tuple[Tensor, Tensor | None]:
    """`make(conv.weight, conv.bias, dtype)` (inference only), made once and kept while the parameters stay
    the same, unmodified tensors: same objects, storage and version counters (an optimizer step or
    `load_state_dict` bumps the version, `.to()` moves the storage, assigning a parameter replaces it).
    Re-deriving the slot weights on every pass (the reshape, autocast's cast, the contiguous copy oneDNN
    wants) cost ~3 % of a bf16 pass."""
    weight, bias = conv.weight, conv.bias
    # ids are unique while the entry holds the parameters themselves
    identity = (dtype, *((id(t), t.data_ptr(), t._version) for t in (weight, bias) if t is not None))
    forms = _INFERENCE_WEIGHTS.setdefault(conv, {})
    cached = forms.get(form)
    if cached is None or cached[0] != identity:
        with torch.no_grad():
            made, made_bias = make(weight, bias, dtype)
        cached = forms[form] = (identity, (weight, bias), made, made_bias)
    return cached[2], cached[3]


def new_slots(like: Tensor, slot_channels: int, count: int) -> Tensor:
    """An uninitialised slot buffer (N, slot_channels, count, H, W) for feature maps like `like` (N, C, H, W),
    laid out channels_last_3d: each slot, and each run of leading slots, is one contiguous block."""
    n, _, h, w = like.shape
    memory = torch.empty((n, count, h, w, slot_channels), dtype=like.dtype, device=like.device)
    return memory.permute(0, 4, 1, 2, 3)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3×3 convs; x + 0.2 · conv5(cat[x, x1, x2, x3, x4]) (SPEC §1.2)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_grow_ch)
        self.conv2 = conv3x3(num_feat + num_grow_ch, num_grow_ch)
        self.conv3 = conv3x3(num_feat + 2 * num_grow_ch, num_grow_ch)
        self.conv4 = conv3x3(num_feat + 3 * num_grow_ch, num_grow_ch)
        self.conv5 = conv3x3(num_feat + 4 * num_grow_ch, num_feat)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        # Concatenation order [x, x1, ...] is part of the weight format.
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + RESIDUAL_SCALE * x5

    def forward_slots(self, slots: Tensor, out: Tensor) -> Tensor:
        """`forward` in the slot layout, for inference: `slots` is (N, gc, nf/gc + 4, H, W) from `new_slots`
        with x in its first nf/gc slots; x1…x4 are written into the four slots after them, and the block's
        output into `out` (N, gc, nf/gc, H, W), which may be another buffer's leading slots.

        In channels-last memory a channel slice is strided, so `torch.cat` copies x, x1, … again for every
        conv (7 % of a bf16 pass on a CPU); here conv k reads its k leading slots where they lie, as a conv3d
        over the slot axis, at the same speed as the conv2d. oneDNN runs those conv3d fast in bf16 only: fp32
        ones with 32 outputs fall back to a ~10× slower kernel, so `RRDBNet` uses this for bf16 only."""
        first = slots.shape[2] - GROWTH_MAPS
        for k, conv in enumerate((self.conv1, self.conv2, self.conv3, self.conv4)):
            y = _slot_conv(conv, slots[:, :, : first + k])
            torch.ops.aten.leaky_relu.out(y, LRELU_SLOPE, out=slots[:, :, first + k : first + k + 1])
        x5 = _slot_conv(self.conv5, slots).squeeze(2)
        return torch.add(slots[:, :, :first], _as_slots(x5, slots.shape[1]), alpha=RESIDUAL_SCALE, out=out)


class RRDB(nn.Module):
    """Residual-in-residual dense block: x + 0.2 · RDB3(RDB2(RDB1(x))) (SPEC §1.3)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))

    def forward_slots(self, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        """`forward` in the slot layout (`ResidualDenseBlock.forward_slots`) with three buffers: x in the
        leading slots of `a`, where the output replaces it; `b` and `c` are scratch."""
        first = a.shape[2] - GROWTH_MAPS
        self.rdb1.forward_slots(a, out=b[:, :, :first])
        self.rdb2.forward_slots(b, out=c[:, :, :first])
        self.rdb3.forward_slots(c, out=b[:, :, :first])
        return a[:, :, :first].add_(b[:, :, :first], alpha=RESIDUAL_SCALE)


class RRDBNet(nn.Module):
    """The ESRGAN generator. NCHW float RGB in [0, 1] in; linear output (clamp at inference).

    Args:
        num_in_ch, num_out_ch: image channels (3 for RGB, 1 for gray).
        num_feat: trunk width (nf, 64 in the paper).
        num_block: number of RRDBs (nb, 23 in the paper).
        num_grow_ch: dense-block growth channels (gc, 32).
        scale: overall upscaling factor, a power of two (1, 2, 4, 8, …).
        num_upsample: nearest-×2 + conv stages. Default: 2 for scale ≤ 4 (BasicSR/Real-ESRGAN; smaller scales
            use pixel-unshuffle), log2(scale) above. Old-architecture community models with one stage for ×2
            have num_upsample=1.
    """

    arch_name = "RRDBNet"

    def __init__(
        self,
        *,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        scale: int = 4,
        num_upsample: int | None = None,
    ) -> None:
        super().__init__()
        log_scale = log2_int(scale, "RRDBNet scale")
        if num_upsample is None:
            num_upsample = max(2, log_scale)
        if num_upsample < log_scale:
            raise ValueError(f"num_upsample={num_upsample} cannot reach scale {scale}")
        self.num_in_ch, self.num_out_ch = num_in_ch, num_out_ch
        self.num_feat, self.num_block, self.num_grow_ch = num_feat, num_block, num_grow_ch
        self.scale, self.num_upsample = scale, num_upsample
        # Input height and width must be multiples of the unshuffle factor (the Upscaler pads to it).
        self.unshuffle_factor = 2 ** (num_upsample - log_scale)
        self.size_multiple = self.unshuffle_factor

        self.conv_first = conv3x3(num_in_ch * self.unshuffle_factor**2, num_feat)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = conv3x3(num_feat, num_feat)
        for j in range(1, num_upsample + 1):
            setattr(self, f"conv_up{j}", conv3x3(num_feat, num_feat))
        self.conv_hr = conv3x3(num_feat, num_feat)
        self.conv_last = conv3x3(num_feat, num_out_ch)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        # Paper (supp. §2) and the 2018 training code: Kaiming × 0.1 on the whole generator.
        scaled_kaiming_init(self, 0.1)

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "num_grow_ch": self.num_grow_ch,
            "scale": self.scale,
            "num_upsample": self.num_upsample,
        }

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_upsample(self.forward_features(x))

    # The split below lets inference run the tail (at output resolution, most of the memory) in row strips;
    # see esrgan.inference.runner.

    def forward_features(self, x: Tensor) -> Tensor:
        """The trunk: input → features at input resolution (divided by the unshuffle factor)."""
        if self.unshuffle_factor > 1:
            x = F.pixel_unshuffle(x, self.unshuffle_factor)
        fea = self.conv_first(x)
        body = self.body_in_slots(fea) if self._slots_pay_off(fea) else self.body(fea)
        return fea + self.conv_body(body)  # long skip, no scaling

    def body_in_slots(self, fea: Tensor) -> Tensor:
        """`self.body(fea)` through `RRDB.forward_slots` (inference only: no autograd, and the RRDB modules'
        hooks do not run). Returns channels_last (N, nf, H, W)."""
        first = self.num_feat // self.num_grow_ch  # slots holding the block's input
        a, b, c = (new_slots(fea, self.num_grow_ch, first + GROWTH_MAPS) for _ in range(3))
        a[:, :, :first].copy_(_as_slots(fea, self.num_grow_ch))
        for rrdb in self.body:
            rrdb.forward_slots(a, b, c)
        out = a[:, :, :first].transpose(1, 2).flatten(1, 2)
        return out.contiguous(memory_format=torch.channels_last)

    def _slots_pay_off(self, fea: Tensor) -> bool:
        """bf16 inference in channels_last on a CPU with native bf16 (where the conv3d run at full speed)."""
        return (
            _inference_layout(fea)
            and fea.dtype == torch.bfloat16
            and fea.device.type == "cpu"
            and self.num_feat % self.num_grow_ch == 0
            and cpu_native_bf16()
        )

    def forward_upsample(self, fea: Tensor) -> Tensor:
        """The tail: features → image, `upsample_factor`× larger."""
        for j in range(1, self.num_upsample + 1):
            up = getattr(self, f"conv_up{j}")
            if _inference_layout(fea):
                fea = upsample_conv_lrelu(up, fea)
            else:
                fea = self.lrelu(up(F.interpolate(fea, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(fea)))

    @property
    def upsample_factor(self) -> int:
        return 2**self.num_upsample

    @property
    def upsample_halo(self) -> int:
        """Feature rows the tail needs beyond an output strip: the receptive-field radius of its 3×3 convs,
        1 pixel at each resolution (conv_up{j} at 2^j, conv_hr and conv_last at the output's), in features."""
        radius = sum(2.0**-j for j in range(1, self.num_upsample + 1)) + 2.0 / self.upsample_factor
        return math.ceil(radius)


def upsample_conv_lrelu(conv: nn.Conv2d, fea: Tensor) -> Tensor:
    """lrelu(conv(nearest×2(fea))) for a 3×3 `conv` with padding 1, without the 4× larger upsampled map.

    Output pixel (2i+a, 2j+b) reads upsampled rows 2i+a-1 … 2i+a+1, which are only two feature rows: i-1, i, i
    for a = 0 and i, i, i+1 for a = 1 (likewise for columns). So each of the four output phases is a 2×2 conv
    on `fea` with the repeated taps' weights summed: 16 instead of 36 multiply-adds per feature pixel and
    channel pair (−2.3 % of RRDBNet ×4's work), the same result up to float rounding. The four phases run as
    one conv with 4× the output channels; each goes through LeakyReLU straight into its pixels of the output,
    so the interleaving costs no extra pass."""
    n, _, h, w = fea.shape
    c = conv.out_channels
    weight, bias = inference_weights(conv, "phases", fea.dtype, _phase_weights)
    # Padded by one feature pixel, phase (a, b)'s output for feature pixel (i, j) lands at (i + a, j + b).
    phases = F.conv2d(F.pad(fea, (1, 1, 1, 1)), weight, bias)
    channels_last = fea.is_contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((n, c, 2 * h, 2 * w), dtype=phases.dtype, device=phases.device, memory_format=layout)
    # Phase (a, b) of feature pixel (i, j), channel k, is phases[:, (2a + b)·c + k, i + a, j + b] and goes to
    # out[:, k, 2i + a, 2j + b]: both are strided views indexed (n, i, a, j, b, k), so one LeakyReLU call
    # interleaves the four phases (a third faster than one call per phase).
    sn, sc, sh, sw = phases.stride()
    src = phases.as_strided((n, h, 2, w, 2, c), (sn, sh, sh + 2 * c * sc, sw, sw + c * sc, sc))
    on, oc, oh, ow = out.stride()
    dst = out.as_strided((n, h, 2, w, 2, c), (on, 2 * oh, oh, 2 * ow, ow, oc))
    torch.ops.aten.leaky_relu.out(src, LRELU_SLOPE, out=dst)
    return out


def _phase_weights(weight: Tensor, bias: Tensor | None, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
    """A 3×3 conv's four 2×2 phase kernels in `dtype`, phase (a, b) as output channels [(2a + b)·c,
    (2a + b + 1)·c); the taps are summed before the cast."""
    kernels = []
    for a in (0, 1):
        rows = _merge_repeated_taps(weight, a, dim=2)
        kernels += [_merge_repeated_taps(rows, b, dim=3) for b in (0, 1)]
    merged = torch.cat(kernels).to(dtype).contiguous(memory_format=torch.channels_last)
    return merged, None if bias is None else bias.repeat(4).to(dtype)


def _merge_repeated_taps(weight: Tensor, phase: int, dim: int) -> Tensor:
    """Along `dim` of a 3-tap kernel: taps (0, 1 + 2) for output phase 0, (0 + 1, 2) for phase 1."""
    t0, t1, t2 = weight.unbind(dim)
    return torch.stack((t0, t1 + t2) if phase == 0 else (t0 + t1, t2), dim)


def _inference_layout(fea: Tensor) -> bool:
    """Whether to take the inference shortcuts: no autograd, and channels_last features, the layout the
    inference runner uses, outside `as_written`. Plain NCHW calls (the original code's layout) compute the
    network as written."""
    return (
        not torch.is_grad_enabled()
        and fea.is_contiguous(memory_format=torch.channels_last)
        and rewrites_allowed()
    )


def basicsr_init(model: RRDBNet) -> RRDBNet:
    """BasicSR v1.x initialisation (SPEC §1.6): Kaiming × 0.1 inside the dense blocks only; conv_first,
    conv_body, the up-sampling convs, conv_hr and conv_last keep PyTorch's default initialisation."""
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d) and name != "body":
            module.reset_parameters()
    return model


def _from_config(settings: Mapping[str, Any]) -> RRDBNet:
    """Training's RRDBNet: ``init`` "paper" keeps the constructor's initialisation, "basicsr" applies
    `basicsr_init`."""
    names = (*COMMON_CONFIG_FIELDS, "num_grow_ch")
    model = RRDBNet(**{name: settings[name] for name in names})
    return basicsr_init(model) if settings["init"] == "basicsr" else model


# ---- weight files: key layouts and hyperparameters (esrgan.archs.spec) ------------------------------------
#
# basicsr  `conv_first`, `body.{i}.rdb{k}.conv{m}`, `conv_body`, `conv_up{j}`, `conv_hr`, `conv_last`
#          (BasicSR ≥ 1.0, Real-ESRGAN, and files this toolkit writes)
# esrgan   `conv_first`, `RRDB_trunk.{i}.RDB{k}.conv{m}`, `trunk_conv`, `upconv{j}`, `HRconv`, `conv_last`
#          (ESRGAN repo `RRDBNet_arch.py`, the released RRDB_ESRGAN_x4.pth; BasicSR 2019)
# old      `model.0`, `model.1.sub.{i}.RDB{k}.conv{m}.0`, `model.1.sub.{nb}`, `model.{3j}`, `model.{3n+2}`,
#          `model.{3n+4}` (the 2018 release, "old-arch" files)

_PARAMS = ("weight", "bias")


def _identify(keys: set[str]) -> str | None:
    if "body.0.rdb1.conv1.weight" in keys and "conv_first.weight" in keys:
        return "basicsr"
    if "RRDB_trunk.0.RDB1.conv1.weight" in keys:
        return "esrgan"
    if "model.1.sub.0.RDB1.conv1.0.weight" in keys:
        return "old"
    return None


def _module_names(num_block: int, num_upsample: int) -> Iterator[str]:
    """Our module names, in order."""
    yield "conv_first"
    for i in range(num_block):
        for k in (1, 2, 3):
            for m in range(1, 6):
                yield f"body.{i}.rdb{k}.conv{m}"
    yield "conv_body"
    for j in range(1, num_upsample + 1):
        yield f"conv_up{j}"
    yield "conv_hr"
    yield "conv_last"


def _rename(name: str, layout: str, num_block: int, num_upsample: int) -> str:
    """Our module name → the same module in `layout` (without the .weight/.bias suffix)."""
    if layout == "basicsr":
        return name
    rdb = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", name)
    up = re.fullmatch(r"conv_up(\d+)", name)
    if layout == "esrgan":
        if rdb:
            return f"RRDB_trunk.{rdb[1]}.RDB{rdb[2]}.conv{rdb[3]}"
        if up:
            return f"upconv{up[1]}"
        return {"conv_body": "trunk_conv", "conv_hr": "HRconv"}.get(name, name)
    # old: one flattened nn.Sequential called `model`
    if rdb:
        return f"model.1.sub.{rdb[1]}.RDB{rdb[2]}.conv{rdb[3]}.0"
    if up:
        return f"model.{3 * int(up[1])}"
    n = num_upsample
    return {
        "conv_first": "model.0",
        "conv_body": f"model.1.sub.{num_block}",
        "conv_hr": f"model.{3 * n + 2}",
        "conv_last": f"model.{3 * n + 4}",
    }[name]


def _structure(keys: set[str], layout: str) -> tuple[int, int]:
    """(num_block, num_upsample) read from the key names of a file in `layout`."""
    if layout == "basicsr":
        return module_count(keys, "body."), module_count(keys, "conv_up")
    if layout == "esrgan":
        return module_count(keys, "RRDB_trunk."), module_count(keys, "upconv")
    subs = module_count(keys, "model.1.sub.")
    top = max(int(m[1]) for k in keys if (m := re.match(r"model\.(\d+)\.", k)))
    # Sequence length 3n + 5: conv, shortcut, n × (upsample, conv, lrelu), conv, lrelu, conv.
    return subs - 1, (top + 1 - 5) // 3


def _to_ours(sd: StateDict, layout: str) -> dict[str, Tensor]:
    if layout == "basicsr":
        return dict(sd)
    num_block, num_upsample = _structure(set(sd), layout)
    theirs_to_ours = {
        f"{_rename(n, layout, num_block, num_upsample)}.{p}": f"{n}.{p}"
        for n in _module_names(num_block, num_upsample)
        for p in _PARAMS
    }
    unexpected = sorted(set(sd) - set(theirs_to_ours))
    missing = sorted(set(theirs_to_ours) - set(sd))
    if unexpected or missing:
        raise ValueError(f"unexpected keys {unexpected[:4]}, missing keys {missing[:4]}")
    return {theirs_to_ours[k]: v for k, v in sd.items()}


def _from_ours(sd: StateDict, layout: str) -> dict[str, Tensor]:
    num_block, num_upsample = _structure(set(sd), "basicsr")
    out = {}
    for key, value in sd.items():
        module, _, param = key.rpartition(".")
        out[f"{_rename(module, layout, num_block, num_upsample)}.{param}"] = value
    return out


def _hparams(sd: StateDict) -> dict[str, Any]:
    num_feat, in_total = sd["conv_first.weight"].shape[:2]
    num_out_ch = sd["conv_last.weight"].shape[0]
    num_upsample = module_count(sd, "conv_up")
    # Pixel-unshuffle models (Real-ESRGAN ×2/×1) see 4 or 16 × the image channels (SPEC §2.2).
    factor = 1
    for f in (4, 2):
        if in_total == num_out_ch * f * f and num_upsample >= int(math.log2(f)):
            factor = f
            break
    return {
        "num_in_ch": in_total // (factor * factor),
        "num_out_ch": num_out_ch,
        "num_feat": num_feat,
        "num_block": module_count(sd, "body."),
        # Growth channels from the first dense conv, not hard-coded 32 (SPEC §2.2, spandrel's shortcut).
        "num_grow_ch": sd["body.0.rdb1.conv1.weight"].shape[0],
        "scale": 2**num_upsample // factor,
        "num_upsample": num_upsample,
    }


GENERATOR_SPECS = (
    GeneratorSpec(
        name="RRDBNet",
        model=RRDBNet,
        layouts=("basicsr", "esrgan", "old"),
        identify=_identify,
        hparams=_hparams,
        to_ours=_to_ours,
        from_ours=_from_ours,
        config_fields=("num_grow_ch", "init"),
        build=_from_config,
    ),
)
