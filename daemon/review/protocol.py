"""uvicorn's HTTP/1.1 protocol (h11), with the bounds the review station adds to what uvicorn gives.

uvicorn itself gives: request parsing by h11 (a malformed request line, header or ``Content-Length`` is a
400), a bound on the request head (``h11_max_incomplete_event_size``), and the keep-alive timeout between
requests (``timeout_keep_alive``). Its timer only runs once a response is complete, so a client that never
finishes its first request head would hold a connection for ever. This subclass adds:

- a deadline for each request head (``HEAD_TIMEOUT_S``): the connection is closed when it passes;
- a bound on open connections (``MAX_CONNECTIONS``): one more is answered 503 and closed at once;
- its own 400 and 503 answers are JSON and carry the security headers, like every response of the station.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from daemon.review.guard import json_body, raw_headers

HEAD_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 32


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = json_body(status, message)
    lines = [f"HTTP/1.1 {status} {reason}".encode(), b"connection: close",
             *(k + b": " + v for k, v in raw_headers(b"application/json", len(body)))]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class StationProtocol(H11Protocol):
    """One connection. ``head_timeout_s`` and ``max_connections`` are class attributes so a server can
    make a subclass with its own (see daemon/review/server.py)."""

    head_timeout_s: float = HEAD_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:  # answered 503 once it has said something
            self._refused = True
            self.transport = transport
            self._head_timer = self.loop.call_later(self.head_timeout_s, transport.close)
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            return super().data_received(data)
        if not self.transport.is_closing():  # after the request, not before: an early close would reset it
            self.transport.write(_raw_response(503, "Service Unavailable", "too many connections; try again"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if not self._refused:
            super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head has its own deadline

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        waiting_after = self.cycle  # a new request replaces the cycle; the same one means no new head came
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_overdue, waiting_after)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self, waiting_after: object) -> None:
        if self.cycle is waiting_after and not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A request h11 could not parse: a JSON 400 with the security headers, then close."""
        body = json_body(400, "malformed request")
        event = h11.Response(status_code=400, reason=b"Bad Request",
                             headers=[*raw_headers(b"application/json", len(body)), (b"connection", b"close")])
        try:
            self.transport.write(self.conn.send(event))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass  # a response had started already: just close
        self.transport.close()
