"""Activating a model: the recall gate on the control set, the active selection, the audit trail, drift.

The gate is the evaluation of ``veil eval`` (pipeline/eval/images.py), run on the control set once with the
model serving the task now and once with the candidate, everything else as in the default profile. A
candidate whose mask recall is lower is refused unless forced; refusals and forced activations are audited
like any other activation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.detect.engine import Engine
from pipeline.eval.images import evaluate
from pipeline.params import Params
from pipeline.detect.runtime import RuntimeParams
from pipeline.records import ObjectClass

from daemon import log
from daemon.audit.log import AuditLog
from daemon.models.registry import RegisteredModel, Registry

_log = log.get("veil.models")


class ActivationRefused(Exception):
    """The candidate may not be activated (lower recall, no control set); nothing was changed."""


@dataclass(frozen=True)
class Measured:
    """One model on the control set: the gate's number, and the cost side for the operator to judge."""

    mask_recall: float  # share of ground-truth boxes at least 90 % masked
    outside_gt: float  # share of all image area masked outside any ground-truth box
    images: int
    ground_truth: int


@dataclass(frozen=True)
class GateResult:
    task: str
    active: RegisteredModel
    candidate: RegisteredModel
    active_measured: Measured | None  # None: not measured (forced, no control set)
    candidate_measured: Measured | None

    @property
    def active_recall(self) -> float | None:
        return None if self.active_measured is None else self.active_measured.mask_recall

    @property
    def candidate_recall(self) -> float | None:
        return None if self.candidate_measured is None else self.candidate_measured.mask_recall

    @property
    def images(self) -> int:
        return 0 if self.active_measured is None else self.active_measured.images

    @property
    def ground_truth(self) -> int:
        return 0 if self.active_measured is None else self.active_measured.ground_truth

    @property
    def passed(self) -> bool:
        return (self.active_recall is not None and self.candidate_recall is not None
                and self.candidate_recall >= self.active_recall)


def measure(model: RegisteredModel, task: str, control_set: Path, params: Params, registry: Registry,
            runtime: RuntimeParams) -> Measured:
    """``task`` on the control set with ``model`` serving it, everything else as in ``params``."""
    gt, images = control_set / "annotations.json", control_set / "images"
    if not gt.is_file() or not images.is_dir():
        raise ActivationRefused(f"control set {control_set} needs annotations.json and images/")
    # Every configured class runs, as in production, with ``model`` in place for its task: a candidate is
    # judged on the path it will serve. The task's class is the one scored.
    detector = params.detector.with_model(ObjectClass.from_label(task), model.spec(registry.model_dir))
    trial = params.model_copy(update={"detector": detector})
    report = evaluate(gt, images, trial, Engine.load(detector, runtime))
    result = next((c for c in report.classes if c.object_class == task), None)
    if result is None or result.ground_truth == 0:
        raise ActivationRefused(f"control set {control_set} has no {task} boxes to measure {task} models on")
    return Measured(result.mask_recall, report.masked_outside_gt_share, report.images, result.ground_truth)


def gate(registry: Registry, candidate: RegisteredModel, task: str, control_set: Path, params: Params,
         runtime: RuntimeParams) -> GateResult:
    active = registry.active(task)
    return GateResult(task, active, candidate, measure(active, task, control_set, params, registry, runtime),
                      measure(candidate, task, control_set, params, registry, runtime))


def unmeasured(registry: Registry, candidate: RegisteredModel, task: str) -> GateResult:
    """A forced activation without a control set: recorded as not measured."""
    return GateResult(task, registry.active(task), candidate, None, None)


def activate(registry: Registry, result: GateResult, *, force: bool, reason: str | None, actor: str,
             audit: AuditLog, drift_store_dir: Path | None, control_set: Path | None) -> None:
    """Write the active selection if the gate passed (or ``force``); audit either way; re-baseline drift."""
    detail: dict[str, Any] = {  # JSON fields of the audit event (none named like append's own parameters)
        "task": result.task,
        "active": {"name": result.active.name, "sha256": result.active.sha256},
        "candidate": {"name": result.candidate.name, "sha256": result.candidate.sha256},
        "active_mask_recall": result.active_recall, "candidate_mask_recall": result.candidate_recall,
        "active_masked_outside_gt": _outside(result.active_measured),
        "candidate_masked_outside_gt": _outside(result.candidate_measured),
        "control_set": str(control_set) if control_set else None, "control_images": result.images,
        "control_boxes": result.ground_truth, "gate": _verdict(result), "forced": force, "reason": reason,
    }
    if not result.passed and not force:
        audit.append("model.activate_refused", actor=actor, **detail)
        _log.warning("model_activation_refused", task=result.task, candidate=result.candidate.name)
        raise ActivationRefused(
            f"{result.candidate.name} has mask recall {_pct(result.candidate_recall)} on the control set, "
            f"below {result.active.name}'s {_pct(result.active_recall)}: not activated (--force --reason to override)")
    _check_appendable(audit)  # an activation that cannot be audited must not happen
    registry.set_active(result.task, result.candidate)
    audit.append("model.activate", actor=actor, **detail)
    _log.info("model_activated", task=result.task, model=result.candidate.name, forced=detail["forced"])
    if drift_store_dir is not None and result.candidate.sha256 != result.active.sha256:
        schedule_drift_rebaseline(drift_store_dir, audit, actor, result)


def schedule_drift_rebaseline(store_dir: Path, audit: AuditLog, actor: str, result: GateResult) -> list[str]:
    """Every drift source gets a new detector reference, built from the days after this activation."""
    from daemon.drift.monitor import DriftMonitor
    from daemon.drift.store import DB_NAME, DriftStore

    if not (store_dir / DB_NAME).exists():
        return []  # no drift data yet: the first reference will be learnt from the new model's output
    store = DriftStore(store_dir / DB_NAME, instance="cli")
    try:
        monitor = DriftMonitor(store, audit=audit)
        reason = json.dumps({"task": result.task, "model": result.candidate.name})
        sources = store.sources()
        for source in sources:
            monitor.schedule_rebaseline(source, by=actor, reason=reason)
        return sources
    finally:
        store.close()


def _check_appendable(audit: AuditLog) -> None:
    audit.path.parent.mkdir(parents=True, exist_ok=True)
    with open(audit.path, "a", encoding="utf-8"):
        pass  # raises PermissionError (an OSError) before anything changes


def _outside(measured: Measured | None) -> float | None:
    return None if measured is None else measured.outside_gt


def _verdict(result: GateResult) -> str:
    if result.candidate_recall is None:
        return "not measured"
    return "passed" if result.passed else "failed"


def _pct(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2%}"
