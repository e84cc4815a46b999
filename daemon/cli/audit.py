"""``veil audit verify | show``: check the audit log's hash chain, or print its last events.

The log is the service's (``drift.store_dir``/audit.jsonl, see docs/audit.md) unless ``--log`` names
another. It holds operator and service actions only: no pixels, no detections, no file names.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from daemon.audit.log import AuditLog
from daemon.audit.trail import audit_path
from daemon.cli.context import add_config_argument, settings_for
from daemon.config.settings import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser("audit", help="verify the audit log's hash chain, show its last events",
                                   description=__doc__)
    actions = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    verify = actions.add_parser("verify", help="OK and the record count, or the broken line numbers (exit 1)")
    _common(verify)
    verify.set_defaults(handler=_verify)

    show = actions.add_parser("show", help="the last N events, one JSON object a line")
    _common(show)
    show.add_argument("-n", "--last", type=int, default=20, metavar="N")
    show.add_argument("--event", help="only events of this name, e.g. model.activate")
    show.set_defaults(handler=_show)


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--log", type=Path, help="an audit log file (default: the service's)")


def _log_for(args: argparse.Namespace) -> AuditLog | None:
    """The log to read: ``--log``, else the configured service's; None (reason printed) on a bad config."""
    try:
        return AuditLog(args.log if args.log is not None else audit_path(settings_for(args.config)))
    except ConfigError as exc:
        print(f"veil audit: {exc}")
        return None


def _verify(args: argparse.Namespace) -> int:
    audit = _log_for(args)
    if audit is None:
        return 2
    if not audit.path.is_file():
        print(f"veil audit: no audit log at {audit.path}")
        return 2
    broken = audit.verify()
    if broken:
        shown = ", ".join(str(n) for n in broken[:50]) + (" ..." if len(broken) > 50 else "")
        print(f"BROKEN {audit.path}: the chain breaks at line(s) {shown}")
        return 1
    count = sum(1 for line in audit.path.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"OK {audit.path}: {count} records, chain intact")
    return 0


def _show(args: argparse.Namespace) -> int:
    audit = _log_for(args)
    if audit is None:
        return 2
    lines = audit.path.read_text(encoding="utf-8").splitlines() if audit.path.is_file() else []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"unreadable_line": True})
    if args.event:
        records = [r for r in records if r.get("event") == args.event]
    for record in records[-args.last:] if args.last > 0 else []:
        print(json.dumps(record, sort_keys=True))
    return 0
