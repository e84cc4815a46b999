"""The review station's outer gate, as ASGI middleware around the Starlette app (daemon/review/web.py).

Every response, whatever produced it (a page, an error, a 405), leaves with the security headers. Before any
route runs: the URL and header limits, the Host check (DNS rebinding gets 421), the Origin check of a POST
(another origin, or this host on another port, gets 403). A failure inside a request becomes a JSON 500 and
one log line naming the exception's type only (messages and tracebacks can carry paths); the server keeps
serving, and a client that hung up is not an error at all.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect

from daemon import log

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = log.get("veil.review")

CSP = ("default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # "no-referrer" would make the Origin of a POST "null"
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_URL_BYTES = 8 * 1024  # path and query
MAX_HEADERS = 64
MAX_HEADER_BYTES = 8 * 1024  # all header lines together (uvicorn's h11 limit stops larger heads earlier)
KNOWN_ROUTES = frozenset({"/", "/item", "/login", "/logout", "/api/items", "/api/item", "/api/image", "/api/frame",
                          "/api/boxes", "/api/approve"})


class RequestError(Exception):
    """A request refused before or while reading it: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


def raw_headers(content_type: bytes, length: int) -> list[tuple[bytes, bytes]]:
    """The headers of a response this module or the protocol writes itself."""
    return [(b"content-type", content_type), (b"content-length", str(length).encode()),
            *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS)]


async def send_json(send: Send, status: int, message: str) -> None:
    body = json_body(status, message)
    await send({"type": "http.response.start", "status": status, "headers": raw_headers(b"application/json", len(body))})
    await send({"type": "http.response.body", "body": body})


def _split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) as (lower-case name, port or None); ValueError when malformed."""
    parts = urlsplit("//" + value)
    return (parts.hostname or ""), parts.port


def allowed_names(scope: Scope) -> set[str]:
    """The names a browser may address us by: the loopback names and the address we listen on."""
    server = scope.get("server") or ("", None)
    return {*LOOPBACK_NAMES, str(server[0]).lower()}


def host_ok(scope: Scope, host_header: str) -> bool:
    """The Host header names us, on our port (DNS rebinding sends the attacker's name)."""
    try:
        name, port = _split_host(host_header)
    except ValueError:
        return False
    server_port = (scope.get("server") or ("", None))[1]
    return name in allowed_names(scope) and (port or 80) == (server_port or 80)


def origin_ok(scope: Scope, origin: str | None) -> bool:
    """No Origin (not a browser), or exactly this station's origin: http, our name, our port."""
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    server_port = (scope.get("server") or ("", None))[1]
    return (parts.scheme == "http" and (parts.hostname or "") in allowed_names(scope)
            and (port or 80) == (server_port or 80) and parts.path in ("", "/"))


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name not in out:  # the first of duplicates: Host twice is refused below anyway
            out[name] = value.decode("latin-1")
    return out


def check_request(scope: Scope) -> None:
    """The checks every request passes before a route sees it; RequestError otherwise."""
    raw = scope.get("headers", [])
    if len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
        raise RequestError(414, "URL too long")
    if len(raw) > MAX_HEADERS or sum(len(k) + len(v) for k, v in raw) > MAX_HEADER_BYTES:
        raise RequestError(431, "request headers too large")
    hosts = [v for k, v in raw if k.lower() == b"host"]
    headers = _headers(scope)
    if len(hosts) != 1 or not host_ok(scope, headers["host"]):
        raise RequestError(421, "unexpected Host")
    if scope["method"] not in ("GET", "HEAD") and not origin_ok(scope, headers.get("origin")):
        raise RequestError(403, "cross-origin request")


class Guard:
    """The middleware: headers on every response, the checks above, failures answered and logged once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan, no websockets
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*_without_ours(message.get("headers", [])), *raw_headers(b"", 0)[2:]]
            await send(message)

        try:
            check_request(scope)
            await self.app(scope, receive, send_secured)
        except RequestError as exc:
            if not started:
                await send_json(send, exc.status, str(exc))
        except ClientDisconnect:
            pass  # the client hung up: nothing to answer, nothing wrong here
        except Exception as exc:  # noqa: BLE001 - any fault in a request is answered, logged once, survived
            errno = {"errno": exc.errno} if isinstance(exc, OSError) else {}  # never the message: it can hold a path
            _log.error("review_request_failed", path=_route(scope), error=type(exc).__name__, **errno)
            if not started:
                await send_json(send, 500, "internal error: see the station's log")


def _route(scope: Scope) -> str:
    """The request's route for the log: a known one, else "other" (a path could be anything a client sent)."""
    path = str(scope.get("path", ""))
    return path if path in KNOWN_ROUTES else "other"


def _without_ours(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    ours = {k.lower().encode() for k, _ in SECURITY_HEADERS} | {b"server"}
    return [(k, v) for k, v in headers if k.lower() not in ours]
