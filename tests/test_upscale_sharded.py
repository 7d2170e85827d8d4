"""Many files: threaded pipeline, sharding over processes (torchrun or --shard), the resumable manifest."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrgan._fs import temporary_file_target
from esrgan.archs import RRDBNet
from esrgan.cli import main
from esrgan.errors import ConfigError
from esrgan.inference.upscaler import Upscaler
from esrgan.io import images as image_io
from esrgan.io.images import Image, write_image
from esrgan.jobs import upscale as files
from esrgan.jobs.manifest import MANIFEST_DIR, Recipe, read_manifest, recipe_for
from esrgan.jobs.plan import Shard, collect_inputs, shard_from_env, shard_positions
from esrgan.jobs.upscale import upscale_files
from esrgan.weights import load_model, save_model

SUBPROCESS_TIMEOUT = 240


# --------------------------------------------------------------------------------------------------
# fixtures and helpers


def _tiny_model(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return save_model(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=4), path)


def _images(folder: Path, count: int, height: int, width: int, seed: int) -> Path:
    """`count` PNGs: RGB, plus one RGBA and one 16-bit gray when there are enough."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        if i == 1:
            image = Image(
                rng.integers(0, 256, (height, width, 3), np.uint8),
                rng.integers(0, 256, (height, width), np.uint8),
            )
        elif i == 2:
            image = Image(rng.integers(0, 65536, (height, width), np.uint16))
        else:
            image = Image(rng.integers(0, 256, (height, width, 3), np.uint8))
        write_image(folder / f"img{i:02d}.png", image)
    return folder


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_out.png"))}


def _hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MANIFEST_DIR)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _env() -> dict[str, str]:
    """Subprocess environment: one thread per process (as the reference), this checkout importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    }
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else src
    env["OMP_NUM_THREADS"] = "1"
    return env


def _cli_args(src: Path, out: Path, model: Path) -> list[str]:
    return [
        "upscale", str(src), "-o", str(out), "-m", str(model), "--tile", "0", "--device", "cpu", "-q",
        "--precision", "fp32",
    ]  # fmt: skip


def _single_process(src: Path, out: Path, model: Path) -> dict[str, bytes]:
    """The reference: `esrgan upscale` in this process, with one thread like the subprocesses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*_cli_args(src, out, model), "--no-manifest"]) == 0
    finally:
        torch.set_num_threads(threads)
    return _outputs(out)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("sharded")
    model = _tiny_model(root / "tiny.safetensors", seed=0)
    yield {"root": root, "model": model, "src": _images(root / "in", 8, 24, 32, seed=1)}


class Nearest(nn.Module):
    """A 2× model that counts its calls; raises for images `fail_on` wide, `interrupt_at` call number."""

    def __init__(self, fail_on: int = -1, interrupt_at: int = -1) -> None:
        super().__init__()
        self.scale = 2
        self.calls = 0
        self.fail_on = fail_on
        self.interrupt_at = interrupt_at
        self.threads: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if x.shape[3] == self.fail_on:
            raise RuntimeError("kaboom")
        return F.interpolate(x, scale_factor=2, mode="nearest")


NEAREST = Recipe(model_sha256="0" * 64, model="nearest")


def _nearest_recipe(upscaler: Upscaler) -> Recipe:
    return Recipe.for_upscaler(upscaler, NEAREST.model_sha256, model=NEAREST.model)


# --------------------------------------------------------------------------------------------------
# shards


def test_shards_partition_the_list_exactly() -> None:
    for n in range(0, 23):
        for count in range(1, 7):
            parts = [list(shard_positions(n, Shard(i, count))) for i in range(count)]
            flat = sorted(p for part in parts for p in part)
            assert flat == list(range(n)), (n, count)  # disjoint and complete
            assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert list(shard_positions(7, Shard(1, 3))) == [1, 4]


