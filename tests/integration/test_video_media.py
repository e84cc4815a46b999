"""The media layer on real files: containers and codecs, timestamps, rotation, audio remux, stripping.

Inputs are made here with the ffmpeg CLI (fixtures only); the outputs go through Veil's PyAV code and are
checked with ffprobe.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.media.video import VideoReader, probe_video, transcode
from pipeline.params import VideoParams

from tests.integration.pattern_clips import ffmpeg, pattern

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg") or not shutil.which("ffprobe"), reason="needs ffmpeg/ffprobe")

SRC = pattern("160x120")
TONE = ["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100"]


def ffprobe(path: Path, count: str = "frames") -> dict:
    """ffprobe's format and streams; ``count``: "frames" decodes every frame (``nb_read_frames``), "packets"
    only reads them (``nb_read_packets``, quick on long clips)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", f"-count_{count}", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def video_stream(probe: dict) -> dict:
    return next(s for s in probe["streams"] if s["codec_type"] == "video")


def frame_times(path: Path) -> list[str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.split() if line]


def passthrough(frame):
    return [] if frame is None else [frame]


def copy(src: Path, dst: Path, **params) -> object:
    return transcode(src, dst, probe_video(src), VideoParams(**params), passthrough)


def audio_packet_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.size:
                digest.update(bytes(packet))
    return digest.hexdigest()


CASES = [
    # name, ffmpeg arguments (after the sources), has audio
    ("h264.mp4", [*SRC, *TONE, "-t", "0.8", "-c:v", "libx264", "-c:a", "aac"], True),
    ("h264.m4v", [*SRC, *TONE, "-t", "0.8", "-c:v", "libx264", "-c:a", "aac"], True),
    ("mpeg4.mov", [*SRC, *TONE, "-t", "0.8", "-c:v", "mpeg4", "-c:a", "pcm_s16le"], True),
    ("hevc.mkv", [*SRC, *TONE, "-t", "0.8", "-c:v", "libx265", "-x265-params", "log-level=error", "-c:a", "libmp3lame"], True),
    ("mjpeg.avi", [*SRC, *TONE, "-t", "0.8", "-c:v", "mjpeg", "-q:v", "3", "-c:a", "pcm_s16le"], True),
    ("silent.mp4", [*SRC, "-t", "0.8", "-c:v", "libx264"], False),
]


@pytest.mark.parametrize("name, args, has_audio", CASES, ids=[c[0] for c in CASES])
def test_containers_and_codecs_keep_frames_duration_and_audio(tmp_path, name, args, has_audio):
    src, dst = tmp_path / name, tmp_path / "out" / name
    dst.parent.mkdir()
    ffmpeg(*args, str(src))
    result = copy(src, dst)
    before, after = ffprobe(src), ffprobe(dst)
    assert after["format"]["format_name"] == before["format"]["format_name"]  # same container family
    # 4:2:0 H.264; a full-range (JPEG) source stays full range, which ffprobe names yuvj420p.
    assert video_stream(after)["codec_name"] == "h264"
    assert video_stream(after)["pix_fmt"] == ("yuvj420p" if name.startswith("mjpeg") else "yuv420p")
    assert int(video_stream(after)["nb_read_frames"]) == int(video_stream(before)["nb_read_frames"]) == result.frames_written
    assert float(after["format"]["duration"]) == pytest.approx(float(before["format"]["duration"]), abs=0.03)
    audio = [s for s in after["streams"] if s["codec_type"] == "audio"]
    assert len(audio) == int(has_audio)
    if has_audio:
        assert audio[0]["codec_name"] == next(s for s in before["streams"] if s["codec_type"] == "audio")["codec_name"]
        assert audio_packet_digest(dst) == audio_packet_digest(src)  # remuxed, not re-encoded


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    src, dst = tmp_path / "vfr.mkv", tmp_path / "out.mkv"
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21]  # irregular gaps, in 1/30 s
    with av.open(str(src), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for value in pts:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), value * 10, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = value, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    copy(src, dst)
    assert frame_times(dst) == frame_times(src)
    assert len(frame_times(dst)) == len(pts)


