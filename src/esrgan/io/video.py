"""Video files with PyAV (the optional extra ``video``): probing, decoding a segment to RGB arrays, encoding
frames into a part file, and joining the parts with the source's other streams into the final file.

Decisions:

- A video is cut into segments at keyframes (`plan_segments`), at least `seconds` long each. A segment owns
  the frames whose presentation timestamps lie in ``[start, end)``; it is decoded after a seek to its own
  keyframe, so segments are independent and can run in any order, in any process.
- Each segment is encoded on its own into a part file (the encoder's packets as they are, `PartEncoder`)
  that starts with a keyframe; `join_parts` copies the parts' packets one after the other into the final
  container, so joining never re-encodes. Frames keep their source timestamps (pts), variable frame rate
  included, so the parts need no retiming.
- Audio, subtitle and data streams are copied packet for packet from the source (`join_parts`), interleaved
  with the video by time. A stream the output container cannot hold is an error that suggests ``.mkv``.
- Pixels: each frame is converted to RGB (8-bit, or 16-bit for sources above 8 bits) with the source's own
  matrix and range, and back with the same ones, so colours are not shifted. Primaries, transfer, matrix,
  range and the display matrix (rotation, flips) are copied to the output; the frames themselves stay as
  stored (not rotated).
- Errors a user can cause (no video stream, a truncated or corrupt file, an unknown codec, a container that
  cannot hold a stream) raise `VideoError` with one clear line.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from esrgan.errors import EsrganError

__all__ = [
    "CONTAINER_FORMATS",
    "DEFAULT_VIDEO_EXT",
    "VIDEO_EXTENSIONS",
    "PartEncoder",
    "Segment",
    "VideoEncoding",
    "VideoError",
    "VideoInfo",
    "check_container",
    "decode_segment",
    "import_av",
    "is_video_name",
    "join_parts",
    "plan_segments",
    "probe_video",
]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".mov", ".webm", ".avi"})
# What is written, as PyAV container formats. Not AVI: it cannot hold variable frame rates, B-frame
# timestamps or rotation, so AVI sources are written as Matroska (`DEFAULT_VIDEO_EXT`).
CONTAINER_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
DEFAULT_VIDEO_EXT = ".mkv"
# the default video codec of each container (webm holds only VP8/VP9/AV1)
DEFAULT_CODECS = {".webm": "libvpx-vp9"}
DEFAULT_CODEC = "libx264"
# Matroska stores no decode times, so the encoder's negative ones (B-frames) need no shift; by default the
# muxer would shift every timestamp to make them non-negative, moving the whole video later.
_MUXER_OPTIONS = {"matroska": {"avoid_negative_ts": "disabled"}, "webm": {"avoid_negative_ts": "disabled"}}
# quality defaults per codec: CRF (constant quality) on each codec's own scale
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libsvtav1": 28}
_SIDE_DATA_DISPLAYMATRIX = "DISPLAYMATRIX"


class VideoError(EsrganError):
    """A video that cannot be read, encoded or written."""


def import_av() -> Any:
    """PyAV, or a `VideoError` that says how to install it."""
    try:
        import av
    except ImportError:
        raise VideoError(
            "video needs PyAV, which is not installed; install the extra: pip install 'esrgan[video]'"
        ) from None
    return av


def is_video_name(path: Path) -> bool:
    """A video by its extension, and not hidden."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


# --------------------------------------------------------------------------------------------------
# probing


@dataclass(frozen=True)
class VideoInfo:
    """What the job needs to know about a source video, from one pass over its packets (no decoding but
    the first frame)."""

    path: Path
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction
    frame_pts: tuple[int, ...]  # presentation timestamps of every frame, sorted
    keyframe_pts: tuple[int, ...]  # of the keyframes, sorted
    average_rate: Fraction | None
    display_matrix: tuple[int, ...] | None  # 9 int32s (FFmpeg's layout), None when not set
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    other_streams: tuple[str, ...]  # "audio aac", "subtitle mov_text", ... copied as they are

    @property
    def frame_count(self) -> int:
        return len(self.frame_pts)

    @property
    def duration_seconds(self) -> float:
        if len(self.frame_pts) < 2:
            return 0.0
        step = self.frame_pts[-1] - self.frame_pts[-2]
        return float((self.frame_pts[-1] + step - self.frame_pts[0]) * self.time_base)