def test_shard_parsing_and_environment() -> None:
    assert Shard.parse("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
    for bad in ("5/5", "-1/2", "1", "a/b", "1/0", ""):
        with pytest.raises(ConfigError, match="I/N"):
            Shard.parse(bad)
    assert shard_from_env({}) is None
    assert shard_from_env(
        {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    ) == Shard(3, 4)
    assert shard_from_env({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == Shard(1, 2)
    assert shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None  # one process: no shard
    with pytest.raises(ConfigError, match="RANK"):
        shard_from_env({"RANK": "4", "WORLD_SIZE": "4"})


def test_cli_rejects_a_bad_shard(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["upscale", "x.png", "--shard", "2/2"])
    assert exc.value.code == 2
    assert "I/N" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# processes


def test_torchrun_two_processes_equal_one_process(job: dict[str, Path]) -> None:
    root, model, src = job["root"], job["model"], job["src"]
    reference = _single_process(src, root / "ref-torchrun", model)
    assert len(reference) == 8

    out = root / "torchrun"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "esrgan",
    ]
    result = subprocess.run(
        [*cmd, *_cli_args(src, out, model)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for shard in ("0/2", "1/2"):
        assert f"[shard {shard}] 4 upscaled, 0 done earlier, 0 skipped, 0 failed" in result.stdout

    assert _outputs(out) == reference  # byte for byte
    assert _hidden_leftovers(out) == []
    manifests = sorted(p.name for p in (out / MANIFEST_DIR).iterdir())
    assert manifests == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"]
    records = read_manifest(out)
    assert sorted(records) == sorted(reference)
    model_sha = _sha256(model)
    for name, record in records.items():
        assert record.output_sha256 == _sha256(out / name) and record.output_bytes == len(reference[name])
        assert record.recipe.model_sha256 == model_sha and record.recipe.model == str(model)
        assert record.recipe.tile == 0 and record.recipe.model_b_sha256 is None
        position = int(name[3:5])  # img{position:02d}_out.png
        assert record.shard == f"{position % 2}/2"
        assert Path(record.input).name == f"img{position:02d}.png"


def test_killed_sharded_run_resumes_where_it_stopped(job: dict[str, Path]) -> None:
    root, model = job["root"], job["model"]
    total = 24
    src = _images(root / "in-kill", total, 48, 64, seed=2)
    reference = _single_process(src, root / "ref-kill", model)
    out = root / "killed"

    logs = [open(root / f"kill-shard{i}.log", "w") for i in range(2)]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "esrgan", *_cli_args(src, out, model), "--shard", f"{i}/2"],
            env=_env(),
            stdout=logs[i],
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while len(list(out.glob("*_out.png"))) < 4:
            assert all(p.poll() is None for p in procs), "a shard ended before it could be killed"
            assert time.monotonic() < deadline, "no outputs appeared"
            time.sleep(0.005)
    finally:
        for p in procs:
            p.kill()  # SIGKILL: no cleanup of any kind
        for p in procs:
            p.wait()
        for log in logs:
            log.close()

    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*_out.png")}
    manifest_text = {p.name: p.read_bytes() for p in (out / MANIFEST_DIR).iterdir()}
    recorded = set(read_manifest(out))
    # An output is recorded after its atomic rename: a kill in between leaves it finished but unrecorded.
    assert recorded <= set(finished) and len(finished) - len(recorded) <= 2
    assert 0 < len(finished) < total
    for name in finished:  # what exists is complete
        assert (out / name).read_bytes() == reference[name]

    # The rerun: one process this time, reading both shards' manifests, with the library API.
    upscaler = Upscaler(load_model(model), tile=0, device="cpu", precision="fp32")
    recipe = recipe_for(upscaler, str(model))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = upscale_files(upscaler, collect_inputs([str(src)]), out, recipe=recipe, progress=False)
    finally:
        torch.set_num_threads(threads)

    assert summary.failed == []
    assert sorted(dst.name for _, dst in summary.earlier) == sorted(recorded)
    assert sorted(dst.name for _, dst in summary.done) == sorted(set(reference) - set(finished))
    assert [src_path.name for src_path, _ in summary.skipped] == sorted(
        n.replace("_out", "") for n in set(finished) - recorded
    )
    assert _outputs(out) == reference
    assert _hidden_leftovers(out) == []
    for name in recorded:  # not made again
        assert (out / name).stat().st_mtime_ns == finished[name]
    for name, before in manifest_text.items():  # the killed run's records are kept as they were
        assert (out / MANIFEST_DIR / name).read_bytes().startswith(before)
    records = read_manifest(out)
    assert set(records) == set(reference) - (set(finished) - recorded)
    for name, record in records.items():
        assert record.output_sha256 == _sha256(out / name)
        assert record.shard == ("0/1" if name not in finished else f"{int(name[3:5]) % 2}/2")


# --------------------------------------------------------------------------------------------------
# the manifest in one process


def test_another_model_on_rerun_is_reported_not_taken_as_done(
    job: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_a = job["model"]
    model_b = _tiny_model(tmp_path / "other.safetensors", seed=1)
    src = _images(tmp_path / "in", 3, 16, 16, seed=3)
    out = tmp_path / "out"
    args_a, args_b = _cli_args(src, out, model_a), _cli_args(src, out, model_b)

    assert main(args_a) == 0
    made_by_a = _outputs(out)
    assert "3 upscaled, 0 done earlier, 0 skipped, 0 failed" in capsys.readouterr().out

    assert main(args_b) == 0  # skipping is not a failure, but it is said, for each file
    captured = capsys.readouterr()
    assert "0 upscaled, 0 done earlier, 3 skipped, 0 failed" in captured.out
    assert captured.err.count("was made by another model") == 3
    assert f"model: {model_a} (sha256 {_sha256(model_a)[:12]}) → {model_b}" in captured.err
    assert _outputs(out) == made_by_a

    assert main([*args_a, "--tile-overlap", "4"]) == 0
    assert "tile overlap: 8 → 4" in capsys.readouterr().err

    assert main([*args_b, "--overwrite"]) == 0
    assert "3 upscaled, 0 done earlier, 0 skipped" in capsys.readouterr().out
    assert _outputs(out) != made_by_a
    assert {r.recipe.model_sha256 for r in read_manifest(out).values()} == {_sha256(model_b)}

    assert main([*args_b, "--overwrite"]) == 0  # the same model and settings: a rerun resumes, even so
    assert "0 upscaled, 3 done earlier, 0 skipped" in capsys.readouterr().out

    # Interpolation is part of what made the pixels.
    assert main([*args_a, "--model-b", str(model_b), "--alpha", "0.5"]) == 0
    err = capsys.readouterr().err
    assert err.count("was made by another model") == 3 and "interpolation alpha: None → 0.5" in err


def test_torn_manifest_line_and_leftover_temporary_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _images(tmp_path / "in", 2, 6, 5, seed=4)
    out = tmp_path / "out"
    upscaler = Upscaler(Nearest(), device="cpu", precision="fp32")
    recipe = _nearest_recipe(upscaler)
    upscale_files(upscaler, collect_inputs([str(src)]), out, recipe=recipe, progress=False)
    manifest = out / MANIFEST_DIR / "shard-0-of-1.jsonl"
    with open(manifest, "ab") as f:
        f.write(b'{"version": 1, "output": "img0')  # a process killed in the middle of a line
    (out / "img01_out.png").unlink()
    ours = out / ".img01_out.png.0123abcd.tmp"
    ours.write_bytes(b"half a png")
    other = out / ".notes.png.0123abcd.tmp"
    other.write_bytes(b"someone else's")

    summary = upscale_files(upscaler, collect_inputs([str(src)]), out, recipe=recipe, progress=False)

    assert [d.name for _, d in summary.earlier] == ["img00_out.png"]
    assert [d.name for _, d in summary.done] == ["img01_out.png"]
    assert not ours.exists() and other.exists()
    assert "not a manifest record" in caplog.text
    lines = manifest.read_text().splitlines()
    assert len(lines) == 4 and lines[2].endswith('"output": "img0')  # the torn line stays on its own
    assert sorted(read_manifest(out)) == ["img00_out.png", "img01_out.png"]


def test_temporary_file_target_matches_write_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:  # the temporary file exists while its bytes are synced
        seen.extend(p.name for p in tmp_path.iterdir())
        real_fsync(fd)

    monkeypatch.setattr(image_io.os, "fsync", spy)
    write_image(tmp_path / "a.b.png", Image(np.zeros((2, 2), np.uint8)))
    assert len(seen) == 1 and temporary_file_target(seen[0]) == "a.b.png"
    assert temporary_file_target("a.b.png") is None and temporary_file_target(".a.png.xyz.tmp") is None


# --------------------------------------------------------------------------------------------------
# the pipeline


def _mixed_inputs(folder: Path) -> list[Path]:
    rng = np.random.default_rng(5)
    folder.mkdir()
    write_image(folder / "a.png", Image(rng.integers(0, 256, (6, 5, 3), np.uint8)))
    (folder / "b.png").write_bytes(b"definitely not a png")
    write_image(folder / "c.png", Image(rng.integers(0, 256, (6, 7, 3), np.uint8)))  # the model fails on it
    write_image(folder / "d.png", Image(rng.integers(0, 256, (6, 5), np.uint8)))  # its output exists
    write_image(
        folder / "e.tif",
        Image(rng.integers(0, 65536, (6, 5, 3), np.uint16), rng.integers(0, 65536, (6, 5), np.uint16)),
    )
    write_image(folder / "f.png", Image(rng.integers(0, 256, (4, 3, 3), np.uint8)))
    return collect_inputs([str(folder)])


@pytest.mark.parametrize("manifest", [False, True])
def test_threads_give_the_same_results_as_one_thread(tmp_path: Path, manifest: bool) -> None:
    inputs = _mixed_inputs(tmp_path / "in")
    results = {}
    for threads in (False, True):
        out = tmp_path / f"out-{threads}"
        out.mkdir()
        (out / "d_out.png").write_bytes(b"keep me")
        upscaler = Upscaler(Nearest(fail_on=7), device="cpu", precision="fp32")
        recipe = _nearest_recipe(upscaler) if manifest else None
        summary = upscale_files(upscaler, inputs, out, recipe=recipe, threads=threads, progress=False)
        results[threads] = summary, _outputs(out) | {"e_out.tif": (out / "e_out.tif").read_bytes()}
        # what upscale_files always did, file by file
        src = tmp_path / "in"
        assert summary.done == [(src / n, out / f"{n[0]}_out{n[1:]}") for n in ("a.png", "e.tif", "f.png")]
        assert [p.name for p, _ in summary.failed] == ["b.png", "c.png"]
        assert "b.png" in summary.failed[0][1]
        assert summary.failed[1][1] == "unexpected error: RuntimeError: kaboom"
        assert summary.skipped == [
            (src / "d.png", f"{out / 'd_out.png'} exists (use --overwrite to replace it)")
        ]
        assert summary.earlier == []
        assert (out / "d_out.png").read_bytes() == b"keep me"
        assert sorted(read_manifest(out)) == (["a_out.png", "e_out.tif", "f_out.png"] if manifest else [])
        if threads:
            assert upscaler.model.threads == {"MainThread"}  # the model runs in the caller's thread

    (inline, inline_files), (threaded, threaded_files) = results[False], results[True]
    assert inline_files == threaded_files
    assert [p for p, _ in inline.done] == [p for p, _ in threaded.done]
    addresses = re.compile(r"0x[0-9a-f]+")  # Pillow's message names an object's address
    assert [(p, addresses.sub("", m)) for p, m in inline.failed] == [
        (p, addresses.sub("", m)) for p, m in threaded.failed
    ]


def test_reading_and_writing_overlap_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    count = 5
    src = _images(tmp_path / "in", count, 6, 5, seed=6)
    inputs = collect_inputs([str(src)])
    reading = [threading.Event() for _ in range(count)]
    writing = [threading.Event() for _ in range(count)]
    real_read, real_write = files.read_image, files.write_image

    def read(path: Path) -> Image:
        reading[int(Path(path).stem[3:])].set()
        return real_read(path)

    def write(path: Path, image: Image, **kwargs: bool) -> None:
        writing[int(Path(path).stem[3:5])].set()
        real_write(path, image, **kwargs)

    class Waiting(Nearest):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = self.calls
            # While image n is upscaled, image n+1 is read and image n-1 written, in other threads; a
            # one-thread pipeline would wait here for 10 s and fail.
            assert n + 1 >= count or reading[n + 1].wait(10), f"image {n + 1} not read ahead"
            assert n == 0 or writing[n - 1].wait(10), f"image {n - 1} not written meanwhile"
            return super().forward(x)

    monkeypatch.setattr(files, "read_image", read)
    monkeypatch.setattr(files, "write_image", write)
    upscaler = Upscaler(
        Waiting(), device="cpu", alpha="bicubic", precision="fp32"
    )  # one model call per image
    summary = upscale_files(upscaler, inputs, tmp_path / "out", progress=False)
    assert summary.failed == [] and len(summary.done) == count


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path: Path) -> None:
    src = _images(tmp_path / "in", 5, 6, 5, seed=7)
    inputs = collect_inputs([str(src)])
    out = tmp_path / "out"
    upscaler = Upscaler(
        Nearest(interrupt_at=3), device="cpu", alpha="bicubic", precision="fp32"
    )  # one model call per image
    recipe = _nearest_recipe(upscaler)
    with pytest.raises(KeyboardInterrupt):
        upscale_files(upscaler, inputs, out, recipe=recipe, progress=False)

    assert not [t for t in threading.enumerate() if t.name.startswith("esrgan-upscale")]
    # The two images upscaled before Ctrl-C are written and recorded; nothing else, nothing partial.
    assert sorted(_outputs(out)) == ["img00_out.png", "img01_out.png"]
    assert sorted(read_manifest(out)) == ["img00_out.png", "img01_out.png"]
    assert _hidden_leftovers(out) == []

    upscaler = Upscaler(Nearest(), device="cpu", alpha="bicubic", precision="fp32")
    summary = upscale_files(upscaler, inputs, out, recipe=recipe, progress=False)
    assert [d.name for _, d in summary.earlier] == ["img00_out.png", "img01_out.png"]
    assert len(summary.done) == 3 and upscaler.model.calls == 3


def test_a_shard_of_the_library_job(tmp_path: Path) -> None:
    src = _images(tmp_path / "in", 5, 6, 5, seed=8)
    inputs = collect_inputs([str(src)])
    out = tmp_path / "out"
    done = []
    for i in range(2):
        summary = upscale_files(
            Upscaler(Nearest(), device="cpu", precision="fp32"),
            inputs,
            out,
            shard=Shard(i, 2),
            progress=False,
        )
        done.append([p.name for p, _ in summary.done])
    assert done == [["img00.png", "img02.png", "img04.png"], ["img01.png", "img03.png"]]
