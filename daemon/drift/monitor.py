"""Per-source drift monitoring: intake of sidecar features, a frozen reference, daily checks, escalation.

Two tracks per source, each with its own state: "input" (image statistics; drift is a warning) and
"detector" (detector outputs; drift in the risky direction is an alert, otherwise a warning). A track
changes state only after ``hysteresis_days`` consecutive days agree, both ways. A change of resolution,
codec, JPEG quality or grayscale/IR mode raises a ``format_change`` event at once, without statistics.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Iterable

import numpy as np

from pipeline.qc import QCReport

from daemon import log
from daemon.audit.log import AuditLog
from daemon.drift import stats
from daemon.drift.config import DriftConfig
from daemon.drift.schema import FEATURES, flatten
from daemon.drift.store import DriftStore, Observation, day_of
from daemon.drift.verdict import column, evaluate, feature_hists

_log = log.get("veil.drift")
LEVELS = ("ok", "warning", "alert")
_REFERENCE_SAMPLE = 5000


def models_key(report: QCReport) -> str:
    """A short key for the detector models that produced a file's detections (a new model: a new key)."""
    shas = sorted(m.sha256 for m in report.models)
    return hashlib.sha256("/".join(shas).encode()).hexdigest()[:12] if shas else "none"


def observation(report: QCReport, at: float) -> Observation | None:
    """The monitored numbers of one finished file, or None if its sidecar carries none (failed, older version)."""
    if report.disposition == "failed":
        return None
    flat = flatten(report.features)
    if flat is None:
        return None
    return Observation(at, flat[0], flat[1], models_key(report))


