"""Rework: re-render a reviewed item from its kept original with a person's edits, then publish it.

One flow for the review page (``veil review``) and the ``rework/`` folder the service watches. A rework
document (``veil.rework/1``, JSON) names the item by its ID, the SHA-256 of the original as its sidecar
records it (``input.sha256``), and lists the edits in relative coordinates (0..1 of width and height):

    {"schema": "veil.rework/1", "id": "<sha256>", "reviewer": "alice",
     "add": [{"box": [x1, y1, x2, y2]},                              # every frame (an image: the image)
             {"polygon": [[x, y], ...], "frames": [10, 40]},         # an inclusive frame range
             {"keys": {"10": [x1, y1, x2, y2], "40": [...]}}],       # follow a track: key boxes interpolated
     "false_positives": [{"box": [x1, y1, x2, y2], "frames": [10, 40]}]}

Approval: re-render the original with the edits, publish the result and its sidecar (with ``edits`` and
``approval``) to output, remove the item from review/ or spotcheck/, delete the original if the folder's
policy says so, and write audit events (ids, counts and the reviewer only).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.edits import AddRegion, Edits, Suppression, box_polygon
from pipeline.detect.catalogue import default_model_dir
from pipeline.params import Params
from pipeline.qc import SIDECAR_SUFFIX, FileInfo, QCReport

from daemon import log
from daemon.audit.log import AuditLog
from daemon.publish.fsutil import fsync_dir, write_atomic
from daemon.publish.outputs import candidate_names, sha256_file
from daemon.models.registry import Registry, RegistryError, with_active_models
from daemon.config.settings import FolderSettings, Settings
from daemon.intake.zones import zone_edits

if TYPE_CHECKING:
    from pipeline.detect.engine import Engine

_log = log.get("veil.rework")
SCHEMA: Final = "veil.rework/1"
REWORK_SUFFIX = ".rework.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Box = tuple[float, float, float, float]


class ReworkError(Exception):
    """The rework cannot be done; the message says why (and names no personal data)."""


# -- the document ----------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_box(box: Box) -> Box:
    x1, y1, x2, y2 = box
    if not all(0.0 <= v <= 1.0 for v in box):
        raise ValueError(f"box {list(box)} is not in relative coordinates (0..1)")
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {list(box)} is empty (x2 <= x1 or y2 <= y1)")
    return box


def _check_frames(frames: tuple[int, int] | None) -> tuple[int, int] | None:
    if frames is not None and not (0 <= frames[0] <= frames[1]):
        raise ValueError(f"frames {list(frames)} must be an inclusive range [first, last] with 0 <= first <= last")
    return frames


class AddSpec(_Strict):
    """One region to mask: exactly one of ``box``, ``polygon`` or ``keys``."""

    box: Box | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    keys: dict[int, Box] | None = None  # frame -> box; frames between keys get interpolated boxes
    frames: tuple[int, int] | None = None  # with box/polygon; None: every frame
    object_class: Literal["face", "license_plate", "other"] | None = Field(default=None, alias="class")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("box")
    @classmethod
    def _box(cls, value: Box | None) -> Box | None:
        return None if value is None else _check_box(value)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value):
        if value is None:
            return None
        if len(value) < 3:
            raise ValueError("a polygon needs at least 3 points")
        if not all(0.0 <= v <= 1.0 for point in value for v in point):
            raise ValueError("polygon points must be relative coordinates (0..1)")
        return value

    @field_validator("keys")
    @classmethod
    def _keys(cls, value):
        if value is None:
            return None
        if not value:
            raise ValueError("keys needs at least one key box")
        if min(value) < 0:
            raise ValueError("key frames must be >= 0")
        return {frame: _check_box(box) for frame, box in value.items()}

    @field_validator("frames")
    @classmethod
    def _frames(cls, value):
        return _check_frames(value)

    @model_validator(mode="after")
    def _one_shape(self) -> "AddSpec":
        given = [name for name in ("box", "polygon", "keys") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of box, polygon or keys (got {given or 'none'})")
        if self.keys is not None and self.frames is not None:
            raise ValueError("keys carry their own frames; leave frames out")
        return self


class FalsePositiveSpec(_Strict):
    """A detection the reviewer says is not a face or plate: detections centred inside are not masked."""

    box: Box | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    frames: tuple[int, int] | None = None

    @field_validator("box")
    @classmethod
    def _box(cls, value: Box | None) -> Box | None:
        return None if value is None else _check_box(value)

    @field_validator("frames")
    @classmethod
    def _frames(cls, value):
        return _check_frames(value)

    @model_validator(mode="after")
    def _one_shape(self) -> "FalsePositiveSpec":
        if (self.box is None) == (self.polygon is None):
            raise ValueError("give exactly one of box or polygon")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return self


class ReworkDocument(_Strict):
    schema_: Literal["veil.rework/1"] = Field(default=SCHEMA, alias="schema")
    id: str
    reviewer: str = Field(default="rework-folder", min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    add: tuple[AddSpec, ...] = ()
    false_positives: tuple[FalsePositiveSpec, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("id")
    @classmethod
    def _sha(cls, value: str) -> str:
        value = value.lower()
        if not _SHA256.match(value):
            raise ValueError("id must be the original's SHA-256 (64 hex digits), as in its sidecar's input.sha256")
        return value


def parse_document(text: str | bytes) -> ReworkDocument:
    """Parse and validate a rework document; ReworkError with a readable reason otherwise."""
    try:
        return ReworkDocument.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors())
        raise ReworkError(f"invalid rework document: {problems}") from None


# -- document -> edits -----------------------------------------------------------------------------------

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


# -- finding the item and its original -------------------------------------------------------------------

Place = Literal["review", "spotcheck", "output"]


@dataclass(frozen=True)
class Item:
    """A published result (masked) with its sidecar, and where it lies."""

    folder: FolderSettings
    place: Place
    sidecar: Path
    report: QCReport

    @property
    def id(self) -> str:
        return self.report.input.sha256 or ""

    @property
    def root(self) -> Path:
        return getattr(self.folder, self.place)

    @property
    def output_info(self) -> FileInfo:
        """The masked result's file info (items_in takes only items whose report has one)."""
        assert self.report.output is not None, "items_in skips reports without an output"
        return self.report.output

    @property
    def output_path(self) -> Path:
        """The masked result (never the original): the sidecar's name less its suffix."""
        return self.sidecar.with_name(self.sidecar.name[: -len(SIDECAR_SUFFIX)])

    @property
    def name(self) -> str:
        return self.output_path.relative_to(self.root).as_posix()

    def files(self) -> list[Path]:
        """The result, its companions and the sidecar (the sidecar last)."""
        companions = [self.output_path.with_name(n) for n in self.report.companions]
        return [self.output_path, *companions, self.sidecar]


