"""Detector settings keyed by class label: the shipped defaults, partial tables, and the keys from before
``per_class`` (``face``, ``face_model``, ``face_scales``, ... and ``video.face_scales``), which still load."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from pipeline.params import DEFAULT_CLASSES, FACE_PLAN, DetectorParams, ModelSpec, Params, ScalePlan, VideoParams
from pipeline.records import ObjectClass

FACE, PLATE = ObjectClass.FACE, ObjectClass.LICENSE_PLATE

# The profile tables of config/veil.toml before per_class (every per-class key, at its default).
OLD_PROFILE = """
[detector]
classes = ["face", "license_plate"]
nms_iou = 0.4
[detector.face]
threshold = 0.4
review_floor = 0.2
[detector.license_plate]
threshold = 0.35
review_floor = 0.15
[detector.face_scales]
max_side = 1920
upscale_below = 1024
tile_above = 2400
tile_size = 1280
tile_overlap = 0.25
downscale = true
rotate_180 = true
[detector.plate_scales]
max_side = 640
upscale_below = 1401
tile_above = 1400
tile_size = 960
tile_overlap = 0.25
downscale = false
rotate_180 = false
[detector.face_model]
name = "centerface"
family = "centerface"
classes = ["face"]
[detector.plate_model]
name = "platedet"
family = "yolov8"
classes = ["license_plate"]
input_size = 640
[video.face_scales]
max_side = 1920
upscale_below = 1024
tile_above = 2400
tile_size = 1280
tile_overlap = 0.25
downscale = false
rotate_180 = false
[video.plate_scales]
max_side = 640
upscale_below = 0
tile_above = 1400
tile_size = 1080
tile_overlap = 0.2
downscale = false
rotate_180 = false
"""


def test_the_defaults_are_the_figures_from_before_per_class():
    detector, video = DetectorParams(), VideoParams()
    assert detector.classes == ("face", "license_plate") and set(detector.per_class) == {"face", "license_plate"}
    assert (detector.thresholds(FACE).threshold, detector.thresholds(FACE).review_floor) == (0.4, 0.2)
    assert (detector.thresholds(PLATE).threshold, detector.thresholds(PLATE).review_floor) == (0.35, 0.15)
    assert detector.for_class(FACE).model == ModelSpec(name="centerface", family="centerface", classes=("face",))
    assert detector.for_class(PLATE).model == ModelSpec(name="platedet", family="yolov8", classes=("license_plate",),
                                                        input_size=640)
    assert detector.for_class(FACE).scales == ScalePlan(max_side=1920, upscale_below=1401, tile_above=2400,
                                                        tile_size=1280, downscale=True, rotate_180=True, rotate_90=True,
                                                        tilt_45=True)
    assert detector.for_class(PLATE).scales == ScalePlan(max_side=640, upscale_below=1401, tile_above=1400, tile_size=960)
    assert video.scales["face"] == detector.for_class(FACE).scales.model_copy(
        update={"upscale_below": 1024, "downscale": False, "rotate_180": False, "rotate_90": False, "tilt_45": False})
    assert video.scales["license_plate"] == ScalePlan(max_side=640, upscale_below=0, tile_above=1400, tile_size=1080,
                                                      tile_overlap=0.2)


def test_an_old_profile_loads_as_the_same_params():
    # The old layout, with the face plan's 2x view below 1024 px as it was shipped then (1401 since 5 December).
    old_face_plan = {"scales": {**FACE_PLAN.model_dump(), "upscale_below": 1024}}
    assert Params.model_validate(tomllib.loads(OLD_PROFILE)) == Params.model_validate(
        {"detector": {"per_class": {"face": old_face_plan}}})


def test_a_sidecar_dump_reads_back_the_same():
    assert Params.model_validate_json(Params().model_dump_json()) == Params()
    assert Params.model_validate(Params().model_dump(mode="json")) == Params()


@pytest.mark.parametrize(
    "old, new",
    [
        ({"face": {"threshold": 0.5, "review_floor": 0.3}}, {"per_class": {"face": {"threshold": 0.5, "review_floor": 0.3}}}),
        ({"face_scales": {"max_side": 1280}}, {"per_class": {"face": {"scales": {"max_side": 1280}}}}),
        ({"plate_scales": {"tile_size": 800}}, {"per_class": {"license_plate": {"scales": {"tile_size": 800}}}}),
        ({"plate_model": {"name": "mine", "family": "yolov5", "classes": ["license_plate"]}},
         {"per_class": {"license_plate": {"model": {"name": "mine", "family": "yolov5", "classes": ["license_plate"]}}}}),
    ],
    ids=["thresholds", "face_scales", "plate_scales", "plate_model"],
)
def test_an_old_key_means_what_its_per_class_key_means(old, new):
    assert DetectorParams.model_validate(old) == DetectorParams.model_validate(new)


def test_a_partial_table_keeps_the_class_defaults_for_the_keys_it_leaves_out():
    detector = DetectorParams.model_validate({"per_class": {"face": {"threshold": 0.6, "scales": {"max_side": 1280}}}})
    face = detector.for_class(FACE)
    assert face.threshold == 0.6 and face.review_floor == 0.2 and face.model == DEFAULT_CLASSES["face"].model
    assert face.scales == DEFAULT_CLASSES["face"].scales.model_copy(update={"max_side": 1280})
    assert detector.for_class(PLATE) == DEFAULT_CLASSES["license_plate"]  # a class not given keeps all of it


def test_a_partial_frame_plan_keeps_the_frame_defaults_but_an_old_key_the_photo_defaults():
    """The old ``video.face_scales`` table was completed from the photo plan of its day (downscale and rotate_180
    on, no quarter turns): an old file still means exactly that; the new ``video.scales.face`` table is completed
    from the frame plan."""
    new = VideoParams.model_validate({"scales": {"face": {"upscale_below": 0}}})
    old = VideoParams.model_validate({"face_scales": {"upscale_below": 0}})
    assert new.scales["face"] == VideoParams().scales["face"].model_copy(update={"upscale_below": 0})
    assert old.scales["face"] == DEFAULT_CLASSES["face"].scales.model_copy(
        update={"upscale_below": 0, "rotate_90": False, "tilt_45": False})
    assert new.scales["license_plate"] == old.scales["license_plate"] == VideoParams().scales["license_plate"]
    assert VideoParams().frame_plans() == {FACE: VideoParams().scales["face"], PLATE: VideoParams().scales["license_plate"]}


@pytest.mark.parametrize(
    "model, data, message",
    [
        (DetectorParams, {"face": {"threshold": 0.5, "review_floor": 0.1}, "per_class": {"face": {"threshold": 0.3}}},
         "face and per_class.face both set"),
        (DetectorParams, {"face_model": {"name": "a", "family": "centerface", "classes": ["face"]},
                          "per_class": {"face": {"model": {"name": "b", "family": "centerface", "classes": ["face"]}}}},
         "face_model and per_class.face both set model"),
        (VideoParams, {"face_scales": {"max_side": 640}, "scales": {"face": {"max_side": 800}}}, "keep scales only"),
        (DetectorParams, {"classes": ["cat"]}, "unknown class 'cat'"),
        (DetectorParams, {"per_class": {"face": {"threshold": 0.1, "review_floor": 0.2}}}, "above threshold"),
        (DetectorParams, {"per_class": {"face": {"scales": {"tilt_sides": [30]}}}}, "tilt_sides"),
        (DetectorParams, {"per_class": {"face": {"scales": {"tilt_sides": []}}}}, "tilt_sides"),
    ],
    ids=["old and new thresholds", "old and new model", "old and new frame plan", "unknown class", "floor above",
         "a tilt of another angle", "no tilt side"],
)
def test_contradictions_and_unknown_classes_are_refused(model, data, message):
    with pytest.raises(ValidationError, match=message):
        model.model_validate(data)


def test_a_model_swapped_in_for_one_class_leaves_the_rest():
    own = ModelSpec(name="mine", family="centerface", classes=("face",))
    swapped = DetectorParams().with_model(FACE, own)
    assert swapped.for_class(FACE).model == own
    assert swapped.for_class(FACE).scales == DetectorParams().for_class(FACE).scales
    assert swapped.for_class(PLATE) == DetectorParams().for_class(PLATE)
