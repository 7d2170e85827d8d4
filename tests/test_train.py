"""Training: the step functions against BasicSR's step written out here, exact resume after SIGKILL, torchrun
equal to one process, the stage 1 → stage 2 → interpolate → upscale path, and the shipped configs."""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image as PILImage

from esrgan.archs import ARCHITECTURES, GENERATOR_SPECS, RRDBNet, SRGANDiscriminator, VGG19FeatureExtractor
from esrgan.archs.descriptor import describe
from esrgan.archs.rrdbnet import basicsr_init
from esrgan.archs.vgg import VGG19_URL
from esrgan.cli import main
from esrgan.config import (
    GanLossConfig,
    LossConfig,
    ModelConfig,
    PerceptualLossConfig,
    PixelLossConfig,
    load_config,
)
from esrgan.errors import ConfigError, EsrganError, WeightsError
from esrgan.losses import PerceptualLoss
from esrgan.train import GeneratorLosses, Precision, build_generator, gan_step, psnr_step
from esrgan.train.loop import build_generator_losses, load_pretrained_generator
from esrgan.weights import read_generator_weights, save_model

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"arch": "RRDBNet", "num_feat": 8, "num_block": 1, "num_grow_ch": 4}
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


# ---------------------------------------------------------------------------------------------------------
# fixtures


