"""The review station under hostile requests, through a real uvicorn on 127.0.0.1: status codes, security
headers on every response, sessions, Origin and Host checks, limits, timeouts, failures (issue 17, items 16-21,
and what held before the move to Starlette)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import structlog

from daemon import log
from daemon.review.auth import COOKIE, Authenticator
from daemon.review.server import CSP

from tests.unit.review_station import AUTH, TOKEN, Station, as_json, origin, station_settings, texture, write_item

JSON = {**AUTH, "Content-Type": "application/json"}
SHA = "ab" * 32


@pytest.fixture()
def logs(capfd):
    """Call it in the test: from then on the station logs JSON lines to the captured stderr, as veil review."""
    yield lambda: log.configure("info", terminal=False, journal=False)
    structlog.reset_defaults()


@pytest.fixture()
def station(tmp_path):
    running = Station(station_settings(tmp_path))
    yield running
    running.stop()


def secured(response) -> bool:
    return (response.getheader("Content-Security-Policy") == CSP and response.getheader("X-Frame-Options") == "DENY"
            and response.getheader("X-Content-Type-Options") == "nosniff")


def login(station: Station) -> str:
    response, _ = station.request("POST", "/login", f"token={TOKEN}", {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 303
    return response.getheader("Set-Cookie")


# -- what held: keep it that way -----------------------------------------------------------------------------

def test_the_token_is_never_taken_from_the_query_string(station):
    response, _ = station.request("GET", f"/api/items?token={TOKEN}")
    assert response.status == 401 and secured(response)
    response, _ = station.request("GET", f"/api/items?access_token={TOKEN}&authorization=Bearer+{TOKEN}")
    assert response.status == 401


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e/auth.py",
                                  "/static/static/app.css", "/static//etc/passwd", "/../../etc/passwd"])
def test_traversal_finds_nothing(station, path):
    response, data = station.request("GET", path, headers=AUTH)
    assert response.status == 404 and secured(response)
    assert b"import" not in data and b"root:" not in data


def test_body_url_and_header_limits_hold(station):
    answer = station.raw(b"POST /api/approve HTTP/1.1\r\n" + station.host_line() + b"Authorization: Bearer "
                         + TOKEN.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: 1048577\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 413") and b"content-security-policy" in answer.lower()  # refused unread
    from starlette.testclient import TestClient

    from daemon.review.web import build

    in_process = TestClient(build(station.app), base_url="http://127.0.0.1:8765")
    chunks = (b"x" * (1 << 18) for _ in range(5))  # no Content-Length: counted as it comes
    response = in_process.post("/api/approve", content=chunks, headers=JSON)
    assert response.status_code == 413 and response.headers["content-security-policy"] == CSP
    response, _ = station.request("GET", "/api/items?sort=" + "a" * 9000, headers=AUTH)
    assert response.status in (400, 414) and secured(response)
    response, _ = station.request("GET", "/api/items", headers={**AUTH, **{f"X-Extra-{i}": "v" for i in range(100)}})
    assert response.status in (400, 431) and secured(response)
    answer = station.raw(b"GET /api/items HTTP/1.1\r\n" + station.host_line() + b"Connection: close\r\nX-Big: " + b"a" * 70000
                         + b"\r\n\r\n")
    assert answer.split(b" ")[1] in (b"400", b"431") and b"content-security-policy" in answer.lower()


# -- item 21: status codes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/item?folder=cams", "/api/image?id=x", "/api/frame?folder=cams&id=x",
                                  "/api/boxes?folder=cams"])
def test_a_missing_query_parameter_is_a_400_that_names_it(station, path):
    response, data = station.request("GET", path, headers=AUTH)
    assert response.status == 400 and "missing query parameter" in as_json(data)["error"]


def test_a_content_length_that_is_no_number_is_a_400(station):
    for length in (b"abc", b"-1", b"1x"):
        answer = station.raw(b"POST /api/approve HTTP/1.1\r\n" + station.host_line() + b"Content-Length: " + length + b"\r\n\r\n{}")
        assert answer.startswith(b"HTTP/1.1 400"), answer[:40]
        assert b"content-security-policy" in answer.lower()


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(station, scheme):
    response, _ = station.request("GET", "/api/items", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status == 200


@pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/json"])
def test_the_content_type_is_case_insensitive(station, content_type):
    body = json.dumps({"folder": "cams", "id": "nothex", "reviewer": "alice"})
    response, data = station.request("POST", "/api/approve", body, {**AUTH, "Content-Type": content_type})
    assert response.status == 400 and "SHA-256" in as_json(data)["error"]  # read as JSON, refused on its merits


# -- item 20: every response carries the security headers --------------------------------------------------

@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "BREW"])
def test_unsupported_methods_are_refused_with_the_security_headers(station, method):
    response, data = station.request(method, "/api/items", headers=AUTH)
    assert response.status in (405, 501) and secured(response)
    assert as_json(data)["error"]


def test_unknown_pages_and_refusals_carry_the_headers_too(station):
    for method, path, headers in [("GET", "/nope", AUTH), ("GET", "/api/items", {}), ("GET", "/login", {}),
                                  ("GET", "/api/items", {**AUTH, "Host": "evil.example"})]:
        response, _ = station.request(method, path, headers=headers)
        assert secured(response), (method, path, response.status)


# -- item 18: sessions, Origin, cookies, the reviewer ----------------------------------------------------------

def test_signing_in_opens_a_session_that_expires_and_the_cookie_is_never_the_token(tmp_path):
    now = [1000.0]
    station = Station(station_settings(tmp_path), Authenticator(TOKEN, ttl_s=60, clock=lambda: now[0]))
    try:
        cookie = login(station)
        assert TOKEN not in cookie and "Max-Age=60" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        pair = cookie.split(";")[0]
        assert station.request("GET", "/api/items", headers={"Cookie": pair})[0].status == 200
        assert station.request("GET", "/api/items", headers={"Cookie": f"{COOKIE}={TOKEN}"})[0].status == 401
        assert station.request("GET", "/api/items", headers={"Cookie": f"veil_review={TOKEN}"})[0].status == 401
        now[0] += 61
        assert station.request("GET", "/api/items", headers={"Cookie": pair})[0].status == 401
    finally:
        station.stop()


def test_signing_out_ends_the_session(station):
    pair = login(station).split(";")[0]
    response, _ = station.request("POST", "/logout", b"", {"Cookie": pair})
    assert response.status == 303 and "Max-Age=0" in response.getheader("Set-Cookie")
    assert station.request("GET", "/api/items", headers={"Cookie": pair})[0].status == 401


@pytest.mark.parametrize("cookies", ["{pair}; {pair}", "other=1; {pair}", '{name}="broken; {pair}', "{name}=stale; {pair}",
                                     "{pair}; {name}=stale", "junk; ; =; {pair}", "theme=dark;{pair};lang=de"])
def test_duplicate_or_unrelated_cookies_never_lock_a_reviewer_out(station, cookies):
    pair = login(station).split(";")[0]
    response, _ = station.request("GET", "/api/items", headers={"Cookie": cookies.format(pair=pair, name=COOKIE)})
    assert response.status == 200


@pytest.mark.parametrize("bad", ["http://localhost:9999", "http://127.0.0.1:1", "http://evil.example", "null",
                                 "https://127.0.0.1:{port}", "http://127.0.0.1.evil.example:{port}"])
def test_a_post_from_another_origin_or_port_is_refused(station, bad):
    body = json.dumps({"folder": "cams", "id": SHA, "reviewer": "alice"})
    response, _ = station.request("POST", "/api/approve", body, {**JSON, "Origin": bad.format(port=station.port)})
    assert response.status == 403 and secured(response)
    response, _ = station.request("POST", "/login", f"token={TOKEN}", {"Origin": bad.format(port=station.port),
                                                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 403 and response.getheader("Set-Cookie") is None


def test_a_post_from_the_station_itself_passes_the_origin_check(station):
    body = json.dumps({"folder": "cams", "id": SHA, "reviewer": "alice"})
    response, data = station.request("POST", "/api/approve", body, {**JSON, "Origin": origin(station)})
    assert response.status == 409 and "no item" in as_json(data)["error"], data  # past the gate, then no such item


@pytest.mark.parametrize("reviewer", [None, "", "   "])
def test_approval_from_the_page_requires_the_reviewers_name(station, reviewer):
    payload = {"folder": "cams", "id": SHA, **({} if reviewer is None else {"reviewer": reviewer})}
    response, data = station.request("POST", "/api/approve", json.dumps(payload), JSON)
    assert response.status == 400 and "reviewer" in as_json(data)["error"]


# -- item 19: another loopback address works ------------------------------------------------------------------

def test_the_station_answers_on_another_loopback_address(tmp_path):
    station = Station(station_settings(tmp_path), host="127.0.0.2")
    try:
        response, data = station.request("GET", "/api/items", headers=AUTH)
        assert response.status == 200 and as_json(data)["total"] == 0
        response, _ = station.request("GET", "/api/items", headers={**AUTH, "Host": f"evil.example:{station.port}"})
        assert response.status == 421
    finally:
        station.stop()


def test_veil_review_on_another_loopback_address_serves_there(tmp_path):
    import re

    process = subprocess.Popen([sys.executable, "-m", "daemon.cli", "review", "--host", "127.0.0.2", "--port", "0",
                                "--ingest", str(tmp_path / "in"), "--output", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.2:(\d+)/", process.stdout.readline())
        token = re.search(r"token (\S+)", process.stdout.readline())
        assert url and token
        import http.client

        connection = http.client.HTTPConnection("127.0.0.2", int(url.group(1)), timeout=30)
        connection.request("GET", "/api/items", headers={"Authorization": f"Bearer {token.group(1)}"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["total"] == 0
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_veil_review_refuses_addresses_it_cannot_serve_before_it_starts():
    wide = subprocess.run([sys.executable, "-m", "daemon.cli", "review", "--host", "10.0.0.1", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert wide.returncode == 2 and "loopback" in wide.stderr


# -- item 17: timeouts and a bound on connections ---------------------------------------------------------------

def test_an_incomplete_request_head_is_cut_off(tmp_path):
    station = Station(station_settings(tmp_path), head_timeout_s=0.5)
    try:
        for partial in (b"GET / HTTP/1.1\r\nHost: 127.0.0.1", b"G", b""):
            start = time.monotonic()
            assert station.raw(partial, timeout_s=10) == b""  # closed without an answer
            assert time.monotonic() - start < 5
        response, _ = station.request("GET", "/login")
        assert response.status == 200  # still serving
    finally:
        station.stop()


def test_a_body_that_never_arrives_is_cut_off(tmp_path, monkeypatch):
    from daemon.review import web

    monkeypatch.setattr(web, "BODY_TIMEOUT_S", 0.5)
    station = Station(station_settings(tmp_path))
    try:
        start = time.monotonic()
        answer = station.raw(b"POST /api/approve HTTP/1.1\r\n" + station.host_line() + b"Content-Type: application/json\r\n"
                             b"Content-Length: 100\r\n\r\n{\"folder\"", timeout_s=10)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - start < 5
    finally:
        station.stop()


def test_connections_beyond_the_bound_get_503_and_the_rest_are_served(tmp_path):
    import socket

    station = Station(station_settings(tmp_path), max_connections=3)
    held = [socket.create_connection(("127.0.0.1", station.port)) for _ in range(3)]
    try:
        station.wait_until(connections=3)  # the server holds them
        answer = station.raw(b"GET /login HTTP/1.1\r\n" + station.host_line() + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 503") and b'"status": 503' in answer
        assert b"content-security-policy" in answer.lower()
        for sock in held:
            sock.close()
        station.wait_until(connections=0)
        assert station.request("GET", "/login")[0].status == 200
    finally:
        for sock in held:
            sock.close()
        station.stop()


# -- item 16: failures inside a request -------------------------------------------------------------------------

def test_a_broken_file_in_review_is_a_json_500_with_one_log_line_without_its_path(tmp_path, capfd, logs):
    logs()
    settings = station_settings(tmp_path)
    review = settings.folders[0].review
    good = write_item(review, "good.png", texture())
    png = (review / "good.png").read_bytes()
    broken = write_item(review, "broken.png", data=png[: len(png) // 3], )
    station = Station(settings)
    try:
        capfd.readouterr()
        response, data = station.request("GET", f"/api/image?folder=cams&id={broken}", headers=AUTH)
        assert response.status == 500 and secured(response) and as_json(data)["status"] == 500
        assert str(tmp_path) not in data.decode()
        response, _ = station.request("GET", f"/api/image?folder=cams&id={good}", headers=AUTH)
        assert response.status == 200 and response.getheader("Content-Type") == "image/jpeg"  # still serving
    finally:
        station.stop()
    logged = capfd.readouterr().err
    failures = [line for line in logged.splitlines() if "review_request_failed" in line]
    assert len(failures) == 1 and "Traceback" not in logged and str(tmp_path) not in logged


def test_a_deeply_nested_body_is_a_400_and_the_station_keeps_serving(station, capfd, logs):
    logs()
    response, data = station.request("POST", "/api/approve", "[" * 50_000 + "]" * 50_000, JSON)
    assert response.status == 400 and as_json(data)["status"] == 400
    nested = '{"folder": "cams", "reviewer": "a", "id": "' + SHA + '", "add": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response, _ = station.request("POST", "/api/approve", nested, JSON)
    assert response.status == 400
    assert station.request("GET", "/api/items", headers=AUTH)[0].status == 200
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_hangs_up_leaves_no_trace_in_the_log(tmp_path, capfd, logs):
    import socket
    import struct

    logs()
    settings = station_settings(tmp_path)
    item = write_item(settings.folders[0].review, "big.png", texture(3200, 2400))
    station = Station(settings)
    try:
        for wait_for_answer in (False, True, True):
            sock = socket.create_connection(("127.0.0.1", station.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET /api/image?folder=cams&id={item} HTTP/1.1\r\nHost: 127.0.0.1:{station.port}\r\n"
                         f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
            if wait_for_answer:
                assert sock.recv(12) == b"HTTP/1.1 200"  # the answer has started: hang up in the middle of it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not a clean close
            sock.close()
        station.wait_until(connections=0, idle=True)  # every answer finished or abandoned
        assert station.request("GET", f"/api/image?folder=cams&id={item}", headers=AUTH)[0].status == 200
    finally:
        station.stop()
    logged = capfd.readouterr()
    everything = logged.out + logged.err
    assert "Traceback" not in everything and "BrokenPipe" not in everything and "ConnectionReset" not in everything
    assert "review_request_failed" not in everything
