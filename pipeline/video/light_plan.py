"""The light frame plan follows the scene, between keyframes. A whole-frame pass costs its pixels (CenterFace:
310 ms at 1080p, 80 ms at half that side; the plate model: one 640x640 pass per window), so:

- faces: while every face known in the clip (its tracks) is large, the whole-frame face pass runs at a reduced
  scale. Small faces keep it at full resolution; so does a clip where no face is known yet, since a small face
  could be anywhere;
- plates: the tiles of the plate pass exist for small plates, which the whole frame letterboxed to the
  model's input shrinks below what it finds. While no plate is known, or every known plate is large there,
  the plate pass is the whole frame only; a small plate known keeps the tiles on (a scene with one small
  plate, a car park or a street from afar, has more coming).

Re-detection around tracks stays at native resolution, and the keyframe deep pass (the photo plan, every
class, full resolution) finds what a reduced pass misses, back-filled by the look-ahead over one interval.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.params import ScalePlan, VideoParams
from pipeline.records import ObjectClass
from pipeline.track.bytetrack import TrackObservation

SCALE_STEPS = (0.5, 0.75, 1.0)  # few steps: each scale is a new input shape for the network
NO_TILES = 1 << 30  # a tile_above no frame reaches


def light_face_scale(known_sides: Iterable[float], min_px: int) -> float:
    """The smallest step that keeps every known face (its shorter side, in frame pixels) at least ``min_px``
    in the network's input; 1.0 when no face is known."""
    sides = list(known_sides)
    if not sides:
        return 1.0
    needed = min_px / max(min(sides), 1e-6)
    return next((step for step in SCALE_STEPS if step >= needed), 1.0)


def scaled_plan(plan: ScalePlan, scale: float, long_side: int) -> ScalePlan:
    """``plan`` with its whole-image pass at ``scale`` of what it would be on a frame of ``long_side``."""
    if scale >= 1.0:
        return plan
    return plan.model_copy(update={"max_side": max(64, round(min(plan.max_side, long_side) * scale))})


def sides(tracks: list[TrackObservation], object_class: ObjectClass, longer: bool) -> list[float]:
    """The longer (or shorter) side of every track of ``object_class``, in frame pixels."""
    boxes = [t.box for t in tracks if t.object_class == int(object_class)]
    pick = max if longer else min
    return [pick(x2 - x1, y2 - y1) for x1, y1, x2, y2 in boxes]


def scene_plans(
    plans: dict[ObjectClass, ScalePlan], tracks: list[TrackObservation], long_side: int, video: VideoParams,
    plate_input: int,
) -> tuple[dict[ObjectClass, ScalePlan], float, bool]:
    """The frame plans for the scene the tracks describe: (plans, the face pass's scale, plate tiles on).
    ``plate_input``: the plate model's square input side, to which the whole frame is letterboxed."""
    scale = light_face_scale(sides(tracks, ObjectClass.FACE, longer=False), video.face_min_px)
    whole_frame = plate_input / long_side
    plate_tiles = any(side * whole_frame < video.plate_min_px for side in sides(tracks, ObjectClass.LICENSE_PLATE, longer=True))
    chosen = dict(plans)
    if ObjectClass.FACE in chosen:
        chosen[ObjectClass.FACE] = scaled_plan(chosen[ObjectClass.FACE], scale, long_side)
    if ObjectClass.LICENSE_PLATE in chosen and not plate_tiles:
        chosen[ObjectClass.LICENSE_PLATE] = chosen[ObjectClass.LICENSE_PLATE].model_copy(update={"tile_above": NO_TILES})
    return chosen, scale, plate_tiles
