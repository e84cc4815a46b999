"""Video in and out through PyAV (FFmpeg), one frame at a time.

The reader decodes the first video stream into upright RGB frames (the display rotation applied) and hands
audio packets, untouched, to a sink. The writer encodes upright RGB frames back into the coded orientation,
keeps every frame's timestamp and the display rotation, and remuxes the audio packets as they are. Nothing
else crosses over: data, subtitle and attachment streams (GPS tracks, cover art) and all container and
stream metadata stay behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.logging
import numpy as np
from av.video.reformatter import Interpolation

from pipeline.errors import InputError, ProcessingError
from pipeline.params import VideoParams
from pipeline.timing import StageClock

from pipeline.media.handoff import Aborted, Crew

log = logging.getLogger(__name__)

# Output container per file extension. The output keeps the input's name, so it keeps its container too.
CONTAINER_BY_SUFFIX: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".avi": "avi",
}

ENCODER_BY_CODEC: dict[str, str] = {"h264": "libx264", "hevc": "libx265", "mpeg4": "mpeg4"}

# Colour conversion flags: with accurate rounding and full chroma interpolation, YUV -> RGB -> YUV gives
# the luma back bit-exact; swscale's defaults darken every pixel by about one level per round trip.
_SWS_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP

# AVColorSpace values swscale has matrices for: BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M, BT.2020.
_SWS_COLORSPACES = (1, 4, 5, 6, 7, 9, 10)

# Stream metadata worth keeping: a language tag identifies nobody. Everything else (handler names with
# device models, creation times, encoder strings, locations) is dropped.
KEPT_STREAM_TAGS = ("language",)


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


@dataclass
class DecodedFrame:
    """One decoded picture: its position in decode order, its timestamp, and upright RGB pixels."""

    index: int
    pts: int
    duration: int  # in time_base units; 0 when the stream does not say
    rgb: np.ndarray  # HxWx3 uint8, upright; masked in place


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


def _normal_rotation(degrees: float | int | None) -> int:
    """Snap a display rotation to a multiple of 90 in [0, 360). Odd angles are refused by the caller."""
    if degrees is None:
        return 0
    value = int(round(float(degrees))) % 360
    return value


def upright(coded: np.ndarray, rotation: int) -> np.ndarray:
    """The picture as it is meant to be seen: ``rotation`` degrees counter-clockwise from the coded one."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(coded, k)) if k else coded


def coded(upright_rgb: np.ndarray, rotation: int) -> np.ndarray:
    """The inverse of :func:`upright`: back into the orientation the encoder stores."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(upright_rgb, -k)) if k else upright_rgb


def _open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot open as a video: {type(exc).__name__}") from exc


def probe_video(path: Path) -> VideoInfo:
    """Open ``path``, check it holds a decodable video stream, and describe it. Raises InputError."""
    with _open_input(path) as container:
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
        rotation = _normal_rotation(first.rotation)
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


class VideoReader:
    """Streams decoded frames of the first video stream; audio packets go to ``audio_sink`` as they come.

    Use as a context manager. Frames come in presentation order with the decoder's timestamps; a frame
    without one gets the previous timestamp plus one frame duration.
    """

    def __init__(self, path: Path, audio_sink: Callable[[av.Packet], None] | None = None) -> None:
        self._container = _open_input(path)
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

    def frames(self) -> Iterator[DecodedFrame]:
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
                decoded = self._to_decoded(frame, index, last_pts, step)
                last_pts = decoded.pts
                index += 1
                yield decoded
        for frame in self._decode(None, index):  # drain the decoder's delayed frames
            decoded = self._to_decoded(frame, index, last_pts, step)
            last_pts = decoded.pts
            index += 1
            yield decoded

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

    def _to_decoded(self, frame: av.VideoFrame, index: int, last_pts: int | None, step: int) -> DecodedFrame:
        if self._rotation is None:
            self._rotation = _normal_rotation(frame.rotation)
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
        # The YUV matrix comes from the frame's tags; the range must be passed or swscale assumes limited.
        rgb = upright(frame.to_ndarray(
            format="rgb24", src_color_range=frame.color_range or None, interpolation=_SWS_FLAGS
        ), self._rotation)
        if not rgb.flags.owndata:
            # A view keeps PyAV's frames alive behind it: 41 MB per held 4K frame instead of 25 in the look-ahead.
            rgb = rgb.copy()
        return DecodedFrame(index=index, pts=int(pts), duration=int(frame.duration or 0), rgb=rgb)

    @property
    def rotation(self) -> int:
        return self._rotation or 0


def _listen_to_ffmpeg() -> None:
    """PyAV drops FFmpeg's log unless a level is set; warnings are needed to see concealed damage."""
    level = av.logging.get_level()
    if level is None or level < av.logging.WARNING:  # lower numbers are more severe: raise it to WARNING
        av.logging.set_level(av.logging.WARNING)


