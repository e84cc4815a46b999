"""The real RabbitMQ for the Celery backend's tests: a vhost of its own per test, `veil worker` processes.

The broker must answer on 127.0.0.1:5672 (guest/guest); `.ci/run` starts it. Locally a test without it is
skipped; under CI (``CI=true``) it fails. Each test gets its own vhost (``rabbitmqctl``), deleted afterwards;
where rabbitmqctl is not usable, a queue prefix of its own on "/", whose queues are deleted afterwards. A test
marked ``broker_alone`` (it stops the broker, or changes it for every channel) has it to itself: the test
processes share a lock (`_broker_lock`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing
from tests.integration.serve_harness import REPO, Daemon, wait_for

BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
RUNNERS = "tests.integration.celery_runners:TestRunner"


def broker_answers() -> bool:
    try:
        with socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2):
            return True
    except OSError:
        return False


def _rabbitmqctl(*args: str) -> bool:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return False
    return subprocess.run([tool, *args], capture_output=True, timeout=60).returncode == 0


class Broker:
    """One test's corner of the broker: ``url`` and ``prefix`` go into the [dispatch] table."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.vhost: str | None = f"veil-test-{tag}"
        self.prefix = f"veil-{tag}"
        if _rabbitmqctl("add_vhost", self.vhost) and _rabbitmqctl("set_permissions", "-p", self.vhost, "guest",
                                                                   ".*", ".*", ".*"):
            self.url = f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}/{self.vhost}"
        else:
            self.vhost = None
            self.url = f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}//"

    def dispatch_toml(self, **extra: Any) -> str:
        lines = ["[dispatch]", 'backend = "celery"', f'broker_url = "{self.url}"', f'queue_prefix = "{self.prefix}"']
        lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
        return "\n".join(lines) + "\n"

    def depth(self, queue: str) -> int:
        """Messages ready in ``<prefix>.<queue>`` (declared passively: it must exist); -1 while the broker
        cannot say (a quorum queue electing its leader just after a restart)."""
        from amqp.exceptions import AMQPError
        from kombu import Connection
        from kombu.exceptions import OperationalError

        try:
            with Connection(self.url) as conn:
                _, count, _ = conn.default_channel.queue_declare(f"{self.prefix}.{queue}", passive=True)
                return int(count)
        except (OSError, OperationalError, AMQPError):
            return -1

    def close(self) -> None:
        if self.vhost is not None:
            _rabbitmqctl("delete_vhost", self.vhost)
            return
        from kombu import Connection

        with Connection(self.url) as conn:
            for name in ("photo", "video", "dead", "results.t1", "results.t2"):
                try:
                    conn.channel().queue_delete(f"{self.prefix}.{name}")
                except Exception:  # noqa: BLE001 - a queue the test never declared
                    pass


@contextmanager
def _broker_lock(where: Path, *, alone: bool) -> Iterator[None]:
    """A lock the test processes share: a test that stops the broker, or changes a broker-wide setting, takes
    it alone (exclusive); every other broker test shares it, so none is hit by a neighbour's change."""
    with open(where / "broker.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def broker(request, tmp_path_factory):
    # The test processes' base folders share a parent (pytest-xdist): the lock file lives there.
    alone = request.node.get_closest_marker("broker_alone") is not None
    with _broker_lock(tmp_path_factory.getbasetemp().parent, alone=alone):
        try:
            wait_for(broker_answers, 30, "the broker")  # a broker just restarted may take a few seconds to listen
        except AssertionError:
            missing(f"RabbitMQ on {BROKER_HOST}:{BROKER_PORT} (rabbitmq-server -detached)")
        corner = Broker()
        yield corner
        corner.close()


class Worker:
    """One `veil worker` process on a daemon's configuration."""

    def __init__(self, daemon: Daemon, name: str, *, queues: str = "photo,video", runner: str = RUNNERS,
                 env: dict[str, str] | None = None, args: list[str] | None = None,
                 prefix: list[str] | None = None) -> None:
        self.daemon, self.name, self.queues, self.runner = daemon, name, queues, runner
        self.env = env or {}
        self.args = args or []
        self.prefix = prefix or []  # e.g. ["ip", "netns", "exec", NS]: run it on another "host"
        self.log_path = daemon.root / f"worker-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.log_handle = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        command = [*self.prefix, sys.executable, "-m", "daemon.cli", "worker", "--config", str(self.daemon.config), "--unit", "cpu",
                   "--node", f"{self.name}@testhost", "--queues", self.queues, "--runner", self.runner, *self.args]
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log_handle, stderr=self.log_handle)
        return self

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                out.append(event)
        return out

    def wait_ready(self, deadline_s: float = 120, count: int = 1) -> "Worker":
        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"worker exited: {self.log_path.read_text()}"
            return len(self.events("worker_child_ready")) >= count and "ready." in self.log_path.read_text()

        wait_for(ready, deadline_s, f"worker {self.name} to be ready")
        return self

    def child_pid(self) -> int | None:
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return None
        pids = [int(p) for p in text.split()]
        return pids[0] if pids else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self.proc is not None:
            self.log_handle.close()


@pytest.fixture
def workers():
    started: list[Worker] = []

    def make(*args: Any, **kwargs: Any) -> Worker:
        worker = Worker(*args, **kwargs)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        child = worker.child_pid() if worker.proc is not None else None
        if child is not None:
            os.kill(child, 9)
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(30)
        if worker.proc is not None and not worker.log_handle.closed:
            worker.log_handle.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Forwarder:
    """TCP from ``listen`` to the broker on loopback, for a "host" in its own network namespace (the broker
    listens on 127.0.0.1 only, and RabbitMQ lets guest in from loopback only)."""

    def __init__(self, listen: tuple[str, int]) -> None:
        self.server = socket.create_server(listen)
        self.server.settimeout(0.5)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            upstream = socket.create_connection((BROKER_HOST, BROKER_PORT))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for end in (src, dst):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopping = True
        self.server.close()
        self.thread.join(5)


@contextmanager
def separate_host() -> Iterator[tuple[list[str], str] | None]:
    """A second "host": a network namespace joined to this one by a veth pair, the broker reachable at the
    address yielded. Yields (command prefix, broker address), or None where namespaces cannot be made here
    (not root, no iproute2)."""
    tag = uuid.uuid4().hex[:6]
    ns, outer, inner = f"veil18-{tag}", f"vo{tag}", f"vi{tag}"
    steps = [["ip", "netns", "add", ns], ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
             ["ip", "link", "set", inner, "netns", ns], ["ip", "addr", "add", "10.231.77.1/30", "dev", outer],
             ["ip", "link", "set", outer, "up"],
             ["ip", "netns", "exec", ns, "ip", "addr", "add", "10.231.77.2/30", "dev", inner],
             ["ip", "netns", "exec", ns, "ip", "link", "set", inner, "up"],
             ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]]
    made = shutil.which("ip") is not None and os.geteuid() == 0
    forwarder = None
    try:
        for step in steps if made else []:
            if subprocess.run(step, capture_output=True, timeout=30).returncode != 0:
                made = False
                break
        if made:
            forwarder = _Forwarder(("10.231.77.1", BROKER_PORT))
        yield (["ip", "netns", "exec", ns], "10.231.77.1") if made else None
    finally:
        if forwarder is not None:
            forwarder.close()
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
