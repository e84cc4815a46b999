"""The shipped networks take the picture's bytes and batches of windows and frames (pipeline/detect/frontend.py,
``free_batch``, ``batches``, ``Engine.detect_frames``), and find exactly what they found one window at a time
with the host's conversion: real models, real photos and a real clip, every class at once."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from pipeline.detect.catalogue import default_model_dir, find_source
from pipeline.detect.engine import Engine
from pipeline.detect.families import family
from pipeline.detect.onnx import load_session
from pipeline.detect.runtime import RuntimeParams
from pipeline.detect.windows import plan_windows
from pipeline.detect.yolo import Letterbox
from pipeline.eval.mixed_scenes import scene_clip_spec, scene_for
from pipeline.eval.video import render_clip, score_clip
from pipeline.media.image import load_image
from pipeline.params import Params, ScalePlan
from pipeline.records import ObjectClass
from pipeline.video.process import companion_name, process_video

from tests.conftest import eval_set, require_eval

PLATE = ObjectClass.LICENSE_PLATE


def _photos(name: str, every: int) -> list[np.ndarray]:
    folder = eval_set(name)
    images = json.loads((folder / "annotations.json").read_text())["images"][::every]
    return [load_image(folder / "images" / info["file_name"], 40_000_000).rgb for info in images]


def assert_same_finds(got, want) -> None:
    """The same detections, class by class in the same order, within the networks' rounding."""
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.classes, want.classes)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-2)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return _photos("openalpr_endtoend", 135) + _photos("rbnr_faces", 65)  # 2 + 3 photos, both classes


@pytest.fixture(scope="module")
def shipped(engine, photos) -> list:
    """What the shipped engine finds in each photo before the merge (``candidates``): what every other engine
    here must find."""
    return [engine.candidates(rgb) for rgb in photos]


def test_the_shipped_sessions_take_uint8_pixels_and_the_plate_graph_a_batch(engine):
    for loaded in engine._detectors:
        [feed] = loaded.network.session.get_inputs()
        assert feed.type == "tensor(uint8)" and feed.shape[3] == 3, (loaded.spec.name, feed)
        assert isinstance(feed.shape[0], str), f"{loaded.spec.name}: the batch is fixed at {feed.shape[0]}"
    assert engine.max_batch == RuntimeParams().max_batch


