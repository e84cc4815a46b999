"""Who may use the review station: the holder of one token, on this machine only.

The token is random and printed at start, or read from a file only its owner can read (the service user's).
It serves two purposes only: ``Authorization: Bearer <token>`` on a request (scripts), and signing in on the
page, which opens a session. The page then carries a session cookie (HttpOnly, SameSite=Strict) that holds a
random session id, never the token, and expires (``SESSION_TTL_S``). Comparisons take constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

COOKIE = "veil_review_session"
MIN_TOKEN_CHARS = 16
SESSION_TTL_S = 8 * 3600  # a working day; the reviewer signs in again afterwards
MAX_SESSIONS = 64  # the oldest session is forgotten beyond this


class AuthError(Exception):
    """The station must not start: the message says why."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def read_token_file(path: Path) -> str:
    """The token in ``path``, which must be a regular file of the current user that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise AuthError(f"token file {str(path)!r}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuthError(f"token file {str(path)!r} is not a regular file")
        if st.st_uid != os.getuid():
            raise AuthError(f"token file {str(path)!r} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
        if st.st_mode & 0o077:
            raise AuthError(f"token file {str(path)!r} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                            "chmod 600 it")
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as handle:
            token = handle.read().strip()
    finally:
        os.close(fd)
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise AuthError(f"token file {str(path)!r} must hold one token of at least {MIN_TOKEN_CHARS} characters")
    return token


def check_loopback(host: str) -> None:
    """Refuse any address but a loopback one: the station shows masked results only, but to this machine."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise AuthError(f"the review station listens on a loopback address only (127.0.0.1 or ::1), not {host!r}")


def bearer(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer ...`` header (the scheme in any case, RFC 9110)."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def cookie_values(header: str | None, name: str) -> list[str]:
    """Every value of cookie ``name`` in a ``Cookie`` header. Lenient: duplicates, other cookies and
    malformed pairs (another site's, on the same host) are passed over, never a reason to refuse."""
    values = []
    for pair in (header or "").split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            values.append(value.strip().strip('"'))
    return values


class Authenticator:
    """The token, and the sessions signing in with it opened (in memory: a restart signs everyone out)."""

    def __init__(self, token: str, *, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token.encode()
        self._ttl_s = ttl_s
        self._clock = clock
        self._sessions: OrderedDict[str, float] = OrderedDict()  # session id -> expiry (clock time)
        self._lock = threading.Lock()

    def valid(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token)

    def allows(self, authorization: str | None, cookie_header: str | None) -> bool:
        """Whether a request carries the token (``Authorization``) or a live session (``Cookie``)."""
        if self.valid(bearer(authorization)):
            return True
        return any(self._live(value) for value in cookie_values(cookie_header, COOKIE))

    def _live(self, session: str) -> bool:
        now = self._clock()
        with self._lock:
            for sid, expiry in list(self._sessions.items()):
                if expiry <= now:
                    del self._sessions[sid]
            return any(hmac.compare_digest(session.encode(), sid.encode()) for sid in self._sessions)

    def open_session(self) -> str:
        """A new session id, live for the session lifetime."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = self._clock() + self._ttl_s
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid

    def close_sessions(self, cookie_header: str | None) -> None:
        """Sign out: forget the sessions a request's cookies name."""
        with self._lock:
            for value in cookie_values(cookie_header, COOKIE):
                self._sessions.pop(value, None)

    def cookie(self, session: str) -> str:
        """The Set-Cookie value for a session: HttpOnly, SameSite=Strict, expiring with the session."""
        return f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={int(self._ttl_s)}"

    @staticmethod
    def expired_cookie() -> str:
        return f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
