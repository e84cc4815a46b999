"""The review station's HTTP server: standard library only, loopback only, one token.

Pages and scripts are static files of this package; the JSON API and the pictures come from the items
in each folder's review/ and spotcheck/ (masked results and their sidecars). An approval runs the rework
flow (daemon/review/rework/) with the reviewer's edits. Every response carries a strict Content-Security-Policy:
nothing but this server's own files runs or loads.
"""

from __future__ import annotations

import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from daemon import log
from daemon.audit.log import AuditLog
from daemon.config.settings import FolderSettings, Settings
from daemon.review.auth import Authenticator
from daemon.review.media import FrameSource, image_jpeg, track_boxes
from daemon.review.queue import queue_page
from daemon.review.rework import (
    Item,
    Place,
    ReworkDocument,
    ReworkError,
    approve,
    items_in,
    parse_document,
    service_params,
)

_log = log.get("veil.review")

CSP = ("default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
_PLACES: tuple[Place, ...] = ("review", "spotcheck")
_PAGES = {"/": "queue.html", "/item": "item.html"}
_PUBLIC = {"/login": "login.html", "/static/app.css": "app.css"}  # the login form and its style sheet
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_MAX_BODY = 1 << 20


def static_file(name: str) -> bytes:
    return resources.files("daemon.review").joinpath("static", name).read_bytes()


class ReviewApp:
    """What the handler asks: the items, their pictures, approval. Thread-safe."""

    def __init__(self, settings: Settings, auth: Authenticator, engines, audit: AuditLog | None) -> None:
        self.settings = settings
        self.auth = auth
        self.engines = engines
        self.audit = audit
        self._frames: dict[tuple[str, str], FrameSource] = {}
        self._items: dict[tuple[str, str], Item] = {}
        self._frames_lock = threading.Lock()
        self._approve_lock = threading.Lock()  # one re-render at a time: the CPU is shared with the service

    def folder(self, name: str) -> FolderSettings:
        try:
            return self.settings.folder(name)
        except KeyError:
            raise LookupError(f"no folder {name!r}") from None

    def queue(self) -> list[dict[str, Any]]:
        rows = []
        for folder in self.settings.folders:
            for place in _PLACES:
                rows += [self.summary(item) for item in items_in(folder, place)]
        return rows

    def item(self, folder_name: str, item_id: str) -> Item:
        """The item, remembered while its sidecar stays (a scrubbed video asks for it once a frame)."""
        folder = self.folder(folder_name)
        cached = self._items.get((folder_name, item_id))
        if cached is not None and cached.sidecar.exists():
            return cached
        for place in _PLACES:
            for item in items_in(folder, place):
                if item.id == item_id:
                    self._items[(folder_name, item_id)] = item
                    return item
        raise LookupError("no such item in review or spot checks")

    @staticmethod
    def summary(item: Item) -> dict[str, Any]:
        report = item.report
        video = report.video or {}
        return {"folder": item.folder.name, "id": item.id, "place": item.place, "name": item.name,
                "media_type": item.output_info.media_type, "reasons": report.review_reasons,
                "detections": len(report.detections), "tracks": len(video.get("tracks", [])),
                "frames": video.get("frames_written"), "created_at": report.created_at.isoformat(timespec="seconds")}

    def detail(self, item: Item) -> dict[str, Any]:
        report = item.report
        params = self.settings.params_for(item.folder)
        return {**self.summary(item), "width": item.output_info.width, "height": item.output_info.height,
                "detections": [d.model_dump(mode="json", by_alias=True) for d in report.detections],
                "track_list": (report.video or {}).get("tracks", []),
                "allow_unmask": params.review.allow_false_positive_unmask}

    def frame(self, item: Item, index: int) -> bytes | None:
        key = (str(item.output_path), item.id)
        with self._frames_lock:
            source = self._frames.get(key)
            if source is None:
                source = self._frames[key] = FrameSource(item.output_path)
        return source.frame(index)

    def approve(self, folder_name: str, doc: ReworkDocument) -> dict[str, Any]:
        folder = self.folder(folder_name)
        with self._approve_lock:
            done = approve(folder, service_params(self.settings, folder), self.engines, doc, audit=self.audit,
                           source="review-page", audit_names=self.settings.service.log_file_names)
        with self._frames_lock:  # the item left review: let its reader go
            for key in [k for k in self._frames if k[1] == doc.id]:
                self._frames.pop(key).close()
        return {"approved": True, "name": done.name, "regions": done.counts.regions,
                "false_positives": done.counts.false_positives, "unmasked": done.counts.unmask_allowed,
                "original_deleted": done.original_deleted}


class Handler(BaseHTTPRequestHandler):
    server: "ReviewServer"
    protocol_version = "HTTP/1.1"
    server_version = "veil-review"
    sys_version = ""

    # -- plumbing ----------------------------------------------------------------------------------------

    def log_message(self, format: str, *args) -> None:  # the base class's name
        pass  # the base class logs every request line with its query; we log errors only, without names

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "same-origin")  # "no-referrer" would make Origin "null"
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _static(self, name: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, static_file(name), _TYPES[Path(name).suffix], headers)

    def _host_ok(self) -> bool:
        """Only requests addressed to the loopback name we listen on (DNS rebinding sends another Host)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        return host in ("127.0.0.1", "localhost", "::1")

    def _authorised(self) -> bool:
        return self.server.app.auth.allows(self.headers.get("Authorization"), self.headers.get("Cookie"))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length)

    # -- requests ----------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if not self._host_ok():
            return self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host")
        if url.path in _PUBLIC:
            return self._static(_PUBLIC[url.path])
        if not self._authorised():
            if url.path in _PAGES:
                return self._static("login.html", HTTPStatus.UNAUTHORIZED)
            return self._error(HTTPStatus.UNAUTHORIZED, "a token is needed")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self._route_get(url.path, query)
        except LookupError as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except (ValueError, KeyError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"bad request: {exc}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route_get(self, path: str, query: dict[str, str]) -> None:
        app = self.server.app
        if path in _PAGES:
            return self._static(_PAGES[path])
        if path.startswith("/static/") and path[8:] in _static_names():
            return self._static(path[8:])
        if path == "/api/items":
            return self._json(200, queue_page(app.queue(), query))
        if path in ("/api/item", "/api/image", "/api/frame", "/api/boxes"):
            item = app.item(query["folder"], query["id"])
            if path == "/api/item":
                return self._json(200, app.detail(item))
            if path == "/api/image":
                if item.output_info.media_type != "image":
                    raise ValueError("not an image")
                return self._send(200, image_jpeg(item), "image/jpeg")
            if path == "/api/frame":
                data = app.frame(item, int(query["n"]))
                if data is None:
                    raise LookupError("no such frame")
                return self._send(200, data, "image/jpeg")
            first, count = int(query.get("first", 0)), min(int(query.get("count", 2000)), 10000)
            return self._json(200, {"frames": track_boxes(item, first, count)})
        raise LookupError("no such page")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._body()  # read first: an unread body would be taken for the next request
        except ValueError as exc:
            self.close_connection = True
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc))
        if not self._host_ok():
            return self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host")
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).hostname not in ("127.0.0.1", "localhost", "::1"):
            return self._error(HTTPStatus.FORBIDDEN, "cross-origin request")
        if url.path == "/login":
            return self._login(body)
        if not self._authorised():
            return self._error(HTTPStatus.UNAUTHORIZED, "a token is needed")
        if url.path != "/api/approve":
            return self._error(HTTPStatus.NOT_FOUND, "no such action")
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON")  # forms cannot: no cross-site posts
        self._approve(body)

    def _login(self, body: bytes) -> None:
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[-1].strip()
        auth = self.server.app.auth
        if not auth.valid(token):
            return self._static("login.html", HTTPStatus.UNAUTHORIZED)
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": auth.cookie()})

    def _approve(self, body: bytes) -> None:
        try:
            payload = json.loads(body)
            folder = payload.pop("folder")
            doc = parse_document(json.dumps(payload))
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc) or "a JSON object with a folder is needed")
        except ReworkError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        try:
            result = self.server.app.approve(folder, doc)
        except LookupError as exc:
            return self._error(HTTPStatus.NOT_FOUND, str(exc))
        except ReworkError as exc:
            _log.warning("review_approve_failed", folder=folder, item=doc.id[:12], error=str(exc))
            return self._error(HTTPStatus.CONFLICT, str(exc))
        except OSError as exc:  # the item stays in review; the reviewer may try again
            _log.error("review_approve_failed", folder=folder, item=doc.id[:12], error=exc.strerror or str(exc))
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"could not publish: {exc.strerror or exc}")
        _log.info("review_approved", folder=folder, item=doc.id[:12], regions=result["regions"])
        self._json(200, result)


def _static_names() -> set[str]:
    return {entry.name for entry in resources.files("daemon.review").joinpath("static").iterdir()}


class ReviewServer(ThreadingHTTPServer):
    """Serves ``app`` on a loopback address (``check_loopback`` first: this class binds what it is given)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: ReviewApp) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # ::1
        super().__init__(address, Handler)
        self.app = app
