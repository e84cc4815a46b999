"""Underexposed pictures are levelled before the detectors see them (pipeline/detect/exposure.py), and only then:
stretched, and for the plate detector smoothed too, against the noise the stretch amplified. Every entry of the
engine feeds each network its view, and the caller's pixels stay as they came."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.detect.engine import Engine
from pipeline.detect.exposure import (
    BRIGHT_END_PERCENTILE,
    DIM_BRIGHT_END,
    MOST_GAIN,
    NOISE_SIGMA,
    denoised,
    levelled,
    levels,
    stretched,
)
from pipeline.detect.views import RESTORED_CLASSES, detector_views
from pipeline.params import DetectorParams
from pipeline.records import ObjectClass

from tests.unit.test_engine_classes import StubNetwork, stub_engine


def scene(bright_end: int, shape: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A picture whose grey levels run evenly from 0 to ``bright_end``, with some colour."""
    ramp = np.linspace(0, bright_end, shape[0] * shape[1]).reshape(shape)
    rgb = np.stack([ramp, ramp * 0.8, ramp * 0.6], axis=2)
    return np.random.default_rng(1).permutation(rgb.reshape(-1, 3)).reshape(*shape, 3).astype(np.uint8)


def test_a_well_exposed_picture_is_fed_as_it_is():
    rgb = scene(250)
    assert levels(rgb) is None
    assert levelled(rgb) is rgb


def test_a_dim_picture_is_stretched_over_the_full_range():
    rgb = scene(40)
    black, gain = levels(rgb)
    assert black < 2 and 5 < gain < MOST_GAIN
    lifted = stretched(rgb, black, gain)
    assert lifted.max() == 255 and np.percentile(lifted[..., 0], 50) > 100
    assert np.array_equal(levelled(rgb), lifted)
    assert rgb.max() <= 40  # the input is not touched


def test_a_nearly_black_picture_is_lifted_by_at_most_the_largest_gain():
    rgb = scene(6)
    assert levels(rgb)[1] == MOST_GAIN
    assert levelled(rgb).max() <= 6 * MOST_GAIN


@settings(max_examples=50, deadline=None)
@given(bright_end=st.integers(0, 255))
def test_levelling_keeps_the_order_of_grey_levels_and_starts_under_the_bright_end(bright_end):
    rgb = np.repeat(scene(bright_end, (60, 80))[..., :1], 3, axis=2)  # grey: its luminance is its level
    lifted = levelled(rgb)
    assert (lifted is rgb) == (levels(rgb) is None)
    order = np.argsort(rgb[..., 0].ravel(), kind="stable")
    assert np.all(np.diff(lifted[..., 0].ravel()[order].astype(int)) >= 0)
    if bright_end * BRIGHT_END_PERCENTILE / 100 >= DIM_BRIGHT_END + 1:
        assert lifted is rgb


def test_a_night_scene_with_a_street_lamp_is_still_levelled():
    rgb = scene(30)
    rgb[:12, :40] = 255  # a lamp: 0.6% of the picture, saturated
    black, gain = levels(rgb)
    assert gain > 5
    assert levelled(rgb)[100:, 100:].max() > 200


def test_the_noise_the_stretch_amplifies_is_smoothed_away_and_the_levels_kept():
    """A night shot's flat wall: noise of 3 grey levels on level 20 is 24 levels stretched eightfold. The
    smoothing takes most of it away and keeps the wall's level; a step between two walls stays a step."""
    rng = np.random.default_rng(0)
    wall = np.full((200, 200, 3), 20.0)
    wall[:, 100:] = 30.0
    rgb = np.clip(wall + rng.normal(0, 3, wall.shape), 0, 255).astype(np.uint8)
    rgb[:4, :4] = 31  # the bright end sits on the brighter wall
    lifted = levelled(rgb)
    smoothed = detector_views(rgb, ObjectClass)[ObjectClass.LICENSE_PLATE]
    assert np.array_equal(smoothed, denoised(lifted))
    left, right = (slice(20, 180), slice(10, 90)), (slice(20, 180), slice(110, 190))
    assert smoothed[left].std() < lifted[left].std() / 3
    assert abs(float(smoothed[left].mean()) - float(lifted[left].mean())) < 2
    assert smoothed[right].mean() - smoothed[left].mean() > 50
    assert NOISE_SIGMA <= 2  # wider would take a plate's characters with the noise