class DriftMonitor:
    def __init__(self, store: DriftStore, config: DriftConfig = DriftConfig(), *,
                 clock: Callable[[], float] = time.time, audit: AuditLog | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.audit = audit  # operator actions (approval, acknowledgement) are audit events
        self._refs: dict[int, tuple[dict[str, Any], dict[str, np.ndarray]]] = {}  # frozen: parsed once
        self.behind = False  # run_due ran out of its time budget with days still due

    def reference(self, source: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The active reference and its sample as columns (cached: a reference never changes once frozen)."""
        ref_id = self.store.active_reference_id(source)
        if ref_id is None:
            return None
        if ref_id not in self._refs:
            ref = self.store.active_reference(source)
            assert ref is not None
            matrix = np.array(ref["sample"], dtype=np.float64).reshape(-1, len(FEATURES))
            self._refs[ref_id] = (ref, {f.name: column(matrix, i) for i, f in enumerate(FEATURES)})
        return self._refs[ref_id]

    # -- intake ------------------------------------------------------------------------------------------

    def observe(self, source: str, report: QCReport) -> None:
        item = observation(report, self.clock())
        if item is not None:
            self.observe_many(source, [item])

    def observe_many(self, source: str, items: Iterable[Observation]) -> list[tuple[str, str]]:
        items = list(items)
        has_reference = self.store.active_reference_id(source) is not None
        new = self.store.add(source, items)
        if has_reference:
            for key, value in new:
                at = min(o.at for o in items if o.formats.get(key) == value)
                self.store.add_event(at, source, "format_change", {"key": key, "value": value})
                _log.warning("drift_format_change", source=source, key=key, value=value)
        return new if has_reference else []

    # -- reference ---------------------------------------------------------------------------------------

    def build_reference(self, source: str, before_day: int, *, after_day: int | None = None) -> dict[str, Any] | None:
        """Freeze a provisional reference from the first full days (after ``after_day``) that hold enough."""
        per_day = {d: n for d, n in self.store.files_per_day(source).items()
                   if d < before_day and (after_day is None or d > after_day)}
        if not per_day:
            return None
        days = sorted(per_day)
        first, total, last = days[0], 0, None
        for day in range(first, before_day):
            total += per_day.get(day, 0)
            if day - first + 1 >= self.config.reference_min_days and total >= self.config.reference_min_files:
                last = day
                break
        if last is None:
            return None
        models = max(((m, n) for d in range(first, last + 1) for m, n in self.store.models_per_day(source, d).items()),
                     key=lambda mn: mn[1])[0]
        whole = feature_hists(self.store, source, first, last, models)
        per_day_hists = {d: feature_hists(self.store, source, d, d, models)
                         for d in range(first, last + 1) if per_day.get(d)}
        thresholds = {}
        for feature in FEATURES:
            if feature.kind != "continuous":
                continue
            excess = []
            for h in per_day_hists.values():
                day_hist, rest = h[feature.name], whole[feature.name] - h[feature.name]
                if day_hist.sum() and rest.sum():
                    excess.append(stats.excess_psi(rest, day_hist))  # each day against the rest
            thresholds[feature.name] = stats.psi_threshold(excess, self.config.psi_floor)
        # a share must move by more than its own day-to-day spread in the reference, and at least the set limit
        proportion_limits = {}
        for feature in FEATURES:
            if feature.kind == "proportion":
                shares = [h[feature.name][1] / h[feature.name].sum()
                          for h in per_day_hists.values() if h[feature.name].sum()]
                spread = 3.0 * float(np.std(shares, ddof=1)) if len(shares) > 1 else 0.0
                proportion_limits[feature.name] = max(self.config.proportion_limit, spread)
        sample, sample_models = self.store.sample(source, first, last)
        detector_columns = np.array([f.group == "detector" for f in FEATURES])
        sample = sample.copy()
        sample[np.ix_(sample_models != models, detector_columns)] = np.nan  # other models: input statistics only
        if len(sample) > _REFERENCE_SAMPLE:
            picks = np.random.default_rng(first).choice(len(sample), _REFERENCE_SAMPLE, replace=False)
            sample = sample[np.sort(picks)]
        formats = self.store.format_values(source, until=(last + 1) * 86400.0)
        ref = {
            "first_day": first, "last_day": last, "files": int(sum(per_day.get(d, 0) for d in range(first, last + 1))),
            "models": models, "created_at": self.clock(),
            "hist": {k: v.tolist() for k, v in whole.items()}, "thresholds": thresholds,
            "proportion_limits": proportion_limits, "sample": sample.tolist(),
            "formats": {k: sorted(v) for k, v in formats.items()},
        }
        ref["id"] = self.store.save_reference(source, ref)
        self.store.add_event(self.clock(), source, "reference_provisional",
                             {"first_day": first, "last_day": last, "files": ref["files"], "models": models})
        _log.info("drift_reference_provisional", source=source, first_day=first, last_day=last, files=ref["files"])
        return self.store.active_reference(source)

    # -- daily checks ------------------------------------------------------------------------------------

    def run_due(self, now: float | None = None, *, budget_s: float | None = None) -> list[dict[str, Any]]:
        """Check every full day not yet checked, for every source, in order.

        With ``budget_s`` it stops once that much time is spent (the service loop must keep pinging its
        watchdog); ``self.behind`` then says that more days are due.
        """
        today = day_of(self.clock() if now is None else now)
        started = time.monotonic()
        results: list[dict[str, Any]] = []
        self.behind = False
        for source in self.store.sources():
            last = self.store.last_checked_day(source)
            days = self.store.files_per_day(source)
            start = (last + 1) if last is not None else min(days)
            for day in range(start, today):
                if budget_s is not None and results and time.monotonic() - started > budget_s:  # one at least
                    self.behind = True
                    return results
                results.append(self.check(source, day))
        return results

    def check(self, source: str, day: int) -> dict[str, Any]:
        now = self.clock()
        self._rebaseline_if_due(source, day)
        cached = self.reference(source)
        if cached is None and self.build_reference(source, day + 1) is not None:
            cached = self.reference(source)
        if cached is None:
            result: dict[str, Any] = {"status": "learning"}
        elif day <= cached[0]["last_day"]:
            result = {"status": "reference"}
        else:
            result = evaluate(self.store, self.config, source, day, *cached)
            if result["status"] == "checked":
                self._note_reference_validity(source, day, result)
                self._escalate(source, "input", result["input_level"], result["input_signals"], now)
                if result["detector_level"] is not None:
                    self._escalate(source, "detector", result["detector_level"], result["detector_signals"], now)
        result["state"] = self.status_level(source)
        self.store.save_check(source, day, now, result)
        _log.info("drift_evaluation", source=source, day=day, status=result["status"], state=result["state"],
                  input=result.get("input_level"), detector=result.get("detector_level"),
                  signals=result.get("input_signals", []) + result.get("detector_signals", []))
        return result

    def _note_reference_validity(self, source: str, day: int, result: dict[str, Any]) -> None:
        """An event, once, when files stop coming from the reference's detector models (e.g. a model update)."""
        if result["detector_level"] is not None:
            return
        previous = [c for c in self.store.checks(source, day - 7, day - 1) if c.get("status") == "checked"]
        if previous and previous[-1].get("detector_level") is None:
            return  # already reported
        self.store.add_event(self.clock(), source, "detector_reference_invalid", {"day": day})
        _log.warning("drift_detector_reference_invalid", source=source,
                     hint="veil drift baseline --source NAME --rebuild-after DATE")

    def _escalate(self, source: str, track: str, level: str, signals: list[str], now: float) -> None:
        """Two consecutive days (``hysteresis_days``) of the same verdict raise or clear a track's state."""
        state = self.store.state(source, track)
        changed_at = None
        if level == state["state"]:
            state.update(candidate=level, streak=0)
            if level != "ok":
                state["signals"] = sorted(set(state["signals"]) | set(signals))
        else:
            state["streak"] = state["streak"] + 1 if state["candidate"] == level else 1
            state["candidate"] = level
            if state["streak"] >= self.config.hysteresis_days:
                state.update(state=level, since=now, streak=0, signals=signals)
                changed_at = now
        self.store.save_state(source, track, state, changed_at)
        if changed_at is None:
            return
        _log.warning("drift_state_change", source=source, track=track, state=level, signals=signals)
        self.store.add_event(now, source, "state_change", {"track": track, "state": level, "signals": signals})
        if level == "alert" and not self.store.spot(source)["raised"]:
            self.store.set_spot(source, True, now)
            _log.warning("drift_spot_check_raised", source=source, rate=self.config.alert_spot_check_rate)

    # -- operator actions and status ---------------------------------------------------------------------

    def approve(self, source: str, by: str) -> dict[str, Any] | None:
        ref = self.store.approve_reference(source, self.clock(), by)
        if ref is not None:
            self.store.add_event(self.clock(), source, "reference_approved", {"reference": ref["id"], "by": by})
            if self.audit is not None:
                self.audit.append("drift_reference_approved", actor=by, source=source, reference=ref["id"],
                                  first_day=ref["first_day"], last_day=ref["last_day"], files=ref["files"],
                                  models=ref["models"])
            _log.info("drift_reference_approved", source=source, reference=ref["id"])
        return ref

    def rebuild(self, source: str, after_day: int) -> dict[str, Any] | None:
        """A new provisional reference from the days after ``after_day`` (e.g. after a new detector model)."""
        return self.build_reference(source, day_of(self.clock()), after_day=after_day)

    def schedule_rebaseline(self, source: str, by: str, reason: str) -> None:
        """The detector models changed (``veil models activate``): the reference's detector statistics no longer
        describe this source. A new provisional reference is built from the days after today, as soon as they
        hold enough files; until then the old one judges the input track only (its models are gone)."""
        after_day = day_of(self.clock())
        self.store.set_rebaseline(source, after_day, self.clock(), by, reason)
        self.store.add_event(self.clock(), source, "rebaseline_scheduled", {"after_day": after_day, "by": by})
        if self.audit is not None:
            self.audit.append("drift_rebaseline_scheduled", actor=by, source=source, after_day=after_day, reason=reason)
        _log.info("drift_rebaseline_scheduled", source=source, after_day=after_day)

    def _rebaseline_if_due(self, source: str, day: int) -> None:
        pending = self.store.pending_rebaseline(source)
        if pending is None or day <= pending["after_day"]:
            return
        ref = self.build_reference(source, day + 1, after_day=pending["after_day"])
        if ref is None:
            return  # not enough files from the new models yet
        self.store.clear_rebaseline(source)
        if self.audit is not None:
            self.audit.append("drift_reference_rebuilt", actor="veil", source=source, reference=ref["id"],
                              first_day=ref["first_day"], last_day=ref["last_day"], files=ref["files"],
                              models=ref["models"])

    def acknowledge(self, source: str, by: str) -> None:
        self.store.set_spot(source, False, self.clock(), by)
        self.store.add_event(self.clock(), source, "acknowledged", {"by": by, "state": self.status_level(source)})
        if self.audit is not None:
            self.audit.append("drift_acknowledged", actor=by, source=source, state=self.status_level(source))
        _log.info("drift_acknowledged", source=source)

    def status_level(self, source: str) -> str:
        states = [self.store.state(source, t)["state"] for t in ("input", "detector")]
        return max(states, key=LEVELS.index)

    def spot_rate(self, source: str) -> float:
        raised = self.store.spot(source)["raised"]
        return self.config.alert_spot_check_rate if raised else self.config.spot_check_rate

    def status(self, source: str) -> dict[str, Any]:
        ref = self.store.active_reference(source)
        checks = self.store.checks(source)
        return {
            "source": source,
            "state": self.status_level(source),
            "tracks": {t: self.store.state(source, t) for t in ("input", "detector")},
            "reference": None if ref is None else {k: ref[k] for k in ("id", "first_day", "last_day", "files", "models",
                                                                      "status", "approved_at", "approved_by")},
            "last_check": None if not checks else {k: checks[-1].get(k) for k in ("day", "status", "files", "input_signals",
                                                                                  "detector_signals")},
            "spot_check": {**self.store.spot(source), "rate": self.spot_rate(source)},
            "rebaseline": self.store.pending_rebaseline(source),  # a model activation awaits a new reference
        }
