"""Re-detection around tracks on the frames the stride skips goes where it can change the mask: around tracks
not yet settled (new, weak, lost, at the edge). A fake detector keeps this fast and free of models."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.engine import DeepFinds
from pipeline.params import DetectorParams, Params, VideoParams
from pipeline.records import Detections, ObjectClass
from pipeline.run import process_file

from tests.fake_engines import FrameByFrame
from tests.integration.test_video_process import flat_clip

FRAMES = 12  # at 25 fps: one keyframe (frame 0); the stride (3) searches frames 0, 3, 6 and 9


class StillFace(FrameByFrame):
    """Finds one face at the same place on every search, and records the windows it is asked to look in."""

    model_records: list = []

    def __init__(self) -> None:
        self.windows: list[int] = []  # per re-detection call, the number of boxes looked around

    def detect(self, rgb, scales=None, only=None, progress=None):
        return Detections.of(np.array([[20, 10, 50, 40]], np.float32), np.array([0.9], np.float32), ObjectClass.FACE)

    def detect_deep(self, rgb, light, only=None, views=None, tilted=True):
        return DeepFinds(self.detect(rgb), self.detect(rgb), Detections.empty(), Detections.empty())

    def detect_around(self, rgb, boxes, context, scales, progress):
        self.windows.append(sum(len(b) for b in boxes.values()))
        return self.detect(rgb)

    def release_memory(self) -> None:
        pass


@pytest.mark.parametrize("every_track, expected", [(False, [1, 1]), (True, [1] * 8)], ids=["unsettled", "every track"])
def test_a_track_found_twice_at_a_confident_score_is_not_looked_for_between_searches(tmp_path, every_track, expected):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out" / "clip.mp4"
    dst.parent.mkdir()
    flat_clip(src, frames=FRAMES)
    # No deep pass after "scene cuts": the flat clip's brightness steps into the next histogram bin on frame 8.
    video = VideoParams(roi_every_track=every_track, keyframe_on_cuts=False)
    params = Params(detector=DetectorParams(classes=("face",)), video=video)
    engine = StillFace()
    report = process_file(src, dst, params, engine, name="clip.mp4")  # type: ignore[arg-type]
    assert report.disposition == "done", report.error
    # Frames 1 and 2 follow the face's first find: looked for. From frame 3 on it is settled, and only
    # ``roi_every_track`` looks for it on the 6 skipped frames left.
    assert engine.windows == expected


def test_with_neither_camera_motion_nor_cuts_watched_no_frame_is_turned_grey(tmp_path, monkeypatch):
    src = tmp_path / "clip.mp4"
    flat_clip(src, frames=FRAMES)
    (tmp_path / "out").mkdir()

    def turned_grey(rgb):
        raise RuntimeError("a grey picture")

    monkeypatch.setattr("pipeline.video.process.small_grey", turned_grey)
    faces = DetectorParams(classes=("face",))
    looking = [VideoParams(), VideoParams(keyframe_on_cuts=False), VideoParams(camera_motion=False)]
    for n, video in enumerate([*looking, VideoParams(camera_motion=False, keyframe_on_cuts=False)]):
        report = process_file(src, tmp_path / "out" / f"{n}.mp4", Params(detector=faces, video=video), StillFace(),
                              name="clip.mp4")  # type: ignore[arg-type]
        # the stand-in fails the file where a grey picture is made: wherever camera motion or cuts look
        assert (report.disposition == "done") == (video not in looking), report.error
