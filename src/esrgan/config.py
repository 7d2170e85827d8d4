"""Typed experiment configuration: frozen dataclasses, YAML (de)serialisation, dotted overrides.

One frozen dataclass per component; a function receives the sub-config it needs (the data pipeline gets a
`DataConfig`, the learning-rate schedule a `ScheduleConfig`, ...), never the whole tree. YAML is only the
serialisation format:

    cfg = load_config("configs/esrgan_x4.yaml", ["optim.lr_g=1e-4", "data.gt_size=192"])
    cfg = apply_overrides(cfg, ["schedule.milestones=[50000,100000]", "train.pretrained=none"])
    save_config(cfg, "runs/esrgan_x4/config.yaml")

Keys missing from a YAML file keep their defaults. Every value is type-checked against the field's annotation
(int, float, bool, str, tuple/list, Optional, Literal); an unknown key at any level raises `ConfigError`
listing the valid keys. Cross-field rules live in each dataclass's `__post_init__`, so an invalid config
cannot be constructed.

The defaults are the ESRGAN GAN stage as recommended in SPEC §15 (BasicSR v1.x recipe: RRDBNet 23×64,
VGGStyleDiscriminator-128, 1e-2·L1 + 1.0·L1(VGG19 conv5_4 before ReLU) + 5e-3·RaGAN, Adam 1e-4 β=(0.9, 0.99),
MultiStep [50k, 100k, 200k, 300k]×0.5, 400k iterations, batch 16, GT 128, EMA 0.999). The PSNR stage
(`train.stage=psnr`) uses only the pixel loss; set its weight to 1.0 and `optim.lr_g=2e-4` for ESRGAN's
RRDB_PSNR recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from esrgan._fs import atomic_write_text
from esrgan.archs import GENERATOR_SPECS
from esrgan.archs.spec import COMMON_CONFIG_FIELDS
from esrgan.errors import ConfigError

__all__ = [
    "ModelConfig",
    "DiscriminatorConfig",
    "PixelLossConfig",
    "PerceptualLossConfig",
    "GanLossConfig",
    "LossConfig",
    "OptimConfig",
    "ScheduleConfig",
    "DataConfig",
    "TrainConfig",
    "ExperimentConfig",
    "VGG19_LAYERS",
    "load_config",
    "save_config",
    "apply_overrides",
    "config_to_dict",
    "config_from_dict",
]

# Layer names of torchvision's VGG19 `features` in index order (SPEC §5.2): convX_Y is the convolution output
# before its ReLU, reluX_Y the activation after it, poolX the max-pool closing block X.
_VGG19_BLOCK_DEPTHS = (2, 2, 4, 4, 4)
VGG19_LAYERS: tuple[str, ...] = tuple(
    name
    for block, depth in enumerate(_VGG19_BLOCK_DEPTHS, start=1)
    for name in (
        *(n for i in range(1, depth + 1) for n in (f"conv{block}_{i}", f"relu{block}_{i}")),
        f"pool{block}",
    )
)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# ---------------------------------------------------------------------------------------------------------
# Component configs
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """Generator architecture and its hyperparameters (BasicSR argument names).

    `arch` is any generator of `esrgan.archs.GENERATOR_SPECS`. Every architecture reads the channels, the
    width `num_feat`, the depth `num_block` and `scale`; its spec names the other settings it reads
    (`GeneratorSpec.config_fields`) and builds the model (`GeneratorSpec.from_config`). A setting the
    architecture does not read must keep its default, so a config never says something that is ignored.

    The ESRGAN paper's architecture ablations (P1 §4.3, Fig. 7) are axes of this config:
    residual blocks vs RRDB (`arch` "SRResNet" vs "RRDBNet"), batch norm vs none (`use_bn`, SRResNet only),
    deeper/wider networks (`num_block`, `num_feat`). The loss-side ablations (perceptual features before vs
    after activation, standard GAN vs RaGAN) are in `LossConfig`.
    """

    arch: str = "RRDBNet"  # a generator of esrgan.archs: RRDBNet, SRResNet, MSRResNet, SRVGGNetCompact
    scale: int = 4  # upscaling factor; must equal data.scale
    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64  # width
    num_block: int = 23  # depth: RRDBs, residual blocks or body convs, as the architecture counts it
    num_grow_ch: int = 32  # growth channels of RRDBNet's dense blocks
    use_bn: bool = False  # SRResNet: True = SRGAN paper (BN in the blocks), False = ESRGAN's "remove BN"
    # RRDBNet: "paper" = Kaiming x 0.1 on every conv (paper, 2018 code); "basicsr" = x 0.1 only inside the
    # dense blocks, PyTorch default elsewhere (BasicSR v1.x, SPEC §1.6): learns faster on short runs.
    init: Literal["paper", "basicsr"] = "paper"

    def __post_init__(self) -> None:
        for name in ("scale", "num_in_ch", "num_out_ch", "num_feat", "num_block", "num_grow_ch"):
            _check(getattr(self, name) >= 1, f"model.{name} must be >= 1, got {getattr(self, name)}")
        spec = GENERATOR_SPECS.get(self.arch)
        _check(
            spec is not None,
            f"model.arch {self.arch!r} is not a generator architecture; valid: {', '.join(GENERATOR_SPECS)}",
        )
        assert spec is not None
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in ("arch", *COMMON_CONFIG_FIELDS, *spec.config_fields) or value == field.default:
                continue
            readers = [name for name, other in GENERATOR_SPECS.items() if field.name in other.config_fields]
            shown = str(value).lower() if isinstance(value, bool) else value
            raise ConfigError(
                f"model.{field.name}={shown} is only available for arch {' or '.join(readers)}; "
                f"{self.arch} does not read it (leave model.{field.name} out)"
            )

    @property
    def settings(self) -> dict[str, Any]:
        """The settings an architecture's spec builds from (`GeneratorSpec.from_config`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "arch"}


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator for the GAN stage."""

    # VGGStyleDiscriminator: BasicSR/ESRGAN's (SPEC §4.2); SRGANDiscriminator: the SRGAN paper's (SPEC §4.1);
    # UNetDiscriminatorSN: Real-ESRGAN's U-Net with spectral norm, a logit per pixel, any input size.
    arch: Literal["VGGStyleDiscriminator", "SRGANDiscriminator", "UNetDiscriminatorSN"] = (
        "VGGStyleDiscriminator"
    )
    num_in_ch: int = 3
    num_feat: int = 64
    # VGG-style and SRGAN discriminators only accept GT patches of exactly this size (data.gt_size)
    input_size: int = 128

    def __post_init__(self) -> None:
        for name in ("num_in_ch", "num_feat", "input_size"):
            _check(getattr(self, name) >= 1, f"discriminator.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class PixelLossConfig:
    """Pixel loss `weight · criterion(sr, gt)` (SPEC §5.1); weight 0 disables it."""

    criterion: Literal["l1", "mse"] = "l1"
    weight: float = 1e-2  # ESRGAN GAN stage η = 1e-2; PSNR stage 1.0


@dataclass(frozen=True)
class PerceptualLossConfig:
    """VGG19 feature loss (SPEC §5.2, §5.3); weight 0 disables it (and no VGG is built).

    ESRGAN: layer conv5_4 (before ReLU), criterion l1, weight 1, feature_scale 1.
    SRGAN "VGG54": layer relu5_4 (after ReLU), criterion mse, feature_scale 1/12.75 (= 0.0784313725...).
    """

    layer: str = "conv5_4"  # one of VGG19_LAYERS, e.g. conv5_4 (before activation) or relu5_4 (after)
    # Several layers instead (Real-ESRGAN: conv1_2 … conv5_4 with weights 0.1 0.1 1 1 1): `layers` with one
    # weight each in `layer_weights`; when `layers` is set, `layer` is ignored.
    layers: tuple[str, ...] = ()
    layer_weights: tuple[float, ...] = ()
    criterion: Literal["l1", "mse"] = "l1"
    weight: float = 1.0
    feature_scale: float = 1.0  # both feature maps are multiplied by this before the criterion
    vgg_weights: str | None = None  # path to torchvision's ImageNet VGG19 weights (vgg19-dcbb9e9d.pth)
    # imagenet: the pretrained VGG19 (vgg_weights); random: a VGG19 with seeded Kaiming-normal weights, for
    # machines without the ImageNet file (a texture statistic, not the paper's perceptual loss).
    vgg_init: Literal["imagenet", "random"] = "imagenet"
    vgg_seed: int = 0
    # Texture (style) loss on the same layers, as BasicSR's style_weight: the criterion between the features'
    # Gram matrices (Gatys et al. 2015; EnhanceNet's texture loss). Gram statistics of random networks
    # describe natural textures (Ustyuzhaninov et al., ICLR 2017), so it works with vgg_init=random too.
    style_weight: float = 0.0

    def __post_init__(self) -> None:
        for layer in (self.layer, *self.layers):
            _check(
                layer in VGG19_LAYERS,
                f"loss.perceptual layer {layer!r} is not a VGG19 layer; "
                f"valid layers: {', '.join(VGG19_LAYERS)}",
            )
        _check(
            len(self.layers) == len(self.layer_weights),
            f"loss.perceptual.layer_weights needs one weight per layer in loss.perceptual.layers "
            f"({len(self.layers)} layers, {len(self.layer_weights)} weights)",
        )
        _check(self.feature_scale > 0, f"loss.perceptual.feature_scale must be > 0, got {self.feature_scale}")
        _check(self.style_weight >= 0, f"loss.perceptual.style_weight must be >= 0, got {self.style_weight}")

    @property
    def active(self) -> bool:
        """Whether a feature network is needed: the feature (content) or the Gram (style) term is on."""
        return self.weight != 0 or self.style_weight != 0

    @property
    def weighted_layers(self) -> dict[str, float]:
        """``{layer: weight}``: `layers` with `layer_weights`, or `layer` with weight 1."""
        return dict(zip(self.layers, self.layer_weights, strict=True)) if self.layers else {self.layer: 1.0}


@dataclass(frozen=True)
class GanLossConfig:
    """Adversarial loss (SPEC §5.5, §5.6). `weight` scales the generator's loss only, not D's losses."""

    type: Literal["ragan", "vanilla"] = "ragan"  # relativistic average GAN (ESRGAN) or standard BCE (SRGAN)
    weight: float = 5e-3  # ESRGAN λ in code units (RaGAN terms ½-averaged; = 2.5e-3 in paper units)
    # Discriminator gradient pattern for RaGAN: "basicsr" = BasicSR v1.x (each half detaches the other set's
    # mean), "paper2018" = the 2018 code behind the paper (one graph, gradients through both means).
    ragan_variant: Literal["basicsr", "paper2018"] = "basicsr"


@dataclass(frozen=True)
class FeatureMatchingLossConfig:
    """Discriminator feature matching (Salimans et al. 2016; pix2pixHD): ``weight · mean_l criterion(D_l(sr),
    D_l(gt))`` over the discriminator's intermediate feature maps; weight 0 disables it."""

    criterion: Literal["l1", "mse"] = "l1"
    weight: float = 0.0


