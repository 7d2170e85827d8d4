"""Architectures against SPEC §1, §3, §4 and §5.2: parameter counts, shapes, init, and a functional reference.

The references below are written from the SPEC's formulas with `F.conv2d` and the model's own state dict, not
from `esrgan.archs`; pixel (un)shuffle is spelled out by index so that the channel ordering is checked too.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from esrgan.archs import (
    ARCHITECTURES,
    DISCRIMINATORS,
    GENERATORS,
    MSRResNet,
    RRDBNet,
    SRGANDiscriminator,
    SRResNet,
    VGG19FeatureExtractor,
    VGGStyleDiscriminator,
)
from esrgan.archs.blocks import count_parameters
from esrgan.archs.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, VGG19_URL
from esrgan.errors import EsrganError, WeightsError

NF, GC = 8, 4


def randomize_(model: nn.Module, seed: int = 0, gain: float = 0.6) -> nn.Module:
    """Replace every parameter with random values large enough that every term of the network matters
    (the ×0.1 init would make the residual branches nearly invisible in an equivalence test)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * gain * math.sqrt(2.0 / fan_in))
            elif name.endswith(".weight") and "act" in name:  # PReLU slopes
                p.copy_(torch.rand(p.shape, generator=g) * 0.5)
            elif name.endswith(".weight") and "bn" in name:  # BN scales around 1
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.2)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return model


# --------------------------------------------------------------------------------------------------
# parameter counts (SPEC §1.5, §3, §4)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: RRDBNet(), 16_697_987),
        (lambda: RRDBNet(scale=2), 16_703_171),
        (lambda: RRDBNet(scale=1), 16_723_907),
        (lambda: RRDBNet(num_block=6), 4_467_779),
        (lambda: SRResNet(), 1_550_659),
        (lambda: MSRResNet(), 1_517_571),
        (lambda: VGGStyleDiscriminator(), 14_499_401),
        (lambda: SRGANDiscriminator(), 23_565_505),
    ],
    ids=["rrdb_x4", "rrdb_x2", "rrdb_x1", "rrdb_6B", "srresnet", "msrresnet_x4", "vgg_d128", "srgan_d96"],
)
def test_parameter_counts(make, expected: int) -> None:
    assert count_parameters(make()) == expected


def test_rrdb_block_parameter_counts() -> None:
    from esrgan.archs.rrdbnet import RRDB, ResidualDenseBlock

    assert count_parameters(ResidualDenseBlock(64, 32)) == 239_808
    assert count_parameters(RRDB(64, 32)) == 719_424


def test_srresnet_without_bn_drops_exactly_the_bn_parameters() -> None:
    # 16 blocks × 2 BN + 1 post-body BN, each 2·64 learnable values.
    assert count_parameters(SRResNet()) - count_parameters(SRResNet(use_bn=False)) == 33 * 2 * 64


# --------------------------------------------------------------------------------------------------
# output shapes


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
@pytest.mark.parametrize("channels", [3, 1])
def test_rrdbnet_output_shape(scale: int, channels: int) -> None:
    model = RRDBNet(
        num_in_ch=channels, num_out_ch=channels, num_feat=NF, num_grow_ch=GC, num_block=1, scale=scale
    )
    x = torch.rand(2, channels, 8, 12)
    with torch.no_grad():
        assert model(x).shape == (2, channels, 8 * scale, 12 * scale)
    # ×1/×2 use the ×4 body behind a pixel-unshuffle; ×8 stacks a third up-stage.
    assert model.num_upsample == max(2, int(math.log2(scale)))
    assert model.size_multiple == {1: 4, 2: 2, 4: 1, 8: 1}[scale]


@pytest.mark.parametrize(("scale", "num_upsample"), [(2, 1), (1, 0), (2, 3)])
def test_rrdbnet_explicit_upsample_stages(scale: int, num_upsample: int) -> None:
    model = RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=scale, num_upsample=num_upsample)
    assert model.conv_first.in_channels == 3 * 4 ** (num_upsample - int(math.log2(scale)))
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8 * scale, 8 * scale)


