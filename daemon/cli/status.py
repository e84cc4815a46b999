"""``veil status``: the queue, in-flight jobs, last errors and throughput of the running service(s)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from daemon.config.settings import ConfigError, ServiceSettings, load_settings, trial_state_dir
from daemon.service.status import read_statuses


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="show what the service is doing")
    parser.add_argument("--config", type=Path, help="configuration file (to find service.state_dir)")
    parser.add_argument("--state-dir", type=Path, help="where the service writes its status")
    parser.add_argument("--output", type=Path,
                        help="a trial's output folder (veil serve --output): its status is in OUTPUT/../.veil-state")
    parser.add_argument("--json", action="store_true", help="print the raw status as JSON")
    parser.add_argument("--fleet", action="store_true",
                        help="with [dispatch] backend = \"celery\": queue depths, dead letters and every worker "
                             "node with its host and running jobs, as the broker sees them")
    parser.set_defaults(handler=run)


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return args.state_dir
    if args.output is not None:
        return trial_state_dir(args.output)
    if args.config is not None:
        return load_settings(args.config).service.resolved_state_dir()
    for candidate in (Path("/run/veil"),):
        if candidate.is_dir() and any(candidate.glob("status-*.json")):
            return candidate
    return ServiceSettings(instance="x").resolved_state_dir()


def run(args: argparse.Namespace) -> int:
    if args.fleet:
        return _fleet(args)
    try:
        state_dir = _state_dir(args)
    except ConfigError as exc:
        print(f"veil status: invalid configuration: {exc}")
        return 2
    statuses = read_statuses(state_dir)
    if args.json:
        print(json.dumps(statuses, indent=1))
        return 0 if any(s["running"] for s in statuses) else 3
    if not statuses:
        print(f"no Veil service has reported in {state_dir}"
              + ("" if args.output or args.state_dir else " (for a trial: veil status --output OUTPUT)"))
        return 3
    for s in statuses:
        print(_render(s))
    return 0 if any(s["running"] for s in statuses) else 3


def _render(s: dict) -> str:
    q, c, t = s["queue"], s["counts"], s["throughput"]
    if s["running"]:
        state = s["state"]
    elif s["state"] in ("stopped", "failed") and s.get("stopped_at"):
        state = f"{s['state']} at {s['stopped_at']}" + (" (workers broken)" if s["state"] == "failed" else "")
    else:  # the process is gone without saying so: killed, crashed, or the machine went down
        state = f"not running, ended without a clean stop (last state: {s['state']})"
    lines = [
        f"instance {s['instance']} (pid {s['pid']}): {state}, since {s['started_at']}, updated {s['updated_at']}",
        f"  queue: {q['claimed']} claimed, {q['complete_in_ingest']} complete in ingest, "
        f"{q['waiting_to_settle']} still arriving",
        f"  counts: done {c['done']}, review {c['review']}, failed {c['failed']}, duplicates {c['duplicate']}, "
        f"retried attempts {c['retried']}",
        f"  throughput: {t['files_last_minute']} files in the last minute, {t['files_per_minute_10m']}/min over 10 min",
        f"  workers: {len(s['workers'])}, restarts {s['worker_restarts']}",
    ]
    for job in s["in_flight"]:
        name = f" {job['name']}" if "name" in job else ""
        where = "on the broker (veil status --fleet: which node)" if job["worker"] == -1 else f"on worker {job['worker']}"
        lines.append(f"  in flight: job {job['job']}{name} [{job.get('folder', '?')}] {where} "
                     f"for {job['running_s']} s (attempt {job.get('attempt', '?')})")
    for err in s["last_errors"][-5:]:
        detail = f": {err['message']}" if "message" in err else ""
        lines.append(f"  error {err['at']} [{err.get('folder', '-')}] job {err.get('job', '-')} {err['kind']}{detail}")
    return "\n".join(lines)


def _fleet(args: argparse.Namespace) -> int:
    from daemon.cli.context import settings_for

    try:
        settings = settings_for(args.config)
    except ConfigError as exc:
        print(f"veil status: invalid configuration: {exc}")
        return 2
    if settings is None or settings.dispatch.backend != "celery":
        print("veil status --fleet: the configuration has no [dispatch] backend = \"celery\"")
        return 2
    from daemon.dispatch.fleet import fleet, render

    try:
        view = fleet(settings.dispatch)
    except Exception as exc:  # noqa: BLE001 - broker unreachable, refused, bad credentials: say which
        print(f"veil status --fleet: broker: {type(exc).__name__}: {exc}")
        return 3
    print(json.dumps(view, indent=1) if args.json else render(view))
    return 0