def test_only_the_plate_detector_sees_the_levelled_picture_smoothed():
    rgb = np.random.default_rng(2).integers(0, 40, (120, 160, 3), dtype=np.uint8)
    views = detector_views(rgb, ObjectClass)
    assert RESTORED_CLASSES == {ObjectClass.LICENSE_PLATE}
    assert np.array_equal(views[ObjectClass.FACE], levelled(rgb))
    assert views[ObjectClass.LICENSE_PLATE].std() < views[ObjectClass.FACE].std() / 2
    assert detector_views(rgb, [ObjectClass.FACE]).keys() == {ObjectClass.FACE}
    bright = rgb + 200
    assert all(view is bright for view in detector_views(bright, ObjectClass).values())


class BrightestSeen(StubNetwork):
    """Remembers the brightest pixel of every input."""

    def __init__(self, fixed_input: int | None):
        super().__init__(fixed_input)
        self.brightest: list[int] = []

    def __call__(self, rgb, min_score):
        self.brightest.append(int(rgb.max()))
        return super().__call__(rgb, min_score)


def brightest_fed(run, **params) -> dict[ObjectClass, list[int]]:
    """The brightest pixel of every input each class's stub network got while ``run(engine)`` ran, the engine
    made with the DetectorParams ``params``."""
    engine, networks = stub_engine(("face", "license_plate"), BrightestSeen)
    engine = Engine(engine._detectors, DetectorParams(**params))
    run(engine)
    return {object_class: network.brightest for object_class, network in networks.items()}  # type: ignore[attr-defined]


BOXES = {ObjectClass.FACE: np.array([[100, 100, 160, 170]], np.float32),
         ObjectClass.LICENSE_PLATE: np.array([[600, 500, 700, 530]], np.float32)}


def entries(picture: np.ndarray) -> dict[str, Callable[[Engine], object]]:
    """Every way into the engine, each on ``picture`` (at least 900 x 1200)."""
    return {
        "detect": lambda engine: engine.detect(picture),
        "detect_frames": lambda engine: engine.detect_frames([picture, picture], [{}, {}], [None, None]),
        "detect_deep": lambda engine: engine.detect_deep(picture, {}),
        "detect_around": lambda engine: engine.detect_around(picture, BOXES, context=1.0),
    }


# A dim checkerboard: every window holds a whole square, and the smoothing keeps its middle as bright.
DARK = np.repeat(((np.indices((900, 1200)) // 24).sum(axis=0) % 2 * 40).astype(np.uint8)[..., None], 3, axis=2)
ENTRIES = entries(DARK)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_every_class_sees_the_dim_picture_levelled_and_the_callers_pixels_are_kept(entry):
    before = DARK.copy()
    fed = brightest_fed(ENTRIES[entry])
    assert all(fed.values()) and all(min(seen) > 200 for seen in fed.values()), fed
    assert np.array_equal(DARK, before)
    unlevelled = brightest_fed(ENTRIES[entry], level_dark=False)
    assert all(max(seen) <= 40 for seen in unlevelled.values()), unlevelled


def test_levelling_is_on_in_the_shipped_defaults():
    assert DetectorParams().level_dark


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_every_entry_feeds_the_smoothed_view_to_the_plate_detector_alone(entry, monkeypatch):
    """The smoothing replaced by a picture of one grey level (a marker no crop or scaling changes): the plate
    detector sees only that, the face detector only the levelled picture."""
    monkeypatch.setattr("pipeline.detect.exposure.denoised", lambda rgb: np.full_like(rgb, 77))
    fed = brightest_fed(ENTRIES[entry])
    assert set(fed[ObjectClass.LICENSE_PLATE]) == {77}, fed
    assert min(fed[ObjectClass.FACE]) > 200, fed