def test_display_rotation_is_kept_and_frames_come_upright(tmp_path):
    src, dst = tmp_path / "rot.mp4", tmp_path / "out.mp4"
    coded = np.zeros((48, 64, 3), dtype=np.uint8)
    coded[:8, :8] = 255  # a white corner at the coded top-left
    with av.open(str(src), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # shown turned 90 degrees counter-clockwise
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(coded, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe_video(src)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    with VideoReader(src) as reader:
        first = next(reader.frames())
    assert first.rgb.shape == (64, 48, 3)
    assert first.rgb[-4:, :4].mean() > 200  # counter-clockwise: the coded top-left ends bottom-left
    copy(src, dst)
    assert probe_video(dst).rotation == 90
    stream = video_stream(ffprobe(dst))
    assert (stream["width"], stream["height"]) == (64, 48)  # stored as coded, with the display matrix
    with VideoReader(dst) as reader:
        assert next(reader.frames()).rgb[-4:, :4].mean() > 200


def test_data_subtitle_attachment_streams_and_identifying_metadata_are_dropped(tmp_path):
    (tmp_path / "s.srt").write_text("1\n00:00:00,000 --> 00:00:00,500\nJohn Doe, 12 Main St\n")
    (tmp_path / "track.gpx").write_text("<gpx>48.85,2.35</gpx>")
    mkv, mov = tmp_path / "subs.mkv", tmp_path / "tmcd.mov"
    ffmpeg(*SRC, *TONE, "-i", str(tmp_path / "s.srt"), "-t", "0.8", "-map", "0", "-map", "1", "-map", "2",
           "-c:v", "libx264", "-c:a", "aac", "-c:s", "srt", "-attach", str(tmp_path / "track.gpx"),
           "-metadata:s:t", "mimetype=application/gpx+xml", "-metadata", "title=John's phone",
           "-metadata", "location=+48.85+002.35/", str(mkv))
    ffmpeg(*SRC, *TONE, "-t", "0.8", "-c:v", "libx264", "-c:a", "aac", "-timecode", "01:00:00:00",
           "-metadata", "location=+48.85+002.35/", "-metadata", "make=Apple", "-metadata", "model=iPhone 15",
           "-metadata:s:a", "handler_name=John's recorder", "-metadata:s:a", "language=fra", str(mov))
    for src in (mkv, mov):
        before = ffprobe(src)
        assert {s["codec_type"] for s in before["streams"]} - {"video", "audio"}  # the fixture has extras
        dst = tmp_path / "out" / src.name
        dst.parent.mkdir(exist_ok=True)
        copy(src, dst)
        after = ffprobe(dst)
        assert [s["codec_type"] for s in after["streams"]] == ["video", "audio"]
        text = json.dumps(after).lower()
        for secret in ("48.85", "apple", "iphone", "john", "main st", "gpx"):
            assert secret not in text
    assert next(s for s in after["streams"] if s["codec_type"] == "audio")["tags"].get("language") == "fra"


def write_clip(path: Path, frames: list[np.ndarray], fmt: str, *, pix_fmt="yuv420p", crf="8") -> None:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": crf})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def natural_frames(count: int, height=240, width=320) -> list[np.ndarray]:
    """Smooth, photo-like texture panning slowly (synthetic test patterns are far harsher than footage)."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (height + 40, width + 40, 3)).astype(np.uint8)
    base = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 5), None, 0, 255, cv2.NORM_MINMAX)
    return [np.ascontiguousarray(base[i * 2 : i * 2 + height, i * 3 : i * 3 + width]) for i in range(count)]


def test_default_quality_does_not_visibly_degrade(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, natural_frames(10), "mp4")
    copy(src, dst)
    with VideoReader(src) as a, VideoReader(dst) as b:
        pairs = list(zip(a.frames(), b.frames()))
    assert len(pairs) == 10
    luma = np.array([0.299, 0.587, 0.114])
    for fa, fb in pairs:
        diff = fa.rgb.astype(float) - fb.rgb.astype(float)
        assert abs(diff.mean()) < 0.3  # no level shift from the colour conversions
        y_diff = diff @ luma
        assert 10 * np.log10(255**2 / max(np.mean(y_diff**2), 1e-9)) > 42  # luma PSNR in dB: visually lossless


def test_codec_and_quality_are_configurable(tmp_path):
    src = tmp_path / "in.mkv"
    ffmpeg(*SRC, "-t", "0.4", "-c:v", "libx264", str(src))
    hevc, small = tmp_path / "hevc" / "in.mkv", tmp_path / "small" / "in.mkv"
    hevc.parent.mkdir(), small.parent.mkdir()
    copy(src, hevc, codec="hevc", preset="ultrafast")
    copy(src, small, crf=40)
    assert video_stream(ffprobe(hevc))["codec_name"] == "hevc"
    default = tmp_path / "default" / "in.mkv"
    default.parent.mkdir()
    copy(src, default)
    assert small.stat().st_size < default.stat().st_size


def test_x264_encodes_with_frame_threads_as_ffmpeg_does(tmp_path):
    """x264 writes its settings into the stream: Veil's default encode runs frame threads, not the sliced
    threads PyAV's default thread type would give it (they scale poorly past a few cores)."""
    src, dst = tmp_path / "in.mkv", tmp_path / "out" / "in.mkv"
    ffmpeg(*pattern("640x480"), "-t", "0.4", "-c:v", "libx264", str(src))
    dst.parent.mkdir()
    copy(src, dst)
    settings = dst.read_bytes()
    assert b"x264 - core" in settings
    assert b"sliced_threads=0" in settings and b"sliced_threads=1" not in settings


def test_odd_frame_size_still_encodes(tmp_path):
    src, dst = tmp_path / "odd.mkv", tmp_path / "out.mkv"
    write_clip(src, [f[:121, :161] for f in natural_frames(5)], "matroska", pix_fmt="yuv444p")
    result = copy(src, dst)
    stream = video_stream(ffprobe(dst))
    assert (stream["width"], stream["height"], result.frames_written) == (161, 121, 5)
    assert not result.decode_log.warnings


def test_damaged_frame_mid_stream_is_reported(tmp_path):
    src, dst = tmp_path / "in.avi", tmp_path / "out.avi"
    ffmpeg(*SRC, "-t", "0.8", "-c:v", "mjpeg", "-q:v", "3", str(src))
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(400)  # zero out part of a JPEG frame in the middle
    src.write_bytes(bytes(data))
    result = copy(src, dst)
    log = result.decode_log
    assert log.warnings and (log.corrupt_frames or log.undecodable_packets)
    assert result.frames_written == result.frames_decoded


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_unreadable_input_is_an_input_error(tmp_path, content):
    src = tmp_path / "bad.mp4"
    src.write_bytes(content)
    with pytest.raises(InputError):
        probe_video(src)


def test_audio_streams_are_left_out_when_asked(tmp_path):
    src, dst = tmp_path / "two.mkv", tmp_path / "out.mkv"
    ffmpeg(*SRC, *TONE, *TONE, "-t", "0.8", "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264",
           "-c:a", "flac", str(src))
    result = copy(src, dst, audio="drop")
    assert result.audio_codecs == () and result.dropped_audio == ("audio:1", "audio:2")
    assert [s["codec_type"] for s in ffprobe(dst)["streams"]] == ["video"]
    assert int(video_stream(ffprobe(dst))["nb_read_frames"]) == int(video_stream(ffprobe(src))["nb_read_frames"])
