"""Perceptual (VGG feature) loss: ESRGAN's conv5_4-before-ReLU L1 and SRGAN's VGG54 (SPEC §5.2, §5.3).

    loss = weight · Σ_l w_l · criterion(s·φ_l(sr), s·φ_l(gt))
         + style_weight · Σ_l w_l · criterion(G(s·φ_l(sr)), G(s·φ_l(gt)))

φ_l are features of a frozen feature network (ImageNet VGG19, or a seeded random one), s the feature scale
(SRGAN rescales VGG feature maps by 1/12.75 so the loss matches the pixel-MSE range), criterion the mean L1
or mean squared error over all feature elements. GT features are computed from `gt.detach()` without a
graph, so gradients flow only through the SR branch; the feature network never receives gradients and
stays in eval mode. G(φ) = φ φᵀ / (c·h·w) is the Gram matrix of a c×h×w feature map
(BasicSR's style loss; texture statistics in the sense of Gatys et al. 2015), computed in float32 outside
autocast.

ESRGAN:      layer_weights {"conv5_4": 1.0}, criterion "l1",  weight 1.0, feature_scale 1
SRGAN VGG54: layer_weights {"relu5_4": 1.0}, criterion "mse", weight 1.0, feature_scale 1/12.75
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from esrgan.archs.vgg import VGG19FeatureExtractor
from esrgan.config import PerceptualLossConfig
from esrgan.errors import ConfigError
from esrgan.losses.pixel import l1_loss, mse_loss

__all__ = ["PerceptualLoss", "SRGAN_FEATURE_SCALE", "build_perceptual_loss", "gram_matrix", "random_vgg19"]

SRGAN_FEATURE_SCALE = 1.0 / 12.75  # SRGAN (P2 §2.2): VGG feature maps rescaled by 1/12.75

_CRITERIA = {"l1": l1_loss, "mse": mse_loss}


class PerceptualLoss(nn.Module):
    """Feature-space loss between SR and GT images (NCHW float RGB in [0, 1]).

    Args:
        extractor: module mapping an image batch to a dict {layer name: feature tensor} that contains every
            layer in `layer_weights` (e.g. `esrgan.archs.vgg.VGG19FeatureExtractor`, which also applies the
            ImageNet input normalisation). It is frozen (requires_grad False) and kept in eval mode.
        layer_weights: {layer name: weight}, e.g. {"conv5_4": 1.0}.
        criterion: "l1" or "mse", mean over all feature elements.
        weight: overall loss weight.
        feature_scale: both feature maps are multiplied by this before the criterion.
        style_weight: weight of the Gram-matrix (texture) term on the same layers; 0 turns it off.
    """

    def __init__(
        self,
        extractor: nn.Module,
        layer_weights: Mapping[str, float],
        criterion: str = "l1",
        weight: float = 1.0,
        feature_scale: float = 1.0,
        style_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if not layer_weights:
            raise ValueError("layer_weights must name at least one layer")
        if criterion not in _CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; expected one of {sorted(_CRITERIA)}")
        self.extractor = extractor.requires_grad_(False).eval()
        self.layer_weights = dict(layer_weights)
        self.criterion = criterion
        self.weight = float(weight)
        self.feature_scale = float(feature_scale)
        self.style_weight = float(style_weight)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.extractor.eval()  # a frozen feature network; never switch it to train mode
        return self

    def forward(self, sr: Tensor, gt: Tensor) -> Tensor:
        sr_features = self.extractor(sr)
        with torch.no_grad():
            gt_features = self.extractor(gt.detach())
        criterion = _CRITERIA[self.criterion]
        content = sr.new_zeros(())
        style = sr.new_zeros(())
        for layer, layer_weight in self.layer_weights.items():
            sr_f, gt_f = sr_features[layer], gt_features[layer]
            if self.feature_scale != 1.0:
                sr_f, gt_f = sr_f * self.feature_scale, gt_f * self.feature_scale
            if self.weight != 0:
                content = content + layer_weight * criterion(sr_f, gt_f)
            if self.style_weight != 0:
                style = style + layer_weight * criterion(gram_matrix(sr_f), gram_matrix(gt_f))
        return self.weight * content + self.style_weight * style

    def extra_repr(self) -> str:
        return (
            f"layer_weights={self.layer_weights}, criterion={self.criterion!r}, weight={self.weight}, "
            f"feature_scale={self.feature_scale}, style_weight={self.style_weight}"
        )


def gram_matrix(features: Tensor) -> Tensor:
    """Per-sample Gram matrices (n, c, c) of NCHW `features`, normalised by c·h·w, in float32.

    Autocast is turned off here: a bf16 matmul over h·w terms loses the small differences the loss measures.
    """

    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(n, c, h * w)
        return flat @ flat.transpose(1, 2) / (c * h * w)


def build_perceptual_loss(cfg: PerceptualLossConfig) -> PerceptualLoss:
    """Perceptual loss from `cfg`: an ImageNet VGG19 (the file `cfg.vgg_weights` is required) or, with
    ``vgg_init="random"``, a VGG19 with seeded Kaiming-normal weights (`random_vgg19`)."""

    layers = cfg.weighted_layers
    if cfg.vgg_init == "random":
        extractor = random_vgg19(list(layers), cfg.vgg_seed)
    else:
        if cfg.vgg_weights is None:
            raise ConfigError(
                "loss.perceptual.vgg_weights is not set: the perceptual loss needs torchvision's ImageNet "
                "VGG19 weights (vgg19-dcbb9e9d.pth); set loss.perceptual.vgg_weights=PATH, or "
                "loss.perceptual.weight=0 to train without it"
            )
        extractor = VGG19FeatureExtractor(layers=list(layers), weights=cfg.vgg_weights)
    return PerceptualLoss(
        extractor,
        layers,
        criterion=cfg.criterion,
        weight=cfg.weight,
        feature_scale=cfg.feature_scale,
        style_weight=cfg.style_weight,
    )


def random_vgg19(layers: list[str], seed: int = 0) -> nn.Module:
    """A frozen VGG19 feature extractor with Kaiming-normal weights (fan-in, ReLU gain) and zero biases.

    The same `seed` gives the same network on every machine (the weights are drawn on the CPU from their own
    generator). Kaiming scaling keeps the feature magnitudes of all depths alike, so deep and shallow layers
    weigh in comparably. Random deep features still measure local texture statistics, without ImageNet.
    """

    extractor = VGG19FeatureExtractor(layers=layers, weights=None)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in extractor.features:
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                std = (2.0 / fan_in) ** 0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                module.bias.zero_()
    return extractor.requires_grad_(False).eval()
