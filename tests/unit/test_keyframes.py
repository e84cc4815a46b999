"""The deep pass's schedule (once per interval of media time, and after a scene cut) and its miss count."""

from __future__ import annotations

import numpy as np

from pipeline.params import DetectorParams, VideoParams
from pipeline.records import Detections, ObjectClass
from pipeline.video.keyframes import KeyframeClock, light_misses


def grey(level: int) -> np.ndarray:
    return np.full((72, 128, 3), level, np.uint8)


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (72, 128, 3), dtype=np.uint8)


def test_keyframes_come_once_per_interval_of_media_time_whatever_the_frame_rate():
    for fps in (25, 30, 60):
        clock = KeyframeClock(1.0, on_cuts=False)
        due = [i for i in range(3 * fps) if clock.due(i / fps, grey(100))]
        assert due == [0, fps, 2 * fps]
        assert clock.stats.keyframes == 3 and clock.stats.scene_cuts == 0


def test_a_scene_cut_brings_the_deep_pass_forward_and_a_pan_does_not():
    clock = KeyframeClock(10.0)
    frames = [noise(1)] * 10 + [grey(20)] * 5  # a textured scene, then a cut to a dark one
    due = [i for i, frame in enumerate(frames) if clock.due(i / 30, frame)]
    assert due == [0, 10]
    assert clock.stats.scene_cuts == 1
    panning = KeyframeClock(10.0)
    scene = noise(2)
    due = [i for i in range(10) if panning.due(i / 30, np.roll(scene, 4 * i, axis=1))]
    assert due == [0]  # the same picture moving: its histogram stays


def test_flashes_trigger_at_most_one_deep_pass_per_fifth_of_a_second():
    clock = KeyframeClock(0.0)
    frames = [grey(20), grey(230)] * 6  # a strobe at 30 fps
    due = [i for i, frame in enumerate(frames) if clock.due(i / 30, frame)]
    assert len(due) <= 3 and due[0] == 1


def test_off_means_off():
    clock = KeyframeClock(0.0, on_cuts=False)
    assert not any(clock.due(i / 30, noise(i)) for i in range(10))


def test_horizons_stretch_to_cover_one_keyframe_interval():
    video = VideoParams().covering(60)
    assert (video.backfill_frames, video.lost_mask_frames, video.lookahead_frames, video.tracker.lost_frames) == (60,) * 4
    assert VideoParams().covering(10) == VideoParams()  # never shortened


def test_light_misses_count_confident_deep_finds_no_light_detection_overlaps():
    face, plate = ObjectClass.FACE, ObjectClass.LICENSE_PLATE
    deep = Detections.concat([
        Detections.of(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32),
                      np.array([0.9, 0.8, 0.25], np.float32), face),  # the last is in the review band
        Detections.of(np.array([[20, 0, 40, 8]], np.float32), np.array([0.9], np.float32), plate),
    ])
    light = Detections.of(np.array([[1, 1, 11, 11]], np.float32), np.array([0.3], np.float32), face)
    assert light_misses(deep, light, DetectorParams()) == (3, 2)  # the second face and the plate
    assert light_misses(deep, deep, DetectorParams()) == (3, 0)
