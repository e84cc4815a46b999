"""What the review station knows and does, apart from HTTP: the items, their pictures, approval.

The web layer (daemon/review/web.py) asks; this answers. Thread-safe: Starlette runs the blocking calls
(decoding, re-rendering) in worker threads.
"""

from __future__ import annotations

import threading
from typing import Any

from daemon.audit.log import AuditLog
from daemon.config.settings import FolderSettings, Settings
from daemon.review.auth import Authenticator
from daemon.review.media import FrameSource, image_jpeg, item_unmasked
from daemon.review.rework import Item, Place, ReworkDocument, approve, items_in, service_params
from daemon.review.unmasked import Unmasked

PLACES: tuple[Place, ...] = ("review", "spotcheck")


class ReviewApp:
    """The items in each folder's review/ and spotcheck/, their pictures (masked only) and approval."""

    def __init__(self, settings: Settings, auth: Authenticator, engines, audit: AuditLog | None) -> None:
        self.settings = settings
        self.auth = auth
        self.engines = engines
        self.audit = audit
        self._frames: dict[tuple[str, str], FrameSource] = {}
        self._items: dict[tuple[str, str], tuple[Item, Unmasked]] = {}
        self._lock = threading.Lock()
        self._approve_lock = threading.Lock()  # one re-render at a time: the CPU is shared with the service

    def folder(self, name: str) -> FolderSettings:
        try:
            return self.settings.folder(name)
        except KeyError:
            raise LookupError(f"no folder {name!r}") from None

    def queue(self) -> list[dict[str, Any]]:
        rows = []
        for folder in self.settings.folders:
            for place in PLACES:
                rows += [self.summary(item) for item in items_in(folder, place)]
        return rows

    def item(self, folder_name: str, item_id: str) -> Item:
        return self._entry(folder_name, item_id)[0]

    def _entry(self, folder_name: str, item_id: str) -> tuple[Item, Unmasked]:
        """The item and what to cover in it, remembered while its sidecar stays (a scrubbed video asks for it
        once a frame)."""
        folder = self.folder(folder_name)
        with self._lock:
            cached = self._items.get((folder_name, item_id))
        if cached is not None and cached[0].sidecar.exists():
            return cached
        for place in PLACES:
            for item in items_in(folder, place):
                if item.id == item_id:
                    entry = (item, item_unmasked(item))
                    with self._lock:
                        self._items[(folder_name, item_id)] = entry
                    return entry
        raise LookupError("no such item in review or spot checks")

    @staticmethod
    def summary(item: Item) -> dict[str, Any]:
        report = item.report
        video = report.video or {}
        return {"folder": item.folder.name, "id": item.id, "place": item.place, "name": item.name,
                "media_type": item.output_info.media_type, "reasons": report.review_reasons,
                "detections": len(report.detections), "tracks": len(video.get("tracks", [])),
                "frames": video.get("frames_written"), "created_at": report.created_at.isoformat(timespec="seconds")}

    def detail(self, folder_name: str, item_id: str) -> dict[str, Any]:
        item, unmasked = self._entry(folder_name, item_id)
        report = item.report
        params = self.settings.params_for(item.folder)
        return {**self.summary(item), "width": item.output_info.width, "height": item.output_info.height,
                "detections": [d.model_dump(mode="json", by_alias=True) for d in report.detections],
                "track_list": (report.video or {}).get("tracks", []),
                "plate_cross_check": [list(box) for box in report.plate_cross_check],  # drawn for the reviewer, never masked
                "allow_unmask": params.review.allow_false_positive_unmask,
                "unmasked_review_band": unmasked.count, "unmasked_statement": unmasked.statement()}

    def image(self, folder_name: str, item_id: str) -> bytes:
        item, unmasked = self._entry(folder_name, item_id)
        if item.output_info.media_type != "image":
            raise ValueError("not an image")
        return image_jpeg(item, unmasked)

    def frame(self, folder_name: str, item_id: str, index: int) -> bytes:
        item, unmasked = self._entry(folder_name, item_id)
        if item.output_info.media_type != "video":
            raise ValueError("not a video")
        key = (str(item.output_path), item.id)
        with self._lock:
            source = self._frames.get(key)
            if source is None:
                source = self._frames[key] = FrameSource(item.root, item.output_path, unmasked.cover)
        data = source.frame(index)
        if data is None:
            raise LookupError("no such frame")
        return data

    def approve(self, folder_name: str, doc: ReworkDocument) -> dict[str, Any]:
        folder = self.folder(folder_name)
        with self._approve_lock:
            done = approve(folder, service_params(self.settings, folder), self.engines, doc, audit=self.audit,
                           source="review-page", audit_names=self.settings.service.log_file_names)
        with self._lock:  # the item left review: let its reader go
            for key in [k for k in self._frames if k[1] == doc.id]:
                self._frames.pop(key).close()
            self._items.pop((folder_name, doc.id), None)
        return {"approved": True, "name": done.name, "regions": done.counts.regions,
                "false_positives": done.counts.false_positives, "unmasked": done.counts.unmask_allowed,
                "original_deleted": done.original_deleted, "unmasked_review_band": done.unmasked_published}
