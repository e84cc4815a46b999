"""Weeks of synthetic traffic through the real monitor and store, on an injected clock.

Each file of the traffic is a control-set record (real image, real features, real detections), drawn at
random: a source is a camera that sees its own mix of the control images, with a share of night/IR shots.
A scenario switches the traffic of one source, from a given day on, to another mix (a shift). The result
says, per source, what the monitor raised, when, and on which signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.params import Params

from daemon.drift.config import DriftConfig
from daemon.drift.control import with_scores_lowered
from daemon.drift.monitor import DriftMonitor
from daemon.drift.schema import flatten
from daemon.drift.store import DriftStore, Observation

DAY = 86400.0
EPOCH_DAY = 20454  # 2026-01-01: the simulated calendar starts here
# "day": the unperturbed colour shots; "night": dark or grayscale/IR shots (the darkened and grayscale versions of
# every control image, and the control images that are dark or gray already). 15 % of the traffic is night/IR.
BASE_MIX = {"day": 0.85, "night": 0.15}
SCORE_FACTOR = 0.8
_CHECK_LATENCY_S = 3600.0  # the simulated checks run 10 minutes after midnight; anything within an hour counts


def _swap(mix: dict[str, float], old: str, new: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, share in mix.items():
        out[new if kind == old else kind] = out.get(new if kind == old else kind, 0.0) + share
    return out


# The shifts the issue asks for, each as the traffic mix from its first day on.
SHIFTS: dict[str, dict[str, float]] = {
    "night_ir_doubled": {"day": 0.70, "night": 0.30},
    "jpeg_q20": _swap(BASE_MIX, "day", "jpeg_q20"),
    "new_resolution": _swap(BASE_MIX, "day", "downscale"),
    "scores_lowered": {f"{k}~scores": v for k, v in BASE_MIX.items()},
}
# The sensitivity table: every perturbation of the control set, as the whole daytime traffic.
SENSITIVITY = {name: _swap(BASE_MIX, "day", name) for name in ("darken", "blur", "jpeg_q20", "grayscale_ir", "downscale")}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Scenario:
    source: str
    shift: str | None = None  # a name for the report; None: no drift
    mix_after: dict[str, float] | None = None
    start_day: int = 0  # day index (from the start of the simulation) of the shift


@dataclass
class SourceResult:
    source: str
    shift: str | None
    start_day: int | None
    checked_days: int = 0  # days checked against a reference (not learning, not insufficient)
    insufficient_days: int = 0
    alerts: int = 0  # raises to "alert"
    warnings: int = 0  # raises to "warning"
    format_events: int = 0
    caught_after_days: float | None = None  # from the shift's start to its first signal
    caught_on_day: int | None = None  # how many days of shifted traffic the monitor had seen by then (1 = the first)
    caught_by: list[str] = field(default_factory=list)


Pool = list[tuple[int, tuple[dict[str, float], dict[str, str]]]]  # (control image, its monitored numbers)


def pools(records: list[dict[str, Any]], params: Params) -> dict[str, Pool]:
    """Per traffic kind, the monitored numbers of the control images in that version."""
    by_kind: dict[str, dict[int, tuple]] = {}
    for record in records:
        for variant in (record, dict(with_scores_lowered(record, SCORE_FACTOR, params),
                                     perturbation=record["perturbation"] + "~scores")):
            flat = flatten(variant["features"])
            assert flat is not None, "control features without the current version"
            by_kind.setdefault(variant["perturbation"], {})[record["image"]] = flat
    night = {i for i, flat in by_kind["none"].items() if flat[0]["night_ir"]}
    out: dict[str, Pool] = {}
    for suffix in ("", "~scores"):
        out["day" + suffix] = [(i, f) for i, f in by_kind["none" + suffix].items() if i not in night]
        out["night" + suffix] = ([(i, f) for i, f in by_kind["none" + suffix].items() if i in night]
                                 + [(i, f) for kind in ("darken", "grayscale_ir") for i, f in by_kind[kind + suffix].items()])
    for kind in ("darken", "blur", "jpeg_q20", "grayscale_ir", "downscale"):
        out[kind] = [(i, f) for i, f in by_kind[kind].items() if i not in night]  # the day shots, perturbed
    return out


def simulate(records: list[dict[str, Any]], params: Params, scenarios: list[Scenario], *, days: int, store_path: Path,
             config: DriftConfig = DriftConfig(), sample_per_day: int = 300, seed: int = 7,
             files_per_day: tuple[int, int] = (220, 420)) -> tuple[list[SourceResult], DriftMonitor]:
    rng = np.random.default_rng(seed)
    kinds = pools(records, params)
    n_images = 1 + max(i for pool in kinds.values() for i, _ in pool)
    clock = Clock(EPOCH_DAY * DAY)
    store = DriftStore(store_path, instance="sim", sample_per_day=sample_per_day, seed=seed)
    monitor = DriftMonitor(store, config, clock=clock)
    weights = {s.source: rng.dirichlet(np.full(n_images, 2.0)) for s in scenarios}
    rates = {s.source: rng.uniform(*files_per_day) for s in scenarios}
    for day in range(days):
        start = (EPOCH_DAY + day) * DAY
        for scenario in scenarios:
            mix = scenario.mix_after if scenario.mix_after is not None and day >= scenario.start_day else BASE_MIX
            names = list(mix)
            n = int(rng.poisson(rates[scenario.source]))
            picks = rng.choice(len(names), size=n, p=np.array(list(mix.values())) / sum(mix.values()))
            times = np.sort(start + rng.uniform(8 * 3600, 18 * 3600, size=n))  # a working day
            batch: list[tuple[dict[str, float], dict[str, str]]] = []
            for kind_index, count in zip(*np.unique(picks, return_counts=True)):
                pool = kinds[names[kind_index]]
                w = weights[scenario.source][[i for i, _ in pool]]
                chosen = rng.choice(len(pool), size=count, p=w / w.sum())
                batch += [pool[c][1] for c in chosen]
            order = rng.permutation(len(batch))
            observations = [Observation(float(t), *batch[int(o)], "control-models") for t, o in zip(times, order)]
            clock.now = start + 18 * 3600
            monitor.observe_many(scenario.source, observations)
        clock.now = start + DAY + 600  # just after midnight: yesterday is a full day
        monitor.run_due(clock.now)
    return [_result(store, s) for s in scenarios], monitor


def _result(store: DriftStore, scenario: Scenario) -> SourceResult:
    result = SourceResult(scenario.source, scenario.shift, scenario.start_day if scenario.mix_after is not None else None)
    for check in store.checks(scenario.source):
        result.checked_days += check["status"] == "checked"
        result.insufficient_days += check["status"] == "insufficient data"
    for event in store.events(scenario.source):
        if event["kind"] == "state_change":
            result.alerts += event["state"] == "alert"
            result.warnings += event["state"] == "warning"
        result.format_events += event["kind"] == "format_change"
    if result.start_day is not None:
        shift_at = (EPOCH_DAY + result.start_day) * DAY
        raised = [(e["at"], _signals(e)) for e in store.events(scenario.source, since=shift_at) if _signals(e)]
        if raised:
            result.caught_after_days = round((raised[0][0] - shift_at) / DAY, 2)
            # a daily check runs just after midnight: it has seen whole days only
            result.caught_on_day = int(np.ceil((raised[0][0] - shift_at - _CHECK_LATENCY_S) / DAY))
            # everything raised within the 3 days the issue allows (the last check of day 3 runs just after it)
            result.caught_by = sorted({s for at, signals in raised if at <= shift_at + 3 * DAY + _CHECK_LATENCY_S
                                       for s in signals})
    return result


def _signals(event: dict[str, Any]) -> list[str]:
    if event["kind"] == "format_change":
        return [f"format_change:{event['key']}={event['value']}"]
    if event["kind"] == "state_change" and event["state"] != "ok":
        return [f"{event['track']}_{event['state']}:{s}" for s in event["signals"]]
    return []
