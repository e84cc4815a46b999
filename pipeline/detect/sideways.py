"""The rules a turned or tilted view's finds are held to, beside the upright views' finds of one image."""

from __future__ import annotations

import numpy as np

from pipeline.detect.nms import overlapping
from pipeline.records import Detections

SAME_FACE_SHARE = 0.5  # a sideways find and an upright one sharing half the smaller's area are one face


def sideways_finds(turned: Detections, upright: Detections, confident: float) -> Detections:
    """What the quarter-turned views add: their confident finds, less those of a face that the upright views
    found at least as surely. They find faces lying on their side, which the upright views miss; on an
    upright photo their review-band finds are background, and their box of an upright face sits differently
    and would widen the merged box (docs/evaluation.md#sideways-photos)."""
    turned = turned[turned.scores >= confident]
    if not len(turned):  # no turned view ran (video frames, plates), or it found nothing sure
        return turned
    same, known = _same_faces(turned, upright, confident)
    surer = known.scores[None, :] >= turned.scores[:, None]
    return turned[~np.asarray((same & surer).any(axis=1), dtype=bool)]


def unseen_upright(sideways: Detections, upright: Detections, confident: float) -> Detections:
    """Of ``sideways_finds``, the faces that no confident find of ``upright`` (some upright views' finds)
    overlaps: those the sideways views alone see surely."""
    same, _ = _same_faces(sideways, upright, confident)
    return sideways[~np.asarray(same.any(axis=1), dtype=bool)]


def _same_faces(sideways: Detections, upright: Detections, confident: float) -> tuple[np.ndarray, Detections]:
    """Which confident finds of ``upright`` each of ``sideways`` is the same face as (sideways x those), and
    those finds."""
    known = upright[upright.scores >= confident]
    return overlapping(sideways.boxes, known.boxes, SAME_FACE_SHARE), known
