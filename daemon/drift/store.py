"""The drift state store: one SQLite file under the state directory.

Hourly histograms hold counts only, keyed by instance, so stores of several hosts on one share add up.
A bounded daily sample of feature vectors (reservoir sampling) feeds the KS tests. Nothing here names a
file or holds a pixel.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from daemon.drift.schema import BY_NAME, FEATURES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hist (source TEXT, hour INTEGER, instance TEXT, models TEXT, feature TEXT, bin INTEGER,
    count INTEGER, PRIMARY KEY (source, hour, instance, models, feature, bin));
CREATE TABLE IF NOT EXISTS day_files (source TEXT, day INTEGER, instance TEXT, models TEXT, n INTEGER,
    PRIMARY KEY (source, day, instance, models));
CREATE TABLE IF NOT EXISTS samples (source TEXT, day INTEGER, instance TEXT, slot INTEGER, models TEXT, vector BLOB,
    PRIMARY KEY (source, day, instance, slot));
CREATE TABLE IF NOT EXISTS formats (source TEXT, key TEXT, value TEXT, first_seen REAL, count INTEGER,
    PRIMARY KEY (source, key, value));
CREATE TABLE IF NOT EXISTS refs (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT, first_day INTEGER,
    last_day INTEGER, files INTEGER, models TEXT, status TEXT, created_at REAL, approved_at REAL, approved_by TEXT,
    active INTEGER, body TEXT);
CREATE TABLE IF NOT EXISTS checks (source TEXT, day INTEGER, checked_at REAL, result TEXT, PRIMARY KEY (source, day));
CREATE TABLE IF NOT EXISTS states (source TEXT, track TEXT, state TEXT, since REAL, candidate TEXT, streak INTEGER,
    signals TEXT, PRIMARY KEY (source, track));
CREATE TABLE IF NOT EXISTS transitions (source TEXT, track TEXT, at REAL, state TEXT, signals TEXT);
CREATE TABLE IF NOT EXISTS events (at REAL, source TEXT, kind TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS spot (source TEXT PRIMARY KEY, raised INTEGER, raised_at REAL, acked_at REAL, acked_by TEXT);
CREATE TABLE IF NOT EXISTS rebaseline (source TEXT PRIMARY KEY, after_day INTEGER, requested_at REAL, by TEXT,
    reason TEXT);
CREATE INDEX IF NOT EXISTS hist_by_time ON hist (source, hour);
"""
DB_NAME = "drift.sqlite"


@dataclass(frozen=True)
class Observation:
    """One file's monitored numbers, as the store takes them."""

    at: float  # epoch seconds (the monitor's clock)
    values: dict[str, float]
    formats: dict[str, str]
    models: str


