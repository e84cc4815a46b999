"""Shared by the drift integration tests: the control records (real images, real models), computed once.

They take about five minutes of one core in float32 (72 detections at the shipped defaults), so they are kept in
pytest's cache under a key made of everything they depend on: the model hashes, the features version, the chosen
images and the perturbations. Any change recomputes them. The test command's workers (pytest-xdist) share that
cache image by image, each under a file lock: a worker measures the images no other worker is measuring, then
waits for the rest.
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

    from daemon.drift.control import PERTURBATIONS, control_images

    require_eval()
    engine, params = _engine_and_params()
    images = control_images(EVAL, PER_SET)
    key_text = json.dumps([sorted(m.sha256 for m in engine.model_records), FEATURES_VERSION, PER_SET,
                           [str(i.file.relative_to(EVAL)) for i in images], sorted(PERTURBATIONS),
                           params.model_dump(mode="json")], sort_keys=True)
    key = "veil/drift-control/" + hashlib.sha256(key_text.encode()).hexdigest()[:16]
    records = _MEMO.get(key)
    if records is None:
        # Two workers asking at once share the images: each measures those the other has not taken, then
        # waits for the rest.
        per_image: dict[int, list[dict]] = {}
        for wait in (False, True):
            for index, image in enumerate(images):
                if index not in per_image:
                    found = _image_records(cache, f"{key}/{index}", index, image, params, engine, wait)
                    if found is not None:
                        per_image[index] = found
        records = [record for index in sorted(per_image) for record in per_image[index]]
    _MEMO[key] = records
    return records, params


def _image_records(cache, key: str, index: int, image, params, engine, wait: bool) -> list[dict] | None:
    """The control image ``index``'s records: from pytest's cache, else measured here; None when another
    worker is measuring them and ``wait`` is false."""
    from daemon.drift.control import measure

    with _one_worker_at_a_time(cache, key, wait) as held:
        if not held:
            return None
        records = cache.get(key, None) if cache is not None else None
        if records is None:
            records = [{**record, "image": index} for record in measure([image], params, engine)]
            if cache is not None:
                cache.set(key, records)
        return records


@contextmanager
def _one_worker_at_a_time(cache, key: str, wait: bool) -> Iterator[bool]:
    """Held while one test worker computes the records under ``key`` (none needed without pytest's cache);
    yields whether it is held, which only fails without ``wait``."""
    if cache is None:
        yield True
        return
    with open(cache.mkdir("veil-drift-control") / f"{key.split('/', 2)[-1].replace('/', '-')}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


_MEMO: dict[str, list[dict]] = {}  # one computation per test session, whichever test asks first
