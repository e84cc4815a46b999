"""Work on frames outside the stage's thread, on a real file. Ahead of the stage (``transcode``'s ``early``:
camera motion and scene cuts): every frame once, in decode order, on a thread of its own, done before the
stage gets it. Behind it (``late``: painting the masks): every frame the stage returns, on the writer's
threads, before it is encoded. An error in either stops the transcode with that error."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.media.video import probe_video, transcode
from pipeline.media.video.frames import DecodedFrame
from pipeline.params import VideoParams

from tests.integration.pattern_clips import pattern_clip

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs ffmpeg")
FRAMES = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pattern_clip(tmp_path_factory.mktemp("early") / "pattern.mp4", "320x240", FRAMES)


def test_early_work_is_done_with_each_frame_in_order_before_the_stage_gets_it(clip: Path, tmp_path: Path) -> None:
    looked: list[int] = []
    early_threads: set[str] = set()
    stage_threads: set[str] = set()

    def early(frame: DecodedFrame) -> None:
        early_threads.add(threading.current_thread().name)
        looked.append(frame.index)
        frame.rgb[0, 0] = 255  # a mark the stage must see

    def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
        if frame is None:
            return []
        stage_threads.add(threading.current_thread().name)
        assert looked[-1] >= frame.index and list(frame.rgb[0, 0]) == [255, 255, 255]
        return [frame]

    result = transcode(clip, tmp_path / "out.mp4", probe_video(clip), VideoParams(), stage, early=early)
    assert looked == list(range(FRAMES))
    assert result.frames_written == FRAMES
    assert early_threads.isdisjoint(stage_threads)


def test_an_error_ahead_of_the_stage_stops_the_transcode_with_that_error(clip: Path, tmp_path: Path) -> None:
    def early(frame: DecodedFrame) -> None:
        if frame.index == 7:
            raise RuntimeError("broken on frame 7")

    staged: list[int] = []

    def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
        if frame is not None:
            staged.append(frame.index)
        return [frame] if frame is not None else []

    with pytest.raises(RuntimeError, match="broken on frame 7"):
        transcode(clip, tmp_path / "out.mp4", probe_video(clip), VideoParams(), stage, early=early)
    assert max(staged, default=-1) < 7


def test_late_work_finishes_every_frame_off_the_stage_thread_before_it_is_encoded(clip: Path, tmp_path: Path) -> None:
    levels = np.linspace(20, 230, FRAMES).astype(np.uint8)
    stage_threads: set[str] = set()
    late_threads: set[str] = set()
    lock = threading.Lock()

    def stage(frame: DecodedFrame | None) -> list[DecodedFrame]:
        if frame is None:
            return []
        stage_threads.add(threading.current_thread().name)
        return [frame]

    def late(frame: DecodedFrame) -> None:  # frame i becomes one flat grey, rising with i
        with lock:
            late_threads.add(threading.current_thread().name)
        frame.rgb[:] = levels[frame.index]

    out = tmp_path / "flat.mp4"
    transcode(clip, out, probe_video(clip), VideoParams(), stage, late=late)
    with av.open(str(out)) as container:
        decoded = [frame.to_ndarray(format="gray").mean() for frame in container.decode(video=0)]
    assert np.allclose(decoded, levels, atol=2.0)
    assert late_threads and late_threads.isdisjoint(stage_threads)


def test_an_error_behind_the_stage_stops_the_transcode_with_that_error(clip: Path, tmp_path: Path) -> None:
    def late(frame: DecodedFrame) -> None:
        if frame.index == 11:
            raise RuntimeError("cannot paint frame 11")

    with pytest.raises(RuntimeError, match="cannot paint frame 11"):
        transcode(clip, tmp_path / "out.mp4", probe_video(clip), VideoParams(), lambda f: [] if f is None else [f],
                  late=late)
