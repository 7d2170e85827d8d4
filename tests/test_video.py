"""Video upscaling (issue 15): synthetic videos made with PyAV, with moving content, a variable frame rate, an
audio track and a rotation tag, go through `esrgan upscale` and are checked against the image path frame by
frame, and for frame count, timestamps, audio packets, rotation and colour tags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from esrgan.archs.srvgg import SRVGGNetCompact  # noqa: E402
from esrgan.cli import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, main  # noqa: E402
from esrgan.errors import EsrganError  # noqa: E402
from esrgan.inference.upscaler import Upscaler  # noqa: E402
from esrgan.io.video import VideoEncoding, VideoError, decode_segment, plan_segments, probe_video  # noqa: E402
from esrgan.jobs import video as video_job  # noqa: E402
from esrgan.jobs.plan import output_path  # noqa: E402
from esrgan.metrics import psnr  # noqa: E402
from esrgan.weights import load_model, save_model  # noqa: E402

TIME_BASE = Fraction(1, 1000)
# near-lossless output, so that each frame can be compared with the image path's upscale of its input
LOSSLESS = ["--codec", "libx264", "--crf", "0", "--pix-fmt", "yuv444p", "--precision", "fp32", "-q"]


def make_video(
    path: Path,
    *,
    frames: int = 36,
    size: tuple[int, int] = (40, 32),
    gop: int = 8,
    audio: bool = True,
    rotation: int | None = 90,
    container: str | None = None,
) -> Path:
    """A small H.264 video: a moving pattern, frame durations of 40 or 80 ms (variable frame rate), a
    keyframe every `gop` frames, BT.709 colour tags, an AAC track tagged as French, and a rotation tag."""
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream(
            "libx264", rate=25, options={"crf": "12", "g": str(gop), "keyint_min": str(gop)}
        )
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.time_base = video.codec_context.time_base = TIME_BASE
        ctx = video.codec_context  # BT.709 tags, limited range: they must reach the output
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 1, 1, 1, 1
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=16000)
            sound.layout = "mono"
            sound.metadata["language"] = "fra"
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        pts = 0
        for i in range(frames):
            rgb = np.stack([(x * 6 + i * 5) % 256, (y * 7 + i * 3) % 256, ((x + y) * 4 + i) % 256], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, TIME_BASE
            pts += 80 if i % 3 == 0 else 40
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = 0
            while samples < pts * 16:
                wave = 0.2 * np.sin(np.arange(samples, samples + 1024) / 7.0).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(wave[None], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, samples
                samples += 1024
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ×2 SRVGGNetCompact with random weights: its output is the nearest-upsampled input plus a
    random residual, so frames keep their content and differ from each other (a random RRDBNet is black)."""
    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=8, num_conv=2, scale=2)
    return save_model(net, tmp_path_factory.mktemp("model") / "tiny_x2.safetensors")


def _frames(path: Path) -> list[tuple[Fraction, np.ndarray]]:
    """(time in seconds, RGB) of every frame, converted as the job converts its inputs."""
    info = probe_video(path)
    whole = plan_segments(info, 1e9)
    assert len(whole) == 1
    return [(pts * info.time_base, rgb) for pts, rgb in decode_segment(info, whole[0])]


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [bytes(p) for p in c.demux(stream) if p.size]


def _check_output(src: Path, dst: Path, model_file: Path) -> None:
    got, want = _frames(dst), _frames(src)
    assert [t for t, _ in got] == [t for t, _ in want]  # every frame, at its own time (VFR kept)
    upscaler = Upscaler(load_model(model_file), tile=0, precision="fp32", device="cpu")
    for (_, out), (_, rgb) in zip(got, want, strict=True):
        reference = upscaler.upscale(rgb)
        assert reference.std() > 20  # a picture, not a flat field: the comparison can fail
        assert out.shape == reference.shape == (rgb.shape[0] * 2, rgb.shape[1] * 2, 3)
        assert psnr(out, reference) >= 40
    src_info, dst_info = probe_video(src), probe_video(dst)
    assert dst_info.display_matrix == src_info.display_matrix is not None
    tags = ("color_primaries", "color_trc", "colorspace", "color_range")
    assert [getattr(dst_info, t) for t in tags] == [getattr(src_info, t) for t in tags] == [1, 1, 1, 1]
    assert _packets(dst, "audio") == _packets(src, "audio")  # copied, not re-encoded
    with av.open(str(dst)) as c:
        assert c.streams.audio[0].metadata.get("language") == "fra"


