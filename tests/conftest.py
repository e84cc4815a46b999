"""Shared fixtures: the repository, the evaluation data, the models, and one loaded engine per session.

Locally a test whose evaluation data or models are missing is skipped. Under CI (``CI=true``) it fails:
a green CI must mean that the quality tests really ran.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EVAL = SHARED / "eval"
MODELS = Path(sys.prefix) / "share" / "veil" / "models"
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    # The models' rewritten graphs (pipeline/detect/graph_cache.py): made by the first test process, read by
    # every later one and by the services the tests start; kept with pytest's cache rather than in the user's.
    cache = getattr(config, "cache", None)
    if cache is not None and "CACHE_DIRECTORY" not in os.environ:
        os.environ["CACHE_DIRECTORY"] = str(cache.mkdir("veil-cache"))


def missing(what: str) -> NoReturn:
    """Skip the test for want of ``what`` (data, models, a tool), or fail it under CI."""
    if UNDER_CI:
        pytest.fail(f"missing under CI: {what}", pytrace=False)
    pytest.skip(f"missing: {what}")


def require(condition: bool, what: str) -> None:
    if not condition:
        missing(what)


def eval_set(name: str) -> Path:
    """The folder of one evaluation set (skipped when ../shared is absent, failed under CI)."""
    folder = EVAL / name
    require((folder / "annotations.json").is_file(), f"evaluation data {folder}")
    return folder


def require_eval() -> Path:
    """The evaluation folder as a whole (its README marks a complete copy)."""
    require((EVAL / "README.md").is_file(), f"evaluation data {EVAL}")
    return EVAL


def require_models() -> None:
    require((MODELS / "centerface.onnx").is_file() and (MODELS / "platedet.onnx").is_file(),
            f"models installed in {MODELS} (./install.sh)")


def degraded_set(tmp_path_factory, name: str, kind: str, every: int) -> Path:
    """The evaluation set ``name``'s every ``every``-th photo degraded by ``kind`` (pipeline/eval/degraded.py) or
    its faces occluded (pipeline/eval/occluded.py), for the shipped models: its annotations.json (images/ beside
    it)."""
    from pipeline.eval.degraded import build_degraded_set
    from pipeline.eval.occluded import OCCLUSIONS, build_occluded_set

    source = eval_set(name)
    require_models()
    build = build_occluded_set if kind in OCCLUSIONS else build_degraded_set
    return build(source, tmp_path_factory.mktemp(f"{kind}_{name}"), kind, every)


def photos_of(gt: Path, names, into: str) -> Path:
    """The COCO set ``gt`` narrowed to the photos named ``names``, written beside it as ``into`` (so that
    ``images/`` is the same folder); a name the set lacks fails the test."""
    whole, wanted = json.loads(gt.read_text()), set(names)
    images = [image for image in whole["images"] if image["file_name"] in wanted]
    assert {image["file_name"] for image in images} == wanted, f"{gt} lacks some of {sorted(wanted)}"
    kept = {image["id"] for image in images}
    narrowed = gt.with_name(into)
    narrowed.write_text(json.dumps({**whole, "images": images,
                                    "annotations": [a for a in whole["annotations"] if a["image_id"] in kept]}))
    return narrowed


def thinned(gt: Path, every: int, into: Path) -> Path:
    """The COCO set ``gt`` cut to every ``every``-th photo by id, written to ``into`` (beside ``gt`` for
    ``mask_recall``, which finds the images beside the annotations)."""
    from pipeline.eval.images import every_nth_image

    into.write_text(json.dumps(every_nth_image(json.loads(gt.read_text()), every)))
    return into


def mask_recall(gt: Path, params, engine, match_iou: float, label: str = "face") -> float:
    """``veil eval``'s mask recall of the class ``label`` on a COCO set (``images/`` beside ``gt``) with
    ``params`` and ``engine``."""
    from pipeline.eval.images import evaluate

    report = evaluate(gt, gt.parent / "images", params, engine, match_iou=match_iou)
    return next(r.mask_recall for r in report.classes if r.object_class == label)


def cores_shared():
    """The runtime of one test process: the cores shared among pytest-xdist's workers as ``veil serve`` shares
    them among its CPU workers (``inference_threads``); each taking them all would oversubscribe them."""
    from pipeline.detect.runtime import RuntimeParams

    from daemon.service.workforce import inference_threads

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return RuntimeParams(threads=inference_threads(0, "cpu", ["cpu"] * workers))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def engine():
    """The shipped detector: every default class, default models."""
    from pipeline.detect.engine import Engine
    from pipeline.params import DetectorParams

    require_models()
    return Engine.load(DetectorParams(), cores_shared())


@pytest.fixture(scope="session")
def face_engine():
    """Faces only: for unit-level tests of one part, never as evidence for a product claim."""
    from pipeline.detect.engine import Engine
    from pipeline.params import DetectorParams

    require_models()
    return Engine.load(DetectorParams(classes=("face",)), cores_shared())
