"""Experiment config: YAML round trip, type-checked dotted overrides, unknown keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from esrgan.config import (
    VGG19_LAYERS,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    save_config,
)
from esrgan.errors import ConfigError


def test_defaults_are_the_esrgan_gan_recipe() -> None:
    cfg = ExperimentConfig()
    assert (cfg.model.arch, cfg.model.num_feat, cfg.model.num_block, cfg.model.num_grow_ch) == (
        "RRDBNet",
        64,
        23,
        32,
    )
    assert (cfg.loss.pixel.criterion, cfg.loss.pixel.weight) == ("l1", 1e-2)
    assert (cfg.loss.perceptual.layer, cfg.loss.perceptual.criterion, cfg.loss.perceptual.weight) == (
        "conv5_4",
        "l1",
        1.0,
    )
    assert (cfg.loss.gan.type, cfg.loss.gan.weight, cfg.loss.gan.ragan_variant) == ("ragan", 5e-3, "basicsr")
    assert cfg.schedule.milestones == (50_000, 100_000, 200_000, 300_000) and cfg.train.total_iters == 400_000
    # VGG19 `features` indices (SPEC §5.2): conv5_4 = 34, relu5_4 = 35, conv1_1 = 0, relu2_2 = 8.
    assert VGG19_LAYERS.index("conv5_4") == 34 and VGG19_LAYERS.index("relu5_4") == 35
    assert VGG19_LAYERS.index("relu2_2") == 8 and len(VGG19_LAYERS) == 37


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "name=srgan_ablation",
            "model.arch=SRResNet",
            "model.num_block=16",
            "model.use_bn=true",
            "loss.perceptual.layer=relu5_4",
            "loss.perceptual.criterion=mse",
            f"loss.perceptual.feature_scale={1 / 12.75!r}",
            "loss.gan.type=vanilla",
            "loss.gan.ragan_variant=paper2018",
            "optim.betas=[0.9, 0.999]",
            "schedule.kind=cosine_restart",
            "schedule.eta_min=1e-7",
            "data.hr_dirs=[/data/DIV2K_HR, /data/Flickr2K_HR]",
            "data.lr_dirs=/data/DIV2K_LR,/data/Flickr2K_LR",
            "train.pretrained=runs/psnr/net_g.safetensors",
            "train.ema_decay=0",
        ],
    )
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(path) == cfg
    # The file is plain YAML a person can read: lists, not Python tuples.
    raw = yaml.safe_load(path.read_text())
    assert raw["optim"]["betas"] == [0.9, 0.999] and raw["loss"]["perceptual"]["layer"] == "relu5_4"
    assert config_to_dict(load_config(path)) == raw


def test_partial_yaml_keeps_defaults_and_reads_yaml11_floats(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    # PyYAML reads "1e-4" (no dot) as a string; a float field must still accept it.
    path.write_text(
        "name: mini\nloss:\noptim:\n  lr_g: 1e-4\n  lr_d: 2.0e-4\ndata:\n  gt_size: 128\n  hr_dirs: [a]\n"
    )
    cfg = load_config(path, ["train.total_iters=4e5", "train.stage=psnr"])
    assert cfg.optim.lr_g == 1e-4 and isinstance(cfg.optim.lr_g, float) and cfg.optim.lr_d == 2e-4
    assert cfg.data.hr_dirs == ("a",) and cfg.train.total_iters == 400_000 and cfg.train.stage == "psnr"
    assert cfg.model == ExperimentConfig().model and cfg.loss == ExperimentConfig().loss  # empty "loss:"
    assert load_config(tmp_path / "c.yaml", []) == dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, total_iters=400_000, stage="gan")
    )


def test_override_values_are_parsed_for_their_type() -> None:
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "optim.lr_g=2e-4",
            "data.use_rot=false",
            "train.seed=7",
            "train.pretrained=none",
            "optim.betas=0.5,0.9",
        ],
    )
    assert cfg.optim.lr_g == 2e-4 and cfg.data.use_rot is False and cfg.train.seed == 7
    assert cfg.train.pretrained is None and cfg.optim.betas == (0.5, 0.9)
    assert apply_overrides(cfg, ["schedule.milestones=[]"]).schedule.milestones == ()
    # Only the overridden keys change.
    assert dataclasses.replace(cfg, optim=OptimConfig(lr_g=2e-4, betas=(0.5, 0.9))).optim == cfg.optim


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr_g=abc", "optim.lr_g: expected a number, got 'abc'"),
        ("train.total_iters=1.5", "train.total_iters: expected an integer"),
        ("data.use_hflip=maybe", "data.use_hflip: expected a boolean"),
        ("loss.gan.type=wgan", "expected one of 'ragan', 'vanilla'"),
        ("loss.gan.ragan_variant=v1", "expected one of 'basicsr', 'paper2018'"),
        ("optim.betas=[0.9]", "optim.betas: expected 2 values, got 1"),
        ("schedule.milestones=[1000, x]", "schedule.milestones[1]: expected an integer"),
        ("train.seed=none", "train.seed: expected an integer"),
        ("optim.lr_g=nan", "finite"),
        ("optim.lr_g", "not of the form key=value"),
        (
            "loss.pixel=l1",
            "loss.pixel is a section; set one of its keys: loss.pixel.criterion, loss.pixel.weight",
        ),
        ("optim.lr_g.x=1", "optim.lr_g is a value, not a section"),
    ],
)
def test_override_type_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(ExperimentConfig(), [override])
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "nmae=x",
            "unknown config key 'nmae' at the top level; valid keys: name, model, discriminator, loss, optim",
        ),
        ("optim.lr=1e-4", "in section 'optim'; valid keys: lr_g, lr_d, betas, weight_decay"),
        (
            "loss.perceptual.layerz=conv5_4",
            "valid keys: layer, layers, layer_weights, criterion, weight, feature_scale, vgg_weights",
        ),
        ("train.lr_g=1e-4", "did you mean optim.lr_g?"),
    ],
)
def test_unknown_override_keys_list_the_valid_keys(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(ExperimentConfig(), [override])
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "optimizer:\n  lr_g: 1.0\n",
            "unknown config key 'optimizer' at the top level; valid keys: name, model",
        ),
        ("optim:\n  lr_gen: 1.0\n", "valid keys: lr_g, lr_d, betas, weight_decay"),
        (
            "loss:\n  gan:\n    kind: ragan\n",
            "unknown config key 'kind' in section 'loss.gan'; valid keys: type",
        ),
        ("data: 5\n", "data: expected a section with keys hr_dirs, lr_dirs"),
        ("- a\n- b\n", "expected a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("train:\n  ema_decay: 1.5\n", "train.ema_decay must lie in [0, 1)"),
        ("model:\n  scale: 2\n", "model.scale (2) and data.scale (4) must be equal"),
        ("data:\n  gt_size: 192\n", "data.gt_size (192) must equal discriminator.input_size (128)"),
        ("loss:\n  perceptual:\n    layer: conv5_5\n", "'conv5_5' is not a VGG19 layer"),
        ("name: 2024\n", "name: expected a string, got 2024"),
    ],
)
def test_bad_yaml_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_cross_field_rules() -> None:
    # The PSNR stage has no discriminator, so any multiple of the scale works as patch size.
    psnr = apply_overrides(ExperimentConfig(), ["train.stage=psnr", "data.gt_size=192"])
    assert psnr.data.gt_size == 192
    with pytest.raises(ConfigError, match="periods sum to 1000"):
        apply_overrides(
            ExperimentConfig(),
            ["schedule.kind=cosine_restart", "schedule.periods=[1000]", "schedule.restart_weights=[1]"],
        )
    with pytest.raises(ConfigError, match="one weight per period"):
        apply_overrides(ExperimentConfig(), ["schedule.kind=cosine_restart", "schedule.restart_weights=[1]"])
    with pytest.raises(ConfigError, match="only available for arch SRResNet"):
        apply_overrides(ExperimentConfig(), ["model.use_bn=true"])
    with pytest.raises(ConfigError, match="one folder per"):
        DataConfig(hr_dirs=("a", "b"), lr_dirs=("x",))
    # Two overrides that are only valid together are applied together.
    both = apply_overrides(ExperimentConfig(), ["model.scale=2", "data.scale=2"])
    assert both.model.scale == both.data.scale == 2


def test_model_settings_belong_to_their_architecture(tmp_path: Path) -> None:
    """Which `model.*` settings an architecture reads comes from its spec (esrgan.archs)."""
    with pytest.raises(
        ConfigError, match=r"model.num_grow_ch=16 is only available for arch RRDBNet; SRResNet"
    ):
        ModelConfig(arch="SRResNet", num_grow_ch=16)
    with pytest.raises(ConfigError, match=r"model.init=basicsr is only available for arch RRDBNet"):
        apply_overrides(ExperimentConfig(), ["model.arch=MSRResNet", "model.init=basicsr"])
    with pytest.raises(
        ConfigError, match=r"'ESRGAN' is not a generator architecture; valid: .*SRVGGNetCompact"
    ):
        apply_overrides(ExperimentConfig(), ["model.arch=ESRGAN"])
    # Defaults of settings an architecture does not read are fine: saved configs list every key.
    compact = apply_overrides(ExperimentConfig(), ["model.arch=SRVGGNetCompact", "model.num_block=8"])
    assert (compact.model.arch, compact.model.num_block) == ("SRVGGNetCompact", 8)
    assert load_config(save_config(compact, tmp_path / "compact.yaml")).model == compact.model


def test_configs_are_frozen_and_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ExperimentConfig().optim.lr_g = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(TypeError):
        apply_overrides(ExperimentConfig(), "optim.lr_g=1")  # type: ignore[arg-type]