def test_rrdbnet_rejects_impossible_scales() -> None:
    with pytest.raises(ValueError, match="power of two"):
        RRDBNet(scale=3)
    with pytest.raises(ValueError, match="cannot reach"):
        RRDBNet(scale=8, num_upsample=2)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [3, 1])
def test_srresnet_output_shape(scale: int, channels: int) -> None:
    model = SRResNet(num_in_ch=channels, num_out_ch=channels, num_feat=NF, num_block=2, scale=scale).eval()
    with torch.no_grad():
        assert model(torch.rand(2, channels, 6, 10)).shape == (2, channels, 6 * scale, 10 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [3, 1])
def test_msrresnet_output_shape(scale: int, channels: int) -> None:
    model = MSRResNet(num_in_ch=channels, num_out_ch=channels, num_feat=NF, num_block=2, scale=scale)
    with torch.no_grad():
        assert model(torch.rand(2, channels, 6, 10)).shape == (2, channels, 6 * scale, 10 * scale)


def test_msrresnet_rejects_other_scales() -> None:
    with pytest.raises(ValueError):
        MSRResNet(scale=8)


def test_discriminators_output_one_logit_and_check_size() -> None:
    d = VGGStyleDiscriminator(num_feat=4)
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    with pytest.raises(ValueError, match="128"):
        d(torch.rand(2, 3, 96, 96))
    d256 = VGGStyleDiscriminator(num_feat=4, input_size=256)
    assert d256(torch.rand(2, 3, 256, 256)).shape == (2, 1)
    assert d256.linear1.in_features == d.linear1.in_features  # both end at 4×4
    s = SRGANDiscriminator(num_feat=4)
    assert s(torch.rand(2, 3, 96, 96)).shape == (2, 1)
    assert s.classifier[0].in_features == 4 * 8 * 6 * 6
    with pytest.raises(ValueError):
        s(torch.rand(2, 3, 128, 128))


def test_vgg_style_discriminator_layers_match_basicsr() -> None:
    d = VGGStyleDiscriminator()
    sd = d.state_dict()
    assert "conv0_0.bias" in sd and "bn0_0.weight" not in sd
    for s in range(1, 5):
        assert f"conv{s}_0.bias" not in sd and f"conv{s}_1.bias" not in sd  # bias-free before BN (v1.x)
    assert d.conv0_1.kernel_size == (4, 4) and d.conv0_1.stride == (2, 2)
    assert sd["linear1.weight"].shape == (100, 8192)
    assert sd["linear2.weight"].shape == (1, 100)


# --------------------------------------------------------------------------------------------------
# initialisation (SPEC §1.6)


def test_rrdbnet_init_is_scaled_kaiming_on_every_conv() -> None:
    torch.manual_seed(0)
    model = RRDBNet(num_block=1)  # real widths for good statistics
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 15 + 1 + 2 + 1 + 1
    for name, conv in convs:
        fan_in = conv.weight[0].numel()
        expected = 0.1 * math.sqrt(2.0 / fan_in)
        std = conv.weight.std().item()
        assert std == pytest.approx(expected, rel=0.15), name
        assert abs(conv.weight.mean().item()) < 0.2 * expected, name
        assert torch.count_nonzero(conv.bias) == 0, name


def test_msrresnet_init_is_scaled_kaiming() -> None:
    torch.manual_seed(0)
    model = MSRResNet(num_block=1)
    for name, conv in model.named_modules():
        if isinstance(conv, nn.Conv2d):
            expected = 0.1 * math.sqrt(2.0 / conv.weight[0].numel())
            assert conv.weight.std().item() == pytest.approx(expected, rel=0.15), name
            assert torch.count_nonzero(conv.bias) == 0, name


# --------------------------------------------------------------------------------------------------
# functional references