def _synthetic_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour waves plus a little noise: something a tiny network can learn in a few steps."""
    y, x = np.mgrid[0:size, 0:size] / size
    freq, phase = rng.uniform(1, 6, size=(3, 2)), rng.uniform(0, 6, size=3)
    waves = [np.sin(2 * np.pi * (f[0] * x + f[1] * y) + p) for f, p in zip(freq, phase, strict=True)]
    img = 0.5 + 0.4 * np.stack(waves, -1)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    return (img * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    dirs = {"hr": root / "hr", "val": root / "val"}
    for name, count, size in (("hr", 8, 64), ("val", 2, 48)):
        dirs[name].mkdir()
        for i in range(count):
            PILImage.fromarray(_synthetic_image(rng, size)).save(dirs[name] / f"img{i}.png")
    # A random-init VGG19 in torchvision's file format: the perceptual loss runs, with meaningless features.
    torch.manual_seed(0)
    vgg = VGG19FeatureExtractor(layers=["conv5_4"], weights=None)
    dirs["vgg"] = root / "vgg19-random.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, dirs["vgg"])
    return dirs


def _config(data: dict[str, Path], stage: str = "psnr", **train: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": f"test_{stage}",
        "model": dict(TINY_MODEL),
        "data": {
            "hr_dirs": [str(data["hr"])],
            "val_hr_dirs": [str(data["val"])],
            "gt_size": 32,
            "batch_size": 2,
            "num_workers": 0,
        },
        "train": {
            "stage": stage,
            "total_iters": 6,
            "log_every": 1,
            "val_every": 3,
            "checkpoint_every": 3,
            "ema_decay": 0.9,
            "device": "cpu",
            "precision": "fp32",  # these tests compare runs bit for bit or across process counts
            **train,
        },
        "optim": {"lr_g": 1e-3, "lr_d": 1e-3},
    }
    if stage == "psnr":
        cfg["loss"] = {"pixel": {"weight": 1.0}}
    else:
        cfg["discriminator"] = {"arch": "SRGANDiscriminator", "num_feat": 8, "input_size": 32}
        cfg["loss"] = {"perceptual": {"vgg_weights": str(data["vgg"])}}
    return cfg


def _write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _checkpoint(run_dir: Path, step: int) -> dict[str, Any]:
    return torch.load(run_dir / "checkpoints" / f"step_{step:08d}.pt", weights_only=True)


def _assert_equal_trees(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_equal_trees(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_equal_trees(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# ---------------------------------------------------------------------------------------------------------
# step functions


def test_psnr_step_overfits_a_fixed_batch() -> None:
    torch.manual_seed(0)
    G = build_generator(ModelConfig(**TINY_MODEL))
    opt = torch.optim.Adam(G.parameters(), lr=2e-3)
    gt = F.avg_pool2d(torch.rand(2, 3, 32, 32), 5, 1, 2)
    lq = F.avg_pool2d(gt, 4)
    losses = [
        psnr_step({"lq": lq, "gt": gt}, G, opt, PixelLossConfig(weight=1.0))["l_pix"] for _ in range(60)
    ]
    assert losses[-1] < 0.25 * losses[0], losses[::10]
    # the returned loss is the pre-update loss of that step: recomputing the first one from scratch agrees
    torch.manual_seed(0)
    G0 = build_generator(ModelConfig(**TINY_MODEL))
    assert losses[0] == pytest.approx(F.l1_loss(G0(lq), gt).item(), rel=1e-6)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _basicsr_esrgan_step(G, D, opt_g, opt_d, lq, gt, percep, w_pix=1e-2, w_gan=5e-3):  # type: ignore[no-untyped-def]
    """BasicSR v1.x `ESRGANModel.optimize_parameters`, transcribed (three D forwards, two D backwards)."""
    for p in D.parameters():
        p.requires_grad = False
    opt_g.zero_grad()
    output = G(lq)
    l_g_pix = w_pix * F.l1_loss(output, gt)
    l_g_percep = percep(output, gt)
    real_d_pred = D(gt).detach()
    fake_g_pred = D(output)
    l_g_real = _bce(real_d_pred - torch.mean(fake_g_pred), 0.0) * w_gan
    l_g_fake = _bce(fake_g_pred - torch.mean(real_d_pred), 1.0) * w_gan
    l_g_gan = (l_g_real + l_g_fake) / 2
    (l_g_pix + l_g_percep + l_g_gan).backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad = True
    opt_d.zero_grad()
    fake_d_pred = D(output).detach()
    real_d_pred = D(gt)
    l_d_real = _bce(real_d_pred - torch.mean(fake_d_pred), 1.0) * 0.5
    l_d_real.backward()
    fake_d_pred = D(output.detach())
    l_d_fake = _bce(fake_d_pred - torch.mean(real_d_pred.detach()), 0.0) * 0.5
    l_d_fake.backward()
    opt_d.step()
    return {"l_g_gan": l_g_gan.item(), "l_d_real": l_d_real.item(), "l_d_fake": l_d_fake.item()}


def _basicsr_srgan_step(G, D, opt_g, opt_d, lq, gt, percep, w_pix=1e-2, w_gan=5e-3):  # type: ignore[no-untyped-def]
    """BasicSR v1.x `SRGANModel.optimize_parameters` (standard GAN, no ½), transcribed."""
    for p in D.parameters():
        p.requires_grad = False
    opt_g.zero_grad()
    output = G(lq)
    l_g_gan = w_gan * _bce(D(output), 1.0)
    (w_pix * F.l1_loss(output, gt) + percep(output, gt) + l_g_gan).backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad = True
    opt_d.zero_grad()
    l_d_real = _bce(D(gt), 1.0)
    l_d_real.backward()
    l_d_fake = _bce(D(output.detach()), 0.0)
    l_d_fake.backward()
    opt_d.step()
    return {"l_g_gan": l_g_gan.item(), "l_d_real": l_d_real.item(), "l_d_fake": l_d_fake.item()}


@pytest.mark.parametrize("gan_type", ["ragan", "vanilla"])
def test_gan_step_equals_basicsr_step(gan_type: str) -> None:
    torch.manual_seed(0)
    G = build_generator(ModelConfig(**TINY_MODEL))
    D = SRGANDiscriminator(num_feat=8, input_size=32)  # has batch norm: train-mode statistics matter
    percep = PerceptualLoss(VGG19FeatureExtractor(layers=["conv2_2"], weights=None), {"conv2_2": 1.0})
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)

    def sgd(m: torch.nn.Module) -> torch.optim.SGD:
        # SGD, not Adam: Adam's first step moves a parameter by lr·sign(grad) even where the gradient is only
        # rounding noise (zero-initialised biases), so it would magnify float-order differences.
        return torch.optim.SGD(m.parameters(), lr=0.05)

    opt_g, opt_d, opt_g_ref, opt_d_ref = sgd(G), sgd(D), sgd(G_ref), sgd(D_ref)
    losses = GeneratorLosses(PixelLossConfig(weight=1e-2), percep, GanLossConfig(type=gan_type, weight=5e-3))
    reference = _basicsr_esrgan_step if gan_type == "ragan" else _basicsr_srgan_step
    for _ in range(3):
        gt = torch.rand(4, 3, 32, 32)
        lq = F.avg_pool2d(gt, 4)
        ours = gan_step({"lq": lq, "gt": gt}, G, D, opt_g, opt_d, losses)
        ref = reference(G_ref, D_ref, opt_g_ref, opt_d_ref, lq, gt, percep)
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    for mine, theirs in ((G, G_ref), (D, D_ref)):
        for (name, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
    assert all(p.requires_grad for p in D.parameters())  # D is unfrozen again after the step


def test_precision_bf16_close_to_fp32_and_fp16_needs_cuda() -> None:
    torch.manual_seed(0)
    G = build_generator(ModelConfig(**TINY_MODEL))
    gt = torch.rand(2, 3, 32, 32)
    batch = {"lq": F.avg_pool2d(gt, 4), "gt": gt}
    fp32 = psnr_step(
        batch, copy.deepcopy(G), torch.optim.SGD(G.parameters(), lr=0), PixelLossConfig(weight=1)
    )
    bf16 = Precision.create("bf16", torch.device("cpu"))
    G2 = copy.deepcopy(G)
    out = psnr_step(
        batch, G2, torch.optim.SGD(G2.parameters(), lr=0), PixelLossConfig(weight=1), precision=bf16
    )
    assert out["l_pix"] == pytest.approx(fp32["l_pix"], rel=2e-2)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Precision.create("fp16", torch.device("cpu"))


def test_perceptual_loss_needs_the_vgg_file_unless_its_weight_is_zero(tmp_path: Path) -> None:
    missing = tmp_path / "vgg19-dcbb9e9d.pth"
    cfg = LossConfig(perceptual=PerceptualLossConfig(vgg_weights=str(missing)))
    with pytest.raises(WeightsError) as info:
        build_generator_losses(cfg)
    assert str(missing) in str(info.value) and VGG19_URL in str(info.value)
    no_vgg = LossConfig(perceptual=PerceptualLossConfig(weight=0.0, vgg_weights=str(missing)))
    assert build_generator_losses(no_vgg).perceptual is None


def test_pretrained_weights_must_match_the_configured_generator(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_generator(ModelConfig(**TINY_MODEL))
    path = save_model(source, tmp_path / "g.safetensors")
    target = build_generator(ModelConfig(**TINY_MODEL))
    load_pretrained_generator(target, str(path))
    _assert_equal_trees(source.state_dict(), target.state_dict())
    wider = build_generator(ModelConfig(**{**TINY_MODEL, "num_feat": 16}))
    with pytest.raises(EsrganError, match="set model.* to match"):
        load_pretrained_generator(wider, str(path))


@pytest.mark.parametrize("arch", sorted(GENERATOR_SPECS))
def test_every_registered_generator_trains_from_a_config(arch: str) -> None:
    G = build_generator(ModelConfig(arch=arch, num_feat=8, num_block=2, scale=2))
    assert type(G) is ARCHITECTURES[arch] and describe(G).scale == 2
    assert G(torch.rand(1, 3, 6, 6)).shape == (1, 3, 12, 12)
    rebuilt = ARCHITECTURES[arch](**G.hparams)  # the exported file rebuilds the same network
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in G.state_dict().items()
    }


def test_generator_settings_reach_the_network() -> None:
    torch.manual_seed(0)
    G = build_generator(ModelConfig(**TINY_MODEL, init="basicsr"))
    torch.manual_seed(0)
    _assert_equal_trees(
        G.state_dict(), basicsr_init(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)).state_dict()
    )
    srgan = build_generator(ModelConfig(arch="SRResNet", num_feat=8, num_block=1, use_bn=True))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in srgan.modules())
    assert (
        build_generator(ModelConfig(arch="SRVGGNetCompact", num_feat=8, num_block=5)).hparams["num_conv"] == 5
    )
    with pytest.raises(ConfigError, match="model: MSRResNet supports scale 2, 3 or 4"):
        build_generator(ModelConfig(arch="MSRResNet", scale=8))


def test_a_new_architecture_trains_through_its_spec_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config and the training builder know generators only through `GENERATOR_SPECS`."""
    monkeypatch.setitem(
        GENERATOR_SPECS, "BNResNet", dataclasses.replace(GENERATOR_SPECS["SRResNet"], name="BNResNet")
    )
    G = build_generator(ModelConfig(arch="BNResNet", num_feat=8, num_block=1, use_bn=True))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules())
    with pytest.raises(ConfigError, match="use_bn=true is only available for arch SRResNet or BNResNet"):
        ModelConfig(arch="RRDBNet", use_bn=True)


