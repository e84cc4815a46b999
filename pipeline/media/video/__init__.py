"""Video in and out through PyAV (FFmpeg), one frame at a time: ``probe`` (what a file holds), ``reader``
(decode to upright RGB, FFmpeg's complaints kept), ``writer`` (encode back, audio remuxed, metadata
dropped), ``transcode`` (the three on threads around one stage), ``convert`` (the colour conversions, a few
frames at a time on threads of their own) and ``frames`` (the decoded-frame record they share). It knows
nothing of detection or masking: it imports only ``pipeline.errors``, ``pipeline.params``,
``pipeline.timing`` and ``pipeline.media.handoff``. Its public names are re-exported here, so callers import
from ``pipeline.media.video``.
"""

from pipeline.media.video.frames import LARGE_FRAME_PIXELS, DecodedFrame, coded, upright
from pipeline.media.video.probe import VideoInfo, probe_video
from pipeline.media.video.reader import DecodeLog, VideoReader, timed_frames
from pipeline.media.video.transcode import TranscodeResult, transcode
from pipeline.media.video.writer import CONTAINER_BY_SUFFIX, ENCODER_BY_CODEC, VideoWriter, output_container

__all__ = [
    "CONTAINER_BY_SUFFIX",
    "ENCODER_BY_CODEC",
    "LARGE_FRAME_PIXELS",
    "DecodeLog",
    "DecodedFrame",
    "TranscodeResult",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "coded",
    "output_container",
    "probe_video",
    "timed_frames",
    "transcode",
    "upright",
]
