"""A review station on 127.0.0.1 for tests, requests to it, and items written by hand (no models)."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline.params import Params
from pipeline.qc import SIDECAR_SUFFIX, DetectionRecord, FileInfo, QCReport

from daemon.config.settings import Settings, load_settings
from daemon.review.auth import Authenticator
from daemon.review.server import ReviewApp, ReviewServer

TOKEN = "station-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def station_settings(root: Path) -> Settings:
    return load_settings(None, folders=[{"name": "cams", "ingest": root / "in", "output": root / "out"}],
                         service={"instance": "test", "state_dir": root / "state"},
                         drift={"enabled": False, "store_dir": root / "state"})


class Station:
    """A running station: ``port``, ``request``, ``raw`` (bytes on a socket) and ``stop``."""

    def __init__(self, settings: Settings, auth: Authenticator | None = None, host: str = "127.0.0.1", **limits) -> None:
        self.app = ReviewApp(settings, auth or Authenticator(TOKEN), engines=None, audit=None)
        if limits:
            from daemon.review.server import Limits

            self.server = ReviewServer((host, 0), self.app, Limits(**limits))
        else:
            self.server = ReviewServer((host, 0), self.app)
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()

    def host_line(self) -> bytes:
        return f"Host: {self.host}:{self.port}\r\n".encode()

    def raw(self, data: bytes, timeout_s: float = 10.0) -> bytes:
        """Send ``data`` and read until the server closes or ``timeout_s`` passes."""
        with socket.create_connection((self.host, self.port), timeout=timeout_s) as sock:
            sock.sendall(data)
            received = b""
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except TimeoutError:
                pass
            return received

    def wait_until(self, *, connections: int | None = None, idle: bool = False, timeout_s: float = 10.0) -> None:
        """Until uvicorn holds ``connections`` open connections and/or runs no request (``idle``)."""
        state = self.server._server.server_state
        deadline = time.monotonic() + timeout_s
        while (connections is not None and len(state.connections) != connections) or (idle and state.tasks):
            assert time.monotonic() < deadline, f"the server did not settle: {len(state.connections)} connection(s)"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def origin(station: Station) -> str:
    return f"http://{station.host}:{station.port}"


def write_item(root: Path, name: str, rgb: np.ndarray | None = None, *, data: bytes | None = None,
               detections: list[dict[str, Any]] | None = None, params: Params | None = None) -> str:
    """A photo item in ``root`` (review/ say): the picture (``rgb`` as PNG, or raw ``data``) and its sidecar.
    Returns its ID."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if data is None:
        assert rgb is not None
        Image.fromarray(rgb).save(path)
    else:
        path.write_bytes(data)
    sha = hashlib.sha256(name.encode() + path.read_bytes()).hexdigest()
    height, width = (rgb.shape[:2] if rgb is not None else (64, 64))
    report = QCReport(
        veil_version="test", created_at=datetime.now(timezone.utc),
        input=FileInfo(name=name, sha256=sha, media_type="image", width=width, height=height),
        output=FileInfo(name=name, media_type="image", width=width, height=height),
        params=(params or Params()).model_dump(mode="json"),
        detections=[DetectionRecord.model_validate(d) for d in detections or []],
        disposition="review", review_reasons=["test: put in review"])
    (root / (name + SIDECAR_SUFFIX)).write_text(report.to_json())
    return sha


def texture(width: int = 160, height: int = 120, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.kron(cells, np.ones((8, 8, 1), np.uint8))


def as_json(data: bytes) -> Any:
    return json.loads(data)