def probe_video(path: str | Path) -> VideoInfo:
    """Read `path`'s video stream: size, pixel format, colour tags, rotation, and every frame's and
    keyframe's timestamp (by demuxing, which reads the file once without decoding it)."""
    av = import_av()
    path = Path(path)
    with _opened(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream in this file")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx.codec is None or not ctx.codec.name:
            raise VideoError(f"{path}: the video codec is not supported by this FFmpeg build")
        first = _first_frame(container, stream, path)
        others = tuple(
            f"{s.type} {s.codec_context.name if s.codec_context else '?'}"
            for s in container.streams
            if s.index != stream.index and s.type in ("audio", "subtitle", "data")
        )
        declared = _declared_duration(container, stream)
        container.seek(0)
        frame_pts: list[int] = []
        keyframe_pts: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                frame_pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframe_pts.append(packet.pts)
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: the file is corrupt or truncated ({_reason(e)})") from None
    if not frame_pts:
        raise VideoError(f"{path}: the video stream holds no frames")
    frame_pts.sort()
    _check_complete(path, frame_pts, declared, Fraction(stream.time_base))
    keyframe_pts.sort()
    if not keyframe_pts or keyframe_pts[0] != frame_pts[0]:
        keyframe_pts.insert(0, frame_pts[0])  # decoding from the start always works
    fmt = av.VideoFormat(first.format.name)
    return VideoInfo(
        path=path,
        codec=ctx.codec.name,
        width=first.width,
        height=first.height,
        pix_fmt=first.format.name,
        bit_depth=max(c.bits for c in fmt.components),
        time_base=Fraction(stream.time_base),
        frame_pts=tuple(frame_pts),
        keyframe_pts=tuple(keyframe_pts),
        average_rate=Fraction(stream.average_rate) if stream.average_rate else None,
        display_matrix=_display_matrix(first),
        colorspace=int(first.colorspace),
        color_range=int(first.color_range),
        color_primaries=int(first.color_primaries),
        color_trc=int(first.color_trc),
        other_streams=others,
    )


def _declared_duration(container: Any, stream: Any) -> tuple[float, float] | None:
    """(seconds, tolerance) the file says its video lasts: the stream's duration, Matroska's DURATION tag,
    or, more loosely (other streams may be longer), the container's."""
    if stream.duration:
        return float(stream.duration * stream.time_base), 0.1
    tag = stream.metadata.get("DURATION")
    if tag:
        with contextlib.suppress(ValueError):
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds), 0.1
    if container.duration:
        return container.duration / 1_000_000, 1.0
    return None


def _check_complete(
    path: Path, frame_pts: list[int], declared: tuple[float, float] | None, tb: Fraction
) -> None:
    """`VideoError` when the frames end well before the duration the file declares: a truncated file, which
    demuxes without an error in some containers (Matroska)."""
    if declared is None:
        return
    step = frame_pts[-1] - frame_pts[-2] if len(frame_pts) > 1 else 0
    found = float((frame_pts[-1] + step - frame_pts[0]) * tb)
    seconds, tolerance = declared
    if seconds - found > max(tolerance, 2 * float(step * tb)):
        raise VideoError(
            f"{path}: the file is truncated: its frames end after {found:.2f} s of the {seconds:.2f} s it "
            "declares"
        )


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    av = import_av()
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise VideoError(f"{path}: no such file") from None
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video file FFmpeg can read ({_reason(e)})") from None
    try:
        yield container
    finally:
        container.close()


def _first_frame(container: Any, stream: Any, path: Path) -> Any:
    av = import_av()
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: the video cannot be decoded ({_reason(e)})") from None
    raise VideoError(f"{path}: the video stream holds no decodable frame")


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    for side in frame.side_data:
        if _SIDE_DATA_DISPLAYMATRIX in str(side.type):
            data = bytes(side)
            if len(data) == 36:
                return struct.unpack("<9i", data)
    return None


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


