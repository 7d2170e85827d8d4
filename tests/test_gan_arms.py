"""The GAN-stage options beyond the paper (issue 11's study arms): U-Net discriminator with spectral norm,
feature matching, LDL's artifact loss, a perceptual loss on a random VGG19, its Gram-matrix (style) term."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrgan.archs import RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from esrgan.config import (
    ArtifactLossConfig,
    FeatureMatchingLossConfig,
    GanLossConfig,
    LossConfig,
    PerceptualLossConfig,
    PixelLossConfig,
)
from esrgan.errors import ConfigError
from esrgan.losses import (
    PerceptualLoss,
    artifact_loss,
    artifact_map,
    build_perceptual_loss,
    feature_matching_loss,
    gram_matrix,
)
from esrgan.train import GeneratorLosses, gan_step, train
from esrgan.train.ema import ModelEMA
from esrgan.train.loop import build_generator_losses

ROOT = Path(__file__).resolve().parents[1]

# Real-ESRGAN's UNetDiscriminatorSN state-dict keys (RealESRGAN_x4plus_netD.pth): spectral norm on conv1-8.
REAL_ESRGAN_D_KEYS = (
    ["conv0.weight", "conv0.bias"]
    + [f"conv{i}.{k}" for i in range(1, 9) for k in ("weight_orig", "weight_u", "weight_v")]
    + ["conv9.weight", "conv9.bias"]
)


def test_unet_discriminator_layout_and_per_pixel_logits() -> None:
    d = UNetDiscriminatorSN()
    assert sorted(d.state_dict()) == sorted(REAL_ESRGAN_D_KEYS)
    assert d.state_dict()["conv3.weight_orig"].shape == (512, 256, 4, 4)
    assert d.state_dict()["conv4.weight_orig"].shape == (256, 512, 3, 3)
    small = UNetDiscriminatorSN(num_feat=8).eval()  # eval: no power iteration between the two calls
    x = torch.rand(2, 3, 48, 40)
    logits, features = small(x, return_features=True)
    assert logits.shape == (2, 1, 48, 40) and torch.equal(logits, small(x))
    assert [f.shape[1] for f in features] == [16, 32, 64, 32, 16, 8, 8]
    with pytest.raises(ValueError, match="multiples of 8"):
        small(torch.rand(1, 3, 20, 20))


def test_unet_discriminator_weights_are_spectrally_normalised() -> None:
    d = UNetDiscriminatorSN(num_feat=8).train()
    for _ in range(30):  # power iterations converge while the module runs in train mode
        d(torch.rand(1, 3, 16, 16))
    w = d.conv2.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_vgg_discriminator_features_do_not_change_its_logits() -> None:
    d = VGGStyleDiscriminator(num_feat=8).eval()
    x = torch.rand(2, 3, 128, 128)
    logits, features = d(x, return_features=True)
    assert torch.equal(logits, d(x)) and len(features) == 5 and features[-1].shape[-1] == 4


def test_feature_matching_is_the_mean_over_layers() -> None:
    fake = [torch.rand(2, 4, 8, 8, requires_grad=True), torch.rand(2, 8, 4, 4, requires_grad=True)]
    real = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]
    want = ((fake[0] - real[0]).abs().mean() + (fake[1] - real[1]).abs().mean()) / 2
    got = feature_matching_loss(fake, real, "l1")
    assert torch.allclose(got, want)
    got.backward()
    assert fake[0].grad is not None
    mse = feature_matching_loss(fake, real, "mse")
    assert torch.allclose(
        mse, ((fake[0] - real[0]).square().mean() + (fake[1] - real[1]).square().mean()) / 2
    )


def _reference_artifact_map(gt, sr, ema, k):
    """LDL's map as the paper's code writes it: unfold the k×k windows, variance over each."""
    r = (gt - sr).abs().sum(1, keepdim=True)
    r_ema = (gt - ema).abs().sum(1, keepdim=True)
    patch = torch.var(r, dim=(-1, -2, -3), keepdim=True) ** 0.2
    pad = (k - 1) // 2
    windows = F.pad(r, [pad] * 4, mode="reflect").unfold(2, k, 1).unfold(3, k, 1)
    local = torch.var(windows, dim=(-1, -2), unbiased=True)
    m = patch * local
    m[r < r_ema] = 0
    return m


def test_artifact_map_matches_the_unfolded_definition() -> None:
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 3, 20, 24, generator=g, dtype=torch.float64)
    sr = gt + 0.1 * torch.randn(gt.shape, generator=g, dtype=torch.float64)
    ema = gt + 0.1 * torch.randn(gt.shape, generator=g, dtype=torch.float64)
    for k in (3, 7):
        want = _reference_artifact_map(gt, sr, ema, k).float()
        got = artifact_map(gt, sr, ema, k)
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)
        assert (got == 0).any() and (got > 0).any()  # the EMA comparison masks part of the image
    sr_param = sr.clone().float().requires_grad_(True)
    loss = artifact_loss(gt.float(), sr_param, ema.float(), weight=2.0, kernel_size=7)
    m = _reference_artifact_map(gt, sr, ema, 7).float()
    assert torch.allclose(loss, 2.0 * (m * (sr.float() - gt.float())).abs().mean(), rtol=1e-4)
    loss.backward()
    assert sr_param.grad is not None and sr_param.grad.abs().sum() > 0


def test_random_vgg_perceptual_loss_is_seeded_and_balanced() -> None:
    layers = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")
    cfg = PerceptualLossConfig(
        layers=layers, layer_weights=(0.1, 0.1, 1, 1, 1), vgg_init="random", vgg_seed=3
    )
    a, b = build_perceptual_loss(cfg), build_perceptual_loss(cfg)
    other = build_perceptual_loss(
        PerceptualLossConfig(layers=layers, layer_weights=(1,) * 5, vgg_init="random")
    )
    for (_, pa), (_, pb) in zip(
        a.extractor.state_dict().items(), b.extractor.state_dict().items(), strict=True
    ):
        assert torch.equal(pa, pb)
    x = torch.rand(2, 3, 64, 64)
    feats = a.extractor(x)
    rms = [feats[name].square().mean().sqrt().item() for name in layers]
    assert max(rms) / min(rms) < 10  # Kaiming scaling: no layer vanishes or dominates
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    assert a(x, x).item() == 0 and a(y, x).item() > 0
    assert not torch.equal(a.extractor.features[0].weight, other.extractor.features[0].weight)
    with pytest.raises(ConfigError, match="one weight per layer"):
        PerceptualLossConfig(layers=layers, layer_weights=(1.0,))


class _Identity(nn.Module):
    """A feature "network" that hands the image itself to the loss: the Gram term can be checked by hand."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pixels": x}


