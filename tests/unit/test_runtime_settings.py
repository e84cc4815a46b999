"""The service's onnxruntime settings reach every engine it builds: the local workers and the Celery worker's."""

from __future__ import annotations

import pytest

from daemon.config.settings import FolderSettings, load_settings
from daemon.models.engine_cache import EngineCache
from daemon.models.registry import ActiveSelection
from daemon.service.workforce import worker_specs


@pytest.mark.parametrize("spin_wait", [False, True])
def test_precision_and_spinning_reach_every_worker_and_the_celery_engine_cache(tmp_path, spin_wait):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    settings = load_settings(None, folders=[folder], service={"workers": 2, "precision": "fp16", "spin_wait": spin_wait})
    specs = worker_specs(settings, ActiveSelection(), "daemon.service.worker:PipelineRunner")
    assert [(s.precision, s.spin_wait) for s in specs] == [("fp16", spin_wait)] * 2
    runtime = EngineCache(settings.service)._runtime
    assert (runtime.precision, runtime.spin_wait) == ("fp16", spin_wait)


def test_spinning_is_off_by_default(tmp_path):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    assert load_settings(None, folders=[folder]).service.spin_wait is False
