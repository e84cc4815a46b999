"""A rework document becomes the pipeline's edits: regions to add, false positives to suppress."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.edits import AddRegion, Edits, Suppression, box_polygon

from daemon.review.rework.document import AddSpec, Box, FalsePositiveSpec, ReworkDocument, ReworkError


def interpolate_keys(keys: dict[int, Box]) -> list[tuple[int, Box]]:
    """Every frame from the first key to the last, with its box: keys as given, linear in between."""
    frames = sorted(keys)
    out: list[tuple[int, Box]] = [(frames[0], keys[frames[0]])]
    for before, after in zip(frames, frames[1:]):
        a, b = keys[before], keys[after]
        for frame in range(before + 1, after + 1):
            t = (frame - before) / (after - before)
            x1, y1, x2, y2 = ((1 - t) * u + t * v for u, v in zip(a, b))
            out.append((frame, (x1, y1, x2, y2)))
    return out


def _track_regions(spec: AddSpec) -> list[AddRegion]:
    """One region per run of frames with the same box (a still key box covers its run in one region)."""
    regions: list[AddRegion] = []
    run_start, run_box, last = None, None, None
    for frame, box in interpolate_keys(spec.keys or {}):
        if box != run_box:
            if run_box is not None:
                regions.append(_add(box_polygon(*run_box), (run_start, last), spec))
            run_start, run_box = frame, box
        last = frame
    assert run_box is not None, "AddSpec._keys requires at least one key box"
    regions.append(_add(box_polygon(*run_box), (run_start, last), spec))
    return regions


def _add(polygon, frames, spec: AddSpec) -> AddRegion:
    return AddRegion(polygon=tuple(polygon), frames=frames, origin="manual", object_class=spec.object_class)


def _shape(spec: AddSpec | FalsePositiveSpec) -> tuple[tuple[float, float], ...]:
    """The polygon of a box or polygon spec (the validators guarantee one of them is given)."""
    if spec.box is not None:
        return box_polygon(*spec.box)
    assert spec.polygon is not None, "the spec validators require a box or a polygon"
    return spec.polygon


@dataclass(frozen=True)
class ReviewCounts:
    regions: int  # regions the reviewer added (a track counts once)
    false_positives: int  # false positives marked
    unmask_allowed: bool  # whether the profile let them unmask


def to_edits(doc: ReworkDocument, *, allow_unmask: bool) -> tuple[Edits, ReviewCounts]:
    """The pipeline's edits for a document. False positives unmask only where the profile allows it."""
    try:
        adds: list[AddRegion] = []
        for spec in doc.add:
            if spec.keys is not None:
                adds += _track_regions(spec)
            else:
                adds.append(_add(_shape(spec), spec.frames, spec))
        suppress = [
            Suppression(polygon=_shape(fp), frames=fp.frames, origin="false-positive")
            for fp in (doc.false_positives if allow_unmask else ())
        ]
    except ValueError as exc:  # e.g. a polygon with no area
        raise ReworkError(f"invalid rework document: {exc}") from None
    edits = Edits(add=tuple(adds), suppress=tuple(suppress))
    return edits, ReviewCounts(len(doc.add), len(doc.false_positives), allow_unmask)