def test_gram_matrix_matches_einsum_and_stays_float32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    f = torch.randn(2, 5, 7, 9)
    expected = torch.einsum("nchw,ndhw->ncd", f.double(), f.double()) / (5 * 7 * 9)
    torch.testing.assert_close(gram_matrix(f).double(), expected, rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(f.bfloat16())
    assert g.dtype == torch.float32
    rounded = f.bfloat16().double()
    torch.testing.assert_close(g.double(), torch.einsum("nchw,ndhw->ncd", rounded, rounded) / 315)


def test_style_loss_ignores_where_texture_is_but_not_what_it_is() -> None:
    """A Gram matrix is blind to where pixels are: a spatially shuffled image has the same texture statistics
    (style loss 0) but a different content loss; a changed texture changes the style loss."""

    torch.manual_seed(0)
    gt = torch.rand(1, 3, 16, 16)
    shuffled = gt.flatten(2)[..., torch.randperm(256)].reshape(1, 3, 16, 16)
    style = PerceptualLoss(_Identity(), {"pixels": 1.0}, weight=0.0, style_weight=2.0)
    content = PerceptualLoss(_Identity(), {"pixels": 1.0}, weight=1.0)
    assert style(shuffled, gt).item() == pytest.approx(0.0, abs=1e-7)
    assert content(shuffled, gt).item() > 0.1
    flat = torch.full_like(gt, gt.mean().item())
    expected = 2.0 * (gram_matrix(flat) - gram_matrix(gt)).abs().mean()
    assert style(flat, gt).item() == pytest.approx(expected.item(), rel=1e-6) and expected.item() > 1e-3
    both = PerceptualLoss(_Identity(), {"pixels": 1.0}, weight=1.0, style_weight=2.0)
    assert both(flat, gt).item() == pytest.approx(content(flat, gt).item() + expected.item(), rel=1e-6)


def test_style_weight_alone_builds_the_feature_network() -> None:
    cfg = LossConfig(
        perceptual=PerceptualLossConfig(
            layers=("conv1_2",), layer_weights=(1.0,), vgg_init="random", weight=0.0, style_weight=1.0
        )
    )
    losses = build_generator_losses(cfg)
    assert losses.perceptual is not None and losses.perceptual.style_weight == 1.0
    assert build_generator_losses(LossConfig(perceptual=PerceptualLossConfig(weight=0.0))).perceptual is None
    with pytest.raises(ConfigError, match="style_weight"):
        PerceptualLossConfig(style_weight=-1.0)


def test_gan_step_with_every_arm_trains_generator_and_discriminator() -> None:
    torch.manual_seed(0)
    G = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=4)
    D = UNetDiscriminatorSN(num_feat=8)
    ema = ModelEMA(G, 0.9)
    losses = GeneratorLosses(
        pixel=PixelLossConfig(weight=1.0),
        perceptual=build_perceptual_loss(
            PerceptualLossConfig(layers=("conv1_2", "conv2_2"), layer_weights=(1.0, 1.0), vgg_init="random")
        ),
        gan=GanLossConfig(type="ragan", weight=0.1),
        feature_matching=FeatureMatchingLossConfig(weight=1.0),
        artifact=ArtifactLossConfig(weight=1.0),
    )
    opt_g = torch.optim.Adam(G.parameters(), 1e-3)
    opt_d = torch.optim.Adam(D.parameters(), 1e-3)
    batch = {"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 32, 32)}
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    log = gan_step(batch, G, D, opt_g, opt_d, losses, ema=ema.module)
    for key in ("l_g_pix", "l_g_percep", "l_g_gan", "l_g_fm", "l_g_artifact", "l_d_real", "l_d_fake"):
        assert key in log and torch.isfinite(torch.tensor(log[key]))
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))
    with pytest.raises(ConfigError, match="EMA"):
        gan_step(batch, G, D, opt_g, opt_d, losses, ema=None)


