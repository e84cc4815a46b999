"""The review station's gate: token files, loopback only, 401 without the token, the login cookie."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon.config.settings import load_settings
from daemon.review.auth import COOKIE, Authenticator, AuthError, check_loopback, read_token_file
from daemon.review.server import CSP, ReviewApp, ReviewServer

TOKEN = "s3cret-token-for-tests-0123456789"


def token_file(tmp_path: Path, mode: int, text: str = TOKEN) -> Path:
    path = tmp_path / "token"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_token_file_only_its_owner_can_read_is_accepted(tmp_path, mode):
    assert read_token_file(token_file(tmp_path, mode)) == TOKEN


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
def test_a_token_file_others_can_read_is_refused(tmp_path, mode):
    with pytest.raises(AuthError, match="readable by others"):
        read_token_file(token_file(tmp_path, mode))


def test_a_token_file_must_be_a_regular_file_of_this_user(tmp_path):
    real = token_file(tmp_path, 0o600)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(AuthError):
        read_token_file(link)  # a link could point anywhere: refused
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(AuthError, match="not a regular file"):
        read_token_file(folder)
    with pytest.raises(AuthError, match="No such file"):
        read_token_file(tmp_path / "missing")
    if os.getuid() == 0:  # only root can hand a file to another user
        os.chown(real, 4242, -1)
        with pytest.raises(AuthError, match="belongs to uid 4242"):
            read_token_file(real)


@pytest.mark.parametrize("text", ["", "short", "two words here and more"])
def test_a_token_file_must_hold_one_long_token(tmp_path, text):
    with pytest.raises(AuthError, match="one token"):
        read_token_file(token_file(tmp_path, 0o600, text))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_are_allowed(host):
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", ""])
def test_other_addresses_are_refused(host):
    with pytest.raises(AuthError, match="loopback"):
        check_loopback(host)


def test_the_authenticator_takes_the_bearer_token_or_a_live_session_cookie_only():
    auth = Authenticator(TOKEN)
    session = auth.open_session()
    assert auth.allows(f"Bearer {TOKEN}", None)
    assert auth.allows(None, f"other=1; {COOKIE}={session}")
    assert not auth.allows(None, None)
    assert not auth.allows(f"Bearer {TOKEN}x", None)
    assert not auth.allows(f"Basic {TOKEN}", None)
    assert not auth.allows(None, f"{COOKIE}={session[:-1]}")
    assert not auth.allows(None, f"{COOKIE}={TOKEN}")  # the token is for signing in, never a cookie
    assert not auth.allows(None, f'{COOKIE}="unterminated')
    cookie = auth.cookie(session)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie and TOKEN not in cookie


def test_veil_review_refuses_a_non_loopback_host_and_a_readable_token_file(tmp_path):
    wide = subprocess.run([sys.executable, "-m", "daemon.cli", "review", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert wide.returncode == 2 and "loopback" in wide.stderr
    readable = subprocess.run([sys.executable, "-m", "daemon.cli", "review", "--token-file",
                               str(token_file(tmp_path, 0o644)), "--port", "0"], capture_output=True, text=True, timeout=60)
    assert readable.returncode == 2 and "readable by others" in readable.stderr


# -- the server ---------------------------------------------------------------------------------------------

@pytest.fixture()
def server(tmp_path):
    settings = load_settings(None, folders=[{"name": "cams", "ingest": tmp_path / "in", "output": tmp_path / "out"}])
    app = ReviewApp(settings, Authenticator(TOKEN), engines=None, audit=None)
    httpd = ReviewServer(("127.0.0.1", 0), app)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


@pytest.mark.parametrize("path", ["/", "/item?folder=cams&id=x", "/api/items", "/api/item?folder=cams&id=x",
                                  "/api/image?folder=cams&id=x", "/api/frame?folder=cams&id=x&n=0",
                                  "/static/item.js", "/static/queue.js"])
def test_every_page_but_the_login_needs_the_token(server, path):
    response, _ = request(server, "GET", path)
    assert response.status == 401
    assert response.getheader("Content-Security-Policy") == CSP
    response, _ = request(server, "GET", path, headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert response.status == 401


def test_with_the_token_the_api_answers_and_every_response_has_a_strict_policy(server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response, data = request(server, "GET", "/api/items", headers=auth)
    assert response.status == 200 and json.loads(data)["items"] == [] and json.loads(data)["total"] == 0
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    response, _ = request(server, "GET", "/api/item?folder=cams&id=" + "0" * 64, headers=auth)
    assert response.status == 404
    response, _ = request(server, "GET", "/login")
    assert response.status == 200 and "default-src 'self'" in response.getheader("Content-Security-Policy")


def test_the_login_form_sets_a_strict_http_only_cookie_that_then_opens_the_pages(server):
    response, _ = request(server, "POST", "/login", body="token=nope", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 401 and response.getheader("Set-Cookie") is None
    response, _ = request(server, "POST", "/login", body=f"token={TOKEN}",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 303
    cookie = response.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    response, data = request(server, "GET", "/", headers={"Cookie": cookie.split(";")[0]})
    assert response.status == 200 and b"queue.js" in data


def test_requests_for_another_host_name_or_from_another_origin_are_refused(server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response, _ = request(server, "GET", "/api/items", headers={**auth, "Host": "evil.example:80"})
    assert response.status == 421  # DNS rebinding: the browser sends the attacker's name
    response, _ = request(server, "POST", "/api/approve", body="{}",
                          headers={**auth, "Content-Type": "application/json", "Origin": "http://evil.example"})
    assert response.status == 403
    response, _ = request(server, "POST", "/api/approve", body="folder=cams",
                          headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415  # a cross-site form cannot send JSON
    response, data = request(server, "POST", "/api/approve", body='{"folder": "cams", "id": "nothex", "reviewer": "al"}',
                             headers={**auth, "Content-Type": "application/json"})
    assert response.status == 400 and b"SHA-256" in data