def pixel_unshuffle_by_index(x: Tensor, s: int) -> Tensor:
    """SPEC §1.7: output channel c·s² + dy·s + dx holds x[c, dy::s, dx::s]."""
    n, c, h, w = x.shape
    out = torch.empty(n, c * s * s, h // s, w // s)
    for ch in range(c):
        for dy in range(s):
            for dx in range(s):
                out[:, ch * s * s + dy * s + dx] = x[:, ch, dy::s, dx::s]
    return out


def pixel_shuffle_by_index(x: Tensor, r: int) -> Tensor:
    """SPEC §3.1: input channel c·r² + i·r + j → output pixel (c, y·r + i, x·r + j)."""
    n, cr2, h, w = x.shape
    c = cr2 // (r * r)
    out = torch.empty(n, c, h * r, w * r)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                out[:, ch, i::r, j::r] = x[:, ch * r * r + i * r + j]
    return out


def nearest_up2(x: Tensor) -> Tensor:
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def reference_rrdbnet(sd: dict[str, Tensor], x: Tensor, nb: int, n_up: int, unshuffle: int) -> Tensor:
    def conv(name: str, t: Tensor) -> Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu(t: Tensor) -> Tensor:
        return torch.where(t >= 0, t, 0.2 * t)

    def rdb(prefix: str, t: Tensor) -> Tensor:
        x1 = lrelu(conv(f"{prefix}.conv1", t))
        x2 = lrelu(conv(f"{prefix}.conv2", torch.cat([t, x1], 1)))
        x3 = lrelu(conv(f"{prefix}.conv3", torch.cat([t, x1, x2], 1)))
        x4 = lrelu(conv(f"{prefix}.conv4", torch.cat([t, x1, x2, x3], 1)))
        x5 = conv(f"{prefix}.conv5", torch.cat([t, x1, x2, x3, x4], 1))
        return t + 0.2 * x5

    if unshuffle > 1:
        x = pixel_unshuffle_by_index(x, unshuffle)
    fea = conv("conv_first", x)
    h = fea
    for i in range(nb):
        h = h + 0.2 * rdb(f"body.{i}.rdb3", rdb(f"body.{i}.rdb2", rdb(f"body.{i}.rdb1", h)))
    fea = fea + conv("conv_body", h)
    for j in range(1, n_up + 1):
        fea = lrelu(conv(f"conv_up{j}", nearest_up2(fea)))
    return conv("conv_last", lrelu(conv("conv_hr", fea)))


def test_pixel_unshuffle_reference_matches_torch() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    assert torch.equal(pixel_unshuffle_by_index(x, 2), F.pixel_unshuffle(x, 2))
    assert torch.equal(pixel_shuffle_by_index(F.pixel_unshuffle(x, 2), 2), x)


@pytest.mark.parametrize(
    ("scale", "num_upsample", "unshuffle"),
    [(4, None, 1), (2, None, 2), (1, None, 4), (8, None, 1), (2, 1, 1)],
    ids=["x4", "x2_unshuffle", "x1_unshuffle", "x8", "x2_one_stage"],
)
def test_rrdbnet_matches_functional_reference(scale: int, num_upsample: int | None, unshuffle: int) -> None:
    nb = 2
    model = RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=nb, scale=scale, num_upsample=num_upsample)
    randomize_(model, seed=scale).eval()
    x = torch.rand(1, 3, 8, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(x)
        ref = reference_rrdbnet(model.state_dict(), x, nb, model.num_upsample, unshuffle)
    assert ours.shape == ref.shape == (1, 3, 8 * scale, 12 * scale)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert ref.std() > 0.05  # the random model does something visible


@pytest.mark.parametrize(("nf", "gc"), [(NF, GC), (12, 4), (8, 8)], ids=["2_slots", "3_slots", "1_slot"])
def test_rrdbnet_slot_layout_matches_the_functional_reference(
    nf: int, gc: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot layout (conv3d over slots instead of torch.cat) computes the same network: in fp32, where only
    the summation order differs, it must agree with the reference to float rounding."""
    model = randomize_(RRDBNet(num_feat=nf, num_grow_ch=gc, num_block=2), seed=3).eval()
    model = model.to(memory_format=torch.channels_last)
    monkeypatch.setattr(RRDBNet, "_slots_pay_off", lambda self, fea: True)
    x = torch.rand(1, 3, 9, 13, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fea = model.conv_first(x.contiguous(memory_format=torch.channels_last))
        body = model.body_in_slots(fea)
        ours = model(x.contiguous(memory_format=torch.channels_last))
        ref = reference_rrdbnet(model.state_dict(), x, 2, model.num_upsample, 1)
    assert body.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(body, model.body(fea), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert ref.std() > 0.05


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prepacked_slot_convs_give_the_plain_conv3d_numbers(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dense-block convs with oneDNN-prepacked weights (where the build and CPU take them) compute exactly
    what F.conv3d computes with the plain weights, for any tile shape after the first."""
    import copy

    from esrgan.archs import rrdbnet
    from esrgan.archs.rrdbnet import ResidualDenseBlock
    from esrgan.precision import cpu_native_bf16

    block = randomize_(ResidualDenseBlock(NF, GC), seed=6).eval()
    plain_block = copy.deepcopy(block)  # its own convs: its own cache entries

    def run(rdb: ResidualDenseBlock, height: int, width: int) -> torch.Tensor:
        x = torch.randn(2, NF, height, width, generator=torch.Generator().manual_seed(height)).to(dtype)
        slots = rrdbnet.new_slots(x, GC, NF // GC + 4)
        slots[:, :, : NF // GC].copy_(rrdbnet._as_slots(x, GC))
        out = torch.empty_like(slots[:, :, : NF // GC])
        with torch.no_grad():
            return rdb.forward_slots(slots, out).clone()

    packed = [run(block, h, w) for h, w in ((9, 13), (4, 5), (16, 3))]
    monkeypatch.setattr(rrdbnet, "_conv_prepacked", None)
    plain = [run(plain_block, h, w) for h, w in ((9, 13), (4, 5), (16, 3))]
    for a, b in zip(packed, plain, strict=True):
        assert torch.equal(a, b)
    weight, _ = rrdbnet.inference_weights(block.conv1, f"slots of {GC}", dtype, lambda *_: (None, None))
    if rrdbnet._prepack_conv3d is not None and (dtype == torch.float32 or cpu_native_bf16()):
        assert weight.is_mkldnn  # the prepacked path ran


def test_rrdbnet_slot_layout_in_bf16_stays_close_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under bf16 autocast the slot layout is as close to the fp32 network as the concatenating path is."""
    model = randomize_(RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=2), seed=4).eval()
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        exact = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            monkeypatch.setattr(RRDBNet, "_slots_pay_off", lambda self, fea: False)
            concatenated = model(x).float()
            monkeypatch.setattr(RRDBNet, "_slots_pay_off", lambda self, fea: True)
            slotted = model(x).float()
    err_cat = (concatenated - exact).abs().max().item()
    err_slots = (slotted - exact).abs().max().item()
    assert 0 < err_slots < max(2 * err_cat, 0.02)


def test_rrdbnet_slot_layout_is_used_only_for_cpu_bf16_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training (autograd), fp32 (whose conv3d are slow), NCHW tensors, CPUs without native bf16 and widths
    that do not split into slots keep the concatenating path."""
    from esrgan.archs import rrdbnet

    model = RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1)
    bf16 = torch.zeros(1, NF, 4, 4, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(rrdbnet, "cpu_native_bf16", lambda: True)
    with torch.no_grad():
        assert model._slots_pay_off(bf16)
        assert not model._slots_pay_off(bf16.float())
        assert not model._slots_pay_off(bf16.contiguous())
        assert not RRDBNet(num_feat=12, num_grow_ch=8, num_block=1)._slots_pay_off(
            torch.zeros(1, 12, 4, 4, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
        )
    assert not model._slots_pay_off(bf16)  # grad enabled
    monkeypatch.setattr(rrdbnet, "cpu_native_bf16", lambda: False)
    with torch.no_grad():
        assert not model._slots_pay_off(bf16)


@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_conv_as_four_phase_convs_matches_nearest_then_conv(channels_last: bool) -> None:
    """The tail's nearest×2 + 3×3 conv + LeakyReLU computed as four 2×2 phase convs on the small map."""
    from esrgan.archs.rrdbnet import upsample_conv_lrelu

    conv = randomize_(nn.Conv2d(6, 5, 3, 1, 1), seed=7)
    x = torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(8))
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ours = upsample_conv_lrelu(conv, x)
        ref = F.conv2d(nearest_up2(x), conv.weight, conv.bias, padding=1)
        ref = torch.where(ref >= 0, ref, 0.2 * ref)
    assert ours.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert (ours[:, :, 0::2] - ours[:, :, 1::2]).abs().max() > 0.1  # the phases differ


def test_inference_weights_are_made_once_and_follow_weight_changes() -> None:
    """The tail's prepared phase kernels are reused while the weights stay the same, and remade after an
    in-place change (optimizer step), a `load_state_dict`, a new parameter and a `.to()`: a stale cache
    would give the old network's output."""
    from esrgan.archs.rrdbnet import inference_weights, upsample_conv_lrelu

    conv = randomize_(nn.Conv2d(6, 5, 3, 1, 1), seed=9).to(memory_format=torch.channels_last)
    x = torch.randn(1, 6, 4, 5, generator=torch.Generator().manual_seed(10))
    x = x.contiguous(memory_format=torch.channels_last)

    def reference() -> torch.Tensor:
        ref = F.conv2d(nearest_up2(x), conv.weight, conv.bias, padding=1)
        return torch.where(ref >= 0, ref, 0.2 * ref)

    calls: list[int] = []

    def make(
        weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        calls.append(1)
        return weight.to(dtype) * 2, bias

    with torch.no_grad():
        first = inference_weights(conv, "test", torch.float32, make)
        assert inference_weights(conv, "test", torch.float32, make)[0] is first[0] and len(calls) == 1
        torch.testing.assert_close(upsample_conv_lrelu(conv, x), reference(), rtol=1e-5, atol=1e-5)
        conv.weight.mul_(-1.5)  # what an optimizer step does
        torch.testing.assert_close(upsample_conv_lrelu(conv, x), reference(), rtol=1e-5, atol=1e-5)
        inference_weights(conv, "test", torch.float32, make)
        assert len(calls) == 2
        conv.load_state_dict(randomize_(nn.Conv2d(6, 5, 3, 1, 1), seed=11).state_dict())
        torch.testing.assert_close(upsample_conv_lrelu(conv, x), reference(), rtol=1e-5, atol=1e-5)
        conv.weight = nn.Parameter(torch.randn(5, 6, 3, 3, generator=torch.Generator().manual_seed(12)))
        torch.testing.assert_close(upsample_conv_lrelu(conv, x), reference(), rtol=1e-5, atol=1e-5)
        conv.to(torch.float64)
        x = x.double()
        torch.testing.assert_close(upsample_conv_lrelu(conv, x), reference(), rtol=1e-9, atol=1e-9)


def test_rrdbnet_unshuffle_channel_order_matters() -> None:
    """A reference with the (dx, dy) order swapped must disagree, so the equivalence above can fail."""
    model = randomize_(RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=2)).eval()
    x = torch.rand(1, 3, 8, 8)
    swapped = pixel_unshuffle_by_index(x.transpose(2, 3), 2).transpose(2, 3)  # channel c·4 + dx·2 + dy
    sd = model.state_dict()
    with torch.no_grad():
        ours = model(x)
        good = reference_rrdbnet(sd, pixel_unshuffle_by_index(x, 2), 1, 2, 1)
        bad = reference_rrdbnet(sd, swapped, 1, 2, 1)
    torch.testing.assert_close(ours, good, rtol=1e-5, atol=1e-5)
    assert (ours - bad).abs().max() > 1e-2


def reference_msrresnet(sd: dict[str, Tensor], x: Tensor, nb: int, scale: int) -> Tensor:
    def conv(name: str, t: Tensor) -> Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu01(t: Tensor) -> Tensor:
        return torch.where(t >= 0, t, 0.1 * t)

    f = lrelu01(conv("conv_first", x))
    for i in range(nb):
        f = f + 1.0 * conv(f"body.{i}.conv2", torch.clamp(conv(f"body.{i}.conv1", f), min=0))
    if scale == 4:
        f = lrelu01(pixel_shuffle_by_index(conv("upconv1", f), 2))
        f = lrelu01(pixel_shuffle_by_index(conv("upconv2", f), 2))
    else:
        f = lrelu01(pixel_shuffle_by_index(conv("upconv1", f), scale))
    out = conv("conv_last", lrelu01(conv("conv_hr", f)))
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_matches_functional_reference(scale: int) -> None:
    nb = 2
    model = randomize_(MSRResNet(num_feat=NF, num_block=nb, scale=scale), seed=scale).eval()
    x = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model(x)
        ref = reference_msrresnet(model.state_dict(), x, nb, scale)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    base = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    assert (ref - base).std() > 0.05


def reference_srresnet(sd: dict[str, Tensor], x: Tensor, nb: int, n_up: int, use_bn: bool) -> Tensor:
    def conv(name: str, t: Tensor, pad: int = 1) -> Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=pad)

    def bn(name: str, t: Tensor) -> Tensor:  # eval mode: running statistics
        if not use_bn:
            return t
        shape = (1, -1, 1, 1)
        mean, var = sd[f"{name}.running_mean"].view(shape), sd[f"{name}.running_var"].view(shape)
        w, b = sd[f"{name}.weight"].view(shape), sd[f"{name}.bias"].view(shape)
        return (t - mean) / torch.sqrt(var + 1e-5) * w + b

    def prelu(name: str, t: Tensor) -> Tensor:  # one slope per channel
        return torch.where(t >= 0, t, sd[f"{name}.weight"].view(1, -1, 1, 1) * t)

    f0 = prelu("act_first", conv("conv_first", x, pad=4))
    h = f0
    for i in range(nb):
        p = f"body.{i}"
        h = h + bn(f"{p}.bn2", conv(f"{p}.conv2", prelu(f"{p}.act", bn(f"{p}.bn1", conv(f"{p}.conv1", h)))))
    h = bn("bn_body", conv("conv_body", h)) + f0
    for j in range(n_up):
        h = prelu(f"upsample.{j}.act", pixel_shuffle_by_index(conv(f"upsample.{j}.conv", h), 2))
    return conv("conv_last", h, pad=4)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("use_bn", [True, False])
def test_srresnet_matches_functional_reference(scale: int, use_bn: bool) -> None:
    nb = 2
    model = randomize_(SRResNet(num_feat=NF, num_block=nb, scale=scale, use_bn=use_bn), seed=3).eval()
    x = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(x)
        ref = reference_srresnet(model.state_dict(), x, nb, int(math.log2(scale)), use_bn)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert ref.std() > 0.05


def test_srresnet_prelu_is_per_channel_with_lasagne_init() -> None:
    model = SRResNet(num_feat=NF, num_block=1)
    assert model.act_first.weight.shape == (NF,)
    assert torch.all(model.act_first.weight == 0.25)


# --------------------------------------------------------------------------------------------------
# registry round trip


@pytest.mark.parametrize(
    "model",
    [
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=2, scale=2),
        RRDBNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_grow_ch=6, num_block=1, scale=8),
        RRDBNet(num_feat=NF, num_grow_ch=GC, num_block=1, scale=2, num_upsample=1),
        SRResNet(num_feat=NF, num_block=2, scale=2, use_bn=False),
        SRResNet(num_in_ch=1, num_out_ch=1, num_feat=NF, num_block=1),
        MSRResNet(num_feat=NF, num_block=2, scale=3),
        VGGStyleDiscriminator(num_feat=4, input_size=256),
        SRGANDiscriminator(num_feat=4, input_size=64),
    ],
    ids=lambda m: type(m).__name__,
)
def test_registry_rebuilds_from_hparams(model: nn.Module) -> None:
    assert ARCHITECTURES[model.arch_name] is type(model)
    rebuilt = ARCHITECTURES[model.arch_name](**model.hparams)
    assert rebuilt.hparams == model.hparams
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_registry_partitions() -> None:
    assert set(GENERATORS) == {"RRDBNet", "SRResNet", "MSRResNet", "SRVGGNetCompact"}
    assert set(DISCRIMINATORS) == {"VGGStyleDiscriminator", "SRGANDiscriminator", "UNetDiscriminatorSN"}
    assert set(ARCHITECTURES) == set(GENERATORS) | set(DISCRIMINATORS)
    for name, cls in ARCHITECTURES.items():
        assert cls.arch_name == name


# --------------------------------------------------------------------------------------------------
# VGG19 feature extractor (SPEC §5.2)

_TORCHVISION_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"] + [512, 512, 512, 512, "M"] * 2


def _fake_torchvision_vgg19(seed: int = 0) -> dict[str, Tensor]:
    """A state dict shaped like torchvision's vgg19 (features.N conv layers + a classifier)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, Tensor] = {}
    idx, in_ch = 0, 3
    for v in _TORCHVISION_VGG19_CFG:
        if v == "M":
            idx += 1
            continue
        sd[f"features.{idx}.weight"] = torch.randn(v, in_ch, 3, 3, generator=g) * math.sqrt(2.0 / (in_ch * 9))
        sd[f"features.{idx}.bias"] = torch.randn(v, generator=g) * 0.1
        idx += 2
        in_ch = v
    # classifier shapes do not matter to the feature extractor; keep them small
    for i, (cout, cin) in {0: (16, 32), 3: (16, 16), 6: (10, 16)}.items():
        sd[f"classifier.{i}.weight"] = torch.randn(cout, cin, generator=g)
        sd[f"classifier.{i}.bias"] = torch.randn(cout, generator=g)
    return sd


def _reference_vgg(sd: dict[str, Tensor], x: Tensor, upto: int) -> Tensor:
    """torchvision VGG19 features[: upto + 1] with `sd`, on already normalised input."""
    idx = 0
    for v in _TORCHVISION_VGG19_CFG:
        if v == "M":
            x = F.max_pool2d(x, 2, 2)
            idx += 1
        else:
            x = F.conv2d(x, sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"], padding=1)
            if idx == upto:
                return x
            x = torch.clamp(x, min=0)
            idx += 2
            if idx - 1 == upto:
                return x
        if idx - 1 == upto:
            return x
    raise AssertionError("upto beyond the network")


@pytest.fixture(scope="module")
def fake_vgg19_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Tensor]]:
    sd = _fake_torchvision_vgg19()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(sd, path)
    return path, sd


def test_vgg19_layer_indices_match_torchvision() -> None:
    expected = {
        "conv1_1": 0,
        "relu1_1": 1,
        "conv1_2": 2,
        "pool1": 4,
        "conv2_1": 5,
        "relu2_2": 8,
        "pool2": 9,
        "conv3_1": 10,
        "conv3_4": 16,
        "pool3": 18,
        "conv4_1": 19,
        "conv4_4": 25,
        "pool4": 27,
        "conv5_1": 28,
        "conv5_4": 34,
        "relu5_4": 35,
        "pool5": 36,
    }
    for name, index in expected.items():
        assert VGG19_LAYERS[index] == name
    assert len(VGG19_LAYERS) == 37
    # the modules sit at the same indices as in torchvision's `features`
    model = VGG19FeatureExtractor(layers=("conv5_4",), weights=None)
    assert len(model.features) == 35
    conv_indices = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    assert conv_indices == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert isinstance(model.features[4], nn.MaxPool2d) and isinstance(model.features[33], nn.ReLU)
    assert all(not p.requires_grad for p in model.parameters()) and not model.training


def test_vgg19_unknown_layer_is_refused() -> None:
    with pytest.raises(ValueError, match="conv6_1"):
        VGG19FeatureExtractor(layers=("conv6_1",), weights=None)


def test_vgg19_loads_torchvision_file_and_matches_reference(fake_vgg19_file: tuple[Path, dict]) -> None:
    path, sd = fake_vgg19_file
    model = VGG19FeatureExtractor(layers=("conv5_4", "relu5_4", "relu2_2"), weights=path)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    out = model(x)
    normed = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(out["conv5_4"], _reference_vgg(sd, normed, 34), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["relu2_2"], _reference_vgg(sd, normed, 8), rtol=1e-4, atol=1e-4)
    # conv5_4 is the pre-activation of relu5_4 (the in-place ReLU pitfall of SPEC §5.2)
    assert (out["conv5_4"] < 0).any()
    torch.testing.assert_close(out["relu5_4"], torch.clamp(out["conv5_4"], min=0))
    assert out["conv5_4"].shape == (1, 512, 2, 2)


def test_vgg19_input_normalisation(fake_vgg19_file: tuple[Path, dict]) -> None:
    path, sd = fake_vgg19_file
    x = torch.rand(1, 3, 8, 8)
    w, b = sd["features.0.weight"], sd["features.0.bias"]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normed = VGG19FeatureExtractor(layers=("conv1_1",), weights=path)(x)["conv1_1"]
    torch.testing.assert_close(normed, F.conv2d((x - mean) / std, w, b, padding=1), rtol=1e-5, atol=1e-5)
    raw = VGG19FeatureExtractor(layers=("conv1_1",), weights=path, use_input_norm=False)(x)["conv1_1"]
    torch.testing.assert_close(raw, F.conv2d(x, w, b, padding=1), rtol=1e-5, atol=1e-5)


def test_vgg19_missing_weights_name_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsError) as exc:
        VGG19FeatureExtractor(weights=tmp_path / "nope.pth")
    assert VGG19_URL in str(exc.value) and "nope.pth" in str(exc.value)
    assert VGG19_URL == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as exc:
        VGG19FeatureExtractor()  # "imagenet": looks in the (empty) torch hub cache
    assert VGG19_URL in str(exc.value) and str(tmp_path / "hub") in str(exc.value)


def test_vgg19_found_in_torch_hub_cache(fake_vgg19_file: tuple[Path, dict], monkeypatch, tmp_path) -> None:
    path, sd = fake_vgg19_file
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth").write_bytes(path.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    model = VGG19FeatureExtractor(layers=("conv1_1",))
    torch.testing.assert_close(model.features[0].weight, sd["features.0.weight"])


def test_vgg19_bad_files_are_weights_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>not a model</html>")
    with pytest.raises(WeightsError, match="garbage.pth"):
        VGG19FeatureExtractor(weights=garbage)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv_first.weight": torch.zeros(1)}, wrong)
    with pytest.raises(EsrganError, match="wrong.pth"):
        VGG19FeatureExtractor(weights=wrong)


def test_vgg19_wrong_network_files_are_weights_errors(tmp_path: Path, fake_vgg19_file) -> None:
    _, sd = fake_vgg19_file
    four_channel = {**sd, "features.0.weight": torch.zeros(64, 4, 3, 3)}  # right names, wrong shapes
    torch.save(four_channel, tmp_path / "vgg19_rgba.pth")
    with pytest.raises(WeightsError, match="vgg19_rgba.pth"):
        VGG19FeatureExtractor(weights=tmp_path / "vgg19_rgba.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(WeightsError, match="tensor.pth"):
        VGG19FeatureExtractor(weights=tmp_path / "tensor.pth")


def test_basicsr_init_rescales_only_the_convs_outside_the_dense_blocks() -> None:
    from esrgan.archs.rrdbnet import basicsr_init

    torch.manual_seed(0)
    paper = RRDBNet(num_feat=32, num_block=1, num_grow_ch=16)
    body_before = {k: v.clone() for k, v in paper.body.state_dict().items()}
    fresh = basicsr_init(paper)
    # Dense blocks keep the Kaiming x 0.1 weights; outer convs get PyTorch's default (kaiming_uniform a=√5:
    # bound 1/sqrt(fan_in), std = bound/√3), about 2.4x the paper's 0.1·sqrt(2/fan_in).
    for k, v in fresh.body.state_dict().items():
        assert torch.equal(v, body_before[k])
    fan_in = 32 * 9
    expected_std = (1 / fan_in**0.5) / 3**0.5
    assert fresh.conv_up1.weight.std().item() == pytest.approx(expected_std, rel=0.1)
    assert fresh.conv_up1.bias.abs().max().item() > 0  # default init has non-zero biases