@pytest.mark.parametrize("name", ["centerface", "platedet"])
def test_the_graphs_conversion_gives_what_the_hosts_conversion_gave(engine, photos, name):
    """The same graph, loaded as the engine loads it but with its stored float input, fed what the host used
    to compute: the outputs agree."""
    loaded = next(d for d in engine._detectors if d.spec.name == name)
    source = find_source(name)
    assert source is not None
    kind = family(source.family)
    stored, _ = load_session(default_model_dir() / source.file_name, device="cpu", threads=0, expected_sha256=None,
                             prepare=kind.prepare, dynamic_input=not kind.fixed_input, int8=loaded.record.precision == "int8")
    side = kind.fixed_input and loaded.network.fixed_input
    rgb = photos[0]
    pixels = Letterbox(rgb.shape[0], rgb.shape[1], side).apply(rgb) if side else rgb[: rgb.shape[0] // 32 * 32, : rgb.shape[1] // 32 * 32]
    host = pixels.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(kind.input_divisor)
    [float_input] = stored.get_inputs()
    if float_input.type == "tensor(float16)":  # platedet is stored in half precision (its float32 path keeps it)
        host = host.astype(np.float16)
    expected = stored.run(None, {float_input.name: host})
    actual = loaded.network.session.run(None, {loaded.network.session.get_inputs()[0].name: pixels[None]})
    for want, got in zip(expected, actual):
        if want.dtype == np.float16:  # platedet's float32 path keeps its stored half precision
            # The rows Veil reads (4 box sides, 1 class score; not the 32 mask coefficients), each within eight
            # float16 steps of its largest value: 4 px at most on a 640 px box side, 0.004 on a score.
            used_want, used_got = (rows[:, :5].astype(np.float32) for rows in (want, got))
            steps = np.spacing(np.abs(want[:, :5]).max(axis=-1, keepdims=True)).astype(np.float32)
            assert (np.abs(used_got - used_want) <= 8 * steps).all()
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_plate_batch_of_mixed_sizes_gives_what_each_window_gives_alone(engine, photos):
    network = next(d.network for d in engine._detectors if d.object_class is PLATE)
    rgb = photos[0]
    height, width = rgb.shape[:2]
    windows = [rgb, rgb[: height // 2, : width // 2], rgb[height // 3 :, width // 4 :]]
    together = network.batch(windows, 0.05)
    assert sum(len(scores) for _, scores in together) > 0
    for (boxes, scores), window in zip(together, windows):
        alone_boxes, alone_scores = network(window, 0.05)
        np.testing.assert_allclose(scores, alone_scores, atol=1e-4)
        np.testing.assert_allclose(boxes, alone_boxes, atol=1e-2)


def test_a_batching_engine_finds_what_the_shipped_engine_finds(engine, photos, shipped):
    """Both classes, the shipped plans (tiles and scales) and floors, on real photos: an engine taking up to 8
    windows a call, as a GPU host would set it, against the shipped one (``RuntimeParams().max_batch``)."""
    batching = Engine(engine._detectors, engine.params, max_batch=8)
    classes, calls = set(), []
    for rgb, single in zip(photos, shipped, strict=True):
        batched = batching.candidates(rgb, progress=lambda: calls.append(1))
        assert_same_finds(batched, single)
        classes |= set(batched.classes.tolist())
    assert classes == {int(c) for c in ObjectClass}
    windows = sum(len(plan_windows(*rgb.shape[:2], d.scales, d.network.fixed_input)) for rgb in photos for d in engine._detectors)
    assert len(calls) < windows  # some windows did share a call


def test_threads_sharing_batches_find_what_the_shipped_engine_finds(engine, photos, shipped):
    """Several videos on threads of one process, one engine whose concurrent calls share runs
    (``shared_batches``): every class, the shipped plans, real photos; each thread gets what the shipped engine
    finds alone, and some calls did share a run."""
    shared = Engine.load(engine.params, shared_batches=8)
    pictures = [photos[slot % 2] for slot in range(4)]
    found: list = [None] * len(pictures)
    calls: list[int] = []
    start = threading.Barrier(len(pictures))

    def one(slot: int) -> None:
        start.wait()
        found[slot] = shared.candidates(pictures[slot], progress=lambda: calls.append(1))

    threads = [threading.Thread(target=one, args=(slot,)) for slot in range(len(pictures))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for slot, together in enumerate(found):
        assert_same_finds(together, shipped[slot % 2])
    runs = sum(detector.network.session.runs for detector in shared._detectors)
    assert runs < len(calls)  # some calls of different threads shared a run


def test_frames_detected_together_give_what_each_frame_gives_alone(engine, photos):
    """``Engine.detect_frames``: several frames' light passes in shared calls, each with its own plans and
    classes, against ``detect`` frame by frame."""
    frames = [photos[0], photos[0][::-1].copy(), photos[1]]
    plans = [{}, {c: ScalePlan(max_side=640, upscale_below=0, tile_above=100_000, tile_size=640) for c in ObjectClass}, {}]
    only = [frozenset(ObjectClass), frozenset({ObjectClass.FACE}), frozenset(ObjectClass)]
    together = Engine(engine._detectors, engine.params, max_batch=4).detect_frames(frames, plans, only)
    for rgb, plan, classes, found in zip(frames, plans, only, together):
        alone = engine.detect(rgb, scales=plan, only=classes)
        assert_same_finds(found, alone)
    assert not (together[1].classes == int(PLATE)).any()


@pytest.mark.shared
@pytest.mark.slow
def test_a_video_detected_in_batches_of_frames_masks_every_box_frame(engine, tmp_path):
    """The mixed scene of tests/integration/test_mixed_video.py (faces and a plate together, a moving camera),
    masked at the shipped ``Params()`` by an engine batching 4 detected frames a call: both classes masked on
    every frame, although a batch's later frames choose their light plans from tracks a few frames old."""
    root = require_eval()
    scene = scene_for(root, "openalpr_endtoend", 1, seed=0)
    assert scene is not None and scene.faces >= 1
    src = tmp_path / "scene.mp4"
    truth = render_clip(scene_clip_spec(scene, tmp_path / "scene.png"), src, size=(640, 360), frames=60, seed=0)
    dst = tmp_path / "out" / src.name
    dst.parent.mkdir()
    batching = Engine(engine._detectors, engine.params, max_batch=4)
    calls: list[int] = []
    original = batching.detect_frames
    batching.detect_frames = lambda images, *rest: calls.append(len(images)) or original(images, *rest)  # type: ignore[method-assign]
    report = process_video(src, dst, Params(), batching, name=src.name)
    assert report.disposition in ("done", "review"), report.error
    assert max(calls) == 4 and sum(calls) + report.video["keyframes"] == report.video["frames_detected"]
    for object_class in ObjectClass:
        result = score_clip("scene", truth, dst.with_name(companion_name(dst)), Params().mask, (object_class,))
        assert result.box_frames > 0 and result.recall == 1.0, (object_class, result.masked_box_frames, result.box_frames)
        assert max(result.longest_unmasked_run.values()) == 0


def test_classes_side_by_side_find_what_the_shipped_engine_finds(engine, photos, shipped):
    """Each class's detector on a thread of its own (``classes_side_by_side``, on by default on a GPU): every
    entry point the pipeline uses, the shipped plans and floors, real photos, against the shipped engine."""
    side = Engine(engine._detectors, engine.params, classes_side_by_side=True)
    light = {c: ScalePlan(max_side=640, upscale_below=0, tile_above=100_000, tile_size=640) for c in ObjectClass}
    classes = set()
    for rgb, alone in zip(photos, shipped, strict=True):
        assert_same_finds(side.candidates(rgb), alone)
        classes |= set(alone.classes.tolist())
        deep_side, deep_alone = side.detect_deep(rgb, light), engine.detect_deep(rgb, light)
        for got, want in zip(deep_side[:4], deep_alone[:4], strict=True):  # the finds
            assert_same_finds(got, want)
        assert deep_side.leaning_sides == deep_alone.leaning_sides
        found = engine.merged(alone)
        boxes = {c: found.boxes[found.classes == int(c)] for c in ObjectClass}
        assert_same_finds(side.detect_around(rgb, boxes, context=1.0), engine.detect_around(rgb, boxes, context=1.0))
    for got, want in zip(side.detect_frames(photos, [{}] * len(photos), [frozenset(ObjectClass)] * len(photos)),
                         engine.detect_frames(photos, [{}] * len(photos), [frozenset(ObjectClass)] * len(photos))):
        assert_same_finds(got, want)
    assert classes == {int(c) for c in ObjectClass}


@pytest.mark.shared
@pytest.mark.slow
def test_a_video_with_the_classes_side_by_side_is_masked_as_the_shipped_engine_masks_it(engine, tmp_path):
    """The mixed scene (faces and a plate, a moving camera) at the shipped ``Params()``: the engine with its
    classes side by side detects the same frames, keeps the same tracks and masks both classes on every frame."""
    root = require_eval()
    scene = scene_for(root, "openalpr_endtoend", 1, seed=0)
    assert scene is not None and scene.faces >= 1
    src = tmp_path / "scene.mp4"
    truth = render_clip(scene_clip_spec(scene, tmp_path / "scene.png"), src, size=(640, 360), frames=60, seed=0)
    reports = {}
    for name, used in (("side", Engine(engine._detectors, engine.params, classes_side_by_side=True)), ("shipped", engine)):
        dst = tmp_path / name / src.name
        dst.parent.mkdir()
        reports[name] = process_video(src, dst, Params(), used, name=src.name)
        assert reports[name].disposition in ("done", "review"), reports[name].error
    side, shipped = (reports[name].video for name in ("side", "shipped"))
    assert (side["frames_detected"], side["keyframes"], side["tracks"]) == (
        shipped["frames_detected"], shipped["keyframes"], shipped["tracks"])
    for object_class in ObjectClass:
        dst = tmp_path / "side" / src.name
        result = score_clip("scene", truth, dst.with_name(companion_name(dst)), Params().mask, (object_class,))
        assert result.box_frames > 0 and result.recall == 1.0, (object_class, result.masked_box_frames, result.box_frames)
