"""A moving camera over a mixed scene (faces and a plate on screen together), at the SHIPPED defaults.

The scene is ``scene_for(openalpr_endtoend, image 1, seed 0)`` of pipeline/eval/mixed_scenes.py: a 1280x720 car
photo, its plate (162x52) and three pasted faces (56-84 px). pipeline.eval.video renders it as a clip (pan, zoom, roll,
shake, a whip pan, motion blur, H.264), ``process_video`` masks it with ``Params()`` and the default engine
(both classes), and pipeline.eval.video's ``score_clip`` scores each class on its own: every box-frame of both classes
must be masked (recall 1.0) and no object may go unmasked on any frame (longest unmasked run 0).

Two clips: 640x360 x 60 frames (the one-pass path) and 2560x1600 x 18 frames, above LARGE_FRAME_PIXELS (the
two-pass path for large frames).
"""

from __future__ import annotations

import gzip
import threading
import time

import numpy as np
import pytest

from pipeline.eval.mixed_scenes import scene_clip_spec, scene_for
from pipeline.eval.video import Motion, render_clip, score_clip
from pipeline.media.video import LARGE_FRAME_PIXELS
from pipeline.media.video.reader import VideoReader
from pipeline.params import DetectorParams, Params
from pipeline.records import ObjectClass
from pipeline.video.process import companion_name, process_video

from tests.conftest import eval_set, require_eval, require_models

SCENE = ("openalpr_endtoend", 1)
SEED = 0
CLIPS = {  # name: (size, frames, motion)
    "small": ((640, 360), 60, Motion()),
    "large": ((2560, 1600), 18, Motion(pan_px=16.0, whip_px=48.0, whip_frames=3, shake_px=5.0)),
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    root = require_eval()
    for name in ("rbnr_faces", "dlib_faces_voc", SCENE[0]):
        eval_set(name)
    require_models()
    scene = scene_for(root, *SCENE, seed=SEED)
    assert scene is not None and scene.faces >= 1
    return scene_clip_spec(scene, tmp_path_factory.mktemp("scene") / "scene.png")


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("clip", list(CLIPS))
def test_every_box_frame_of_both_classes_is_masked(spec, engine, tmp_path, clip):
    size, frames, motion = CLIPS[clip]
    assert Params().detector == DetectorParams()  # the shipped classes: face and license_plate
    if clip == "large":
        assert size[0] * size[1] > LARGE_FRAME_PIXELS
    src = tmp_path / f"{clip}.mp4"
    truth = render_clip(spec, src, size=size, frames=frames, seed=SEED, motion=motion)
    both = sum(1 for f in truth.frames if {1, 2} <= set(f["classes"]))
    assert both >= frames // 2, "faces and plate on screen together on most frames"

    dst = tmp_path / "out" / src.name
    dst.parent.mkdir()
    params = Params()
    started = time.perf_counter()
    report = process_video(src, dst, params, engine, name=src.name)
    seconds = time.perf_counter() - started
    assert report.disposition in ("done", "review"), report.error
    if clip == "large":  # faces of 100 px and more: the light face pass ran scaled down, recall asserted below
        assert set(report.video["light_plans"]) - {"face x1"}, report.video["light_plans"]

    figures = {}
    for object_class in (ObjectClass.FACE, ObjectClass.LICENSE_PLATE):
        result = score_clip(f"{spec.name}-{clip}", truth, dst.with_name(companion_name(dst)), params.mask, (object_class,))
        figures[object_class.label] = result
    summary = {label: (r.box_frames, r.masked_box_frames, r.recall, max(r.longest_unmasked_run.values(), default=0))
               for label, r in figures.items()}
    print(f"{clip} {size[0]}x{size[1]} x {frames}: {summary}, {seconds:.1f}s")
    for label, result in figures.items():
        assert result.box_frames > 0, f"no {label} on screen"
        assert result.recall == 1.0, f"{label}: {result.masked_box_frames}/{result.box_frames} box-frames masked"
        assert max(result.longest_unmasked_run.values()) == 0, f"{label}: unmasked runs {result.longest_unmasked_run}"


@pytest.mark.shared
@pytest.mark.slow
def test_the_detectors_views_are_made_ahead_of_detection_and_mask_exactly_as_made_on_its_thread(
    spec, engine, tmp_path, monkeypatch,
):
    """``VideoJob.look`` has each searched frame's views (exposure, focus) made on the ahead threads, ahead of
    the threads every frame waits for (the look thread and the detection thread). The boxes companion is byte for byte the one made with the views made on
    that thread, at the shipped ``Params()``."""
    src = tmp_path / "small.mp4"
    render_clip(spec, src, size=(640, 360), frames=40, seed=SEED)
    shipped_views, callers = engine.views, []

    def views(rgb, only=None):
        callers.append(threading.current_thread())
        return shipped_views(rgb, only)

    monkeypatch.setattr(engine, "views", views)
    ahead = tmp_path / "ahead" / src.name
    ahead.parent.mkdir()
    report = process_video(src, ahead, Params(), engine, name=src.name)
    ahead_of_time = [thread for thread in callers if thread.name.startswith("veil-ahead")]
    assert len(ahead_of_time) == report.video["frames_detected"] > 0
    # the rest are the re-detections around tracks, which only the detection thread can decide on
    assert {thread for thread in callers if thread not in ahead_of_time} == {threading.current_thread()}

    # The views made again on the detection thread, as before: the engine ignores those made ahead.
    detect_frames, detect_deep = engine.detect_frames, engine.detect_deep
    monkeypatch.setattr(engine, "detect_frames", lambda images, scales, only, views=None: detect_frames(images, scales, only))
    monkeypatch.setattr(engine, "detect_deep", lambda rgb, light, only=None, views=None, tilted=True: detect_deep(rgb, light, only, tilted=tilted))
    on_stage = tmp_path / "on_stage" / src.name
    on_stage.parent.mkdir()
    process_video(src, on_stage, Params(), engine, name=src.name)
    read = [gzip.decompress(path.with_name(companion_name(path)).read_bytes()) for path in (ahead, on_stage)]
    assert read[0] == read[1]
    published = [_decoded(path) for path in (ahead, on_stage)]  # the pixels, apart from the companion
    assert len(published[0]) == len(published[1]) == 40
    assert all(np.array_equal(a, b) for a, b in zip(*published))


def _decoded(path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [frame.rgb for frame in reader.frames()]
