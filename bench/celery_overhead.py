"""Scale-out benchmark: what the broker path costs per photo, and the throughput of 1, 2 and 3 workers.

    .venv/bin/python bench/celery_overhead.py            # 120 photos per run
    .venv/bin/python bench/celery_overhead.py --quick    # 40 photos per run

Needs RabbitMQ on 127.0.0.1:5672 (guest/guest) and rabbitmqctl (each run gets its own vhost). Every run is
`veil serve` on fresh folders with the plumbing profile (faces only) on small noise photos (64x48), so a job
is short and the figures are dominated by what surrounds it: claim, enqueue, delivery, answer, publish.

- local 1: `[dispatch] backend = "local"`, one worker process: the baseline, measured in the same run;
- celery 1, 2, 3: the celery backend with 1, 2 and 3 `veil worker` processes (one CPU unit each).

Each run waits until every worker is ready, drops all photos at once and times from the drop to the last
sidecar. It prints photos/s, ms per photo, and for celery 1 the overhead per photo against local 1 (the same
single worker, so the difference is the broker path). On a 2-core machine 3 workers cannot run 3 jobs at once:
read the 2- and 3-worker figures as what the broker path allows, not as scaling. It asserts nothing; the exit
status is 1 when a photo was lost or published twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.broker_harness import Broker, Worker, broker_answers
from tests.integration.serve_harness import Daemon, sidecars, wait_for, write_image


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of one process so far, its children not included."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(root: Path, photos: int, workers: int | None, broker: Broker | None) -> tuple[float, float]:
    """(seconds from dropping ``photos`` photos to the last sidecar, CPU seconds of the `veil serve` process
    itself, its local workers not included); ``workers`` None: the local pool."""
    extra = broker.dispatch_toml() if broker is not None else ""
    root.mkdir(parents=True)
    daemon = Daemon(root, workers=1, extra=extra, settle_s=0.2)
    nodes = [Worker(daemon, f"w{i}", runner="daemon.service.worker:PipelineRunner").start()
             for i in range(workers or 0)]
    try:
        daemon.start().wait_ready(180)
        for node in nodes:
            node.wait_ready(180)
        staging = root / "staging"
        for i in range(photos):
            write_image(staging / f"p{i:04d}.jpg", seed=i)
        assert daemon.proc is not None
        serve_cpu = _cpu_s(daemon.proc.pid)
        started = time.monotonic()
        for path in sorted(staging.iterdir()):
            path.rename(daemon.ingest / path.name)
        wait_for(lambda: len(sidecars(root / "out")) + len(sidecars(root / "review")) >= photos, 1800, "the photos")
        elapsed = time.monotonic() - started
        published = len(sidecars(root / "out")) + len(sidecars(root / "review"))
        if published != photos:
            raise SystemExit(f"{published} sidecars for {photos} photos")
        assert daemon.proc is not None
        return elapsed, _cpu_s(daemon.proc.pid) - serve_cpu
    finally:
        daemon.stop()
        for node in nodes:
            node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 photos per run instead of 120")
    args = parser.parse_args()
    if not broker_answers():
        print("RabbitMQ does not answer on 127.0.0.1:5672: start it with rabbitmq-server -detached")
        return 0
    photos = 40 if args.quick else 120
    work = Path(tempfile.mkdtemp(prefix="veil-celery-bench-"))
    results: dict[str, tuple[float, float]] = {}
    try:
        results["local 1"] = _run(work / "local", photos, None, None)
        for count in (1, 2, 3):
            broker = Broker()
            try:
                results[f"celery {count}"] = _run(work / f"celery{count}", photos, count, broker)
            finally:
                broker.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{photos} photos (64x48, faces only) per run")
    print(f"{'run':10} {'photos/s':>9} {'ms/photo':>9} {'serve cpu ms/photo':>19}")
    for name, (seconds, serve_cpu) in results.items():
        print(f"{name:10} {photos / seconds:9.1f} {1000 * seconds / photos:9.1f} {1000 * serve_cpu / photos:19.1f}")
    local, celery = results["local 1"][0], results["celery 1"][0]
    print(f"broker path overhead, one worker: {1000 * (celery - local) / photos:+.1f} ms per photo "
          f"({local / celery:.2f}x the local pool's throughput)")
    serve_ms = 1000 * results["celery 1"][1] / photos
    if serve_ms > 0:
        print(f"one veil serve spends {serve_ms:.1f} ms of CPU per photo on the broker path: it can feed about "
              f"{1000 / serve_ms:.0f} photos/s, whatever the number of worker hosts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
