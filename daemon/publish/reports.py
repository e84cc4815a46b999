"""Sidecars the daemon writes itself: when a job fails outside the pipeline (a crash, a hang, a timeout)."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from pipeline.qc import ErrorRecord, FileInfo, QCReport


@lru_cache(maxsize=1)
def veil_version() -> str:
    try:
        return metadata.version("veil")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def failed_report(name: str, path: Path, sha256: str | None, kind: str, message: str) -> QCReport:
    size = path.stat().st_size if path.exists() else None
    return QCReport(
        veil_version=veil_version(),
        created_at=datetime.now(timezone.utc),
        input=FileInfo(name=name, sha256=sha256, size_bytes=size),
        disposition="failed",
        error=ErrorRecord(kind=kind, message=message),
    )