@dataclass(frozen=True)
class ArtifactLossConfig:
    """LDL, the locally discriminative artifact loss (Liang et al., CVPR 2022, "Details or Artifacts"):
    ``weight · L1(M·sr, M·gt)`` with M the artifact map from the residuals of G and of its EMA copy (needs
    train.ema_decay > 0); weight 0 disables it."""

    weight: float = 0.0
    kernel_size: int = 7  # window of the local residual variance

    def __post_init__(self) -> None:
        _check(
            self.kernel_size >= 3 and self.kernel_size % 2 == 1,
            f"loss.artifact.kernel_size must be an odd number >= 3, got {self.kernel_size}",
        )


@dataclass(frozen=True)
class LossConfig:
    """Generator loss = pixel + perceptual + gan (+ feature matching + artifact), each term `weight · ...`."""

    pixel: PixelLossConfig = PixelLossConfig()
    perceptual: PerceptualLossConfig = PerceptualLossConfig()
    gan: GanLossConfig = GanLossConfig()
    feature_matching: FeatureMatchingLossConfig = FeatureMatchingLossConfig()
    artifact: ArtifactLossConfig = ArtifactLossConfig()


@dataclass(frozen=True)
class OptimConfig:
    """Adam for the generator and the discriminator."""

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)  # BasicSR v1.x; the paper and the 2018 code used (0.9, 0.999)
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check(self.lr_g > 0, f"optim.lr_g must be > 0, got {self.lr_g}")
        _check(self.lr_d > 0, f"optim.lr_d must be > 0, got {self.lr_d}")
        _check(all(0.0 <= b < 1.0 for b in self.betas), f"optim.betas must lie in [0, 1), got {self.betas}")
        _check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule, shared by G and D (see `esrgan.train.schedules.learning_rate`).

    multistep: lr × gamma at every milestone (ESRGAN GAN stage [50k, 100k, 200k, 300k] × 0.5).
    cosine_restart: BasicSR's CosineAnnealingRestartLR (v1.x PSNR stage: periods 4 × 250k, weights 1,
    eta_min 1e-7).
    Fields of the other kind are ignored.
    """

    kind: Literal["multistep", "cosine_restart"] = "multistep"
    milestones: tuple[int, ...] = (50_000, 100_000, 200_000, 300_000)
    gamma: float = 0.5
    periods: tuple[int, ...] = (250_000, 250_000, 250_000, 250_000)
    restart_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    eta_min: float = 1e-7

    def __post_init__(self) -> None:
        _check(
            all(m >= 1 for m in self.milestones)
            and all(a < b for a, b in zip(self.milestones, self.milestones[1:], strict=False)),
            f"schedule.milestones must be positive and strictly increasing, got {list(self.milestones)}",
        )
        _check(self.gamma > 0, f"schedule.gamma must be > 0, got {self.gamma}")
        _check(self.eta_min >= 0, f"schedule.eta_min must be >= 0, got {self.eta_min}")
        if self.kind == "cosine_restart":
            _check(
                len(self.periods) >= 1 and all(p >= 1 for p in self.periods),
                f"schedule.periods must be one or more positive lengths, got {list(self.periods)}",
            )
            _check(
                len(self.restart_weights) == len(self.periods),
                f"schedule.restart_weights needs one weight per period: {len(self.periods)} periods, "
                f"{len(self.restart_weights)} weights",
            )


@dataclass(frozen=True)
class DataConfig:
    """Training and validation data (paired LR/HR folders, or HR only with LR made by MATLAB bicubic)."""

    hr_dirs: tuple[str, ...] = ()  # folders of HR (ground-truth) training images
    lr_dirs: tuple[str, ...] | None = None  # matching LR folders; None = downscale HR on the fly
    val_hr_dirs: tuple[str, ...] = ()
    val_lr_dirs: tuple[str, ...] | None = None
    scale: int = 4  # must equal model.scale
    gt_size: int = 128  # HR training patch size; LR patch = gt_size / scale
    batch_size: int = 16  # per process (BasicSR batch_size_per_gpu)
    num_workers: int = 4
    # decoded training images kept in memory, per process (each loader worker has its own): for small
    # datasets, where PNG decoding is most of the data time. 0 = decode every time.
    cache_mb: int = 0
    use_hflip: bool = True  # horizontal flip with p = 0.5
    use_rot: bool = True  # vertical flip and transpose, each p = 0.5 (with use_hflip: the 8 dihedral maps)

    def __post_init__(self) -> None:
        _check(self.scale >= 1, f"data.scale must be >= 1, got {self.scale}")
        _check(
            self.gt_size >= self.scale and self.gt_size % self.scale == 0,
            f"data.gt_size ({self.gt_size}) must be a positive multiple of data.scale ({self.scale})",
        )
        _check(self.batch_size >= 1, f"data.batch_size must be >= 1, got {self.batch_size}")
        _check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _check(self.cache_mb >= 0, f"data.cache_mb must be >= 0, got {self.cache_mb}")
        for hr, lr, name in ((self.hr_dirs, self.lr_dirs, ""), (self.val_hr_dirs, self.val_lr_dirs, "val_")):
            _check(
                lr is None or len(lr) == len(hr),
                f"data.{name}lr_dirs must list one folder per data.{name}hr_dirs folder "
                f"({len(hr)} HR, {len(lr or ())} LR)",
            )


@dataclass(frozen=True)
class TrainConfig:
    """Training length, stage and cadence. Iteration counts are optimizer updates of the generator."""

    stage: Literal["psnr", "gan"] = "gan"  # psnr: pixel loss only; gan: pixel + perceptual + adversarial
    total_iters: int = 400_000
    pretrained: str | None = None  # generator weights to start from (the PSNR model for the GAN stage)
    ema_decay: float = 0.999  # 0 disables the EMA generator
    val_every: int = 5_000
    checkpoint_every: int = 5_000
    keep_last: int = 3  # number of most recent checkpoints kept on disk
    log_every: int = 100
    seed: int = 0
    device: str = "auto"  # auto (CUDA if available, else CPU), cpu, cuda, cuda:1; torchrun: cuda:LOCAL_RANK
    # auto: bf16 on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16), else fp32 (esrgan.precision).
    # bf16/fp16 run the forward passes under autocast; fp16 (CUDA only) adds a GradScaler.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = True  # NHWC activations: faster convolutions on CPU (oneDNN) and CUDA tensor cores
    # torch.use_deterministic_algorithms + no cuDNN autotuning: bit-exact resume on CUDA (slower). CPU runs
    # are bit-exactly resumable without it.
    deterministic: bool = False
    val_samples: int = 4  # validation images saved as PNG per validation (the first N of the set)

    def __post_init__(self) -> None:
        _check(self.total_iters >= 1, f"train.total_iters must be >= 1, got {self.total_iters}")
        _check(0.0 <= self.ema_decay < 1.0, f"train.ema_decay must lie in [0, 1), got {self.ema_decay}")
        for name in ("val_every", "checkpoint_every", "keep_last", "log_every"):
            _check(getattr(self, name) >= 1, f"train.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.val_samples >= 0, f"train.val_samples must be >= 0, got {self.val_samples}")
        _check(bool(self.device.strip()), "train.device must not be empty (auto, cpu, cuda, cuda:1, ...)")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs; serialised next to its checkpoints."""

    name: str = "esrgan_x4"
    model: ModelConfig = ModelConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    def __post_init__(self) -> None:
        _check(bool(self.name.strip()), "name must not be empty")
        _check(
            self.model.scale == self.data.scale,
            f"model.scale ({self.model.scale}) and data.scale ({self.data.scale}) must be equal; set both",
        )
        if self.train.stage == "gan" and self.discriminator.arch != "UNetDiscriminatorSN":
            _check(
                self.data.gt_size == self.discriminator.input_size,
                f"data.gt_size ({self.data.gt_size}) must equal discriminator.input_size "
                f"({self.discriminator.input_size}) in the GAN stage (D accepts only that size)",
            )
        if self.train.stage == "gan" and self.loss.artifact.weight != 0:
            _check(
                self.train.ema_decay > 0,
                "loss.artifact (LDL) compares G with its EMA copy; set train.ema_decay > 0 (e.g. 0.999)",
            )
        if self.schedule.kind == "cosine_restart":
            _check(
                sum(self.schedule.periods) >= self.train.total_iters,
                f"schedule.periods sum to {sum(self.schedule.periods)}, fewer than train.total_iters "
                f"({self.train.total_iters}); the cosine-restart schedule is undefined past its last period",
            )


# ---------------------------------------------------------------------------------------------------------
# Dict <-> dataclass with type checking
# ---------------------------------------------------------------------------------------------------------

C = TypeVar("C")

_NONE_WORDS = {"none", "null", "~", ""}
_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


def _field_types(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _leaf_paths(cls: type, prefix: str = "") -> list[str]:
    paths = []
    for name, tp in _field_types(cls).items():
        if dataclasses.is_dataclass(tp):
            paths.extend(_leaf_paths(tp, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _unknown_key(key: object, section: str, cls: type) -> ConfigError:
    valid = list(_field_types(cls))
    where = f"in section {section!r}" if section else "at the top level"
    message = f"unknown config key {str(key)!r} {where}; valid keys: {', '.join(valid)}"
    # Suggest the same key in another section (train.lr_g → optim.lr_g), else near spellings.
    leaves = _leaf_paths(ExperimentConfig)
    hints = [p for p in leaves if p.rsplit(".", 1)[-1] == str(key)]
    if not hints:
        prefix = f"{section}." if section else ""
        hints = [prefix + m for m in difflib.get_close_matches(str(key), valid, n=2)]
    if not hints:
        by_leaf = {p.rsplit(".", 1)[-1]: p for p in leaves}
        hints = [by_leaf[m] for m in difflib.get_close_matches(str(key), list(by_leaf), n=2)]
    if hints:
        message += f" (did you mean {' or '.join(hints)}?)"
    return ConfigError(message)


def _type_name(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} values ({', '.join(_type_name(a) for a in args)})"
        element = args[0] if args else Any
        return f"a list (items: {_type_name(element)})"
    names = {int: "an integer", float: "a number", bool: "a boolean (true/false)", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _split_list(text: str) -> list[str]:
    """Parse `[a, b]`, `(a, b)` or `a,b` from the command line into its items ('' or '[]' → empty)."""
    body = text.strip()
    if len(body) >= 2 and body[0] + body[-1] in ("[]", "()"):
        body = body[1:-1]
    items = [item.strip() for item in body.split(",")]
    if items and items[-1] == "":
        items.pop()  # allow a trailing comma: "1," is a one-element list
    return [i[1:-1] if len(i) >= 2 and i[0] == i[-1] and i[0] in "'\"" else i for i in items]


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`, converting command-line strings; raise ConfigError."""
    origin, args = get_origin(tp), get_args(tp)

    def fail() -> ConfigError:
        return ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")

    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        says_none = isinstance(value, str) and value.strip().lower() in _NONE_WORDS
        if type(None) in args and (value is None or says_none):
            return None
        if len(options) != 1:
            raise TypeError(f"unsupported config annotation {tp!r}")
        try:
            return _coerce(value, options[0], where)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (or none)") from None
    if origin is Literal:
        for choice in args:
            if value == choice and type(value) is type(choice):
                return choice
            if isinstance(value, str) and value.strip() == str(choice):
                return choice
        raise fail()
    if origin in (tuple, list):
        if isinstance(value, str):
            items: list[Any] = _split_list(value)
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise fail()
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(items)} ({value!r})")
            out = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(items, args, strict=True))]
        else:
            element = args[0] if args else Any
            out = [_coerce(v, element, f"{where}[{i}]") for i, v in enumerate(items)]
        return tuple(out) if origin is tuple else out
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if value is None:  # an empty YAML section ("loss:" with nothing under it)
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: expected a section with keys {', '.join(_field_types(tp))}, got {value!r}"
            )
        return _from_dict(tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
            return value.strip().lower() in _TRUE_WORDS
        raise fail()
    if tp is int:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        number: float | None = None
        if isinstance(value, float):
            number = value
        elif isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    number = float(value.strip())  # accept "4e5" for 400000
                except ValueError:
                    raise fail() from None
        if number is not None and math.isfinite(number) and number.is_integer():
            return int(number)
        raise fail()
    if tp is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            # Also catches YAML's "1e-4", which PyYAML (YAML 1.1) reads as a string, not a float.
            try:
                number = float(value.strip())
            except ValueError:
                raise fail() from None
        else:
            raise fail()
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r} (quote it in YAML)")
    raise TypeError(f"unsupported config annotation {tp!r} at {where}")


def _from_dict(cls: type[C], data: Mapping[str, Any], section: str) -> C:
    types_ = _field_types(cls)
    for key in data:
        if key not in types_:
            raise _unknown_key(key, section, cls)
    prefix = f"{section}." if section else ""
    kwargs = {key: _coerce(value, types_[key], prefix + key) for key, value in data.items()}
    return cls(**kwargs)


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build config dataclass `cls` from a nested mapping; missing keys keep their defaults."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping with keys {', '.join(_field_types(cls))}, got {data!r}")
    return _from_dict(cls, data, "")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (tuples as lists) of a config dataclass, ready for YAML/JSON."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a config dataclass instance, got {type(cfg).__name__}")
    return _plain(dataclasses.asdict(cfg))


# ---------------------------------------------------------------------------------------------------------
# Overrides, load, save
# ---------------------------------------------------------------------------------------------------------


def _apply_override(data: dict[str, Any], cls: type, text: str) -> None:
    """Set one `dotted.key=value` in the nested dict `data` (structured like `cls`), type-checked."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value (for example optim.lr_g=1e-4)")
    parts = key.split(".")
    node: dict[str, Any] = data
    for depth, part in enumerate(parts):
        section = ".".join(parts[:depth])
        types_ = _field_types(cls)
        if part not in types_:
            raise _unknown_key(part, section, cls)
        tp = types_[part]
        path = ".".join(parts[: depth + 1])
        if depth < len(parts) - 1:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"override {text!r}: {path} is a value, not a section")
            if node.get(part) is None:
                node[part] = {}
            child = node[part]
            if not isinstance(child, dict):
                keys = ", ".join(_field_types(tp))
                raise ConfigError(f"{path}: expected a section with keys {keys}, got {child!r}")
            node, cls = child, tp
        else:
            if dataclasses.is_dataclass(tp):
                keys = ", ".join(f"{path}.{k}" for k in _field_types(tp))
                raise ConfigError(f"override {text!r}: {path} is a section; set one of its keys: {keys}")
            try:
                node[part] = _coerce(raw.strip(), tp, path)
            except ConfigError as exc:
                raise ConfigError(f"override {text!r}: {exc}") from None


def apply_overrides(cfg: C, overrides: Sequence[str]) -> C:
    """Return a copy of `cfg` with `dotted.key=value` overrides applied (all at once, then validated).

    Values are parsed for the field's type: `1e-4`, `true`/`false`, `none` for optional fields, lists as
    `[a,b]` or `a,b`. Raises ConfigError for unknown keys (listing the valid ones) and ill-typed values.
    """
    if isinstance(overrides, str):
        raise TypeError("overrides must be a list of 'key=value' strings, not one string")
    data = dataclasses.asdict(cfg)  # type: ignore[call-overload]
    for text in overrides:
        _apply_override(data, type(cfg), text)
    return _from_dict(type(cfg), data, "")


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read an `ExperimentConfig` from YAML and apply `overrides`; missing keys keep their defaults."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping with keys {', '.join(_field_types(ExperimentConfig))} "
            f"at the top level, got {type(data).__name__}"
        )
    try:
        for text_ in overrides:
            _apply_override(data, ExperimentConfig, text_)
        return _from_dict(ExperimentConfig, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_config(cfg: Any, path: str | os.PathLike[str]) -> Path:
    """Write `cfg` as YAML (every key, so the file documents the run); `load_config` reads it back equal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None, allow_unicode=True)
    return atomic_write_text(path, text, overwrite=True)
