"""The review station's routes, on Starlette: pages, the JSON API, sign-in and approval.

Routes only translate between HTTP and the station (daemon/review/station.py); the gate around them
(security headers, Host and Origin checks, failures as JSON) is daemon/review/guard.py. Blocking work
(decoding pictures, re-rendering) runs in Starlette's worker threads, so one slow request never stops the
others. Errors a client caused are 4xx with a JSON ``error``; nothing else about the server leaks.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daemon import log
from daemon.review.guard import Guard, RequestError
from daemon.review.queue import queue_page
from daemon.review.rework import ReworkError, parse_document
from daemon.review.station import ReviewApp

_log = log.get("veil.review")

_PAGES = {"/": "queue.html", "/item": "item.html"}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PUBLIC_STATIC = frozenset({"app.css"})  # the login form's style sheet
MAX_BODY = 1 << 20
BODY_TIMEOUT_S = 10.0
MAX_BOX_FRAMES = 10_000


def static_file(name: str) -> bytes:
    return resources.files("daemon.review").joinpath("static", name).read_bytes()


def static_names() -> frozenset[str]:
    return frozenset(entry.name for entry in resources.files("daemon.review").joinpath("static").iterdir())


def _static(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(static_file(name), status, headers=headers, media_type=_TYPES[Path(name).suffix])


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request) -> bytes:
    """The body, at most MAX_BODY bytes, read within BODY_TIMEOUT_S (a client that stops sending is cut off)."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > MAX_BODY:  # uvicorn's parser has refused a non-number already
        raise RequestError(413, "request body too large")
    chunks, size = [], 0
    try:
        with anyio.fail_after(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise RequestError(413, "request body too large")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, "the request body did not arrive in time") from None
    return b"".join(chunks)


def _param(request: Request, name: str, default: str | None = None) -> str:
    value = request.query_params.get(name, default)
    if value is None:
        raise RequestError(400, f"missing query parameter {name!r}")
    return value


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    text = _param(request, name, None if default is None else str(default))
    try:
        return int(text)
    except ValueError:
        raise RequestError(400, f"query parameter {name!r} must be an integer") from None


class Routes:
    """The endpoints, bound to one station."""

    def __init__(self, station: ReviewApp) -> None:
        self.station = station

    def signed_in(self, request: Request) -> bool:
        return self.station.auth.allows(request.headers.get("authorization"), request.headers.get("cookie"))

    def require(self, request: Request) -> None:
        if not self.signed_in(request):
            raise RequestError(401, "a token is needed")

    async def page(self, request: Request) -> Response:
        if not self.signed_in(request):
            return _static("login.html", 401)
        return _static(_PAGES[request.url.path])

    async def login_page(self, request: Request) -> Response:
        return _static("login.html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in PUBLIC_STATIC:
            self.require(request)
        if name not in static_names():
            raise RequestError(404, "no such file")
        return _static(name)

    async def items(self, request: Request) -> Response:
        self.require(request)
        query = {key: request.query_params[key] for key in request.query_params}
        rows = await run_in_threadpool(self.station.queue)
        return JSONResponse(queue_page(rows, query))

    async def item(self, request: Request) -> Response:
        self.require(request)
        detail = await run_in_threadpool(self.station.detail, _param(request, "folder"), _param(request, "id"))
        return JSONResponse(detail)

    async def image(self, request: Request) -> Response:
        self.require(request)
        data = await run_in_threadpool(self.station.image, _param(request, "folder"), _param(request, "id"))
        return Response(data, media_type="image/jpeg")

    async def frame(self, request: Request) -> Response:
        self.require(request)
        folder, item_id, index = _param(request, "folder"), _param(request, "id"), _int_param(request, "n")
        if index < 0:
            raise RequestError(400, "n must be >= 0")
        data = await run_in_threadpool(self.station.frame, folder, item_id, index)
        return Response(data, media_type="image/jpeg")

    async def boxes(self, request: Request) -> Response:
        self.require(request)
        from daemon.review.media import track_boxes

        item = await run_in_threadpool(self.station.item, _param(request, "folder"), _param(request, "id"))
        first, count = _int_param(request, "first", 0), min(_int_param(request, "count", 2000), MAX_BOX_FRAMES)
        frames = await run_in_threadpool(track_boxes, item, first, count)
        return JSONResponse({"frames": frames})

    async def login(self, request: Request) -> Response:
        body = await read_body(request)
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[-1].strip()
        auth = self.station.auth
        if not auth.valid(token):
            return _static("login.html", 401)
        return Response(b"", 303, headers={"Location": "/", "Set-Cookie": auth.cookie(auth.open_session())})

    async def logout(self, request: Request) -> Response:
        await read_body(request)
        self.station.auth.close_sessions(request.headers.get("cookie"))
        return Response(b"", 303, headers={"Location": "/login", "Set-Cookie": self.station.auth.expired_cookie()})

    async def approve(self, request: Request) -> Response:
        body = await read_body(request)
        self.require(request)
        if _media_type(request) != "application/json":
            raise RequestError(415, "send JSON")  # a cross-site form cannot: no cross-site posts
        folder, doc = approval_document(body)
        try:
            result = await run_in_threadpool(self.station.approve, folder, doc)
        except ReworkError as exc:
            _log.warning("review_approve_failed", folder=folder, item=doc.id[:12], error=str(exc))
            raise RequestError(409, str(exc)) from None
        _log.info("review_approved", folder=folder, item=doc.id[:12], regions=result["regions"])
        return JSONResponse(result)


def approval_document(body: bytes) -> tuple[str, Any]:
    """The folder and the rework document of an approval; RequestError 400 with the reason otherwise. The
    page must name its reviewer: the rework folder's default ("rework-folder") is not for people."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError(400, "the body must be a JSON object") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("folder"), str):
        raise RequestError(400, "a JSON object with a folder is needed")
    reviewer = payload.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise RequestError(400, "the reviewer's name is required")
    folder = payload.pop("folder")
    try:
        return folder, parse_document(json.dumps(payload))
    except (ReworkError, ValidationError, RecursionError) as exc:
        raise RequestError(400, str(exc) if not isinstance(exc, RecursionError) else "document nested too deep") from None


async def _request_error(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, RequestError) else 400
    unread = {"Connection": "close"} if status in (408, 413) else None  # the rest of that body is not wanted
    return JSONResponse({"error": str(exc), "status": status}, status, headers=unread)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc).strip("'\"") or "not found", "status": 404}, 404)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "status": exc.status_code}, exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal error: see the station's log", "status": 500}, 500)


def build(station: ReviewApp) -> Guard:
    """The ASGI application: the routes inside the gate."""
    routes = Routes(station)
    app = Starlette(routes=[
        Route("/", routes.page, methods=["GET"]),
        Route("/item", routes.page, methods=["GET"]),
        Route("/login", routes.login_page, methods=["GET"]),
        Route("/login", routes.login, methods=["POST"]),
        Route("/logout", routes.logout, methods=["POST"]),
        Route("/static/{name}", routes.static, methods=["GET"]),
        Route("/api/items", routes.items, methods=["GET"]),
        Route("/api/item", routes.item, methods=["GET"]),
        Route("/api/image", routes.image, methods=["GET"]),
        Route("/api/frame", routes.frame, methods=["GET"]),
        Route("/api/boxes", routes.boxes, methods=["GET"]),
        Route("/api/approve", routes.approve, methods=["POST"]),
    ], exception_handlers={RequestError: _request_error, ValueError: _request_error, LookupError: _not_found,
                           HTTPException: _http_error, Exception: _server_error})
    return Guard(app)
