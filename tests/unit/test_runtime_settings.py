"""The service's onnxruntime settings reach every engine it builds: the local workers and the Celery worker's."""

from __future__ import annotations

import pytest

from pipeline.params import RuntimeParams

from daemon.config.settings import FolderSettings, load_settings
from daemon.models.engine_cache import EngineCache
from daemon.models.registry import ActiveSelection
from daemon.service.worker_spec import WorkerSpec
from daemon.service.workforce import worker_specs


@pytest.mark.parametrize(("spin_wait", "max_batch"), [(False, 1), (True, 16)])
def test_precision_spinning_and_batch_reach_every_worker_and_the_celery_engine_cache(tmp_path, spin_wait, max_batch):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    service = {"workers": 2, "precision": "fp16", "spin_wait": spin_wait, "max_batch": max_batch}
    settings = load_settings(None, folders=[folder], service=service)
    specs = worker_specs(settings, ActiveSelection(), "daemon.service.worker:PipelineRunner")
    assert [(s.precision, s.spin_wait, s.max_batch) for s in specs] == [("fp16", spin_wait, max_batch)] * 2
    runtime = EngineCache(settings.service)._runtime
    assert (runtime.precision, runtime.spin_wait, runtime.max_batch) == ("fp16", spin_wait, max_batch)


def test_the_service_batches_as_the_pipeline_does_by_default(tmp_path):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    service = load_settings(None, folders=[folder]).service
    assert service.max_batch == RuntimeParams().max_batch == WorkerSpec(0, "cpu", 0, None).max_batch == 1


def test_spinning_is_off_by_default(tmp_path):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    assert load_settings(None, folders=[folder]).service.spin_wait is False
