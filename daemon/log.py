"""Structured logs: to the journal as fields when systemd runs us, readable lines on a terminal, else
JSON lines on stderr (piped or redirected).

Callers log events and ids, never detections or pixels. File names go through ``name_field`` so the
``log_file_names`` setting decides whether they appear at all.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}
_log_file_names = False


def _stderr_is_journal() -> bool:
    """systemd sets JOURNAL_STREAM to the device:inode of the stream it connected (see systemd.exec(5))."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


class _JournalRenderer:
    """Sends each event to journald with every key as an upper-case field (VEIL_JOB=..., ...)."""

    def __init__(self) -> None:
        from systemd import journal  # type: ignore[attr-defined]  # systemd-python, the [systemd] extra (C module)

        self._send = journal.send

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> str:
        message = str(event.pop("event", ""))
        level = str(event.pop("level", method))
        fields = {f"VEIL_{key.upper()}": str(value) for key, value in event.items() if key != "timestamp"}
        self._send(message, PRIORITY=_PRIORITY.get(level, 6), SYSLOG_IDENTIFIER="veil", **fields)
        raise structlog.DropEvent


class _TerminalRenderer:
    """Readable lines for a person at a terminal: time, file (or job id), disposition, reason, seconds for a
    finished job; time, level, event and fields for the rest. File names only as ``name_field`` allows."""

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> str:
        event = dict(event)
        when = _local_time(str(event.pop("timestamp", "")))
        name = str(event.pop("event", ""))
        level = str(event.pop("level", method))
        if name == "job_finished":
            what = event.get("file") or f"job {event.get('job', '?')}"
            disposition = str(event.get("disposition", "?"))
            if "error_kind" in event:
                reason = f"{event['error_kind']}: {event['error']}" if "error" in event else str(event["error_kind"])
            elif event.get("review_reasons"):
                reason = f"{event['review_reasons']} review reason(s)"
            elif event.get("duplicate"):
                reason = "duplicate of a published file"
            else:
                reason = "-"
            return f"{when}  {what}  {disposition}  {reason}  {event.get('seconds', '?')} s"
        fields = " ".join(f"{key}={value}" for key, value in event.items())
        return f"{when}  {level:<7} {name}" + (f"  {fields}" if fields else "")


def _local_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return stamp


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def configure(level: str = "info", *, log_file_names: bool = False, journal: bool | None = None,
              terminal: bool | None = None) -> None:
    """``journal``/``terminal``: None decides from stderr (the journal stream, a terminal, else JSON lines)."""
    global _log_file_names
    _log_file_names = log_file_names
    use_journal = _stderr_is_journal() if journal is None else journal
    use_terminal = not use_journal and (_stderr_is_terminal() if terminal is None else terminal)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Any
    if use_journal:
        try:
            renderer = _JournalRenderer()
        except ImportError:
            renderer = structlog.processors.JSONRenderer()
    elif use_terminal:
        renderer = _TerminalRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def name_field(name: str) -> dict[str, str]:
    """``{"file": name}`` when the configuration allows file names in logs, else nothing."""
    return {"file": name} if _log_file_names else {}


def get(name: str = "veil") -> Any:
    return structlog.get_logger(name)