def day_of(at: float) -> int:
    return int(at // 86400)


class DriftStore:
    def __init__(self, path: Path, *, instance: str, sample_per_day: int = 500, seed: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        # Monitoring counts, not results: a power cut may lose the last commits, never corrupt the file.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.instance = instance
        self.sample_per_day = sample_per_day
        self._random = random.Random(seed)

    def close(self) -> None:
        self.db.close()

    # -- intake ------------------------------------------------------------------------------------------

    def add(self, source: str, observations: Iterable[Observation]) -> list[tuple[str, str]]:
        """Counts, samples and format values for a batch; returns the (key, value) pairs never seen before."""
        observations = list(observations)
        if not observations:
            return []
        names = [f.name for f in FEATURES]
        matrix = np.array([[o.values.get(n, np.nan) for n in names] for o in observations], dtype=np.float64)
        hours = np.array([int(o.at // 3600) for o in observations], dtype=np.int64)
        model_names, model_index = np.unique(np.array([o.models for o in observations], dtype=object).astype(str),
                                              return_inverse=True)
        rows = []
        for column, feature in enumerate(FEATURES):
            ok = ~np.isnan(matrix[:, column])
            keys = np.stack([hours[ok], model_index[ok], feature.bin_of(matrix[ok, column])], axis=1)
            if not len(keys):
                continue
            unique, counts = np.unique(keys, axis=0, return_counts=True)
            rows += [(source, int(h), self.instance, str(model_names[m]), feature.name, int(b), int(c))
                     for (h, m, b), c in zip(unique, counts)]
        files: dict[tuple[int, str], list[Observation]] = defaultdict(list)
        first_seen: dict[tuple[str, str], tuple[float, int]] = {}
        for o in observations:
            files[(day_of(o.at), o.models)].append(o)
            for key, value in o.formats.items():
                at, n = first_seen.get((key, value), (o.at, 0))
                first_seen[(key, value)] = (min(at, o.at), n + 1)
        known = self.format_values(source)
        new_formats = sorted(kv for kv in first_seen if kv[1] not in known.get(kv[0], set()))
        with self.db:
            self.db.executemany(
                "INSERT INTO hist VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count",
                rows)
            for (day, model), batch in files.items():
                self._sample(source, day, model, batch)
                self.db.execute(
                    "INSERT INTO day_files VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
                    (source, day, self.instance, model, len(batch)))
            self.db.executemany(
                "INSERT INTO formats VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count",
                [(source, k, v, at, n) for (k, v), (at, n) in first_seen.items()])
        return new_formats

    def _sample(self, source: str, day: int, models: str, batch: list[Observation]) -> None:
        """Reservoir sampling (Algorithm R) per source, day and instance: at most ``sample_per_day`` vectors."""
        row = self.db.execute("SELECT COALESCE(SUM(n), 0) FROM day_files WHERE source=? AND day=? AND instance=?",
                              (source, day, self.instance)).fetchone()
        seen = int(row[0])
        names = [f.name for f in FEATURES]
        for o in batch:
            slot = seen if seen < self.sample_per_day else self._random.randrange(seen + 1)
            seen += 1
            if slot < self.sample_per_day:
                vector = np.array([o.values.get(n, np.nan) for n in names], dtype="<f8").tobytes()
                self.db.execute("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                                (source, day, self.instance, slot, models, vector))

    # -- reading -----------------------------------------------------------------------------------------

    def sources(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT source FROM day_files ORDER BY source")]

    def files_per_day(self, source: str, models: str | None = None) -> dict[int, int]:
        query = "SELECT day, SUM(n) FROM day_files WHERE source=?" + (" AND models=?" if models else "") + " GROUP BY day"
        args = (source, models) if models else (source,)
        return {int(d): int(n) for d, n in self.db.execute(query, args)}

    def models_per_day(self, source: str, day: int) -> dict[str, int]:
        return {m: int(n) for m, n in self.db.execute(
            "SELECT models, SUM(n) FROM day_files WHERE source=? AND day=? GROUP BY models", (source, day))}

    def histograms(self, source: str, first_day: int, last_day: int, models: str | None = None) -> dict[str, np.ndarray]:
        """Per feature, the summed counts over days first..last (all instances)."""
        out = {f.name: np.zeros(f.bins, dtype=np.int64) for f in FEATURES}
        query = ("SELECT feature, bin, SUM(count) FROM hist WHERE source=? AND hour BETWEEN ? AND ?"
                 + (" AND models=?" if models else "") + " GROUP BY feature, bin")
        args: tuple = (source, first_day * 24, last_day * 24 + 23) + ((models,) if models else ())
        for feature, b, count in self.db.execute(query, args):
            if feature in out and 0 <= b < BY_NAME[feature].bins:
                out[feature][b] += count
        return out

    def sample(self, source: str, first_day: int, last_day: int) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, models): one row per sampled file, columns in ``FEATURES`` order (NaN: missing)."""
        query = "SELECT vector, models FROM samples WHERE source=? AND day BETWEEN ? AND ?"
        rows = self.db.execute(query, (source, first_day, last_day)).fetchall()
        if not rows:
            return np.zeros((0, len(FEATURES))), np.zeros(0, dtype=object)
        matrix = np.frombuffer(b"".join(v for v, _ in rows), dtype="<f8").reshape(len(rows), len(FEATURES))
        return matrix, np.array([m for _, m in rows], dtype=object)

    def format_values(self, source: str, until: float | None = None) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        query = "SELECT key, value FROM formats WHERE source=?" + (" AND first_seen <= ?" if until is not None else "")
        for key, value in self.db.execute(query, (source, until) if until is not None else (source,)):
            out[key].add(value)
        return dict(out)

    # -- references, checks, states, events ---------------------------------------------------------------

    def active_reference_id(self, source: str) -> int | None:
        row = self.db.execute("SELECT id FROM refs WHERE source=? AND active=1", (source,)).fetchone()
        return None if row is None else int(row[0])

    def active_reference(self, source: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, first_day, last_day, files, models, status, created_at, approved_at, "
                              "approved_by, body FROM refs WHERE source=? AND active=1", (source,)).fetchone()
        if row is None:
            return None
        keys = ("id", "first_day", "last_day", "files", "models", "status", "created_at", "approved_at", "approved_by")
        return dict(zip(keys, row[:-1]), source=source, **json.loads(row[-1]))

    def save_reference(self, source: str, ref: dict[str, Any]) -> int:
        body = {k: v for k, v in ref.items() if k not in ("first_day", "last_day", "files", "models", "status",
                                                          "created_at", "approved_at", "approved_by", "id", "source")}
        with self.db:
            self.db.execute("UPDATE refs SET active=0 WHERE source=?", (source,))
            cursor = self.db.execute(
                "INSERT INTO refs (source, first_day, last_day, files, models, status, created_at, approved_at, "
                "approved_by, active, body) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, 1, ?)",
                (source, ref["first_day"], ref["last_day"], ref["files"], ref["models"], "provisional",
                 ref["created_at"], json.dumps(body)))
        assert cursor.lastrowid is not None  # set by the INSERT above
        return int(cursor.lastrowid)

    def approve_reference(self, source: str, at: float, by: str) -> dict[str, Any] | None:
        with self.db:
            self.db.execute("UPDATE refs SET status='approved', approved_at=?, approved_by=? WHERE source=? AND active=1",
                            (at, by, source))
        return self.active_reference(source)

    def last_checked_day(self, source: str) -> int | None:
        row = self.db.execute("SELECT MAX(day) FROM checks WHERE source=?", (source,)).fetchone()
        return None if row[0] is None else int(row[0])

    def save_check(self, source: str, day: int, at: float, result: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO checks VALUES (?, ?, ?, ?)", (source, day, at, json.dumps(result)))

    def checks(self, source: str, first_day: int | None = None, last_day: int | None = None) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT day, checked_at, result FROM checks WHERE source=? AND day BETWEEN ? AND ? "
                               "ORDER BY day", (source, first_day or 0, last_day if last_day is not None else 10**9))
        return [dict(json.loads(r), day=d, checked_at=at) for d, at, r in rows]

    def state(self, source: str, track: str) -> dict[str, Any]:
        row = self.db.execute("SELECT state, since, candidate, streak, signals FROM states WHERE source=? AND track=?",
                              (source, track)).fetchone()
        if row is None:
            return {"state": "ok", "since": None, "candidate": "ok", "streak": 0, "signals": []}
        return {"state": row[0], "since": row[1], "candidate": row[2], "streak": row[3], "signals": json.loads(row[4])}

    def save_state(self, source: str, track: str, state: dict[str, Any], changed_at: float | None) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (source, track, state["state"], state["since"], state["candidate"], state["streak"],
                             json.dumps(state["signals"])))
            if changed_at is not None:
                self.db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?, ?)",
                                (source, track, changed_at, state["state"], json.dumps(state["signals"])))

    def transitions(self, source: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT track, at, state, signals FROM transitions WHERE source=? ORDER BY at", (source,))
        return [{"track": t, "at": at, "state": s, "signals": json.loads(sig)} for t, at, s, sig in rows]

    def add_event(self, at: float, source: str, kind: str, detail: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (at, source, kind, json.dumps(detail)))

    def events(self, source: str | None = None, since: float = 0.0, until: float = 1e18) -> list[dict[str, Any]]:
        query = "SELECT at, source, kind, detail FROM events WHERE at BETWEEN ? AND ?" + (" AND source=?" if source else "")
        args: tuple = (since, until) + ((source,) if source else ())
        rows = self.db.execute(query + " ORDER BY at", args)
        return [{"at": at, "source": s, "kind": k, **json.loads(d)} for at, s, k, d in rows]

    def pending_rebaseline(self, source: str) -> dict[str, Any] | None:
        """A new reference asked for (a model activation): built from the days after ``after_day``."""
        row = self.db.execute("SELECT after_day, requested_at, by, reason FROM rebaseline WHERE source=?",
                              (source,)).fetchone()
        return None if row is None else dict(zip(("after_day", "requested_at", "by", "reason"), row))

    def set_rebaseline(self, source: str, after_day: int, at: float, by: str, reason: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO rebaseline VALUES (?, ?, ?, ?, ?)", (source, after_day, at, by, reason))

    def clear_rebaseline(self, source: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM rebaseline WHERE source=?", (source,))

    def spot(self, source: str) -> dict[str, Any]:
        row = self.db.execute("SELECT raised, raised_at, acked_at, acked_by FROM spot WHERE source=?", (source,)).fetchone()
        if row is None:
            return {"raised": False, "raised_at": None, "acked_at": None, "acked_by": None}
        return {"raised": bool(row[0]), "raised_at": row[1], "acked_at": row[2], "acked_by": row[3]}

    def set_spot(self, source: str, raised: bool, at: float, by: str | None = None) -> None:
        current = self.spot(source)
        values = (source, int(raised), at if raised else current["raised_at"], None if raised else at,
                  None if raised else by)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO spot VALUES (?, ?, ?, ?, ?)", values)
