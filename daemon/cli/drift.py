"""``veil drift status | check | baseline | ack | report``: the drift monitor from the command line.

It works on the same store as the service (``drift.store_dir``); approval and acknowledgement are audit
events, written with the operator's name (``--by``, default: the login name).
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import datetime, timezone
from pathlib import Path

from daemon.config.settings import ConfigError, ServiceSettings, Settings, load_settings
from daemon.drift.monitor import DriftMonitor


def register(subparsers) -> None:
    parser = subparsers.add_parser("drift", help="drift monitoring: status, checks, reference, acknowledgement, report")
    parser.add_argument("--config", type=Path, help="configuration file (finds drift.store_dir)")
    parser.add_argument("--store-dir", type=Path, help="folder holding drift.sqlite and audit.jsonl")
    actions = parser.add_subparsers(dest="drift_command", required=True, metavar="ACTION")

    status = actions.add_parser("status", help="state, reference and spot-check rate per source")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    check = actions.add_parser("check", help="run the daily checks that are due now")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_check)

    baseline = actions.add_parser("baseline", help="show, approve or rebuild a source's reference")
    baseline.add_argument("--source", required=True)
    baseline.add_argument("--approve", action="store_true", help="approve the provisional reference (audited)")
    baseline.add_argument("--rebuild-after", metavar="YYYY-MM-DD",
                          help="freeze a new provisional reference from the days after this date (e.g. a new model)")
    baseline.add_argument("--by", default=None, help="operator name for the audit log (default: login name)")
    baseline.set_defaults(handler=_baseline)

    ack = actions.add_parser("ack", help="acknowledge a source's alert: its spot-check rate returns to normal (audited)")
    ack.add_argument("--source", required=True)
    ack.add_argument("--by", default=None)
    ack.set_defaults(handler=_ack)

    report = actions.add_parser("report", help="write the monthly HTML + JSON + PNG report")
    report.add_argument("--month", default=None, help="YYYY-MM (default: last month)")
    report.add_argument("--out", type=Path, required=True, help="output folder")
    report.add_argument("--eval", type=Path, action="append", default=[], help="a `veil eval --report` JSON (repeatable)")
    report.add_argument("--sensitivity", type=Path, help="sensitivity table JSON (from the drift simulation)")
    report.set_defaults(handler=_report)


def _settings(args: argparse.Namespace) -> Settings | None:
    if args.config is None:
        return None
    return load_settings(args.config)


def _monitor(args: argparse.Namespace) -> DriftMonitor:
    from daemon.audit.log import AUDIT_NAME, AuditLog
    from daemon.drift.monitor import DriftConfig
    from daemon.drift.service import drift_config
    from daemon.drift.store import DB_NAME, DriftStore

    settings = _settings(args)
    if args.store_dir is not None:
        where = args.store_dir
    elif settings is not None:
        where = settings.drift.resolved_store_dir(settings.service)
    else:
        from daemon.config.settings import DriftSettings

        where = DriftSettings().resolved_store_dir(ServiceSettings(instance="cli"))
    if not (where / DB_NAME).exists():
        raise FileNotFoundError(f"no drift store in {where} (is drift monitoring enabled, and has a file finished?)")
    config = drift_config(settings) if settings is not None else DriftConfig()
    store = DriftStore(where / DB_NAME, instance=settings.service.instance if settings else "cli")
    return DriftMonitor(store, config, audit=AuditLog(where / AUDIT_NAME))


def _with_monitor(action):
    def wrapper(args: argparse.Namespace) -> int:
        from daemon import log

        log.configure("warning")  # events go to stderr as JSON; stdout is the command's answer
        try:
            monitor = _monitor(args)
        except (ConfigError, FileNotFoundError) as exc:
            print(f"veil drift: {exc}")
            return 2
        try:
            return action(args, monitor)
        finally:
            monitor.store.close()
    return wrapper


def _day(day: int | None) -> str:
    return "-" if day is None else datetime.fromtimestamp(day * 86400, timezone.utc).date().isoformat()


@_with_monitor
def _status(args: argparse.Namespace, monitor: DriftMonitor) -> int:
    statuses = [monitor.status(s) for s in monitor.store.sources()]
    if args.json:
        print(json.dumps(statuses, indent=1, default=str))
    else:
        for s in statuses:
            ref = s["reference"]
            ref_text = "learning" if ref is None else (f"{ref['status']} {_day(ref['first_day'])}..{_day(ref['last_day'])} "
                                                       f"({ref['files']} files)")
            last = s["last_check"] or {}
            signals = ", ".join((last.get("input_signals") or []) + (last.get("detector_signals") or [])) or "-"
            print(f"{s['source']}: {s['state']} (input {s['tracks']['input']['state']}, detector "
                  f"{s['tracks']['detector']['state']}); reference {ref_text}; last check {_day(last.get('day'))} "
                  f"{last.get('status', '-')}, signals {signals}; spot checks {100 * s['spot_check']['rate']:.0f}%"
                  + (f"; new reference due from the days after {_day(s['rebaseline']['after_day'])} (models changed)"
                     if s.get("rebaseline") else ""))
    return 3 if any(s["state"] == "alert" for s in statuses) else 1 if any(s["state"] == "warning" for s in statuses) else 0


@_with_monitor
def _check(args: argparse.Namespace, monitor: DriftMonitor) -> int:
    results = monitor.run_due()
    if args.json:
        print(json.dumps(results, indent=1, default=str))
    else:
        print(f"{len(results)} day(s) checked")
    return 0


@_with_monitor
def _baseline(args: argparse.Namespace, monitor: DriftMonitor) -> int:
    by = args.by or getpass.getuser()
    if args.rebuild_after:
        day = int(datetime.fromisoformat(args.rebuild_after).replace(tzinfo=timezone.utc).timestamp() // 86400)
        if monitor.rebuild(args.source, day) is None:
            print(f"{args.source}: not enough data after {args.rebuild_after} for a reference yet")
            return 1
    if args.approve:
        if monitor.store.active_reference_id(args.source) is None:
            print(f"{args.source}: no reference to approve yet (still learning)")
            return 1
        monitor.approve(args.source, by)
    print(json.dumps(monitor.status(args.source)["reference"], indent=1, default=str))
    return 0


@_with_monitor
def _ack(args: argparse.Namespace, monitor: DriftMonitor) -> int:
    if args.source not in monitor.store.sources():
        print(f"unknown source {args.source!r}")
        return 2
    monitor.acknowledge(args.source, args.by or getpass.getuser())
    print(f"{args.source}: acknowledged; spot-check rate {100 * monitor.spot_rate(args.source):.0f}%")
    return 0


@_with_monitor
def _report(args: argparse.Namespace, monitor: DriftMonitor) -> int:
    from daemon.drift.report import write

    month = args.month
    if month is None:
        today = datetime.now(timezone.utc)
        month = f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"
    evals = [json.loads(p.read_text()) for p in args.eval]
    sensitivity = json.loads(args.sensitivity.read_text()) if args.sensitivity else None
    paths = write(monitor, month, args.out, audit=monitor.audit, actor=getpass.getuser(), eval_reports=evals,
                  sensitivity=sensitivity)
    print(f"{paths['html']}  sha256 {paths['sha256_html']}")
    return 0
