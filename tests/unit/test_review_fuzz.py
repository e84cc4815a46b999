"""A bounded fuzzing run against the review station (issue 17, "Done when"): Hypothesis sends a few hundred
requests over its endpoints to a real uvicorn on 127.0.0.1, well formed and not, signed in and not. No answer
may be a 5xx without a JSON body, every answer carries the security headers, none may hang, and the log may
hold no traceback and no path."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import quote, urlencode

import pytest
import structlog
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.params import Params

from daemon import log
from daemon.review.server import CSP

from tests.unit.review_station import TOKEN, Station, station_settings, texture, write_item

PATHS = ["/", "/item", "/login", "/logout", "/api/items", "/api/item", "/api/image", "/api/frame", "/api/boxes",
         "/api/approve", "/static/app.css", "/static/item.js", "/static/..%2f..%2fserver.py", "/nope"]
METHODS = ["GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "FOO"]
ROUTES = [("GET", "/"), ("GET", "/item"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/api/items"),
          ("GET", "/api/item"), ("GET", "/api/image"), ("GET", "/api/frame"), ("GET", "/api/boxes"), ("HEAD", "/api/image"),
          ("POST", "/api/approve"), ("POST", "/api/approve"), ("POST", "/api/approve"), ("GET", "/static/item.js")]
KEYS = ["folder", "id", "n", "first", "count", "sort", "page", "per_page", "token"]
FACE = {"class": "face", "score": 0.3, "box": [40.0, 32.0, 88.0, 80.0], "band": "review", "masked": False}
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=40)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | TEXT,
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)
MAX_SECONDS = 15  # one answer; a hang fails the run


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A station with a photo item (a review-band region left unmasked) and a broken one; the log on a file."""
    root = tmp_path_factory.mktemp("fuzz")
    settings = station_settings(root)
    review = settings.folders[0].review
    ids = [write_item(review, "yard.png", texture(), detections=[FACE],
                      params=Params.model_validate({"mask": {"mask_review_band": False}}))]
    png = (review / "yard.png").read_bytes()
    ids.append(write_item(review, "broken.png", data=png[:200]))
    logfile = (root / "station.log").open("w")
    structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.format_exc_info,
                                    structlog.processors.JSONRenderer()],
                        logger_factory=structlog.PrintLoggerFactory(file=logfile))
    station = Station(settings, head_timeout_s=2.0)
    yield station, ids, root, logfile
    station.stop()
    logfile.close()
    structlog.reset_defaults()
    log.configure()


def query(draw_values: dict[str, str]) -> str:
    return ("?" + urlencode(draw_values)) if draw_values else ""


@st.composite
def requests(draw, ids: list[str]):
    if draw(st.integers(0, 4)):  # mostly a real route with its method, so that the code behind it runs
        method, path = draw(st.sampled_from(ROUTES))
    else:
        method = draw(st.sampled_from(METHODS))
        path = draw(st.sampled_from(PATHS) | TEXT.map(lambda t: "/" + quote(t)))
    values = st.sampled_from(["-1", "0", "5", "99999999999", "x", ""]) | TEXT
    params = draw(st.fixed_dictionaries(
        {"folder": st.sampled_from(["cams"] * 8 + ["other", ""]), "id": st.sampled_from([*ids * 4, "ab" * 32])},
        optional={key: st.sampled_from(["0", "3"]) | values for key in KEYS[2:]}))
    if draw(st.integers(0, 4)) == 0:  # now and then without one of them, or with anything in it
        key = draw(st.sampled_from(sorted(params)))
        params[key] = draw(TEXT)
        if draw(st.booleans()):
            del params[key]
    # Mostly past the gate (a good Host and token), so that the routes behind it are fuzzed too.
    headers = {"Host": draw(st.sampled_from(["127.0.0.1:{port}"] * 6 + ["localhost:{port}", "evil.example", "127.0.0.1"]))}
    auth = draw(st.sampled_from([f"Bearer {TOKEN}"] * 5 + [f"bearer {TOKEN}", "Bearer nope", "", f"Basic {TOKEN}"]))
    if auth:
        headers["Authorization"] = auth
    if draw(st.integers(0, 3)) == 0:
        headers["Origin"] = draw(st.sampled_from(["http://127.0.0.1:{port}"] * 3 + ["http://localhost:1", "null", ""]))
    if draw(st.booleans()):
        headers["Cookie"] = draw(st.sampled_from(["veil_review_session=x", f"veil_review={TOKEN}", '"', ";;="]) | TEXT)
    headers["Content-Type"] = draw(st.sampled_from(["application/json"] * 3 + ["Application/JSON", "text/plain",
                                                                               "application/x-www-form-urlencoded"]))
    add = st.lists(st.fixed_dictionaries({}, optional={
        "box": st.lists(st.floats(-1, 2), min_size=3, max_size=5), "frames": st.lists(st.integers(-2, 10**9), max_size=3),
        "keys": st.dictionaries(st.integers(-5, 10**9).map(str), st.just([0.1, 0.1, 0.2, 0.2]), max_size=3),
        "polygon": JSONISH, "class": st.sampled_from(["face", "other", "x"])}), max_size=3) | JSONISH
    document = st.fixed_dictionaries({"folder": st.sampled_from(["cams", "x"]), "id": st.sampled_from([*ids, "ab" * 32])},
                                     optional={"reviewer": st.just("alice") | TEXT, "add": add, "false_positives": JSONISH,
                                               "unmasked_review_band": st.sampled_from(["mask", "publish", "x"]),
                                               "keys": JSONISH})
    body = draw(document.map(json.dumps) | st.none() | JSONISH.map(json.dumps) | st.binary(max_size=200)
                | st.just("[" * 3000) | st.just(f"token={TOKEN}"))
    return method, path + query(params), headers, body


def exchange(station: Station, method: str, target: str, headers: dict[str, str], body) -> tuple[int, dict, bytes]:
    headers = {k: v.replace("{port}", str(station.port)) for k, v in headers.items()}
    connection = http.client.HTTPConnection("127.0.0.1", station.port, timeout=MAX_SECONDS)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value.encode("utf-8"))
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def check(status: int, headers: dict, data: bytes, method: str) -> None:
    assert headers.get("content-security-policy") == CSP, (status, headers)
    if status >= 500:
        assert headers.get("content-type", "").startswith("application/json")
        assert method == "HEAD" or "error" in json.loads(data)


def test_fuzzing_the_endpoints_finds_no_5xx_without_json_no_hang_and_no_traceback(fuzzed):
    station, ids, root, logfile = fuzzed
    started = time.monotonic()

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=requests(ids))
    def one(request):
        method, target, headers, body = request
        status, answer_headers, data = exchange(station, method, target, headers, body)
        event(f"status {status}")  # pytest --hypothesis-show-statistics: how deep the run went
        check(status, answer_headers, data, method)

    one()
    assert time.monotonic() - started < 60
    signed_in = {"Host": "127.0.0.1:{port}", "Authorization": f"Bearer {TOKEN}"}
    status, _, data = exchange(station, "GET", f"/api/image?folder=cams&id={ids[1]}", signed_in, None)
    assert status == 500 and json.loads(data)["status"] == 500  # the broken item: a failure the log must name
    status, _, _ = exchange(station, "GET", "/api/items", signed_in, None)
    assert status == 200  # still serving
    logfile.flush()
    logged = (root / "station.log").read_text()
    assert "Traceback" not in logged and str(root) not in logged and "review_request_failed" in logged  # the broken item


@given(head=st.binary(max_size=300), tail=st.sampled_from([b"", b"\r\n\r\n", b"\r\n"]))
@settings(max_examples=150, deadline=None, database=None, derandomize=True)
def test_fuzzing_the_request_bytes_gets_an_answer_with_headers_or_a_closed_connection(fuzzed, head, tail):
    station = fuzzed[0]
    with socket.create_connection(("127.0.0.1", station.port), timeout=MAX_SECONDS) as sock:
        sock.sendall(b"GET /api/items HTTP/1.1\r\n" + head + tail)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    if answer:
        assert answer.startswith(b"HTTP/1.1 ") and b"content-security-policy" in answer.lower()
        assert not answer[9:10] == b"5" or b"application/json" in answer.lower()


@pytest.fixture(scope="module")
def in_process(fuzzed):
    """The same station's app in process, through Starlette's TestClient (no sockets: the app's own answers)."""
    from starlette.testclient import TestClient

    from daemon.review.web import build

    station, ids = fuzzed[0], fuzzed[1]
    client = TestClient(build(station.app), base_url="http://127.0.0.1:8765", raise_server_exceptions=True)
    yield client, ids  # not entered: the station has no lifespan (uvicorn runs it with lifespan="off")
    client.close()


@given(route=st.sampled_from(["/api/item", "/api/image", "/api/frame", "/api/boxes", "/api/items"]),
       params=st.dictionaries(st.sampled_from(KEYS), TEXT | st.integers(-(10**20), 10**20).map(str), max_size=5),
       which=st.integers(0, 1))
@settings(max_examples=200, deadline=None, database=None, derandomize=True)
def test_any_query_gets_a_json_answer_from_the_app_itself(in_process, route, params, which):
    client, ids = in_process
    if "id" in params and which:
        params = {**params, "id": ids[0], "folder": "cams"}
    response = client.get(route, params=params, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.headers["content-security-policy"] == CSP
    assert response.status_code < 500 or response.json()["status"] == response.status_code
    if response.headers["content-type"].startswith("application/json"):
        assert response.status_code == 200 or "error" in response.json()
