"""sd_notify on a real unix datagram socket."""

from __future__ import annotations

import os
import socket

from daemon.service.notify import Notifier, watchdog_interval_s


def bound(tmp_path, abstract: bool = False) -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"veil-test-{os.getpid()}-{id(sock)}"
        sock.bind("\0" + name)
        address = "@" + name
    else:
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    sock.settimeout(5)
    return sock, address


def test_messages_arrive_as_datagrams(tmp_path):
    sock, address = bound(tmp_path)
    notifier = Notifier(address)
    assert notifier.ready("queue 0")
    assert notifier.watchdog()
    assert notifier.stopping()
    messages = [sock.recv(4096).decode() for _ in range(3)]
    assert messages[0].split("\n") == ["READY=1", "STATUS=queue 0", f"MAINPID={os.getpid()}"]
    assert messages[1] == "WATCHDOG=1"
    assert messages[2].startswith("STOPPING=1\n")


def test_abstract_socket_address(tmp_path):
    sock, address = bound(tmp_path, abstract=True)
    assert Notifier(address).status("hello")
    assert sock.recv(4096) == b"STATUS=hello"


def test_without_a_socket_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled and not notifier.ready("x")


def test_a_vanished_socket_does_not_raise(tmp_path):
    sock, address = bound(tmp_path)
    sock.close()
    os.unlink(address)
    assert Notifier(address).watchdog() is False


def test_watchdog_interval_is_half_the_timeout(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval_s() is None


def test_a_listener_that_stops_reading_never_blocks_the_sender(tmp_path):
    # A unix datagram queue holds a few hundred messages; a blocking send would then wait for the reader
    # forever (seen in a test whose listener read only at the end). The send must fail instead.
    sock, address = bound(tmp_path)
    notifier = Notifier(address)
    sent = [notifier.status(f"queue {n}") for n in range(5000)]
    assert sent[0] and not all(sent)  # the queue filled up, and the sender carried on
    assert sock.recv(4096) == b"STATUS=queue 0"
    assert notifier.status("after")  # once there is room again, sending works
