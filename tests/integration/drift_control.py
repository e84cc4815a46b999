"""Shared by the drift integration tests: the control records (real images, real models), computed once.

They take a minute or two on 2 CPU cores, so they are kept in pytest's cache under a key made of everything
they depend on: the model hashes, the features version, the chosen images and the perturbations. Any change
recomputes them. The test command's workers (pytest-xdist) share that cache: the first to ask computes, under a
file lock, while the others wait for its result.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import cores_shared, missing

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
EVAL = SHARED / "eval"
PER_SET = int(os.environ.get("VEIL_DRIFT_CONTROL_PER_SET", "3"))  # images from each of the 4 control sets


def require_eval() -> None:
    if not all((EVAL / name / "annotations.json").is_file() for name in ("rbnr_faces", "cmu_mit_faces",
                                                                         "openalpr_endtoend", "ucsd_lp")):
        missing("../shared/eval")


@functools.cache
def _engine_and_params():
    from pipeline.detect.engine import Engine
    from pipeline.params import Params
    from pipeline.records import ObjectClass

    params = Params()  # the shipped defaults: every class runs on every control image, whatever its set labels
    assert set(params.detector.classes) == {c.label for c in ObjectClass}, params.detector.classes
    return Engine.load(params.detector, cores_shared()), params


def control_records(cache) -> tuple[list[dict], object]:
    """(records, params); ``cache`` is pytest's ``request.config.cache`` (None: always compute)."""
    from pipeline.features import FEATURES_VERSION

    from daemon.drift.control import PERTURBATIONS, control_images, measure

    require_eval()
    engine, params = _engine_and_params()
    images = control_images(EVAL, PER_SET)
    key_text = json.dumps([sorted(m.sha256 for m in engine.model_records), FEATURES_VERSION, PER_SET,
                           [str(i.file.relative_to(EVAL)) for i in images], sorted(PERTURBATIONS),
                           params.model_dump(mode="json")], sort_keys=True)
    key = "veil/drift-control/" + hashlib.sha256(key_text.encode()).hexdigest()[:16]
    records = _MEMO.get(key)
    if records is None:
        with _one_worker_at_a_time(cache, key):
            records = cache.get(key, None) if cache is not None else None
            if records is None:
                records = measure(images, params, engine)
                if cache is not None:
                    cache.set(key, records)
    _MEMO[key] = records
    return records, params


@contextmanager
def _one_worker_at_a_time(cache, key: str) -> Iterator[None]:
    """Held while one test worker computes the records under ``key`` (none needed without pytest's cache)."""
    if cache is None:
        yield
        return
    with open(cache.mkdir("veil-drift-control") / f"{key.rsplit('/', 1)[-1]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


_MEMO: dict[str, list[dict]] = {}  # one computation per test session, whichever test asks first
