"""Finding a reviewed item (a published, masked result with its sidecar) and its kept original."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.qc import SIDECAR_SUFFIX, FileInfo, QCReport

from daemon.config.settings import FolderSettings
from daemon.publish.outputs import candidate_names, sha256_file
from daemon.review.rework.confined import confined, read_confined
from daemon.review.rework.document import ReworkError

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


MAX_SIDECAR_BYTES = 64 << 20  # a sidecar lists detections; a video's per-frame boxes are in a companion


def sidecars(root: Path) -> list[Path]:
    """The sidecars below ``root``, none of them a link or below one (confined.py)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*" + SIDECAR_SUFFIX) if not p.name.startswith(".") and confined(root, p))


def items_in(folder: FolderSettings, place: Place) -> list[Item]:
    """The items with a readable sidecar and a result (failed items have no masked result to review). Links
    are passed over: a link in review/ could show an original."""
    found = []
    root = getattr(folder, place)
    for sidecar in sidecars(root):
        try:
            report = QCReport.from_json(read_confined(root, sidecar, MAX_SIDECAR_BYTES))
        except (OSError, ValueError, LookupError):  # LookupError: NotConfined, a link swapped in meanwhile
            continue
        item = Item(folder, place, sidecar, report)
        if report.output is not None and report.input.sha256 and confined(root, item.output_path) \
                and item.output_path.is_file():
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