def test_video_is_upscaled_frame_by_frame_with_timestamps_audio_and_rotation_kept(
    clip: Path, model_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = main(
        ["upscale", str(clip), "-o", str(out), "-m", str(model_file), "--segment-seconds", "0.4", *LOSSLESS]
    )
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == [".esrgan-manifest", "clip_out.mp4"]  # parts removed
    _check_output(clip, out / "clip_out.mp4", model_file)
    assert len(plan_segments(probe_video(clip), 0.4)) > 2  # the test covers joins


def test_matroska_and_webm_keep_the_timestamps(clip: Path, model_file: Path, tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mkv", container="matroska", frames=20)
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-o", str(out), "-m", str(model_file), *LOSSLESS]) == EXIT_OK
    _check_output(src, out / "clip_out.mkv", model_file)
    webm = ["--ext", "webm", "--codec", "libvpx-vp9", "--preset", "good", "-q"]
    src = make_video(tmp_path / "silent.mp4", frames=12, audio=False)
    assert main(["upscale", str(src), "-o", str(out), "-m", str(model_file), *webm]) == EXIT_OK
    got, want = _frames(out / "silent_out.webm"), _frames(src)
    assert [t for t, _ in got] == [t for t, _ in want]


def test_a_rerun_skips_the_finished_video_and_other_settings_are_named(
    clip: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    args = ["upscale", str(clip), "-o", str(out), "-m", str(model_file), *LOSSLESS]
    assert main(args) == EXIT_OK
    capsys.readouterr()
    assert main(args) == EXIT_OK
    assert "0 upscaled, 1 done earlier" in capsys.readouterr().out
    assert main([*args, "--crf", "4"]) == EXIT_OK
    assert "crf=4" in capsys.readouterr().err  # skipped: made with other settings, which are named


def test_a_killed_job_resumes_from_its_finished_segments(
    clip: Path, model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    args = [
        "upscale",
        str(clip),
        "-o",
        str(out),
        "-m",
        str(model_file),
        "--segment-seconds",
        "0.4",
        *LOSSLESS,
    ]
    slow = (
        "import sys, time\n"
        "from esrgan.inference.upscaler import Upscaler\n"
        "real = Upscaler.upscale\n"
        "Upscaler.upscale = lambda self, x: (time.sleep(0.15), real(self, x))[1]\n"
        "from esrgan.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slow], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    parts: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        parts = [p for p in (out / video_job.PARTS_DIR).glob("*/part-*.bin")]
        if len(parts) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "clip_out.mp4").exists()  # nothing under the final name

    made = []
    real = video_job._make_part
    monkeypatch.setattr(
        video_job, "_make_part", lambda up, v, s, adv: (made.append(s.index), real(up, v, s, adv))
    )
    assert main(args) == EXIT_OK
    segments = plan_segments(probe_video(clip), 0.4)
    assert len(parts) <= len(segments) - len(made)  # the finished parts were not made again
    assert made and sorted(made) == made
    _check_output(clip, out / "clip_out.mp4", model_file)
    assert not (out / video_job.PARTS_DIR).exists()


def test_two_shards_make_the_same_video_as_one_process(clip: Path, model_file: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["-m", str(model_file), "--segment-seconds", "0.4", *LOSSLESS]
    assert main(["upscale", str(clip), "-o", str(one), *common]) == EXIT_OK
    assert main(["upscale", str(clip), "-o", str(two), "--shard", "0/2", *common]) == EXIT_OK
    assert not (two / "clip_out.mp4").exists()  # its other segments belong to shard 1
    assert main(["upscale", str(clip), "-o", str(two), "--shard", "1/2", *common]) == EXIT_OK
    for (t1, f1), (t2, f2) in zip(_frames(one / "clip_out.mp4"), _frames(two / "clip_out.mp4"), strict=True):
        assert t1 == t2
        np.testing.assert_array_equal(f1, f2)


def test_bad_videos_give_one_clear_line_and_no_output(
    clip: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.mp4").write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    (bad / "noise.mkv").write_bytes(np.random.default_rng(0).bytes(5000))
    make_video(tmp_path / "whole.mkv", container="matroska", frames=24)
    data = (tmp_path / "whole.mkv").read_bytes()
    (bad / "cut.mkv").write_bytes(data[: int(len(data) * 0.6)])
    with av.open(str(bad / "sound.mp4"), "w") as c:  # audio only
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    out = tmp_path / "out"
    assert main(["upscale", str(bad), "-o", str(out), "-m", str(model_file), "-q"]) == EXIT_SOME_FAILED
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("failed")]
    assert len(lines) == 4 and "Traceback" not in err
    assert "sound.mp4: no video stream" in err
    assert "cut.mkv" in err and "truncated" in err
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []


def test_truncated_matroska_is_detected_by_its_declared_duration(tmp_path: Path) -> None:
    make_video(tmp_path / "whole.mkv", container="matroska", frames=30)
    data = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: int(len(data) * 0.6)])
    assert probe_video(tmp_path / "whole.mkv").frame_count == 30
    with pytest.raises(VideoError, match="truncated"):
        probe_video(tmp_path / "cut.mkv")


def test_segments_start_at_keyframes_and_cover_every_frame_once(clip: Path) -> None:
    info = probe_video(clip)
    assert info.frame_count == 36 and info.keyframe_pts[0] == info.frame_pts[0]
    for seconds in (0.01, 0.4, 1.0, 100):
        segments = plan_segments(info, seconds)
        assert sum(s.frames for s in segments) == info.frame_count
        assert all(s.start in info.keyframe_pts for s in segments)
        assert all(a.end == b.start for a, b in zip(segments, segments[1:], strict=False))
        for a in segments[:-1]:
            assert float((a.end - a.start) * info.time_base) >= seconds - 1e-9
    assert len(plan_segments(info, 0.01)) == len(info.keyframe_pts)
    frames = [pts for s in plan_segments(info, 0.4) for pts, _ in decode_segment(info, s)]
    assert frames == list(info.frame_pts)


def test_video_output_names_and_settings_are_checked_before_any_work(
    clip: Path, model_file: Path, tmp_path: Path
) -> None:
    assert output_path(Path("a/clip.avi"), tmp_path, "out").name == "clip_out.mkv"  # AVI cannot hold VFR
    assert output_path(Path("clip.mov"), tmp_path, "x").name == "clip_x.mov"
    with pytest.raises(EsrganError, match="cannot write videos as '.png'"):
        output_path(Path("clip.mp4"), tmp_path, "out", "png")
    out = tmp_path / "out"
    base = ["upscale", str(clip), "-o", str(out), "-m", str(model_file), "-q"]
    assert main([*base, "--codec", "nonexistent"]) == EXIT_SOME_FAILED
    assert main([*base, "--outscale", "1.1"]) == EXIT_SOME_FAILED  # 44×35: 4:2:0 needs even sizes
    assert main([*base, "--bitrate", "fast"]) == EXIT_ERROR
    assert main([*base, "--ext", "webm"]) == EXIT_SOME_FAILED  # WebM cannot hold the AAC track
    assert not (out / video_job.PARTS_DIR).exists()  # refused before any frame was upscaled
    assert not out.exists() or [p.name for p in out.iterdir() if not p.name.startswith(".")] == []


def test_odd_frame_sizes_are_refused_with_the_way_out(clip: Path, model_file: Path, tmp_path: Path) -> None:
    up = Upscaler(load_model(model_file), outscale=1.1, device="cpu")
    summary = video_job.upscale_videos(up, [clip], tmp_path, progress=False)
    assert summary.failed and "needs even sizes" in summary.failed[0][1] and "yuv444p" in summary.failed[0][1]


def test_ten_bit_video_stays_ten_bit(model_file: Path, tmp_path: Path) -> None:
    src = tmp_path / "ten.mkv"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "4"})
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p10le"
        y, x = np.mgrid[0:32, 0:48]
        for i in range(8):
            rgb = np.stack([(x * 1300 + i * 500) % 65536, (y * 1700) % 65536, ((x + y) * 900) % 65536], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint16), format="rgb48le")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe_video(src)
    assert info.bit_depth == 10
    assert VideoEncoding().resolved(info, ".mkv").pix_fmt == "yuv420p10le"  # the default for libx264
    assert VideoEncoding(codec="libvpx-vp9").resolved(info, ".webm").pix_fmt == "yuv420p"  # VP9 here: 8-bit
    out_dir = tmp_path / "out"
    near_lossless = ["--crf", "0", "--pix-fmt", "yuv444p10le", "--precision", "fp32", "-q"]
    assert main(["upscale", str(src), "-o", str(out_dir), "-m", str(model_file), *near_lossless]) == EXIT_OK
    dst = out_dir / "ten_out.mkv"
    assert probe_video(dst).bit_depth == 10
    upscaler = Upscaler(load_model(model_file), tile=0, precision="fp32", device="cpu")
    for (_, got), (_, rgb) in zip(_frames(dst), _frames(src), strict=True):
        assert got.dtype == rgb.dtype == np.uint16
        reference = upscaler.upscale(rgb)
        assert reference.std() > 5000
        mse = np.mean((got.astype(np.float64) - reference.astype(np.float64)) ** 2)
        assert 10 * np.log10(65535**2 / mse) >= 40