def output_container(dst: Path) -> str:
    try:
        return CONTAINER_BY_SUFFIX[dst.suffix.lower()]
    except KeyError:
        raise InputError(f"no video container for the extension {dst.suffix!r}") from None


class VideoWriter:
    """Encodes upright RGB frames with the input's timestamps; copies the given audio streams unchanged.

    The encoder is opened with the first frame's size. Call :meth:`close` to flush; :meth:`abort` to drop
    a partial file's handle without flushing (the caller deletes the file).
    """

    def __init__(
        self,
        dst: Path,
        info: VideoInfo,
        params: VideoParams,
        audio_templates: list[av.audio.stream.AudioStream],
        *,
        container: str | None = None,
        input_stream: av.video.stream.VideoStream | None = None,
    ) -> None:
        self._format = container or output_container(dst)
        self._rotation = info.rotation
        self._container = av.open(str(dst), mode="w", format=self._format)
        try:
            self._video = self._add_video(info, params, input_stream)
            self._audio: dict[int, av.stream.Stream] = {}
            for template in audio_templates:
                self._audio[template.index] = self._add_audio(template)
        except (av.error.FFmpegError, ValueError) as exc:
            self._container.close()
            raise ProcessingError(f"cannot set up the {self._format} output: {exc}") from exc
        self.frames_written = 0

    def _add_video(self, info: VideoInfo, params: VideoParams, source: av.video.stream.VideoStream | None
    ) -> av.video.stream.VideoStream:
        encoder = ENCODER_BY_CODEC[params.codec]
        options: dict[str, str] = {}
        if encoder in ("libx264", "libx265"):
            options["preset"] = params.preset
            if params.bitrate is None:
                options["crf"] = str(params.crf)
        if encoder == "libx265":
            options["x265-params"] = "log-level=error"
        if encoder == "libx264" and info.width * info.height > LARGE_FRAME_PIXELS:
            # x264's medium preset holds about 700 MB for a 4K stream (look-ahead, macroblock tree, B-frames,
            # references); these settings hold 350 MB, for a somewhat larger file at the same CRF.
            options["x264-params"] = "ref=1:bframes=0:mbtree=0:rc-lookahead=5"
        added = self._container.add_stream(encoder, rate=info.average_rate or Fraction(30), options=options)
        stream = cast("av.video.stream.VideoStream", added)  # a video encoder's name, so a video stream
        coded_w, coded_h = (info.height, info.width) if info.rotation in (90, 270) else (info.width, info.height)
        stream.width, stream.height = coded_w, coded_h
        stream.pix_fmt = params.pix_fmt if coded_w % 2 == 0 and coded_h % 2 == 0 else "yuv444p"
        if params.bitrate is not None:
            stream.bit_rate = params.bitrate
        elif encoder == "mpeg4":
            # FIXME: PyAV's qscale is the on/off AV_CODEC_FLAG_QSCALE, not the quantiser: this value never reaches
            # the encoder (the flag is set, the quantiser is FFmpeg's default).
            stream.codec_context.qscale = max(1, min(31, params.crf // 6))  # type: ignore[assignment]
            stream.codec_context.flags |= av.codec.context.Flags.qscale
        if self._format == "avi":
            stream.max_b_frames = 0  # AVI has no composition times: B-frames would play out of order elsewhere
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        # Convert back to YUV with the input's matrix and range and tag the output the same, so colours and
        # levels survive the round trip (a full-range phone video stays full range).
        self._colorspace = info.colorspace if info.colorspace in _SWS_COLORSPACES else None
        self._color_range = info.color_range if info.color_range in (1, 2) else None
        self._pix_fmt = stream.pix_fmt
        if self._colorspace is not None:
            stream.codec_context.colorspace = self._colorspace
        if self._color_range is not None:
            stream.codec_context.color_range = self._color_range
        if source is not None:
            for attr in ("color_primaries", "color_trc"):
                value = getattr(source.codec_context, attr, None)
                if value:
                    setattr(stream.codec_context, attr, value)
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def _add_audio(self, template: av.stream.Stream) -> av.stream.Stream:
        out = self._container.add_stream_from_template(template)
        keep = {k: v for k, v in template.metadata.items() if k in KEPT_STREAM_TAGS}
        out.metadata.clear()
        out.metadata.update(keep)
        return out

    def write(self, frame: DecodedFrame, time_base: Fraction) -> None:
        image = av.VideoFrame.from_ndarray(coded(frame.rgb, self._rotation), format="rgb24").reformat(
            format=self._pix_fmt, dst_colorspace=self._colorspace, dst_color_range=self._color_range,
            interpolation=_SWS_FLAGS,
        )
        image.pts = frame.pts
        image.time_base = time_base
        if frame.duration:
            image.duration = frame.duration
        self._mux(self._video.encode(image))
        self.frames_written += 1

    def mux_audio(self, packet: av.Packet) -> None:
        out = self._audio.get(packet.stream.index)
        if out is None:
            return
        packet.stream = out
        self._mux(packet)

    def _mux(self, packets: av.Packet | list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except av.error.FFmpegError as exc:
            raise ProcessingError(f"muxing into {self._format} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        try:
            self._mux(self._video.encode(None))
        finally:
            self._container.close()

    def abort(self) -> None:
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass


@dataclass(frozen=True)
class TranscodeResult:
    frames_decoded: int
    frames_written: int
    audio_codecs: tuple[str, ...]
    decode_log: DecodeLog


def timed_frames(reader: VideoReader, clock: StageClock) -> Iterator[DecodedFrame]:
    """``reader.frames()``, with the time spent decoding (and only that) counted as the "decode" stage."""
    frames = reader.frames()
    while True:
        with clock.measure("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


# Above this (2560x1440), x264 is set to hold fewer frames, to bound the encoder's memory.
LARGE_FRAME_PIXELS = 2560 * 1440

# Frames in flight between the decode thread and detection, and between detection and the encode thread.
# Small: each 4K frame is 25 MB, and detection holds its own look-ahead besides.
HANDOFF_FRAMES = 4
HANDOFF_FRAMES_LARGE = 1  # above LARGE_FRAME_PIXELS: a 4K frame is 25 MB
_END = object()  # end of stream on a hand-off


def transcode(
    src: Path,
    dst: Path,
    info: VideoInfo,
    params: VideoParams,
    stage: Callable[[DecodedFrame | None], list[DecodedFrame]],
    *,
    container: str | None = None,
    clock: StageClock | None = None,
) -> TranscodeResult:
    """Decode ``src``, pass every frame through ``stage`` and encode what it returns into ``dst``.

    ``stage(frame)`` may hold frames back (a look-ahead) and return them later, in order; ``stage(None)``
    at the end must return all it still holds. Audio is remuxed alongside. Decoding and encoding run on
    threads of their own, overlapping with ``stage`` in the calling thread. Raises ProcessingError when a
    decoded frame never comes back, and leaves ``dst`` for the caller to delete on any error.
    """
    clock = clock or StageClock()
    crew = Crew()
    in_flight = HANDOFF_FRAMES if info.width * info.height <= LARGE_FRAME_PIXELS else HANDOFF_FRAMES_LARGE
    decoded_frames = crew.queue(in_flight)
    to_writer = crew.queue(in_flight + 64)  # masked frames, and audio packets as they are demuxed
    frames_to_write = crew.slots(in_flight)  # ... of which at most this many frames
    writer: VideoWriter | None = None
    decoded = 0

    def decode(reader: VideoReader) -> None:
        for frame in timed_frames(reader, clock):
            decoded_frames.put(frame)
        decoded_frames.put(_END)

    def encode() -> None:
        assert writer is not None  # started only once the writer exists
        while (item := to_writer.get()) is not _END:
            if isinstance(item, DecodedFrame):
                with clock.measure("encode"):
                    writer.write(item, info.time_base)
                frames_to_write.give_back()
            else:
                writer.mux_audio(item)
        with clock.measure("encode"):
            writer.close()

    try:
        with VideoReader(src, audio_sink=to_writer.put) as reader:
            writer = VideoWriter(dst, info, params, reader.audio, container=container, input_stream=reader.video)
            crew.start("decode", lambda: decode(reader))
            crew.start("encode", encode)
            try:
                while (frame := decoded_frames.get()) is not _END:
                    decoded += 1
                    for ready in stage(frame):
                        frames_to_write.take()
                        to_writer.put(ready)
                if decoded == 0:
                    raise ProcessingError("no frame could be decoded")
                for ready in stage(None):
                    frames_to_write.take()
                    to_writer.put(ready)
                to_writer.put(_END)
            except Aborted:
                pass  # a thread failed: join() raises its error
            except BaseException:
                crew.stop()
                raise
            crew.join()
            audio = tuple(s.codec_context.name for s in reader.audio)
            decode_log = reader.log
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer.frames_written != decoded:
        raise ProcessingError(f"{decoded} frame(s) decoded but {writer.frames_written} written")
    return TranscodeResult(decoded, writer.frames_written, audio, decode_log)
