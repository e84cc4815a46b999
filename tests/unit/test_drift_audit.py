"""The append-only audit log (hash chain) and spot-check sampling."""

from __future__ import annotations

import hashlib
import json

import pytest

from daemon.audit.log import GENESIS, AuditLog
from daemon.drift.sampling import picked


def test_each_line_carries_the_hash_of_the_one_before(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.verify() == [] and log.records() == []
    first = log.append("drift_reference_approved", actor="alice", source="cam")
    second = log.append("drift_acknowledged", actor="bob", source="cam")
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert first["prev"] == GENESIS
    assert second["prev"] == hashlib.sha256(lines[0].encode()).hexdigest()
    assert [r["actor"] for r in log.records()] == ["alice", "bob"]
    assert log.verify() == []


def test_an_edited_or_removed_line_breaks_the_chain(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for actor in ("a", "b", "c"):
        log.append("drift_acknowledged", actor=actor, source="cam")
    path = tmp_path / "audit.jsonl"
    lines = path.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["actor"] = "mallory"
    path.write_text("\n".join([json.dumps(edited, sort_keys=True), *lines[1:]]) + "\n")
    assert log.verify() == [2]
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert log.verify() == [2]


def test_spot_check_sampling_is_deterministic_and_takes_the_rate():
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20000)]
    assert not picked(None, 1.0) and not picked(shas[0], 0.0)
    assert all(picked(s, 1.0) for s in shas[:100])
    share = sum(picked(s, 0.02) for s in shas) / len(shas)
    assert share == pytest.approx(0.02, abs=0.004)
    assert [picked(s, 0.1) for s in shas[:200]] == [picked(s, 0.1) for s in shas[:200]]
    # a raised rate keeps every file the normal rate picked: reviewers see a superset
    assert all(picked(s, 0.1) for s in shas if picked(s, 0.02))
