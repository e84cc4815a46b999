"""Camera zones of a watched folder: as the pipeline's edits, and in the audit log.

A folder's ``zones`` (daemon/config/settings.py ZoneSettings) become ``Edits``: always-mask zones are add polygons
on every frame, ignore zones are suppressions. Each file's sidecar lists them (QCReport.edits), ignore zones
included. The audit log gets a ``zones.configured`` event per folder, with a hash and a count of its zones
(never the polygons), when the service starts and whenever a reload changes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from pipeline.edits import AddRegion, Edits, Suppression

from daemon.audit.log import AUDIT_NAME, AuditLog
from daemon.config.settings import FolderSettings, Settings

ZONES_CONFIGURED = "zones.configured"


def zone_edits(folder: FolderSettings) -> Edits:
    """The folder's zones as edits, in the order configured."""
    return Edits(
        add=tuple(AddRegion(z.polygon, origin=f"zone:{z.name}") for z in folder.zones if z.kind == "always_mask"),
        suppress=tuple(Suppression(z.polygon, origin=f"ignore-zone:{z.name}") for z in folder.zones if z.kind == "ignore"),
    )


def zones_digest(folder: FolderSettings) -> str:
    """SHA-256 of the folder's zones in a canonical form: equal zones, equal digest."""
    return _digest([zone.model_dump(mode="json") for zone in folder.zones])


def _digest(zones: list[dict]) -> str:
    return hashlib.sha256(json.dumps(zones, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


NO_ZONES = _digest([])


def zones_audit_log(settings: Settings) -> AuditLog:
    """The service's audit log: beside the drift store, like every other service event."""
    return AuditLog(settings.drift.resolved_store_dir(settings.service) / AUDIT_NAME)


def record_zones(audit: AuditLog, folders: Iterable[FolderSettings], known: dict[str, str] | None) -> dict[str, str]:
    """Append ``zones.configured`` for the folders whose zones changed; return the digests now in force.

    ``known``: folder name -> digest from the last call; None at start, when every folder with zones is
    recorded. On a reload, a folder whose zones were added, changed or removed is recorded, and so is a
    folder that had zones and is gone from the configuration (with none).
    """
    current = {folder.name: (zones_digest(folder), len(folder.zones)) for folder in folders}
    for name, (digest, count) in current.items():
        changed = count > 0 if known is None else known.get(name, NO_ZONES) != digest
        if changed:
            audit.append(ZONES_CONFIGURED, actor="veil", folder=name, zones=count, sha256=digest)
    previous = known or {}
    for name in previous.keys() - current.keys():
        if previous[name] != NO_ZONES:
            audit.append(ZONES_CONFIGURED, actor="veil", folder=name, zones=0, sha256=NO_ZONES)
    return {name: digest for name, (digest, _) in current.items()}
