"""Progress callbacks come from the loops that do the work: every decoded frame, every re-detection around
the tracks, and a photo's steps. A fake detector keeps this fast and free of models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.detect.engine import DeepFinds
from pipeline.params import DetectorParams, Params
from pipeline.records import Detections, ObjectClass
from pipeline.run import process_file

from tests.fake_engines import FrameByFrame
from tests.integration.test_video_process import flat_clip

FRAMES = 12


class OneFace(FrameByFrame):
    """Finds the same face wherever it looks, and counts its re-detections around tracks."""

    model_records: list = []

    def __init__(self) -> None:
        self.redetections = 0

    def detect(self, rgb, scales=None, only=None, progress=None):
        return Detections.of(np.array([[20, 10, 50, 40]], np.float32), np.array([0.9], np.float32), ObjectClass.FACE)

    def detect_deep(self, rgb, light, only=None, views=None, tilted=True):  # a keyframe: the photo plan, and the light plan's share
        return DeepFinds(self.detect(rgb), self.detect(rgb), Detections.empty(), Detections.empty())

    def detect_around(self, rgb, boxes, context, scales, progress):
        self.redetections += 1
        progress()  # one batch of windows
        return self.detect(rgb)

    def release_memory(self) -> None:
        pass


class Beats:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def params():
    return Params(detector=DetectorParams(classes=("face",)))


@pytest.mark.parametrize("large", [False, True], ids=["one pass", "two passes"])
def test_a_video_reports_progress_on_every_frame_and_every_redetection(tmp_path, params, monkeypatch, large):
    import pipeline.video.process

    if large:
        monkeypatch.setattr(pipeline.video.process, "LARGE_FRAME_PIXELS", 0)  # plan in one pass, mask in another
    src, dst = tmp_path / "clip.mp4", tmp_path / "out" / "clip.mp4"
    dst.parent.mkdir()
    flat_clip(src, frames=FRAMES)
    engine, progress = OneFace(), Beats()
    report = process_file(src, dst, params, engine, name="clip.mp4", progress=progress)
    assert report.disposition != "failed", report.error
    assert engine.redetections > 0  # frames the stride skipped were searched around the track
    passes = 2 if large else 1
    assert progress.calls == passes * FRAMES + engine.redetections


def test_a_photo_reports_progress_around_detection_and_before_saving(tmp_path, params):
    src, dst = tmp_path / "photo.jpg", tmp_path / "out" / "photo.jpg"
    dst.parent.mkdir()
    Image.fromarray(np.full((64, 96, 3), 120, np.uint8)).save(src)
    progress = Beats()
    report = process_file(src, dst, params, OneFace(), name="photo.jpg", progress=progress)
    assert report.disposition != "failed", report.error
    assert progress.calls >= 2


def test_progress_is_optional(tmp_path, params):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out" / "clip.mp4"
    dst.parent.mkdir()
    flat_clip(src, frames=3)
    assert process_file(src, dst, params, OneFace(), name="clip.mp4").disposition != "failed"
