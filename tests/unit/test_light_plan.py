"""The light frame plan follows the scene: faces known, plates known (pipeline/video/light_plan.py)."""

from __future__ import annotations

import pytest

from pipeline.params import VIDEO_PLANS, VideoParams
from pipeline.records import ObjectClass
from pipeline.track.bytetrack import TrackObservation
from pipeline.video.light_plan import NO_TILES, light_face_scale, scaled_plan, scene_plans


@pytest.mark.parametrize(("sides", "scale"), [
    ([], 1.0),  # no face known: a small one could be anywhere
    ([80, 60], 0.5),  # 30 px at half scale
    ([40, 120], 0.75),  # the smallest decides: 30 px at 0.75, 20 px at 0.5
    ([30], 1.0),  # 22.5 px at 0.75: too small
    ([24], 1.0),
])
def test_the_smallest_known_face_decides_the_scale(sides, scale):
    assert light_face_scale(sides, 24) == scale


def track(object_class: ObjectClass, side: float) -> TrackObservation:
    return TrackObservation(1, int(object_class), (100, 100, 100 + side, 100 + side), 0.9, True, 0)


PLANS = {c: VIDEO_PLANS[c.label] for c in ObjectClass}


@pytest.mark.parametrize(("plates", "tiles"), [
    ([], False),  # no plate known
    ([300], False),  # 100 px wide in the 1920 px frame letterboxed to 640: the whole frame finds it
    ([300, 120], True),  # 40 px there: a small plate, the tiles stay on
])
def test_plates_get_tiles_only_while_a_small_plate_is_known(plates, tiles):
    tracks = [track(ObjectClass.FACE, 80), *(track(ObjectClass.LICENSE_PLATE, side) for side in plates)]
    chosen, scale, tiled = scene_plans(PLANS, tracks, 1920, VideoParams(), 640)
    assert tiled == tiles
    assert chosen[ObjectClass.LICENSE_PLATE] == (VIDEO_PLANS["license_plate"] if tiles else
                                                 VIDEO_PLANS["license_plate"].model_copy(update={"tile_above": NO_TILES}))
    assert scale == 0.5 and chosen[ObjectClass.FACE].max_side == 960


def test_a_small_face_keeps_the_full_resolution_pass():
    tracks = [track(ObjectClass.FACE, 80), track(ObjectClass.FACE, 20)]
    chosen, scale, _ = scene_plans(PLANS, tracks, 1920, VideoParams(), 640)
    assert scale == 1.0 and chosen[ObjectClass.FACE] == VIDEO_PLANS["face"]


def test_a_scaled_plan_caps_the_whole_frame_pass():
    plan = VIDEO_PLANS["face"]
    assert scaled_plan(plan, 1.0, 1920) is plan
    assert scaled_plan(plan, 0.5, 1920).max_side == 960
    assert scaled_plan(plan, 0.75, 1280).max_side == 960  # of the frame's own side, below the plan's cap
    assert scaled_plan(plan, 0.5, 1920).model_dump(exclude={"max_side"}) == plan.model_dump(exclude={"max_side"})
