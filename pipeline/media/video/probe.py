"""What a video file holds, learned before any frame is processed: streams, size, rotation, timing, colour."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import InputError
from pipeline.media.video.frames import normal_rotation


@dataclass(frozen=True)
class VideoInfo:
    """What the input is, as far as the output must reproduce it. Sizes are the upright (display) ones."""

    container: str
    codec: str
    width: int
    height: int
    rotation: int  # degrees counter-clockwise that turn the coded picture upright; a multiple of 90
    time_base: Fraction
    average_rate: Fraction | None
    frame_count: int | None  # as the container declares it; None when it does not say
    duration_s: float | None
    audio_codecs: tuple[str, ...]
    dropped_streams: tuple[str, ...]  # "data:1", "subtitle:3", ... streams that will not be carried over
    colorspace: int = 0  # FFmpeg AVColorSpace of the first frame (0 or 2: unspecified)
    color_range: int = 0  # FFmpeg AVColorRange: 1 limited (TV), 2 full (PC); 0 unspecified


def open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot open as a video: {type(exc).__name__}") from exc


def probe_video(path: Path) -> VideoInfo:
    """Open ``path``, check it holds a decodable video stream, and describe it. Raises InputError."""
    with open_input(path) as container:
        if not container.streams.video:
            raise InputError("no video stream")
        video = container.streams.video[0]
        rotation = 0
        try:
            first = next(container.decode(video), None)
        except av.error.FFmpegError as exc:
            raise InputError(f"first video frame does not decode: {type(exc).__name__}") from exc
        if first is None:
            raise InputError("video stream has no decodable frame")
        rotation = normal_rotation(first.rotation)
        if rotation % 90:
            raise InputError(f"display rotation {first.rotation} is not a multiple of 90 degrees")
        coded_w, coded_h = first.width, first.height
        width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
        dropped = tuple(
            f"{s.type}:{s.index}"
            for s in container.streams
            if s is not video and (s.type != "audio" or s.codec_context is None)
        )
        duration_s = None
        if video.duration is not None and video.time_base is not None:
            duration_s = float(video.duration * video.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        return VideoInfo(
            container=container.format.name,
            codec=video.codec_context.name,
            width=width,
            height=height,
            rotation=rotation,
            time_base=video.time_base or Fraction(1, 90000),
            average_rate=video.average_rate or video.guessed_rate,
            frame_count=video.frames or None,
            duration_s=duration_s,
            audio_codecs=tuple(s.codec_context.name for s in container.streams.audio if s.codec_context is not None),
            dropped_streams=dropped,
            colorspace=int(first.colorspace or 0),
            color_range=int(first.color_range or 0),
        )
