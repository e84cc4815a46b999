"""Decode, pass every frame through a stage, encode: the three overlapping on threads, a few frames in flight.

The stage (detection and masking, or nothing at all for a benchmark's floor) runs in the calling thread;
decoding and encoding run on threads of their own, handing frames over through small bounded queues. The
stage's thread is the one every frame waits for, so work on a frame that needs none of its results can
leave it: ahead of it on a thread of its own (``early``: camera motion, scene cuts), or behind it on the
encoder's conversion threads, a few frames side by side (``late``: painting the masks it planned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ProcessingError
from pipeline.media.handoff import Aborted, Crew
from pipeline.media.video.frames import LARGE_FRAME_PIXELS, DecodedFrame
from pipeline.media.video.probe import VideoInfo
from pipeline.media.video.reader import DecodeLog, VideoReader, timed_frames
from pipeline.media.video.writer import VideoWriter
from pipeline.params import VideoParams
from pipeline.timing import StageClock

Stage = Callable[[DecodedFrame | None], list[DecodedFrame]]
FrameWork = Callable[[DecodedFrame], None]  # done to a frame in place, outside the stage

# Frames in flight between the decode thread and detection, and between detection and the encode thread.
# Small: each 4K frame is 25 MB, and detection holds its own look-ahead besides.
HANDOFF_FRAMES = 4
HANDOFF_FRAMES_LARGE = 1  # above LARGE_FRAME_PIXELS: a 4K frame is 25 MB
_END = object()  # end of stream on a hand-off


@dataclass(frozen=True)
class TranscodeResult:
    frames_decoded: int
    frames_written: int
    audio_codecs: tuple[str, ...]  # copied
    dropped_audio: tuple[str, ...]  # "audio:1", ...: left out (VideoParams.audio)
    decode_log: DecodeLog


class _Lines:
    """The hand-offs of one transcode: decoded frames to the stage, masked frames and audio to the writer."""

    def __init__(self, in_flight: int, *, early: bool) -> None:
        self.crew = Crew()
        self.decoded = self.crew.queue(in_flight)
        self.looked = self.crew.queue(in_flight) if early else self.decoded  # what the stage takes frames from
        self.to_writer = self.crew.queue(in_flight + 64)  # masked frames, and audio packets as they are demuxed
        self.frames_to_write = self.crew.slots(in_flight)  # ... of which at most this many frames

    def send(self, frame: DecodedFrame) -> None:
        self.frames_to_write.take()
        self.to_writer.put(frame)


def transcode(
    src: Path,
    dst: Path,
    info: VideoInfo,
    params: VideoParams,
    stage: Stage,
    *,
    container: str | None = None,
    clock: StageClock | None = None,
    early: FrameWork | None = None,
    late: FrameWork | None = None,
) -> TranscodeResult:
    """Decode ``src``, pass every frame through ``stage`` and encode what it returns into ``dst``.

    ``stage(frame)`` may hold frames back (a look-ahead) and return them later, in order; ``stage(None)``
    at the end must return all it still holds. Audio is remuxed alongside. Decoding and encoding run on
    threads of their own, overlapping with ``stage`` in the calling thread. ``early(frame)``, when given,
    runs on another, in decode order, and is done with a frame before ``stage`` gets it; ``late(frame)``
    runs on the writer's conversion threads on each frame ``stage`` returns, before it is converted and
    encoded (several frames at once, so it must touch nothing but its frame). Raises ProcessingError when a
    decoded frame never comes back, and leaves ``dst`` for the caller to delete on any error.
    """
    clock = clock or StageClock()
    in_flight = HANDOFF_FRAMES if info.width * info.height <= LARGE_FRAME_PIXELS else HANDOFF_FRAMES_LARGE
    lines = _Lines(in_flight, early=early is not None)
    writer: VideoWriter | None = None
    try:
        keep_audio = params.audio == "keep"
        with VideoReader(src, audio_sink=lines.to_writer.put if keep_audio else None, clock=clock) as reader:
            copied = reader.audio if keep_audio else []
            writer = VideoWriter(dst, info, params, copied, container=container, input_stream=reader.video,
                                 clock=clock, finish=late)
            started = writer
            lines.crew.start("decode", lambda: _decode(reader, lines, clock))
            if early is not None:
                lines.crew.start("early", lambda: _look(early, lines))
            lines.crew.start("encode", lambda: _encode(started, lines, info, clock))
            decoded = _run_stage(lines, stage)
            audio = tuple(s.codec_context.name for s in copied)
            dropped = tuple(f"audio:{s.index}" for s in reader.audio if s not in copied)
            decode_log = reader.log
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer.frames_written != decoded:
        raise ProcessingError(f"{decoded} frame(s) decoded but {writer.frames_written} written")
    return TranscodeResult(decoded, writer.frames_written, audio, dropped, decode_log)


def _decode(reader: VideoReader, lines: _Lines, clock: StageClock) -> None:
    for frame in timed_frames(reader, clock):
        lines.decoded.put(frame)
    lines.decoded.put(_END)


def _look(early: FrameWork, lines: _Lines) -> None:
    while (frame := lines.decoded.get()) is not _END:
        early(frame)
        lines.looked.put(frame)
    lines.looked.put(_END)


def _encode(writer: VideoWriter, lines: _Lines, info: VideoInfo, clock: StageClock) -> None:
    while (item := lines.to_writer.get()) is not _END:
        if isinstance(item, DecodedFrame):
            with clock.measure("encode"):
                writer.write(item, info.time_base)
            lines.frames_to_write.give_back()
        else:
            writer.mux_audio(item)
    with clock.measure("encode"):
        writer.close()


def _run_stage(lines: _Lines, stage: Stage) -> int:
    """Feed decoded frames through ``stage`` in this thread and send what it returns on to the writer;
    the number of frames decoded. Joins the crew: a failed thread's error is raised here."""
    decoded = 0
    try:
        while (frame := lines.looked.get()) is not _END:
            decoded += 1
            for ready in stage(frame):
                lines.send(ready)
        if decoded == 0:
            raise ProcessingError("no frame could be decoded")
        for ready in stage(None):
            lines.send(ready)
        lines.to_writer.put(_END)
    except Aborted:
        pass  # a thread failed: join() raises its error
    except BaseException:
        lines.crew.stop()
        raise
    lines.crew.join()
    return decoded
