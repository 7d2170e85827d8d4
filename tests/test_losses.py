"""Losses against hand-computed values (SPEC §14) and independent autograd of the paper's formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrgan.config import GanLossConfig, PerceptualLossConfig, PixelLossConfig
from esrgan.errors import ConfigError
from esrgan.losses import (
    SRGAN_FEATURE_SCALE,
    PerceptualLoss,
    build_perceptual_loss,
    discriminator_gan_losses,
    generator_gan_loss,
    l1_loss,
    mse_loss,
    pixel_loss,
    relativistic_discriminator_losses,
    relativistic_generator_loss,
    standard_discriminator_losses,
    standard_generator_loss,
)

LN2 = math.log(2.0)


def softplus(x: float) -> float:
    return math.log(1.0 + math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- pixel


def test_pixel_losses_hand_values() -> None:
    pred = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    gt = torch.tensor([[[[1.0, 1.0], [0.0, 0.5]]]])
    # |d| = 1, 0, 2, 2.5 ; d² = 1, 0, 4, 6.25
    assert l1_loss(pred, gt).item() == pytest.approx(5.5 / 4)
    assert mse_loss(pred, gt).item() == pytest.approx(11.25 / 4)
    assert pixel_loss(pred, gt, PixelLossConfig(criterion="l1", weight=1e-2)).item() == pytest.approx(
        5.5e-2 / 4
    )
    assert pixel_loss(pred, gt, PixelLossConfig(criterion="mse", weight=2.0)).item() == pytest.approx(
        11.25 / 2
    )


def test_pixel_loss_element_weights_average_over_weighted_region() -> None:
    pred = torch.zeros(1, 3, 1, 2)
    gt = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]]])
    one_channel = torch.tensor([[[[1.0, 0.0]]]])  # keeps the left pixel of all 3 channels
    assert l1_loss(pred, gt, one_channel).item() == pytest.approx((1 + 3 + 5) / 3)
    per_channel = torch.zeros(1, 3, 1, 2)
    per_channel[0, 1, 0, 1] = 2.0  # only channel 1, right pixel (|d| = 4), weight 2
    assert mse_loss(pred, gt, per_channel).item() == pytest.approx(2 * 16 / 2)
    with pytest.raises(ValueError):
        l1_loss(pred, gt, torch.ones(1, 2, 1, 2))


# --- GAN values


@pytest.mark.parametrize("variant", ["basicsr", "paper2018"])
def test_all_zero_logits_give_ln2_terms(variant: str) -> None:
    """SPEC §14: every BCE term is ln 2, so L_adv = λ·ln 2 and L_Dr = L_Df = ½·ln 2."""
    real, fake = torch.zeros(4, 1), torch.zeros(4, 1)
    assert relativistic_generator_loss(real, fake).item() == pytest.approx(LN2)
    cfg = GanLossConfig(type="ragan", weight=5e-3, ragan_variant=variant)  # type: ignore[arg-type]
    assert generator_gan_loss(real, fake, cfg).item() == pytest.approx(5e-3 * LN2)
    loss_real, loss_fake = relativistic_discriminator_losses(real, fake, variant=variant)
    assert loss_real.item() == pytest.approx(0.5 * LN2)
    assert loss_fake.item() == pytest.approx(0.5 * LN2)
    d_real, d_fake = discriminator_gan_losses(real, fake, cfg)
    assert (d_real.item(), d_fake.item()) == pytest.approx((0.5 * LN2, 0.5 * LN2))
    # Standard GAN: no ½ factor.
    assert standard_generator_loss(fake).item() == pytest.approx(LN2)
    assert [t.item() for t in standard_discriminator_losses(real, fake)] == pytest.approx([LN2, LN2])
    vanilla = GanLossConfig(type="vanilla", weight=1e-3)
    assert generator_gan_loss(real, fake, vanilla).item() == pytest.approx(1e-3 * LN2)


def test_relativistic_losses_hand_set_logits() -> None:
    r_vals, f_vals = [1.5, -0.5, 2.0], [-1.0, 0.5, -0.2]
    mean_r, mean_f = sum(r_vals) / 3, sum(f_vals) / 3
    real, fake = torch.tensor(r_vals).view(3, 1), torch.tensor(f_vals).view(3, 1)

    # −log σ(z) = softplus(−z);  −log(1 − σ(z)) = softplus(z)
    g_real_term = sum(softplus(r - mean_f) for r in r_vals) / 3  # BCE(r − mean f, 0)
    g_fake_term = sum(softplus(-(f - mean_r)) for f in f_vals) / 3  # BCE(f − mean r, 1)
    expected_g = 0.5 * (g_real_term + g_fake_term)
    assert relativistic_generator_loss(real, fake).item() == pytest.approx(expected_g, rel=1e-6)

    expected_d_real = 0.5 * sum(softplus(-(r - mean_f)) for r in r_vals) / 3  # ½ BCE(r − mean f, 1)
    expected_d_fake = 0.5 * sum(softplus(f - mean_r) for f in f_vals) / 3  # ½ BCE(f − mean r, 0)
    for variant in ("basicsr", "paper2018"):
        loss_real, loss_fake = relativistic_discriminator_losses(real, fake, variant=variant)
        assert loss_real.item() == pytest.approx(expected_d_real, rel=1e-6)
        assert loss_fake.item() == pytest.approx(expected_d_fake, rel=1e-6)

    g_std = sum(softplus(-f) for f in f_vals) / 3
    assert standard_generator_loss(fake).item() == pytest.approx(g_std, rel=1e-6)
    d_std_real, d_std_fake = standard_discriminator_losses(real, fake)
    assert d_std_real.item() == pytest.approx(sum(softplus(-r) for r in r_vals) / 3, rel=1e-6)
    assert d_std_fake.item() == pytest.approx(sum(softplus(f) for f in f_vals) / 3, rel=1e-6)


def test_unknown_ragan_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="variant"):
        relativistic_discriminator_losses(torch.zeros(2), torch.zeros(2), variant="v2")


# --- GAN gradients


def _paper_d_loss(r: torch.Tensor, f: torch.Tensor, detach_means: bool) -> torch.Tensor:
    """½ × ESRGAN Eq.(1), written directly with sigmoid/log."""
    mean_f, mean_r = f.mean(), r.mean()
    if detach_means:
        mean_f, mean_r = mean_f.detach(), mean_r.detach()
    return 0.5 * (
        -torch.log(torch.sigmoid(r - mean_f)).mean() - torch.log(1 - torch.sigmoid(f - mean_r)).mean()
    )


def _paper_g_loss(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """½ × ESRGAN Eq.(2), written directly with sigmoid/log."""
    return 0.5 * (
        -torch.log(1 - torch.sigmoid(r - f.mean())).mean() - torch.log(torch.sigmoid(f - r.mean())).mean()
    )


def _logits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = (torch.randn(5, 1, generator=g, dtype=torch.float64) + 0.7).requires_grad_()
    fake = (torch.randn(5, 1, generator=g, dtype=torch.float64) - 0.4).requires_grad_()
    return real, fake


def test_relativistic_generator_gradient_matches_paper_eq2() -> None:
    real, fake = _logits(1)
    ours = relativistic_generator_loss(real, fake)
    (grad_f,) = torch.autograd.grad(ours, fake, retain_graph=True)
    # Real logits are constants for the generator: no gradient reaches them.
    assert torch.autograd.grad(ours, real, allow_unused=True)[0] is None
    reference = _paper_g_loss(real.detach(), fake)
    (ref_grad_f,) = torch.autograd.grad(reference, fake)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-12)
    torch.testing.assert_close(grad_f, ref_grad_f, rtol=1e-12, atol=1e-14)
    # The first ("real") term's mean(f) contributes: dropping it would change the gradient.
    without_mean_term = torch.autograd.grad(
        -torch.log(torch.sigmoid(fake - real.detach().mean())).mean() / 2, fake
    )
    assert (grad_f - without_mean_term[0]).abs().max() > 1e-3


def test_relativistic_discriminator_gradients_paper2018_are_the_full_eq1_gradients() -> None:
    real, fake = _logits(2)
    loss_real, loss_fake = relativistic_discriminator_losses(real, fake, variant="paper2018")
    grads = torch.autograd.grad(loss_real + loss_fake, (real, fake))
    reference = _paper_d_loss(real, fake, detach_means=False)
    ref_grads = torch.autograd.grad(reference, (real, fake))
    assert (loss_real + loss_fake).item() == pytest.approx(reference.item(), rel=1e-12)
    for ours, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)


def test_relativistic_discriminator_gradients_basicsr_drop_exactly_the_mean_terms() -> None:
    real, fake = _logits(3)
    loss_real, loss_fake = relativistic_discriminator_losses(real, fake, variant="basicsr")
    grad_r, grad_f = torch.autograd.grad(loss_real + loss_fake, (real, fake), retain_graph=True)

    # v1.x: each half is a function of its own set only (two backward passes in BasicSR).
    assert torch.autograd.grad(loss_real, fake, retain_graph=True, allow_unused=True)[0] is None
    assert torch.autograd.grad(loss_fake, real, retain_graph=True, allow_unused=True)[0] is None

    # Equals the paper formula with both batch means treated as constants.
    ref_r, ref_f = torch.autograd.grad(_paper_d_loss(real, fake, detach_means=True), (real, fake))
    torch.testing.assert_close(grad_r, ref_r, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad_f, ref_f, rtol=1e-12, atol=1e-14)

    # The full (2018) gradient minus the v1.x gradient is exactly the ∂mean terms, derived by hand:
    #   ∂/∂r_i of −½·mean_j log(1 − σ(f_j − mean r)) via mean r  = −½·mean_j σ(f_j − mean r) / N
    #   ∂/∂f_j of −½·mean_i log σ(r_i − mean f) via mean f        = +½·mean_i (1 − σ(r_i − mean f)) / N
    full_r, full_f = torch.autograd.grad(_paper_d_loss(real, fake, detach_means=False), (real, fake))
    r, f, n = real.detach(), fake.detach(), real.numel()
    delta_r = -0.5 * torch.sigmoid(f - r.mean()).mean() / n
    delta_f = 0.5 * (1 - torch.sigmoid(r - f.mean())).mean() / n
    torch.testing.assert_close(full_r - grad_r, delta_r.expand_as(grad_r), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(full_f - grad_f, delta_f.expand_as(grad_f), rtol=1e-10, atol=1e-14)
    assert abs(delta_r.item()) > 1e-3 and abs(delta_f.item()) > 1e-3  # the variants really differ


# --- perceptual


class _TinyExtractor(nn.Module):
    """A stand-in feature network: {'conv': conv(x), 'relu': relu(conv(x))}."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.conv(x)
        return {"conv": y, "relu": F.relu(y)}


def test_perceptual_loss_gradients_flow_only_into_sr() -> None:
    torch.manual_seed(0)
    loss_fn = PerceptualLoss(_TinyExtractor(), {"conv": 1.0})
    sr = torch.rand(2, 3, 8, 8, requires_grad=True)
    gt = torch.rand(2, 3, 8, 8, requires_grad=True)
    loss_fn(sr, gt).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert gt.grad is None
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.parameters())
    loss_fn.train()
    assert not loss_fn.extractor.training  # the frozen feature network stays in eval mode


def test_perceptual_loss_weights_scale_and_criteria_by_hand() -> None:
    torch.manual_seed(0)
    extractor = _TinyExtractor()
    sr, gt = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        a, b = extractor(sr), extractor(gt)
    expected = 0.5 * (2.0 * (a["conv"] - b["conv"]).abs().mean() + 3.0 * (a["relu"] - b["relu"]).abs().mean())
    ours = PerceptualLoss(extractor, {"conv": 2.0, "relu": 3.0}, criterion="l1", weight=0.5)(sr, gt)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-6)
    # SRGAN: MSE on features scaled by 1/12.75, i.e. the plain MSE divided by 12.75².
    srgan = PerceptualLoss(extractor, {"relu": 1.0}, criterion="mse", feature_scale=SRGAN_FEATURE_SCALE)(
        sr, gt
    )
    plain = ((a["relu"] - b["relu"]) ** 2).mean()
    assert srgan.item() == pytest.approx(plain.item() / 12.75**2, rel=1e-6)


def test_build_perceptual_loss_requires_vgg_weights() -> None:
    with pytest.raises(ConfigError, match="vgg_weights"):
        build_perceptual_loss(PerceptualLossConfig(vgg_weights=None))