def test_gan_training_with_the_study_arms_runs_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    psnr = train(
        ROOT / "configs" / "tiny_psnr.yaml",
        tmp_path / "psnr",
        overrides=["train.total_iters=2", "train.val_every=2", "train.checkpoint_every=2",
                   f"data.hr_dirs=[{shared_data / 'DIV2K-tiny-HR'}]", "data.val_hr_dirs=[]",
                   "data.num_workers=0", "train.device=cpu"],
    )  # fmt: skip
    result = train(
        ROOT / "configs" / "tiny_gan.yaml",
        tmp_path / "gan",
        overrides=[
            f"train.pretrained={psnr.model_path}", "train.total_iters=2", "train.val_every=2",
            "train.checkpoint_every=2", "train.ema_decay=0.99", "train.device=cpu",
            f"data.hr_dirs=[{shared_data / 'DIV2K-tiny-HR'}]", "data.val_hr_dirs=[]", "data.num_workers=0",
            "data.gt_size=64", "data.batch_size=2",
            "discriminator.arch=UNetDiscriminatorSN", "discriminator.num_feat=8",
            "loss.perceptual.vgg_init=random", "loss.perceptual.layers=[conv1_2,conv2_2]",
            "loss.perceptual.layer_weights=[0.1,1]", "loss.perceptual.weight=1",
            "loss.feature_matching.weight=1", "loss.artifact.weight=1",
        ],
    )  # fmt: skip
    assert result.model_path.is_file()
    rows = (tmp_path / "gan" / "metrics.jsonl").read_text()
    assert "l_g_fm" in rows and "l_g_artifact" in rows
