"""Encoding: upright RGB frames back into the coded orientation, with every frame's timestamp and the
display rotation kept, and the audio packets remuxed as they are.

Nothing else crosses over: data, subtitle and attachment streams (GPS tracks, cover art) and all container
and stream metadata stay behind, but for a stream's language tag.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import cast

import av

from pipeline.errors import InputError, ProcessingError
from pipeline.media.video.convert import InOrder, conversion_threads
from pipeline.media.video.frames import LARGE_FRAME_PIXELS, SWS_FLAGS, DecodedFrame, coded
from pipeline.media.video.probe import VideoInfo
from pipeline.params import VideoParams
from pipeline.timing import StageClock

# Output container per file extension. The output keeps the input's name, so it keeps its container too.
CONTAINER_BY_SUFFIX: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".avi": "avi",
}

ENCODER_BY_CODEC: dict[str, str] = {"h264": "libx264", "hevc": "libx265", "mpeg4": "mpeg4"}

# AVColorSpace values swscale has matrices for: BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M, BT.2020.
_SWS_COLORSPACES = (1, 4, 5, 6, 7, 9, 10)

# Stream metadata worth keeping: a language tag identifies nobody. Everything else (handler names with
# device models, creation times, encoder strings, locations) is dropped.
KEPT_STREAM_TAGS = ("language",)


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
        clock: StageClock | None = None,
        finish: Callable[[DecodedFrame], None] | None = None,
    ) -> None:
        self._clock = clock or StageClock()  # counts the conversions to YUV ("to_yuv"), summed over their threads
        self._finish = finish  # done to each frame on its conversion thread first (masking, see transcode.py)
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
        self._converting = InOrder(self._converted, conversion_threads(info.width, info.height), "yuv")

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
        # PyAV opens encoders with slice threading, which libx264 takes as "sliced threads": they scale poorly
        # past a few cores. AUTO lets each encoder use frame threads where it has them, as ffmpeg's CLI does
        # (docs/benchmarks.md, "The encoder's threads"); above 1440p slices keep x264's memory down (4K: 120 MB).
        if info.width * info.height <= LARGE_FRAME_PIXELS:
            stream.codec_context.thread_type = "AUTO"
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
        """Queue ``frame`` for encoding: its conversion to YUV runs on a thread (``convert.py``), and frames
        reach the encoder in the order they were written. ``close`` encodes those still converting."""
        self._converting.push((frame, time_base))
        for image in self._converting.ready():
            self._encode(image)

    def _converted(self, pair: tuple[DecodedFrame, Fraction]) -> av.VideoFrame:
        """On a conversion thread: the frame finished, back in the coded orientation and the stream's YUV."""
        frame, time_base = pair
        if self._finish is not None:
            self._finish(frame)
        with self._clock.measure("to_yuv"):
            image = av.VideoFrame.from_ndarray(coded(frame.rgb, self._rotation), format="rgb24").reformat(
                format=self._pix_fmt, dst_colorspace=self._colorspace, dst_color_range=self._color_range,
                interpolation=SWS_FLAGS, threads=1,
            )
        image.pts = frame.pts
        image.time_base = time_base
        if frame.duration:
            image.duration = frame.duration
        return image

    def _encode(self, image: av.VideoFrame) -> None:
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
            for image in self._converting.drain():
                self._encode(image)
            self._mux(self._video.encode(None))
        finally:
            self._converting.close()
            self._container.close()

    def abort(self) -> None:
        self._converting.close()
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass
