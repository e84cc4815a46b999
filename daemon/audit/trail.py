"""Where the service's audit log is, and the events the service itself writes to it.

The log (daemon/audit/log.py) lives beside the drift store, in ``drift.store_dir`` (default: $STATE_DIRECTORY,
/var/lib/veil under systemd), so it survives reboots. docs/audit.md lists every event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.detect.catalogue import sha256_of

from daemon.audit.log import AUDIT_NAME, AuditLog
from daemon.config.settings import DriftSettings, ServiceSettings, Settings

CONFIG_LOADED = "config.loaded"


def audit_path(settings: Settings | None) -> Path:
    """The audit log of the service configured by ``settings`` (None: the defaults, as the CLI sees them)."""
    if settings is None:
        return DriftSettings().resolved_store_dir(ServiceSettings(instance="cli")) / AUDIT_NAME
    return settings.drift.resolved_store_dir(settings.service) / AUDIT_NAME


def record_config_loaded(audit: AuditLog, config: Path | None, actor: str = "veil") -> dict[str, Any] | None:
    """Append ``config.loaded`` when the configuration file differs from the last one recorded.

    Returns the record written, or None (no file: a trial run; or unchanged since the last record).
    """
    if config is None:
        return None
    digest = sha256_of(config)
    if _last_config_sha256(audit) == digest:
        return None
    return audit.append(CONFIG_LOADED, actor=actor, path=str(config), sha256=digest)


def _last_config_sha256(audit: AuditLog) -> str | None:
    if not audit.path.exists():
        return None
    last = None
    for line in audit.path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a damaged line is `veil audit verify`'s business; here it just is not a config record
        if isinstance(record, dict) and record.get("event") == CONFIG_LOADED:
            last = record.get("sha256")
    return last
