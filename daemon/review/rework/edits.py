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


MAX_REGIONS = 100_000  # regions one document may become (key boxes: one region per frame at most)


def check_keys(doc: ReworkDocument, frame_count: int | None) -> None:
    """Key boxes only on a video, and only on its frames (``frame_count``; None: a photo); the regions they
    become at most MAX_REGIONS. Checked before any interpolation, so a span of 10^8 costs nothing."""
    keyed = [spec.keys for spec in doc.add if spec.keys is not None]
    if keyed and frame_count is None:
        raise ReworkError("invalid rework document: a photo takes no keys (give a box or a polygon)")
    regions = len(doc.add) - len(keyed)
    for keys in keyed:
        last = max(keys)
        if frame_count is not None and last >= frame_count:
            raise ReworkError(f"invalid rework document: key frame {last} is past the video's last frame "
                              f"({frame_count - 1})")
        regions += last - min(keys) + 1
    if regions > MAX_REGIONS:
        raise ReworkError(f"invalid rework document: {regions} regions, more than {MAX_REGIONS}")


def to_edits(doc: ReworkDocument, *, allow_unmask: bool, frame_count: int | None) -> tuple[Edits, ReviewCounts]:
    """The pipeline's edits for a document on an item of ``frame_count`` frames (None: a photo). False
    positives unmask only where the profile allows it."""
    check_keys(doc, frame_count)
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
