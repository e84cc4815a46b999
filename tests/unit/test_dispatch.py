"""The Celery backend without a broker: settings, queue arguments, time limits, and one delivery on a worker
(lock, journal, idempotent publish) with a fake runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.qc import SIDECAR_SUFFIX, ErrorRecord, FileInfo, QCReport

from daemon.config.dispatch import DispatchSettings
from daemon.config.settings import FolderSettings, Settings
from daemon.dispatch.client import _gave_up, _safe
from daemon.dispatch.limits import limits_for
from daemon.dispatch.node import pin_unit
from daemon.dispatch.payload import TaskPayload
from daemon.dispatch.task import deliver, read_deliveries
from daemon.dispatch.topology import dead_queue, results_queue, task_queue
from daemon.intake.jobs import REMOVING_PREFIX, ClaimArea, Job, JobRecord, job_lock
from daemon.intake.stability import StableFile
from daemon.service.worker_spec import JobSpec

from tests.integration.serve_harness import REPO, write_image, write_video

URL = "amqp://veil:secret@broker:5672/veil"


def celery(**extra) -> DispatchSettings:
    return DispatchSettings(backend="celery", broker_url=URL, **extra)


# -- settings ------------------------------------------------------------------------------------------------

def test_the_local_backend_is_the_default_and_needs_no_broker():
    assert Settings().dispatch.backend == "local"
    assert DispatchSettings().resolved_broker_url() == ""


@pytest.mark.parametrize("fields, message", [
    ({"backend": "celery"}, "needs dispatch.broker_url_file"),
    ({"backend": "celery", "broker_url": URL, "max_job_s": 100, "hard_grace_s": 10, "consumer_timeout_s": 110},
     "consumer_timeout_s must be above"),
    ({"backend": "celery", "broker_url": URL, "delivery_limit": 0}, "greater than or equal to 1"),
])
def test_inconsistent_dispatch_settings_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        DispatchSettings(**fields)


def test_the_broker_url_is_read_from_its_file(tmp_path):
    (tmp_path / "broker.url").write_text(URL + "\n")
    assert DispatchSettings(backend="celery", broker_url_file=tmp_path / "broker.url").resolved_broker_url() == URL
    (tmp_path / "empty.url").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        DispatchSettings(backend="celery", broker_url_file=tmp_path / "empty.url").resolved_broker_url()
    with pytest.raises(OSError):
        DispatchSettings(backend="celery", broker_url_file=tmp_path / "absent.url").resolved_broker_url()


def test_logs_never_show_the_broker_password():
    assert _safe(URL) == "amqp://veil:***@broker:5672/veil"
    assert _safe("amqp://broker//") == "amqp://broker//"


# -- queues --------------------------------------------------------------------------------------------------

def test_task_queues_are_quorum_queues_with_a_delivery_limit_and_dead_letters():
    dispatch = celery(queue_prefix="site", delivery_limit=5, consumer_timeout_s=30000.0)
    queue = task_queue(dispatch, "video")
    assert queue.name == "site.video" and queue.durable
    assert queue.queue_arguments == {
        "x-queue-type": "quorum", "x-delivery-limit": 5, "x-dead-letter-exchange": "site.dlx",
        "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish", "x-consumer-timeout": 30000000,
    }
    assert dead_queue(dispatch).exchange.name == "site.dlx" and dead_queue(dispatch).exchange.type == "fanout"
    assert dead_queue(dispatch).queue_arguments == {"x-queue-type": "quorum"}
    assert results_queue(dispatch, "host-a").name == "site.results.host-a"


# -- time limits ---------------------------------------------------------------------------------------------

def test_limits_put_photos_and_videos_apart_and_scale_with_the_duration(tmp_path):
    dispatch = celery(photo_soft_limit_s=30, video_base_s=20, video_factor=4, hard_grace_s=5, max_job_s=600,
                      consumer_timeout_s=1000)
    write_image(tmp_path / "a.jpg", seed=1)
    write_video(tmp_path / "b.mp4", seconds=2.0)
    (tmp_path / "c.bin").write_bytes(b"not media at all")
    (tmp_path / "d.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then garbage")
    photo, video, unknown, broken = (limits_for(tmp_path / n, dispatch) for n in ("a.jpg", "b.mp4", "c.bin", "d.mp4"))
    assert (photo.kind, photo.soft_s, photo.hard_s) == ("photo", 30, 35)
    assert video.kind == "video" and video.soft_s == pytest.approx(20 + 4 * 2.0, abs=0.5)
    assert video.hard_s == pytest.approx(video.soft_s + 5)
    assert (unknown.kind, unknown.soft_s) == ("photo", 30)  # it fails fast, whatever it is
    assert (broken.kind, broken.soft_s, broken.hard_s) == ("video", 600, 605)  # no duration: the longest allowed


def test_no_limit_exceeds_max_job_s(tmp_path):
    write_video(tmp_path / "b.mp4", seconds=2.0)
    dispatch = celery(video_base_s=500, max_job_s=100, consumer_timeout_s=1000)
    assert limits_for(tmp_path / "b.mp4", dispatch).soft_s == 100


# -- one delivery on a worker ---------------------------------------------------------------------------------

class FakeRunner:
    """Writes the input, upper-cased, as the output; counts its runs; raises what it is told to."""

    def __init__(self, raise_: BaseException | None = None) -> None:
        self.runs = 0
        self.raise_ = raise_

    def run(self, job: JobSpec) -> QCReport:
        self.runs += 1
        assert list(Path(job.dst).parent.iterdir()) == [], "staging is cleared before a try"
        if self.raise_ is not None:
            raise self.raise_
        Path(job.dst).write_bytes(Path(job.src).read_bytes().upper())
        return QCReport(veil_version="t", created_at=datetime.now(timezone.utc),
                        input=FileInfo(name=job.name, sha256="ab" * 32), output=FileInfo(name=job.name))


def claimed(tmp_path: Path, data: bytes = b"photo") -> tuple[Settings, TaskPayload, Path]:
    folder = FolderSettings(name="f", ingest=tmp_path / "in", output=tmp_path / "out")
    for path in (folder.ingest, *folder.destinations()):
        path.mkdir(parents=True, exist_ok=True)
    src = folder.ingest / "a.jpg"
    src.write_bytes(data)
    st = src.stat()
    job = ClaimArea(folder, "host").claim(StableFile(src, st.st_size, st.st_mtime_ns))
    assert job is not None
    (job.staging / "leftover.tmp").parent.mkdir(parents=True)
    (job.staging / "leftover.tmp").write_bytes(b"a killed try's")
    payload = TaskPayload(job_id=job.id, job_dir=str(job.dir), reply_to="veil.results.host", kind="photo")
    return Settings(folders=(folder,)), payload, job.dir


def journal(job_dir: Path) -> JobRecord:
    return JobRecord.model_validate_json((job_dir / "job.json").read_bytes())


def test_a_delivery_processes_publishes_with_the_sidecar_and_answers(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    runner = FakeRunner()
    result = deliver(payload, settings, runner, node="w1@h")
    assert (result.status, result.deliveries, result.worker, runner.runs) == ("published", 1, "w1@h", 1)
    assert (tmp_path / "out" / "a.jpg").read_bytes() == b"PHOTO"
    sidecar = QCReport.from_json((tmp_path / "out" / ("a.jpg" + SIDECAR_SUFFIX)).read_bytes())
    assert QCReport.from_json(result.report_json or "").input.sha256 == sidecar.input.sha256
    assert journal(job_dir).state == "published"  # `veil serve` archives the original and drops the job
    assert sidecar.job == payload.job_id  # the commit marker names the job that wrote it


def test_a_second_delivery_publishes_nothing_and_runs_nothing(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    runner = FakeRunner()
    deliver(payload, settings, runner)
    again = deliver(payload, settings, runner)
    assert (again.status, again.deliveries, runner.runs) == ("published", 2, 1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "a.jpg" + SIDECAR_SUFFIX]


def test_a_delivery_of_a_finished_job_answers_gone(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    shutil.rmtree(job_dir)
    result = deliver(payload, settings, FakeRunner())
    assert (result.status, result.deliveries) == ("gone", 0)


def test_a_delivery_arriving_while_serve_deletes_the_finished_job_finds_no_folder_and_leaves_none(tmp_path, monkeypatch):
    """The duplicate message of a published job, delivered while `veil serve` deletes the job's folder: it must
    not wait on that folder's lock, write into it, or keep it alive (a CI run once found a folder left holding
    only a new job.lock and deliveries, created between the deletion of the old lock file and of the folder)."""
    settings, payload, job_dir = claimed(tmp_path)
    deliver(payload, settings, FakeRunner())  # the first delivery published it
    area = ClaimArea(settings.folders[0], "host")
    answers: list = []
    delete = shutil.rmtree

    def deleting_with_a_delivery_meanwhile(path, *args, **kwargs):
        late = threading.Thread(target=lambda: answers.append(deliver(payload, settings, FakeRunner())), daemon=True)
        late.start()
        late.join(5)
        assert not late.is_alive(), "the late delivery waited on the folder being deleted"
        delete(path, *args, **kwargs)

    monkeypatch.setattr("daemon.intake.jobs.shutil.rmtree", deleting_with_a_delivery_meanwhile)
    area.finish(Job(journal(job_dir), job_dir))
    assert [a.status for a in answers] == ["gone"]
    assert list(area.root.iterdir()) == []


def test_a_folder_left_half_deleted_by_a_stopped_run_is_removed_at_the_next_start(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    area = ClaimArea(settings.folders[0], "host")
    removing = job_dir.with_name(REMOVING_PREFIX + job_dir.name)
    os.rename(job_dir, removing)
    assert area.recover() == [] and not removing.exists()


def test_a_processed_job_is_published_from_its_stored_report(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    runner = FakeRunner()
    deliver(payload, settings, runner)
    record = journal(job_dir)
    record.state = "processed"  # the publish was cut short after its files, before its sidecar
    (job_dir / "job.json").write_text(record.model_dump_json())
    (tmp_path / "out" / ("a.jpg" + SIDECAR_SUFFIX)).unlink()
    result = deliver(payload, settings, runner)
    assert (result.status, runner.runs) == ("published", 1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "a.jpg" + SIDECAR_SUFFIX]


def test_the_soft_time_limit_fails_the_file_closed_with_a_plain_reason(tmp_path):
    from billiard.exceptions import SoftTimeLimitExceeded

    settings, payload, job_dir = claimed(tmp_path)
    result = deliver(payload, settings, FakeRunner(SoftTimeLimitExceeded()), soft_limit_s=30.0)
    report = QCReport.from_json(result.report_json or "")
    assert result.status == "published" and report.disposition == "failed"
    assert report.error == ErrorRecord(kind="processing", message="time limit of 30 s exceeded")
    assert (tmp_path / "failed" / "a.jpg").read_bytes() == b"photo"
    assert not (tmp_path / "out" / "a.jpg").exists()


def test_a_second_delivery_waits_for_the_first_to_release_the_job(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    runner = FakeRunner()
    answers = []
    with job_lock(job_dir) as held:  # the first delivery, still running
        assert held
        second = threading.Thread(target=lambda: answers.append(deliver(payload, settings, runner)))
        second.start()
        second.join(0.5)
        assert second.is_alive() and runner.runs == 0
    second.join(10)
    assert [a.status for a in answers] == ["published"] and runner.runs == 1


def test_a_dead_letter_becomes_a_failed_report_naming_the_deliveries(tmp_path):
    settings, payload, job_dir = claimed(tmp_path)
    (job_dir / "deliveries").write_text("3")
    assert read_deliveries(job_dir) == 3
    job = JobSpec(job_id=payload.job_id, profile="default", src=str(job_dir / "input" / "a.jpg"), dst="", name="a.jpg")
    report = QCReport.from_json(_gave_up(job, 3))
    assert report.disposition == "failed" and report.error is not None
    assert report.error.message.startswith("gave up after 3 deliveries")
    assert report.input.sha256 is not None and report.input.name == "a.jpg"


# -- the command ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table, error", [
    ("", "needs [dispatch] backend = \"celery\""),
    ('[dispatch]\nbackend = "celery"\nbroker_url_file = "/nonexistent/broker.url"\n', "No such file"),
])
def test_veil_worker_refuses_a_configuration_it_cannot_work_with(tmp_path, table, error):
    # A process of its own: the command configures logging for the whole interpreter.
    config = tmp_path / "veil.toml"
    config.write_text(table + f'[[folders]]\ningest = "{tmp_path / "in"}"\noutput = "{tmp_path / "out"}"\n')
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "worker", "--config", str(config)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 78
    assert error in result.stderr


def test_a_units_credential_comes_before_the_file(tmp_path, monkeypatch):
    (tmp_path / "broker.url").write_text(URL)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "broker.url").write_text("amqp://veil:from-systemd@broker//")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    dispatch = DispatchSettings(backend="celery", broker_url_file=tmp_path / "broker.url")
    assert dispatch.resolved_broker_url() == "amqp://veil:from-systemd@broker//"
    (credentials / "broker.url").unlink()
    assert dispatch.resolved_broker_url() == URL


def test_every_node_of_a_host_gets_its_own_metrics_port():
    from daemon.dispatch.metrics import metrics_port

    assert [metrics_port(9500, unit) for unit in ("cpu", "0", "1", "7")] == [9500, 9501, 9502, 9508]
    assert metrics_port(0, "3") == 0  # off


def test_veil_serve_does_not_start_without_its_broker(tmp_path):
    from daemon.dispatch.client import CeleryDispatcher
    from daemon.service.pool import PoolBroken

    dispatch = DispatchSettings(backend="celery", broker_url="amqp://veil:secret@127.0.0.1:1//")
    dispatcher = CeleryDispatcher(Settings(dispatch=dispatch))
    with pytest.raises(PoolBroken, match=r"broker amqp://veil:\*\*\*@127.0.0.1:1//") as caught:
        dispatcher.start()
    assert "secret" not in str(caught.value)


def test_the_celery_app_acknowledges_late_and_requeues_what_a_lost_or_overdue_worker_held():
    from daemon.dispatch.app import make_app

    conf = make_app(celery(queue_prefix="site"), URL).conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.task_acks_on_timeout) == (True, True, False)
    assert (conf.worker_prefetch_multiplier, conf.worker_concurrency) == (1, 1)
    assert conf.broker_transport_options == {"confirm_publish": True}
    assert conf.accept_content == ["json"] and conf.task_ignore_result
    assert [q.name for q in conf.task_queues] == ["site.photo", "site.video"]


@pytest.mark.parametrize(("unit", "visible", "device"), [("cpu", "", "cpu"), ("0", "0", "cuda"), ("3", "3", "cuda")])
def test_a_unit_pins_one_gpu_or_none_for_its_process_tree(monkeypatch, unit, visible, device):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # what the host would otherwise show every child
    assert pin_unit(unit) == device
    assert os.environ["CUDA_VISIBLE_DEVICES"] == visible


@pytest.mark.parametrize("unit", ["gpu0", "-1", "0,1", ""])
def test_a_unit_that_is_neither_cpu_nor_one_gpu_index_is_refused(monkeypatch, unit):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ValueError, match="GPU index"):
        pin_unit(unit)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
