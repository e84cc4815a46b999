"""The monthly drift report for an auditor: self-contained HTML, the same content as JSON, PNG plots.

The HTML embeds its plots (no external resources, nothing fetched). The SHA-256 of the HTML and of the
JSON are written to ``<name>.sha256`` and, when an audit log is given, recorded there as an audit event.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import html
import io
import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from daemon.audit.log import AuditLog
from daemon.drift.monitor import LEVELS, DriftMonitor
from daemon.drift.schema import BY_NAME, FEATURES

DAY = 86400.0
TREND_FEATURES = ("brightness_mean", "blockiness", "face_top_score", "plate_top_score")
METHOD = (
    "Each monitored number of each file (image statistics from a copy scaled to about 640 px, one frame per "
    "second of video, and per-class detector statistics) is counted in fixed-bin hourly histograms and a bounded "
    "daily sample. A frozen reference (at least {reference_min_days} days and {reference_min_files} files, "
    "approved by an operator) is compared once a day with the last full day, extended back until it holds "
    "{window_min_files} files. A number counts as drifted only if its PSI minus the PSI expected without drift "
    "exceeds a threshold from the reference's own day-to-day variation (at least {psi_floor}) and its KS test is "
    "significant at {ks_alpha} after Holm's correction. Shares use a two-proportion test at {proportion_alpha} "
    "with an absolute limit of {proportion_limit}. Image drift is a warning; detector drift in the risky direction "
    "(fewer or smaller detections, lower scores, more empty files) is an alert. {hysteresis_days} consecutive "
    "days raise or clear a state. New resolutions, codecs, JPEG qualities or grayscale/IR modes are events at once."
)


def month_bounds(month: str) -> tuple[float, float]:
    year, number = (int(x) for x in month.split("-"))
    start = datetime(year, number, 1, tzinfo=timezone.utc).timestamp()
    days = calendar.monthrange(year, number)[1]
    return start, start + days * DAY


def _time_in_states(monitor: DriftMonitor, source: str, start: float, end: float) -> dict[str, float]:
    """Days spent in each overall state (the worse of the two tracks) within [start, end)."""
    tracks = {"input": "ok", "detector": "ok"}
    spent = {level: 0.0 for level in LEVELS}
    at = start
    for change in monitor.store.transitions(source):
        if change["at"] >= end:
            break
        if change["at"] > at:
            spent[max(tracks.values(), key=LEVELS.index)] += (change["at"] - at) / DAY
            at = change["at"]
        tracks[change["track"]] = change["state"]
    spent[max(tracks.values(), key=LEVELS.index)] += max(0.0, end - at) / DAY
    return {k: round(v, 2) for k, v in spent.items()}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def _reference_band(monitor: DriftMonitor, source: str) -> dict[str, tuple[float, float]]:
    """Per trend feature, the lowest and highest daily median over the reference's days."""
    ref = monitor.store.active_reference(source)
    if ref is None:
        return {}
    index = {f.name: i for i, f in enumerate(FEATURES)}
    medians: dict[str, list[float]] = {name: [] for name in TREND_FEATURES}
    for day in range(ref["first_day"], ref["last_day"] + 1):
        rows, _ = monitor.store.sample(source, day, day)
        for name in TREND_FEATURES:
            values = rows[:, index[name]]
            values = values[~np.isnan(values)]
            if values.size:
                medians[name].append(float(np.median(values)))
    return {name: (min(v), max(v)) for name, v in medians.items() if v}


def _plots(monitor: DriftMonitor, source: str, first_day: int, last_day: int) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    band = _reference_band(monitor, source)
    checks = [c for c in monitor.store.checks(source, first_day, last_day) if c.get("status") == "checked"]
    fig, axes = plt.subplots(1, len(TREND_FEATURES), figsize=(4 * len(TREND_FEATURES), 2.8))
    for ax, name in zip(axes, TREND_FEATURES):
        days = [c["day"] - first_day + 1 for c in checks if name in c["features"]]
        medians = [c["features"][name]["window_median"] for c in checks if name in c["features"]]
        if name in band:
            ax.axhspan(*band[name], color="#cfe3f5", label="reference: range of daily medians")
        ax.plot(days, medians, marker="o", ms=3, color="#1f4e79", label="daily median")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("day of month", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    out["trends"] = _png(fig)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8))
    for ax, name in zip(axes, ("worst", "excess")):
        if name == "worst":
            days = [c["day"] - first_day + 1 for c in checks]
            ratio = [max(((v["psi"] - v["expected"]) / v["threshold"] for v in c["features"].values()), default=0)
                     for c in checks]
            ax.bar(days, ratio, color="#1f4e79")
            ax.set_yscale("symlog", linthresh=1.0)
            ax.axhline(1.0, color="#c00000", lw=1, label="threshold")
            ax.set_title("largest PSI excess / threshold, per day", fontsize=9)
            ax.legend(fontsize=7)
        else:
            month = monitor.store.histograms(source, first_day, last_day)
            for label, colour in (("face", "#1f4e79"), ("plate", "#c55a11")):
                counts = month[f"{label}_top_score"]
                edges = (0.0,) + BY_NAME[f"{label}_top_score"].edges
                ax.step(edges, counts / max(1, counts.sum()), where="post", color=colour, label=f"{label} top score")
            ax.set_title("top score per file, share of files", fontsize=9)
            ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    out["psi_and_scores"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 2.8))
    month = monitor.store.histograms(source, first_day, last_day)
    for label, colour in (("face", "#1f4e79"), ("plate", "#c55a11")):
        counts = month[f"{label}_median_size"]
        edges = (0.0,) + BY_NAME[f"{label}_median_size"].edges
        ax.step(edges, counts / max(1, counts.sum()), where="post", color=colour, label=label)
    ax.set_title("median box size per file (share of the short side)", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    out["box_sizes"] = _png(fig)
    plt.close(fig)
    return out


def build(monitor: DriftMonitor, month: str, *, eval_reports: list[dict[str, Any]] | None = None,
          sensitivity: list[dict[str, Any]] | None = None, models: list[dict[str, Any]] | None = None) -> tuple[dict, dict]:
    """(the report as JSON-able data, PNG plots by name) for ``month`` ("YYYY-MM")."""
    start, end = month_bounds(month)
    first_day, last_day = int(start // DAY), int(end // DAY) - 1
    sources, plots = [], {}
    for source in monitor.store.sources():
        per_day = monitor.store.files_per_day(source)
        ref = monitor.store.active_reference(source)
        checks = monitor.store.checks(source, first_day, last_day)
        events = monitor.store.events(source, since=start, until=end)
        sources.append({
            "source": source,
            "files": int(sum(n for d, n in per_day.items() if first_day <= d <= last_day)),
            "reference": None if ref is None else {k: ref[k] for k in ("id", "first_day", "last_day", "files", "models",
                                                                      "status", "approved_at", "approved_by")},
            "days_in_state": _time_in_states(monitor, source, start, end),
            "days_checked": sum(c["status"] == "checked" for c in checks),
            "days_insufficient": sum(c["status"] == "insufficient data" for c in checks),
            "state_changes": [e for e in events if e["kind"] == "state_change"],
            "format_changes": [e for e in events if e["kind"] == "format_change"],
            "acknowledgements": [e for e in events if e["kind"] == "acknowledged"],
            "state_now": monitor.status_level(source),
        })
        for name, png in _plots(monitor, source, first_day, last_day).items():
            plots[f"{source}-{name}"] = png
    config = asdict(monitor.config)
    data = {
        "kind": "veil.drift-report/1",
        "month": month,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scope": {"sources": [s["source"] for s in sources], "files": sum(s["files"] for s in sources)},
        "models": models or [],
        "thresholds": config,
        "features": [{"name": f.name, "group": f.group, "kind": f.kind, "risky": f.risky} for f in FEATURES],
        "method": METHOD.format(**config),
        "sources": sources,
        "eval": [_eval_summary(r) for r in eval_reports or []],
        "sensitivity": sensitivity or [],
    }
    return data, plots


def _eval_summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("object_class", "ground_truth", "ap50", "recall_at_threshold", "precision_at_threshold", "mask_recall")
    return {"ground_truth": Path(str(report.get("ground_truth", ""))).parent.name or report.get("ground_truth"),
            "images": report.get("images"), "veil_version": report.get("veil_version"),
            "classes": [{k: c.get(k) for k in keys} for c in report.get("classes", [])]}


def write(monitor: DriftMonitor, month: str, out_dir: Path, *, audit: AuditLog | None = None, actor: str = "veil",
          **kwargs: Any) -> dict[str, Path | str]:
    data, plots = build(monitor, month, **kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"veil-drift-{month}"
    for name, png in plots.items():
        (out_dir / f"{stem}-{name}.png").write_bytes(png)
    html_bytes = render_html(data, plots).encode()
    json_bytes = json.dumps(data, indent=1, default=float).encode()
    (out_dir / f"{stem}.html").write_bytes(html_bytes)
    (out_dir / f"{stem}.json").write_bytes(json_bytes)
    hashes = {f"{stem}.html": hashlib.sha256(html_bytes).hexdigest(), f"{stem}.json": hashlib.sha256(json_bytes).hexdigest()}
    (out_dir / f"{stem}.sha256").write_text("".join(f"{h}  {n}\n" for n, h in hashes.items()))
    if audit is not None:
        audit.append("drift_report", actor=actor, month=month, sha256=hashes)
    return {"html": out_dir / f"{stem}.html", "json": out_dir / f"{stem}.json", "sha256_html": hashes[f"{stem}.html"]}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_html(data: dict[str, Any], plots: dict[str, bytes]) -> str:
    day = lambda d: datetime.fromtimestamp(d * DAY, timezone.utc).date().isoformat()
    when = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="minutes")
    parts = [f"<h1>Veil drift report {html.escape(data['month'])}</h1>",
             f"<p class=meta>created {html.escape(data['created_at'])}; {data['scope']['files']} files from "
             f"{len(data['scope']['sources'])} source(s)</p>",
             "<h2>Scope, models and method</h2>", f"<p>{html.escape(data['method'])}</p>"]
    if data["models"]:
        parts.append(_table(["model", "task", "sha256"], [[m.get("name"), m.get("task"), str(m.get("sha256"))[:16]]
                                                          for m in data["models"]]))
    parts.append(_table(["threshold", "value"], [[k, v] for k, v in data["thresholds"].items()]))
    parts.append("<h2>Sources</h2>")
    parts.append(_table(
        ["source", "files", "state now", "days ok", "days warning", "days alert", "checked", "insufficient", "reference"],
        [[s["source"], s["files"], s["state_now"], *s["days_in_state"].values(), s["days_checked"], s["days_insufficient"],
          "none" if s["reference"] is None else
          f"{day(s['reference']['first_day'])} to {day(s['reference']['last_day'])}, {s['reference']['files']} files, "
          f"{s['reference']['status']}" + (f" by {s['reference']['approved_by']}" if s['reference']['approved_by'] else "")]
         for s in data["sources"]]))
    for s in data["sources"]:
        parts.append(f"<h3>{html.escape(s['source'])}</h3>")
        events = ([[when(e["at"]), f"{e['track']} {e['state']}", ", ".join(e["signals"]) or "-"] for e in s["state_changes"]]
                  + [[when(e["at"]), "format change", f"{e['key']} = {e['value']}"] for e in s["format_changes"]]
                  + [[when(e["at"]), "acknowledged", f"by {e['by']} (state {e['state']})"] for e in s["acknowledgements"]])
        parts.append(_table(["when (UTC)", "event", "signals"], sorted(events)) if events else "<p>No events.</p>")
        for name in ("trends", "psi_and_scores", "box_sizes"):
            key = f"{s['source']}-{name}"
            if key in plots:
                parts.append(f"<img alt='{html.escape(key)}' src='data:image/png;base64,"
                             f"{base64.b64encode(plots[key]).decode()}'>")
    parts.append("<h2>Latest evaluation (veil eval)</h2>")
    if data["eval"]:
        parts.append(_table(["set", "class", "objects", "AP50", "recall", "precision", "mask recall"],
                            [[e["ground_truth"], c["object_class"], c["ground_truth"], f"{c['ap50']:.3f}",
                              _pct(c["recall_at_threshold"]), _pct(c["precision_at_threshold"]), _pct(c["mask_recall"])]
                             for e in data["eval"] for c in e["classes"]]))
    else:
        parts.append("<p>No evaluation results were supplied (<code>veil drift report --eval REPORT.json</code>).</p>")
    parts.append("<h2>Sensitivity: what each perturbation costs, and what caught it</h2>")
    if data["sensitivity"]:
        parts.append(_table(["perturbation", "face recall", "plate recall", "caught after (days)", "signals within 3 days"],
                            [[r["perturbation"], r["face"], r["plate"],
                              "not caught" if r["caught_after_days"] is None else r["caught_after_days"],
                              ", ".join(r["caught_by"]) or "-"] for r in data["sensitivity"]]))
    else:
        parts.append("<p>No sensitivity results were supplied.</p>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}table{border-collapse:collapse;"
             "margin:.5em 0 1em}td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px;text-align:left}"
             "th{background:#eef3f8}img{max-width:100%;display:block;margin:.5em 0}.meta{color:#666}")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Veil drift report {html.escape(data['month'])}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")
