"""The review station's server: the Starlette app (daemon/review/web.py) served by uvicorn on a loopback
address, with the bounds of daemon/review/protocol.py.

The socket is bound here, before uvicorn starts, so that ``--port 0`` can print the port it got and a bind
error is reported before anything runs. uvicorn's own logs go through Veil's (one line each, no traceback:
a traceback can carry a path); its access log is off (a query names items).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass

import uvicorn

from daemon import log
from daemon.review.guard import CSP
from daemon.review.protocol import HEAD_TIMEOUT_S, MAX_CONNECTIONS, StationProtocol
from daemon.review.station import ReviewApp
from daemon.review.web import build

__all__ = ["CSP", "Limits", "ReviewApp", "ReviewServer"]

_log = log.get("veil.review")


@dataclass(frozen=True)
class Limits:
    head_timeout_s: float = HEAD_TIMEOUT_S  # a request head must arrive within this
    keep_alive_s: int = 5  # an idle connection is closed after this
    max_connections: int = MAX_CONNECTIONS  # one more gets 503
    max_head_bytes: int = 16 * 1024  # request line and headers (h11), a 400 beyond
    shutdown_s: int = 5  # requests in flight get this long at a stop


class _ToVeilLog(logging.Handler):
    """uvicorn's log records as one Veil log line each: the first line of the message, the exception's
    type, never its traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {"message": (record.getMessage().splitlines() or [""])[0][:200]}
            if record.exc_info and record.exc_info[0] is not None:
                fields["error"] = record.exc_info[0].__name__
            level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING else "debug"
            getattr(_log, level)("http_server", **fields)
        except Exception:  # noqa: BLE001 - a log line that cannot be written must not stop the server
            pass


def _route_uvicorn_logs() -> None:
    """uvicorn's messages to Veil's log; its access log nowhere (uvicorn writes it while the logger has a
    handler anywhere up the chain)."""
    top = logging.getLogger("uvicorn")
    top.handlers, top.propagate = [_ToVeilLog()], False
    top.setLevel(logging.INFO)
    for name in ("uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).handlers, logging.getLogger(name).propagate = [], True
        logging.getLogger(name).setLevel(logging.INFO)
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate, access.disabled = [], False, True


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host`` (``localhost`` is 127.0.0.1); OSError when it cannot be had."""
    address = "127.0.0.1" if host == "localhost" else host
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class ReviewServer:
    """Serves ``app`` on ``address`` (``check_loopback`` first: this class binds what it is given)."""

    def __init__(self, address: tuple[str, int], app: ReviewApp, limits: Limits = Limits()) -> None:
        self.app = app
        self.socket = bind(*address)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        protocol = type("Protocol", (StationProtocol,), {"head_timeout_s": limits.head_timeout_s,
                                                         "max_connections": limits.max_connections})
        config = uvicorn.Config(
            build(app), http=protocol, ws="none", lifespan="off", interface="asgi3", log_config=None,
            access_log=False, proxy_headers=False, server_header=False, date_header=True,
            timeout_keep_alive=limits.keep_alive_s, timeout_graceful_shutdown=limits.shutdown_s,
            h11_max_incomplete_event_size=limits.max_head_bytes,
            limit_concurrency=None,  # connections are bounded by the protocol, which answers with JSON
        )
        _route_uvicorn_logs()  # after Config, which sets up uvicorn's loggers its own way
        self._server = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        """Serve until ``shutdown`` (or, in the main thread, SIGINT/SIGTERM)."""
        try:
            asyncio.run(self._server.serve(sockets=[self.socket]))
        finally:
            self._stopped.set()

    def wait_started(self, timeout_s: float = 10.0) -> bool:
        """For tests: whether uvicorn accepts connections within ``timeout_s``."""
        started = threading.Event()

        def poll() -> None:
            while not self._server.started and not self._stopped.is_set():
                self._stopped.wait(0.01)
            started.set()

        threading.Thread(target=poll, daemon=True).start()
        return started.wait(timeout_s) and self._server.started

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._stopped.wait(30)

    def server_close(self) -> None:
        self.socket.close()