def sidecars(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*" + SIDECAR_SUFFIX) if not p.name.startswith("."))


def items_in(folder: FolderSettings, place: Place) -> list[Item]:
    """The items with a readable sidecar and a result (failed items have no masked result to review)."""
    found = []
    for sidecar in sidecars(getattr(folder, place)):
        try:
            report = QCReport.from_json(sidecar.read_bytes())
        except (OSError, ValueError):
            continue
        item = Item(folder, place, sidecar, report)
        if report.output is not None and report.input.sha256 and item.output_path.is_file():
            found.append(item)
    return found


def find_item(folder: FolderSettings, item_id: str) -> Item:
    """The item with this ID: in review first, then spot checks, then output (rework of a clean result)."""
    for place in ("review", "spotcheck", "output"):
        for item in items_in(folder, place):
            if item.id == item_id:
                return item
    raise ReworkError(f"no item with id {item_id[:12]}... in folder {folder.name!r}")


def find_original(folder: FolderSettings, item: Item) -> Path:
    """The kept original in originals/ (archived under its ingest name, or that name tagged with its hash)."""
    rel = item.report.input.name
    for candidate in candidate_names(rel, item.id):
        path = folder.originals_dir / candidate
        if path.is_file() and (item.report.input.size_bytes in (None, path.stat().st_size)) and sha256_file(path) == item.id:
            return path
    raise ReworkError(f"the original of item {item.id[:12]}... is not kept in {folder.name!r}'s originals folder "
                      "(on_success must be \"archive\" for rework)")


def service_params(settings: Settings, folder: FolderSettings) -> Params:
    """The folder's profile with the models the service runs now (``veil models activate``), so that a
    re-render detects with the same models as the first render would today."""
    model_dir = settings.service.model_dir or default_model_dir()
    try:
        return with_active_models(settings.params_for(folder), Registry(model_dir).selection(), model_dir)
    except RegistryError as exc:
        raise ReworkError(f"active models: {exc}") from None


# -- approval --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Approved:
    name: str  # the published name in output/
    disposition: str
    counts: ReviewCounts
    original_deleted: bool


def approve(folder: FolderSettings, params: Params, engine_for: Callable[[Params], Engine], doc: ReworkDocument, *,
            audit: AuditLog | None, source: str, audit_names: bool = False) -> Approved:
    """Re-render, publish, clean up, audit. Raises ReworkError; leaves the item in place when it fails."""
    item = find_item(folder, doc.id)
    original = find_original(folder, item)
    edits, counts = to_edits(doc, allow_unmask=params.review.allow_false_positive_unmask)
    edits = zone_edits(folder).merged(edits)  # the source's camera zones first, as the service applies them
    from pipeline.run import process_file

    with tempfile.TemporaryDirectory(prefix=".veil-rework-", dir=folder.output) as staging:
        staged = Path(staging) / Path(item.name).name
        report = process_file(original, staged, params, engine_for(params), name=item.report.input.name, edits=edits)
        if report.disposition == "failed" or report.input.sha256 != item.id:
            why = report.error.message if report.error else "the original changed"
            raise ReworkError(f"re-render failed: {why}")
        report = report.model_copy(update={
            "disposition": "done",
            "approval": {"reviewer": doc.reviewer, "approved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "source": source, "id": item.id, "was": item.place,
                         "false_positives_unmasked": counts.unmask_allowed and counts.false_positives > 0},
        })
        name = _publish(item, folder, staged, report)
    if item.place != "output":
        _remove(item)
    deleted = False
    if not folder.keep_originals_after_review:
        original.unlink(missing_ok=True)
        fsync_dir(original.parent)
        deleted = True
    if audit is not None:
        try:
            _audit(audit, folder, item, doc, counts, name if audit_names else None, source, deleted)
        except OSError as exc:  # published already: say so in the log rather than report a failed approval
            _log.error("audit_write_failed", event="review.approve", item=item.id[:12], error=exc.strerror or str(exc))
    return Approved(name, "done", counts, deleted)


def _output_name(item: Item, folder: FolderSettings) -> str:
    """The item's name in output, unless another input's result holds it: then the next deterministic
    candidate (``<stem>.<8 hex of the original's sha256><suffix>``, as the service names a newcomer)."""
    for candidate in candidate_names(item.name, item.id):
        final = folder.output / candidate
        sidecar = final.with_name(final.name + SIDECAR_SUFFIX)
        if sidecar.exists():
            try:
                if QCReport.from_json(sidecar.read_bytes()).input.sha256 == item.id:
                    return candidate  # this item's own earlier result (a spot check, a rework): replaced
            except (OSError, ValueError):
                pass
            continue
        if not os.path.lexists(final):
            return candidate
    raise ReworkError(f"no free output name for item {item.id[:12]}...")


def _publish(item: Item, folder: FolderSettings, staged: Path, report: QCReport) -> str:
    """Place the result and its companions in output, then the sidecar last; returns the published name.

    The item's own earlier result under that name (a spot check, or a rework of a clean result) is replaced:
    each file is written whole under a temporary name and renamed over the old one, so readers never see
    half a file. Another input's result is never touched."""
    name = _output_name(item, folder)
    final = folder.output / name
    final.parent.mkdir(parents=True, exist_ok=True)
    renamed = {n: final.name + n[len(staged.name):] if n.startswith(staged.name) else n for n in report.companions}
    _replace(staged, final)
    for old, new in renamed.items():
        _replace(staged.with_name(old), final.with_name(new))
    output = report.output.model_copy(update={"name": name}) if report.output else None
    final_report = report.model_copy(update={"companions": list(renamed.values()), "output": output})
    write_atomic(final.with_name(final.name + SIDECAR_SUFFIX), final_report.to_json().encode())
    return name


def _replace(src: Path, final: Path) -> None:
    tmp = final.with_name(f".{final.name}.rework-tmp")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(final)
    fsync_dir(final.parent)


def _remove(item: Item) -> None:
    """Take the item out of review/ (or spotcheck/): the sidecar first, so a half-removed item is no item."""
    for path in [item.sidecar, *item.files()[:-1]]:
        path.unlink(missing_ok=True)
    contact = item.output_path.with_name(item.output_path.name + ".contact.jpg")
    contact.unlink(missing_ok=True)
    fsync_dir(item.sidecar.parent)


def _audit(audit: AuditLog, folder: FolderSettings, item: Item, doc: ReworkDocument, counts: ReviewCounts,
           name: str | None, source: str, deleted: bool) -> None:
    common: dict[str, Any] = {"folder": folder.name, "item": item.id, "source": source}  # JSON fields of each event
    if name is not None:  # file names only where the configuration allows them (service.log_file_names)
        common["name"] = name
    if counts.regions:
        audit.append("review.manual_edit", actor=doc.reviewer, regions=counts.regions, **common)
    if counts.false_positives:
        audit.append("review.false_positive", actor=doc.reviewer, false_positives=counts.false_positives,
                     unmasked=counts.unmask_allowed, **common)
    audit.append("review.approve", actor=doc.reviewer, was=item.place, original_deleted=deleted, **common)
