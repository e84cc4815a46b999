"""Decoding: the first video stream as upright RGB frames, one at a time, with FFmpeg's complaints kept.

Audio packets are handed, untouched, to a sink as they are demuxed (the writer remuxes them). Frames come in
presentation order with the decoder's timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.logging
import numpy as np

from pipeline.errors import InputError
from pipeline.media.video.convert import InOrder, conversion_threads
from pipeline.media.video.frames import SWS_FLAGS, DecodedFrame, normal_rotation, upright
from pipeline.media.video.probe import open_input
from pipeline.timing import StageClock

_NO_PIXELS = np.zeros((0, 0, 3), dtype=np.uint8)  # a frame's placeholder until its conversion is done

MAX_KEPT_WARNINGS = 1000  # a wholly broken hour-long file must not fill memory with messages


class _Capped(list):
    """A list that keeps its first MAX_KEPT_WARNINGS items and counts the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def append(self, item: Any) -> None:
        self.total += 1
        if len(self) < MAX_KEPT_WARNINGS:
            super().append(item)


@dataclass
class DecodeLog:
    """Problems met while decoding. Safe to log: positions and FFmpeg messages, never pixels."""

    warnings: _Capped = field(default_factory=_Capped)  # .total counts those past the cap too
    corrupt_frames: _Capped = field(default_factory=_Capped)  # indexes of frames FFmpeg flagged as corrupt
    undecodable_packets: int = 0
    truncated: bool = False


class VideoReader:
    """Streams decoded frames of the first video stream; audio packets go to ``audio_sink`` as they come.

    Use as a context manager. Frames come in presentation order with the decoder's timestamps; a frame
    without one gets the previous timestamp plus one frame duration.
    """

    def __init__(self, path: Path, audio_sink: Callable[[av.Packet], None] | None = None,
                 clock: StageClock | None = None) -> None:
        self._clock = clock or StageClock()  # counts the conversions to RGB ("to_rgb"), summed over their threads
        self._container = open_input(path)
        if not self._container.streams.video:
            self._container.close()
            raise InputError("no video stream")
        self.video = self._container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.audio = [s for s in self._container.streams.audio if s.codec_context is not None]
        self._audio_sink = audio_sink
        self.log = DecodeLog()
        self._rotation: int | None = None
        self._decoder_name = self.video.codec_context.name
        _listen_to_ffmpeg()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self) -> Generator[DecodedFrame, None, None]:
        """Decoded frames in order; their RGB conversions run a few frames ahead on threads (``convert.py``)."""
        converting = InOrder(self._converted, conversion_threads(self.video.width, self.video.height), "rgb")
        try:
            for frame in self._decoded():
                converting.push(frame)
                yield from converting.ready()
            yield from converting.drain()
        finally:
            converting.close()

    def _decoded(self) -> Iterator[tuple[DecodedFrame, av.VideoFrame]]:
        """Each decoded picture with its timestamps and log entries settled, its pixels not yet converted."""
        streams = [self.video, *self.audio] if self._audio_sink else [self.video]
        index = 0
        last_pts: int | None = None
        step = self._frame_step()
        packets = self._container.demux(*streams)
        while True:
            try:
                with av.logging.Capture(local=False) as messages:
                    packet = next(packets)
                self._note(messages, index, decoder=False)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:  # the container itself is cut or damaged here
                self.log.truncated = True
                self.log.warnings.append(f"demuxing stopped after frame {index}: {type(exc).__name__}")
                packet = None
            if packet is None:
                break
            if packet.stream is not self.video:
                if packet.dts is not None and self._audio_sink is not None:
                    self._audio_sink(packet)
                continue
            for frame in self._decode(packet, index):
                decoded = self._stamped(frame, index, last_pts, step)
                last_pts = decoded.pts
                index += 1
                yield decoded, frame
        for frame in self._decode(None, index):  # drain the decoder's delayed frames
            decoded = self._stamped(frame, index, last_pts, step)
            last_pts = decoded.pts
            index += 1
            yield decoded, frame

    def _frame_step(self) -> int:
        rate = self.video.average_rate or self.video.guessed_rate
        tb = self.video.time_base
        if rate and tb:
            return max(1, round(1 / (rate * tb)))
        return 1

    def _note(self, messages: list[tuple[int, str, str]], index: int, *, decoder: bool) -> None:
        """Keep FFmpeg's complaints: errors from anywhere, warnings from the video decoder. Decoders
        conceal damage (a missing JPEG end, a lost slice) and say so only in the log."""
        for level, name, text in messages:
            if level <= av.logging.ERROR or (decoder and level <= av.logging.WARNING and name == self._decoder_name):
                self.log.warnings.append(f"{name} near frame {index}: {text.strip()}"[:200])

    def _decode(self, packet: av.Packet | None, index: int) -> list[av.VideoFrame]:
        try:
            with av.logging.Capture(local=False) as messages:
                frames = self.video.decode(packet)
            self._note(messages, index, decoder=True)
            return frames
        except av.error.EOFError:
            return []  # the decoder was already drained (the demuxer's own flush packet came first)
        except av.error.FFmpegError as exc:
            self.log.undecodable_packets += 1
            self.log.warnings.append(f"undecodable packet near frame {index}: {type(exc).__name__}")
            return []

    def _stamped(self, frame: av.VideoFrame, index: int, last_pts: int | None, step: int) -> DecodedFrame:
        """The frame's record, pixels to come: its timestamp made to rise, its damage logged."""
        if self._rotation is None:
            self._rotation = normal_rotation(frame.rotation)
        if frame.is_corrupt:
            self.log.corrupt_frames.append(index)
            self.log.warnings.append(f"frame {index} decoded with errors (concealed by the decoder)")
        pts = frame.pts
        if pts is None:
            pts = 0 if last_pts is None else last_pts + step
        elif last_pts is not None and pts <= last_pts:
            # Timestamps must rise for the muxer; a repeat here is a broken stream, keep the frame anyway.
            self.log.warnings.append(f"frame {index} timestamp does not increase; shifted by one frame")
            pts = last_pts + step
        return DecodedFrame(index=index, pts=int(pts), duration=int(frame.duration or 0), rgb=_NO_PIXELS)

    def _converted(self, pair: tuple[DecodedFrame, av.VideoFrame]) -> DecodedFrame:
        """On a conversion thread: the picture in upright RGB."""
        decoded, frame = pair
        with self._clock.measure("to_rgb"):
            # The YUV matrix comes from the frame's tags; the range must be passed or swscale assumes limited.
            rgb = upright(frame.to_ndarray(
                format="rgb24", src_color_range=frame.color_range or None, interpolation=SWS_FLAGS, threads=1
            ), self.rotation)
            if not rgb.flags.owndata:
                # A view keeps PyAV's frames alive behind it: 41 MB per held 4K frame instead of 25 in the look-ahead.
                rgb = rgb.copy()
        decoded.rgb = rgb
        return decoded

    @property
    def rotation(self) -> int:
        return self._rotation or 0


def _listen_to_ffmpeg() -> None:
    """PyAV drops FFmpeg's log unless a level is set; warnings are needed to see concealed damage."""
    level = av.logging.get_level()
    if level is None or level < av.logging.WARNING:  # lower numbers are more severe: raise it to WARNING
        av.logging.set_level(av.logging.WARNING)


def timed_frames(reader: VideoReader, clock: StageClock) -> Iterator[DecodedFrame]:
    """``reader.frames()``, with the time spent decoding (and only that) counted as the "decode" stage."""
    frames = reader.frames()
    while True:
        with clock.measure("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame
