"""Every configured class is searched on every window of its plan, whatever the other classes found.

Stub networks, no models: each records the windows it saw and always "finds" one confident box, so a
detector that stops another one from running (the rebinding bug of issue 12) shows up as a missing call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from pipeline.detect.engine import Engine, _Loaded
from pipeline.detect.windows import plan_windows
from pipeline.params import DEFAULT_CLASSES, UPRIGHT_ONLY, VIDEO_PLANS, DetectorParams, ModelSpec, ScalePlan
from pipeline.qc import ModelRecord
from pipeline.records import ObjectClass


class StubNetwork:
    """Finds one box at score 0.9 in the middle of every input, and remembers the input sizes."""

    def __init__(self, fixed_input: int | None):
        self.fixed_input = fixed_input
        self.seen: list[tuple[int, int]] = []

    def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(rgb.shape[:2])
        h, w = rgb.shape[:2]
        return np.array([[w * 0.4, h * 0.4, w * 0.6, h * 0.6]], dtype=np.float32), np.array([0.9], dtype=np.float32)

    def batch(self, images: list[np.ndarray], min_score: float) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self(rgb, min_score) for rgb in images]

    def run_once(self, options: object) -> None:
        pass


def stub_engine(order: tuple[str, ...], network_type: type[StubNetwork] | None = None) -> tuple[Engine, dict[ObjectClass, StubNetwork]]:
    params = DetectorParams(classes=order)  # type: ignore[arg-type]
    loaded, networks = [], {}
    for label in order:
        object_class = ObjectClass.from_label(label)
        network = (network_type or StubNetwork)(None if object_class is ObjectClass.FACE else 640)
        scales = params.for_class(object_class).scales
        spec = ModelSpec(name=label, family="centerface" if label == "face" else "yolov8", classes=(label,))  # type: ignore[arg-type]
        record = ModelRecord(name=label, task=label, family=spec.family, sha256="0" * 64, providers=["stub"])
        loaded.append(_Loaded(spec, network, object_class, scales, record))
        networks[object_class] = network
    return Engine(loaded, params), networks


IMAGE = np.zeros((900, 1200, 3), dtype=np.uint8)
FACE_PLAN, PLATE_PLAN = DEFAULT_CLASSES["face"].scales, DEFAULT_CLASSES["license_plate"].scales


def expected_windows(plan: ScalePlan, fixed_input: int | None) -> int:
    return len(plan_windows(IMAGE.shape[0], IMAGE.shape[1], plan, fixed_input))


@pytest.mark.parametrize("order", [("face", "license_plate"), ("license_plate", "face")])
def test_every_class_runs_on_every_window_in_either_order(order):
    engine, networks = stub_engine(order)
    found = engine.detect(IMAGE)
    face, plate = networks[ObjectClass.FACE], networks[ObjectClass.LICENSE_PLATE]
    assert len(face.seen) == expected_windows(FACE_PLAN, None) > 1
    assert len(plate.seen) == expected_windows(PLATE_PLAN, 640) > 1
    assert set(found.classes.tolist()) == {int(ObjectClass.FACE), int(ObjectClass.LICENSE_PLATE)}


def test_the_default_params_search_both_classes():
    assert set(DetectorParams().classes) == {"face", "license_plate"}
    engine, networks = stub_engine(DetectorParams().classes)
    engine.detect(IMAGE)
    assert all(network.seen for network in networks.values())


def test_a_filter_runs_only_the_classes_it_names():
    engine, networks = stub_engine(("face", "license_plate"))
    found = engine.detect(IMAGE, only=frozenset({ObjectClass.LICENSE_PLATE}))
    assert not networks[ObjectClass.FACE].seen
    assert len(networks[ObjectClass.LICENSE_PLATE].seen) == expected_windows(PLATE_PLAN, 640)
    assert set(found.classes.tolist()) == {int(ObjectClass.LICENSE_PLATE)}


def test_no_filter_is_every_configured_class_and_a_full_filter_is_the_same():
    for only in (None, frozenset(ObjectClass)):
        engine, networks = stub_engine(("license_plate", "face"))
        engine.detect(IMAGE, only=only)
        assert all(network.seen for network in networks.values())


def test_a_scale_override_replaces_one_class_plan_only():
    engine, networks = stub_engine(("face", "license_plate"))
    light = FACE_PLAN.model_copy(update={"downscale": False, "rotate_180": False, **UPRIGHT_ONLY, "upscale_below": 0})
    engine.detect(IMAGE, scales={ObjectClass.FACE: light})
    assert len(networks[ObjectClass.FACE].seen) == expected_windows(light, None) == 1
    assert len(networks[ObjectClass.LICENSE_PLATE].seen) == expected_windows(PLATE_PLAN, 640)


class CountingNetwork(StubNetwork):
    """Also remembers how many images each call took."""

    def __init__(self, fixed_input: int | None):
        super().__init__(fixed_input)
        self.calls: list[int] = []

    def batch(self, images: list[np.ndarray], min_score: float) -> list[tuple[np.ndarray, np.ndarray]]:
        self.calls.append(len(images))
        return super().batch(images, min_score)


@pytest.mark.parametrize("max_batch", [1, 3, 64])
def test_windows_go_to_the_network_in_batches_each_once(max_batch):
    engine, _ = stub_engine(("face", "license_plate"))
    for index, loaded in enumerate(engine._detectors):
        engine._detectors[index] = loaded.__class__(loaded.spec, CountingNetwork(loaded.network.fixed_input),
                                                     loaded.object_class, loaded.scales, loaded.record)
    batched = Engine(engine._detectors, engine.params, max_batch=max_batch)
    ticks: list[int] = []
    found = batched.detect(IMAGE, progress=lambda: ticks.append(1))
    plate = next(d.network for d in batched._detectors if d.object_class is ObjectClass.LICENSE_PLATE)
    assert sum(plate.calls) == expected_windows(PLATE_PLAN, 640) == len(plate.seen)
    assert max(plate.calls) <= max_batch and (max_batch == 1 or max(plate.calls) > 1)
    assert len(ticks) == sum(len(d.network.calls) for d in batched._detectors)  # a heartbeat per call
    assert len(found) >= 1


class TwoFinds(StubNetwork):
    """Finds a review-band box (0.3) and a confident one (0.5) in every input."""

    def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(rgb.shape[:2])
        h, w = rgb.shape[:2]
        boxes = np.array([[0, 0, w * 0.2, h * 0.2], [w * 0.5, h * 0.5, w * 0.7, h * 0.7]], dtype=np.float32)
        return boxes, np.array([0.3, 0.5], dtype=np.float32)


@pytest.mark.parametrize("min_score", [None, 0.05])
def test_the_sideways_views_count_only_confident_finds(min_score):
    """The quarter-turned views (rotate_90) keep only finds at the class's threshold (0.4), at the production
    floors and at an evaluation's lower one alike; the upright view keeps its review band."""
    engine, networks = stub_engine(("face",), TwoFinds)
    sideways = ScalePlan(max_side=1920, upscale_below=0, tile_above=4000, tile_size=1280, rotate_90=True)
    found = engine.candidates(IMAGE, min_score, {ObjectClass.FACE: sideways})
    assert sorted(networks[ObjectClass.FACE].seen) == [(900, 1200), (1200, 900), (1200, 900)]  # upright, two turns
    assert sorted(found.scores.tolist()) == pytest.approx([0.3, 0.5, 0.5, 0.5])  # the turned 0.5s lie elsewhere


def test_a_sideways_find_of_a_face_the_upright_view_found_adds_nothing():
    """The stub finds a centred square in every input, so each turned view's find maps back onto the upright
    one's: the upright box stays alone, and the merged box is not widened by a box that sits differently."""
    engine, networks = stub_engine(("face",))
    sideways = ScalePlan(max_side=1920, upscale_below=0, tile_above=4000, tile_size=1280, rotate_90=True)
    found = engine.candidates(IMAGE, None, {ObjectClass.FACE: sideways})
    assert len(networks[ObjectClass.FACE].seen) == 3
    assert found.boxes.tolist() == [[480.0, 360.0, 720.0, 540.0]]


class SurerTurned(StubNetwork):
    """Finds the centred square in every input, more surely in a turned view (taller than wide, for IMAGE)."""

    def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        boxes, _ = super().__call__(rgb, min_score)
        return boxes, np.array([0.95 if rgb.shape[0] > rgb.shape[1] else 0.6], dtype=np.float32)


def test_a_sideways_find_surer_than_the_upright_one_is_kept():
    """A face lying on its side: the upright views find it less surely than a turned view, whose find is kept
    (and so leads the merge)."""
    engine, _ = stub_engine(("face",), SurerTurned)
    sideways = ScalePlan(max_side=1920, upscale_below=0, tile_above=4000, tile_size=1280, rotate_90=True)
    found = engine.candidates(IMAGE, None, {ObjectClass.FACE: sideways})
    assert sorted(found.scores.tolist()) == pytest.approx([0.6, 0.95, 0.95])
    assert engine.merged(found).scores.tolist() == pytest.approx([0.95])


def meeting_of(parties: int) -> type[StubNetwork]:
    """Stub networks that wait, for every image, until ``parties`` of them are on an image at once: only
    networks that run at the same time ever get past (run in turn, the barrier breaks by timing out)."""
    meeting = threading.Barrier(parties, timeout=5)

    class Meets(StubNetwork):
        def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
            meeting.wait()
            return super().__call__(rgb, min_score)

    return Meets


# One window a class: one image for each network at a time.
ONE_WINDOW = ScalePlan(max_side=1920, upscale_below=0, tile_above=4000, tile_size=1280, downscale=False, rotate_180=False)


def side_by_side(order: tuple[str, ...], network_type: type[StubNetwork]) -> tuple[Engine, dict[ObjectClass, StubNetwork]]:
    engine, networks = stub_engine(order, network_type)
    return Engine(engine._detectors, engine.params, classes_side_by_side=True), networks


@pytest.mark.parametrize("order", [("face", "license_plate"), ("license_plate", "face")])
def test_side_by_side_the_classes_run_at_the_same_time_and_give_what_one_after_the_other_gives(order):
    """One image for each network at once (a single-window plan each, one window around one box each), so the
    barrier lets them through together; the result, and its order, is the sequential engine's."""
    plans = {object_class: ONE_WINDOW for object_class in ObjectClass}
    engine, networks = side_by_side(order, meeting_of(2))
    found = engine.candidates(IMAGE, None, plans)
    sequential, _ = stub_engine(order)
    expected = sequential.candidates(IMAGE, None, plans)
    assert all(len(network.seen) == 1 for network in networks.values())
    np.testing.assert_array_equal(found.classes, expected.classes)
    np.testing.assert_array_equal(found.boxes, expected.boxes)
    around = {object_class: np.array([[100, 100, 160, 160]], dtype=np.float32) for object_class in ObjectClass}
    expected = sequential.detect_around(IMAGE, around, context=1.0)
    for calls in (2, 3):  # the threads are kept between calls
        again = engine.detect_around(IMAGE, around, context=1.0)
        assert all(len(network.seen) == calls for network in networks.values())
        np.testing.assert_array_equal(again.boxes, expected.boxes)


def test_side_by_side_progress_is_told_by_one_thread_at_a_time():
    engine, _ = side_by_side(("face", "license_plate"), StubNetwork)
    inside, most, ticks = [0], [0], []
    guard = threading.Lock()

    def progress() -> None:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.001)  # long enough for a second caller to arrive, if one could
        with guard:
            inside[0] -= 1
        ticks.append(threading.current_thread().name)

    engine.detect(IMAGE, progress=progress)
    assert most == [1]
    assert len(ticks) == expected_windows(FACE_PLAN, None) + expected_windows(PLATE_PLAN, 640)
    assert {name.startswith("veil-class") for name in ticks} == {True, False}  # the caller runs one class


def test_side_by_side_several_callers_each_get_their_classes_run_at_once():
    """Two videos on threads sharing one engine: all four class calls run at the same time, none waits for
    another caller's threads (both classes of two callers: four at once)."""
    plans = {object_class: ONE_WINDOW for object_class in ObjectClass}
    engine, _ = side_by_side(("face", "license_plate"), meeting_of(4))
    found: list = [None, None]

    def caller(slot: int) -> None:
        found[slot] = engine.candidates(IMAGE, None, plans)

    callers = [threading.Thread(target=caller, args=(slot,)) for slot in range(2)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert all(result is not None and set(result.classes.tolist()) == {1, 2} for result in found)


def test_a_class_that_fails_side_by_side_fails_the_call():
    class Broken(StubNetwork):
        def batch(self, images: list[np.ndarray], min_score: float) -> list[tuple[np.ndarray, np.ndarray]]:
            if self.fixed_input:
                raise RuntimeError("the plate network broke")
            return super().batch(images, min_score)

    for order in (("face", "license_plate"), ("license_plate", "face")):  # on the caller's thread, or not
        engine, _ = side_by_side(order, Broken)
        with pytest.raises(RuntimeError, match="plate network broke"):
            engine.detect(IMAGE)


def test_side_by_side_is_on_for_a_gpu_and_off_for_the_cpu_unless_set():
    from pipeline.detect.runtime import RuntimeParams

    assert not RuntimeParams().side_by_side
    assert RuntimeParams(device="cuda").side_by_side and RuntimeParams(device="cuda:1").side_by_side
    assert RuntimeParams(classes_side_by_side=True).side_by_side
    assert not RuntimeParams(device="cuda", classes_side_by_side=False).side_by_side


def test_a_keyframe_s_deep_pass_is_the_photo_plan_less_its_quarter_turns_tilted_views_included():
    # Frames are upright by the stream's rotation, but a camera held askew leans every face: the keyframe deep
    # pass keeps the photo plan's 45-degree views (docs/video.md, the deep pass on keyframes).
    engine, networks = stub_engine(("face", "license_plate"))
    engine.detect_deep(IMAGE, {ObjectClass.from_label(label): plan for label, plan in VIDEO_PLANS.items()})
    deep = FACE_PLAN.model_copy(update={"rotate_90": False})
    upright = deep.model_copy(update={"tilt_45": False})
    assert len(networks[ObjectClass.FACE].seen) == expected_windows(deep, None) == expected_windows(upright, None) + 2
    assert len(networks[ObjectClass.LICENSE_PLATE].seen) == expected_windows(PLATE_PLAN, 640)


def test_the_engine_says_which_classes_its_deep_pass_tilts():
    """What the video job's count of tilted keyframes goes by: the engine's own plans, not the profile's."""
    engine, _ = stub_engine(("face", "license_plate"))
    assert engine.tilts(ObjectClass.FACE) and not engine.tilts(ObjectClass.LICENSE_PLATE)
    engine._detectors[0] = replace(engine._detectors[0], scales=FACE_PLAN.model_copy(update={"tilt_45": False}))
    assert not engine.tilts(ObjectClass.FACE)


def leaning_face(upright_score: float) -> type[StubNetwork]:
    """Finds the centred square in every input: at 0.95 in a tilted view (its canvas is square), at
    ``upright_score`` in the others."""

    class Leaning(StubNetwork):
        def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
            boxes, _ = super().__call__(rgb, min_score)
            return boxes, np.array([0.95 if rgb.shape[0] == rgb.shape[1] else upright_score], dtype=np.float32)

    return Leaning


@pytest.mark.parametrize(("upright_score", "unseen"), [(0.6, 0), (0.3, 1)])
def test_a_keyframe_s_tilted_finds_are_unseen_only_where_the_light_plan_found_no_face_surely(upright_score, unseen):
    """A face the light plan's views found surely (0.6) but less surely than a tilted view: the tilted find is
    added and leads the merge (the photo rule), but the light plan sees that face, so it says nothing of a
    leaning shot. One they found only in the review band (0.3) is unseen."""
    engine, _ = stub_engine(("face",), leaning_face(upright_score))
    found = engine.detect_deep(IMAGE, {ObjectClass.FACE: VIDEO_PLANS["face"]})
    assert found.everything.scores.tolist() == pytest.approx([0.95])
    assert len(found.tilted) == 1 and len(found.tilted_unseen) == unseen


class LeaningOneWay(StubNetwork):
    """Finds the centred square surely in a tilted view (a square canvas) where the photo's bright corner lands
    at the canvas's left edge, nowhere in the other tilted view, and at 0.3 (the review band) upright."""

    def __call__(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        boxes, _ = super().__call__(rgb, min_score)
        if rgb.shape[0] != rgb.shape[1]:
            return boxes, np.array([0.3], dtype=np.float32)
        if rgb[:, : rgb.shape[1] // 10].max() > 128:
            return boxes, np.array([0.95], dtype=np.float32)
        return boxes[:0], np.zeros(0, dtype=np.float32)


@pytest.mark.parametrize(("corner", "sides"), [((slice(0, 100), slice(0, 100)), (45,)),
                                               ((slice(800, 900), slice(0, 100)), (-45,))])
def test_a_keyframe_says_which_way_its_unseen_faces_lean(corner, sides):
    """The light passes of a leaning shot get only the tilted view that saw its faces (pipeline/video/keyframes.py).
    A picture tilted 45 degrees counter-clockwise brings its top-left corner to the left edge; clockwise, its
    bottom-left corner."""
    engine, _ = stub_engine(("face",), LeaningOneWay)
    picture = IMAGE.copy()
    picture[corner] = 255
    found = engine.detect_deep(picture, {ObjectClass.FACE: VIDEO_PLANS["face"]})
    assert len(found.tilted_unseen) == 1 and found.leaning_sides == sides
    upright = engine.detect_deep(IMAGE, {ObjectClass.FACE: VIDEO_PLANS["face"]})  # no view sees it surely
    assert len(upright.tilted) == 0 and upright.leaning_sides == ()
