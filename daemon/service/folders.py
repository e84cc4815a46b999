"""The first part to start: every folder exists and each ingest folder's processing area is locked for this
instance. A context manager, so the service's start rolls it back like every other part."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from daemon.config.settings import Settings
from daemon.intake.jobs import ClaimArea, InstanceBusy


class FolderError(Exception):
    """A folder cannot be created or is held by another process of this instance."""


@contextmanager
def locked_folders(settings: Settings) -> Iterator[dict[str, ClaimArea]]:
    """Create each folder's ingest and destinations, lock its claim area; unlock them all on the way out."""
    areas: dict[str, ClaimArea] = {}
    try:
        for folder in settings.folders:
            for path in (folder.ingest, *folder.destinations()):
                try:
                    path.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise FolderError(f"folder {folder.name!r}: cannot create {path}: {exc.strerror}") from None
            area = ClaimArea(folder, settings.service.instance)
            try:
                area.lock()
            except InstanceBusy as exc:
                raise FolderError(str(exc)) from None
            areas[folder.name] = area
        yield areas
    finally:
        for area in areas.values():
            area.unlock()