# --------------------------------------------------------------------------------------------------
# segments


@dataclass(frozen=True)
class Segment:
    """Frames with ``start <= pts < end`` (``end`` None: to the end) of a video; `start` is a keyframe."""

    index: int
    start: int
    end: int | None
    frames: int


def plan_segments(info: VideoInfo, seconds: float) -> list[Segment]:
    """Cut `info`'s video at keyframes into segments of at least `seconds` (the last may be shorter)."""
    if not seconds > 0:
        raise ValueError(f"segment length must be positive, got {seconds}")
    min_ticks = seconds / info.time_base
    starts = [info.keyframe_pts[0]]
    for k in info.keyframe_pts[1:]:
        if k - starts[-1] >= min_ticks:
            starts.append(k)
    pts = np.asarray(info.frame_pts)
    segments = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        count = int(np.count_nonzero((pts >= start) & (pts < end if end is not None else True)))
        segments.append(Segment(i, start, end, count))
    return segments


def decode_segment(info: VideoInfo, segment: Segment) -> Iterator[tuple[int, np.ndarray]]:
    """``(pts, H×W×3 RGB array)`` of each frame of `segment`, in presentation order: uint8, or uint16 for
    sources above 8 bits. Raises `VideoError` when the segment does not decode to exactly its frames (a
    corrupt or truncated file)."""
    av = import_av()
    rgb = "rgb48le" if info.bit_depth > 8 else "rgb24"
    matrix, color_range = _color_args(info)
    expected = info.frame_pts[
        np.searchsorted(info.frame_pts, segment.start) : (
            np.searchsorted(info.frame_pts, segment.end) if segment.end is not None else None
        )
    ]
    got = 0
    with _opened(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            container.seek(segment.start, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts < segment.start:
                    continue  # before the segment (a seek lands on or before its keyframe)
                if segment.end is not None and frame.pts >= segment.end:
                    break
                if got >= len(expected) or frame.pts != expected[got]:
                    raise VideoError(
                        f"{info.path}: frame at pts {frame.pts} was not expected; the file is corrupt"
                    )
                got += 1
                yield frame.pts, _to_rgb(frame, rgb, matrix, color_range)
        except av.error.FFmpegError as e:
            raise VideoError(f"{info.path}: the video is corrupt or truncated ({_reason(e)})") from None
    if got != len(expected):
        raise VideoError(
            f"{info.path}: {got} of the {len(expected)} frames from pts {segment.start} could be decoded; "
            "the file is corrupt or truncated"
        )


def _color_args(info: VideoInfo) -> tuple[int, int]:
    """(matrix, range) for converting this video's frames: as tagged, else what players assume (BT.709 for
    HD, BT.601 below; limited range)."""
    unspecified_matrix = 2
    matrix = info.colorspace
    if matrix == unspecified_matrix or matrix == 0:
        matrix = 1 if info.height >= 720 else 6  # AVCOL_SPC_BT709 / SMPTE170M (BT.601)
    color_range = info.color_range if info.color_range in (1, 2) else 1  # MPEG (limited)
    return matrix, color_range


def _to_rgb(frame: Any, rgb: str, matrix: int, color_range: int) -> np.ndarray:
    out = frame.reformat(
        format=rgb,
        src_colorspace=matrix,
        dst_colorspace=matrix,
        src_color_range=color_range,
        dst_color_range=2,  # RGB is full range
    )
    return out.to_ndarray()


# --------------------------------------------------------------------------------------------------
# encoding


@dataclass(frozen=True)
class VideoEncoding:
    """How the upscaled video is encoded: `codec` (an FFmpeg encoder name), `crf` or `bitrate` (bits per
    second; one of them), `preset` (for encoders that have one) and `pix_fmt`. None: the defaults (H.264
    CRF 18, or VP9 for .webm; the source's bit depth where the codec has it, else 8-bit 4:2:0)."""

    codec: str | None = None
    crf: float | None = None
    bitrate: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None

    def resolved(self, info: VideoInfo, ext: str) -> VideoEncoding:
        """These settings with every default filled in for `info` written as `ext`; `VideoError` for an
        unknown codec or a pixel format it cannot encode."""
        av = import_av()
        codec = self.codec or DEFAULT_CODECS.get(ext.lower(), DEFAULT_CODEC)
        try:
            encoder = av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - PyAV raises several kinds for an unknown name
            raise VideoError(f"unknown video encoder {codec!r}; try libx264, libx265, libvpx-vp9") from None
        if encoder.type != "video":
            raise VideoError(f"{codec!r} is not a video encoder")
        formats = [f.name for f in encoder.video_formats or []]
        pix_fmt = self.pix_fmt
        if pix_fmt is None:
            deep = "yuv420p10le" if info.bit_depth > 8 else None
            pix_fmt = deep if deep in formats else "yuv420p"
            if info.bit_depth > 8 and deep not in formats:
                logger.warning("%s cannot encode %d-bit video; the output is 8-bit", codec, info.bit_depth)
        if formats and pix_fmt not in formats:
            raise VideoError(f"{codec} cannot encode pixel format {pix_fmt}; it takes: {', '.join(formats)}")
        crf = self.crf
        if crf is None and self.bitrate is None:
            crf = DEFAULT_CRF.get(codec)
        preset = self.preset
        if preset is None and codec in ("libx264", "libx265"):
            preset = "medium"
        return VideoEncoding(codec=codec, crf=crf, bitrate=self.bitrate, preset=preset, pix_fmt=pix_fmt)

    def describe(self) -> str:
        parts = [f"codec={self.codec}", f"pix_fmt={self.pix_fmt}"]
        if self.crf is not None:
            parts.append(f"crf={self.crf:g}")
        if self.bitrate is not None:
            parts.append(f"bitrate={self.bitrate}")
        if self.preset is not None:
            parts.append(f"preset={self.preset}")
        return " ".join(parts)

    def options(self) -> dict[str, str]:
        """Encoder options for FFmpeg."""
        opts: dict[str, str] = {}
        if self.crf is not None:
            opts["crf"] = f"{self.crf:g}"
            if self.codec == "libvpx-vp9":
                opts["b"] = "0"  # constant quality mode
        if self.preset is not None:
            opts["preset"] = self.preset
        return opts


class PartEncoder:
    """Encodes the upscaled RGB frames of one segment into a part file, with the source's timestamps and
    colour tags: ``with PartEncoder(f, info, encoding, width, height) as enc: enc.encode(pts, rgb)``.

    A part file is the encoder's packets as they come (pts, dts, keyframe flag, data) after a JSON header,
    not a container: containers shift timestamps to avoid negative decode times and some do not store decode
    times at all, while joining needs the packets exactly as encoded."""

    def __init__(self, file: BinaryIO, info: VideoInfo, encoding: VideoEncoding, width: int, height: int):
        self._file = file
        self._info = info
        self._matrix, self._range = _color_args(info)
        self._pix_fmt = encoding.pix_fmt
        self._ctx = _open_encoder(encoding, info, width, height)
        header = {
            "version": PART_VERSION,
            "codec": encoding.codec,
            "extradata": (self._ctx.extradata or b"").hex(),
        }
        file.write(PART_MAGIC + json.dumps(header).encode() + b"\n")

    def encode(self, pts: int, rgb: np.ndarray) -> None:
        av = import_av()
        fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
        frame = frame.reformat(
            format=self._pix_fmt,
            src_colorspace=self._matrix,
            dst_colorspace=self._matrix,
            src_color_range=2,
            dst_color_range=self._range,
        )
        frame.pts, frame.time_base = pts, self._info.time_base
        self._write(self._ctx.encode(frame))

    def close(self) -> None:
        """Flush the encoder's delayed frames into the file."""
        self._write(self._ctx.encode(None))

    def _write(self, packets: list[Any]) -> None:
        for packet in packets:
            data = bytes(packet)
            dts = _NO_TIMESTAMP if packet.dts is None else packet.dts
            self._file.write(_PACKET.pack(packet.pts, dts, int(packet.is_keyframe), len(data)) + data)

    def __enter__(self) -> PartEncoder:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()


PART_MAGIC = b"ESRGAN-VIDEO-PART\n"
PART_VERSION = 1
_PACKET = struct.Struct("<qqBI")  # pts, dts, keyframe, size
_NO_TIMESTAMP = -(2**63)


def _open_encoder(encoding: VideoEncoding, info: VideoInfo, width: int, height: int) -> Any:
    """An opened encoder for `encoding`; the same settings give the same codec headers (extradata), which is
    how the joined file's video stream matches its parts."""
    av = import_av()
    ctx = av.CodecContext.create(encoding.codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, encoding.pix_fmt
    ctx.time_base = info.time_base
    ctx.framerate = info.average_rate or Fraction(25)
    _configure(ctx, encoding, info)
    try:
        ctx.open()
    except av.error.FFmpegError as e:
        raise VideoError(f"the {encoding.codec} encoder refused these settings ({_reason(e)})") from None
    return ctx


def _configure(ctx: Any, encoding: VideoEncoding, info: VideoInfo) -> None:
    """Settings shared by the part encoders and the joined file's stream."""
    av = import_av()
    ctx.options = encoding.options()
    if encoding.bitrate is not None:
        ctx.bit_rate = encoding.bitrate
    ctx.colorspace, ctx.color_range = _color_args(info)
    ctx.color_primaries, ctx.color_trc = info.color_primaries, info.color_trc
    ctx.flags |= av.codec.context.Flags.global_header  # headers in extradata, for containers that need them


def _read_part(path: Path) -> tuple[dict[str, Any], Iterator[tuple[int, int | None, bool, bytes]]]:
    """A part file's header and its packets ``(pts, dts, keyframe, data)``."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    try:
        if f.read(len(PART_MAGIC)) != PART_MAGIC:
            raise ValueError("no part header")
        header = json.loads(f.readline())
    except (OSError, ValueError) as e:
        f.close()
        raise VideoError(f"{path}: a damaged part file ({e}); delete it and rerun") from None

    def packets() -> Iterator[tuple[int, int | None, bool, bytes]]:
        with f:
            while head := f.read(_PACKET.size):
                pts, dts, key, size = _PACKET.unpack(head) if len(head) == _PACKET.size else (0, 0, 0, -1)
                data = f.read(size) if size >= 0 else b""
                if size < 0 or len(data) != size:
                    raise VideoError(f"{path}: a truncated part file; delete it and rerun")
                yield pts, None if dts == _NO_TIMESTAMP else dts, bool(key), data

    return header, packets()


# --------------------------------------------------------------------------------------------------
# joining


def join_parts(
    parts: list[Path],
    info: VideoInfo,
    encoding: VideoEncoding,
    size: tuple[int, int],
    out: BinaryIO,
    ext: str,
) -> None:
    """Write the final video (`size`: width, height) into `out`, a seekable binary file, as container `ext`:
    the parts' video packets in order, and the source's audio, subtitle and data streams copied packet for
    packet, interleaved by time. Container and stream metadata (language, title) and the display matrix are
    copied. Nothing is re-encoded."""
    av = import_av()
    fmt = CONTAINER_FORMATS[ext.lower()]
    read = [_read_part(p) for p in parts]
    extradata = {header["extradata"] for header, _ in read}
    if len(extradata) != 1:
        raise VideoError(
            f"{info.path}: the parts were encoded with different settings; delete them and rerun"
        )
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(_opened(info.path))
        output, video, copies = _open_output(out, source, info, encoding, size, fmt)
        stack.callback(output.close)
        stored = (p for _, packets in read for p in packets)
        video_packets = (
            (Fraction(p[1] if p[1] is not None else p[0]) * info.time_base, 0, n, p)
            for n, p in enumerate(stored)
        )
        demuxed = source.demux(*[source.streams[i] for i in copies]) if copies else iter(())
        other_packets = (
            (_seconds(pkt), 1, n, pkt) for n, pkt in enumerate(demuxed) if pkt.size and pkt.dts is not None
        )
        last_dts: int | None = None
        try:
            for _, kind, _, item in heapq.merge(video_packets, other_packets, key=lambda t: t[:3]):
                if kind == 1:
                    item.stream = copies[item.stream.index]
                    output.mux(item)
                else:
                    last_dts = _mux_video(output, video, item, last_dts, info)
        except av.error.FFmpegError as e:
            raise VideoError(f"{info.path}: writing the {fmt} file failed ({_reason(e)})") from None
        if (video.codec_context.extradata or b"").hex() not in extradata:
            raise VideoError(f"{info.path}: the encoder's headers differ between the parts and the join")


def check_container(info: VideoInfo, encoding: VideoEncoding, size: tuple[int, int], ext: str) -> None:
    """`VideoError` when container `ext` cannot hold the upscaled video or one of the source's other streams
    (e.g. AAC in WebM): checked by writing the file header into memory, before any frame is upscaled."""
    av = import_av()
    with _opened(info.path) as source:
        output, _, _ = _open_output(
            io.BytesIO(), source, info, encoding, size, CONTAINER_FORMATS[ext.lower()]
        )
        try:
            output.start_encoding()
        except av.error.FFmpegError as e:
            raise VideoError(
                f"{info.path}: a {ext.lstrip('.')} file cannot hold these streams ({_reason(e)}); choose "
                "another container, e.g. --ext mkv"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                output.close()


def _open_output(
    out: BinaryIO, source: Any, info: VideoInfo, encoding: VideoEncoding, size: tuple[int, int], fmt: str
) -> tuple[Any, Any, dict[int, Any]]:
    """The output container with its video stream (the parts' settings) and a copy of each of the source's
    audio, subtitle and data streams (by source stream index), with their metadata and the display matrix."""
    av = import_av()
    output = av.open(out, "w", format=fmt, options=_MUXER_OPTIONS.get(fmt, {}))
    try:
        output.metadata.update(source.metadata)
        video = output.add_stream(encoding.codec, rate=info.average_rate or Fraction(25))
        video.width, video.height = size
        video.pix_fmt = encoding.pix_fmt
        video.time_base = video.codec_context.time_base = info.time_base
        _configure(video.codec_context, encoding, info)
        src_video = source.streams.video[0]
        video.metadata.update(src_video.metadata)
        if info.display_matrix is not None:
            video.set_display_matrix(list(info.display_matrix))
        copies = {}
        for s in source.streams:
            if s.index != src_video.index and s.type in ("audio", "subtitle", "data"):
                copies[s.index] = _add_copy(output, s, fmt, f"the {s.type} stream #{s.index}")
                copies[s.index].metadata.update(s.metadata)
    except BaseException:
        output.close()
        raise
    return output, video, copies


def _mux_video(
    output: Any, stream: Any, item: tuple[int, int | None, bool, bytes], last_dts: int | None, info: VideoInfo
) -> int | None:
    """Mux one stored video packet; returns its decode time. Each part's encoder starts its decode times a
    few frames before its first frame, which with a variable frame rate can fall before the previous part's
    last decode time: such a time moves to one tick after it (never past the packet's own pts)."""
    av = import_av()
    pts, dts, key, data = item
    if dts is not None and last_dts is not None and dts <= last_dts:
        if last_dts + 1 > pts:
            raise VideoError(f"{info.path}: cannot order the decode times of the joined parts")
        dts = last_dts + 1
    packet = av.Packet(data)
    packet.pts, packet.dts, packet.time_base = pts, dts, info.time_base
    packet.is_keyframe = key
    packet.stream = stream
    output.mux(packet)
    return dts if dts is not None else last_dts


def _seconds(packet: Any) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * Fraction(packet.time_base)


def _add_copy(output: Any, stream: Any, fmt: str, what: str) -> Any:
    """A stream of `output` that takes `stream`'s packets as they are."""
    try:
        return output.add_stream_from_template(stream)
    except Exception as e:  # noqa: BLE001 - FFmpeg and PyAV raise several kinds here
        codec = stream.codec_context.name if stream.codec_context else stream.type
        raise VideoError(
            f"a {fmt} file cannot hold {what} ({codec}: {_reason(e)}); choose another container, e.g. "
            "--ext mkv"
        ) from None
