"""The service's onnxruntime settings reach every engine it builds: the local workers and the Celery worker's."""

from __future__ import annotations

import pytest

from pipeline.detect.runtime import RuntimeParams

from daemon.config.settings import FolderSettings, load_settings
from daemon.models.engine_cache import EngineCache
from daemon.models.registry import ActiveSelection
from daemon.service.worker_spec import WorkerSpec
from daemon.service.workforce import worker_specs


@pytest.mark.parametrize(("spin_wait", "max_batch", "side_by_side"), [(False, 1, False), (True, 16, True)])
def test_precision_spinning_batch_and_side_by_side_reach_every_worker_and_the_celery_engine_cache(
    tmp_path, spin_wait, max_batch, side_by_side,
):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    service = {"workers": 2, "precision": "fp16", "spin_wait": spin_wait, "max_batch": max_batch,
               "classes_side_by_side": side_by_side}
    settings = load_settings(None, folders=[folder], service=service)
    specs = worker_specs(settings, ActiveSelection(), "daemon.service.worker:PipelineRunner")
    assert [(s.precision, s.spin_wait, s.max_batch, s.classes_side_by_side) for s in specs] == [
        ("fp16", spin_wait, max_batch, side_by_side)] * 2
    runtime = EngineCache(settings.service)._runtime
    assert (runtime.precision, runtime.spin_wait, runtime.max_batch, runtime.side_by_side) == (
        "fp16", spin_wait, max_batch, side_by_side)


def test_the_classes_run_side_by_side_by_default_on_a_gpu_only(tmp_path):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    service = load_settings(None, folders=[folder]).service
    assert service.classes_side_by_side is None is WorkerSpec(0, "cpu", 0, None).classes_side_by_side
    assert not EngineCache(service)._runtime.side_by_side
    gpu = load_settings(None, folders=[folder], service={"devices": ["cuda"]}).service
    assert EngineCache(gpu)._runtime.side_by_side


def test_the_service_batches_as_the_pipeline_does_by_default(tmp_path):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    service = load_settings(None, folders=[folder]).service
    assert service.max_batch == RuntimeParams().max_batch == WorkerSpec(0, "cpu", 0, None).max_batch == 1


def test_spinning_is_off_by_default(tmp_path):
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    assert load_settings(None, folders=[folder]).service.spin_wait is False


def test_jobs_per_worker_reaches_every_local_worker_and_a_celery_node_runs_one_at_a_time(tmp_path):
    from daemon.dispatch.node import unit_spec

    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    assert load_settings(None, folders=[folder]).service.jobs_per_worker == 1 == WorkerSpec(0, "cpu", 0, None).jobs
    settings = load_settings(None, folders=[folder], service={"workers": 2, "jobs_per_worker": 3})
    runner = "daemon.service.worker:PipelineRunner"
    assert [spec.jobs for spec in worker_specs(settings, ActiveSelection(), runner)] == [3, 3]
    assert unit_spec(settings, ActiveSelection(), "cpu", runner).jobs == 1


@pytest.mark.parametrize(("device", "jobs", "shared"), [("cpu", 2, 0), ("cuda", 1, 0), ("cuda", 2, 8)])
def test_a_gpu_worker_with_several_jobs_batches_their_calls_together(monkeypatch, device, jobs, shared):
    """Plumbing only (no GPU here): what the worker asks the engine for. That shared batches find what the
    shipped engine finds is tests/integration/test_batched_calls.py's."""
    from pipeline.detect.engine import Engine
    from pipeline.params import Params

    from daemon.service.worker import PipelineRunner

    asked = []

    class Loaded:
        def warm_up(self) -> None:
            pass

    monkeypatch.setattr(Engine, "load", classmethod(lambda cls, detector, runtime, **kw: asked.append(kw) or Loaded()))
    PipelineRunner(WorkerSpec(0, device, 0, None, max_batch=4, jobs=jobs, profiles={"p": Params().model_dump_json()}))
    assert asked == [{"shared_batches": shared}]
