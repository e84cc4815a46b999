"""The colour conversions on real files: frames converted side by side on threads come out as a plain
sequential decode gives them, in order; the writer encodes them in order; and the shipped swscale flags give
the luma back from a YUV -> RGB -> YUV round trip, where swscale's defaults do not."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.media.video import VideoReader, probe_video, transcode
from pipeline.media.video.frames import SWS_FLAGS
from pipeline.params import VideoParams

from tests.integration.pattern_clips import pattern_clip

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs ffmpeg")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A moving test pattern: every frame differs from the others."""
    return pattern_clip(tmp_path_factory.mktemp("conversions") / "pattern.mp4", "320x240", 40, "-crf", "18")


def plain_decode(path: Path) -> list[tuple[int, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(int(frame.pts), frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None,
                                                  interpolation=SWS_FLAGS))
                for frame in container.decode(video=0)]


def test_the_reader_gives_every_frame_as_a_plain_decode_does_in_order(clip: Path) -> None:
    expected = plain_decode(clip)
    with VideoReader(clip) as reader:
        got = [(frame.index, frame.pts, frame.rgb) for frame in reader.frames()]
    assert [index for index, _, _ in got] == list(range(len(expected)))
    assert [pts for _, pts, _ in got] == [pts for pts, _ in expected]
    for (_, _, rgb), (_, want) in zip(got, expected, strict=True):
        assert np.array_equal(rgb, want)


def test_the_writer_encodes_frames_in_the_order_they_were_written(clip: Path, tmp_path: Path) -> None:
    levels = np.linspace(20, 230, 40).astype(np.uint8)

    def flat(frame):  # frame i becomes one flat grey, rising with i
        if frame is None:
            return []
        frame.rgb[:] = levels[frame.index]
        return [frame]

    out = tmp_path / "flat.mp4"
    transcode(clip, out, probe_video(clip), VideoParams(), flat)
    decoded = [rgb.mean() for _, rgb in plain_decode(out)]
    assert len(decoded) == len(levels)
    assert np.allclose(decoded, levels, atol=2.0)


def round_trip_luma_error(path: Path, flags) -> float:
    with av.open(str(path)) as container:
        errors = []
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24", interpolation=flags)
            back = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", interpolation=flags)
            height = frame.height
            errors.append(np.abs(back.to_ndarray()[:height].astype(int) - frame.to_ndarray()[:height].astype(int)).mean())
    return float(np.mean(errors))


@pytest.fixture(scope="module")
def soft_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smooth, moderately coloured frames, as a camera gives: no colour the RGB cube would clip."""
    path = tmp_path_factory.mktemp("conversions") / "soft.mp4"
    rows, cols = np.mgrid[0:240, 0:320]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(10):
            rgb = np.stack([60 + (rows + index) % 120, 70 + cols % 110, 80 + (rows + cols) % 100], axis=2)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode(None))
    return path


def test_the_shipped_flags_give_the_luma_back_where_the_defaults_darken_it(soft_clip: Path) -> None:
    assert round_trip_luma_error(soft_clip, SWS_FLAGS) < 0.01
    assert round_trip_luma_error(soft_clip, av.video.reformatter.Interpolation.BILINEAR) > 0.1