# ---------------------------------------------------------------------------------------------------------
# whole runs


def test_stage1_stage2_interpolate_upscale(
    data_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    psnr_run, gan_run = tmp_path / "psnr", tmp_path / "gan"
    assert (
        main(["train", str(_write(_config(data_dirs), tmp_path / "psnr.yaml")), "--run-dir", str(psnr_run)])
        == 0
    )
    psnr_model = psnr_run / "models" / "net_g_final.safetensors"
    records = [yaml.safe_load(x) for x in (psnr_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if r["kind"] == "val"] == [3, 6]
    assert sorted(p.name for p in (psnr_run / "samples" / "step_00000006").iterdir()) == [
        "img0.png",
        "img1.png",
    ]

    gan_cfg = _write(_config(data_dirs, "gan", pretrained=str(psnr_model)), tmp_path / "gan.yaml")
    assert main(["train", str(gan_cfg), "--run-dir", str(gan_run)]) == 0
    gan_model = gan_run / "models" / "net_g_final.safetensors"
    assert "generator initialised from" in (gan_run / "train.log").read_text()
    gan_log = [yaml.safe_load(x) for x in (gan_run / "metrics.jsonl").read_text().splitlines()]
    assert {"l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "l_d_fake"} <= set(gan_log[0])

    # The export is the EMA generator, the training config in its metadata; it equals the checkpoint's EMA.
    weights = read_generator_weights(gan_model)
    assert weights.metadata["esrgan.weights"] == "ema" and weights.metadata["esrgan.step"] == "6"
    assert yaml.safe_load(weights.metadata["esrgan.training_config"])["train"]["stage"] == "gan"
    _assert_equal_trees(weights.state_dict, _checkpoint(gan_run, 6)["ema"]["module"])

    interp = tmp_path / "interp_08.safetensors"
    assert main(["interpolate", str(psnr_model), str(gan_model), "--alpha", "0.8", "-o", str(interp)]) == 0
    a, b = read_generator_weights(psnr_model).state_dict, weights.state_dict
    for key, value in read_generator_weights(interp).state_dict.items():
        torch.testing.assert_close(value, 0.2 * a[key] + 0.8 * b[key])

    lr_image = tmp_path / "lr.png"
    PILImage.fromarray(_synthetic_image(np.random.default_rng(5), 20)).save(lr_image)
    out_dir = tmp_path / "out"
    capsys.readouterr()
    assert main(["upscale", str(lr_image), "-m", str(interp), "-o", str(out_dir), "-q", "--tile", "0"]) == 0
    (result,) = (p for p in out_dir.iterdir() if p.name != ".esrgan-manifest")  # the one output
    assert PILImage.open(result).size == (80, 80)


def _train_cmd(cfg: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "esrgan", "train", str(cfg), *extra, "--run-dir", str(run_dir)]


def test_sigkill_at_a_random_iteration_then_resume_is_bit_identical(
    data_dirs: dict[str, Path], tmp_path: Path
) -> None:
    total = 20
    cfg = _config(data_dirs, "gan", total_iters=total, checkpoint_every=4, val_every=100, keep_last=2)
    cfg["data"]["num_workers"] = 1  # a worker process that reads ahead must not disturb the resumed order
    cfg_path = _write(cfg, tmp_path / "gan.yaml")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_train_cmd(cfg_path, straight), env=SUBPROCESS_ENV, check=True, capture_output=True)

    kill_at = random.randrange(5, total - 5)  # after the first checkpoint (4), well before the end
    proc = subprocess.Popen(
        _train_cmd(cfg_path, killed),
        env=SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if f" iter {kill_at}/" in line:
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait() == -signal.SIGKILL, f"the run ended before iteration {kill_at}"
    assert not (killed / "checkpoints" / f"step_{total:08d}.pt").exists()

    resumed = subprocess.run(_train_cmd(cfg_path, killed), env=SUBPROCESS_ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout, resumed.stdout
    a, b = _checkpoint(straight, total), _checkpoint(killed, total)
    for key in ("generator", "discriminator", "ema", "opt_g", "opt_d", "rng"):
        _assert_equal_trees(a[key], b[key], f"{key} (killed at iteration {kill_at})")
    # the log holds each step once: entries written after the last checkpoint by the killed run were dropped
    records = [yaml.safe_load(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, total + 1))


def test_torchrun_two_processes_equal_one_process_with_the_same_global_batch(
    data_dirs: dict[str, Path], tmp_path: Path
) -> None:
    cfg_path = _write(_config(data_dirs, total_iters=6, val_every=100), tmp_path / "psnr.yaml")
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(
        _train_cmd(cfg_path, one, "data.batch_size=4"), env=SUBPROCESS_ENV, check=True, capture_output=True
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    run = subprocess.run(
        [*torchrun, "-m", "esrgan", "train", str(cfg_path), "data.batch_size=2", "--run-dir", str(two)],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 process(es) on cpu, global batch 4" in run.stdout
    a, b = _checkpoint(one, 6), _checkpoint(two, 6)
    assert not torch.equal(
        a["generator"]["conv_first.weight"], _checkpoint(one, 3)["generator"]["conv_first.weight"]
    )
    for key in ("generator",):
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, rtol=1e-5, atol=1e-6, msg=name)
    for name, value in a["ema"]["module"].items():
        torch.testing.assert_close(b["ema"]["module"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_no_resume_moves_the_previous_run_aside(data_dirs: dict[str, Path], tmp_path: Path) -> None:
    cfg = _write(_config(data_dirs, total_iters=3, val_every=100), tmp_path / "c.yaml")
    run_dir = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run_dir)]) == 0
    first = _checkpoint(run_dir, 3)
    # overrides may also follow the options; this resumes 3 → 5
    assert main(["train", str(cfg), "--run-dir", str(run_dir), "train.total_iters=5"]) == 0
    assert _checkpoint(run_dir, 5)["step"] == 5
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] != []
    assert main(["train", str(cfg), "--run-dir", str(run_dir), "--no-resume"]) == 0
    (aside,) = run_dir.glob("discarded-*")
    assert sorted(p.name for p in (aside / "checkpoints").iterdir()) == [
        "step_00000003.pt",
        "step_00000005.pt",
    ]
    _assert_equal_trees(first["generator"], _checkpoint(run_dir, 3)["generator"])  # started over, same seed


def test_unknown_config_key_is_an_error_listing_valid_keys(
    data_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _write(_config(data_dirs), tmp_path / "c.yaml")
    assert main(["train", str(cfg), "train.lr_g=1e-4", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'lr_g' in section 'train'; valid keys: stage, total_iters" in err
    assert "did you mean optim.lr_g?" in err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------------------
# shipped configs


def test_configs_follow_the_papers() -> None:
    psnr = load_config(ROOT / "configs" / "esrgan_psnr_x4.yaml")
    assert (psnr.model.arch, psnr.model.num_block, psnr.model.num_feat, psnr.train.stage) == (
        "RRDBNet",
        23,
        64,
        "psnr",
    )
    assert (psnr.loss.pixel.criterion, psnr.loss.pixel.weight, psnr.optim.lr_g) == ("l1", 1.0, 2e-4)
    assert psnr.schedule.milestones == (200_000, 400_000, 600_000, 800_000) and psnr.schedule.gamma == 0.5
    assert (psnr.data.batch_size, psnr.data.gt_size, psnr.train.total_iters) == (16, 128, 1_000_000)

    gan = load_config(ROOT / "configs" / "esrgan_gan_x4.yaml")
    assert gan.train.pretrained and "esrgan_psnr_x4" in gan.train.pretrained
    assert (gan.loss.pixel.weight, gan.loss.perceptual.weight, gan.loss.gan.weight) == (1e-2, 1.0, 5e-3)
    assert (gan.loss.perceptual.layer, gan.loss.perceptual.criterion, gan.loss.gan.type) == (
        "conv5_4",
        "l1",
        "ragan",
    )
    assert (gan.optim.lr_g, gan.optim.lr_d, gan.train.total_iters) == (1e-4, 1e-4, 400_000)
    assert gan.schedule.milestones == (50_000, 100_000, 200_000, 300_000)
    assert (gan.discriminator.arch, gan.discriminator.input_size) == ("VGGStyleDiscriminator", 128)

    srresnet = load_config(ROOT / "configs" / "srresnet_x4.yaml")
    assert (srresnet.model.arch, srresnet.model.use_bn, srresnet.loss.pixel.criterion) == (
        "SRResNet",
        True,
        "mse",
    )
    srgan = load_config(ROOT / "configs" / "srgan_x4.yaml")
    assert (srgan.loss.perceptual.layer, srgan.loss.perceptual.criterion) == ("relu5_4", "mse")
    assert srgan.loss.perceptual.feature_scale == pytest.approx(1 / 12.75)
    assert (srgan.loss.gan.type, srgan.loss.gan.weight, srgan.loss.pixel.weight) == ("vanilla", 1e-3, 0.0)
    assert (srgan.discriminator.arch, srgan.discriminator.input_size, srgan.data.gt_size) == (
        "SRGANDiscriminator",
        96,
        96,
    )
    for tiny in ("tiny_psnr", "tiny_gan"):
        cfg = load_config(ROOT / "configs" / f"{tiny}.yaml")
        assert cfg.data.hr_dirs == ("../shared/data/DIV2K-tiny-HR",) and cfg.train.device == "cpu"
