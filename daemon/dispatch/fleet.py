"""The fleet as the broker sees it, for ``veil status --fleet``: queue depths (ready and dead letters), and
each worker node with its host and the jobs it runs, with when each started (Celery's remote control)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kombu import Connection

from daemon.config.dispatch import DispatchSettings
from daemon.dispatch.app import make_app
from daemon.dispatch.topology import KINDS, dead_name, queue_name


def queue_depths(dispatch: DispatchSettings, url: str) -> dict[str, dict[str, int]]:
    """{queue: {"ready": messages, "consumers": n}} for the task queues and the dead letters."""
    depths: dict[str, dict[str, int]] = {}
    with Connection(url) as conn:
        for name in [queue_name(dispatch, kind) for kind in KINDS] + [dead_name(dispatch)]:
            try:
                _, ready, consumers = conn.channel().queue_declare(name, passive=True)
            except Exception:  # noqa: BLE001 - not declared yet (nothing ever enqueued): report it empty
                ready, consumers = 0, 0
            depths[name] = {"ready": int(ready), "consumers": int(consumers)}
    return depths


def workers(dispatch: DispatchSettings, url: str, timeout_s: float = 1.0) -> list[dict[str, Any]]:
    """Every node that answers within ``timeout_s``: its name, host and running jobs."""
    app = make_app(dispatch, url)
    try:
        active = app.control.inspect(timeout=timeout_s).active() or {}
    finally:
        app.close()
    nodes = []
    for node, tasks in sorted(active.items()):
        jobs = [{"job": t.get("id"), "queue": (t.get("delivery_info") or {}).get("routing_key"),
                 "started_at": _iso(t.get("time_start")), "worker_pid": t.get("worker_pid")} for t in tasks]
        nodes.append({"node": node, "host": node.partition("@")[2] or node, "jobs": jobs})
    return nodes


def fleet(dispatch: DispatchSettings, timeout_s: float = 1.0) -> dict[str, Any]:
    url = dispatch.resolved_broker_url()
    return {"queues": queue_depths(dispatch, url), "workers": workers(dispatch, url, timeout_s)}


def render(view: dict[str, Any]) -> str:
    lines = ["queues:"]
    for name, depth in view["queues"].items():
        lines.append(f"  {name}: {depth['ready']} ready, {depth['consumers']} consumers")
    lines.append(f"workers: {len(view['workers'])}")
    for node in view["workers"]:
        running = ", ".join(f"job {j['job']} ({j['queue']}) since {j['started_at']}" for j in node["jobs"]) or "idle"
        lines.append(f"  {node['node']} on {node['host']}: {running}")
    return "\n".join(lines)


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")
